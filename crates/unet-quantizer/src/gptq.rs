//! Error-compensating weight rounding (the GPTQ algorithm of Frantar et al., 2022, applied to
//! convolutions): a layer's int8 weights are chosen one input position at a time, and the
//! rounding error of each is pushed onto the weights not yet rounded, in the proportions that
//! keep the layer's *output* on the calibration data closest to the float output.
//!
//! For a layer with per-output-channel weights `w_c` (its filter row `[kh][kw][cin]`) and
//! input patches `x` from the calibration slices, the output error of `q_c` is
//! `(w_c − q_c)ᵀ H (w_c − q_c)` with `H = Σ x xᵀ`. Rounding coordinate `j` and updating the
//! remaining ones with row `j` of the upper Cholesky factor `U` of `H⁻¹`
//! (`w[j+1..] −= (w_j − q_j)/U[j][j] · U[j][j+1..]`) minimises that error greedily. The scales
//! stay those of round-to-nearest (`max|w_c| / 127`), so everything downstream (bias, the
//! requantisation) is unchanged; only which integer each weight becomes changes.
//!
//! `H` is estimated from the float model's activations on [`GPTQ_SLICES`] calibration slices
//! (at most [`MAX_POSITIONS`] output positions per slice and layer, evenly spaced), damped by
//! [`DAMPING`] × its mean diagonal. A TRANSPOSE_CONV whose taps do not overlap (kernel =
//! stride, as in the U-Net) has a block-diagonal `H`, one `Cin × Cin` block per tap; other
//! transposed convolutions keep round-to-nearest.
//!
//! Numerics: `H` is accumulated in f32 per slice (the GEMM) and summed in f64; the Cholesky
//! factor and its inverse are computed in f64 on `H` with its coordinates reversed, since for
//! `J H J = L Lᵀ` the factor the algorithm needs is `U = J L⁻¹ J`, and in reversed coordinates
//! every step is a contiguous row operation.

use std::collections::HashMap;

use tflite_runtime::TensorData;
use tflite_writer::{BuiltinOp, BuiltinOptions, Padding};

use crate::calibrate::parallel_chunks;
use crate::error::QuantError;
use crate::graph::FloatGraph;

/// Calibration slices the Hessians are estimated from.
pub const GPTQ_SLICES: usize = 16;

/// At most this many output positions per slice and layer enter `H`.
pub const MAX_POSITIONS: usize = 4096;

/// Damping added to `H`'s diagonal, as a fraction of its mean diagonal.
pub const DAMPING: f64 = 0.01;

/// How one layer turns its input into rows of `H`.
#[derive(Debug, Clone)]
enum Patches {
    /// CONV_2D: im2col patches `[kh][kw][cin]`.
    Conv {
        kh: usize,
        kw: usize,
        stride: (usize, usize),
        dilation: (usize, usize),
        pad: (usize, usize),
        out_hw: (usize, usize),
    },
    /// TRANSPOSE_CONV with non-overlapping taps: every input pixel, one block per tap.
    Taps { taps: usize },
}

