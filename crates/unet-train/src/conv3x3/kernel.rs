//! The 3×3 "same" convolution (stride 1, padding 1) and its two gradients on NCHW f32 slices,
//! as sums of nine shifted GEMMs (the gemm crate, the one burn-flex uses) without im2col.
//!
//! Per image, the input is zero-padded to `(H+2)×(W+2)` and flattened per channel. An output
//! row computed over the padded width `W+2` (its last two columns are discarded) reads, for
//! tap `(dy, dx)`, the padded input shifted by `dy·(W+2)+dx` with unit stride, so every tap is
//! one GEMM `[C_out, C_in] × [C_in, H·(W+2)]` straight out of the padded buffer:
//! - forward: `Y = Σ_tap W_tap · shift_tap(X_pad)`;
//! - input gradient: the same convolution of `dY` with the kernel transposed over channels
//!   and flipped in space;
//! - weight gradient: `dW_tap = Σ_images dY_w · shift_tap(X_pad)ᵀ`, where `dY_w` is `dY` on
//!   the padded width with zeros in the extra columns (so they add nothing).
//!
//! Images run in parallel (rayon) when there are at least as many as threads; otherwise the
//! GEMMs themselves are parallel.

use rayon::prelude::*;

/// Shape of an NCHW activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nchw {
    /// Batch.
    pub batch: usize,
    /// Channels.
    pub channels: usize,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
}

impl Nchw {
    fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Padded row width.
    fn padded_width(&self) -> usize {
        self.width + 2
    }

    /// Elements per channel of the padded image, plus two so that the discarded columns of the
    /// last row stay in bounds.
    fn padded_plane(&self) -> usize {
        (self.height + 2) * self.padded_width() + 2
    }

    /// Output positions per channel over the padded width.
    fn wide_plane(&self) -> usize {
        self.height * self.padded_width()
    }
}

fn parallel_images(batch: usize) -> bool {
    batch >= rayon::current_num_threads()
}

fn gemm_parallelism(images_in_parallel: bool) -> gemm::Parallelism {
    if images_in_parallel {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(0)
    }
}

/// Copies one image `[C, H, W]` into a zeroed padded buffer `[C, padded_plane]`.
fn pad_image(image: &[f32], shape: Nchw, padded: &mut [f32]) {
    let (h, w, pw, plane) = (
        shape.height,
        shape.width,
        shape.padded_width(),
        shape.padded_plane(),
    );
    padded.fill(0.0);
    for c in 0..shape.channels {
        for y in 0..h {
            let src = &image[(c * h + y) * w..(c * h + y + 1) * w];
            let start = c * plane + (y + 1) * pw + 1;
            padded[start..start + w].copy_from_slice(src);
        }
    }
}

/// Tap-major weights: `[9][C_out][C_in]` from `[C_out, C_in, 3, 3]`.
fn weights_by_tap(weight: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    let mut taps = vec![0.0; 9 * c_out * c_in];
    for co in 0..c_out {
        for ci in 0..c_in {
            for t in 0..9 {
                taps[(t * c_out + co) * c_in + ci] = weight[(co * c_in + ci) * 9 + t];
            }
        }
    }
    taps
}

/// `wide[C_out, H·(W+2)] = Σ_tap taps[tap] · shift_tap(padded)`.
fn conv_image(
    padded: &[f32],
    taps: &[f32],
    shape: Nchw,
    c_out: usize,
    wide: &mut [f32],
    parallelism: gemm::Parallelism,
) {
    let c_in = shape.channels;
    let (pw, plane, n) = (
        shape.padded_width(),
        shape.padded_plane(),
        shape.wide_plane(),
    );
    debug_assert_eq!(padded.len(), c_in * plane);
    debug_assert_eq!(wide.len(), c_out * n);
    for t in 0..9 {
        let offset = (t / 3) * pw + t % 3;
        let lhs = &taps[t * c_out * c_in..(t + 1) * c_out * c_in];
        // The largest rhs element read is (c_in-1)·plane + offset + n - 1, inside `padded`
        // because offset + n ≤ 2·pw + 2 + h·pw = plane.
        debug_assert!(offset + n <= plane);
        // SAFETY: dst is `c_out × n` row-major in `wide` (row stride n, column stride 1); lhs
        // is `c_out × c_in` row-major in `lhs`; rhs is `c_in × n` with row stride `plane` and
        // column stride 1 starting at `offset`, in bounds by the assertion above. The three
        // buffers do not overlap (distinct borrows).
        unsafe {
            gemm::gemm(
                c_out,
                n,
                c_in,
                wide.as_mut_ptr(),
                1,
                n as isize,
                t > 0,
                lhs.as_ptr(),
                1,
                c_in as isize,
                padded.as_ptr().add(offset),
                1,
                plane as isize,
                1.0f32,
                1.0f32,
                false,
                false,
                false,
                parallelism,
            );
        }
    }
}

