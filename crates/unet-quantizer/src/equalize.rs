//! Concatenation equalisation: a function-preserving rescaling of the float model that stops the
//! widest input of a CONCATENATION from dictating the int8 scale of all of them.
//!
//! TFLite's int8 CONCATENATION needs every input at the output's scale and zero point, so the
//! U-Net's skip tensor (a ReLU output, say `[0, 11]`) and the transposed convolution beside it
//! (signed, say `[-37, 30]`) share one grid six times coarser than the skip alone would need.
//! An input whose producer is linear or ReLU (a CONV_2D or TRANSPOSE_CONV, activation NONE or
//! RELU) and whose only reader is the concatenation can be scaled per channel by `f_c > 0`:
//! multiply the producer's filter row and bias of channel `c` by `f_c` and divide the weights of
//! every reader of the concatenation (CONV_2D only) on that input channel by `f_c`. ReLU and
//! max-pool commute with positive scaling, so the float model computes the same function, but
//! each scaled channel now spans at most the range of the inputs that cannot be scaled (the
//! skip), and the shared grid is set by the skip.
//!
//! Ranges come from a short pre-pass over the first calibration slices (per-channel minimum and
//! maximum), so the main calibration then observes the equalised model.

use std::collections::HashMap;

use serde::Serialize;
use tflite_runtime::TensorData;
use tflite_writer::{Activation, BuiltinOp, BuiltinOptions, Model};

use crate::calibrate::parallel_chunks;
use crate::error::QuantError;
use crate::graph::{FloatGraph, fused_activation};

/// Calibration slices the pre-pass observes.
pub const PREPASS_SLICES: usize = 4;

/// Bounds of a channel's factor.
const FACTOR_LIMITS: (f32, f32) = (1.0 / 64.0, 64.0);

/// One concatenation input that was rescaled.
#[derive(Debug, Clone, Serialize)]
pub struct EqualizedInput {
    /// The rescaled tensor.
    pub tensor: String,
    /// The concatenation's output tensor.
    pub concatenation: String,
    /// The range each rescaled channel is brought inside: the maximum of the inputs that were not
    /// rescaled, and a negative side in the proportion of the whole group before rescaling.
    pub target_range: (f32, f32),
    /// Largest |value| of this input before rescaling.
    pub before_abs: f32,
    /// Smallest and largest per-channel factor.
    pub factor_range: (f32, f32),
    /// The factor of every channel: the int8 model holds `factor[c] ×` the original channel `c`
    /// of `tensor`, and of channel `offset + c` of `concatenation`.
    pub factors: Vec<f32>,
    /// The channel offset of `tensor` in `concatenation`.
    pub offset: usize,
}

impl EqualizedInput {
    /// One line for the terminal and the Markdown report.
    pub fn line(&self) -> String {
        format!(
            "equalised `{}` into `{}`: |max| {:.2} -> within [{:.2}, {:.2}] (channel factors {:.3}..{:.3})",
            self.tensor,
            self.concatenation,
            self.before_abs,
            self.target_range.0,
            self.target_range.1,
            self.factor_range.0,
            self.factor_range.1
        )
    }
}

