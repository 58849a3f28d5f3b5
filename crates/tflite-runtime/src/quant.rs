//! Integer requantisation arithmetic, exactly as LiteRT's default (double-rounding) build does it.
//!
//! The integer rescale of TFLite's reference kernels: `QuantizeMultiplier`, gemmlowp's
//! `SaturatingRoundingDoublingHighMul` and `RoundingDivideByPOT`, and the activation clamps.

use tflite_writer::Activation;

/// A real multiplier in fixed point: `m ≈ multiplier · 2^(shift − 31)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantizedMultiplier {
    /// Q31 mantissa in [2^30, 2^31) (or 0).
    pub multiplier: i32,
    /// Power-of-two exponent; positive means a left shift.
    pub shift: i32,
}

/// `QuantizeMultiplier`: split a positive real multiplier into a Q31 mantissa and an exponent.
/// Ties of the mantissa round away from zero (`std::round`).
pub fn quantize_multiplier(real: f64) -> QuantizedMultiplier {
    if real == 0.0 || !real.is_finite() {
        return QuantizedMultiplier {
            multiplier: 0,
            shift: 0,
        };
    }
    let (q, mut exponent) = frexp(real);
    let mut q_fixed = (q * 2147483648.0).round() as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        exponent += 1;
    }
    if exponent < -31 {
        return QuantizedMultiplier {
            multiplier: 0,
            shift: 0,
        };
    }
    QuantizedMultiplier {
        multiplier: q_fixed as i32,
        shift: exponent,
    }
}

/// C's `frexp` for finite non-zero values: `x = q · 2^e` with `|q|` in [0.5, 1).
fn frexp(x: f64) -> (f64, i32) {
    let bits = x.to_bits();
    let exp_bits = ((bits >> 52) & 0x7ff) as i32;
    if exp_bits == 0 {
        // Subnormal: scale up into the normal range first.
        let (q, e) = frexp(x * f64::from_bits(0x4350_0000_0000_0000)); // 2^54
        return (q, e - 54);
    }
    let exponent = exp_bits - 1022;
    let mantissa_bits = (bits & !(0x7ffu64 << 52)) | (1022u64 << 52);
    (f64::from_bits(mantissa_bits), exponent)
}

/// gemmlowp `SaturatingRoundingDoublingHighMul`.
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == b && a == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // Truncating division, as in C.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp `RoundingDivideByPOT`: ties round away from zero.
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    debug_assert!((0..=31).contains(&exponent));
    let mask: i32 = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// `MultiplyByQuantizedMultiplier` (double rounding).
#[inline]
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left_shift = shift.max(0);
    let right_shift = (-shift).max(0);
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x.wrapping_mul(1i32 << left_shift), multiplier),
        right_shift,
    )
}

/// `MultiplyByQuantizedMultiplierSmallerThanOneExp` (the shift must be ≤ 0).
#[inline]
pub fn multiply_by_quantized_multiplier_smaller_than_one(
    x: i32,
    multiplier: i32,
    shift: i32,
) -> i32 {
    debug_assert!(shift <= 0);
    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), -shift)
}

/// `TfLiteRound` on f32: `roundf`, ties away from zero.
#[inline]
pub fn round_f32(x: f32) -> f32 {
    x.round()
}

/// Clamp range of a fused activation on a quantised int8 output
/// (`CalculateActivationRangeQuantized`). `None` for activations without a clamp form
/// (TANH, SIGN_BIT).
pub fn activation_range_i8(
    activation: Activation,
    output_scale: f32,
    output_zero_point: i32,
) -> Option<(i32, i32)> {
    activation_range_quantized(
        activation,
        output_scale,
        output_zero_point,
        (i8::MIN as i32, i8::MAX as i32),
    )
}

