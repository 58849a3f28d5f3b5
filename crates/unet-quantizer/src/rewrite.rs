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
//!
//! 16x8 (TFLite's int16-activation scheme): a sharing group may instead be int16, symmetric
//! (zero point 0) over the largest magnitude of its range; LOGISTIC's int16 output is fixed at
//! 2^-15, 0; ops with int16 activations take int64 bias. Every operator runs in its output's
//! precision; where an input's group has the other precision ([`Precision::Mixed`]), one
//! requantising QUANTIZE op converts it (one per tensor and direction). The sharing groups keep
//! MAX_POOL, RESIZE and CONCATENATION free of such ops in every precision.

use std::collections::HashMap;

use serde::Serialize;
use tflite_writer::{
    Activation, BuiltinOp, BuiltinOptions, Model, ModelBuilder, Quantization, TensorType,
};

use crate::calibrate::CalibrationStats;
use crate::error::QuantError;
use crate::graph::{FloatGraph, fused_activation};
use crate::observer::{LogisticFit, Observer, logistic_input_range, observed_range, qparams};

/// LOGISTIC's fixed int8 output parameters.
pub const LOGISTIC_OUTPUT: (f32, i32) = (1.0 / 256.0, -128);

/// LOGISTIC's fixed int16 output parameters (2^-15, 0).
pub const LOGISTIC_OUTPUT_I16: (f32, i32) = (1.0 / 32768.0, 0);

/// An int16 tensor read only by LOGISTIC keeps at most ±ln(2·32768) ≈ 11.09: beyond it the
/// sigmoid is within half an output LSB (2^-16) of 0 or 1, so wider inputs only cost resolution.
pub const LOGISTIC_INPUT_I16_LIMIT: f32 = 11.09;

/// Activation precision of a quantised model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Every activation int8 (TFLite's full-int8 scheme).
    Int8,
    /// Every activation int16, weights int8, bias int64 (TFLite's 16x8 scheme).
    Int16x8,
    /// int8, with the sharing groups that limit the output moved to int16.
    Mixed,
}

impl Precision {
    /// Every precision, cheapest first.
    pub const ALL: [Precision; 3] = [Precision::Int8, Precision::Int16x8, Precision::Mixed];

    /// The command-line name (also the model file's suffix: `unet_<name>.tflite`).
    pub fn name(self) -> &'static str {
        match self {
            Precision::Int8 => "int8",
            Precision::Int16x8 => "int16x8",
            Precision::Mixed => "mixed",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Precision::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown precision {s:?}, expected int8, int16x8 or mixed"))
    }
}

/// Quantisation parameters of one activation tensor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ActParams {
    /// Scale.
    pub scale: f32,
    /// Zero point.
    pub zero_point: i32,
    /// Sharing group (tensors with the same group have identical parameters).
    pub group: usize,
    /// `Int8` or `Int16`.
    pub dtype: TensorType,
}

/// One sharing group: its members and its parameters in either precision.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupParams {
    /// Float tensor indices of its members, in execution order.
    pub members: Vec<usize>,
    /// int8 (scale, zero point).
    pub int8: (f32, i32),
    /// int16 (scale, zero point 0).
    pub int16: (f32, i32),
}

impl GroupParams {
    /// The parameters in `dtype` (`Int16`, else int8).
    pub fn params(&self, dtype: TensorType) -> (f32, i32) {
        if dtype == TensorType::Int16 {
            self.int16
        } else {
            self.int8
        }
    }
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
    /// Sharing groups by id ([`ActParams::group`]).
    pub groups: Vec<GroupParams>,
    /// Op index → int8 weights chosen by [`crate::gptq`] (instead of round-to-nearest; same
    /// scales), used by operators with int16 activations, and by int8 ones with
    /// `rounded_for_int8`.
    pub rounded_weights: HashMap<usize, Vec<i8>>,
    /// Whether int8 operators use `rounded_weights` too.
    pub rounded_for_int8: bool,
}

impl ParamPlan {
    /// This plan with the groups in `int16` at their int16 parameters and every other group int8.
    pub fn with_int16_groups(&self, int16: &std::collections::BTreeSet<usize>) -> ParamPlan {
        let mut plan = self.clone();
        for p in plan.params.values_mut() {
            p.dtype = if int16.contains(&p.group) {
                TensorType::Int16
            } else {
                TensorType::Int8
            };
            (p.scale, p.zero_point) = plan.groups[p.group].params(p.dtype);
        }
        plan
    }

