//! The U-Net's 2×2 stride-2 max pooling and its gradient on NCHW f32 slices (even height and
//! width), both parallel over the image planes.
//!
//! The gradient goes to the window's maximum, chosen as burn-flex chooses it, so both give
//! the same gradients: the first element in row-major window order that is greater than the
//! ones before it, or the last NaN. No indices are kept: the backward pass finds the maximum
//! again in the saved input.

use std::mem::MaybeUninit;

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
            route_row(&g[oy * ow..][..ow], top, bottom, dx_top, dx_bottom);
        }
    })
}

/// One row of windows of [`max_pool2x2_input_grad`]: `g[i]` to the maximum of window `i`
/// (`top[2i..2i+2]` over `bottom[2i..2i+2]`), zeros to the other three. Without branches, so
/// that the compiler vectorises it and ReLU outputs' ties and zeros cost no mispredictions.
fn route_row(
    g: &[f32],
    top: &[f32],
    bottom: &[f32],
    dx_top: &mut [MaybeUninit<f32>],
    dx_bottom: &mut [MaybeUninit<f32>],
) {
    let n = g.len();
    let (top, bottom) = (&top[..2 * n], &bottom[..2 * n]);
    let (dx_top, dx_bottom) = (&mut dx_top[..2 * n], &mut dx_bottom[..2 * n]);
    for i in 0..n {
        let (a, b, c, d) = (top[2 * i], top[2 * i + 1], bottom[2 * i], bottom[2 * i + 1]);
        // Which element takes over from the running maximum, as in `window_max`.
        let take_b = (b > a) | b.is_nan();
        let m = if take_b { b } else { a };
        let take_c = (c > m) | c.is_nan();
        let m = if take_c { c } else { m };
        let take_d = (d > m) | d.is_nan();
        let gi = g[i];
        let pick = |k: bool| if k { gi } else { 0.0 };
        dx_top[2 * i].write(pick(!(take_b | take_c | take_d)));
        dx_top[2 * i + 1].write(pick(take_b & !take_c & !take_d));
        dx_bottom[2 * i].write(pick(take_c & !take_d));
        dx_bottom[2 * i + 1].write(pick(take_d));
    }
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
        // Rows of 5 and of 35 windows: shorter than a vector of windows, and vectors plus a
        // remainder.
        for (batch, channels, height, width) in [(2, 3, 6, 10), (1, 2, 4, 70)] {
            let shape = Nchw {
                batch,
                channels,
                height,
                width,
            };
            let (oh, ow) = (height / 2, width / 2);
            // Few distinct values, so ties are common, and some NaNs.
            let x: Vec<f32> = (0..batch * channels * height * width)
                .map(|_| match (rng.uniform(1.0) * 8.0) as i32 {
                    -7 => f32::NAN,
                    v => v as f32,
                })
                .collect();
            assert!(x.iter().any(|v| v.is_nan()));
            let grad: Vec<f32> = (0..x.len() / 4).map(|i| i as f32 + 1.0).collect();
            let y = max_pool2x2_forward(&x, shape);
            let dx = max_pool2x2_input_grad(&x, shape, &grad);
            for p in 0..batch * channels {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let at =
                            |dy: usize, dx: usize| (p * height + 2 * oy + dy) * width + 2 * ox + dx;
                        let cells = [at(0, 0), at(0, 1), at(1, 0), at(1, 1)];
                        let mut best = 0;
                        for k in 1..4 {
                            if x[cells[k]] > x[cells[best]] || x[cells[k]].is_nan() {
                                best = k;
                            }
                        }
                        let o = (p * oh + oy) * ow + ox;
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
}