#[derive(Debug, Clone)]
struct Layer {
    op_index: usize,
    input: usize,
    in_hwc: (usize, usize, usize),
    patches: Patches,
    /// Columns of the patch matrix (`kh·kw·cin`, or `cin` for taps).
    cols: usize,
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn same_pad(input: usize, out: usize, k: usize, stride: usize, dilation: usize) -> usize {
    let effective = (k - 1) * dilation + 1;
    ((out - 1) * stride + effective).saturating_sub(input) / 2
}

fn layers(graph: &FloatGraph) -> Vec<Layer> {
    let sg = &graph.model.subgraphs[0];
    let dims = |t: usize| -> Option<Vec<usize>> {
        sg.tensors[t]
            .shape
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect()
    };
    let mut out = Vec::new();
    for (op_index, op) in sg.operators.iter().enumerate() {
        let (x_slot, opts) = match &op.options {
            BuiltinOptions::Conv2D(o) if op.op == BuiltinOp::CONV_2D => (0, Some(*o)),
            BuiltinOptions::TransposeConv(_) if op.op == BuiltinOp::TRANSPOSE_CONV => (2, None),
            _ => continue,
        };
        let (Some(&x), Some(&w)) = (op.inputs.get(x_slot), op.inputs.get(1)) else {
            continue;
        };
        let (Some(xd), Some(wd), Some(yd)) = (
            dims(x as usize),
            dims(w as usize),
            dims(op.outputs[0] as usize),
        ) else {
            continue;
        };
        let (&[1, h, wi, c], &[_, kh, kw, cin], &[1, oh, ow, _]) =
            (xd.as_slice(), wd.as_slice(), yd.as_slice())
        else {
            continue;
        };
        if c != cin {
            continue;
        }
        let patches = match (opts, &op.options) {
            (Some(o), _) => {
                let stride = (o.stride_h.max(1) as usize, o.stride_w.max(1) as usize);
                let dilation = (o.dilation_h.max(1) as usize, o.dilation_w.max(1) as usize);
                let pad = match o.padding {
                    Padding::Same => (
                        same_pad(h, oh, kh, stride.0, dilation.0),
                        same_pad(wi, ow, kw, stride.1, dilation.1),
                    ),
                    _ => (0, 0),
                };
                Patches::Conv {
                    kh,
                    kw,
                    stride,
                    dilation,
                    pad,
                    out_hw: (oh, ow),
                }
            }
            (None, BuiltinOptions::TransposeConv(o))
                if kh == o.stride_h as usize
                    && kw == o.stride_w as usize
                    && oh == h * kh
                    && ow == wi * kw =>
            {
                Patches::Taps { taps: kh * kw }
            }
            _ => continue,
        };
        let cols = match patches {
            Patches::Conv { .. } => kh * kw * cin,
            Patches::Taps { .. } => cin,
        };
        out.push(Layer {
            op_index,
            input: x as usize,
            in_hwc: (h, wi, c),
            patches,
            cols,
        });
    }
    out
}

/// `h += xᵀx` for `x` `[rows, cols]` row-major, `h` `[cols, cols]` row-major.
fn add_gram(h: &mut [f32], x: &[f32], rows: usize, cols: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(h.len() >= cols * cols && x.len() >= rows * cols);
    // SAFETY: the assert keeps every access inside the slices: dst[i·cols + j] for i, j < cols;
    // lhs (xᵀ) element (i, p) = x[p·cols + i] and rhs (x) element (p, j) = x[p·cols + j] for
    // p < rows. `h` is exclusively borrowed, so it aliases neither operand.
    unsafe {
        gemm::gemm(
            cols,
            cols,
            rows,
            h.as_mut_ptr(),
            1,
            cols as isize,
            true,
            x.as_ptr(),
            cols as isize,
            1,
            x.as_ptr(),
            1,
            cols as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The sampled patch rows of `layer` for input `x` (`[H, W, C]`).
fn patch_rows(layer: &Layer, x: &[f32]) -> (Vec<f32>, usize) {
    let (h, w, c) = layer.in_hwc;
    match layer.patches {
        Patches::Conv {
            kh,
            kw,
            stride,
            dilation,
            pad,
            out_hw,
        } => {
            let positions = out_hw.0 * out_hw.1;
            let step = positions.div_ceil(MAX_POSITIONS).max(1);
            let rows = positions.div_ceil(step);
            let mut out = vec![0.0f32; rows * layer.cols];
            for (r, p) in (0..positions).step_by(step).enumerate() {
                let (oy, ox) = (p / out_hw.1, p % out_hw.1);
                let row = &mut out[r * layer.cols..(r + 1) * layer.cols];
                for ky in 0..kh {
                    let iy = (oy * stride.0 + ky * dilation.0).checked_sub(pad.0);
                    let Some(iy) = iy.filter(|&v| v < h) else {
                        continue;
                    };
                    for kx in 0..kw {
                        let ix = (ox * stride.1 + kx * dilation.1).checked_sub(pad.1);
                        let Some(ix) = ix.filter(|&v| v < w) else {
                            continue;
                        };
                        let src = &x[(iy * w + ix) * c..(iy * w + ix + 1) * c];
                        row[(ky * kw + kx) * c..(ky * kw + kx + 1) * c].copy_from_slice(src);
                    }
                }
            }
            (out, rows)
        }
        Patches::Taps { .. } => {
            let positions = h * w;
            let step = positions.div_ceil(MAX_POSITIONS).max(1);
            let rows = positions.div_ceil(step);
            let mut out = Vec::with_capacity(rows * c);
            for p in (0..positions).step_by(step) {
                out.extend_from_slice(&x[p * c..(p + 1) * c]);
            }
            (out, rows)
        }
    }
}

/// `Σ a·b` with eight independent partial sums (a plain `sum()` of floats is a sequential
/// chain the compiler may not vectorise).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// Per-output-channel scales exactly as round-to-nearest computes them
/// (`rewrite::quantize_layer`: `max|w_c| / 127`, or 1/127 for an all-zero channel).
fn channel_scales(weights: &[f32], n_out: usize) -> Vec<f64> {
    let per = weights.len() / n_out.max(1);
    weights
        .chunks(per.max(1))
        .take(n_out)
        .map(|w| {
            let max_abs = w.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
            let s = if max_abs > 0.0 {
                f64::from(max_abs) / 127.0
            } else {
                1.0 / 127.0
            };
            f64::from(s as f32)
        })
        .collect()
}

/// Rounds one layer's weights (`[n_out][k]`, row-major) given `H` (`[k][k]`, f64).
fn round_layer(weights: &[f32], n_out: usize, hessian: &[f64], k: usize) -> Vec<i8> {
    round_layer_scaled(weights, n_out, hessian, k, &channel_scales(weights, n_out))
}

/// [`round_layer`] with given per-channel scales.
fn round_layer_scaled(
    weights: &[f32],
    n_out: usize,
    hessian: &[f64],
    k: usize,
    scales: &[f64],
) -> Vec<i8> {
    // Reversed coordinates: m[a][b] = H[k−1−a][k−1−b], wr[c][a] = w[c][k−1−a].
    let mean_diag = (0..k).map(|i| hessian[i * k + i]).sum::<f64>() / k.max(1) as f64;
    let damp = DAMPING * mean_diag.max(1e-12);
    let mut m = vec![0.0f64; k * k];
    for a in 0..k {
        for b in 0..k {
            m[a * k + b] = hessian[(k - 1 - a) * k + (k - 1 - b)];
        }
        if m[a * k + a] <= 0.0 {
            m[a * k + a] = 1.0;
        }
        m[a * k + a] += damp;
    }
    // Cholesky m = L Lᵀ (rows of L contiguous).
    let mut l = vec![0.0f64; k * k];
    for i in 0..k {
        for j in 0..=i {
            let dot = dot(&l[i * k..i * k + j], &l[j * k..j * k + j]);
            let s = m[i * k + j] - dot;
            if i == j {
                l[i * k + i] = s.max(1e-12 * mean_diag.max(1e-12)).sqrt();
            } else {
                l[i * k + j] = s / l[j * k + j];
            }
        }
    }
    // L⁻¹ row by row: r_i = (e_i − Σ_{t<i} L[i][t] r_t) / L[i][i].
    let mut inv = vec![0.0f64; k * k];
    for i in 0..k {
        let (done, rest) = inv.split_at_mut(i * k);
        let row = &mut rest[..k];
        for t in 0..i {
            let f = l[i * k + t];
            if f != 0.0 {
                for (v, r) in row[..=t].iter_mut().zip(&done[t * k..t * k + t + 1]) {
                    *v -= f * r;
                }
            }
        }
        let d = 1.0 / l[i * k + i];
        for v in &mut row[..i] {
            *v *= d;
        }
        row[i] = d;
    }
    let per = weights.len() / n_out.max(1);
    let mut out = vec![0i8; weights.len()];
    for c in 0..n_out {
        let w = &weights[c * per..(c + 1) * per];
        let scale = scales[c];
        let mut wr: Vec<f64> = w.iter().rev().map(|&v| f64::from(v)).collect();
        // Column j of the original order is a = k−1−j here, processed from k−1 down to 0.
        for a in (0..k).rev() {
            let q = (wr[a] / scale).round().clamp(-127.0, 127.0);
            out[c * per + (k - 1 - a)] = q as i8;
            let err = (wr[a] - q * scale) / inv[a * k + a];
            for (v, u) in wr[..a].iter_mut().zip(&inv[a * k..a * k + a]) {
                *v -= err * u;
            }
        }
    }
    out
}

/// The GPTQ-rounded int8 weights of every CONV_2D and non-overlapping TRANSPOSE_CONV of
/// `graph` (op index → weights in the filter's layout), from `images` (the first
/// [`GPTQ_SLICES`] are used). The scales are those of round-to-nearest.
pub fn round_weights(
    graph: &FloatGraph,
    images: &[Vec<f32>],
    threads: usize,
) -> Result<HashMap<usize, Vec<i8>>, QuantError> {
    let layers = layers(graph);
    if layers.is_empty() {
        return Ok(HashMap::new());
    }
    let sg = &graph.model.subgraphs[0];
    let model_input = sg.inputs[0] as usize;
    let images = &images[..images.len().min(GPTQ_SLICES)];
    let by_input: HashMap<usize, Vec<usize>> =
        layers
            .iter()
            .enumerate()
            .fold(HashMap::new(), |mut acc, (i, l)| {
                acc.entry(l.input).or_default().push(i);
                acc
            });
    let parts = parallel_chunks(
        &graph.model,
        "GPTQ statistics",
        images,
        threads,
        |rt, part| {
            let mut grams: Vec<Vec<f32>> =
                layers.iter().map(|l| vec![0.0; l.cols * l.cols]).collect();
            for image in part {
                let mut add = |t: usize, x: &[f32]| {
                    for &i in by_input.get(&t).into_iter().flatten() {
                        let (rows, n) = patch_rows(&layers[i], x);
                        add_gram(&mut grams[i], &rows, n, layers[i].cols);
                    }
                };
                add(model_input, image);
                rt.set_input(0, image)
                    .map_err(QuantError::runtime("GPTQ statistics"))?;
                rt.invoke_with_observer(&mut |obs| {
                    if let TensorData::F32(v) = obs.data {
                        add(obs.tensor.index, v);
                    }
                })
                .map_err(QuantError::runtime("GPTQ statistics"))?;
            }
            Ok(grams)
        },
    )?;
    let mut hessians: Vec<Vec<f64>> = layers.iter().map(|l| vec![0.0; l.cols * l.cols]).collect();
    for part in parts {
        for (h, g) in hessians.iter_mut().zip(part) {
            for (a, b) in h.iter_mut().zip(g) {
                *a += f64::from(b);
            }
        }
    }
    // One layer per worker at a time, largest first.
    let mut order: Vec<usize> = (0..layers.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(layers[i].cols));
    let threads = threads.max(1);
    let results: Vec<(usize, Vec<i8>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let order = &order;
                let layers = &layers;
                let hessians = &hessians;
                scope.spawn(move || {
                    let mut done = Vec::new();
                    for &i in order.iter().skip(t).step_by(threads) {
                        let layer = &layers[i];
                        let op = &sg.operators[layer.op_index];
                        let w_t = op.inputs[1] as usize;
                        let Some(weights) = graph.model.tensor_data(0, w_t).map(f32s) else {
                            continue;
                        };
                        let n_out = sg.tensors[w_t].shape[0].max(1) as usize;
                        let c = layer.cols;
                        let rounded = match layer.patches {
                            Patches::Conv { .. } if weights.len() == n_out * c => {
                                round_layer(&weights, n_out, &hessians[i], c)
                            }
                            // Block-diagonal H: each tap's weights are rounded on their own.
                            Patches::Taps { taps } if weights.len() == n_out * taps * c => {
                                let k = taps * c;
                                let scales = channel_scales(&weights, n_out);
                                let mut out = vec![0i8; weights.len()];
                                for tap in 0..taps {
                                    let sub: Vec<f32> = (0..n_out)
                                        .flat_map(|o| {
                                            weights[o * k + tap * c..o * k + (tap + 1) * c]
                                                .iter()
                                                .copied()
                                        })
                                        .collect();
                                    let q =
                                        round_layer_scaled(&sub, n_out, &hessians[i], c, &scales);
                                    for o in 0..n_out {
                                        out[o * k + tap * c..o * k + (tap + 1) * c]
                                            .copy_from_slice(&q[o * c..(o + 1) * c]);
                                    }
                                }
                                out
                            }
                            _ => continue,
                        };
                        done.push((layer.op_index, rounded));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    Ok(results.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Output error `Σ_x (x·(w − s·q))²` of one channel over `xs`.
    fn output_error(xs: &[Vec<f32>], w: &[f32], q: &[i8], scale: f32) -> f64 {
        xs.iter()
            .map(|x| {
                let e: f64 = x
                    .iter()
                    .zip(w.iter().zip(q))
                    .map(|(&xv, (&wv, &qv))| f64::from(xv) * f64::from(wv - scale * f32::from(qv)))
                    .sum();
                e * e
            })
            .sum()
    }

    #[test]
    fn error_compensation_beats_nearest_on_correlated_inputs_and_keeps_the_grid() {
        // Strongly correlated inputs (a shared component plus small noise), as neighbouring
        // pixels of an image are.
        let k = 24;
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let xs: Vec<Vec<f32>> = (0..400)
            .map(|_| {
                let shared = next() * 4.0;
                (0..k).map(|_| (shared + 0.3 * next()) as f32).collect()
            })
            .collect();
        let channels = 16;
        let weights: Vec<f32> = (0..channels * k).map(|_| next() as f32).collect();
        let mut hessian = vec![0.0f64; k * k];
        for x in &xs {
            for a in 0..k {
                for b in 0..k {
                    hessian[a * k + b] += f64::from(x[a]) * f64::from(x[b]);
                }
            }
        }
        let q = round_layer(&weights, channels, &hessian, k);
        let (mut gptq, mut rtn) = (0.0, 0.0);
        for c in 0..channels {
            let w = &weights[c * k..(c + 1) * k];
            let scale = (f64::from(w.iter().fold(0.0f32, |m, &v| m.max(v.abs()))) / 127.0) as f32;
            let nearest: Vec<i8> = w.iter().map(|&v| (v / scale).round() as i8).collect();
            let q = &q[c * k..(c + 1) * k];
            // Each integer stays next to the nearest one, on the same grid.
            for (a, b) in q.iter().zip(&nearest) {
                assert!((i32::from(*a) - i32::from(*b)).abs() <= 2, "{a} vs {b}");
            }
            gptq += output_error(&xs, w, q, scale);
            rtn += output_error(&xs, w, &nearest, scale);
        }
        assert!(gptq < 0.5 * rtn, "GPTQ {gptq} vs nearest {rtn}");
    }

    #[test]
    fn an_identity_hessian_gives_round_to_nearest() {
        let k = 5;
        let mut hessian = vec![0.0f64; k * k];
        for i in 0..k {
            hessian[i * k + i] = 1.0;
        }
        let w = [0.5f32, -0.26, 0.1, 0.333, -0.01];
        let q = round_layer(&w, 1, &hessian, k);
        let scale = 0.5 / 127.0;
        let nearest: Vec<i8> = w.iter().map(|&v| (v / scale).round() as i8).collect();
        assert_eq!(q, nearest);
    }
}
