//! Preparing TRANSPOSE_CONV (reference kernel [`crate::reference::transpose_conv`]).

#[allow(unused_imports)]
use super::*;

impl Builder<'_> {
    /// TRANSPOSE_CONV: operand and option checks, output shape, kernel.
    pub(super) fn transpose_conv(
        &self,
        cx: &OpCx,
        op: &Operator,
        ins: &OpInputs,
        output: usize,
        table: &KernelTable,
    ) -> Result<(Kernel, Vec<usize>), RuntimeError> {
        let out_dtype = self.info(output).dtype;
        ins.count(3, 4)?;
        let o = match &op.options {
            BuiltinOptions::TransposeConv(o) => *o,
            _ => return Err(cx.invalid("options are not TransposeConvOptions")),
        };
        let (shape_t, w, x) = (ins.req(0)?, ins.req(1)?, ins.req(2)?);
        let bias = ins.opt(3);
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
        for (axis, (pad, stride)) in pads.iter_mut().zip([o.stride_h, o.stride_w]).enumerate() {
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
                transpose_conv_f32_kernel(
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
            (TensorType::Int16, TensorType::Int8, TensorType::Int16)
                if bias_ok(TensorType::Int64) =>
            {
                Kernel::TransposeConvI16 {
                    geometry,
                    quant: self.conv_quant_16x8(cx, x, w, bias, output, o.fused_activation)?,
                }
            }
            _ => return Err(self.type_error(cx, &typed[..typed.len() - 1], output)),
        };
        Ok((kernel, os))
    }
}

/// The TRANSPOSE_CONV f32 kernel the table gives (see [`conv2d_f32_kernel`]).
fn transpose_conv_f32_kernel(
    table: &KernelTable,
    geometry: ConvGeometry,
    act: (f32, f32),
    filter: Option<&[u8]>,
) -> Kernel {
    match pack_f32_filter(table, filter, |f, w| (f.transpose_conv)(&geometry, act, w)) {
        Some(packed) => Kernel::TransposeConvF32Packed(Arc::new(packed)),
        None => Kernel::TransposeConvF32 { geometry, act },
    }
}
