//! Preparing RESIZE_NEAREST_NEIGHBOR ([`crate::reference::resize_nearest`]).

#[allow(unused_imports)]
use super::*;

impl Builder<'_> {
    /// RESIZE_NEAREST_NEIGHBOR: operand and option checks, output shape, kernel.
    pub(super) fn resize_nearest(
        &self,
        cx: &OpCx,
        op: &Operator,
        ins: &OpInputs,
        output: usize,
    ) -> Result<(Kernel, Vec<usize>), RuntimeError> {
        let out_dtype = self.info(output).dtype;
        ins.count(2, 2)?;
        let o = match &op.options {
            BuiltinOptions::ResizeNearestNeighbor(o) => *o,
            BuiltinOptions::None => Default::default(),
            _ => return Err(cx.invalid("options are not ResizeNearestNeighborOptions")),
        };
        let (x, size_t) = (ins.req(0)?, ins.req(1)?);
        let xs = self.rank4(cx, x, "input")?;
        if xs[1] == 0 || xs[2] == 0 {
            return Err(cx.invalid(format!("input shape {xs:?} has no pixels to resize from")));
        }
        let size = self
            .const_ints(size_t)
            .ok_or_else(|| cx.unsupported("size (input 1) is not a constant int32 tensor"))?;
        if size.len() != 2 || size.iter().any(|&d| d <= 0) {
            return Err(cx.invalid(format!("size {size:?} is not 2 positive values")));
        }
        let dtype = self.info(x).dtype;
        if dtype != out_dtype
            || !matches!(
                dtype,
                TensorType::Float32
                    | TensorType::Int8
                    | TensorType::Int16
                    | TensorType::Int32
                    | TensorType::UInt8
            )
        {
            return Err(self.type_error(cx, &[x], output));
        }
        let (out_h, out_w) = (size[0] as usize, size[1] as usize);
        // The size comes from a constant, not a declared shape: check what it makes us allocate
        // (the output and the two source-index tables) before building anything.
        let element = dtype.size_bytes().unwrap_or(1);
        let output_bytes = [xs[0], out_h, out_w, xs[3], element]
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .unwrap_or(u64::MAX);
        let table_bytes = (out_h as u64 + out_w as u64) * std::mem::size_of::<usize>() as u64;
        self.check_limit(
            || {
                format!(
                    "operator {} ({}): a {out_h}x{out_w} resize of {xs:?} (output and index tables)",
                    cx.index, cx.name
                )
            },
            output_bytes.saturating_add(table_bytes),
        )?;
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
}
