//! `Interpreter::new`'s work: validation of tensors and operators, static shape inference,
//! constant folding of shape-only subgraphs, kernel parameters, and the arena plan.

use tflite_writer::{
    Activation, BuiltinOp, BuiltinOptions, Model, Operator, Padding, Quantization, Subgraph,
    TensorType,
};

use crate::error::RuntimeError;
use crate::exec::{Kernel, execute};
use crate::frame::{
    AddQuantParams, BroadcastLayout, ConvGeometry, ConvQuantParams, KernelTable, MulQuantParams,
    PoolGeometry, RequantParams,
};
use crate::padding::{leading_padding, out_size};
use crate::plan::{ArenaPlan, Lifetime, plan_arena};
use crate::quant::{
    QuantizedMultiplier, activation_range_f32, activation_range_i8, quantize_multiplier,
};
use crate::reference::logistic::logistic_lut_i8;
use crate::reference::resize_nearest::nearest_source;
use crate::tensor::{AlignedBytes, TensorInfo};

/// Where a tensor's data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loc {
    /// Not written by anything (yet).
    Unset,
    /// In `Prepared::consts[i]` (model constant or folded).
    Const(usize),
    /// At this byte offset in the arena.
    Arena(usize),
}

/// A tensor after preparation.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub info: TensorInfo,
    /// Byte size (0 when the element size is unknown).
    pub bytes: usize,
    pub loc: Loc,
    /// True for graph inputs and op outputs that run at invoke time.
    pub written: bool,
}

/// An operator that runs at invoke time.
#[derive(Debug, Clone)]
pub(crate) struct PreparedOp {
    /// Index in the model's operator list.
    pub index: usize,
    pub op: BuiltinOp,
    pub inputs: Vec<Option<usize>>,
    pub output: usize,
    pub kernel: Kernel,
}

/// Everything `Interpreter` needs.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub slots: Vec<Slot>,
    pub consts: Vec<AlignedBytes>,
    pub ops: Vec<PreparedOp>,
    pub folded_ops: usize,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    pub scratch_i32: usize,
    pub plan: ArenaPlan,
    /// Bytes of the constants computed by folding.
    pub folded_bytes: u64,
}

impl Prepared {
    /// Bytes allocated for what the shapes decide: arena, scratch and folded constants.
    pub fn allocated_bytes(&self) -> u64 {
        (self.plan.peak_bytes as u64)
            .saturating_add((self.scratch_i32 as u64).saturating_mul(4))
            .saturating_add(self.folded_bytes)
    }
}

/// Error constructors for one operator.
struct OpCx {
    index: usize,
    name: String,
}

impl OpCx {
    fn invalid(&self, detail: impl Into<String>) -> RuntimeError {
        RuntimeError::InvalidOp {
            index: self.index,
            op: self.name.clone(),
            detail: detail.into(),
        }
    }
    fn unsupported(&self, detail: impl Into<String>) -> RuntimeError {
        RuntimeError::Unsupported {
            index: self.index,
            op: self.name.clone(),
            detail: detail.into(),
        }
    }
    fn bad_type(&self, detail: impl Into<String>) -> RuntimeError {
        RuntimeError::UnsupportedType {
            index: self.index,
            op: self.name.clone(),
            detail: detail.into(),
        }
    }
}

fn op_name(op: &Operator) -> String {
    match &op.custom_code {
        Some(code) => format!("CUSTOM '{code}'"),
        None => op.op.name(),
    }
}

fn is_supported(op: BuiltinOp) -> bool {
    matches!(
        op,
        BuiltinOp::CONV_2D
            | BuiltinOp::TRANSPOSE_CONV
            | BuiltinOp::MAX_POOL_2D
            | BuiltinOp::AVERAGE_POOL_2D
            | BuiltinOp::CONCATENATION
            | BuiltinOp::LOGISTIC
            | BuiltinOp::RELU
            | BuiltinOp::QUANTIZE
            | BuiltinOp::DEQUANTIZE
            | BuiltinOp::RESIZE_NEAREST_NEIGHBOR
            | BuiltinOp::ADD
            | BuiltinOp::MUL
            | BuiltinOp::RESHAPE
            | BuiltinOp::SHAPE
            | BuiltinOp::STRIDED_SLICE
            | BuiltinOp::PACK
    )
}

/// Quantisation with non-empty scales, else `None` (TFLite treats empty arrays as none).
fn effective_quant(q: &Option<Quantization>) -> Option<Quantization> {
    q.as_ref().filter(|q| !q.scale.is_empty()).cloned()
}

fn validate_tensors(model: &Model, sg: &Subgraph) -> Result<Vec<Slot>, RuntimeError> {
    let mut slots = Vec::with_capacity(sg.tensors.len());
    for (index, t) in sg.tensors.iter().enumerate() {
        let err = |detail: String| RuntimeError::InvalidTensor {
            tensor: index,
            name: t.name.clone(),
            detail,
        };
        if let Some(d) = t.shape.iter().find(|&&d| d < 0) {
            return Err(err(format!(
                "shape {:?} has a negative dimension {d}",
                t.shape
            )));
        }
        let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
        let n_elements = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= i32::MAX as usize)
            .ok_or_else(|| err(format!("shape {:?} is too large", t.shape)))?;
        let elem = t.dtype.size_bytes().unwrap_or(0);
        let bytes = n_elements
            .checked_mul(elem)
            .ok_or_else(|| err(format!("shape {:?} is too large", t.shape)))?;
        if t.buffer as usize >= model.buffers.len() {
            return Err(err(format!(
                "buffer index {} is out of range (the model has {} buffers)",
                t.buffer,
                model.buffers.len()
            )));
        }
        if t.buffer != 0 {
            let data = &model.buffers[t.buffer as usize].data;
            if !data.is_empty() {
                if elem == 0 {
                    return Err(err(format!(
                        "constant of type {} whose element size is unknown",
                        t.dtype.name()
                    )));
                }
                if data.len() != bytes {
                    return Err(err(format!(
                        "buffer {} holds {} bytes but shape {:?} of {} needs {}",
                        t.buffer,
                        data.len(),
                        t.shape,
                        t.dtype.name(),
                        bytes
                    )));
                }
            }
        }
        let quantization = effective_quant(&t.quantization);
        if let Some(q) = &quantization {
            if q.scale.len() != q.zero_point.len() {
                return Err(err(format!(
                    "quantization has {} scales but {} zero points",
                    q.scale.len(),
                    q.zero_point.len()
                )));
            }
            if q.scale.len() > 1 {
                let dim = q.quantized_dimension;
                if dim < 0 || dim as usize >= shape.len() {
                    return Err(err(format!(
                        "quantized_dimension {dim} is outside the tensor's rank {}",
                        shape.len()
                    )));
                }
                if shape[dim as usize] != q.scale.len() {
                    return Err(err(format!(
                        "{} per-axis scales but dimension {dim} has size {}",
                        q.scale.len(),
                        shape[dim as usize]
                    )));
                }
            }
            if let Some(s) = q.scale.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
                return Err(err(format!(
                    "quantization scale {s} is not a finite positive number"
                )));
            }
            if t.dtype == TensorType::Int8
                && let Some(zp) = q.zero_point.iter().find(|z| !(-128..=127).contains(*z))
            {
                return Err(err(format!("int8 zero point {zp} is outside [-128, 127]")));
            }
        }
        slots.push(Slot {
            info: TensorInfo {
                index,
                name: t.name.clone(),
                shape,
                dtype: t.dtype,
                quantization,
            },
            bytes,
            loc: Loc::Unset,
            written: false,
        });
    }
    Ok(slots)
}

