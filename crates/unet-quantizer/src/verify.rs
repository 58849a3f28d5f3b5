//! Verification on held-out data: the float and the int8 model run side by side on our runtime;
//! per-tensor SQNR (int8 dequantised vs f32), output SQNR, Dice of both against the ground truth
//! and the agreement of their masks.

use std::collections::HashMap;

use serde::Serialize;
use tflite_runtime::{Interpreter, KernelTier, Options, TensorData};
use tflite_writer::Model;

use crate::calibrate::parallel_chunks;
use crate::dataset::EvalSet;
use crate::error::QuantError;

/// Mean slice Dice of one model's output against one mask (`unet_data::metrics`), as an
/// evaluation error when the output is not a probability or the mask is not binary.
fn checked_dice(which: &str, probabilities: &[f32], mask: &[f32]) -> Result<f64, QuantError> {
    unet_data::metrics::slice_dice(probabilities, mask).map_err(|e| QuantError::BadData {
        what: "evaluation",
        detail: format!("{which} model: {e}"),
    })
}

/// Quantises a float input like TFLite's reference QUANTIZE: `round(x / s) + zp` (f32 division,
/// ties away from zero), clamped to int8.
pub fn quantize_input(values: &[f32], scale: f32, zero_point: i32) -> Vec<i8> {
    values
        .iter()
        .map(|&x| {
            ((x / scale).round() as i32)
                .saturating_add(zero_point)
                .clamp(-128, 127) as i8
        })
        .collect()
}

/// `(Σ f², Σ (f − scale·(q − zp))²)`: eight f32 lanes over blocks of 256 values, each block's
/// sums added in f64 (vectorised, and the f32 partial sums stay short enough to be exact to
/// ~1e-5 relative).
pub fn signal_noise(f: &[f32], q: &[i8], scale: f32, zero_point: i32) -> (f64, f64) {
    const LANES: usize = 8;
    const BLOCK: usize = 256;
    let (mut signal, mut noise) = (0.0f64, 0.0f64);
    let n = f.len().min(q.len());
    let zp = zero_point as f32;
    for (fb, qb) in f[..n].chunks(BLOCK).zip(q[..n].chunks(BLOCK)) {
        let (mut s, mut e) = ([0.0f32; LANES], [0.0f32; LANES]);
        let mut fc = fb.chunks_exact(LANES);
        let mut qc = qb.chunks_exact(LANES);
        for (fl, ql) in (&mut fc).zip(&mut qc) {
            for i in 0..LANES {
                let d = fl[i] - scale * (f32::from(ql[i]) - zp);
                s[i] += fl[i] * fl[i];
                e[i] += d * d;
            }
        }
        for (&fv, &qv) in fc.remainder().iter().zip(qc.remainder()) {
            let d = fv - scale * (f32::from(qv) - zp);
            s[0] += fv * fv;
            e[0] += d * d;
        }
        signal += s.iter().map(|&v| f64::from(v)).sum::<f64>();
        noise += e.iter().map(|&v| f64::from(v)).sum::<f64>();
    }
    (signal, noise)
}

/// 10·log10(signal / noise) in dB; `None` when the noise is exactly 0 (infinite SQNR).
pub fn sqnr_db(signal: f64, noise: f64) -> Option<f64> {
    if noise <= 0.0 {
        None
    } else {
        Some(10.0 * (signal.max(1e-300) / noise).log10())
    }
}

/// SQNR of one tensor.
#[derive(Debug, Clone, Serialize)]
pub struct TensorSqnr {
    /// Tensor name.
    pub name: String,
    /// The producing operator (`INPUT` for the model input).
    pub op: String,
    /// SQNR in dB (`null` = identical).
    pub sqnr_db: Option<f64>,
}

/// Accuracy of an int8 model against its float original and the ground truth.
#[derive(Debug, Clone, Serialize)]
pub struct Accuracy {
    /// Slices evaluated.
    pub samples: usize,
    /// Where they came from.
    pub data: String,
    /// SQNR of the dequantised int8 output vs the float output, in dB.
    pub output_sqnr_db: Option<f64>,
    /// Mean Dice of the float model vs the ground truth.
    pub dice_fp32: f64,
    /// Mean Dice of the int8 model vs the ground truth.
    pub dice_int8: f64,
    /// Fraction of pixels where the int8 and float masks (threshold 0.5) agree.
    pub mask_agreement: f64,
    /// Per activation tensor, in execution order (empty when not requested).
    pub per_tensor: Vec<TensorSqnr>,
}

