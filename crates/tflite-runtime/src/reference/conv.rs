//! CONV_2D: f32 and int8 with per-channel weights (`reference_ops::Conv`,
//! `reference_integer_ops::ConvPerChannel`).

use crate::frame::{ConvGeometry, ConvQuantParams};
use crate::quant::multiply_by_quantized_multiplier_i64;
use crate::quant::{clamp_f32, multiply_by_quantized_multiplier};

/// Calls `f(input_offset, filter_offset)` for every kernel tap of output pixel `(b, oy, ox)` that
/// lands inside the image, in (ky, kx) order; each offset starts `in_c` contiguous values, the
/// filter offset within one output channel's `k_h · k_w · in_c` weights.
#[inline]
fn for_each_tap(g: &ConvGeometry, b: usize, oy: usize, ox: usize, mut f: impl FnMut(usize, usize)) {
    let iy0 = (oy * g.stride_h) as isize - g.pad_top as isize;
    let ix0 = (ox * g.stride_w) as isize - g.pad_left as isize;
    for ky in 0..g.k_h {
        let iy = iy0 + (g.dilation_h * ky) as isize;
        if iy < 0 || iy >= g.in_h as isize {
            continue;
        }
        for kx in 0..g.k_w {
            let ix = ix0 + (g.dilation_w * kx) as isize;
            if ix < 0 || ix >= g.in_w as isize {
                continue;
            }
            f(
                ((b * g.in_h + iy as usize) * g.in_w + ix as usize) * g.in_c,
                (ky * g.k_w + kx) * g.in_c,
            );
        }
    }
}

/// f32 convolution: `output = act(Σ input·filter + bias)`, taps outside the image skipped.
pub fn conv2d_f32(
    g: &ConvGeometry,
    act: (f32, f32),
    input: &[f32],
    filter: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    debug_assert_eq!(input.len(), g.batches * g.in_h * g.in_w * g.in_c);
    debug_assert_eq!(filter.len(), g.out_c * g.k_h * g.k_w * g.in_c);
    debug_assert_eq!(output.len(), g.batches * g.out_h * g.out_w * g.out_c);
    for b in 0..g.batches {
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                for oc in 0..g.out_c {
                    let mut total = 0.0f32;
                    let f_oc = oc * g.k_h * g.k_w * g.in_c;
                    for_each_tap(g, b, oy, ox, |in_base, f_base| {
                        let xs = &input[in_base..in_base + g.in_c];
                        let ws = &filter[f_oc + f_base..f_oc + f_base + g.in_c];
                        for (x, w) in xs.iter().zip(ws) {
                            total += x * w;
                        }
                    });
                    let bias_value = bias.map_or(0.0, |bias| bias[oc]);
                    output[((b * g.out_h + oy) * g.out_w + ox) * g.out_c + oc] =
                        clamp_f32(total + bias_value, act.0, act.1);
                }
            }
        }
    }
}

/// Int8 convolution with per-channel requantisation; i32 accumulation with C's wrapping.
pub fn conv2d_i8(
    g: &ConvGeometry,
    q: &ConvQuantParams,
    input: &[i8],
    filter: &[i8],
    bias: Option<&[i32]>,
    output: &mut [i8],
) {
    debug_assert_eq!(input.len(), g.batches * g.in_h * g.in_w * g.in_c);
    debug_assert_eq!(filter.len(), g.out_c * g.k_h * g.k_w * g.in_c);
    debug_assert_eq!(output.len(), g.batches * g.out_h * g.out_w * g.out_c);
    let input_offset = -q.input_zero_point;
    for b in 0..g.batches {
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                for oc in 0..g.out_c {
                    let mut acc = 0i32;
                    let f_oc = oc * g.k_h * g.k_w * g.in_c;
                    for_each_tap(g, b, oy, ox, |in_base, f_base| {
                        let xs = &input[in_base..in_base + g.in_c];
                        let ws = &filter[f_oc + f_base..f_oc + f_base + g.in_c];
                        for (&x, &w) in xs.iter().zip(ws) {
                            acc =
                                acc.wrapping_add((w as i32).wrapping_mul(x as i32 + input_offset));
                        }
                    });
                    if let Some(bias) = bias {
                        acc = acc.wrapping_add(bias[oc]);
                    }
                    let mut v =
                        multiply_by_quantized_multiplier(acc, q.multipliers[oc], q.shifts[oc]);
                    v = v.wrapping_add(q.output_zero_point);
                    v = v.clamp(q.act_min, q.act_max);
                    output[((b * g.out_h + oy) * g.out_w + ox) * g.out_c + oc] = v as i8;
                }
            }
        }
    }
}

/// 16x8 CONV_2D (`reference_integer_ops::ConvPerChannel` for int16): int16 input and output
/// (zero point 0), int8 per-channel weights, int64 bias, int64 accumulator, the
/// int64 [`multiply_by_quantized_multiplier_i64`], no zero-point offsets.
pub fn conv2d_i16(
    g: &ConvGeometry,
    q: &ConvQuantParams,
    input: &[i16],
    filter: &[i8],
    bias: Option<&[i64]>,
    output: &mut [i16],
) {
    for b in 0..g.batches {
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                for oc in 0..g.out_c {
                    let mut acc = 0i64;
                    let f_oc = oc * g.k_h * g.k_w * g.in_c;
                    for_each_tap(g, b, oy, ox, |in_base, f_base| {
                        let xs = &input[in_base..in_base + g.in_c];
                        let ws = &filter[f_oc + f_base..f_oc + f_base + g.in_c];
                        for (&x, &w) in xs.iter().zip(ws) {
                            acc += i64::from(w) * i64::from(x);
                        }
                    });
                    if let Some(bias) = bias {
                        acc = acc.wrapping_add(bias[oc]);
                    }
                    let v =
                        multiply_by_quantized_multiplier_i64(acc, q.multipliers[oc], q.shifts[oc]);
                    output[((b * g.out_h + oy) * g.out_w + ox) * g.out_c + oc] =
                        v.clamp(q.act_min, q.act_max) as i16;
                }
            }
        }
    }
}
