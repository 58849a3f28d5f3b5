//! TRANSPOSE_CONV: f32 and int8 with per-channel weights (`reference_ops::TransposeConv`,
//! `reference_integer_ops::TransposeConv`). The geometry's `in_*` is the op's data input and
//! `out_*` its (larger) output.

use crate::frame::{ConvGeometry, ConvQuantParams};
use crate::quant::{clamp_f32, multiply_by_quantized_multiplier};

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