impl Accuracy {
    /// `dice_int8 − dice_fp32`.
    pub fn dice_delta(&self) -> f64 {
        self.dice_int8 - self.dice_fp32
    }
}

/// An image, its mask, and the float output when already known.
type EvalItem<'a> = (&'a Vec<f32>, &'a Vec<f32>, Option<&'a Vec<f32>>);

#[derive(Default)]
struct Partial {
    signal: HashMap<usize, f64>,
    noise: HashMap<usize, f64>,
    out_signal: f64,
    out_noise: f64,
    dice_fp32: f64,
    dice_int8: f64,
    agree: u64,
    pixels: u64,
    samples: usize,
}

/// The float model's outputs on `eval`, to reuse across several int8 candidates.
pub fn float_outputs(
    float: &Model,
    eval: &EvalSet,
    threads: usize,
) -> Result<Vec<Vec<f32>>, QuantError> {
    let parts = parallel_chunks(
        float,
        "float reference outputs",
        &eval.images.images,
        threads,
        |rt, part| {
            let mut outs = Vec::with_capacity(part.len());
            for image in part {
                rt.set_input(0, image)
                    .map_err(QuantError::runtime("float input"))?;
                rt.invoke().map_err(QuantError::runtime("float run"))?;
                outs.push(
                    rt.output::<f32>(0)
                        .map_err(QuantError::runtime("float output"))?
                        .to_vec(),
                );
            }
            Ok(outs)
        },
    )?;
    Ok(parts.concat())
}

/// Output SQNR of `int8` against known float outputs (`float_outputs[i]` for `images[i]`), in
/// dB (`None`: identical). Runs only the int8 model.
pub fn output_sqnr(
    int8: &Model,
    images: &[Vec<f32>],
    float_outputs: &[Vec<f32>],
    threads: usize,
) -> Result<Option<f64>, QuantError> {
    let int8_proto = Interpreter::new(
        int8,
        Options {
            kernels: KernelTier::Best,
            ..Options::default()
        },
    )
    .map_err(QuantError::runtime("int8 model"))?;
    let quant = |info: Result<&tflite_runtime::TensorInfo, tflite_runtime::RuntimeError>,
                 what: &str| {
        info.ok().and_then(|i| i.per_tensor_quant()).ok_or_else(|| {
            QuantError::UnsupportedModel(format!(
                "the int8 model {what} has no per-tensor quantisation"
            ))
        })
    };
    let input_q = quant(int8_proto.input_info(0), "input")?;
    let output_q = quant(int8_proto.output_info(0), "output")?;
    let items: Vec<(&Vec<f32>, &Vec<f32>)> = images.iter().zip(float_outputs).collect();
    let parts = parallel_chunks(int8, "int8 scoring", &items, threads, |rt, part| {
        let (mut signal, mut noise) = (0.0f64, 0.0f64);
        for (image, reference) in part {
            rt.set_input(0, &quantize_input(image, input_q.0, input_q.1))
                .map_err(QuantError::runtime("int8 input"))?;
            rt.invoke().map_err(QuantError::runtime("int8 run"))?;
            let out = rt
                .output::<i8>(0)
                .map_err(QuantError::runtime("int8 output"))?;
            for (&f, &q) in reference.iter().zip(out) {
                let d = output_q.0 * (i32::from(q) - output_q.1) as f32;
                signal += f64::from(f) * f64::from(f);
                noise += f64::from(f - d) * f64::from(f - d);
            }
        }
        Ok((signal, noise))
    })?;
    let (signal, noise) = parts
        .into_iter()
        .fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1));
    Ok(sqnr_db(signal, noise))
}

