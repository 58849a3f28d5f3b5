//! The U-Net's 2×2 stride-2 max pooling and its gradient on NCHW f32 slices (even height and
//! width), both parallel over the image planes.
//!
//! The gradient goes to the window's maximum, chosen as burn-flex chooses it, so both give
//! the same gradients: the first element in row-major window order that is greater than the
//! ones before it, or the last NaN. No indices are kept: the backward pass finds the maximum
//! again in the saved input.

use super::kernel::{Nchw, build_rows};

/// burn-flex's rule for a window's maximum, scanned in row-major order: `v` takes over from
/// the running maximum `m` when it is greater, or NaN (so ties keep the first, NaNs the last).
fn takes_over(m: f32, v: f32) -> bool {
    v > m || v.is_nan()
}

/// The maximum of the window `[top[0], top[1], bottom[0], bottom[1]]` and its position
/// (0..4, row-major), as selects the compiler vectorises across windows.
fn window_max(top: &[f32], bottom: &[f32]) -> (f32, u32) {
    let (mut m, mut k) = (top[0], 0);
    for (i, v) in [(1, top[1]), (2, bottom[0]), (3, bottom[1])] {
        let take = takes_over(m, v);
        m = if take { v } else { m };
        k = if take { i } else { k };
    }
    (m, k)
}

/// Max pooling of `x` (`shape`, even height and width) to `[B, C, H/2, W/2]`.
pub fn max_pool2x2_forward(x: &[f32], shape: Nchw) -> Vec<f32> {
    let (h, w) = (shape.height, shape.width);
    debug_assert!(h.is_multiple_of(2) && w.is_multiple_of(2));
    let (oh, ow) = (h / 2, w / 2);
    build_rows(shape.batch * shape.channels, oh * ow, |p, out| {
        let plane = &x[p * h * w..][..h * w];
        for (oy, out_row) in out.chunks_exact_mut(ow).enumerate() {
            let (top, bottom) = plane[2 * oy * w..][..2 * w].split_at(w);
            let windows = top.chunks_exact(2).zip(bottom.chunks_exact(2));
            for (o, (t, b)) in out_row.iter_mut().zip(windows) {
                o.write(window_max(t, b).0);
            }
        }
    })
}

/// Gradient with respect to the input: `grad` (`[B, C, H/2, W/2]`) routed to each window's
/// maximum in `x`, zeros elsewhere.
pub fn max_pool2x2_input_grad(x: &[f32], shape: Nchw, grad: &[f32]) -> Vec<f32> {
    let (h, w) = (shape.height, shape.width);
    debug_assert!(h.is_multiple_of(2) && w.is_multiple_of(2));
    let (oh, ow) = (h / 2, w / 2);
    build_rows(shape.batch * shape.channels, h * w, |p, dx| {
        let plane = &x[p * h * w..][..h * w];
        let g = &grad[p * oh * ow..][..oh * ow];
        for (oy, dx_rows) in dx.chunks_exact_mut(2 * w).enumerate() {
            let (top, bottom) = plane[2 * oy * w..][..2 * w].split_at(w);
            let (dx_top, dx_bottom) = dx_rows.split_at_mut(w);
            let windows = top.chunks_exact(2).zip(bottom.chunks_exact(2));
            let slots = dx_top
                .chunks_exact_mut(2)
                .zip(dx_bottom.chunks_exact_mut(2));
            for ((g, (t, b)), (dt, db)) in g[oy * ow..][..ow].iter().zip(windows).zip(slots) {
                let k = window_max(t, b).1;
                dt[0].write(if k == 0 { *g } else { 0.0 });
                dt[1].write(if k == 1 { *g } else { 0.0 });
                db[0].write(if k == 2 { *g } else { 0.0 });
                db[1].write(if k == 3 { *g } else { 0.0 });
            }
        }
    })
}

/// Whether the fast path applies: even height and width.
pub fn supports(shape: Nchw) -> bool {
    shape.height.is_multiple_of(2) && shape.width.is_multiple_of(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_and_gradient_follow_burn_flex_tie_and_nan_rules() {
        // One image, two channels, 2×4: windows with a clear maximum, a four-way tie, a tie
        // between the last two, and NaNs.
        let nan = f32::NAN;
        let x = vec![
            1.0, 5.0, 0.0, 0.0, //
            2.0, 3.0, 0.0, 0.0, //
            7.0, nan, 4.0, 4.0, //
            nan, 1.0, 3.0, 4.0, //
        ];
        let shape = Nchw {
            batch: 1,
            channels: 2,
            height: 2,
            width: 4,
        };
        let y = max_pool2x2_forward(&x, shape);
        assert_eq!(y[0], 5.0);
        assert_eq!(y[1], 0.0);
        assert!(y[2].is_nan());
        assert_eq!(y[3], 4.0);
        let dx = max_pool2x2_input_grad(&x, shape, &[10.0, 20.0, 30.0, 40.0]);
        let expected = [
            0.0, 10.0, 20.0, 0.0, // tie of zeros: the first
            0.0, 0.0, 0.0, 0.0, //
            0.0, 0.0, 40.0, 0.0, // NaNs: the last one (bottom-left); 4.0 tie: the first
            30.0, 0.0, 0.0, 0.0, //
        ];
        assert_eq!(dx, expected);
        // Every output is a window maximum, every gradient lands on exactly one element.
        let total: f32 = dx.iter().sum();
        assert_eq!(total, 100.0);
    }

    #[test]
    fn pooling_matches_a_scalar_scan_on_random_planes_with_ties_and_nans() {
        let mut rng = seeded_rng::SplitMix64::stream(11, 2);
        let shape = Nchw {
            batch: 2,
            channels: 3,
            height: 6,
            width: 10,
        };
        // Few distinct values, so ties are common, and some NaNs.
        let x: Vec<f32> = (0..shape.batch * shape.channels * 60)
            .map(|_| match (rng.uniform(1.0) * 8.0) as i32 {
                -7 => f32::NAN,
                v => v as f32,
            })
            .collect();
        assert!(x.iter().any(|v| v.is_nan()));
        let grad: Vec<f32> = (0..x.len() / 4).map(|i| i as f32 + 1.0).collect();
        let y = max_pool2x2_forward(&x, shape);
        let dx = max_pool2x2_input_grad(&x, shape, &grad);
        for p in 0..shape.batch * shape.channels {
            for oy in 0..3 {
                for ox in 0..5 {
                    let at = |dy: usize, dx: usize| p * 60 + (2 * oy + dy) * 10 + 2 * ox + dx;
                    let cells = [at(0, 0), at(0, 1), at(1, 0), at(1, 1)];
                    let mut best = 0;
                    for k in 1..4 {
                        if x[cells[k]] > x[cells[best]] || x[cells[k]].is_nan() {
                            best = k;
                        }
                    }
                    let o = p * 15 + oy * 5 + ox;
                    assert_eq!(y[o].to_bits(), x[cells[best]].to_bits(), "window {o}");
                    for (k, cell) in cells.iter().enumerate() {
                        let expected = if k == best { grad[o] } else { 0.0 };
                        assert_eq!(dx[*cell], expected, "window {o} cell {k}");
                    }
                }
            }
        }
    }
}