/// The convolution of `x` (`shape`) with `weight` `[c_out, C_in, 3, 3]` plus `bias`; returns
/// NCHW `[B, c_out, H, W]`.
pub fn conv3x3_forward(
    x: &[f32],
    shape: Nchw,
    weight: &[f32],
    bias: Option<&[f32]>,
    c_out: usize,
) -> Vec<f32> {
    let taps = weights_by_tap(weight, c_out, shape.channels);
    conv_with_taps(x, shape, &taps, bias, c_out)
}

fn conv_with_taps(
    x: &[f32],
    shape: Nchw,
    taps: &[f32],
    bias: Option<&[f32]>,
    c_out: usize,
) -> Vec<f32> {
    let (h, w, pw) = (shape.height, shape.width, shape.padded_width());
    let out_image = c_out * h * w;
    let mut out = vec![0.0f32; shape.batch * out_image];
    let in_parallel = parallel_images(shape.batch);
    let parallelism = gemm_parallelism(in_parallel);
    let run = |(image, out): (&[f32], &mut [f32])| {
        let mut padded = vec![0.0f32; shape.channels * shape.padded_plane()];
        let mut wide = vec![0.0f32; c_out * shape.wide_plane()];
        pad_image(image, shape, &mut padded);
        conv_image(&padded, taps, shape, c_out, &mut wide, parallelism);
        for co in 0..c_out {
            let b = bias.map_or(0.0, |b| b[co]);
            for y in 0..h {
                let src = &wide[co * shape.wide_plane() + y * pw..][..w];
                let dst = &mut out[(co * h + y) * w..][..w];
                for (d, s) in dst.iter_mut().zip(src) {
                    *d = s + b;
                }
            }
        }
    };
    let image_len = shape.image_len();
    if in_parallel {
        x.par_chunks_exact(image_len)
            .zip(out.par_chunks_exact_mut(out_image))
            .for_each(run);
    } else {
        x.chunks_exact(image_len)
            .zip(out.chunks_exact_mut(out_image))
            .for_each(run);
    }
    out
}

/// Gradient with respect to the input: `grad` is `[B, c_out, H, W]`, `shape` the input's.
pub fn conv3x3_input_grad(grad: &[f32], shape: Nchw, weight: &[f32], c_out: usize) -> Vec<f32> {
    let c_in = shape.channels;
    // Transposed over channels and flipped in space: tap t of the input gradient uses
    // W[co, ci, 8 - t] as the [c_in × c_out] matrix.
    let mut taps = vec![0.0; 9 * c_in * c_out];
    for co in 0..c_out {
        for ci in 0..c_in {
            for t in 0..9 {
                taps[(t * c_in + ci) * c_out + co] = weight[(co * c_in + ci) * 9 + (8 - t)];
            }
        }
    }
    let grad_shape = Nchw {
        channels: c_out,
        ..shape
    };
    conv_with_taps(grad, grad_shape, &taps, None, c_in)
}

/// Gradient with respect to the weight, `[c_out, C_in, 3, 3]`.
pub fn conv3x3_weight_grad(x: &[f32], shape: Nchw, grad: &[f32], c_out: usize) -> Vec<f32> {
    let c_in = shape.channels;
    let (h, w, pw, plane, n) = (
        shape.height,
        shape.width,
        shape.padded_width(),
        shape.padded_plane(),
        shape.wide_plane(),
    );
    let in_parallel = parallel_images(shape.batch);
    let parallelism = gemm_parallelism(in_parallel);
    let out_image = c_out * h * w;
    // Per image: tap-major partial gradient [9][c_out][c_in].
    let image_grad = |(image, grad): (&[f32], &[f32]), acc: &mut Vec<f32>, first: bool| {
        let mut padded = vec![0.0f32; c_in * plane];
        pad_image(image, shape, &mut padded);
        let mut wide = vec![0.0f32; c_out * n];
        for co in 0..c_out {
            for y in 0..h {
                wide[co * n + y * pw..][..w].copy_from_slice(&grad[(co * h + y) * w..][..w]);
            }
        }
        for t in 0..9 {
            let offset = (t / 3) * pw + t % 3;
            debug_assert!(offset + n <= plane);
            let dst = &mut acc[t * c_out * c_in..(t + 1) * c_out * c_in];
            // SAFETY: dst is `c_out × c_in` row-major (row stride c_in, column stride 1);
            // lhs is `c_out × n` row-major in `wide`; rhs is `n × c_in` read from `padded` at
            // `offset` with row stride 1 and column stride `plane`, in bounds because
            // offset + n ≤ plane. No buffers overlap.
            unsafe {
                gemm::gemm(
                    c_out,
                    c_in,
                    n,
                    dst.as_mut_ptr(),
                    1,
                    c_in as isize,
                    !first,
                    wide.as_ptr(),
                    1,
                    n as isize,
                    padded.as_ptr().add(offset),
                    plane as isize,
                    1,
                    1.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    parallelism,
                );
            }
        }
    };
    let image_len = shape.image_len();
    let taps = if in_parallel {
        x.par_chunks_exact(image_len)
            .zip(grad.par_chunks_exact(out_image))
            .fold(
                || None::<Vec<f32>>,
                |acc, pair| {
                    let first = acc.is_none();
                    let mut acc = acc.unwrap_or_else(|| vec![0.0; 9 * c_out * c_in]);
                    image_grad(pair, &mut acc, first);
                    Some(acc)
                },
            )
            .flatten()
            .reduce(
                || vec![0.0; 9 * c_out * c_in],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                    a
                },
            )
    } else {
        let mut acc = vec![0.0; 9 * c_out * c_in];
        let pairs = x.chunks_exact(image_len).zip(grad.chunks_exact(out_image));
        for (i, pair) in pairs.enumerate() {
            image_grad(pair, &mut acc, i == 0);
        }
        acc
    };
    let mut weight_grad = vec![0.0; c_out * c_in * 9];
    for co in 0..c_out {
        for ci in 0..c_in {
            for t in 0..9 {
                weight_grad[(co * c_in + ci) * 9 + t] = taps[(t * c_out + co) * c_in + ci];
            }
        }
    }
    weight_grad
}

