//! `Interpreter::new`'s work: validation of tensors and operators, static shape inference,
//! constant folding of shape-only subgraphs, kernel parameters, and the arena plan.

use tflite_writer::{
    Activation, BuiltinOp, BuiltinOptions, Model, Operator, Padding, Quantization, Subgraph,
    TensorType,
};

use crate::error::RuntimeError;
use crate::exec::{Kernel, execute};
use crate::frame::{
    AddQuantParams, BroadcastLayout, ConvGeometry, ConvQuantParams, MulQuantParams, PoolGeometry,
    RequantParams,
};
use crate::kernels::KernelTable;
use crate::padding::{leading_padding, out_size};
use crate::plan::{ArenaPlan, Lifetime, plan_arena};
use crate::quant::{QuantizedMultiplier, activation_range_f32, quantize_multiplier};
use crate::reference::logistic::logistic_lut_i8;
use crate::reference::quantize::QuantInt;
use crate::reference::resize_nearest::nearest_source;
use crate::tensor::{AlignedBytes, TensorInfo};
use std::sync::Arc;

mod activation;
mod arithmetic;
mod concatenation;
mod conv;
mod pool;
mod quantize;
mod resize_nearest;
mod shape_ops;
mod transpose_conv;

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

/// The inputs of one operator, with the checks every operator family makes.
struct OpInputs<'a> {
    cx: &'a OpCx,
    inputs: &'a [Option<usize>],
}

impl OpInputs<'_> {
    /// Between `lo` and `hi` inputs (omitted optional ones included).
    fn count(&self, lo: usize, hi: usize) -> Result<(), RuntimeError> {
        if self.inputs.len() < lo || self.inputs.len() > hi {
            Err(self.cx.invalid(format!(
                "has {} inputs, expected {}",
                self.inputs.len(),
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo} to {hi}")
                }
            )))
        } else {
            Ok(())
        }
    }

    /// Input `k`, which the operator requires.
    fn req(&self, k: usize) -> Result<usize, RuntimeError> {
        self.inputs
            .get(k)
            .copied()
            .flatten()
            .ok_or_else(|| self.cx.invalid(format!("input {k} is missing")))
    }

    /// Optional input `k`.
    fn opt(&self, k: usize) -> Option<usize> {
        self.inputs.get(k).copied().flatten()
    }
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
        let ins = OpInputs { cx, inputs };
        match op.op {
            BuiltinOp::CONV_2D => self.conv2d(cx, op, &ins, output, table),
            BuiltinOp::TRANSPOSE_CONV => self.transpose_conv(cx, op, &ins, output, table),
            BuiltinOp::MAX_POOL_2D | BuiltinOp::AVERAGE_POOL_2D => self.pool(cx, op, &ins, output),
            BuiltinOp::CONCATENATION => self.concatenation(cx, op, &ins, output),
            BuiltinOp::LOGISTIC => self.logistic(cx, op, &ins, output),
            BuiltinOp::RELU => self.relu(cx, op, &ins, output),
            BuiltinOp::QUANTIZE => self.quantize(cx, op, &ins, output),
            BuiltinOp::DEQUANTIZE => self.dequantize(cx, op, &ins, output),
            BuiltinOp::RESIZE_NEAREST_NEIGHBOR => self.resize_nearest(cx, op, &ins, output),
            BuiltinOp::ADD | BuiltinOp::MUL => self.add_mul(cx, op, &ins, output),
            BuiltinOp::RESHAPE => self.reshape(cx, op, &ins, output),
            BuiltinOp::SHAPE => self.shape(cx, op, &ins, output),
            BuiltinOp::STRIDED_SLICE => self.strided_slice(cx, op, &ins, output),
            BuiltinOp::PACK => self.pack(cx, op, &ins, output),
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

    /// Clamp range of a fused activation on a quantised output of element type `T` (int8 or
    /// int16).
    fn act_int<T: QuantInt>(
        &self,
        cx: &OpCx,
        output: usize,
        activation: Activation,
    ) -> Result<(i32, i32), RuntimeError> {
        let (scale, zero_point) = self.per_tensor(cx, output, "output")?;
        let type_name = T::NAME;
        let (lo, hi) = crate::quant::activation_range_quantized(
            activation,
            scale,
            zero_point,
            (T::MIN, T::MAX),
        )
        .ok_or_else(|| cx.unsupported(format!("fused activation {activation:?}")))?;
        if lo > hi {
            return Err(cx.invalid(format!(
                "fused activation {activation:?} gives an empty {type_name} range [{lo}, {hi}]"
            )));
        }
        Ok((lo, hi))
    }

    /// An int16 activation of a 16x8 model: per-tensor, zero point 0 (LiteRT refuses others).
    fn symmetric_i16(&self, cx: &OpCx, t: usize, what: &str) -> Result<(), RuntimeError> {
        let (_, zero_point) = self.per_tensor(cx, t, what)?;
        if zero_point != 0 {
            return Err(cx.invalid(format!(
                "int16 {what} tensor {t} has zero point {zero_point}; 16x8 activations are symmetric (zero point 0)"
            )));
        }
        Ok(())
    }

    /// [`Self::conv_quant`] for 16x8: symmetric int16 input and output, int16 activation range.
    fn conv_quant_16x8(
        &self,
        cx: &OpCx,
        x: usize,
        w: usize,
        bias: Option<usize>,
        output: usize,
        activation: Activation,
    ) -> Result<ConvQuantParams, RuntimeError> {
        self.symmetric_i16(cx, x, "input")?;
        self.symmetric_i16(cx, output, "output")?;
        let mut q = self.conv_quant(cx, x, w, bias, output, Activation::None)?;
        (q.act_min, q.act_max) = self.act_int::<i16>(cx, output, activation)?;
        Ok(q)
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
        let (act_min, act_max) = self.act_int::<i8>(cx, output, activation)?;
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

/// A constant f32 filter (`filter` holds its bytes) packed by `pack` through the table's
/// packed-f32 factories; `None` when the table has none, the filter is not constant, or the
/// factory does not cover the shape.
fn pack_f32_filter<T>(
    table: &KernelTable,
    filter: Option<&[u8]>,
    pack: impl FnOnce(&crate::kernels::PackedF32Factories, &[f32]) -> Option<T>,
) -> Option<T> {
    let (factories, bytes) = table.packed_f32.as_ref().zip(filter)?;
    pack(factories, bytemuck::try_cast_slice(bytes).ok()?)
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
