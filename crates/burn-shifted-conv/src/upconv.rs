//! The 2×2 stride-2 transposed convolution (padding 0) and its gradients on NCHW f32 slices.
//!
//! Every input pixel produces one 2×2 output block, so per image the layer is one GEMM
//! `T[4·C_out, H·W] = W_matᵀ · X[C_in, H·W]`, with burn's weight `[C_in, C_out, 2, 2]` read
//! as `W_mat[C_in, 4·C_out]`, followed by scattering row `co·4 + ky·2 + kx` of `T` to the
//! output pixels `(2y+ky, 2x+kx)`. The gradients gather `dY` into the same `[4·C_out, H·W]`
//! form `G`: `dX = W_mat · G` and `dW_mat = Σ_images X · Gᵀ`.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::kernel::Nchw;

/// Whether the images of a batch run in parallel (at least as many as threads), and the
/// GEMM parallelism that goes with it: serial GEMMs for parallel images, else parallel GEMMs.
fn batch_parallelism(batch: usize) -> (bool, gemm::Parallelism) {
    if batch >= rayon::current_num_threads() {
        (true, gemm::Parallelism::None)
    } else {
        (false, gemm::Parallelism::Rayon(0))
    }
}

/// `run(image, out_image)` over the images of `input` (`input_len` values each) and `out`
/// (`out_len` each), in parallel when `in_parallel`.
fn for_each_image(
    input: &[f32],
    input_len: usize,
    out: &mut [MaybeUninit<f32>],
    out_len: usize,
    in_parallel: bool,
    run: impl Fn((&[f32], &mut [MaybeUninit<f32>])) + Sync + Send,
) {
    if in_parallel {
        input
            .par_chunks_exact(input_len)
            .zip(out.par_chunks_exact_mut(out_len))
            .for_each(run);
    } else {
        input
            .chunks_exact(input_len)
            .zip(out.chunks_exact_mut(out_len))
            .for_each(run);
    }
}

/// `dY[C_out, 2H, 2W]` of one image as `G[4·C_out, H·W]`: each output row split into its even
/// and odd columns (a loop the compiler vectorises); every value of `blocks` is written.
fn gather_blocks(grad: &[f32], c_out: usize, h: usize, w: usize, blocks: &mut [MaybeUninit<f32>]) {
    let hw = h * w;
    for co in 0..c_out {
        for ky in 0..2 {
            let (even, odd) = blocks[(co * 4 + ky * 2) * hw..][..2 * hw].split_at_mut(hw);
            for y in 0..h {
                let src = &grad[(co * 2 * h + 2 * y + ky) * 2 * w..][..2 * w];
                let rows = even[y * w..(y + 1) * w]
                    .iter_mut()
                    .zip(&mut odd[y * w..(y + 1) * w]);
                for ((e, o), pair) in rows.zip(src.chunks_exact(2)) {
                    e.write(pair[0]);
                    o.write(pair[1]);
                }
            }
        }
    }
}

/// The inverse of [`gather_blocks`] plus a bias per output channel: `T[4·C_out, H·W]` of one
/// image to its output `[C_out, 2H, 2W]`, rows of `kx = 0` and `kx = 1` interleaved; every
/// value of `out` is written.
fn scatter_blocks(
    blocks: &[f32],
    c_out: usize,
    h: usize,
    w: usize,
    bias: Option<&[f32]>,
    out: &mut [MaybeUninit<f32>],
) {
    let hw = h * w;
    for co in 0..c_out {
        let b = bias.map_or(0.0, |b| b[co]);
        for ky in 0..2 {
            let (even, odd) = blocks[(co * 4 + ky * 2) * hw..][..2 * hw].split_at(hw);
            for y in 0..h {
                let dst = &mut out[(co * 2 * h + 2 * y + ky) * 2 * w..][..2 * w];
                let rows = even[y * w..(y + 1) * w]
                    .iter()
                    .zip(&odd[y * w..(y + 1) * w]);
                for ((e, o), pair) in rows.zip(dst.chunks_exact_mut(2)) {
                    pair[0].write(e + b);
                    pair[1].write(o + b);
                }
            }
        }
    }
}