struct Builder<'m> {
    model: &'m Model,
    sg: &'m Subgraph,
    slots: Vec<Slot>,
    consts: Vec<AlignedBytes>,
    /// Memory limit in bytes ([`crate::Limits::max_memory_bytes`]).
    limit: u64,
    /// Bytes of the constants computed by folding so far.
    folded_bytes: u64,
}

/// `"tensor 3 'y' (shape [1, 2, 2, 1], INT8)"`.
fn describe_tensor(info: &TensorInfo) -> String {
    format!(
        "tensor {} '{}' (shape {:?}, {})",
        info.index,
        info.name,
        info.shape,
        info.dtype.name()
    )
}

impl Builder<'_> {
    /// Refuses `needed` bytes for `what` when they exceed the limit.
    fn check_limit(&self, what: impl FnOnce() -> String, needed: u64) -> Result<(), RuntimeError> {
        if needed > self.limit {
            Err(RuntimeError::MemoryLimit {
                what: what(),
                needed,
                limit: self.limit,
            })
        } else {
            Ok(())
        }
    }

    /// Refuses a tensor the interpreter would allocate whose byte size exceeds the limit.
    fn check_tensor(&self, t: usize) -> Result<(), RuntimeError> {
        let slot = &self.slots[t];
        self.check_limit(|| describe_tensor(&slot.info), slot.bytes as u64)
    }

    fn info(&self, t: usize) -> &TensorInfo {
        &self.slots[t].info
    }

    fn const_bytes(&self, t: usize) -> Option<&[u8]> {
        match self.slots[t].loc {
            Loc::Const(c) => Some(self.consts[c].as_bytes()),
            _ => None,
        }
    }

    /// Constant integer data (int32 or int64) of a tensor, if it is constant.
    fn const_ints(&self, t: usize) -> Option<Vec<i64>> {
        let bytes = self.const_bytes(t)?;
        match self.info(t).dtype {
            TensorType::Int32 => Some(
                bytemuck::cast_slice::<u8, i32>(bytes)
                    .iter()
                    .map(|&v| v as i64)
                    .collect(),
            ),
            TensorType::Int64 => Some(bytemuck::cast_slice::<u8, i64>(bytes).to_vec()),
            _ => None,
        }
    }

    /// Per-tensor quantisation of a tensor or an error naming it.
    fn per_tensor(&self, cx: &OpCx, t: usize, role: &str) -> Result<(f32, i32), RuntimeError> {
        let info = self.info(t);
        match &info.quantization {
            Some(q) if q.scale.len() == 1 => Ok((q.scale[0], q.zero_point[0] as i32)),
            Some(q) => Err(cx.unsupported(format!(
                "{role} tensor {t} '{}' has {} scales; per-tensor quantization is required",
                info.name,
                q.scale.len()
            ))),
            None => Err(cx.invalid(format!(
                "{role} tensor {t} '{}' is {} but has no quantization parameters",
                info.name,
                info.dtype.name()
            ))),
        }
    }

    fn prepare(mut self, table: &KernelTable) -> Result<Prepared, RuntimeError> {
        let count = self.sg.tensors.len();
        let index_of = |raw: i32, context: &dyn Fn() -> String| -> Result<usize, RuntimeError> {
            if raw < 0 || raw as usize >= count {
                Err(RuntimeError::TensorIndex {
                    context: context(),
                    index: raw as i64,
                    count,
                })
            } else {
                Ok(raw as usize)
            }
        };
        // Constants.
        for t in 0..count {
            let buffer = self.sg.tensors[t].buffer as usize;
            if buffer != 0 && !self.model.buffers[buffer].data.is_empty() {
                self.consts
                    .push(AlignedBytes::from_bytes(&self.model.buffers[buffer].data));
                self.slots[t].loc = Loc::Const(self.consts.len() - 1);
            }
        }
        // Graph inputs.
        let mut inputs = Vec::new();
        for (i, &raw) in self.sg.inputs.iter().enumerate() {
            let t = index_of(raw, &|| format!("graph input {i}"))?;
            if matches!(self.slots[t].loc, Loc::Const(_)) {
                return Err(RuntimeError::InvalidGraphIo {
                    what: "input",
                    detail: format!(
                        "input {i} is tensor {t} '{}', which has constant data",
                        self.slots[t].info.name
                    ),
                });
            }
            if self.slots[t].info.dtype.size_bytes().is_none() {
                return Err(RuntimeError::InvalidGraphIo {
                    what: "input",
                    detail: format!(
                        "input {i} has type {}, which the runtime does not support",
                        self.slots[t].info.dtype.name()
                    ),
                });
            }
            self.check_tensor(t)?;
            self.slots[t].written = true;
            inputs.push(t);
        }

        let mut ops = Vec::new();
        let mut folded_ops = 0;
        for (index, op) in self.sg.operators.iter().enumerate() {
            let cx = OpCx {
                index,
                name: op_name(op),
            };
            if op.custom_code.is_some() || !is_supported(op.op) {
                return Err(RuntimeError::UnsupportedOp { index, op: cx.name });
            }
            let mut op_inputs = Vec::with_capacity(op.inputs.len());
            for (k, &raw) in op.inputs.iter().enumerate() {
                if raw == -1 {
                    op_inputs.push(None);
                    continue;
                }
                let t = index_of(raw, &|| format!("operator {index} ({}) input {k}", cx.name))?;
                if !self.slots[t].written && !matches!(self.slots[t].loc, Loc::Const(_)) {
                    return Err(RuntimeError::ReadBeforeWrite {
                        index,
                        op: cx.name.clone(),
                        tensor: t,
                        name: self.slots[t].info.name.clone(),
                    });
                }
                op_inputs.push(Some(t));
            }
            if op.outputs.len() != 1 {
                return Err(cx.invalid(format!("has {} outputs, expected 1", op.outputs.len())));
            }
            let output = index_of(op.outputs[0], &|| {
                format!("operator {index} ({}) output 0", cx.name)
            })?;
            if matches!(self.slots[output].loc, Loc::Const(_)) || self.slots[output].written {
                return Err(cx.invalid(format!(
                    "output tensor {output} '{}' is already written (a constant, a graph input or another op's output)",
                    self.slots[output].info.name
                )));
            }
            if self.slots[output].info.dtype.size_bytes().is_none() {
                return Err(cx.bad_type(format!(
                    "output tensor {output} has type {}",
                    self.slots[output].info.dtype.name()
                )));
            }
            let (kernel, shape) = self.prepare_op(&cx, op, &op_inputs, output, table)?;
            let declared = &self.slots[output].info.shape;
            if *declared != shape {
                return Err(RuntimeError::ShapeMismatch {
                    index,
                    op: cx.name,
                    tensor: output,
                    name: self.slots[output].info.name.clone(),
                    declared: self.sg.tensors[output].shape.clone(),
                    inferred: shape,
                });
            }
            let all_const = op_inputs
                .iter()
                .flatten()
                .all(|&t| matches!(self.slots[t].loc, Loc::Const(_)));
            let shape_only = matches!(
                self.slots[output].info.dtype,
                TensorType::Int32 | TensorType::Int64
            );
            self.check_tensor(output)?;
            if op.op == BuiltinOp::SHAPE || (all_const && shape_only) {
                // Constant folding: run the kernel now, keep the result as a constant.
                let scratch_bytes = (kernel.scratch_i32() as u64).saturating_mul(4);
                let folded = self
                    .folded_bytes
                    .saturating_add(self.slots[output].bytes as u64)
                    .saturating_add(scratch_bytes);
                self.check_limit(
                    || {
                        format!(
                            "folding operator {index} ({}) into constant {} (with {} bytes already folded)",
                            cx.name,
                            describe_tensor(&self.slots[output].info),
                            self.folded_bytes
                        )
                    },
                    folded,
                )?;
                self.folded_bytes = self
                    .folded_bytes
                    .saturating_add(self.slots[output].bytes as u64);
                let mut out = AlignedBytes::zeroed(self.slots[output].bytes);
                let mut scratch = vec![0i32; kernel.scratch_i32()];
                {
                    let ins: Vec<Option<&[u8]>> = op_inputs
                        .iter()
                        .map(|t| t.and_then(|t| self.const_bytes(t)))
                        .collect();
                    execute(&kernel, table, 1, &ins, out.as_bytes_mut(), &mut scratch);
                }
                self.consts.push(out);
                self.slots[output].loc = Loc::Const(self.consts.len() - 1);
                folded_ops += 1;
            } else {
                self.slots[output].written = true;
                ops.push(PreparedOp {
                    index,
                    op: op.op,
                    inputs: op_inputs,
                    output,
                    kernel,
                });
            }
        }

        // Graph outputs.
        let mut outputs = Vec::new();
        for (i, &raw) in self.sg.outputs.iter().enumerate() {
            let t = index_of(raw, &|| format!("graph output {i}"))?;
            if !self.slots[t].written && !matches!(self.slots[t].loc, Loc::Const(_)) {
                return Err(RuntimeError::InvalidGraphIo {
                    what: "output",
                    detail: format!(
                        "output {i} is tensor {t} '{}', which no operator writes",
                        self.slots[t].info.name
                    ),
                });
            }
            outputs.push(t);
        }

        // Arena plan over steps: 0 = inputs set, op j runs at step j + 1, end = ops + 1.
        let end = ops.len() + 1;
        let mut first = vec![usize::MAX; count];
        let mut last = vec![0usize; count];
        for &t in &inputs {
            first[t] = 0;
            last[t] = end; // graph inputs stay intact across invokes
        }
        for (j, op) in ops.iter().enumerate() {
            for &t in op.inputs.iter().flatten() {
                last[t] = last[t].max(j + 1);
            }
            first[op.output] = first[op.output].min(j + 1);
            last[op.output] = last[op.output].max(j + 1);
        }
        for &t in &outputs {
            last[t] = end;
        }
        let lifetimes: Vec<Lifetime> = (0..count)
            .filter(|&t| self.slots[t].written && first[t] != usize::MAX)
            .map(|t| Lifetime {
                id: t,
                bytes: self.slots[t].bytes,
                first: first[t],
                last: last[t],
            })
            .collect();
        let plan = plan_arena(&lifetimes);
        let (scratch_op, scratch_i32) = ops
            .iter()
            .map(|op| (op.index, op.kernel.scratch_i32()))
            .max_by_key(|&(index, n)| (n, std::cmp::Reverse(index)))
            .unwrap_or((0, 0));
        let scratch_bytes = (scratch_i32 as u64).saturating_mul(4);
        let arena_bytes = plan.peak_bytes as u64;
        let needed = arena_bytes
            .saturating_add(scratch_bytes)
            .saturating_add(self.folded_bytes);
        self.check_limit(
            || {
                let largest = lifetimes
                    .iter()
                    .max_by_key(|l| (l.bytes, std::cmp::Reverse(l.id)))
                    .map(|l| describe_tensor(&self.slots[l.id].info))
                    .unwrap_or_else(|| "none".into());
                format!(
                    "the activation arena ({arena_bytes} bytes for {} tensors, the largest {largest}) with {scratch_bytes} bytes of scratch (operator {scratch_op}) and {} bytes of folded constants",
                    lifetimes.len(),
                    self.folded_bytes
                )
            },
            needed,
        )?;
        for &(t, offset) in &plan.offsets {
            self.slots[t].loc = Loc::Arena(offset);
        }
        Ok(Prepared {
            slots: self.slots,
            consts: self.consts,
            ops,
            folded_ops,
            inputs,
            outputs,
            scratch_i32,
            plan,
            folded_bytes: self.folded_bytes,
        })
    }

    fn prepare_op(
        &self,
        cx: &OpCx,
        op: &Operator,
        inputs: &[Option<usize>],
        output: usize,
        table: &KernelTable,
    ) -> Result<(Kernel, Vec<usize>), RuntimeError> {
        let n_in = |lo: usize, hi: usize| -> Result<(), RuntimeError> {
            if inputs.len() < lo || inputs.len() > hi {
                Err(cx.invalid(format!(
                    "has {} inputs, expected {}",
                    inputs.len(),
                    if lo == hi {
                        lo.to_string()
                    } else {
                        format!("{lo} to {hi}")
                    }
                )))
            } else {
                Ok(())
            }
        };
        let req = |k: usize| -> Result<usize, RuntimeError> {
            inputs
                .get(k)
                .copied()
                .flatten()
                .ok_or_else(|| cx.invalid(format!("input {k} is missing")))
        };
        let opt = |k: usize| inputs.get(k).copied().flatten();
        let out_dtype = self.info(output).dtype;
        match op.op {
            BuiltinOp::CONV_2D => {
                n_in(2, 3)?;
                let o = match &op.options {
                    BuiltinOptions::Conv2D(o) => *o,
                    _ => return Err(cx.invalid("options are not Conv2DOptions")),
                };
                let (x, w) = (req(0)?, req(1)?);
                let bias = opt(2).ok_or_else(|| {
                    cx.invalid("has no bias; LiteRT's CONV_2D requires one (input 2)")
                })?;
                let xs = self.rank4(cx, x, "input")?;
                let ws = self.rank4(cx, w, "filter")?;
                if xs[3] != ws[3] {
                    return Err(cx.invalid(format!(
                        "input has {} channels but the filter expects {} (grouped convolution is not supported)",
                        xs[3], ws[3]
                    )));
                }
                if self.info(bias).num_elements() != ws[0] {
                    return Err(cx.invalid(format!(
                        "bias has {} elements, expected {} (one per output channel)",
                        self.info(bias).num_elements(),
                        ws[0]
                    )));
                }
                if o.stride_h <= 0 || o.stride_w <= 0 || o.dilation_h <= 0 || o.dilation_w <= 0 {
                    return Err(cx.invalid(format!(
                        "strides ({}, {}) and dilations ({}, {}) must be positive",
                        o.stride_h, o.stride_w, o.dilation_h, o.dilation_w
                    )));
                }
                let (out_h, pad_top) = self.window(
                    cx,
                    o.padding,
                    xs[1],
                    ws[1],
                    o.stride_h,
                    o.dilation_h,
                    "height",
                )?;
                let (out_w, pad_left) = self.window(
                    cx,
                    o.padding,
                    xs[2],
                    ws[2],
                    o.stride_w,
                    o.dilation_w,
                    "width",
                )?;
                let geometry = ConvGeometry {
                    batches: xs[0],
                    in_h: xs[1],
                    in_w: xs[2],
                    in_c: xs[3],
                    out_h,
                    out_w,
                    out_c: ws[0],
                    k_h: ws[1],
                    k_w: ws[2],
                    stride_h: o.stride_h as usize,
                    stride_w: o.stride_w as usize,
                    dilation_h: o.dilation_h as usize,
                    dilation_w: o.dilation_w as usize,
                    pad_top,
                    pad_left,
                };
                let shape = vec![xs[0], out_h, out_w, ws[0]];
                let kernel = match self.types(&[x, w, bias, output]).as_slice() {
                    [
                        TensorType::Float32,
                        TensorType::Float32,
                        TensorType::Float32,
                        TensorType::Float32,
                    ] => crate::fast::f32_conv::conv2d_kernel(
                        table,
                        geometry,
                        self.act_f32(cx, o.fused_activation)?,
                        self.const_bytes(w),
                    ),
                    [
                        TensorType::Int8,
                        TensorType::Int8,
                        TensorType::Int32,
                        TensorType::Int8,
                    ] => Kernel::ConvI8 {
                        geometry,
                        quant: self.conv_quant(cx, x, w, Some(bias), output, o.fused_activation)?,
                    },
                    _ => return Err(self.type_error(cx, &[x, w, bias], output)),
                };
                Ok((kernel, shape))
            }
            BuiltinOp::TRANSPOSE_CONV => {
                n_in(3, 4)?;
                let o = match &op.options {
                    BuiltinOptions::TransposeConv(o) => *o,
                    _ => return Err(cx.invalid("options are not TransposeConvOptions")),
                };
                let (shape_t, w, x) = (req(0)?, req(1)?, req(2)?);
                let bias = opt(3);
                let out_shape = self.const_ints(shape_t).ok_or_else(|| {
                    cx.unsupported(
                        "output_shape (input 0) is not constant and cannot be folded; dynamic shapes are not supported",
                    )
                })?;
                if out_shape.len() != 4 || out_shape.iter().any(|&d| d <= 0) {
                    return Err(cx.invalid(format!(
                        "output_shape {out_shape:?} is not 4 positive dimensions"
                    )));
                }
                let os: Vec<usize> = out_shape.iter().map(|&d| d as usize).collect();
                let xs = self.rank4(cx, x, "input")?;
                let ws = self.rank4(cx, w, "weights")?;
                if xs[3] != ws[3] {
                    return Err(cx.invalid(format!(
                        "input has {} channels but the weights expect {}",
                        xs[3], ws[3]
                    )));
                }
                if os[3] != ws[0] || os[0] != xs[0] {
                    return Err(cx.invalid(format!(
                        "output_shape {os:?} does not match the batch {} and weights' output channels {}",
                        xs[0], ws[0]
                    )));
                }
                if let Some(b) = bias
                    && self.info(b).num_elements() != ws[0]
                {
                    return Err(cx.invalid(format!(
                        "bias has {} elements, expected {}",
                        self.info(b).num_elements(),
                        ws[0]
                    )));
                }
                if o.stride_h <= 0 || o.stride_w <= 0 {
                    return Err(cx.invalid("strides must be positive"));
                }
                let mut pads = [0usize; 2];
                for (axis, (pad, stride)) in
                    pads.iter_mut().zip([o.stride_h, o.stride_w]).enumerate()
                {
                    let (big, k, small) = (
                        os[1 + axis] as i64,
                        ws[1 + axis] as i64,
                        xs[1 + axis] as i64,
                    );
                    let expect = out_size(o.padding, big, k, stride as i64, 1);
                    if expect != small {
                        return Err(cx.invalid(format!(
                            "input {} {small} does not match output_shape {big} (kernel {k}, stride {stride}, {:?} gives {expect})",
                            ["height", "width"][axis],
                            o.padding
                        )));
                    }
                    *pad = leading_padding(stride as i64, 1, big, k, small) as usize;
                }
                let geometry = ConvGeometry {
                    batches: xs[0],
                    in_h: xs[1],
                    in_w: xs[2],
                    in_c: xs[3],
                    out_h: os[1],
                    out_w: os[2],
                    out_c: os[3],
                    k_h: ws[1],
                    k_w: ws[2],
                    stride_h: o.stride_h as usize,
                    stride_w: o.stride_w as usize,
                    dilation_h: 1,
                    dilation_w: 1,
                    pad_top: pads[0],
                    pad_left: pads[1],
                };
                let mut typed = vec![x, w];
                typed.extend(bias);
                typed.push(output);
                let types = self.types(&typed);
                let bias_ok = |want: TensorType| bias.is_none_or(|b| self.info(b).dtype == want);
                let kernel = match (types[0], types[1], out_dtype) {
                    (TensorType::Float32, TensorType::Float32, TensorType::Float32)
                        if bias_ok(TensorType::Float32) =>
                    {
                        crate::fast::f32_conv::transpose_conv_kernel(
                            table,
                            geometry,
                            self.act_f32(cx, o.fused_activation)?,
                            self.const_bytes(w),
                        )
                    }
                    (TensorType::Int8, TensorType::Int8, TensorType::Int8)
                        if bias_ok(TensorType::Int32) =>
                    {
                        Kernel::TransposeConvI8 {
                            geometry,
                            quant: self.conv_quant(cx, x, w, bias, output, o.fused_activation)?,
                        }
                    }
                    _ => return Err(self.type_error(cx, &typed[..typed.len() - 1], output)),
                };
                Ok((kernel, os))
            }
            BuiltinOp::MAX_POOL_2D | BuiltinOp::AVERAGE_POOL_2D => {
                n_in(1, 1)?;
                let o = match &op.options {
                    BuiltinOptions::Pool2D(o) => *o,
                    _ => return Err(cx.invalid("options are not Pool2DOptions")),
                };
                let x = req(0)?;
                let xs = self.rank4(cx, x, "input")?;
                if o.stride_h <= 0 || o.stride_w <= 0 || o.filter_height <= 0 || o.filter_width <= 0
                {
                    return Err(cx.invalid("strides and window sizes must be positive"));
                }
                let fh = o.filter_height as usize;
                let fw = o.filter_width as usize;
                let (out_h, pad_top) =
                    self.window(cx, o.padding, xs[1], fh, o.stride_h, 1, "height")?;
                let (out_w, pad_left) =
                    self.window(cx, o.padding, xs[2], fw, o.stride_w, 1, "width")?;
                let geometry = PoolGeometry {
                    batches: xs[0],
                    in_h: xs[1],
                    in_w: xs[2],
                    channels: xs[3],
                    out_h,
                    out_w,
                    filter_h: fh,
                    filter_w: fw,
                    stride_h: o.stride_h as usize,
                    stride_w: o.stride_w as usize,
                    pad_top,
                    pad_left,
                };
                // Every window must cover at least one input pixel (the int8 average would
                // otherwise divide by zero; LiteRT fails in Eval).
                for (n_out, stride, pad, window, size) in [
                    (out_h, geometry.stride_h, pad_top, fh, xs[1]),
                    (out_w, geometry.stride_w, pad_left, fw, xs[2]),
                ] {
                    for o_i in 0..n_out {
                        let start = (o_i * stride) as i64 - pad as i64;
                        if start >= size as i64 || start + window as i64 <= 0 {
                            return Err(cx.invalid(format!(
                                "output position {o_i} has a window with no input pixels"
                            )));
                        }
                    }
                }
                let shape = vec![xs[0], out_h, out_w, xs[3]];
                let is_max = op.op == BuiltinOp::MAX_POOL_2D;
                let kernel = match (self.info(x).dtype, out_dtype) {
                    (TensorType::Float32, TensorType::Float32) => {
                        let act = self.act_f32(cx, o.fused_activation)?;
                        if is_max {
                            Kernel::MaxPoolF32 { geometry, act }
                        } else {
                            Kernel::AveragePoolF32 { geometry, act }
                        }
                    }
                    (TensorType::Int8, TensorType::Int8) => {
                        self.per_tensor(cx, x, "input")?;
                        let act = self.act_i8(cx, output, o.fused_activation)?;
                        if is_max {
                            Kernel::MaxPoolI8 { geometry, act }
                        } else {
                            Kernel::AveragePoolI8 { geometry, act }
                        }
                    }
                    _ => return Err(self.type_error(cx, &[x], output)),
                };
                Ok((kernel, shape))
            }
            BuiltinOp::CONCATENATION => {
                if inputs.is_empty() {
                    return Err(cx.invalid("has no inputs"));
                }
                let o = match &op.options {
                    BuiltinOptions::Concatenation(o) => *o,
                    _ => return Err(cx.invalid("options are not ConcatenationOptions")),
                };
                if o.fused_activation != Activation::None {
                    return Err(cx.unsupported(format!(
                        "fused activation {:?} (LiteRT requires NONE)",
                        o.fused_activation
                    )));
                }
                let ins: Vec<usize> = (0..inputs.len()).map(req).collect::<Result<_, _>>()?;
                let rank = self.info(ins[0]).shape.len();
                let axis = if o.axis < 0 {
                    o.axis + rank as i32
                } else {
                    o.axis
                };
                if axis < 0 || axis as usize >= rank {
                    return Err(cx.invalid(format!("axis {} is outside rank {rank}", o.axis)));
                }
                let axis = axis as usize;
                let dtype = self.info(ins[0]).dtype;
                if !matches!(
                    dtype,
                    TensorType::Float32
                        | TensorType::Int8
                        | TensorType::Int32
                        | TensorType::Int64
                        | TensorType::UInt8
                ) || out_dtype != dtype
                {
                    return Err(self.type_error(cx, &ins, output));
                }
                let mut shape = self.info(ins[0]).shape.clone();
                shape[axis] = 0;
                for &t in &ins {
                    let s = &self.info(t).shape;
                    if self.info(t).dtype != dtype {
                        return Err(self.type_error(cx, &ins, output));
                    }
                    if s.len() != rank
                        || s.iter()
                            .enumerate()
                            .any(|(a, &d)| a != axis && d != shape[a])
                    {
                        return Err(cx.invalid(format!(
                            "input tensor {t} has shape {s:?}, incompatible with {:?} along axis {axis}",
                            self.info(ins[0]).shape
                        )));
                    }
                    shape[axis] += s[axis];
                }
                if dtype == TensorType::Int8 {
                    let out_q = self.per_tensor(cx, output, "output")?;
                    for &t in &ins {
                        let q = self.per_tensor(cx, t, "input")?;
                        if q.0.to_bits() != out_q.0.to_bits() || q.1 != out_q.1 {
                            return Err(cx.invalid(format!(
                                "int8 input tensor {t} has scale {} zero point {}, output has {} {}; CONCATENATION needs them equal",
                                q.0, q.1, out_q.0, out_q.1
                            )));
                        }
                    }
                }
                let elem = dtype.size_bytes().unwrap_or(1);
                let outer: usize = shape[..axis].iter().product();
                let inner: usize = shape[axis + 1..].iter().product();
                let slab_bytes = ins
                    .iter()
                    .map(|&t| self.info(t).shape[axis] * inner * elem)
                    .collect();
                Ok((Kernel::Concatenation { outer, slab_bytes }, shape))
            }
            BuiltinOp::LOGISTIC => {
                n_in(1, 1)?;
                let x = req(0)?;
                let shape = self.info(x).shape.clone();
                match (self.info(x).dtype, out_dtype) {
                    (TensorType::Float32, TensorType::Float32) => Ok((Kernel::LogisticF32, shape)),
                    (TensorType::Int8, TensorType::Int8) => {
                        let (s_in, zp_in) = self.per_tensor(cx, x, "input")?;
                        let (s_out, zp_out) = self.per_tensor(cx, output, "output")?;
                        if s_out != 1.0 / 256.0 || zp_out != -128 {
                            return Err(cx.invalid(format!(
                                "int8 output must have scale 1/256 and zero point -128, has {s_out} and {zp_out}"
                            )));
                        }
                        let lut = Box::new(logistic_lut_i8(s_in, zp_in, s_out, zp_out));
                        Ok((Kernel::LogisticI8 { lut }, shape))
                    }
                    _ => Err(self.type_error(cx, &[x], output)),
                }
            }
            BuiltinOp::RELU => {
                n_in(1, 1)?;
                let x = req(0)?;
                let shape = self.info(x).shape.clone();
                match (self.info(x).dtype, out_dtype) {
                    (TensorType::Float32, TensorType::Float32) => Ok((Kernel::ReluF32, shape)),
                    (TensorType::Int8, TensorType::Int8) => {
                        let (s_in, zp_in) = self.per_tensor(cx, x, "input")?;
                        let (s_out, zp_out) = self.per_tensor(cx, output, "output")?;
                        // LiteRT: `double real_multiplier = input->scale / output->scale;`,
                        // a float division.
                        let m = self.multiplier(cx, (s_in / s_out) as f64)?;
                        Ok((
                            Kernel::ReluI8(RequantParams {
                                input_zero_point: zp_in,
                                output_zero_point: zp_out,
                                multiplier: m.multiplier,
                                shift: m.shift,
                                act_min: (i8::MIN as i32)
                                    .max(zp_out + (0.0f32 / s_out).round() as i32),
                                act_max: i8::MAX as i32,
                            }),
                            shape,
                        ))
                    }
                    _ => Err(self.type_error(cx, &[x], output)),
                }
            }
            BuiltinOp::QUANTIZE => {
                n_in(1, 1)?;
                let x = req(0)?;
                let shape = self.info(x).shape.clone();
                match (self.info(x).dtype, out_dtype) {
                    (TensorType::Float32, TensorType::Int8) => {
                        let (scale, zero_point) = self.per_tensor(cx, output, "output")?;
                        Ok((Kernel::QuantizeF32I8 { scale, zero_point }, shape))
                    }
                    (TensorType::Int8, TensorType::Int8) => {
                        let (s_in, zp_in) = self.per_tensor(cx, x, "input")?;
                        let (s_out, zp_out) = self.per_tensor(cx, output, "output")?;
                        let m = self.multiplier(cx, s_in as f64 / s_out as f64)?;
                        Ok((
                            Kernel::Requantize(RequantParams {
                                input_zero_point: zp_in,
                                output_zero_point: zp_out,
                                multiplier: m.multiplier,
                                shift: m.shift,
                                act_min: i8::MIN as i32,
                                act_max: i8::MAX as i32,
                            }),
                            shape,
                        ))
                    }
                    _ => Err(self.type_error(cx, &[x], output)),
                }
            }
            BuiltinOp::DEQUANTIZE => {
                n_in(1, 1)?;
                let x = req(0)?;
                let shape = self.info(x).shape.clone();
                match (self.info(x).dtype, out_dtype) {
                    (TensorType::Int8, TensorType::Float32) => {
                        let (scale, zero_point) = self.per_tensor(cx, x, "input")?;
                        Ok((Kernel::DequantizeI8 { scale, zero_point }, shape))
                    }
                    _ => Err(self.type_error(cx, &[x], output)),
                }
            }
            BuiltinOp::RESIZE_NEAREST_NEIGHBOR => {
                n_in(2, 2)?;
                let o = match &op.options {
                    BuiltinOptions::ResizeNearestNeighbor(o) => *o,
                    BuiltinOptions::None => Default::default(),
                    _ => return Err(cx.invalid("options are not ResizeNearestNeighborOptions")),
                };
                let (x, size_t) = (req(0)?, req(1)?);
                let xs = self.rank4(cx, x, "input")?;
                if xs[1] == 0 || xs[2] == 0 {
                    return Err(
                        cx.invalid(format!("input shape {xs:?} has no pixels to resize from"))
                    );
                }
                let size = self.const_ints(size_t).ok_or_else(|| {
                    cx.unsupported("size (input 1) is not a constant int32 tensor")
                })?;
                if size.len() != 2 || size.iter().any(|&d| d <= 0) {
                    return Err(cx.invalid(format!("size {size:?} is not 2 positive values")));
                }
                let dtype = self.info(x).dtype;
                if dtype != out_dtype
                    || !matches!(
                        dtype,
                        TensorType::Float32
                            | TensorType::Int8
                            | TensorType::Int32
                            | TensorType::UInt8
                    )
                {
                    return Err(self.type_error(cx, &[x], output));
                }
                let (out_h, out_w) = (size[0] as usize, size[1] as usize);
                let src_y = (0..out_h)
                    .map(|y| nearest_source(y, xs[1], out_h, o.align_corners, o.half_pixel_centers))
                    .collect();
                let src_x = (0..out_w)
                    .map(|x| nearest_source(x, xs[2], out_w, o.align_corners, o.half_pixel_centers))
                    .collect();
                Ok((
                    Kernel::ResizeNearest {
                        batches: xs[0],
                        in_h: xs[1],
                        in_w: xs[2],
                        pixel_bytes: xs[3] * dtype.size_bytes().unwrap_or(1),
                        src_y,
                        src_x,
                    },
                    vec![xs[0], out_h, out_w, xs[3]],
                ))
            }
            BuiltinOp::ADD | BuiltinOp::MUL => {
                n_in(2, 2)?;
                let activation = match &op.options {
                    BuiltinOptions::Add(o) | BuiltinOptions::Mul(o) => o.fused_activation,
                    BuiltinOptions::None => Activation::None,
                    _ => return Err(cx.invalid("options are not AddOptions/MulOptions")),
                };
                let (a, b) = (req(0)?, req(1)?);
                let layout = BroadcastLayout::new(&self.info(a).shape, &self.info(b).shape)
                    .ok_or_else(|| {
                        cx.invalid(format!(
                            "shapes {:?} and {:?} do not broadcast",
                            self.info(a).shape,
                            self.info(b).shape
                        ))
                    })?;
                let shape = layout.out_shape.clone();
                let is_add = op.op == BuiltinOp::ADD;
                let types = self.types(&[a, b, output]);
                let kernel = match types.as_slice() {
                    [
                        TensorType::Float32,
                        TensorType::Float32,
                        TensorType::Float32,
                    ] => {
                        let act = self.act_f32(cx, activation)?;
                        if is_add {
                            Kernel::AddF32 { layout, act }
                        } else {
                            Kernel::MulF32 { layout, act }
                        }
                    }
                    [TensorType::Int32, TensorType::Int32, TensorType::Int32] => {
                        if activation != Activation::None {
                            return Err(cx.unsupported("int32 with a fused activation"));
                        }
                        if is_add {
                            Kernel::AddI32 { layout }
                        } else {
                            Kernel::MulI32 { layout }
                        }
                    }
                    [TensorType::Int8, TensorType::Int8, TensorType::Int8] => {
                        let (s1, z1) = self.per_tensor(cx, a, "input 0")?;
                        let (s2, z2) = self.per_tensor(cx, b, "input 1")?;
                        let (so, zo) = self.per_tensor(cx, output, "output")?;
                        let (act_min, act_max) = self.act_i8(cx, output, activation)?;
                        if is_add {
                            let left_shift = 20;
                            let twice_max = 2.0 * s1.max(s2) as f64;
                            let m1 = quantize_multiplier(s1 as f64 / twice_max);
                            let m2 = quantize_multiplier(s2 as f64 / twice_max);
                            let mo = quantize_multiplier(
                                twice_max / ((1i64 << left_shift) as f64 * so as f64),
                            );
                            if m1.shift > 0 || m2.shift > 0 || mo.shift > 0 {
                                return Err(cx.invalid(format!(
                                    "output scale {so} is too small for input scales {s1} and {s2} (the rescale must be below 1)"
                                )));
                            }
                            Kernel::AddI8 {
                                layout,
                                quant: AddQuantParams {
                                    input1_offset: -z1,
                                    input2_offset: -z2,
                                    output_offset: zo,
                                    left_shift,
                                    input1_multiplier: m1.multiplier,
                                    input1_shift: m1.shift,
                                    input2_multiplier: m2.multiplier,
                                    input2_shift: m2.shift,
                                    output_multiplier: mo.multiplier,
                                    output_shift: mo.shift,
                                    act_min,
                                    act_max,
                                },
                            }
                        } else {
                            // LiteRT multiplies and divides the float scales in float.
                            let m = self.multiplier(cx, (s1 * s2 / so) as f64)?;
                            Kernel::MulI8 {
                                layout,
                                quant: MulQuantParams {
                                    input1_offset: -z1,
                                    input2_offset: -z2,
                                    output_offset: zo,
                                    output_multiplier: m.multiplier,
                                    output_shift: m.shift,
                                    act_min,
                                    act_max,
                                },
                            }
                        }
                    }
                    _ => return Err(self.type_error(cx, &[a, b], output)),
                };
                Ok((kernel, shape))
            }
            BuiltinOp::RESHAPE => {
                n_in(1, 2)?;
                let x = req(0)?;
                if self.info(x).dtype != out_dtype {
                    return Err(self.type_error(cx, &[x], output));
                }
                let requested: Vec<i64> = if let Some(s) = opt(1) {
                    self.const_ints(s).ok_or_else(|| {
                        cx.unsupported(
                            "shape (input 1) is not constant; dynamic shapes are not supported",
                        )
                    })?
                } else {
                    match &op.options {
                        BuiltinOptions::Reshape(o) if !o.new_shape.is_empty() => {
                            o.new_shape.iter().map(|&d| d as i64).collect()
                        }
                        _ => self.info(output).shape.iter().map(|&d| d as i64).collect(),
                    }
                };
                let n = self.info(x).num_elements();
                let shape = resolve_reshape(&requested, n).ok_or_else(|| {
                    cx.invalid(format!(
                        "cannot reshape {:?} ({n} elements) to {requested:?}",
                        self.info(x).shape
                    ))
                })?;
                Ok((Kernel::Copy, shape))
            }
            BuiltinOp::SHAPE => {
                n_in(1, 1)?;
                let x = req(0)?;
                let int64 = match out_dtype {
                    TensorType::Int32 => false,
                    TensorType::Int64 => true,
                    _ => return Err(self.type_error(cx, &[x], output)),
                };
                let dims: Vec<i64> = self.info(x).shape.iter().map(|&d| d as i64).collect();
                let shape = vec![dims.len()];
                Ok((Kernel::Shape { dims, int64 }, shape))
            }
            BuiltinOp::STRIDED_SLICE => {
                n_in(4, 4)?;
                let o = match &op.options {
                    BuiltinOptions::StridedSlice(o) => *o,
                    BuiltinOptions::None => Default::default(),
                    _ => return Err(cx.invalid("options are not StridedSliceOptions")),
                };
                if o.ellipsis_mask != 0 || o.new_axis_mask != 0 || o.offset {
                    return Err(
                        cx.unsupported("ellipsis_mask, new_axis_mask and offset are not supported")
                    );
                }
                let x = req(0)?;
                let consts: Vec<Vec<i64>> = (1..4)
                    .map(|k| {
                        req(k).and_then(|t| {
                            self.const_ints(t).ok_or_else(|| {
                                cx.unsupported(format!(
                                    "input {k} is not a constant integer tensor"
                                ))
                            })
                        })
                    })
                    .collect::<Result<_, _>>()?;
                let in_shape = self.info(x).shape.clone();
                let rank = in_shape.len();
                if consts.iter().any(|c| c.len() != rank) {
                    return Err(cx.invalid(format!(
                        "begin/end/strides have lengths {}/{}/{}, the input has rank {rank}",
                        consts[0].len(),
                        consts[1].len(),
                        consts[2].len()
                    )));
                }
                if self.info(x).dtype != out_dtype || out_dtype.size_bytes().is_none() {
                    return Err(self.type_error(cx, &[x], output));
                }
                let mut axes = Vec::with_capacity(rank);
                let mut shape = Vec::new();
                for axis in 0..rank {
                    let dim = in_shape[axis] as i64;
                    let stride = consts[2][axis];
                    if stride == 0 {
                        return Err(cx.invalid(format!("stride of axis {axis} is 0")));
                    }
                    let bit = 1i32 << axis;
                    let shrink = o.shrink_axis_mask & bit != 0;
                    let clamp = |v: i64| {
                        if stride > 0 {
                            v.clamp(0, dim)
                        } else {
                            v.clamp(-1, dim - 1)
                        }
                    };
                    let start = if o.begin_mask & bit != 0 && !shrink {
                        if stride > 0 { 0 } else { dim - 1 }
                    } else {
                        let b = consts[0][axis];
                        clamp(if b < 0 { b + dim } else { b })
                    };
                    let stop = if shrink {
                        start + 1
                    } else if o.end_mask & bit != 0 {
                        if stride > 0 { dim } else { -1 }
                    } else {
                        let e = consts[1][axis];
                        clamp(if e < 0 { e + dim } else { e })
                    };
                    let stride = if shrink { 1 } else { stride };
                    let count = if stride > 0 {
                        ((stop - start).max(0) + stride - 1) / stride
                    } else {
                        ((start - stop).max(0) + (-stride) - 1) / (-stride)
                    };
                    if shrink && (count != 1 || start < 0 || start >= dim) {
                        return Err(cx.invalid(format!(
                            "shrink axis {axis}: index {} is outside dimension {dim}",
                            consts[0][axis]
                        )));
                    }
                    axes.push((start, stride, count as usize));
                    if !shrink {
                        shape.push(count as usize);
                    }
                }
                Ok((
                    Kernel::StridedSlice {
                        in_shape,
                        axes,
                        element_bytes: out_dtype.size_bytes().unwrap_or(1),
                    },
                    shape,
                ))
            }
            BuiltinOp::PACK => {
                let o = match &op.options {
                    BuiltinOptions::Pack(o) => *o,
                    _ => return Err(cx.invalid("options are not PackOptions")),
                };
                if inputs.is_empty() || o.values_count as usize != inputs.len() {
                    return Err(cx.invalid(format!(
                        "values_count {} but {} inputs",
                        o.values_count,
                        inputs.len()
                    )));
                }
                let ins: Vec<usize> = (0..inputs.len()).map(req).collect::<Result<_, _>>()?;
                let first = self.info(ins[0]).clone();
                for &t in &ins {
                    if self.info(t).shape != first.shape || self.info(t).dtype != first.dtype {
                        return Err(cx.invalid(format!(
                            "input tensor {t} differs in shape or type from input 0 ({:?} {})",
                            first.shape,
                            first.dtype.name()
                        )));
                    }
                }
                if first.dtype != out_dtype {
                    return Err(self.type_error(cx, &ins, output));
                }
                let rank = first.shape.len() as i32;
                let axis = if o.axis < 0 {
                    o.axis + rank + 1
                } else {
                    o.axis
                };
                if axis < 0 || axis > rank {
                    return Err(cx.invalid(format!(
                        "axis {} is outside [-{}, {rank}]",
                        o.axis,
                        rank + 1
                    )));
                }
                let axis = axis as usize;
                let mut shape = first.shape.clone();
                shape.insert(axis, ins.len());
                let outer: usize = first.shape[..axis].iter().product();
                let inner: usize = first.shape[axis..].iter().product();
                Ok((
                    Kernel::Pack {
                        outer,
                        inner_bytes: inner * out_dtype.size_bytes().unwrap_or(1),
                    },
                    shape,
                ))
            }
            _ => Err(RuntimeError::UnsupportedOp {
                index: cx.index,
                op: cx.name.clone(),
            }),
        }
    }

    /// `QuantizeMultiplier`, refusing factors whose left shift would overflow the int32
    /// arithmetic (LiteRT's behaviour there is undefined).
    fn multiplier(&self, cx: &OpCx, real: f64) -> Result<QuantizedMultiplier, RuntimeError> {
        let m = quantize_multiplier(real);
        if m.shift > 30 {
            return Err(cx.invalid(format!(
                "rescale factor {real:e} is too large for int8 arithmetic (scales are inconsistent)"
            )));
        }
        Ok(m)
    }

    fn types(&self, tensors: &[usize]) -> Vec<TensorType> {
        tensors.iter().map(|&t| self.info(t).dtype).collect()
    }

    fn type_error(&self, cx: &OpCx, inputs: &[usize], output: usize) -> RuntimeError {
        let ins: Vec<String> = inputs.iter().map(|&t| self.info(t).dtype.name()).collect();
        cx.bad_type(format!(
            "inputs ({}) → output {}",
            ins.join(", "),
            self.info(output).dtype.name()
        ))
    }

    fn rank4(&self, cx: &OpCx, t: usize, role: &str) -> Result<[usize; 4], RuntimeError> {
        let s = &self.info(t).shape;
        match s.as_slice() {
            &[a, b, c, d] => Ok([a, b, c, d]),
            _ => Err(cx.invalid(format!(
                "{role} tensor {t} has shape {s:?}, expected rank 4"
            ))),
        }
    }

    /// Output size and leading padding of one spatial axis.
    #[allow(clippy::too_many_arguments)]
    fn window(
        &self,
        cx: &OpCx,
        padding: Padding,
        input: usize,
        filter: usize,
        stride: i32,
        dilation: i32,
        axis: &str,
    ) -> Result<(usize, usize), RuntimeError> {
        let (i, f, s, d) = (input as i64, filter as i64, stride as i64, dilation as i64);
        let out = out_size(padding, i, f, s, d);
        if out <= 0 || f <= 0 {
            return Err(cx.invalid(format!(
                "{axis}: a window of {filter} (dilation {dilation}) does not fit {padding:?} input {input}"
            )));
        }
        Ok((out as usize, leading_padding(s, d, i, f, out) as usize))
    }

    fn act_f32(&self, cx: &OpCx, activation: Activation) -> Result<(f32, f32), RuntimeError> {
        activation_range_f32(activation)
            .ok_or_else(|| cx.unsupported(format!("fused activation {activation:?}")))
    }

    fn act_i8(
        &self,
        cx: &OpCx,
        output: usize,
        activation: Activation,
    ) -> Result<(i32, i32), RuntimeError> {
        let (scale, zero_point) = self.per_tensor(cx, output, "output")?;
        let (lo, hi) = activation_range_i8(activation, scale, zero_point)
            .ok_or_else(|| cx.unsupported(format!("fused activation {activation:?}")))?;
        if lo > hi {
            return Err(cx.invalid(format!(
                "fused activation {activation:?} gives an empty int8 range [{lo}, {hi}]"
            )));
        }
        Ok((lo, hi))
    }

    /// `PopulateConvolutionQuantizationParams`.
    fn conv_quant(
        &self,
        cx: &OpCx,
        x: usize,
        w: usize,
        bias: Option<usize>,
        output: usize,
        activation: Activation,
    ) -> Result<ConvQuantParams, RuntimeError> {
        let (s_in, zp_in) = self.per_tensor(cx, x, "input")?;
        let (s_out, zp_out) = self.per_tensor(cx, output, "output")?;
        let out_c = self.info(w).shape[0];
        let wq = self.info(w).quantization.as_ref().ok_or_else(|| {
            cx.invalid(format!(
                "int8 weights tensor {w} has no quantization parameters"
            ))
        })?;
        if wq.scale.len() != 1 && wq.scale.len() != out_c {
            return Err(cx.invalid(format!(
                "weights have {} scales, expected 1 or {out_c}",
                wq.scale.len()
            )));
        }
        if wq.scale.len() > 1 && wq.quantized_dimension != 0 {
            return Err(cx.invalid(format!(
                "per-channel weights must be quantized along dimension 0, not {}",
                wq.quantized_dimension
            )));
        }
        if wq.zero_point.iter().any(|&z| z != 0) {
            return Err(cx.invalid("weights have a non-zero zero point"));
        }
        if let Some(b) = bias
            && let Some(bq) = &self.info(b).quantization
            && bq.zero_point.iter().any(|&z| z != 0)
        {
            return Err(cx.invalid("bias has a non-zero zero point"));
        }
        let (act_min, act_max) = self.act_i8(cx, output, activation)?;
        let mut multipliers = Vec::with_capacity(out_c);
        let mut shifts = Vec::with_capacity(out_c);
        for c in 0..out_c {
            let s_w = wq.scale[if wq.scale.len() == 1 { 0 } else { c }];
            let m = self.multiplier(cx, s_in as f64 * s_w as f64 / s_out as f64)?;
            multipliers.push(m.multiplier);
            shifts.push(m.shift);
        }
        Ok(ConvQuantParams {
            input_zero_point: zp_in,
            output_zero_point: zp_out,
            multipliers,
            shifts,
            act_min,
            act_max,
        })
    }
}

