//! TRANSPOSE_CONV: f32 and int8 with per-channel weights (`reference_ops::TransposeConv`,
//! `reference_integer_ops::TransposeConv`). The geometry's `in_*` is the op's data input and
//! `out_*` its (larger) output.

use crate::frame::{ConvGeometry, ConvQuantParams};
use crate::quant::{
    clamp_f32, multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_i64,
};

/// Scatter every input pixel through the filter into `f`, which receives
/// `(output_index, input_value_index, filter_index)` for taps landing inside the output.
#[inline]
fn scatter(g: &ConvGeometry, mut f: impl FnMut(usize, usize, usize)) {
    for b in 0..g.batches {
        for iy in 0..g.in_h {
            for ix in 0..g.in_w {
                for ic in 0..g.in_c {
                    let out_x0 = (ix * g.stride_w) as isize - g.pad_left as isize;
                    let out_y0 = (iy * g.stride_h) as isize - g.pad_top as isize;
                    let in_index = ((b * g.in_h + iy) * g.in_w + ix) * g.in_c + ic;
                    for ky in 0..g.k_h {
                        let oy = out_y0 + ky as isize;
                        for kx in 0..g.k_w {
                            let ox = out_x0 + kx as isize;
                            if oy < 0 || ox < 0 || oy >= g.out_h as isize || ox >= g.out_w as isize
                            {
                                continue;
                            }
                            let out_base =
                                ((b * g.out_h + oy as usize) * g.out_w + ox as usize) * g.out_c;
                            for oc in 0..g.out_c {
                                let f_index = ((oc * g.k_h + ky) * g.k_w + kx) * g.in_c + ic;
                                f(out_base + oc, in_index, f_index);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// f32 transposed convolution.
pub fn transpose_conv_f32(
    g: &ConvGeometry,
    act: (f32, f32),
    input: &[f32],
    filter: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    output.fill(0.0);
    scatter(g, |o, i, f| output[o] += input[i] * filter[f]);
    for (index, value) in output.iter_mut().enumerate() {
        let oc = index % g.out_c;
        let bias_value = bias.map_or(0.0, |bias| bias[oc]);
        *value = clamp_f32(*value + bias_value, act.0, act.1);
    }
}

/// Int8 transposed convolution. `scratch` must hold at least `output.len()` accumulators.
pub fn transpose_conv_i8(
    g: &ConvGeometry,
    q: &ConvQuantParams,
    input: &[i8],
    filter: &[i8],
    bias: Option<&[i32]>,
    scratch: &mut [i32],
    output: &mut [i8],
) {
    let scratch = &mut scratch[..output.len()];
    scratch.fill(0);
    let input_offset = -q.input_zero_point;
    scatter(g, |o, i, f| {
        scratch[o] = scratch[o]
            .wrapping_add((input[i] as i32 + input_offset).wrapping_mul(filter[f] as i32));
    });
    for (index, (&acc, out)) in scratch.iter().zip(output.iter_mut()).enumerate() {
        let oc = index % g.out_c;
        let mut acc = acc;
        if let Some(bias) = bias {
            acc = acc.wrapping_add(bias[oc]);
        }
        let mut v = multiply_by_quantized_multiplier(acc, q.multipliers[oc], q.shifts[oc]);
        v = v.wrapping_add(q.output_zero_point);
        *out = v.clamp(q.act_min, q.act_max) as i8;
    }
}

/// 16x8 TRANSPOSE_CONV (`reference_integer_ops::TransposeConv` for int16): int16 input and
/// output (zero point 0), int8 per-channel weights, int64 bias, int64 sums. Each
/// output gathers the taps that land on it (the same exact integer sum as LiteRT's scatter, so
/// no accumulator scratch is needed).
pub fn transpose_conv_i16(
    g: &ConvGeometry,
    q: &ConvQuantParams,
    input: &[i16],
    filter: &[i8],
    bias: Option<&[i64]>,
    output: &mut [i16],
) {
    // The input pixel and filter tap of output position `o` along one axis: o + pad = i·s + k.
    let taps = |o: usize, pad: usize, stride: usize, k_len: usize, in_len: usize| {
        (0..k_len).filter_map(move |k| {
            let t = (o + pad).checked_sub(k)?;
            (t % stride == 0 && t / stride < in_len).then_some((t / stride, k))
        })
    };
    for b in 0..g.batches {
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                let out_base = ((b * g.out_h + oy) * g.out_w + ox) * g.out_c;
                for oc in 0..g.out_c {
                    let mut acc = 0i64;
                    for (iy, ky) in taps(oy, g.pad_top, g.stride_h, g.k_h, g.in_h) {
                        for (ix, kx) in taps(ox, g.pad_left, g.stride_w, g.k_w, g.in_w) {
                            let in_base = ((b * g.in_h + iy) * g.in_w + ix) * g.in_c;
                            let f_base = ((oc * g.k_h + ky) * g.k_w + kx) * g.in_c;
                            for ic in 0..g.in_c {
                                acc +=
                                    i64::from(input[in_base + ic]) * i64::from(filter[f_base + ic]);
                            }
                        }
                    }
                    if let Some(bias) = bias {
                        acc = acc.wrapping_add(bias[oc]);
                    }
                    let v =
                        multiply_by_quantized_multiplier_i64(acc, q.multipliers[oc], q.shifts[oc]);
                    output[out_base + oc] = v.clamp(q.act_min, q.act_max) as i16;
                }
            }
        }
    }
}
