//! The 1×1 convolution (the U-Net's head: 16 channels to one logit per pixel) and its
//! gradients on NCHW f32 slices.
//!
//! burn-flex runs a 1×1 `conv2d` through its general convolution (an unfolded copy of the input
//! and a GEMM with one output row) and its gradients through a transposed convolution and a
//! convolution with the output gradient as the kernel: buffers of the input's size allocated
//! and zeroed on every step, for a layer that is a weighted sum of channels. Here each is one
//! pass over the planes: output rows accumulated channel by channel in blocks that stay in L1,
//! images in parallel, and the weight gradient reduced in a fixed order
//! ([`crate::kernel::ordered_sum`]), so training stays deterministic.

use std::mem::MaybeUninit;

use crate::kernel::{Nchw, build_rows, ordered_sum};

/// Pixels per block of a plane accumulated in place (16 KiB of f32, in L1).
const BLOCK: usize = 4096;

/// `out[b, co] = bias[co] + Σ_ci weight[co, ci] · x[b, ci]` over every pixel; `x` is `shape`,
/// `weight` `[c_out, C_in]`, `bias` `[c_out]`. Returns `[B, c_out, H, W]`.
pub fn conv1x1_forward(
    x: &[f32],
    shape: Nchw,
    weight: &[f32],
    bias: &[f32],
    c_out: usize,
) -> Vec<f32> {
    let (c_in, plane) = (shape.channels, shape.height * shape.width);
    assert_eq!(x.len(), shape.batch * c_in * plane);
    assert_eq!(weight.len(), c_out * c_in);
    assert_eq!(bias.len(), c_out);
    build_rows(shape.batch, c_out * plane, |b, out| {
        let x = &x[b * c_in * plane..][..c_in * plane];
        weighted_channel_sums(x, plane, weight, c_in, Some(bias), out);
    })
}

/// Gradient with respect to `x` (`shape`) from `grad` `[B, c_out, H, W]`:
/// `dx[b, ci] = Σ_co weight[co, ci] · grad[b, co]`.
pub fn conv1x1_input_grad(grad: &[f32], shape: Nchw, weight: &[f32], c_out: usize) -> Vec<f32> {
    let (c_in, plane) = (shape.channels, shape.height * shape.width);
    assert_eq!(grad.len(), shape.batch * c_out * plane);
    assert_eq!(weight.len(), c_out * c_in);
    // The transposed weights `[c_in, c_out]` make it the forward pass of grad.
    let transposed: Vec<f32> = (0..c_in)
        .flat_map(|ci| (0..c_out).map(move |co| (co, ci)))
        .map(|(co, ci)| weight[co * c_in + ci])
        .collect();
    build_rows(shape.batch, c_in * plane, |b, dx| {
        let grad = &grad[b * c_out * plane..][..c_out * plane];
        weighted_channel_sums(grad, plane, &transposed, c_out, None, dx);
    })
}

/// Gradient with respect to the weight, `[c_out, C_in]`:
/// `dw[co, ci] = Σ_b Σ_pixel grad[b, co] · x[b, ci]`, summed image by image in a fixed order.
pub fn conv1x1_weight_grad(x: &[f32], shape: Nchw, grad: &[f32], c_out: usize) -> Vec<f32> {
    let (c_in, plane) = (shape.channels, shape.height * shape.width);
    assert_eq!(x.len(), shape.batch * c_in * plane);
    assert_eq!(grad.len(), shape.batch * c_out * plane);
    if plane == 0 {
        return vec![0.0; c_out * c_in];
    }
    ordered_sum(shape.batch, c_out * c_in, |acc, b, accumulate| {
        let x = &x[b * c_in * plane..][..c_in * plane];
        let grad = &grad[b * c_out * plane..][..c_out * plane];
        for (co, g) in grad.chunks_exact(plane).enumerate() {
            for (ci, x) in x.chunks_exact(plane).enumerate() {
                let d = dot_in_lanes(g, x);
                let slot = &mut acc[co * c_in + ci];
                *slot = if accumulate { *slot + d } else { d };
            }
        }
    })
}

