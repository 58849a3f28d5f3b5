//! LOGISTIC: f32 (`reference_ops::Logistic`, with its cut-offs) and int8 through the 256-entry
//! table LiteRT builds in `SigmoidPrepare` (`LUTPopulate`).
//!
//! `f32::exp` on linux-gnu lowers to the C library's `expf` (glibc), the same function LiteRT's
//! `std::exp(float)` calls; the bit-exactness suite sweeps all 256 inputs for several scales.

use crate::quant::round_f32;

/// f32 logistic.
pub fn logistic_f32(input: &[f32], output: &mut [f32]) {
    const CUTOFF_UPPER: f32 = 16.619_047;
    const CUTOFF_LOWER: f32 = -9.0;
    for (x, y) in input.iter().zip(output.iter_mut()) {
        let v = *x;
        *y = if v > CUTOFF_UPPER {
            1.0
        } else if v < CUTOFF_LOWER {
            v.exp()
        } else {
            1.0 / (1.0 + (-v).exp())
        };
    }
}

/// The int8 lookup table, indexed by `(input as u8)`.
pub fn logistic_lut_i8(
    input_scale: f32,
    input_zero_point: i32,
    output_scale: f32,
    output_zero_point: i32,
) -> [i8; 256] {
    let inverse_scale = 1.0f32 / output_scale;
    let mut lut = [0i8; 256];
    for v in i8::MIN as i32..=i8::MAX as i32 {
        let dequantized = input_scale * (v - input_zero_point) as f32;
        let transformed = 1.0f32 / (1.0f32 + (-dequantized).exp());
        let rescaled = round_f32(transformed * inverse_scale);
        let quantized = (rescaled + output_zero_point as f32) as i32;
        lut[(v as i8) as u8 as usize] = quantized.clamp(i8::MIN as i32, i8::MAX as i32) as i8;
    }
    lut
}

/// Int8 logistic through the table.
pub fn logistic_i8(lut: &[i8; 256], input: &[i8], output: &mut [i8]) {
    for (x, y) in input.iter().zip(output.iter_mut()) {
        *y = lut[*x as u8 as usize];
    }
}
