//! A description of a model for people and tools: operators, tensors, quantization and size
//! totals. `cargo xtask inspect` prints it as a table ([`Summary::to_text`]) or as JSON (it is
//! `Serialize`).

use crate::ir::{BuiltinOptions, Model, Quantization, Subgraph};
use serde::Serialize;
use std::fmt::Write;

/// Summary of a whole model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The model description.
    pub description: String,
    /// One entry per subgraph.
    pub subgraphs: Vec<SubgraphSummary>,
    /// The `min_runtime_version` metadata, if present.
    pub min_runtime_version: Option<String>,
    /// Names of the metadata entries.
    pub metadata: Vec<String>,
    /// Signature keys.
    pub signatures: Vec<String>,
}

/// Summary of one subgraph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubgraphSummary {
    /// Subgraph name.
    pub name: String,
    /// Operators in execution order.
    pub operators: Vec<OpSummary>,
    /// All tensors.
    pub tensors: Vec<TensorSummary>,
    /// Input tensor indices.
    pub inputs: Vec<i32>,
    /// Output tensor indices.
    pub outputs: Vec<i32>,
    /// Totals.
    pub totals: Totals,
}

/// One operator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpSummary {
    /// Position in execution order.
    pub index: usize,
    /// Builtin operator name (`CONV_2D`, …), or the custom code.
    pub op: String,
    /// Operator version.
    pub version: i32,
    /// Input tensor indices (-1 = omitted).
    pub inputs: Vec<i32>,
    /// Output tensor indices.
    pub outputs: Vec<i32>,
    /// The options, as `key=value` text.
    pub options: String,
}

/// One tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorSummary {
    /// Index in the subgraph.
    pub index: usize,
    /// Name.
    pub name: String,
    /// Shape.
    pub shape: Vec<i32>,
    /// Element type name (`INT8`, …).
    pub dtype: String,
    /// Quantization, as text: `s=0.0039 zp=-128`, or `per-axis(dim 0) n=16 s=[a, b] zp=[c, d]`.
    pub quantization: Option<String>,
    /// Number of scales (1 per tensor, more per axis).
    pub n_scales: usize,
    /// True when the tensor has constant data.
    pub constant: bool,
    /// Size of the tensor's data in bytes (unknown element types count 0).
    pub bytes: usize,
}

/// Size totals of a subgraph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    /// Parameters: elements of constant tensors that hold weights or biases, i.e. every constant
    /// except unquantized INT32/INT64 ones (shape, slice and size arguments).
    pub params: usize,
    /// Bytes of all constant tensor data.
    pub weight_bytes: usize,
    /// The largest sum of bytes of activation tensors live at the same time, where a tensor is
    /// live from the operator that produces it (or the start, for inputs) to its last consumer
    /// (or the end, for outputs).
    pub peak_activation_bytes: usize,
    /// The operator at which the peak is reached.
    pub peak_at_operator: Option<usize>,
}

/// Builds the summary of `model`. The model should have passed [`crate::check_model`] (every
/// model from [`crate::read_model`] has); out-of-range indices are skipped, not trusted.
pub fn summary(model: &Model) -> Summary {
    let min_runtime_version = model
        .metadata
        .iter()
        .find(|m| m.name == "min_runtime_version")
        .and_then(|m| model.buffers.get(m.buffer as usize))
        .map(|b| {
            let end = b.data.iter().position(|&c| c == 0).unwrap_or(b.data.len());
            String::from_utf8_lossy(&b.data[..end]).into_owned()
        });
    Summary {
        description: model.description.clone(),
        subgraphs: model
            .subgraphs
            .iter()
            .map(|sg| subgraph_summary(model, sg))
            .collect(),
        min_runtime_version,
        metadata: model.metadata.iter().map(|m| m.name.clone()).collect(),
        signatures: model
            .signature_defs
            .iter()
            .map(|s| s.signature_key.clone())
            .collect(),
    }
}

fn is_constant(model: &Model, buffer: u32) -> bool {
    buffer != 0
        && model
            .buffers
            .get(buffer as usize)
            .is_some_and(|b| !b.data.is_empty())
}

