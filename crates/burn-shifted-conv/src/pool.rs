//! The U-Net's 2×2 stride-2 max pooling and its gradient on NCHW f32 slices (even height and
//! width), both parallel over the image planes.
//!
//! The gradient goes to the window's maximum, chosen as burn-flex chooses it, so both give
//! the same gradients: the first element in row-major window order that is greater than the
//! ones before it, or the last NaN. No indices are kept: the backward pass finds the maximum
//! again in the saved input.

use super::kernel::{Nchw, build_rows};

/// Position (0..4, row-major) of the maximum of a 2×2 window, burn-flex's choice.
fn argmax(window: [f32; 4]) -> usize {
    let mut best = 0;
    for (k, v) in window.iter().enumerate().skip(1) {
        if *v > window[best] || v.is_nan() {
            best = k;
        }
    }
    best
}

fn window(plane: &[f32], w: usize, oy: usize, ox: usize) -> [f32; 4] {
    let top = &plane[2 * oy * w + 2 * ox..][..2];
    let bottom = &plane[(2 * oy + 1) * w + 2 * ox..][..2];
    [top[0], top[1], bottom[0], bottom[1]]
}

/// Max pooling of `x` (`shape`, even height and width) to `[B, C, H/2, W/2]`.
pub fn max_pool2x2_forward(x: &[f32], shape: Nchw) -> Vec<f32> {
    let (h, w) = (shape.height, shape.width);
    debug_assert!(h.is_multiple_of(2) && w.is_multiple_of(2));
    let (oh, ow) = (h / 2, w / 2);
    build_rows(shape.batch * shape.channels, oh * ow, |p, out| {
        let plane = &x[p * h * w..][..h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                let v = window(plane, w, oy, ox);
                out[oy * ow + ox].write(v[argmax(v)]);
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
        for oy in 0..oh {
            for ox in 0..ow {
                let k = argmax(window(plane, w, oy, ox));
                for (slot, pos) in [(0, 0), (0, 1), (1, 0), (1, 1)].into_iter().enumerate() {
                    let value = if slot == k { g[oy * ow + ox] } else { 0.0 };
                    dx[(2 * oy + pos.0) * w + 2 * ox + pos.1].write(value);
                }
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
}