/// A concatenation input that may be rescaled: its producer, its channel offset in the
/// concatenation, and the concatenation's readers.
struct Candidate {
    tensor: usize,
    producer: usize,
    offset: usize,
    channels: usize,
    concat_out: usize,
    readers: Vec<usize>,
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn to_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The candidates of `model`, and for each concatenation the inputs that stay as they are.
fn candidates(model: &Model) -> (Vec<Candidate>, HashMap<usize, Vec<usize>>) {
    let sg = &model.subgraphs[0];
    let mut producer: HashMap<usize, usize> = HashMap::new();
    let mut readers: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, op) in sg.operators.iter().enumerate() {
        producer.insert(op.outputs[0] as usize, i);
        for &t in &op.inputs {
            if let Ok(t) = usize::try_from(t) {
                readers.entry(t).or_default().push(i);
            }
        }
    }
    // A buffer used by two tensors cannot be rescaled for one of them.
    let mut buffer_users: HashMap<u32, usize> = HashMap::new();
    for t in &sg.tensors {
        if t.buffer != 0 {
            *buffer_users.entry(t.buffer).or_default() += 1;
        }
    }
    let own_const = |t: i32| {
        usize::try_from(t).ok().is_some_and(|t| {
            model.tensor_data(0, t).is_some()
                && buffer_users.get(&sg.tensors[t].buffer).copied() == Some(1)
        })
    };
    let outputs: Vec<usize> = sg.outputs.iter().map(|&o| o as usize).collect();
    let mut found = Vec::new();
    let mut anchors: HashMap<usize, Vec<usize>> = HashMap::new();
    for op in &sg.operators {
        let BuiltinOptions::Concatenation(options) = &op.options else {
            continue;
        };
        let out = op.outputs[0] as usize;
        let rank = sg.tensors[out].shape.len() as i32;
        if op.op != BuiltinOp::CONCATENATION
            || rank == 0
            || (options.axis != -1 && options.axis != rank - 1)
            || options.fused_activation != Activation::None
            || outputs.contains(&out)
        {
            continue;
        }
        let out_readers = readers.get(&out).cloned().unwrap_or_default();
        let readers_ok = !out_readers.is_empty()
            && out_readers.iter().all(|&r| {
                let rop = &sg.operators[r];
                rop.op == BuiltinOp::CONV_2D
                    && rop.inputs.first() == Some(&(out as i32))
                    && rop.inputs.get(1).is_some_and(|&w| own_const(w))
                    && !rop.inputs[2..].contains(&(out as i32))
            });
        let mut offset = 0usize;
        let mut mine = Vec::new();
        let mut keep = Vec::new();
        for &t in &op.inputs {
            let Ok(t) = usize::try_from(t) else {
                mine.clear();
                keep.clear();
                break;
            };
            let channels = sg.tensors[t].shape.last().copied().unwrap_or(0).max(0) as usize;
            let scalable = readers_ok
                && readers.get(&t).is_some_and(|r| r.len() == 1)
                && !outputs.contains(&t)
                && producer.get(&t).is_some_and(|&p| {
                    let pop = &sg.operators[p];
                    let (w, b) = match pop.op {
                        BuiltinOp::CONV_2D => (1, 2),
                        BuiltinOp::TRANSPOSE_CONV => (1, 3),
                        _ => return false,
                    };
                    matches!(
                        fused_activation(&pop.options),
                        Activation::None | Activation::Relu
                    ) && pop.inputs.get(w).is_some_and(|&w| own_const(w))
                        && pop.inputs.get(b).is_some_and(|&b| b >= 0 && own_const(b))
                });
            if scalable {
                mine.push(Candidate {
                    tensor: t,
                    producer: producer[&t],
                    offset,
                    channels,
                    concat_out: out,
                    readers: out_readers.clone(),
                });
            } else {
                keep.push(t);
            }
            offset += channels;
        }
        // With nothing to anchor to, there is no target range.
        if !keep.is_empty() && !mine.is_empty() {
            anchors.insert(out, keep);
            found.extend(mine);
        }
    }
    (found, anchors)
}

/// Per-channel (min, max) of `tensors` and the overall |max| of `whole`, over `images`.
type Ranges = (HashMap<usize, Vec<(f32, f32)>>, HashMap<usize, (f32, f32)>);

