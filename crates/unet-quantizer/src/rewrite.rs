//! From calibration ranges to an int8 model: activation parameters under the TFLite int8
//! constraints (TFLite's int8 specification: shared scales where an op cannot rescale, LOGISTIC
//! output 1/256 and −128), per-channel weights, int32 bias, and the
//! rebuilt graph.
//!
//! Constraints, and how they are met:
//! - MAX_POOL_2D, AVERAGE_POOL_2D, RESIZE_NEAREST_NEIGHBOR and RESHAPE keep their input's
//!   scale and zero point: input and output join one *sharing group*.
//! - CONCATENATION inputs and output must be exactly equal: they all join one group, whose range
//!   is the union of its members' ranges. The *producers* of the concat inputs (the convolutions
//!   and transposed convolutions of the U-Net's skip connections) then write directly at the
//!   shared parameters, so no requantising QUANTIZE op is ever needed.
//! - LOGISTIC's output is fixed at 1/256, −128 (its group takes these).
//! - Fused ReLU (and RELU) outputs start at 0, so their zero point is −128 and the clamp is free.
//! - Weights: symmetric per output channel (dim 0), `[-127, 127]`; bias: int32 at `s_in·s_w[c]`.

use std::collections::HashMap;

use serde::Serialize;
use tflite_writer::{Activation, BuiltinOp, Model, ModelBuilder, Quantization, TensorType};

use crate::calibrate::CalibrationStats;
use crate::error::QuantError;
use crate::graph::{FloatGraph, fused_activation};
use crate::observer::{LogisticFit, Observer, logistic_input_range, observed_range, qparams};

/// LOGISTIC's fixed int8 output parameters.
pub const LOGISTIC_OUTPUT: (f32, i32) = (1.0 / 256.0, -128);

/// Quantisation parameters of one activation tensor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ActParams {
    /// Scale.
    pub scale: f32,
    /// Zero point.
    pub zero_point: i32,
    /// Sharing group (tensors with the same group have identical parameters).
    pub group: usize,
}

/// The activation parameters of a whole graph.
#[derive(Debug, Clone, Default)]
pub struct ParamPlan {
    /// Float tensor index → parameters.
    pub params: HashMap<usize, ActParams>,
    /// Float tensor index → the range the observer chose (before sharing).
    pub ranges: HashMap<usize, (f32, f32)>,
    /// Warnings (range collapse, non-finite values).
    pub warnings: Vec<String>,
    /// Tensors read only by LOGISTIC: their ranges chosen against the error after the sigmoid.
    pub logistic_inputs: Vec<(String, LogisticFit)>,
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.0[a.max(b)] = a.min(b);
        }
    }
}

fn op_label(model: &Model, op_index: usize) -> String {
    format!(
        "op {op_index} {}",
        model.subgraphs[0].operators[op_index].op.name()
    )
}

/// Activation tensors read only by LOGISTIC ops (and not a model output): their ranges are
/// chosen against the error after the sigmoid.
pub fn logistic_inputs(model: &Model) -> Vec<usize> {
    let sg = &model.subgraphs[0];
    let mut readers: HashMap<usize, Vec<BuiltinOp>> = HashMap::new();
    for op in &sg.operators {
        for &i in &op.inputs {
            if let Ok(i) = usize::try_from(i) {
                readers.entry(i).or_default().push(op.op);
            }
        }
    }
    let mut found: Vec<usize> = readers
        .into_iter()
        .filter(|(t, r)| {
            r.iter().all(|&op| op == BuiltinOp::LOGISTIC)
                && !sg.outputs.contains(&(*t as i32))
                && model.tensor_data(0, *t).is_none()
        })
        .map(|(t, _)| t)
        .collect();
    found.sort_unstable();
    found
}

