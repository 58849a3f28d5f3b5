//! Preparing MAX_POOL_2D and AVERAGE_POOL_2D ([`crate::reference::pool`]).

#[allow(unused_imports)]
use super::*;

impl Builder<'_> {
    /// MAX_POOL_2D and AVERAGE_POOL_2D: operand and option checks, output shape, kernel.
    pub(super) fn pool(
        &self,
        cx: &OpCx,
        op: &Operator,
        ins: &OpInputs,
        output: usize,
    ) -> Result<(Kernel, Vec<usize>), RuntimeError> {
        let out_dtype = self.info(output).dtype;
        ins.count(1, 1)?;
        let o = match &op.options {
            BuiltinOptions::Pool2D(o) => *o,
            _ => return Err(cx.invalid("options are not Pool2DOptions")),
        };
        let x = ins.req(0)?;
        let xs = self.rank4(cx, x, "input")?;
        if o.stride_h <= 0 || o.stride_w <= 0 || o.filter_height <= 0 || o.filter_width <= 0 {
            return Err(cx.invalid("strides and window sizes must be positive"));
        }
        let fh = o.filter_height as usize;
        let fw = o.filter_width as usize;
        let (out_h, pad_top) = self.window(cx, o.padding, xs[1], fh, o.stride_h, 1, "height")?;
        let (out_w, pad_left) = self.window(cx, o.padding, xs[2], fw, o.stride_w, 1, "width")?;
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
}