/// Runs both models over `eval` and measures the accuracy. `activations` pairs float and int8
/// tensor indices (model input first); with `per_tensor` every pair gets an SQNR. Without
/// `per_tensor`, `float_cache` (from [`float_outputs`]) spares the float runs.
pub fn evaluate(
    float: &Model,
    int8: &Model,
    activations: &[(usize, usize)],
    eval: &EvalSet,
    per_tensor: bool,
    float_cache: Option<&[Vec<f32>]>,
    threads: usize,
) -> Result<Accuracy, QuantError> {
    let options = Options {
        kernels: KernelTier::Best,
        ..Options::default()
    };
    let int8_proto = Interpreter::new(int8, options).map_err(QuantError::runtime("int8 model"))?;
    let input_q = int8_proto
        .input_info(0)
        .ok()
        .and_then(|i| i.per_tensor_quant())
        .ok_or_else(|| {
            QuantError::UnsupportedModel(
                "the int8 model input has no per-tensor quantisation".into(),
            )
        })?;
    let output_q = int8_proto
        .output_info(0)
        .ok()
        .and_then(|i| i.per_tensor_quant())
        .ok_or_else(|| {
            QuantError::UnsupportedModel(
                "the int8 model output has no per-tensor quantisation".into(),
            )
        })?;
    let int8_to_float: HashMap<usize, usize> = activations.iter().map(|&(f, q)| (q, f)).collect();
    let cache: Vec<Option<&Vec<f32>>> = match float_cache {
        Some(c) if !per_tensor && c.len() == eval.images.images.len() => {
            c.iter().map(Some).collect()
        }
        _ => vec![None; eval.images.images.len()],
    };
    let items: Vec<EvalItem<'_>> = eval
        .images
        .images
        .iter()
        .zip(&eval.masks)
        .zip(cache)
        .map(|((i, m), c)| (i, m, c))
        .collect();
    let float_input = float.subgraphs[0].inputs[0] as usize;
    let parts = parallel_chunks(
        float,
        "evaluation (float model)",
        &items,
        threads,
        |float_rt, part| {
            let mut int8_rt = int8_proto.clone();
            let mut acc = Partial::default();
            let mut float_values: HashMap<usize, Vec<f32>> = HashMap::new();
            for (image, mask, cached) in part {
                // Keep the buffers (no fresh allocation per tensor and slice): an emptied
                // entry contributes nothing to the sums below.
                for v in float_values.values_mut() {
                    v.clear();
                }
                let float_out: Vec<f32> = match cached {
                    Some(cached) => cached.to_vec(),
                    None => {
                        float_rt
                            .set_input(0, image)
                            .map_err(QuantError::runtime("evaluation input"))?;
                        if per_tensor {
                            float_rt
                                .invoke_with_observer(&mut |obs| {
                                    if let TensorData::F32(v) = obs.data {
                                        let kept =
                                            float_values.entry(obs.tensor.index).or_default();
                                        kept.extend_from_slice(v);
                                    }
                                })
                                .map_err(QuantError::runtime("float evaluation run"))?;
                        } else {
                            float_rt
                                .invoke()
                                .map_err(QuantError::runtime("float evaluation run"))?;
                        }
                        float_rt
                            .output::<f32>(0)
                            .map_err(QuantError::runtime("float output"))?
                            .to_vec()
                    }
                };
                let q_in = quantize_input(image, input_q.0, input_q.1);
                if per_tensor {
                    let (s, n) = signal_noise(image, &q_in, input_q.0, input_q.1);
                    *acc.signal.entry(float_input).or_default() += s;
                    *acc.noise.entry(float_input).or_default() += n;
                }
                int8_rt
                    .set_input(0, &q_in)
                    .map_err(QuantError::runtime("int8 input"))?;
                if per_tensor {
                    let signal = &mut acc.signal;
                    let noise = &mut acc.noise;
                    int8_rt
                        .invoke_with_observer(&mut |obs| {
                            let (TensorData::I8(q), Some((scale, zp))) =
                                (obs.data, obs.tensor.per_tensor_quant())
                            else {
                                return;
                            };
                            let Some(&f_idx) = int8_to_float.get(&obs.tensor.index) else {
                                return;
                            };
                            let Some(f) = float_values.get(&f_idx) else {
                                return;
                            };
                            let (s, n) = signal_noise(f, q, scale, zp);
                            *signal.entry(f_idx).or_default() += s;
                            *noise.entry(f_idx).or_default() += n;
                        })
                        .map_err(QuantError::runtime("int8 evaluation run"))?;
                } else {
                    int8_rt
                        .invoke()
                        .map_err(QuantError::runtime("int8 evaluation run"))?;
                }
                let q_out = int8_rt
                    .output::<i8>(0)
                    .map_err(QuantError::runtime("int8 output"))?;
                let deq: Vec<f32> = q_out
                    .iter()
                    .map(|&q| output_q.0 * (i32::from(q) - output_q.1) as f32)
                    .collect();
                for (&f, &d) in float_out.iter().zip(&deq) {
                    acc.out_signal += f64::from(f) * f64::from(f);
                    acc.out_noise += f64::from(f - d) * f64::from(f - d);
                    if f.round_ties_even() == d.round_ties_even() {
                        acc.agree += 1;
                    }
                }
                acc.pixels += float_out.len() as u64;
                acc.dice_fp32 += checked_dice("fp32", &float_out, mask)?;
                acc.dice_int8 += checked_dice("int8", &deq, mask)?;
                acc.samples += 1;
            }
            Ok(acc)
        },
    )?;
    let mut total = Partial::default();
    for p in parts {
        for (k, v) in p.signal {
            *total.signal.entry(k).or_default() += v;
        }
        for (k, v) in p.noise {
            *total.noise.entry(k).or_default() += v;
        }
        total.out_signal += p.out_signal;
        total.out_noise += p.out_noise;
        total.dice_fp32 += p.dice_fp32;
        total.dice_int8 += p.dice_int8;
        total.agree += p.agree;
        total.pixels += p.pixels;
        total.samples += p.samples;
    }
    let sg = &float.subgraphs[0];
    let mut producer: HashMap<usize, String> = HashMap::new();
    for op in &sg.operators {
        producer.insert(op.outputs[0] as usize, op.op.name());
    }
    let per_tensor_rows = if per_tensor {
        activations
            .iter()
            .map(|&(f, _)| TensorSqnr {
                name: sg.tensors[f].name.clone(),
                op: producer.get(&f).cloned().unwrap_or_else(|| "INPUT".into()),
                sqnr_db: sqnr_db(
                    total.signal.get(&f).copied().unwrap_or(0.0),
                    total.noise.get(&f).copied().unwrap_or(0.0),
                ),
            })
            .collect()
    } else {
        Vec::new()
    };
    let n = total.samples.max(1) as f64;
    Ok(Accuracy {
        samples: total.samples,
        data: eval.images.description.clone(),
        output_sqnr_db: sqnr_db(total.out_signal, total.out_noise),
        dice_fp32: total.dice_fp32 / n,
        dice_int8: total.dice_int8 / n,
        mask_agreement: total.agree as f64 / total.pixels.max(1) as f64,
        per_tensor: per_tensor_rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_input_rounds_half_away_from_zero() {
        assert_eq!(
            quantize_input(&[0.25, -0.25, 100.0], 0.5, 3),
            vec![4, 2, 127]
        );
    }

    #[test]
    fn signal_noise_matches_the_plain_f64_sums() {
        let f: Vec<f32> = (0..1003)
            .map(|i| ((i * 37) % 211) as f32 / 17.0 - 3.0)
            .collect();
        let q: Vec<i8> = f
            .iter()
            .map(|&x| ((x / 0.05).round() as i32 + 7).clamp(-128, 127) as i8)
            .collect();
        let (mut s, mut n) = (0.0f64, 0.0f64);
        for (&x, &v) in f.iter().zip(&q) {
            let d = f64::from(x) - 0.05 * f64::from(i32::from(v) - 7);
            s += f64::from(x) * f64::from(x);
            n += d * d;
        }
        let (s2, n2) = signal_noise(&f, &q, 0.05, 7);
        assert!((s2 / s - 1.0).abs() < 1e-5, "{s2} vs {s}");
        assert!((n2 / n - 1.0).abs() < 1e-3, "{n2} vs {n}");
    }

    #[test]
    fn sqnr_of_exact_and_noisy_signals() {
        assert_eq!(sqnr_db(1.0, 0.0), None);
        assert!((sqnr_db(100.0, 1.0).unwrap() - 20.0).abs() < 1e-12);
    }
}