/// [`activation_range_i8`] for an output type whose values span `limits` (int16: ±32767/−32768).
pub fn activation_range_quantized(
    activation: Activation,
    output_scale: f32,
    output_zero_point: i32,
    limits: (i32, i32),
) -> Option<(i32, i32)> {
    let (qmin, qmax) = limits;
    // In i64 and saturated: a zero point far outside int8 (which a malformed model can hold)
    // must give an empty or clamped range, not an overflow.
    let quantize = |f: f32| {
        // `as i64` saturates an infinite quotient (a tiny scale); the sum saturates too.
        let q = i64::from(output_zero_point).saturating_add(round_f32(f / output_scale) as i64);
        q.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
    };
    match activation {
        Activation::None => Some((qmin, qmax)),
        Activation::Relu => Some((qmin.max(quantize(0.0)), qmax)),
        Activation::Relu6 => Some((qmin.max(quantize(0.0)), qmax.min(quantize(6.0)))),
        Activation::ReluN1To1 => Some((qmin.max(quantize(-1.0)), qmax.min(quantize(1.0)))),
        Activation::Tanh | Activation::SignBit => None,
    }
}

/// Clamp range of a fused activation on an f32 output (`CalculateActivationRange`).
pub fn activation_range_f32(activation: Activation) -> Option<(f32, f32)> {
    match activation {
        Activation::None => Some((f32::MIN, f32::MAX)),
        Activation::Relu => Some((0.0, f32::MAX)),
        Activation::Relu6 => Some((0.0, 6.0)),
        Activation::ReluN1To1 => Some((-1.0, 1.0)),
        Activation::Tanh | Activation::SignBit => None,
    }
}

/// `ActivationFunctionWithMinMax` for f32.
#[inline]
pub fn clamp_f32(x: f32, lo: f32, hi: f32) -> f32 {
    // C++ std::min(std::max(x, lo), hi); NaN passes through max() as lo.
    let y = if x < lo { lo } else { x };
    if hi < y { hi } else { y }
}

/// `MultiplyByQuantizedMultiplier` for the int64 accumulators of 16x8 kernels: the multiplier
/// reduced to 16 bits (`(m + 2^15) >> 16`, or 0x7FFF at the top), one rounding shift by
/// `15 − shift`. The result saturates to i32 where LiteRT asserts it fits.
pub fn multiply_by_quantized_multiplier_i64(x: i64, multiplier: i32, shift: i32) -> i32 {
    QuantizedMultiplierI64::new(multiplier, shift).apply(x)
}

/// The constants of [`multiply_by_quantized_multiplier_i64`] for one multiplier and shift,
/// computed once (the fast 16x8 kernels keep one per output channel):
/// `apply(x) = sat_i32((x · reduced + round) >> total_shift)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantizedMultiplierI64 {
    /// The multiplier reduced to 16 bits.
    pub reduced: i64,
    /// `15 − shift`, kept in `[1, 62]`.
    pub total_shift: u32,
    /// `2^(total_shift − 1)`.
    pub round: i64,
}

impl QuantizedMultiplierI64 {
    /// The constants for `multiplier` and `shift`.
    pub fn new(multiplier: i32, shift: i32) -> Self {
        let reduced = if multiplier < 0x7FFF_0000 {
            (i64::from(multiplier) + (1 << 15)) >> 16
        } else {
            0x7FFF
        };
        let total_shift = (15 - shift).clamp(1, 62) as u32;
        Self {
            reduced,
            total_shift,
            round: 1i64 << (total_shift - 1),
        }
    }