/// Gradient with respect to the bias: `grad` summed over batch and space, `[c_out]`.
pub fn bias_grad(grad: &[f32], batch: usize, c_out: usize, plane: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; c_out];
    for b in 0..batch {
        for (co, o) in out.iter_mut().enumerate() {
            *o += grad[(b * c_out + co) * plane..][..plane]
                .iter()
                .sum::<f32>();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// Direct definition, for checking.
    fn naive(x: &[f32], s: Nchw, weight: &[f32], c_out: usize) -> Vec<f32> {
        let (h, w, c_in) = (s.height, s.width, s.channels);
        let mut out = vec![0.0; s.batch * c_out * h * w];
        for b in 0..s.batch {
            for co in 0..c_out {
                for y in 0..h {
                    for xx in 0..w {
                        let mut acc = 0.0f64;
                        for ci in 0..c_in {
                            for dy in 0..3 {
                                for dx in 0..3 {
                                    let (iy, ix) = (y + dy, xx + dx);
                                    if iy == 0 || ix == 0 || iy > h || ix > w {
                                        continue;
                                    }
                                    acc += (weight[((co * c_in + ci) * 3 + dy) * 3 + dx]
                                        * x[((b * c_in + ci) * h + iy - 1) * w + ix - 1])
                                        as f64;
                                }
                            }
                        }
                        out[((b * c_out + co) * h + y) * w + xx] = acc as f32;
                    }
                }
            }
        }
        out
    }

    fn random(n: usize, rng: &mut SplitMix64) -> Vec<f32> {
        (0..n).map(|_| rng.uniform(1.0)).collect()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn forward_and_gradients_match_the_definition() {
        let mut rng = SplitMix64::stream(3, 1);
        // Batch 1 (parallel GEMMs) and batch 5 (parallel images); non-square, odd sizes.
        for (batch, c_in, c_out, h, w) in [(1, 3, 5, 7, 6), (5, 4, 2, 5, 9)] {
            let s = Nchw {
                batch,
                channels: c_in,
                height: h,
                width: w,
            };
            let x = random(batch * c_in * h * w, &mut rng);
            let weight = random(c_out * c_in * 9, &mut rng);
            let bias = random(c_out, &mut rng);
            let mut expected = naive(&x, s, &weight, c_out);
            for (i, v) in expected.iter_mut().enumerate() {
                *v += bias[(i / (h * w)) % c_out];
            }
            let y = conv3x3_forward(&x, s, &weight, Some(&bias), c_out);
            assert!(max_diff(&y, &expected) < 1e-5);

            // Gradients of L = Σ g·y by the adjoint identities: <dL/dx, v> = <g, conv(v)>
            // for any v, and dL/dW[k] = <g, conv_{e_k}(x)>.
            let g = random(batch * c_out * h * w, &mut rng);
            let dot = |a: &[f32], b: &[f32]| -> f64 {
                a.iter()
                    .zip(b)
                    .map(|(a, b)| (*a as f64) * (*b as f64))
                    .sum()
            };
            let dx = conv3x3_input_grad(&g, s, &weight, c_out);
            let v = random(x.len(), &mut rng);
            let lhs = dot(&dx, &v);
            let rhs = dot(&g, &naive(&v, s, &weight, c_out));
            assert!(
                (lhs - rhs).abs() < 1e-3 * (1.0 + rhs.abs()),
                "{lhs} vs {rhs}"
            );
            let dw = conv3x3_weight_grad(&x, s, &g, c_out);
            for k in [0, 4, 8, weight.len() - 1] {
                let mut e = vec![0.0; weight.len()];
                e[k] = 1.0;
                let expected = dot(&g, &naive(&x, s, &e, c_out));
                assert!(
                    (dw[k] as f64 - expected).abs() < 1e-3 * (1.0 + expected.abs()),
                    "dW[{k}] {} vs {expected}",
                    dw[k]
                );
            }
            let db = bias_grad(&g, batch, c_out, h * w);
            for (co, got) in db.iter().enumerate() {
                let expected: f64 = (0..batch)
                    .flat_map(|b| {
                        g[(b * c_out + co) * h * w..][..h * w]
                            .iter()
                            .map(|v| *v as f64)
                    })
                    .sum();
                assert!((*got as f64 - expected).abs() < 1e-3);
            }
        }
    }
}
