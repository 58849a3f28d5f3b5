//! MAX_POOL_2D and AVERAGE_POOL_2D, f32 and int8 (`reference_ops::MaxPool`/`AveragePool`,
//! `reference_integer_ops::MaxPool`/`AveragePool`). Windows are clipped to the image; int8
//! values are pooled raw, without a rescale.

use super::quantize::QuantInt;
use crate::frame::PoolGeometry;
use crate::quant::clamp_f32;

/// Visits every output element with its clipped window: `f(out_index, window)` where `window`
/// yields the input element indices inside the image.
#[inline]
fn for_each_window(g: &PoolGeometry, mut f: impl FnMut(usize, &mut dyn Iterator<Item = usize>)) {
    for b in 0..g.batches {
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                for c in 0..g.channels {
                    let iy0 = (oy * g.stride_h) as isize - g.pad_top as isize;
                    let ix0 = (ox * g.stride_w) as isize - g.pad_left as isize;
                    let fy_start = (-iy0).max(0) as usize;
                    let fy_end = (g.filter_h as isize).min(g.in_h as isize - iy0).max(0) as usize;
                    let fx_start = (-ix0).max(0) as usize;
                    let fx_end = (g.filter_w as isize).min(g.in_w as isize - ix0).max(0) as usize;
                    let mut window = (fy_start..fy_end).flat_map(move |fy| {
                        (fx_start..fx_end).map(move |fx| {
                            let iy = (iy0 + fy as isize) as usize;
                            let ix = (ix0 + fx as isize) as usize;
                            ((b * g.in_h + iy) * g.in_w + ix) * g.channels + c
                        })
                    });
                    let out_index = ((b * g.out_h + oy) * g.out_w + ox) * g.channels + c;
                    f(out_index, &mut window);
                }
            }
        }
    }
}

/// f32 max pool.
pub fn max_pool_f32(g: &PoolGeometry, act: (f32, f32), input: &[f32], output: &mut [f32]) {
    for_each_window(g, |o, window| {
        let mut max = f32::MIN;
        for i in window {
            // std::max(max, x): keeps `max` unless x is larger.
            if max < input[i] {
                max = input[i];
            }
        }
        output[o] = clamp_f32(max, act.0, act.1);
    });
}

/// Int8 max pool.
pub fn max_pool_i8(g: &PoolGeometry, act: (i32, i32), input: &[i8], output: &mut [i8]) {
    max_pool_int(g, act, input, output);
}

/// Int8 or int16 max pool, clamped to the fused activation's range.
fn max_pool_int<T: QuantInt>(g: &PoolGeometry, act: (i32, i32), input: &[T], output: &mut [T]) {
    for_each_window(g, |o, window| {
        let mut max = T::MIN;
        for i in window {
            max = max.max(input[i].widen());
        }
        output[o] = T::narrow(max.clamp(act.0, act.1));
    });
}

/// Int16 max pool (16x8 models), clamped to the fused activation's range.
pub fn max_pool_i16(g: &PoolGeometry, act: (i32, i32), input: &[i16], output: &mut [i16]) {
    max_pool_int(g, act, input, output);
}

/// f32 average pool over the in-image part of each window.
pub fn average_pool_f32(g: &PoolGeometry, act: (f32, f32), input: &[f32], output: &mut [f32]) {
    for_each_window(g, |o, window| {
        let mut total = 0.0f32;
        let mut count = 0.0f32;
        for i in window {
            total += input[i];
            count += 1.0;
        }
        output[o] = clamp_f32(total / count, act.0, act.1);
    });
}

/// Int8 average pool: integer mean rounded half away from zero (C's truncating division).
pub fn average_pool_i8(g: &PoolGeometry, act: (i32, i32), input: &[i8], output: &mut [i8]) {
    for_each_window(g, |o, window| {
        let mut acc = 0i64;
        let mut count = 0i64;
        for i in window {
            acc += input[i] as i64;
            count += 1;
        }
        debug_assert!(count > 0, "validated in new()");
        let count = count.max(1);
        let mean = if acc > 0 {
            (acc + count / 2) / count
        } else {
            (acc - count / 2) / count
        };
        output[o] = mean.clamp(act.0 as i64, act.1 as i64) as i8;
    });
}
