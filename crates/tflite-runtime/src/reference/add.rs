//! ADD: f32 and int8 with broadcasting (`reference_ops::Add`/`BroadcastAdd6DSlow`,
//! `reference_integer_ops::AddElementwise`: inputs shifted left by 20, each scaled below one,
//! summed, scaled to the output).

use crate::frame::{AddQuantParams, BroadcastLayout};
use crate::quant::{clamp_f32, multiply_by_quantized_multiplier_smaller_than_one};

/// f32 ADD.
pub fn add_f32(
    layout: &BroadcastLayout,
    act: (f32, f32),
    input1: &[f32],
    input2: &[f32],
    output: &mut [f32],
) {
    layout.for_each(|o, a, b| output[o] = clamp_f32(input1[a] + input2[b], act.0, act.1));
}

/// Int8 ADD of one pair of values.
#[inline]
pub fn add_i8_value(p: &AddQuantParams, x1: i8, x2: i8) -> i8 {
    let input1_val = p.input1_offset + x1 as i32;
    let input2_val = p.input2_offset + x2 as i32;
    let shifted1 = input1_val.wrapping_mul(1 << p.left_shift);
    let shifted2 = input2_val.wrapping_mul(1 << p.left_shift);
    let scaled1 = multiply_by_quantized_multiplier_smaller_than_one(
        shifted1,
        p.input1_multiplier,
        p.input1_shift,
    );
    let scaled2 = multiply_by_quantized_multiplier_smaller_than_one(
        shifted2,
        p.input2_multiplier,
        p.input2_shift,
    );
    let raw_sum = scaled1.wrapping_add(scaled2);
    let raw_output = multiply_by_quantized_multiplier_smaller_than_one(
        raw_sum,
        p.output_multiplier,
        p.output_shift,
    )
    .wrapping_add(p.output_offset);
    raw_output.clamp(p.act_min, p.act_max) as i8
}

/// Int8 ADD.
pub fn add_i8(
    layout: &BroadcastLayout,
    p: &AddQuantParams,
    input1: &[i8],
    input2: &[i8],
    output: &mut [i8],
) {
    layout.for_each(|o, a, b| output[o] = add_i8_value(p, input1[a], input2[b]));
}

/// int32 ADD (shape arithmetic), wrapping like C.
pub fn add_i32(layout: &BroadcastLayout, input1: &[i32], input2: &[i32], output: &mut [i32]) {
    layout.for_each(|o, a, b| output[o] = input1[a].wrapping_add(input2[b]));
}
