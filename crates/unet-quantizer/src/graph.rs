//! Float model preparation: checks the model's interface and operators, folds shape-only
//! subgraphs into constants, removes dead operators and compacts tensors and buffers.
//!
//! TensorFlow's converter computes the `output_shape` of every `TRANSPOSE_CONV` at run time
//! (`SHAPE → STRIDED_SLICE → PACK`). Our models have static shapes, so the interpreter already
//! knows every tensor's shape after preparation: we replace each such input by a constant holding
//! the inferred shape, and the shape computations become dead and disappear. NPUs (Vela) then
//! get a graph without any shape-computation operator.

use std::collections::HashMap;

use tflite_runtime::{Interpreter, Options};
use tflite_writer::{
    Activation, BuiltinOp, BuiltinOptions, Model, ModelBuilder, Operator, TensorType,
};

use crate::error::QuantError;

/// Operators that only compute shapes; they must fold away.
pub(crate) fn is_shape_op(op: BuiltinOp) -> bool {
    matches!(
        op,
        BuiltinOp::SHAPE | BuiltinOp::STRIDED_SLICE | BuiltinOp::PACK
    )
}

/// Operators the quantizer rewrites to int8.
pub(crate) fn is_quantisable(op: BuiltinOp) -> bool {
    matches!(
        op,
        BuiltinOp::CONV_2D
            | BuiltinOp::TRANSPOSE_CONV
            | BuiltinOp::MAX_POOL_2D
            | BuiltinOp::AVERAGE_POOL_2D
            | BuiltinOp::CONCATENATION
            | BuiltinOp::LOGISTIC
            | BuiltinOp::RELU
            | BuiltinOp::RESIZE_NEAREST_NEIGHBOR
            | BuiltinOp::ADD
            | BuiltinOp::MUL
            | BuiltinOp::RESHAPE
    )
}

/// The fused activation of an operator, if its options have one.
pub(crate) fn fused_activation(options: &BuiltinOptions) -> Activation {
    match options {
        BuiltinOptions::Conv2D(o) => o.fused_activation,
        BuiltinOptions::DepthwiseConv2D(o) => o.fused_activation,
        BuiltinOptions::TransposeConv(o) => o.fused_activation,
        BuiltinOptions::Pool2D(o) => o.fused_activation,
        BuiltinOptions::Concatenation(o) => o.fused_activation,
        BuiltinOptions::Add(o) | BuiltinOptions::Mul(o) => o.fused_activation,
        BuiltinOptions::FullyConnected(o) => o.fused_activation,
        _ => Activation::None,
    }
}

/// A float model ready for calibration: one float32 `[1,H,W,C]` input, one float32 output, only
/// quantisable operators, no shape computations.
#[derive(Debug, Clone)]
pub struct FloatGraph {
    /// The cleaned model (subgraph 0 only).
    pub model: Model,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Input channels.
    pub channels: usize,
    /// Operators removed by folding and dead-code elimination.
    pub removed_ops: usize,
}

impl FloatGraph {
    /// Number of values of one input sample (`H·W·C`).
    pub fn input_len(&self) -> usize {
        self.height * self.width * self.channels
    }
}

fn unquantisable(op_index: usize, op: &Operator, reason: impl Into<String>) -> QuantError {
    QuantError::Unquantisable {
        op_index,
        op: op.op.name(),
        reason: reason.into(),
    }
}