fn observe(
    model: &Model,
    images: &[Vec<f32>],
    per_channel: &HashMap<usize, usize>,
    whole: &[usize],
    threads: usize,
) -> Result<Ranges, QuantError> {
    let parts = parallel_chunks(
        model,
        "equalisation pre-pass",
        images,
        threads,
        |rt, part| {
            let mut channel: HashMap<usize, Vec<(f32, f32)>> = HashMap::new();
            let mut whole_range: HashMap<usize, (f32, f32)> = HashMap::new();
            for image in part {
                rt.set_input(0, image)
                    .map_err(QuantError::runtime("equalisation pre-pass"))?;
                rt.invoke_with_observer(&mut |obs| {
                    let TensorData::F32(values) = obs.data else {
                        return;
                    };
                    let t = obs.tensor.index;
                    if let Some(&c) = per_channel.get(&t) {
                        let r = channel
                            .entry(t)
                            .or_insert_with(|| vec![(f32::INFINITY, f32::NEG_INFINITY); c]);
                        for px in values.chunks_exact(c) {
                            for (r, &v) in r.iter_mut().zip(px) {
                                if v.is_finite() {
                                    r.0 = r.0.min(v);
                                    r.1 = r.1.max(v);
                                }
                            }
                        }
                    }
                    if whole.contains(&t) {
                        let (lo, hi, _) = crate::calibrate::min_max(values);
                        let e = whole_range
                            .entry(t)
                            .or_insert((f32::INFINITY, f32::NEG_INFINITY));
                        *e = (e.0.min(lo), e.1.max(hi));
                    }
                })
                .map_err(QuantError::runtime("equalisation pre-pass"))?;
            }
            Ok((channel, whole_range))
        },
    )?;
    let mut channel: HashMap<usize, Vec<(f32, f32)>> = HashMap::new();
    let mut whole_range: HashMap<usize, (f32, f32)> = HashMap::new();
    for (c, a) in parts {
        for (t, r) in c {
            let e = channel.entry(t).or_insert_with(|| r.clone());
            for (e, r) in e.iter_mut().zip(&r) {
                e.0 = e.0.min(r.0);
                e.1 = e.1.max(r.1);
            }
        }
        for (t, (lo, hi)) in a {
            let e = whole_range
                .entry(t)
                .or_insert((f32::INFINITY, f32::NEG_INFINITY));
            *e = (e.0.min(lo), e.1.max(hi));
        }
    }
    Ok((channel, whole_range))
}

/// Rescales the scalable inputs of every concatenation of `graph` (see the module docs), using
/// the first [`PREPASS_SLICES`] of `images`. Returns the graph unchanged when nothing applies.
pub fn equalize_concatenations(
    graph: &FloatGraph,
    images: &[Vec<f32>],
    threads: usize,
) -> Result<(FloatGraph, Vec<EqualizedInput>), QuantError> {
    let (found, anchors) = candidates(&graph.model);
    if found.is_empty() {
        return Ok((graph.clone(), Vec::new()));
    }
    let per_channel: HashMap<usize, usize> = found.iter().map(|c| (c.tensor, c.channels)).collect();
    let whole: Vec<usize> = anchors.values().flatten().copied().collect();
    let subset = &images[..images.len().min(PREPASS_SLICES)];
    let (channel_ranges, anchor_ranges) =
        observe(&graph.model, subset, &per_channel, &whole, threads)?;

    let mut out = graph.clone();
    let mut report = Vec::new();
    for cand in &found {
        // The inputs that stay as they are set the target [lo_t, hi_t]: their maximum, and a
        // negative side in the proportion the whole group had before (so a ReLU skip beside a
        // signed up-convolution does not lose its sign bit to it).
        let (anchor_lo, anchor_hi) = anchors[&cand.concat_out]
            .iter()
            .filter_map(|t| anchor_ranges.get(t))
            .fold((0.0f32, 0.0f32), |(a, b), &(lo, hi)| (a.min(lo), b.max(hi)));
        let (group_lo, group_hi) = found
            .iter()
            .filter(|c| c.concat_out == cand.concat_out)
            .filter_map(|c| channel_ranges.get(&c.tensor))
            .flatten()
            .fold((anchor_lo, anchor_hi), |(a, b), &(lo, hi)| {
                (a.min(lo), b.max(hi))
            });
        let Some(ranges) = channel_ranges.get(&cand.tensor) else {
            continue;
        };
        if !(anchor_hi > 0.0 && anchor_hi.is_finite() && group_hi > 0.0 && group_lo.is_finite()) {
            continue;
        }
        let target = (anchor_lo.min(group_lo / group_hi * anchor_hi), anchor_hi);
        let factors: Vec<f32> = ranges
            .iter()
            .map(|&(lo, hi)| {
                let mut f = f32::INFINITY;
                if hi > 0.0 {
                    f = f.min(target.1 / hi);
                }
                if lo < 0.0 && target.0 < 0.0 {
                    f = f.min(target.0 / lo);
                }
                if f.is_finite() && f > 0.0 {
                    f.clamp(FACTOR_LIMITS.0, FACTOR_LIMITS.1)
                } else {
                    1.0
                }
            })
            .collect();
        if factors.len() != cand.channels || factors.iter().all(|&f| f == 1.0) {
            continue;
        }
        scale_producer(&mut out.model, cand, &factors)?;
        for &r in &cand.readers {
            scale_reader(&mut out.model, r, cand.offset, &factors)?;
        }
        let sg = &graph.model.subgraphs[0];
        report.push(EqualizedInput {
            tensor: sg.tensors[cand.tensor].name.clone(),
            concatenation: sg.tensors[cand.concat_out].name.clone(),
            target_range: target,
            before_abs: ranges
                .iter()
                .fold(0.0f32, |m, &(lo, hi)| m.max(lo.abs()).max(hi.abs())),
            factor_range: factors
                .iter()
                .fold((f32::INFINITY, 0.0f32), |(a, b), &f| (a.min(f), b.max(f))),
            factors,
            offset: cand.offset,
        });
    }
    Ok((out, report))
}