/// One image: `out[o] = bias[o] + Σ_i weight[o, i] · input[i]`, rows of `plane` values
/// (`input` has `inputs` rows, `out` as many as `weight` has rows of `inputs`), every value
/// of `out` written.
fn weighted_channel_sums(
    input: &[f32],
    plane: usize,
    weight: &[f32],
    inputs: usize,
    bias: Option<&[f32]>,
    out: &mut [MaybeUninit<f32>],
) {
    if plane == 0 {
        return;
    }
    let mut sums = [0.0f32; BLOCK];
    for (o, row) in out.chunks_exact_mut(plane).enumerate() {
        let w = &weight[o * inputs..][..inputs];
        let start = bias.map_or(0.0, |bias| bias[o]);
        for (k, dst) in row.chunks_mut(BLOCK).enumerate() {
            let block = &mut sums[..dst.len()];
            block.fill(start);
            for (i, &wi) in w.iter().enumerate() {
                let src = &input[i * plane + k * BLOCK..][..block.len()];
                block.iter_mut().zip(src).for_each(|(d, &s)| *d += wi * s);
            }
            for (d, &s) in dst.iter_mut().zip(block.iter()) {
                d.write(s);
            }
        }
    }
}

/// `Σ a·b` with eight running sums (vectorised, in a fixed order), added at the end.
fn dot_in_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (a, b) in ca.zip(cb) {
        for ((lane, a), b) in lanes.iter_mut().zip(a).zip(b) {
            *lane += a * b;
        }
    }
    for ((lane, a), b) in lanes.iter_mut().zip(ra).zip(rb) {
        *lane += a * b;
    }
    lanes.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{dot, max_abs_diff, random};
    use seeded_rng::SplitMix64;

    #[test]
    fn forward_and_gradients_match_the_definition() {
        let mut rng = SplitMix64::stream(11, 3);
        let mut random = |n: usize| random(n, &mut rng);
        // Planes smaller and larger than a block, one and several output channels.
        for (batch, c_in, c_out, h, w) in [(2, 16, 1, 70, 70), (3, 5, 3, 4, 7), (1, 1, 2, 2, 3)] {
            let shape = Nchw {
                batch,
                channels: c_in,
                height: h,
                width: w,
            };
            let plane = h * w;
            let (x, weight, bias) = (
                random(batch * c_in * plane),
                random(c_out * c_in),
                random(c_out),
            );
            let grad = random(batch * c_out * plane);
            let channel = |t: &[f32], c: usize, channels: usize, b: usize| -> Vec<f32> {
                t[(b * channels + c) * plane..][..plane].to_vec()
            };
            let out = conv1x1_forward(&x, shape, &weight, &bias, c_out);
            let dx = conv1x1_input_grad(&grad, shape, &weight, c_out);
            let dw = conv1x1_weight_grad(&x, shape, &grad, c_out);
            for b in 0..batch {
                for p in 0..plane {
                    for co in 0..c_out {
                        let want = bias[co] as f64
                            + (0..c_in)
                                .map(|ci| {
                                    weight[co * c_in + ci] as f64
                                        * channel(&x, ci, c_in, b)[p] as f64
                                })
                                .sum::<f64>();
                        let got = out[(b * c_out + co) * plane + p] as f64;
                        assert!(
                            (got - want).abs() < 1e-5,
                            "out {b} {co} {p}: {got} vs {want}"
                        );
                    }
                    for ci in 0..c_in {
                        let want: f64 = (0..c_out)
                            .map(|co| {
                                weight[co * c_in + ci] as f64
                                    * channel(&grad, co, c_out, b)[p] as f64
                            })
                            .sum();
                        let got = dx[(b * c_in + ci) * plane + p] as f64;
                        assert!(
                            (got - want).abs() < 1e-5,
                            "dx {b} {ci} {p}: {got} vs {want}"
                        );
                    }
                }
            }
            let want_dw: Vec<f32> = (0..c_out * c_in)
                .map(|k| {
                    let (co, ci) = (k / c_in, k % c_in);
                    (0..batch)
                        .map(|b| dot(&channel(&grad, co, c_out, b), &channel(&x, ci, c_in, b)))
                        .sum::<f64>() as f32
                })
                .collect();
            let tolerance = 1e-5 * (batch * plane) as f32;
            assert!(
                max_abs_diff(&dw, &want_dw) < tolerance,
                "dw {dw:?} vs {want_dw:?}"
            );
        }
    }
}