/// Chooses the parameters of every activation tensor (model input and operator outputs); with
/// `logistic_range`, tensors read only by LOGISTIC get the range that is best after the sigmoid.
pub fn assign_params(
    graph: &FloatGraph,
    stats: &CalibrationStats,
    observer: Observer,
    percentile: f64,
    logistic_range: bool,
) -> Result<ParamPlan, QuantError> {
    let model = &graph.model;
    let sg = &model.subgraphs[0];
    let n = sg.tensors.len();
    let is_const = |t: usize| model.tensor_data(0, t).is_some();
    let mut plan = ParamPlan::default();
    let mut producer: HashMap<usize, usize> = HashMap::new();
    let mut activations = vec![sg.inputs[0] as usize];
    for (op_index, op) in sg.operators.iter().enumerate() {
        let out = op.outputs[0] as usize;
        producer.insert(out, op_index);
        activations.push(out);
    }

    // Observer ranges, with the ReLU floor and RELU6 / RELU_N1_TO_1 bounds.
    for &t in &activations {
        let Some(s) = stats.tensors.get(&t) else {
            return Err(QuantError::BadData {
                what: "calibration",
                detail: format!(
                    "tensor `{}` was never observed during calibration",
                    sg.tensors[t].name
                ),
            });
        };
        let (mut lo, mut hi) = observed_range(s, observer, percentile);
        if let Some(&op_index) = producer.get(&t) {
            let op = &sg.operators[op_index];
            let act = if op.op == BuiltinOp::RELU {
                Activation::Relu
            } else {
                fused_activation(&op.options)
            };
            match act {
                Activation::Relu => lo = 0.0,
                Activation::Relu6 => (lo, hi) = (0.0, hi.min(6.0)),
                Activation::ReluN1To1 => (lo, hi) = (lo.max(-1.0), hi.min(1.0)),
                _ => {}
            }
        }
        plan.ranges.insert(t, (lo, hi));
    }

    // A tensor read only by LOGISTIC ops (whose output grid is fixed): its range is chosen
    // against the error after the sigmoid, where values beyond about ±6 no longer matter.
    for t in logistic_inputs(model)
        .into_iter()
        .filter(|_| logistic_range)
    {
        let (Some(s), Some(&range)) = (stats.tensors.get(&t), plan.ranges.get(&t)) else {
            continue;
        };
        let fit = logistic_input_range(s, range, LOGISTIC_OUTPUT);
        plan.ranges.insert(t, fit.chosen_range);
        plan.logistic_inputs.push((sg.tensors[t].name.clone(), fit));
    }

    // Sharing groups.
    let mut uf = UnionFind((0..n).collect());
    let mut fixed: HashMap<usize, (f32, i32)> = HashMap::new();
    for (op_index, op) in sg.operators.iter().enumerate() {
        let out = op.outputs[0] as usize;
        match op.op {
            BuiltinOp::MAX_POOL_2D
            | BuiltinOp::AVERAGE_POOL_2D
            | BuiltinOp::RESIZE_NEAREST_NEIGHBOR
            | BuiltinOp::RESHAPE => uf.union(op.inputs[0] as usize, out),
            BuiltinOp::CONCATENATION => {
                if fused_activation(&op.options) != Activation::None {
                    return Err(QuantError::Unquantisable {
                        op_index,
                        op: op.op.name(),
                        reason: "int8 CONCATENATION requires fused_activation_function NONE".into(),
                    });
                }
                for &t in &op.inputs {
                    if t < 0 || is_const(t as usize) {
                        return Err(QuantError::Unquantisable {
                            op_index,
                            op: op.op.name(),
                            reason: "constant or missing concatenation operands are not supported"
                                .into(),
                        });
                    }
                    uf.union(t as usize, out);
                }
            }
            BuiltinOp::LOGISTIC => {
                fixed.insert(out, LOGISTIC_OUTPUT);
            }
            _ => {}
        }
    }

    // Group ranges and fixed parameters.
    let mut group_range: HashMap<usize, (f32, f32)> = HashMap::new();
    let mut group_fixed: HashMap<usize, (f32, i32)> = HashMap::new();
    for &t in &activations {
        let g = uf.find(t);
        let (lo, hi) = plan.ranges[&t];
        let e = group_range.entry(g).or_insert((lo, hi));
        e.0 = e.0.min(lo);
        e.1 = e.1.max(hi);
        if let Some(&f) = fixed.get(&t) {
            if let Some(&other) = group_fixed.get(&g)
                && other != f
            {
                return Err(QuantError::UnsupportedModel(format!(
                    "tensor `{}` must share parameters with tensors whose parameters are fixed differently",
                    sg.tensors[t].name
                )));
            }
            group_fixed.insert(g, f);
        }
    }
    let mut group_ids: HashMap<usize, usize> = HashMap::new();
    let mut group_params: HashMap<usize, (f32, i32)> = HashMap::new();
    for &t in &activations {
        let g = uf.find(t);
        let next_id = group_ids.len();
        let id = *group_ids.entry(g).or_insert(next_id);
        let params = match group_params.get(&g) {
            Some(&p) => p,
            None => {
                let p = if let Some(&f) = group_fixed.get(&g) {
                    f
                } else {
                    let (lo, hi) = group_range[&g];
                    match qparams(lo, hi) {
                        Some((scale, zp)) if hi - lo >= 1e-6 => (scale, zp),
                        _ => {
                            let members: Vec<&str> = activations
                                .iter()
                                .filter(|&&m| uf.find(m) == g)
                                .map(|&m| sg.tensors[m].name.as_str())
                                .collect();
                            let where_ = producer
                                .get(&t)
                                .map_or("the model input".to_string(), |&o| op_label(model, o));
                            let (value, zp) = if lo >= 0.0 {
                                (lo.max(hi), -128)
                            } else {
                                (lo, 0)
                            };
                            plan.warnings.push(format!(
                                "range collapse: tensor `{}` ({where_}; sharing group {:?}) was constant {value} over all \
                                 {} calibration slices; using scale 1/255, zero point {zp} so that it stays exact. \
                                 A constant activation usually means a dead layer or blank calibration images",
                                sg.tensors[t].name, members, stats.samples
                            ));
                            (1.0 / 255.0, zp)
                        }
                    }
                };
                group_params.insert(g, p);
                p
            }
        };
        plan.params.insert(
            t,
            ActParams {
                scale: params.0,
                zero_point: params.1,
                group: id,
            },
        );
    }
    for &t in &stats.non_finite {
        if let Some(name) = sg.tensors.get(t).map(|t| t.name.as_str()) {
            plan.warnings.push(format!(
                "tensor `{name}` produced NaN or infinite values on the calibration data; they were ignored"
            ));
        }
    }
    Ok(plan)
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Per-channel symmetric weights and the matching int32 bias.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedLayer {
    /// Weights, same layout as the float weights.
    pub weights: Vec<i8>,
    /// Scale per output channel.
    pub weight_scales: Vec<f32>,
    /// Bias (one per output channel).
    pub bias: Vec<i32>,
    /// Bias scale per output channel (`s_in·s_w[c]`).
    pub bias_scales: Vec<f32>,
}

/// Quantises float weights `[Cout, …]` per output channel to `[-127, 127]` and the bias to int32
/// at `s_in·s_w[c]`. A channel's scale grows where needed so that its bias fits in int32.
pub fn quantize_layer(weights: &[f32], bias: &[f32], input_scale: f32) -> QuantizedLayer {
    let n_out = bias.len().max(1);
    let per = weights.len() / n_out;
    let mut layer = QuantizedLayer {
        weights: Vec::with_capacity(weights.len()),
        weight_scales: Vec::with_capacity(n_out),
        bias: Vec::with_capacity(n_out),
        bias_scales: Vec::with_capacity(n_out),
    };
    let s_in = f64::from(input_scale);
    for (c, chunk) in weights.chunks(per.max(1)).enumerate().take(n_out) {
        let max_abs = chunk.iter().fold(0.0f32, |m, &w| m.max(w.abs()));
        let b = f64::from(bias.get(c).copied().unwrap_or(0.0));
        let mut scale = f64::from(max_abs) / 127.0;
        let bias_floor = b.abs() / (s_in * f64::from(i32::MAX - 1));
        if scale < bias_floor {
            scale = bias_floor;
        }
        if scale == 0.0 {
            scale = 1.0 / 127.0;
        }
        let scale = scale as f32;
        let s = f64::from(scale);
        layer.weights.extend(
            chunk
                .iter()
                .map(|&w| (f64::from(w) / s).round().clamp(-127.0, 127.0) as i8),
        );
        let bias_scale = s_in * s;
        layer.bias.push(
            (b / bias_scale)
                .round()
                .clamp(f64::from(i32::MIN + 1), f64::from(i32::MAX - 1)) as i32,
        );
        layer.weight_scales.push(scale);
        layer.bias_scales.push(bias_scale as f32);
    }
    layer
}

/// The int8 model and how its activation tensors correspond to the float model's.
#[derive(Debug, Clone)]
pub struct Int8Model {
    /// The int8 model.
    pub model: Model,
    /// (float tensor index, int8 tensor index) of every activation tensor, in execution order
    /// (the model input first).
    pub activations: Vec<(usize, usize)>,
    /// Per CONV_2D / TRANSPOSE_CONV op index: its output channels' weight scales.
    pub weight_scales: HashMap<usize, Vec<f32>>,
}

fn unquantisable(model: &Model, op_index: usize, reason: impl Into<String>) -> QuantError {
    QuantError::Unquantisable {
        op_index,
        op: model.subgraphs[0].operators[op_index].op.name(),
        reason: reason.into(),
    }
}

/// Rebuilds `graph` as a fully int8 model. `bias_delta` (op index → per-channel float bias
/// correction) is added to the float bias before quantisation.
pub fn build_int8(
    graph: &FloatGraph,
    plan: &ParamPlan,
    bias_delta: &HashMap<usize, Vec<f32>>,
    description: &str,
) -> Result<Int8Model, QuantError> {
    let model = &graph.model;
    let sg = &model.subgraphs[0];
    let mut b = ModelBuilder::new();
    let mut map: HashMap<usize, i32> = HashMap::new();
    let mut activations = Vec::new();
    let mut weight_scales = HashMap::new();
    let act = |b: &mut ModelBuilder,
               map: &mut HashMap<usize, i32>,
               t: usize,
               input: bool|
     -> Result<i32, QuantError> {
        if let Some(&n) = map.get(&t) {
            return Ok(n);
        }
        let src = &sg.tensors[t];
        let p = plan.params.get(&t).ok_or_else(|| {
            QuantError::UnsupportedModel(format!(
                "tensor `{}` has no quantisation parameters",
                src.name
            ))
        })?;
        let q = Some(Quantization::per_tensor(p.scale, i64::from(p.zero_point)));
        let n = if input {
            b.add_input(&src.name, &src.shape, TensorType::Int8, q)
        } else {
            b.add_activation(&src.name, &src.shape, TensorType::Int8, q)
        };
        map.insert(t, n);
        Ok(n)
    };
    let const_f32 = |t: i32| -> Option<Vec<f32>> {
        let t = usize::try_from(t).ok()?;
        if sg.tensors[t].dtype != TensorType::Float32 {
            return None;
        }
        model.tensor_data(0, t).map(f32s)
    };
    let input = sg.inputs[0] as usize;
    let new_input = act(&mut b, &mut map, input, true)?;
    activations.push((input, new_input as usize));
    for (op_index, op) in sg.operators.iter().enumerate() {
        let out = op.outputs[0] as usize;
        let mut inputs: Vec<i32> = Vec::with_capacity(op.inputs.len());
        match op.op {
            BuiltinOp::CONV_2D | BuiltinOp::TRANSPOSE_CONV => {
                let is_conv = op.op == BuiltinOp::CONV_2D;
                let (x_slot, w_slot, b_slot) = if is_conv { (0, 1, 2) } else { (2, 1, 3) };
                let x = *op
                    .inputs
                    .get(x_slot)
                    .ok_or_else(|| unquantisable(model, op_index, "missing input"))?;
                let w = *op
                    .inputs
                    .get(w_slot)
                    .ok_or_else(|| unquantisable(model, op_index, "missing filter"))?;
                let weights = const_f32(w).ok_or_else(|| {
                    unquantisable(
                        model,
                        op_index,
                        "the filter is not a constant FLOAT32 tensor",
                    )
                })?;
                let w_tensor = &sg.tensors[w as usize];
                let n_out = w_tensor.shape.first().copied().unwrap_or(0).max(0) as usize;
                if n_out == 0 || weights.len() % n_out != 0 {
                    return Err(unquantisable(
                        model,
                        op_index,
                        "the filter shape is not [Cout, Kh, Kw, Cin]",
                    ));
                }
                let bias_in = op.inputs.get(b_slot).copied().unwrap_or(-1);
                let has_bias = bias_in >= 0;
                let mut bias = if has_bias {
                    const_f32(bias_in).ok_or_else(|| {
                        unquantisable(model, op_index, "the bias is not a constant FLOAT32 tensor")
                    })?
                } else {
                    vec![0.0; n_out]
                };
                if bias.len() != n_out {
                    return Err(unquantisable(
                        model,
                        op_index,
                        "bias length differs from the output channels",
                    ));
                }
                if let Some(delta) = bias_delta.get(&op_index) {
                    for (b, d) in bias.iter_mut().zip(delta) {
                        *b += d;
                    }
                }
                let x_new = act(&mut b, &mut map, x as usize, false)?;
                let s_in = plan.params[&(x as usize)].scale;
                let layer = quantize_layer(&weights, &bias, s_in);
                let wq = b.add_const_i8(
                    &w_tensor.name,
                    &w_tensor.shape,
                    &layer.weights,
                    Some(Quantization::per_axis(layer.weight_scales.clone(), 0)),
                );
                let bias_name = if has_bias {
                    sg.tensors[bias_in as usize].name.clone()
                } else {
                    format!("{}_bias", sg.tensors[out].name)
                };
                // CONV_2D needs a bias; TRANSPOSE_CONV keeps its bias only if it had one.
                let bq = if is_conv || has_bias {
                    b.add_const_i32(
                        &bias_name,
                        &[n_out as i32],
                        &layer.bias,
                        Some(Quantization::per_axis(layer.bias_scales.clone(), 0)),
                    )
                } else {
                    -1
                };
                weight_scales.insert(op_index, layer.weight_scales);
                if is_conv {
                    inputs.extend([x_new, wq, bq]);
                } else {
                    let shape_t = op.inputs[0];
                    let shape_tensor = &sg.tensors[shape_t as usize];
                    let shape_data = model.tensor_data(0, shape_t as usize).ok_or_else(|| {
                        unquantisable(model, op_index, "output_shape is not constant")
                    })?;
                    let s = b.add_const(
                        &shape_tensor.name,
                        &shape_tensor.shape,
                        shape_tensor.dtype,
                        shape_data.to_vec(),
                        None,
                    );
                    inputs.extend([s, wq, x_new]);
                    if has_bias {
                        inputs.push(bq);
                    }
                }
            }
            _ => {
                for (slot, &t) in op.inputs.iter().enumerate() {
                    if t < 0 {
                        inputs.push(-1);
                        continue;
                    }
                    let tu = t as usize;
                    let src = &sg.tensors[tu];
                    match model.tensor_data(0, tu) {
                        None => inputs.push(act(&mut b, &mut map, tu, false)?),
                        Some(data) if op.op == BuiltinOp::RESHAPE && slot == 1 => {
                            inputs.push(b.add_const(
                                &src.name,
                                &src.shape,
                                src.dtype,
                                data.to_vec(),
                                None,
                            ));
                        }
                        Some(data) if matches!(op.op, BuiltinOp::ADD | BuiltinOp::MUL) => {
                            if src.dtype != TensorType::Float32 {
                                return Err(unquantisable(
                                    model,
                                    op_index,
                                    "a constant operand is not FLOAT32",
                                ));
                            }
                            let values = f32s(data);
                            let (lo, hi) = values
                                .iter()
                                .fold((0.0f32, 0.0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                            let (scale, zp) = qparams(lo, hi).unwrap_or((1.0 / 255.0, 0));
                            let q: Vec<i8> = values
                                .iter()
                                .map(|&v| ((v / scale).round() as i32 + zp).clamp(-128, 127) as i8)
                                .collect();
                            inputs.push(b.add_const_i8(
                                &src.name,
                                &src.shape,
                                &q,
                                Some(Quantization::per_tensor(scale, i64::from(zp))),
                            ));
                        }
                        Some(_) => {
                            return Err(unquantisable(
                                model,
                                op_index,
                                format!(
                                    "constant input {slot} (`{}`) is not supported for this op",
                                    src.name
                                ),
                            ));
                        }
                    }
                }
            }
        }
        let out_new = act(&mut b, &mut map, out, false)?;
        activations.push((out, out_new as usize));
        b.add_op(op.op, op.options.clone(), &inputs, &[out_new]);
    }
    let output = sg.outputs[0] as usize;
    let new_output = *map.get(&output).ok_or_else(|| {
        QuantError::UnsupportedModel("the model output is not produced by any operator".into())
    })?;
    b.set_outputs(&[new_output]);
    b.set_description(description);
    let mut int8 = b.finish();
    if let Some(s) = int8.subgraphs.first_mut() {
        s.name = "main".into();
    }
    Ok(Int8Model {
        model: int8,
        activations,
        weight_scales,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_symmetric_per_channel_and_bias_uses_the_product_scale() {
        // Two output channels of 3 weights.
        let w = [0.5, -1.0, 0.25, 0.01, 0.03, -0.04];
        let layer = quantize_layer(&w, &[0.1, -0.2], 0.05);
        assert_eq!(&layer.weights[..3], &[64, -127, 32]);
        assert_eq!(&layer.weights[3..], &[32, 95, -127]);
        assert!((layer.weight_scales[0] - 1.0 / 127.0).abs() < 1e-9);
        let expected = (0.1f64 / (0.05f64 * f64::from(layer.weight_scales[0]))).round() as i32;
        assert_eq!(layer.bias[0], expected);
        assert!(layer.weights.iter().all(|&q| q >= -127));
    }

    #[test]
    fn an_all_zero_channel_gets_a_usable_scale() {
        let layer = quantize_layer(&[0.0, 0.0], &[0.3], 0.1);
        assert!(layer.weight_scales[0] > 0.0);
        assert_eq!(layer.weights, vec![0, 0]);
        let back = layer.bias[0] as f32 * layer.bias_scales[0];
        assert!((back - 0.3).abs() < 1e-3);
    }

    #[test]
    fn a_huge_bias_still_fits_in_int32() {
        let layer = quantize_layer(&[1e-6], &[1e6], 1e-4);
        let back = f64::from(layer.bias[0]) * f64::from(layer.bias_scales[0]);
        assert!((back - 1e6).abs() / 1e6 < 1e-3, "{back}");
    }
}
