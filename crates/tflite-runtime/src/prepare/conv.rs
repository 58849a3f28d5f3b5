//! Preparing CONV_2D (reference kernel [`crate::reference::conv`], packed f32 through the kernel table).

#[allow(unused_imports)]
use super::*;

impl Builder<'_> {
    /// CONV_2D: operand and option checks, output shape, kernel.
    pub(super) fn conv2d(
        &self,
        cx: &OpCx,
        op: &Operator,
        ins: &OpInputs,
        output: usize,
        table: &KernelTable,
    ) -> Result<(Kernel, Vec<usize>), RuntimeError> {
        ins.count(2, 3)?;
        let o = match &op.options {
            BuiltinOptions::Conv2D(o) => *o,
            _ => return Err(cx.invalid("options are not Conv2DOptions")),
        };
        let (x, w) = (ins.req(0)?, ins.req(1)?);
        let bias = ins
            .opt(2)
            .ok_or_else(|| cx.invalid("has no bias; LiteRT's CONV_2D requires one (input 2)"))?;
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
            ] => conv2d_f32_kernel(
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
            // 16x8 with the int64 bias TensorFlow's converter writes. (LiteRT 2.3's reference
            // kernel gives other results for an int32 bias than the int32 reading of it, so such a
            // model is refused here rather than run differently.)
            [
                TensorType::Int16,
                TensorType::Int8,
                TensorType::Int64,
                TensorType::Int16,
            ] => Kernel::ConvI16 {
                geometry,
                quant: self.conv_quant_16x8(cx, x, w, Some(bias), output, o.fused_activation)?,
            },
            _ => return Err(self.type_error(cx, &[x, w, bias], output)),
        };
        Ok((kernel, shape))
    }
}

/// The CONV_2D f32 kernel the table gives: packed through its factory when it has one and the
/// filter is constant (`filter` holds its bytes), otherwise its `conv2d_f32` slot.
fn conv2d_f32_kernel(
    table: &KernelTable,
    geometry: ConvGeometry,
    act: (f32, f32),
    filter: Option<&[u8]>,
) -> Kernel {
    match pack_f32_filter(table, filter, |f, w| (f.conv2d)(&geometry, act, w)) {
        Some(packed) => Kernel::ConvF32Packed(Arc::new(packed)),
        None => Kernel::ConvF32 { geometry, act },
    }
}