fn buffer_of(model: &Model, tensor: i32) -> Result<usize, QuantError> {
    let t = usize::try_from(tensor)
        .ok()
        .and_then(|t| model.subgraphs[0].tensors.get(t))
        .ok_or_else(|| QuantError::UnsupportedModel(format!("tensor {tensor} out of range")))?;
    Ok(t.buffer as usize)
}

/// Producer filter `[Cout, …]` row `c` and bias `c` times `f_c`.
fn scale_producer(model: &mut Model, cand: &Candidate, factors: &[f32]) -> Result<(), QuantError> {
    let op = &model.subgraphs[0].operators[cand.producer];
    let (w_slot, b_slot) = if op.op == BuiltinOp::CONV_2D {
        (1, 2)
    } else {
        (1, 3)
    };
    let (w, b) = (op.inputs[w_slot], op.inputs[b_slot]);
    let wb = buffer_of(model, w)?;
    let bb = buffer_of(model, b)?;
    let mut weights = f32s(&model.buffers[wb].data);
    let mut bias = f32s(&model.buffers[bb].data);
    let n = factors.len();
    if bias.len() != n || !weights.len().is_multiple_of(n) {
        return Err(QuantError::UnsupportedModel(format!(
            "op {}: filter/bias sizes do not match {n} output channels",
            cand.producer
        )));
    }
    let per = weights.len() / n;
    for (c, &f) in factors.iter().enumerate() {
        for w in &mut weights[c * per..(c + 1) * per] {
            *w *= f;
        }
        bias[c] *= f;
    }
    model.buffers[wb].data = to_bytes(&weights);
    model.buffers[bb].data = to_bytes(&bias);
    Ok(())
}

