//! QUANTIZE: f32 → int8/int16 (`AffineQuantize`, f32 division, ties away from zero) and
//! int8/int16 → int8/int16 (`Requantize`: `MultiplyByQuantizedMultiplier(q − zp_in) + zp_out`,
//! clamped to the output type).

use crate::frame::RequantParams;
use crate::quant::{multiply_by_quantized_multiplier, round_f32};

/// f32 → int8.
pub fn quantize_f32_i8(scale: f32, zero_point: i32, input: &[f32], output: &mut [i8]) {
    quantize_f32(scale, zero_point, input, output);
}

/// f32 → int8 or int16: `round(x / scale) + zero_point`, clamped to the type.
pub fn quantize_f32<T: QuantInt>(scale: f32, zero_point: i32, input: &[f32], output: &mut [T]) {
    for (x, y) in input.iter().zip(output.iter_mut()) {
        // `as i32` saturates (C's cast of out-of-range floats is UB; LiteRT's inputs never are).
        let v = (round_f32(*x / scale) as i32).saturating_add(zero_point);
        *y = T::narrow(v.clamp(T::MIN, T::MAX));
    }
}

/// A quantised integer element (int8 or int16): its range and conversions.
pub trait QuantInt: bytemuck::Pod {
    /// Smallest value.
    const MIN: i32;
    /// Largest value.
    const MAX: i32;
    /// The type's name in messages (`int8`).
    const NAME: &'static str;
    /// Widened.
    fn widen(self) -> i32;
    /// Narrowed (the caller clamped `v` to `MIN..=MAX`).
    fn narrow(v: i32) -> Self;
}

macro_rules! quant_int {
    ($($t:ty => $name:literal),*) => {$(
        impl QuantInt for $t {
            const MIN: i32 = <$t>::MIN as i32;
            const MAX: i32 = <$t>::MAX as i32;
            const NAME: &'static str = $name;
            fn widen(self) -> i32 {
                i32::from(self)
            }
            fn narrow(v: i32) -> Self {
                v as $t
            }
        }
    )*};
}

quant_int!(i8 => "int8", i16 => "int16");

/// f32 → int16.
pub fn quantize_f32_i16(scale: f32, zero_point: i32, input: &[f32], output: &mut [i16]) {
    quantize_f32(scale, zero_point, input, output);
}

/// Any of int8/int16 → int8/int16, clamped to `p.act_min..=p.act_max` (the output type's range).
pub fn requantize<I: QuantInt, O: QuantInt>(p: &RequantParams, input: &[I], output: &mut [O]) {
    for (x, y) in input.iter().zip(output.iter_mut()) {
        let v =
            multiply_by_quantized_multiplier(x.widen() - p.input_zero_point, p.multiplier, p.shift)
                .wrapping_add(p.output_zero_point);
        *y = O::narrow(v.clamp(p.act_min, p.act_max));
    }
}
