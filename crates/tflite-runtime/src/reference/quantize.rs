//! QUANTIZE: f32 → int8 (`AffineQuantize`, f32 division, ties away from zero) and int8 → int8
//! (`Requantize`).

use crate::frame::RequantParams;
use crate::quant::{multiply_by_quantized_multiplier, round_f32};

/// f32 → int8.
pub fn quantize_f32_i8(scale: f32, zero_point: i32, input: &[f32], output: &mut [i8]) {
    for (x, y) in input.iter().zip(output.iter_mut()) {
        // `as i32` saturates (C's cast of out-of-range floats is UB; LiteRT's inputs never are).
        let v = (round_f32(*x / scale) as i32).saturating_add(zero_point);
        *y = v.clamp(i8::MIN as i32, i8::MAX as i32) as i8;
    }
}

/// int8 → int8 with a new scale and zero point.
pub fn requantize_i8(p: &RequantParams, input: &[i8], output: &mut [i8]) {
    for (x, y) in input.iter().zip(output.iter_mut()) {
        let v =
            multiply_by_quantized_multiplier(*x as i32 - p.input_zero_point, p.multiplier, p.shift)
                .wrapping_add(p.output_zero_point);
        *y = v.clamp(p.act_min, p.act_max) as i8;
    }
}