    /// This plan in one uniform precision (`Mixed` is left as it is).
    pub fn in_precision(&self, precision: Precision) -> ParamPlan {
        match precision {
            Precision::Int8 => self.with_int16_groups(&Default::default()),
            Precision::Int16x8 => self.with_int16_groups(&(0..self.groups.len()).collect()),
            Precision::Mixed => self.clone(),
        }
    }

    /// The sharing groups whose tensors are int16.
    pub fn int16_groups(&self) -> std::collections::BTreeSet<usize> {
        self.params
            .values()
            .filter(|p| p.dtype == TensorType::Int16)
            .map(|p| p.group)
            .collect()
    }
}

/// Symmetric int16 parameters covering `[lo, hi]` (zero point 0); a collapsed range gets 1/32767.
pub fn qparams_i16(lo: f32, hi: f32) -> (f32, i32) {
    let m = lo.abs().max(hi.abs());
    if !m.is_finite() || m < 1e-6 {
        (1.0 / 32767.0, 0)
    } else {
        (m / 32767.0, 0)
    }
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

    // int16 ranges: the observer's, a LOGISTIC-only input clipped where the sigmoid saturates.
    let logistic_in = logistic_inputs(model);
    let mut ranges_i16 = plan.ranges.clone();
    for t in &logistic_in {
        if let Some(r) = ranges_i16.get_mut(t) {
            r.0 = r.0.max(-LOGISTIC_INPUT_I16_LIMIT);
            r.1 = r.1.min(LOGISTIC_INPUT_I16_LIMIT);
        }
    }

    // A tensor read only by LOGISTIC ops (whose output grid is fixed): its range is chosen
    // against the error after the sigmoid, where values beyond about ±6 no longer matter.
    for t in logistic_in.into_iter().filter(|_| logistic_range) {
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
    let mut group_range_i16: HashMap<usize, (f32, f32)> = HashMap::new();
    let mut group_fixed: HashMap<usize, (f32, i32)> = HashMap::new();
    for &t in &activations {
        let g = uf.find(t);
        for (ranges, group) in [
            (&plan.ranges, &mut group_range),
            (&ranges_i16, &mut group_range_i16),
        ] {
            let (lo, hi) = ranges[&t];
            let e = group.entry(g).or_insert((lo, hi));
            e.0 = e.0.min(lo);
            e.1 = e.1.max(hi);
        }
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
        if id == plan.groups.len() {
            let int16 = if group_fixed.contains_key(&g) {
                LOGISTIC_OUTPUT_I16
            } else {
                let (lo, hi) = group_range_i16[&g];
                qparams_i16(lo, hi)
            };
            plan.groups.push(GroupParams {
                members: Vec::new(),
                int8: (0.0, 0),
                int16,
            });
        }
        plan.groups[id].members.push(t);
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
        plan.groups[id].int8 = params;
        plan.params.insert(
            t,
            ActParams {
                scale: params.0,
                zero_point: params.1,
                group: id,
                dtype: TensorType::Int8,
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

/// Per-channel symmetric weights and the matching int32 or int64 bias.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedLayer {
    /// Weights, same layout as the float weights.
    pub weights: Vec<i8>,
    /// Scale per output channel.
    pub weight_scales: Vec<f32>,
    /// Bias (one per output channel), within int32 for int8 operators.
    pub bias: Vec<i64>,
    /// Bias scale per output channel (`s_in·s_w[c]`).
    pub bias_scales: Vec<f32>,
}

/// Quantises float weights `[Cout, …]` per output channel to `[-127, 127]` and the bias at
/// `s_in·s_w[c]`: int32 for int8 operators (a channel's scale grows where needed so that its
/// bias fits), int64 for 16x8 operators (`wide_bias`). `rounded` gives the integers of
/// channels whose scale is `max|w| / 127` (e.g. from [`crate::gptq`]); otherwise each weight is
/// rounded to nearest.
pub fn quantize_layer(
    weights: &[f32],
    bias: &[f32],
    input_scale: f32,
    wide_bias: bool,
    rounded: Option<&[i8]>,
) -> QuantizedLayer {
    let n_out = bias.len().max(1);
    let per = weights.len() / n_out;
    let mut layer = QuantizedLayer {
        weights: Vec::with_capacity(weights.len()),
        weight_scales: Vec::with_capacity(n_out),
        bias: Vec::with_capacity(n_out),
        bias_scales: Vec::with_capacity(n_out),
    };
    let s_in = f64::from(input_scale);
    let bias_limit = if wide_bias {
        // Well inside int64 and exactly representable in f64.
        (1i64 << 62) as f64
    } else {
        f64::from(i32::MAX - 1)
    };
    for (c, chunk) in weights.chunks(per.max(1)).enumerate().take(n_out) {
        let max_abs = chunk.iter().fold(0.0f32, |m, &w| m.max(w.abs()));
        let b = f64::from(bias.get(c).copied().unwrap_or(0.0));
        let mut scale = f64::from(max_abs) / 127.0;
        let bias_floor = b.abs() / (s_in * bias_limit);
        if scale < bias_floor {
            scale = bias_floor;
        }
        if scale == 0.0 {
            scale = 1.0 / 127.0;
        }
        let unbumped = scale == f64::from(max_abs) / 127.0;
        let scale = scale as f32;
        let s = f64::from(scale);
        let given = rounded
            .filter(|r| r.len() == weights.len() && unbumped && max_abs > 0.0)
            .map(|r| &r[c * per..c * per + chunk.len()]);
        match given {
            Some(q) => layer.weights.extend_from_slice(q),
            None => layer.weights.extend(
                chunk
                    .iter()
                    .map(|&w| (f64::from(w) / s).round().clamp(-127.0, 127.0) as i8),
            ),
        }
        let bias_scale = s_in * s;
        layer
            .bias
            .push((b / bias_scale).round().clamp(-bias_limit, bias_limit) as i64);
        layer.weight_scales.push(scale);
        layer.bias_scales.push(bias_scale as f32);
    }
    layer
}

/// A quantised model and how its activation tensors correspond to the float model's.
#[derive(Debug, Clone)]
pub struct QuantizedModel {
    /// The quantised model.
    pub model: Model,
    /// (float tensor index, quantised tensor index) of every activation tensor, in execution
    /// order (the model input first). A tensor converted by a QUANTIZE op is paired with its
    /// original precision's tensor.
    pub activations: Vec<(usize, usize)>,
    /// Per CONV_2D / TRANSPOSE_CONV op index: its output channels' weight scales.
    pub weight_scales: HashMap<usize, Vec<f32>>,
    /// QUANTIZE ops added between precisions (and at the model IO).
    pub conversions: usize,
}

fn unquantisable(model: &Model, op_index: usize, reason: impl Into<String>) -> QuantError {
    QuantError::Unquantisable {
        op_index,
        op: model.subgraphs[0].operators[op_index].op.name(),
        reason: reason.into(),
    }
}

/// Builds the quantised tensors and the QUANTIZE ops between precisions.
struct Tensors<'a> {
    graph: &'a FloatGraph,
    plan: &'a ParamPlan,
    b: ModelBuilder,
    map: HashMap<usize, i32>,
    converted: HashMap<(usize, TensorType), i32>,
    conversions: usize,
}

impl Tensors<'_> {
    fn params(&self, t: usize) -> Result<&ActParams, QuantError> {
        self.plan.params.get(&t).ok_or_else(|| {
            QuantError::UnsupportedModel(format!(
                "tensor `{}` has no quantisation parameters",
                self.graph.model.subgraphs[0].tensors[t].name
            ))
        })
    }

    /// The quantised tensor of float tensor `t` in its own precision.
    fn get(&mut self, t: usize, input: bool) -> Result<i32, QuantError> {
        if let Some(&n) = self.map.get(&t) {
            return Ok(n);
        }
        let p = *self.params(t)?;
        let src = &self.graph.model.subgraphs[0].tensors[t];
        let q = Some(Quantization::per_tensor(p.scale, i64::from(p.zero_point)));
        let n = if input {
            self.b.add_input(&src.name, &src.shape, p.dtype, q)
        } else {
            self.b.add_activation(&src.name, &src.shape, p.dtype, q)
        };
        self.map.insert(t, n);
        Ok(n)
    }

    /// The quantised tensor of `t` in `dtype`: itself, or a QUANTIZE op's output (made once).
    fn get_as(&mut self, t: usize, dtype: TensorType) -> Result<i32, QuantError> {
        let own = self.get(t, false)?;
        let p = *self.params(t)?;
        if p.dtype == dtype {
            return Ok(own);
        }
        if let Some(&n) = self.converted.get(&(t, dtype)) {
            return Ok(n);
        }
        let (scale, zp) = self.plan.groups[p.group].params(dtype);
        let src = &self.graph.model.subgraphs[0].tensors[t];
        let name = format!("{}_{}", src.name, type_suffix(dtype));
        let n = self.b.add_activation(
            &name,
            &src.shape,
            dtype,
            Some(Quantization::per_tensor(scale, i64::from(zp))),
        );
        self.b
            .add_op(BuiltinOp::QUANTIZE, BuiltinOptions::None, &[own], &[n]);
        self.conversions += 1;
        self.converted.insert((t, dtype), n);
        Ok(n)
    }
}

fn type_suffix(dtype: TensorType) -> &'static str {
    if dtype == TensorType::Int16 {
        "int16"
    } else {
        "int8"
    }
}

/// Rebuilds `graph` as a quantised model in the precisions of `plan` (every operator in its
/// output's precision; QUANTIZE ops where an input has the other one). `io` sets the type of
/// the model input and output (`None`: their own precision; otherwise a QUANTIZE op converts
/// where they differ). `bias_delta` (op index → per-channel float bias correction) is added to
/// the float bias before quantisation.
pub fn build_quantized(
    graph: &FloatGraph,
    plan: &ParamPlan,
    io: Option<TensorType>,
    bias_delta: &HashMap<usize, Vec<f32>>,
    description: &str,
) -> Result<QuantizedModel, QuantError> {
    let model = &graph.model;
    let sg = &model.subgraphs[0];
    let mut tensors = Tensors {
        graph,
        plan,
        b: ModelBuilder::new(),
        map: HashMap::new(),
        converted: HashMap::new(),
        conversions: 0,
    };
    let mut activations = Vec::new();
    let mut weight_scales = HashMap::new();
    let const_f32 = |t: i32| -> Option<Vec<f32>> {
        let t = usize::try_from(t).ok()?;
        if sg.tensors[t].dtype != TensorType::Float32 {
            return None;
        }
        model.tensor_data(0, t).map(f32s)
    };
    let input = sg.inputs[0] as usize;
    let input_type = tensors.params(input)?.dtype;
    match io.filter(|&t| t != input_type) {
        None => {
            let new_input = tensors.get(input, true)?;
            activations.push((input, new_input as usize));
        }
        Some(io_type) => {
            // The model input in the IO type, converted to the first layer's precision.
            let p = *tensors.params(input)?;
            let (scale, zp) = plan.groups[p.group].params(io_type);
            let src = &sg.tensors[input];
            let outer = tensors.b.add_input(
                &format!("{}_{}", src.name, type_suffix(io_type)),
                &src.shape,
                io_type,
                Some(Quantization::per_tensor(scale, i64::from(zp))),
            );
            let inner = tensors.get(input, false)?;
            tensors.b.add_op(
                BuiltinOp::QUANTIZE,
                BuiltinOptions::None,
                &[outer],
                &[inner],
            );
            tensors.conversions += 1;
            activations.push((input, inner as usize));
        }
    }
    for (op_index, op) in sg.operators.iter().enumerate() {
        let out = op.outputs[0] as usize;
        let op_type = tensors.params(out)?.dtype;
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
                let x_new = tensors.get_as(x as usize, op_type)?;
                let x_params = tensors.params(x as usize)?;
                let s_in = plan.groups[x_params.group].params(op_type).0;
                let wide = op_type == TensorType::Int16;
                let layer = quantize_layer(
                    &weights,
                    &bias,
                    s_in,
                    wide,
                    plan.rounded_weights
                        .get(&op_index)
                        .filter(|_| wide || plan.rounded_for_int8)
                        .map(Vec::as_slice),
                );
                let b = &mut tensors.b;
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
                let bias_quant = Some(Quantization::per_axis(layer.bias_scales.clone(), 0));
                let bq = if !(is_conv || has_bias) {
                    -1
                } else if wide {
                    b.add_const(
                        &bias_name,
                        &[n_out as i32],
                        TensorType::Int64,
                        layer.bias.iter().flat_map(|v| v.to_le_bytes()).collect(),
                        bias_quant,
                    )
                } else {
                    let narrow: Vec<i32> = layer.bias.iter().map(|&v| v as i32).collect();
                    b.add_const_i32(&bias_name, &[n_out as i32], &narrow, bias_quant)
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
                        None => inputs.push(tensors.get_as(tu, op_type)?),
                        Some(data) if op.op == BuiltinOp::RESHAPE && slot == 1 => {
                            inputs.push(tensors.b.add_const(
                                &src.name,
                                &src.shape,
                                src.dtype,
                                data.to_vec(),
                                None,
                            ));
                        }
                        Some(data)
                            if matches!(op.op, BuiltinOp::ADD | BuiltinOp::MUL)
                                && op_type == TensorType::Int8 =>
                        {
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
                            inputs.push(tensors.b.add_const_i8(
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
                                    "constant input {slot} (`{}`) is not supported for this op in {}",
                                    src.name,
                                    type_suffix(op_type)
                                ),
                            ));
                        }
                    }
                }
            }
        }
        let out_new = tensors.get(out, false)?;
        activations.push((out, out_new as usize));
        tensors
            .b
            .add_op(op.op, op.options.clone(), &inputs, &[out_new]);
    }
    let output = sg.outputs[0] as usize;
    if !tensors.map.contains_key(&output) {
        return Err(QuantError::UnsupportedModel(
            "the model output is not produced by any operator".into(),
        ));
    }
    let new_output = match io {
        Some(io_type) => tensors.get_as(output, io_type)?,
        None => tensors.get(output, false)?,
    };
    let Tensors {
        mut b, conversions, ..
    } = tensors;
    b.set_outputs(&[new_output]);
    b.set_description(description);
    let mut quantized = b.finish();
    if let Some(s) = quantized.subgraphs.first_mut() {
        s.name = "main".into();
    }
    Ok(QuantizedModel {
        model: quantized,
        activations,
        weight_scales,
        conversions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_symmetric_per_channel_and_bias_uses_the_product_scale() {
        // Two output channels of 3 weights.
        let w = [0.5, -1.0, 0.25, 0.01, 0.03, -0.04];
        let layer = quantize_layer(&w, &[0.1, -0.2], 0.05, false, None);
        assert_eq!(&layer.weights[..3], &[64, -127, 32]);
        assert_eq!(&layer.weights[3..], &[32, 95, -127]);
        assert!((layer.weight_scales[0] - 1.0 / 127.0).abs() < 1e-9);
        let expected = (0.1f64 / (0.05f64 * f64::from(layer.weight_scales[0]))).round() as i32;
        assert_eq!(layer.bias[0], i64::from(expected));
        assert!(layer.weights.iter().all(|&q| q >= -127));
    }

    #[test]
    fn an_all_zero_channel_gets_a_usable_scale() {
        let layer = quantize_layer(&[0.0, 0.0], &[0.3], 0.1, false, None);
        assert!(layer.weight_scales[0] > 0.0);
        assert_eq!(layer.weights, vec![0, 0]);
        let back = layer.bias[0] as f32 * layer.bias_scales[0];
        assert!((back - 0.3).abs() < 1e-3);
    }

    #[test]
    fn a_huge_bias_still_fits_in_int32() {
        let layer = quantize_layer(&[1e-6], &[1e6], 1e-4, false, None);
        assert!(i32::try_from(layer.bias[0]).is_ok());
        let back = layer.bias[0] as f64 * f64::from(layer.bias_scales[0]);
        assert!((back - 1e6).abs() / 1e6 < 1e-3, "{back}");
        // The same layer with int64 bias keeps its weight scale.
        let wide = quantize_layer(&[1e-6], &[1e6], 1e-4, true, None);
        assert!(wide.bias[0] > i64::from(i32::MAX));
        assert!(wide.weight_scales[0] < layer.weight_scales[0]);
    }
}
