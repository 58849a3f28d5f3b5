//! Verification on held-out data: the float and the quantised model (int8, 16x8 or mixed) run
//! side by side on our runtime; per-tensor SQNR (dequantised vs f32), output SQNR, Dice of both
//! against the ground truth and the agreement of their masks.

use std::collections::HashMap;

use serde::Serialize;
use tflite_runtime::npy::NpyData;
use tflite_runtime::reference::quantize::QuantInt;
use tflite_runtime::{Interpreter, KernelTier, Options, RuntimeError, TensorData, TensorInfo};
use tflite_writer::{Model, TensorType};

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
    quantized(values, scale, zero_point)
}

/// [`quantize_input`] for int16 tensors (clamped to int16).
pub fn quantize_input_i16(values: &[f32], scale: f32, zero_point: i32) -> Vec<i16> {
    quantized(values, scale, zero_point)
}

fn quantized<T: QuantInt + Default + Clone>(values: &[f32], scale: f32, zero_point: i32) -> Vec<T> {
    let mut out = vec![T::default(); values.len()];
    tflite_runtime::reference::quantize::quantize_f32(scale, zero_point, values, &mut out);
    out
}

/// A quantised model input: int8 or int16 values.
#[derive(Debug, Clone, PartialEq)]
pub enum QuantInput {
    /// int8 values.
    I8(Vec<i8>),
    /// int16 values.
    I16(Vec<i16>),
}

impl QuantInput {
    /// Quantises `values` for a model input described by `info` (int8 or int16, per tensor).
    pub fn for_tensor(values: &[f32], info: &TensorInfo) -> Result<QuantInput, QuantError> {
        let (scale, zp) = info.per_tensor_quant().ok_or_else(|| {
            QuantError::UnsupportedModel(format!(
                "the model input `{}` has no per-tensor quantisation",
                info.name
            ))
        })?;
        match info.dtype {
            TensorType::Int8 => Ok(QuantInput::I8(quantize_input(values, scale, zp))),
            TensorType::Int16 => Ok(QuantInput::I16(quantize_input_i16(values, scale, zp))),
            other => Err(QuantError::UnsupportedModel(format!(
                "the model input `{}` is {other:?}, expected INT8 or INT16",
                info.name
            ))),
        }
    }

    /// Sets it as input `i` of `rt`.
    pub fn set(&self, rt: &mut Interpreter, i: usize) -> Result<(), RuntimeError> {
        match self {
            QuantInput::I8(v) => rt.set_input(i, v),
            QuantInput::I16(v) => rt.set_input(i, v),
        }
    }

    /// `(Σ f², Σ (f − scale·(q − zp))²)` against the float values `f` ([`signal_noise`]).
    pub fn signal_noise(&self, f: &[f32], scale: f32, zero_point: i32) -> (f64, f64) {
        match self {
            QuantInput::I8(v) => signal_noise(f, v, scale, zero_point),
            QuantInput::I16(v) => signal_noise(f, v, scale, zero_point),
        }
    }

