//! LOGISTIC: f32 (`reference_ops::Logistic`, with its cut-offs), int8 through the 256-entry
//! table LiteRT builds in `SigmoidPrepare` (`LUTPopulate`), and int16 (16x8 models) through
//! `reference_integer_ops::Logistic`'s interpolated table of sigmoid(i/24) in 0.16 fixed point.
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

/// LiteRT's int16 sigmoid table (`sigmoid_table_uint16`): sigmoid(i / 24) in unsigned 0.16
/// fixed point, i = 0..=255. These are its numbers, not `round(65536 · sigmoid(i / 24))`: 44
/// entries are one above that (e.g. i = 4: 35493, not 35492), and computing the table made
/// 10 % of all int16 inputs 1 LSB off LiteRT's output.
pub const SIGMOID_TABLE_U16: [u16; 256] = [
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794,
    41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443,
    48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169, 53581, 53983, 54374,
    54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433, 57724, 58007, 58280, 58544,
    58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110, 61279,
    61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990,
    63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030,
    64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652,
    64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019,
    65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234,
    65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360,
    65367, 65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476,
    65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498, 65500, 65501,
    65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516,
    65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529,
    65529, 65530, 65530, 65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532,
    65532, 65532, 65532, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65534, 65534,
    65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
];

/// The input rescaling of the int16 LOGISTIC (`SigmoidPrepare`): `(multiplier, left_shift)`
/// with `multiplier = 0` when the input scale is a power of two that needs no rescaling.
pub fn logistic_i16_params(input_scale: f32) -> (i32, i32) {
    const INPUT_INTEGER_BITS: i32 = 3;
    let (log2, pot) = checked_log2(input_scale);
    let left_shift = (15 - INPUT_INTEGER_BITS) + log2;
    if pot && left_shift == 0 {
        return (0, 0);
    }
    // Rescale the input to 1/(3·4096): ±2^17 then spans ±10.7.
    let mut multiplier = f64::from(input_scale) * 4096.0 * 3.0;
    let mut left_shift = 0;
    while multiplier <= 32767.0 / 2.0 && left_shift <= 30 {
        left_shift += 1;
        multiplier *= 2.0;
    }
    (multiplier as i32, left_shift)
}

/// `CheckedLog2`: log2(x) rounded, and whether x is within 1e-3 (in log2) of that power of two.
pub fn checked_log2(x: f32) -> (i32, bool) {
    let log2 = x.ln() * (1.0f32 / 2.0f32.ln());
    let rounded = log2.round();
    (rounded as i32, (log2 - rounded).abs() < 1e-3)
}

/// Int16 logistic (input zero point 0, output scale 2^-15 and zero point 0).
pub fn logistic_i16(multiplier: i32, left_shift: i32, input: &[i16], output: &mut [i16]) {
    let (multiplier, left_shift) = if multiplier == 0 {
        (3 << left_shift, 0)
    } else {
        (multiplier, left_shift)
    };
    let round = if left_shift > 0 {
        1i32 << (left_shift - 1)
    } else {
        0
    };
    for (x, y) in input.iter().zip(output.iter_mut()) {
        let v = (i32::from(*x).wrapping_mul(multiplier).wrapping_add(round)) >> left_shift;
        let a = v.unsigned_abs();
        let uh = a >> 9;
        let mut r: u32 = if uh >= 255 {
            0x7FFF << 10
        } else {
            let ua = u32::from(SIGMOID_TABLE_U16[uh as usize]);
            let ub = u32::from(SIGMOID_TABLE_U16[uh as usize + 1]);
            let ut = a & 0x1FF;
            (ua << 9).wrapping_add(ut.wrapping_mul(ub.wrapping_sub(ua)))
        };
        r = if v >= 0 {
            r.wrapping_add(1 << 9)
        } else {
            (1u32 << (16 + 9))
                .wrapping_sub(r)
                .wrapping_add(1 << 9)
                .wrapping_sub(1)
        };
        *y = (r >> 10) as i16;
    }
}