/// RESHAPE's target with at most one -1 resolved; `None` when impossible.
fn resolve_reshape(requested: &[i64], n_elements: usize) -> Option<Vec<usize>> {
    let mut unknown = None;
    let mut known = 1usize;
    for (i, &d) in requested.iter().enumerate() {
        if d == -1 {
            if unknown.replace(i).is_some() {
                return None;
            }
        } else if d < 0 {
            return None;
        } else {
            known = known.checked_mul(d as usize)?;
        }
    }
    let mut shape: Vec<usize> = requested.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(i) = unknown {
        if known == 0 || !n_elements.is_multiple_of(known) {
            return None;
        }
        shape[i] = n_elements / known;
    } else if known != n_elements {
        return None;
    }
    Some(shape)
}

/// Validates and prepares subgraph 0 of `model`; what the shapes make it allocate (activation
/// tensors, the arena, scratch, folded constants) must fit in `limit` bytes.
pub(crate) fn prepare(
    model: &Model,
    table: &KernelTable,
    limit: u64,
) -> Result<Prepared, RuntimeError> {
    let sg = model.subgraphs.first().ok_or(RuntimeError::NoSubgraph)?;
    let slots = validate_tensors(model, sg)?;
    Builder {
        model,
        sg,
        slots,
        consts: Vec::new(),
        limit,
        folded_bytes: 0,
    }
    .prepare(table)
}
