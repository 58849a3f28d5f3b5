//! RELU: f32 `max(x, 0)`, int8 `ReluX` (rescale to the output, then clamp at the output's zero).

use crate::frame::RequantParams;
use crate::quant::multiply_by_quantized_multiplier;

/// f32 RELU.
pub fn relu_f32(input: &[f32], output: &mut [f32]) {
    for (x, y) in input.iter().zip(output.iter_mut()) {
        // std::max(0.f, x)
        *y = if 0.0 < *x { *x } else { 0.0 };
    }
}

/// Int8 RELU with rescale.
pub fn relu_i8(p: &RequantParams, input: &[i8], output: &mut [i8]) {
    for (x, y) in input.iter().zip(output.iter_mut()) {
        let v = p
            .output_zero_point
            .wrapping_add(multiply_by_quantized_multiplier(
                *x as i32 - p.input_zero_point,
                p.multiplier,
                p.shift,
            ));
        *y = v.clamp(p.act_min, p.act_max) as i8;
    }
}
