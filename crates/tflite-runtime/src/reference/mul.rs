//! MUL: f32 and int8 with broadcasting (`reference_integer_ops::MulElementwise`).

use crate::frame::{BroadcastLayout, MulQuantParams};
use crate::quant::{clamp_f32, multiply_by_quantized_multiplier};

/// f32 MUL.
pub fn mul_f32(
    layout: &BroadcastLayout,
    act: (f32, f32),
    input1: &[f32],
    input2: &[f32],
    output: &mut [f32],
) {
    layout.for_each(|o, a, b| output[o] = clamp_f32(input1[a] * input2[b], act.0, act.1));
}

/// Int8 MUL.
pub fn mul_i8(
    layout: &BroadcastLayout,
    p: &MulQuantParams,
    input1: &[i8],
    input2: &[i8],
    output: &mut [i8],
) {
    layout.for_each(|o, a, b| {
        let x1 = p.input1_offset + input1[a] as i32;
        let x2 = p.input2_offset + input2[b] as i32;
        let v = p
            .output_offset
            .wrapping_add(multiply_by_quantized_multiplier(
                x1 * x2,
                p.output_multiplier,
                p.output_shift,
            ));
        output[o] = v.clamp(p.act_min, p.act_max) as i8;
    });
}

/// int32 MUL (shape arithmetic), wrapping like C.
pub fn mul_i32(layout: &BroadcastLayout, input1: &[i32], input2: &[i32], output: &mut [i32]) {
    layout.for_each(|o, a, b| output[o] = input1[a].wrapping_mul(input2[b]));
}