/// Reader CONV_2D filter `[Cout, Kh, Kw, Cin]`: input channel `offset + c` divided by `f_c`.
fn scale_reader(
    model: &mut Model,
    reader: usize,
    offset: usize,
    factors: &[f32],
) -> Result<(), QuantError> {
    let w = model.subgraphs[0].operators[reader].inputs[1];
    let cin = model.subgraphs[0].tensors[w as usize]
        .shape
        .last()
        .copied()
        .unwrap_or(0)
        .max(0) as usize;
    let wb = buffer_of(model, w)?;
    let mut weights = f32s(&model.buffers[wb].data);
    if cin < offset + factors.len() || cin == 0 || !weights.len().is_multiple_of(cin) {
        return Err(QuantError::UnsupportedModel(format!(
            "op {reader}: filter has {cin} input channels, fewer than the concatenation feeds it"
        )));
    }
    for px in weights.chunks_exact_mut(cin) {
        for (w, &f) in px[offset..offset + factors.len()].iter_mut().zip(factors) {
            *w /= f;
        }
    }
    model.buffers[wb].data = to_bytes(&weights);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::prepare_float;
    use tflite_runtime::synth::{UNetSpec, unet, widen_transpose_convs};
    use tflite_runtime::{Interpreter, Options};

    fn run(model: &Model, image: &[f32]) -> Vec<f32> {
        let mut rt = Interpreter::new(model, Options::default()).expect("interpreter");
        rt.set_input(0, image).expect("input");
        let mut tensors: Vec<f32> = Vec::new();
        rt.invoke_with_observer(&mut |obs| {
            if let TensorData::F32(v) = obs.data {
                tensors.push(v.iter().fold(0.0f32, |m, x| m.max(x.abs())));
            }
        })
        .expect("invoke");
        let mut out = rt.output::<f32>(0).expect("output").to_vec();
        out.extend(tensors);
        out
    }

    #[test]
    fn equalised_unet_computes_the_same_function_and_narrows_its_concat_inputs() {
        let size = 32;
        let graph = prepare_float(&unet(UNetSpec {
            fms: 4,
            size,
            in_channels: 1,
            int8: false,
            seed: 3,
        }))
        .expect("prepare");
        // Make every transposed convolution much wider than the skip it is concatenated with.
        let mut wide = graph.clone();
        assert_eq!(widen_transpose_convs(&mut wide.model, 40.0), 4);
        let images: Vec<Vec<f32>> = (0..4)
            .map(|k| {
                (0..size * size)
                    .map(|i| (((i * 7 + k * 13) % 29) as f32 / 9.0) - 1.0)
                    .collect()
            })
            .collect();
        let (eq, report) = equalize_concatenations(&wide, &images, 2).expect("equalise");
        assert_eq!(report.len(), 4, "{report:?}");
        for r in &report {
            assert!(r.before_abs > 2.0 * r.target_range.1, "{r:?}");
            assert!(r.factor_range.1 < 1.0, "{r:?}");
        }
        // Same function: the output and every tensor's |max| agree except the rescaled inputs.
        let rescaled: Vec<&str> = report.iter().map(|r| r.tensor.as_str()).collect();
        let concats: Vec<&str> = report.iter().map(|r| r.concatenation.as_str()).collect();
        let sg = &eq.model.subgraphs[0];
        for image in &images {
            let (a, b) = (run(&wide.model, image), run(&eq.model, image));
            let n = size * size;
            for (x, y) in a[..n].iter().zip(&b[..n]) {
                assert!((x - y).abs() <= 1e-4 * (1.0 + x.abs()), "{x} vs {y}");
            }
            for (k, op) in sg.operators.iter().enumerate() {
                let name = sg.tensors[op.outputs[0] as usize].name.as_str();
                let (x, y) = (a[n + k], b[n + k]);
                if rescaled.contains(&name) {
                    assert!(y < x, "{name}: {y} not below {x}");
                } else if concats.contains(&name) {
                    assert!(y <= x * (1.0 + 1e-3), "{name}: {y} above {x}");
                } else {
                    assert!((x - y).abs() <= 1e-3 * (1.0 + x), "{name}: {x} vs {y}");
                }
            }
        }
        // Nothing to equalise: the graph comes back unchanged.
        let (same, none) = equalize_concatenations(&eq, &images, 1).expect("again");
        assert!(none.iter().all(|r| r.factor_range.1 <= 1.0 + 1e-3));
        assert_eq!(same.model.subgraphs[0].operators.len(), sg.operators.len());
    }
}