    /// Several inputs as one `.npy` payload `[n, len]` (all of one type).
    pub fn batch_npy(inputs: &[QuantInput]) -> Result<NpyData, QuantError> {
        let mixed = || QuantError::UnsupportedModel("inputs of different types".into());
        match inputs.first() {
            Some(QuantInput::I16(_)) => Ok(NpyData::I16(
                inputs
                    .iter()
                    .map(|x| match x {
                        QuantInput::I16(v) => Ok(v.as_slice()),
                        QuantInput::I8(_) => Err(mixed()),
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .concat(),
            )),
            _ => Ok(NpyData::I8(
                inputs
                    .iter()
                    .map(|x| match x {
                        QuantInput::I8(v) => Ok(v.as_slice()),
                        QuantInput::I16(_) => Err(mixed()),
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .concat(),
            )),
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            QuantInput::I8(v) => v.len(),
            QuantInput::I16(v) => v.len(),
        }
    }

    /// True when it holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `(Σ f², Σ (f − scale·(q − zp))²)` of an int8 or int16 tensor `q` observed by the runtime
/// (`None` for other types).
pub fn observed_signal_noise(
    f: &[f32],
    q: TensorData<'_>,
    scale: f32,
    zero_point: i32,
) -> Option<(f64, f64)> {
    match q {
        TensorData::I8(q) => Some(signal_noise(f, q, scale, zero_point)),
        TensorData::I16(q) => Some(signal_noise(f, q, scale, zero_point)),
        _ => None,
    }
}

/// `(Σ f², Σ (f − scale·(q − zp))²)`: eight f32 lanes over blocks of 256 values, each block's
/// sums added in f64 (vectorised, and the f32 partial sums stay short enough to be exact to
/// ~1e-5 relative).
pub fn signal_noise<Q: Copy>(f: &[f32], q: &[Q], scale: f32, zero_point: i32) -> (f64, f64)
where
    f32: From<Q>,
{
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
    pub dice_quantized: f64,
    /// Fraction of pixels where the int8 and float masks (threshold 0.5) agree.
    pub mask_agreement: f64,
    /// Per activation tensor, in execution order (empty when not requested).
    pub per_tensor: Vec<TensorSqnr>,
}

impl Accuracy {
    /// `dice_quantized − dice_fp32`.
    pub fn dice_delta(&self) -> f64 {
        self.dice_quantized - self.dice_fp32
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
    dice_quantized: f64,
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

/// The per-tensor quantisation of a quantised model's output.
fn output_quant(rt: &Interpreter) -> Result<(f32, i32), QuantError> {
    rt.output_info(0)
        .ok()
        .and_then(|i| i.per_tensor_quant())
        .ok_or_else(|| {
            QuantError::UnsupportedModel(
                "the quantised model output has no per-tensor quantisation".into(),
            )
        })
}

/// Output SQNR of `int8` (any quantised model) against known float outputs (`float_outputs[i]` for `images[i]`), in
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
    .map_err(QuantError::runtime("quantised model"))?;
    let input_info = int8_proto
        .input_info(0)
        .map_err(QuantError::runtime("quantised model input"))?
        .clone();
    let output_q = output_quant(&int8_proto)?;
    let items: Vec<(&Vec<f32>, &Vec<f32>)> = images.iter().zip(float_outputs).collect();
    let parts = parallel_chunks(int8, "quantised scoring", &items, threads, |rt, part| {
        let (mut signal, mut noise) = (0.0f64, 0.0f64);
        for (image, reference) in part {
            QuantInput::for_tensor(image, &input_info)?
                .set(rt, 0)
                .map_err(QuantError::runtime("quantised input"))?;
            rt.invoke().map_err(QuantError::runtime("quantised run"))?;
            let out = rt
                .output_data(0)
                .map_err(QuantError::runtime("quantised output"))?
                .to_f32_vec(Some(output_q));
            for (&f, &d) in reference.iter().zip(&out) {
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
    let int8_proto =
        Interpreter::new(int8, options).map_err(QuantError::runtime("quantised model"))?;
    let input_info = int8_proto
        .input_info(0)
        .map_err(QuantError::runtime("quantised model input"))?
        .clone();
    let input_q = input_info.per_tensor_quant().ok_or_else(|| {
        QuantError::UnsupportedModel(
            "the quantised model input has no per-tensor quantisation".into(),
        )
    })?;
    let output_q = output_quant(&int8_proto)?;
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
                let q_in = QuantInput::for_tensor(image, &input_info)?;
                if per_tensor {
                    let (s, n) = q_in.signal_noise(image, input_q.0, input_q.1);
                    *acc.signal.entry(float_input).or_default() += s;
                    *acc.noise.entry(float_input).or_default() += n;
                }
                q_in.set(&mut int8_rt, 0)
                    .map_err(QuantError::runtime("quantised input"))?;
                if per_tensor {
                    let signal = &mut acc.signal;
                    let noise = &mut acc.noise;
                    int8_rt
                        .invoke_with_observer(&mut |obs| {
                            let Some((scale, zp)) = obs.tensor.per_tensor_quant() else {
                                return;
                            };
                            let Some(&f_idx) = int8_to_float.get(&obs.tensor.index) else {
                                return;
                            };
                            let Some(f) = float_values.get(&f_idx) else {
                                return;
                            };
                            let Some((s, n)) = observed_signal_noise(f, obs.data, scale, zp) else {
                                return;
                            };
                            *signal.entry(f_idx).or_default() += s;
                            *noise.entry(f_idx).or_default() += n;
                        })
                        .map_err(QuantError::runtime("quantised evaluation run"))?;
                } else {
                    int8_rt
                        .invoke()
                        .map_err(QuantError::runtime("quantised evaluation run"))?;
                }
                let deq = int8_rt
                    .output_data(0)
                    .map_err(QuantError::runtime("quantised output"))?
                    .to_f32_vec(Some(output_q));
                for (&f, &d) in float_out.iter().zip(&deq) {
                    acc.out_signal += f64::from(f) * f64::from(f);
                    acc.out_noise += f64::from(f - d) * f64::from(f - d);
                    if f.round_ties_even() == d.round_ties_even() {
                        acc.agree += 1;
                    }
                }
                acc.pixels += float_out.len() as u64;
                acc.dice_fp32 += checked_dice("fp32", &float_out, mask)?;
                acc.dice_quantized += checked_dice("int8", &deq, mask)?;
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
        total.dice_quantized += p.dice_quantized;
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
        dice_quantized: total.dice_quantized / n,
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
    fn int16_inputs_round_like_int8_and_clamp_to_int16() {
        assert_eq!(
            quantize_input_i16(&[0.25, -0.25, 1e6, -1e6], 0.5, 0),
            vec![1, -1, 32767, -32768]
        );
        let info = TensorInfo {
            index: 0,
            name: "x".into(),
            shape: vec![2],
            dtype: TensorType::Int16,
            quantization: Some(tflite_writer::Quantization::per_tensor(0.5, 0)),
        };
        assert_eq!(
            QuantInput::for_tensor(&[1.0, -2.0], &info).unwrap(),
            QuantInput::I16(vec![2, -4])
        );
    }

    #[test]
    fn sqnr_of_exact_and_noisy_signals() {
        assert_eq!(sqnr_db(1.0, 0.0), None);
        assert!((sqnr_db(100.0, 1.0).unwrap() - 20.0).abs() < 1e-12);
    }
}
