//! Preparing RESHAPE, SHAPE, STRIDED_SLICE and PACK (the shape-only operators, usually folded).

#[allow(unused_imports)]
use super::*;

impl Builder<'_> {
    /// RESHAPE: operand and option checks, output shape, kernel.
    pub(super) fn reshape(
        &self,
        cx: &OpCx,
        op: &Operator,
        ins: &OpInputs,
        output: usize,
    ) -> Result<(Kernel, Vec<usize>), RuntimeError> {
        let out_dtype = self.info(output).dtype;
        ins.count(1, 2)?;
        let x = ins.req(0)?;
        if self.info(x).dtype != out_dtype {
            return Err(self.type_error(cx, &[x], output));
        }
        let requested: Vec<i64> = if let Some(s) = ins.opt(1) {
            self.const_ints(s).ok_or_else(|| {
                cx.unsupported("shape (input 1) is not constant; dynamic shapes are not supported")
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

    /// SHAPE: operand and option checks, output shape, kernel.
    pub(super) fn shape(
        &self,
        cx: &OpCx,
        _op: &Operator,
        ins: &OpInputs,
        output: usize,
    ) -> Result<(Kernel, Vec<usize>), RuntimeError> {
        let out_dtype = self.info(output).dtype;
        ins.count(1, 1)?;
        let x = ins.req(0)?;
        let int64 = match out_dtype {
            TensorType::Int32 => false,
            TensorType::Int64 => true,
            _ => return Err(self.type_error(cx, &[x], output)),
        };
        let dims: Vec<i64> = self.info(x).shape.iter().map(|&d| d as i64).collect();
        let shape = vec![dims.len()];
        Ok((Kernel::Shape { dims, int64 }, shape))
    }

    /// STRIDED_SLICE: operand and option checks, output shape, kernel.
    pub(super) fn strided_slice(
        &self,
        cx: &OpCx,
        op: &Operator,
        ins: &OpInputs,
        output: usize,
    ) -> Result<(Kernel, Vec<usize>), RuntimeError> {
        let out_dtype = self.info(output).dtype;
        ins.count(4, 4)?;
        let o = match &op.options {
            BuiltinOptions::StridedSlice(o) => *o,
            BuiltinOptions::None => Default::default(),
            _ => return Err(cx.invalid("options are not StridedSliceOptions")),
        };
        if o.ellipsis_mask != 0 || o.new_axis_mask != 0 || o.offset {
            return Err(cx.unsupported("ellipsis_mask, new_axis_mask and offset are not supported"));
        }
        let x = ins.req(0)?;
        let consts: Vec<Vec<i64>> = (1..4)
            .map(|k| {
                ins.req(k).and_then(|t| {
                    self.const_ints(t).ok_or_else(|| {
                        cx.unsupported(format!("input {k} is not a constant integer tensor"))
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

    /// PACK: operand and option checks, output shape, kernel.
    pub(super) fn pack(
        &self,
        cx: &OpCx,
        op: &Operator,
        ins: &OpInputs,
        output: usize,
    ) -> Result<(Kernel, Vec<usize>), RuntimeError> {
        let out_dtype = self.info(output).dtype;
        let o = match &op.options {
            BuiltinOptions::Pack(o) => *o,
            _ => return Err(cx.invalid("options are not PackOptions")),
        };
        if ins.inputs.is_empty() || o.values_count as usize != ins.inputs.len() {
            return Err(cx.invalid(format!(
                "values_count {} but {} inputs",
                o.values_count,
                ins.inputs.len()
            )));
        }
        let operands: Vec<usize> = (0..ins.inputs.len())
            .map(|k| ins.req(k))
            .collect::<Result<_, _>>()?;
        let first = self.info(operands[0]).clone();
        for &t in &operands {
            if self.info(t).shape != first.shape || self.info(t).dtype != first.dtype {
                return Err(cx.invalid(format!(
                    "input tensor {t} differs in shape or type from input 0 ({:?} {})",
                    first.shape,
                    first.dtype.name()
                )));
            }
        }
        if first.dtype != out_dtype {
            return Err(self.type_error(cx, &operands, output));
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
        shape.insert(axis, operands.len());
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
