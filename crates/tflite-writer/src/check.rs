//! Semantic checks of a model: everything the flatbuffers verifier cannot see.
//!
//! Run by the reader on every model it returns and by the writer before it serialises, so a
//! model that passes is safe to index: tensor, buffer and subgraph indices are in range,
//! constant buffers hold exactly shape × element size bytes, and quantization arrays have
//! consistent lengths.

use crate::error::{Error, invalid};
use crate::ir::{Model, Quantization, Subgraph, Tensor, TensorType};

/// Checks the consistency of `model`; the first problem found is returned as
/// [`Error::Invalid`] with its location.
pub fn check_model(model: &Model) -> Result<(), Error> {
    if let Some(first) = model.buffers.first()
        && !first.data.is_empty()
    {
        return Err(invalid(
            "buffer 0",
            format!(
                "must be the empty sentinel, holds {} bytes",
                first.data.len()
            ),
        ));
    }
    for (sg_idx, subgraph) in model.subgraphs.iter().enumerate() {
        check_subgraph(model, sg_idx, subgraph)?;
    }
    for (md_idx, metadata) in model.metadata.iter().enumerate() {
        if metadata.buffer as usize >= model.buffers.len() {
            return Err(invalid(
                format!("metadata {md_idx} {:?}", metadata.name),
                format!(
                    "buffer {} out of range (model has {} buffers)",
                    metadata.buffer,
                    model.buffers.len()
                ),
            ));
        }
    }
    for (sig_idx, signature) in model.signature_defs.iter().enumerate() {
        let at = format!("signature {sig_idx} {:?}", signature.signature_key);
        let Some(subgraph) = model.subgraphs.get(signature.subgraph_index as usize) else {
            return Err(invalid(
                at,
                format!(
                    "subgraph {} out of range (model has {})",
                    signature.subgraph_index,
                    model.subgraphs.len()
                ),
            ));
        };
        for map in signature.inputs.iter().chain(&signature.outputs) {
            if map.tensor_index as usize >= subgraph.tensors.len() {
                return Err(invalid(
                    &at,
                    format!(
                        "{:?} names tensor {} out of range (subgraph has {} tensors)",
                        map.name,
                        map.tensor_index,
                        subgraph.tensors.len()
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_subgraph(model: &Model, sg_idx: usize, subgraph: &Subgraph) -> Result<(), Error> {
    let n_tensors = subgraph.tensors.len();
    let in_range = |idx: i32| idx >= 0 && (idx as usize) < n_tensors;
    for (what, list) in [("input", &subgraph.inputs), ("output", &subgraph.outputs)] {
        for &idx in list.iter() {
            if !in_range(idx) {
                return Err(invalid(
                    format!("subgraph {sg_idx} {what}s"),
                    format!("tensor index {idx} out of range (subgraph has {n_tensors} tensors)"),
                ));
            }
        }
    }
    for (op_idx, op) in subgraph.operators.iter().enumerate() {
        let at = || format!("subgraph {sg_idx} operator {op_idx} ({})", op.op.name());
        for &idx in &op.inputs {
            if idx != -1 && !in_range(idx) {
                return Err(invalid(
                    at(),
                    format!("input tensor {idx} out of range (subgraph has {n_tensors} tensors)"),
                ));
            }
        }
        for &idx in &op.outputs {
            if !in_range(idx) {
                return Err(invalid(
                    at(),
                    format!("output tensor {idx} out of range (subgraph has {n_tensors} tensors)"),
                ));
            }
        }
        if op.version < 0 {
            return Err(invalid(at(), format!("negative version {}", op.version)));
        }
    }
    for (t_idx, tensor) in subgraph.tensors.iter().enumerate() {
        check_tensor(model, tensor).map_err(|problem| {
            invalid(
                format!("subgraph {sg_idx} tensor {t_idx} {:?}", tensor.name),
                problem,
            )
        })?;
    }
    Ok(())
}

fn check_tensor(model: &Model, tensor: &Tensor) -> Result<(), String> {
    if let Some(&dim) = tensor.shape.iter().find(|&&d| d < 0) {
        return Err(format!(
            "negative dimension {dim} in shape {:?}",
            tensor.shape
        ));
    }
    if let Some(signature) = &tensor.shape_signature
        && signature.len() != tensor.shape.len()
    {
        return Err(format!(
            "shape_signature {signature:?} has a different rank than shape {:?}",
            tensor.shape
        ));
    }
    let Some(buffer) = model.buffers.get(tensor.buffer as usize) else {
        return Err(format!(
            "buffer {} out of range (model has {} buffers)",
            tensor.buffer,
            model.buffers.len()
        ));
    };
    if !buffer.data.is_empty()
        && let Some(elem) = tensor.dtype.size_bytes()
    {
        let expected = tensor
            .shape
            .iter()
            .try_fold(elem, |acc, &d| acc.checked_mul(d as usize))
            .ok_or_else(|| format!("shape {:?} overflows", tensor.shape))?;
        if expected != buffer.data.len() {
            return Err(format!(
                "buffer {} holds {} bytes, but shape {:?} of {} needs {expected}",
                tensor.buffer,
                buffer.data.len(),
                tensor.shape,
                tensor.dtype.name()
            ));
        }
    }
    if let Some(quant) = &tensor.quantization {
        check_quantization(quant, &tensor.shape, tensor.dtype)?;
    }
    Ok(())
}

fn check_quantization(
    quant: &Quantization,
    shape: &[i32],
    _dtype: TensorType,
) -> Result<(), String> {
    if quant.min.len() != quant.max.len() {
        return Err(format!(
            "quantization has {} min values but {} max values",
            quant.min.len(),
            quant.max.len()
        ));
    }
    if quant.scale.len() != quant.zero_point.len() {
        return Err(format!(
            "quantization has {} scales but {} zero points",
            quant.scale.len(),
            quant.zero_point.len()
        ));
    }
    if let Some(scale) = quant.scale.iter().find(|s| !s.is_finite()) {
        return Err(format!("quantization scale {scale} is not finite"));
    }
    if quant.scale.len() > 1 {
        let axis = quant.quantized_dimension;
        if axis < 0 || axis as usize >= shape.len() {
            return Err(format!(
                "quantized_dimension {axis} out of range for shape {shape:?}"
            ));
        }
        let dim = shape[axis as usize];
        if dim as usize != quant.scale.len() {
            return Err(format!(
                "{} per-axis scales, but dimension {axis} of shape {shape:?} is {dim}",
                quant.scale.len()
            ));
        }
    }
    Ok(())
}