/// Checks and cleans a float model (see the module docs).
pub fn prepare_float(model: &Model) -> Result<FloatGraph, QuantError> {
    let sg = model
        .subgraphs
        .first()
        .ok_or_else(|| QuantError::UnsupportedModel("the model has no subgraph".into()))?;
    if sg.inputs.len() != 1 || sg.outputs.len() != 1 {
        return Err(QuantError::UnsupportedModel(format!(
            "expected one input and one output, found {} inputs and {} outputs",
            sg.inputs.len(),
            sg.outputs.len()
        )));
    }
    let tensor = |t: i32| {
        usize::try_from(t)
            .ok()
            .and_then(|t| sg.tensors.get(t))
            .ok_or_else(|| QuantError::UnsupportedModel(format!("tensor index {t} out of range")))
    };
    let input = tensor(sg.inputs[0])?;
    let output = tensor(sg.outputs[0])?;
    if input.dtype != TensorType::Float32 || output.dtype != TensorType::Float32 {
        return Err(QuantError::UnsupportedModel(format!(
            "input `{}` is {} and output `{}` is {}; a float32 model is needed (is it already quantised?)",
            input.name,
            input.dtype.name(),
            output.name,
            output.dtype.name()
        )));
    }
    if input.shape.len() != 4 || input.shape[0] != 1 || input.shape[1..].iter().any(|&d| d <= 0) {
        return Err(QuantError::UnsupportedModel(format!(
            "input `{}` has shape {:?}; expected a static [1,H,W,C] image",
            input.name, input.shape
        )));
    }
    for (op_index, op) in sg.operators.iter().enumerate() {
        if op.op == BuiltinOp::CUSTOM {
            let name = op.custom_code.clone().unwrap_or_default();
            return Err(unquantisable(
                op_index,
                op,
                format!("custom operator `{name}` has no int8 form"),
            ));
        }
        if !is_quantisable(op.op) && !is_shape_op(op.op) {
            return Err(unquantisable(
                op_index,
                op,
                "the quantizer supports CONV_2D, TRANSPOSE_CONV, MAX_POOL_2D, AVERAGE_POOL_2D, CONCATENATION, \
                 LOGISTIC, RELU, RESIZE_NEAREST_NEIGHBOR, ADD, MUL, RESHAPE (and folds SHAPE/STRIDED_SLICE/PACK)",
            ));
        }
        if op.outputs.len() != 1 {
            return Err(unquantisable(
                op_index,
                op,
                "operators with several outputs are not supported",
            ));
        }
    }
    // NaN or infinite weights would give NaN ranges and a meaningless int8 model.
    for (t, info) in sg.tensors.iter().enumerate() {
        if info.dtype != TensorType::Float32 {
            continue;
        }
        let Some(bytes) = model.tensor_data(0, t) else {
            continue;
        };
        let values = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let count = values.clone().filter(|v| !v.is_finite()).count();
        if count > 0 {
            return Err(QuantError::NonFiniteWeights {
                tensor: info.name.clone(),
                count,
                len: bytes.len() / 4,
            });
        }
    }
    // The interpreter infers every shape (and folds SHAPE chains) during preparation.
    let interpreter =
        Interpreter::new(model, Options::default()).map_err(QuantError::runtime("float model"))?;
    let static_shape = |t: usize| -> Option<Vec<i32>> {
        interpreter
            .tensor_info(t)
            .map(|info| info.shape.iter().map(|&d| d as i32).collect())
    };

    // Replace computed shape inputs by constants: (op index, input slot) → shape values.
    let mut const_inputs: HashMap<(usize, usize), Vec<i32>> = HashMap::new();
    let is_const = |t: i32| model.tensor_data(0, t as usize).is_some();
    for (op_index, op) in sg.operators.iter().enumerate() {
        let slot = match op.op {
            BuiltinOp::TRANSPOSE_CONV => 0,
            BuiltinOp::RESHAPE if op.inputs.len() > 1 && op.inputs[1] >= 0 => 1,
            _ => continue,
        };
        let Some(&t) = op.inputs.get(slot) else {
            return Err(unquantisable(op_index, op, "missing output shape input"));
        };
        if t >= 0 && is_const(t) {
            continue;
        }
        let shape = static_shape(op.outputs[0] as usize)
            .ok_or_else(|| unquantisable(op_index, op, "the output shape could not be inferred"))?;
        const_inputs.insert((op_index, slot), shape);
    }

    // Dead-code elimination, from the outputs backwards.
    let mut live_tensors = vec![false; sg.tensors.len()];
    live_tensors[sg.outputs[0] as usize] = true;
    let mut live_ops = vec![false; sg.operators.len()];
    for (op_index, op) in sg.operators.iter().enumerate().rev() {
        if !op
            .outputs
            .iter()
            .any(|&t| t >= 0 && live_tensors[t as usize])
        {
            continue;
        }
        live_ops[op_index] = true;
        for (slot, &t) in op.inputs.iter().enumerate() {
            if t >= 0 && !const_inputs.contains_key(&(op_index, slot)) {
                live_tensors[t as usize] = true;
            }
        }
    }
    for (op_index, op) in sg.operators.iter().enumerate() {
        if live_ops[op_index] && is_shape_op(op.op) {
            return Err(unquantisable(
                op_index,
                op,
                "this shape computation feeds a tensor other than a TRANSPOSE_CONV output shape or a RESHAPE shape, \
                 so it cannot be folded into a constant",
            ));
        }
    }

    // Rebuild the live part.
    let mut b = ModelBuilder::new();
    let mut map: HashMap<usize, i32> = HashMap::new();
    let copy = |b: &mut ModelBuilder, map: &mut HashMap<usize, i32>, t: usize| -> i32 {
        if let Some(&n) = map.get(&t) {
            return n;
        }
        let src = &sg.tensors[t];
        let n = match model.tensor_data(0, t) {
            Some(data) => b.add_const(
                &src.name,
                &src.shape,
                src.dtype,
                data.to_vec(),
                src.quantization.clone(),
            ),
            None => b.add_activation(&src.name, &src.shape, src.dtype, src.quantization.clone()),
        };
        map.insert(t, n);
        n
    };
    let input_idx = sg.inputs[0] as usize;
    let new_input = copy(&mut b, &mut map, input_idx);
    b.set_inputs(&[new_input]);
    let mut removed_ops = 0;
    for (op_index, op) in sg.operators.iter().enumerate() {
        if !live_ops[op_index] {
            removed_ops += 1;
            continue;
        }
        let mut inputs = Vec::with_capacity(op.inputs.len());
        for (slot, &t) in op.inputs.iter().enumerate() {
            if let Some(shape) = const_inputs.get(&(op_index, slot)) {
                let name = format!("{}_shape", sg.tensors[op.outputs[0] as usize].name);
                inputs.push(b.add_const_i32(&name, &[shape.len() as i32], shape, None));
            } else if t < 0 {
                inputs.push(-1);
            } else {
                inputs.push(copy(&mut b, &mut map, t as usize));
            }
        }
        let outputs: Vec<i32> = op
            .outputs
            .iter()
            .map(|&t| copy(&mut b, &mut map, t as usize))
            .collect();
        b.add_op(op.op, op.options.clone(), &inputs, &outputs);
    }
    let new_output = copy(&mut b, &mut map, sg.outputs[0] as usize);
    b.set_outputs(&[new_output]);
    b.set_description("float model, shape computations folded (unet-quantizer)");
    let mut cleaned = b.finish();
    if let Some(sg) = cleaned.subgraphs.first_mut() {
        sg.name.clone_from(&model.subgraphs[0].name);
        if sg.name.is_empty() {
            sg.name = "main".into();
        }
    }
    Ok(FloatGraph {
        model: cleaned,
        height: input.shape[1] as usize,
        width: input.shape[2] as usize,
        channels: input.shape[3] as usize,
        removed_ops,
    })
}
