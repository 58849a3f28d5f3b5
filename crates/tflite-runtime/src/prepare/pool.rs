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
            if let Some(o_i) = first_empty_window(n_out, stride, pad, window, size) {
                return Err(cx.invalid(format!(
                    "output position {o_i} has a window with no input pixels"
                )));
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
                let act = self.act_int::<i8>(cx, output, o.fused_activation)?;
                if is_max {
                    Kernel::MaxPoolI8 { geometry, act }
                } else {
                    Kernel::AveragePoolI8 { geometry, act }
                }
            }
            // 16x8 models: int16 activations, symmetric (zero point 0), max pool only.
            (TensorType::Int16, TensorType::Int16) if is_max => {
                self.symmetric_i16(cx, x, "input")?;
                self.symmetric_i16(cx, output, "output")?;
                let act = self.act_int::<i16>(cx, output, o.fused_activation)?;
                Kernel::MaxPoolI16 { geometry, act }
            }
            _ => return Err(self.type_error(cx, &[x], output)),
        };
        Ok((kernel, shape))
    }
}

/// The first output position whose window (`window` wide, starting at `o·stride − pad`) covers
/// no input pixel of `0..size`, if any. Window starts grow with `o`, so only the first window
/// can end before the input and only the last can start after it: O(1), whatever the output
/// size (a model may declare billions of positions over an empty tensor).
fn first_empty_window(
    n_out: usize,
    stride: usize,
    pad: usize,
    window: usize,
    size: usize,
) -> Option<usize> {
    if n_out == 0 {
        return None;
    }
    let start = |o: usize| (o as i128) * (stride as i128) - pad as i128;
    if start(0) + window as i128 <= 0 || start(0) >= size as i128 {
        return Some(0);
    }
    let last = n_out - 1;
    (start(last) >= size as i128).then(|| {
        // The first position past the input: ceil((size + pad) / stride).
        (size + pad).div_ceil(stride.max(1)).min(last)
    })
}

#[cfg(test)]
mod tests {
    use super::first_empty_window;

    /// The O(1) answer is the one the position-by-position scan gives.
    #[test]
    fn first_empty_window_matches_the_scan() {
        for n_out in 0..7 {
            for stride in 1..4 {
                for pad in 0..5 {
                    for window in 1..5 {
                        for size in 0..6 {
                            let scan = (0..n_out).find(|&o| {
                                let start = (o * stride) as i64 - pad as i64;
                                start >= size as i64 || start + window as i64 <= 0
                            });
                            assert_eq!(
                                first_empty_window(n_out, stride, pad, window, size),
                                scan,
                                "n_out {n_out} stride {stride} pad {pad} window {window} size {size}"
                            );
                        }
                    }
                }
            }
        }
    }
}
