//! Preparing CONCATENATION ([`crate::reference::concatenation`]).

#[allow(unused_imports)]
use super::*;

impl Builder<'_> {
    /// CONCATENATION: operand and option checks, output shape, kernel.
    pub(super) fn concatenation(
        &self,
        cx: &OpCx,
        op: &Operator,
        ins: &OpInputs,
        output: usize,
    ) -> Result<(Kernel, Vec<usize>), RuntimeError> {
        let out_dtype = self.info(output).dtype;
        if ins.inputs.is_empty() {
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
        let operands: Vec<usize> = (0..ins.inputs.len())
            .map(|k| ins.req(k))
            .collect::<Result<_, _>>()?;
        let rank = self.info(operands[0]).shape.len();
        let axis = if o.axis < 0 {
            o.axis + rank as i32
        } else {
            o.axis
        };
        if axis < 0 || axis as usize >= rank {
            return Err(cx.invalid(format!("axis {} is outside rank {rank}", o.axis)));
        }
        let axis = axis as usize;
        let dtype = self.info(operands[0]).dtype;
        if !matches!(
            dtype,
            TensorType::Float32
                | TensorType::Int8
                | TensorType::Int16
                | TensorType::Int32
                | TensorType::Int64
                | TensorType::UInt8
        ) || out_dtype != dtype
        {
            return Err(self.type_error(cx, &operands, output));
        }
        let mut shape = self.info(operands[0]).shape.clone();
        shape[axis] = 0;
        for &t in &operands {
            let s = &self.info(t).shape;
            if self.info(t).dtype != dtype {
                return Err(self.type_error(cx, &operands, output));
            }
            if s.len() != rank
                || s.iter()
                    .enumerate()
                    .any(|(a, &d)| a != axis && d != shape[a])
            {
                return Err(cx.invalid(format!(
                    "input tensor {t} has shape {s:?}, incompatible with {:?} along axis {axis}",
                    self.info(operands[0]).shape
                )));
            }
            shape[axis] += s[axis];
        }
        if matches!(dtype, TensorType::Int8 | TensorType::Int16) {
            let out_q = self.per_tensor(cx, output, "output")?;
            for &t in &operands {
                let q = self.per_tensor(cx, t, "input")?;
                if q.0.to_bits() != out_q.0.to_bits() || q.1 != out_q.1 {
                    return Err(cx.invalid(format!(
                        "{} input tensor {t} has scale {} zero point {}, output has {} {}; CONCATENATION needs them equal",
                        dtype.name(),
                        q.0, q.1, out_q.0, out_q.1
                    )));
                }
            }
        }
        let elem = dtype.size_bytes().unwrap_or(1);
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        let slab_bytes = operands
            .iter()
            .map(|&t| self.info(t).shape[axis] * inner * elem)
            .collect();
        Ok((Kernel::Concatenation { outer, slab_bytes }, shape))
    }
}
