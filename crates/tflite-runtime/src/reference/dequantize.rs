//! DEQUANTIZE int8/int16 → f32: `(f32)((f64)scale · (q − zero_point))`.

use super::quantize::QuantInt;

/// int8 → f32.
pub fn dequantize_i8_f32(scale: f32, zero_point: i32, input: &[i8], output: &mut [f32]) {
    dequantize_f32(scale, zero_point, input, output);
}

/// int16 → f32.
pub fn dequantize_i16_f32(scale: f32, zero_point: i32, input: &[i16], output: &mut [f32]) {
    dequantize_f32(scale, zero_point, input, output);
}

/// int8 or int16 → f32.
pub fn dequantize_f32<T: QuantInt>(scale: f32, zero_point: i32, input: &[T], output: &mut [f32]) {
    let scale = scale as f64;
    for (x, y) in input.iter().zip(output.iter_mut()) {
        *y = (scale * (x.widen() - zero_point) as f64) as f32;
    }
}