fn subgraph_summary(model: &Model, subgraph: &Subgraph) -> SubgraphSummary {
    let tensors: Vec<TensorSummary> = subgraph
        .tensors
        .iter()
        .enumerate()
        .map(|(index, t)| TensorSummary {
            index,
            name: t.name.clone(),
            shape: t.shape.clone(),
            dtype: t.dtype.name(),
            quantization: t.quantization.as_ref().map(quantization_text),
            n_scales: t.quantization.as_ref().map_or(0, |q| q.scale.len()),
            constant: is_constant(model, t.buffer),
            bytes: t.size_bytes().unwrap_or(0),
        })
        .collect();
    let operators = subgraph
        .operators
        .iter()
        .enumerate()
        .map(|(index, op)| OpSummary {
            index,
            op: op.custom_code.clone().unwrap_or_else(|| op.op.name()),
            version: op.version,
            inputs: op.inputs.clone(),
            outputs: op.outputs.clone(),
            options: options_text(&op.options),
        })
        .collect();
    let params = subgraph
        .tensors
        .iter()
        .filter(|t| is_constant(model, t.buffer))
        .filter(|t| {
            let shape_like = matches!(t.dtype, crate::TensorType::Int32 | crate::TensorType::Int64);
            !shape_like || t.quantization.as_ref().is_some_and(|q| !q.scale.is_empty())
        })
        .fold(0usize, |acc, t| acc.saturating_add(t.num_elements()));
    let weight_bytes = tensors
        .iter()
        .filter(|t| t.constant)
        .fold(0usize, |acc, t| acc.saturating_add(t.bytes));
    let (peak_activation_bytes, peak_at_operator) = peak_live_bytes(subgraph, &tensors);
    SubgraphSummary {
        name: subgraph.name.clone(),
        operators,
        tensors,
        inputs: subgraph.inputs.clone(),
        outputs: subgraph.outputs.clone(),
        totals: Totals {
            params,
            weight_bytes,
            peak_activation_bytes,
            peak_at_operator,
        },
    }
}

fn peak_live_bytes(subgraph: &Subgraph, tensors: &[TensorSummary]) -> (usize, Option<usize>) {
    let n_ops = subgraph.operators.len();
    let n = tensors.len();
    // first[t], last[t]: the operator steps where tensor t is live (inclusive).
    let mut first = vec![usize::MAX; n];
    let mut last = vec![0usize; n];
    let valid = |idx: i32| usize::try_from(idx).ok().filter(|&i| i < n);
    for idx in subgraph.inputs.iter().filter_map(|&i| valid(i)) {
        first[idx] = 0;
    }
    for (step, op) in subgraph.operators.iter().enumerate() {
        for idx in op.outputs.iter().filter_map(|&i| valid(i)) {
            first[idx] = first[idx].min(step);
            last[idx] = last[idx].max(step);
        }
        for idx in op.inputs.iter().filter_map(|&i| valid(i)) {
            first[idx] = first[idx].min(step);
            last[idx] = last[idx].max(step);
        }
    }
    for idx in subgraph.outputs.iter().filter_map(|&i| valid(i)) {
        last[idx] = n_ops.saturating_sub(1);
    }
    let mut best = (0usize, None);
    for step in 0..n_ops {
        let live: usize = (0..n)
            .filter(|&t| !tensors[t].constant && first[t] <= step && step <= last[t])
            .fold(0usize, |acc, t| acc.saturating_add(tensors[t].bytes));
        if live > best.0 {
            best = (live, Some(step));
        }
    }
    best
}

fn quantization_text(q: &Quantization) -> String {
    let range = |values: &[f32]| {
        let lo = values.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        (lo, hi)
    };
    match q.scale.len() {
        0 if !q.min.is_empty() => format!("min={:?} max={:?}", q.min, q.max),
        0 => "none".to_string(),
        1 => format!(
            "s={:.6e} zp={}",
            q.scale[0],
            q.zero_point.first().copied().unwrap_or(0)
        ),
        n => {
            let (lo, hi) = range(&q.scale);
            let zp_lo = q.zero_point.iter().copied().min().unwrap_or(0);
            let zp_hi = q.zero_point.iter().copied().max().unwrap_or(0);
            format!(
                "per-axis(dim {}) n={n} s=[{lo:.3e}, {hi:.3e}] zp=[{zp_lo}, {zp_hi}]",
                q.quantized_dimension
            )
        }
    }
}