    /// The requantised value, saturated to i32.
    #[inline]
    pub fn apply(self, x: i64) -> i32 {
        let v = x.wrapping_mul(self.reduced).wrapping_add(self.round) >> self.total_shift;
        v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_multiplier_examples() {
        // 0.5 = 0.5·2^0 → 2^30, shift 0.
        assert_eq!(
            quantize_multiplier(0.5),
            QuantizedMultiplier {
                multiplier: 1 << 30,
                shift: 0
            }
        );
        // 1.0 = 0.5·2^1.
        assert_eq!(
            quantize_multiplier(1.0),
            QuantizedMultiplier {
                multiplier: 1 << 30,
                shift: 1
            }
        );
        // Just below 1: the mantissa rounds up to 2^31 and is renormalised.
        let m = quantize_multiplier(1.0 - 1e-12);
        assert_eq!(m.multiplier, 1 << 30);
        assert_eq!(m.shift, 1);
        assert_eq!(quantize_multiplier(0.0).multiplier, 0);
        // Far too small: flushed to zero.
        assert_eq!(quantize_multiplier(1e-12).multiplier, 0);
    }

    #[test]
    fn frexp_matches_definition() {
        for x in [1e-310, 3.0e-5, 0.75, 1.0, 1234.5, 7.0e20] {
            let (q, e) = frexp(x);
            assert!((0.5..1.0).contains(&q), "{x}: {q}");
            assert_eq!(q * 2f64.powi(e + 200) * 2f64.powi(-200), x);
        }
    }

    #[test]
    fn rounding_divide_ties_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(4, 1), 2);
        assert_eq!(rounding_divide_by_pot(-7, 2), -2);
        assert_eq!(rounding_divide_by_pot(-6, 2), -2);
        assert_eq!(rounding_divide_by_pot(7, 0), 7);
    }

    #[test]
    fn srdhm_saturates_and_rounds() {
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        // (2^30 · 2^30 · 2) / 2^32 = 2^29.
        assert_eq!(
            saturating_rounding_doubling_high_mul(1 << 30, 1 << 30),
            1 << 29
        );
        // Negative products: nudge 1 − 2^30 and truncating division.
        assert_eq!(saturating_rounding_doubling_high_mul(-1, 1 << 30), 0);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
    }

    #[test]
    fn activation_ranges() {
        assert_eq!(
            activation_range_i8(Activation::Relu, 0.1, -5),
            Some((-5, 127))
        );
        assert_eq!(
            activation_range_i8(Activation::Relu6, 0.1, -128),
            Some((-128, -68))
        );
        assert_eq!(
            activation_range_i8(Activation::ReluN1To1, 0.01, 0),
            Some((-100, 100))
        );
        assert_eq!(activation_range_i8(Activation::Tanh, 0.01, 0), None);
    }

    #[test]
    fn activation_range_of_an_absurd_zero_point_does_not_overflow() {
        // Found by the `runtime_invoke` fuzz target: zero point near i32::MAX with a ReLU.
        // (Wrapping arithmetic, as in a release build, gave a negative upper bound.)
        let (lo, hi) = activation_range_i8(Activation::Relu6, 1e-3, i32::MAX).unwrap();
        assert_eq!(
            (lo, hi),
            (i32::MAX, 127),
            "an empty range, which `prepare` refuses"
        );
        let (lo, _) = activation_range_i8(Activation::Relu, 1e-3, i32::MIN).unwrap();
        assert_eq!(lo, -128);
        // A scale so small that 6 / scale is infinite, with a positive zero point.
        let (_, hi) = activation_range_i8(Activation::Relu6, f32::MIN_POSITIVE / 4.0, 5).unwrap();
        assert_eq!(hi, 127);
    }

    #[test]
    fn i64_multiplier_rounds_half_up_with_the_reduced_multiplier() {
        // 0.5 as Q31 (1 << 30, shift 0): reduced to 1 << 14, total shift 15.
        assert_eq!(multiply_by_quantized_multiplier_i64(3, 1 << 30, 0), 2); // 1.5 → 2
        assert_eq!(multiply_by_quantized_multiplier_i64(-3, 1 << 30, 0), -1); // −1.5 → −1
        assert_eq!(
            multiply_by_quantized_multiplier_i64(1 << 40, 1 << 30, 0),
            i32::MAX
        );
        assert_eq!(
            multiply_by_quantized_multiplier_i64(1 << 20, 1 << 30, 0),
            1 << 19
        );
        // At the top the multiplier saturates to 0x7FFF.
        assert_eq!(
            multiply_by_quantized_multiplier_i64(1 << 15, i32::MAX, 0),
            0x7FFF
        );
        // Left shifts, and saturation instead of an overflow.
        assert_eq!(multiply_by_quantized_multiplier_i64(5, 1 << 30, 2), 10);
        assert_eq!(
            multiply_by_quantized_multiplier_i64(1 << 46, i32::MAX, 7),
            i32::MAX
        );
    }
}