/// `out = A · B` (`m × n`, row-major, overwritten; added to when `accumulate`) with `A` and
/// `B` given by strides; `out` need not be initialised unless `accumulate`.
///
/// # Safety
/// `a` must be valid for reads at `i·a_rs + k·a_cs` and `b` at `k·b_rs + j·b_cs` for all
/// `i < m`, `k < depth`, `j < n`; `out` must be valid for writes of `m·n` elements (and
/// initialised when `accumulate`) not aliasing them.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_into(
    out: *mut f32,
    m: usize,
    n: usize,
    depth: usize,
    a: *const f32,
    a_rs: isize,
    a_cs: isize,
    b: *const f32,
    b_rs: isize,
    b_cs: isize,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    // SAFETY: forwarded from the caller's contract; `out` is `m × n` row-major.
    unsafe {
        gemm::gemm(
            m,
            n,
            depth,
            out,
            1,
            n as isize,
            accumulate,
            a,
            a_cs,
            a_rs,
            b,
            b_cs,
            b_rs,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// A vector of `len` values written by `fill`, which must write every one of them.
fn filled(len: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut values = Vec::with_capacity(len);
    fill(&mut values.spare_capacity_mut()[..len]);
    // SAFETY: the capacity is `len`, and `fill` wrote every one of the `len` slots.
    unsafe { values.set_len(len) };
    values
}

/// Forward: `x` (`shape`), `weight` `[C_in, c_out, 2, 2]`, `bias` `[c_out]`; returns
/// `[B, c_out, 2H, 2W]`.
pub fn upconv2x2_forward(
    x: &[f32],
    shape: Nchw,
    weight: &[f32],
    bias: Option<&[f32]>,
    c_out: usize,
) -> Vec<f32> {
    let (c_in, h, w) = (shape.channels, shape.height, shape.width);
    let hw = h * w;
    let out_image = c_out * 4 * hw;
    let (in_parallel, par) = batch_parallelism(shape.batch);
    let run = |(image, out): (&[f32], &mut [MaybeUninit<f32>])| {
        let blocks = filled(4 * c_out * hw, |blocks| {
            // SAFETY: A = W_matᵀ is (4·c_out × c_in) at weight[k·4·c_out + i] (row stride 1,
            // column stride 4·c_out, c_in·4·c_out elements); B = X is (c_in × hw) row-major;
            // the GEMM writes all 4·c_out·hw values of `blocks` without reading them.
            unsafe {
                gemm_into(
                    blocks.as_mut_ptr().cast::<f32>(),
                    4 * c_out,
                    hw,
                    c_in,
                    weight.as_ptr(),
                    1,
                    (4 * c_out) as isize,
                    image.as_ptr(),
                    hw as isize,
                    1,
                    false,
                    par,
                );
            }
        });
        scatter_blocks(&blocks, c_out, h, w, bias, out);
    };
    filled(shape.batch * out_image, |out| {
        for_each_image(x, c_in * hw, out, out_image, in_parallel, run);
    })
}

/// Gradient with respect to the input; `shape` is the input's, `grad` `[B, c_out, 2H, 2W]`.
pub fn upconv2x2_input_grad(grad: &[f32], shape: Nchw, weight: &[f32], c_out: usize) -> Vec<f32> {
    let (c_in, h, w) = (shape.channels, shape.height, shape.width);
    let hw = h * w;
    let grad_image = c_out * 4 * hw;
    let (in_parallel, par) = batch_parallelism(shape.batch);
    let run = |(grad, out): (&[f32], &mut [MaybeUninit<f32>])| {
        let blocks = filled(4 * c_out * hw, |blocks| {
            gather_blocks(grad, c_out, h, w, blocks);
        });
        // SAFETY: A = W_mat (c_in × 4·c_out) row-major; B = G (4·c_out × hw) row-major; the
        // GEMM writes all c_in·hw values of this image's `out` without reading them.
        unsafe {
            gemm_into(
                out.as_mut_ptr().cast::<f32>(),
                c_in,
                hw,
                4 * c_out,
                weight.as_ptr(),
                (4 * c_out) as isize,
                1,
                blocks.as_ptr(),
                hw as isize,
                1,
                false,
                par,
            );
        }
    };
    filled(shape.batch * c_in * hw, |out| {
        for_each_image(grad, grad_image, out, c_in * hw, in_parallel, run);
    })
}

/// Gradient with respect to the weight, `[C_in, c_out, 2, 2]`.
pub fn upconv2x2_weight_grad(x: &[f32], shape: Nchw, grad: &[f32], c_out: usize) -> Vec<f32> {
    let (c_in, h, w) = (shape.channels, shape.height, shape.width);
    let hw = h * w;
    let n_weights = c_in * 4 * c_out;
    let (_, par) = batch_parallelism(shape.batch);
    let image_grad = |(image, grad): (&[f32], &[f32]), acc: &mut [f32], accumulate: bool| {
        let blocks = filled(4 * c_out * hw, |blocks| {
            gather_blocks(grad, c_out, h, w, blocks);
        });
        assert_eq!(acc.len(), c_in * 4 * c_out);
        // SAFETY: A = X (c_in × hw) row-major; B = Gᵀ (hw × 4·c_out) at blocks[j·hw + k]
        // (row stride 1, column stride hw); `acc` holds the c_in·4·c_out initialised sums.
        unsafe {
            gemm_into(
                acc.as_mut_ptr(),
                c_in,
                4 * c_out,
                hw,
                image.as_ptr(),
                hw as isize,
                1,
                blocks.as_ptr(),
                1,
                hw as isize,
                accumulate,
                par,
            );
        }
    };
    let (image_len, grad_image) = (c_in * hw, c_out * 4 * hw);
    super::kernel::ordered_sum(shape.batch, n_weights, |acc, b, accumulate| {
        let pair = (
            &x[b * image_len..][..image_len],
            &grad[b * grad_image..][..grad_image],
        );
        image_grad(pair, acc, accumulate);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{dot, max_abs_diff, random};
    use seeded_rng::SplitMix64;

    fn naive(x: &[f32], s: Nchw, weight: &[f32], c_out: usize) -> Vec<f32> {
        let (c_in, h, w) = (s.channels, s.height, s.width);
        let mut out = vec![0.0; s.batch * c_out * 4 * h * w];
        for b in 0..s.batch {
            for co in 0..c_out {
                for y in 0..2 * h {
                    for xx in 0..2 * w {
                        let mut acc = 0.0f64;
                        for ci in 0..c_in {
                            let wv = weight[((ci * c_out + co) * 2 + y % 2) * 2 + xx % 2];
                            acc += (wv * x[((b * c_in + ci) * h + y / 2) * w + xx / 2]) as f64;
                        }
                        out[((b * c_out + co) * 2 * h + y) * 2 * w + xx] = acc as f32;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn forward_and_gradients_match_the_definition() {
        let mut rng = SplitMix64::stream(5, 9);
        let mut random = |n: usize| random(n, &mut rng);
        for (batch, c_in, c_out, h, w) in [(1, 3, 2, 3, 5), (6, 4, 3, 4, 2)] {
            let s = Nchw {
                batch,
                channels: c_in,
                height: h,
                width: w,
            };
            let x = random(batch * c_in * h * w);
            let weight = random(c_in * c_out * 4);
            let bias = random(c_out);
            let mut expected = naive(&x, s, &weight, c_out);
            for (i, v) in expected.iter_mut().enumerate() {
                *v += bias[(i / (4 * h * w)) % c_out];
            }
            let y = upconv2x2_forward(&x, s, &weight, Some(&bias), c_out);
            assert!(max_abs_diff(&y, &expected) < 1e-5);
            let g = random(y.len());
            let v = random(x.len());
            let dx = upconv2x2_input_grad(&g, s, &weight, c_out);
            let (lhs, rhs) = (dot(&dx, &v), dot(&g, &naive(&v, s, &weight, c_out)));
            assert!(
                (lhs - rhs).abs() < 1e-3 * (1.0 + rhs.abs()),
                "{lhs} vs {rhs}"
            );
            let dw = upconv2x2_weight_grad(&x, s, &g, c_out);
            for k in 0..weight.len() {
                let mut e = vec![0.0; weight.len()];
                e[k] = 1.0;
                let expected = dot(&g, &naive(&x, s, &e, c_out));
                assert!(
                    (dw[k] as f64 - expected).abs() < 1e-3 * (1.0 + expected.abs()),
                    "dW[{k}] {} vs {expected}",
                    dw[k]
                );
            }
        }
    }
}