fn options_text(options: &BuiltinOptions) -> String {
    match options {
        BuiltinOptions::None => String::new(),
        BuiltinOptions::Conv2D(o) => format!(
            "padding={:?} stride={}x{} dilation={}x{} act={:?}",
            o.padding, o.stride_h, o.stride_w, o.dilation_h, o.dilation_w, o.fused_activation
        ),
        BuiltinOptions::DepthwiseConv2D(o) => format!(
            "padding={:?} stride={}x{} dilation={}x{} depth_multiplier={} act={:?}",
            o.padding,
            o.stride_h,
            o.stride_w,
            o.dilation_h,
            o.dilation_w,
            o.depth_multiplier,
            o.fused_activation
        ),
        BuiltinOptions::TransposeConv(o) => format!(
            "padding={:?} stride={}x{} act={:?}",
            o.padding, o.stride_h, o.stride_w, o.fused_activation
        ),
        BuiltinOptions::Pool2D(o) => format!(
            "padding={:?} filter={}x{} stride={}x{} act={:?}",
            o.padding, o.filter_height, o.filter_width, o.stride_h, o.stride_w, o.fused_activation
        ),
        BuiltinOptions::Concatenation(o) => format!("axis={} act={:?}", o.axis, o.fused_activation),
        BuiltinOptions::Reshape(o) => format!("new_shape={:?}", o.new_shape),
        BuiltinOptions::StridedSlice(o) => format!(
            "begin_mask={} end_mask={} ellipsis_mask={} new_axis_mask={} shrink_axis_mask={} offset={}",
            o.begin_mask,
            o.end_mask,
            o.ellipsis_mask,
            o.new_axis_mask,
            o.shrink_axis_mask,
            o.offset
        ),
        BuiltinOptions::Pack(o) => format!("values_count={} axis={}", o.values_count, o.axis),
        BuiltinOptions::ResizeNearestNeighbor(o) | BuiltinOptions::ResizeBilinear(o) => format!(
            "align_corners={} half_pixel_centers={}",
            o.align_corners, o.half_pixel_centers
        ),
        BuiltinOptions::Add(o) | BuiltinOptions::Mul(o) => format!("act={:?}", o.fused_activation),
        BuiltinOptions::FullyConnected(o) => format!(
            "act={:?} keep_num_dims={} asymmetric_quantize_inputs={}",
            o.fused_activation, o.keep_num_dims, o.asymmetric_quantize_inputs
        ),
        BuiltinOptions::Softmax(o) => format!("beta={}", o.beta),
        BuiltinOptions::Untyped { options_type } => {
            format!("options type {options_type} (untyped)")
        }
    }
}

impl Summary {
    /// The human-readable report printed by `cargo xtask inspect`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "description: {}", self.description);
        let _ = writeln!(
            out,
            "min runtime version: {}",
            self.min_runtime_version
                .as_deref()
                .unwrap_or("(not recorded)")
        );
        let _ = writeln!(out, "signatures: {}", self.signatures.join(", "));
        let _ = writeln!(out, "metadata: {}", self.metadata.join(", "));
        for (sg_idx, sg) in self.subgraphs.iter().enumerate() {
            let _ = writeln!(
                out,
                "\nsubgraph {sg_idx} \"{}\": {} operators, {} tensors, inputs {:?}, outputs {:?}",
                sg.name,
                sg.operators.len(),
                sg.tensors.len(),
                sg.inputs,
                sg.outputs
            );
            let _ = writeln!(out, "\noperators:");
            for op in &sg.operators {
                let _ = writeln!(
                    out,
                    "  {:>3}  {:<24} v{:<2} {:?} -> {:?}  {}",
                    op.index, op.op, op.version, op.inputs, op.outputs, op.options
                );
            }
            let _ = writeln!(out, "\ntensors:");
            let _ = writeln!(
                out,
                "  {:>3}  {:<5} {:<8} {:<20} {:>10}  {:<40} name",
                "idx", "const", "dtype", "shape", "bytes", "quantization"
            );
            for t in &sg.tensors {
                let _ = writeln!(
                    out,
                    "  {:>3}  {:<5} {:<8} {:<20} {:>10}  {:<40} {}",
                    t.index,
                    if t.constant { "yes" } else { "" },
                    t.dtype,
                    format!("{:?}", t.shape),
                    t.bytes,
                    t.quantization.as_deref().unwrap_or("-"),
                    t.name
                );
            }
            let totals = &sg.totals;
            let _ = writeln!(out, "\ntotals:");
            let _ = writeln!(out, "  parameters:               {}", totals.params);
            let _ = writeln!(out, "  weight bytes:             {}", totals.weight_bytes);
            let _ = writeln!(
                out,
                "  peak activation bytes:    {}{}",
                totals.peak_activation_bytes,
                totals
                    .peak_at_operator
                    .map(|op| format!(" (at operator {op})"))
                    .unwrap_or_default()
            );
            let _ = writeln!(
                out,
                "  min runtime version:      {}",
                self.min_runtime_version
                    .as_deref()
                    .unwrap_or("(not recorded)")
            );
        }
        out
    }
}
