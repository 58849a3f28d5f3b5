//! Preparing QUANTIZE and DEQUANTIZE ([`crate::reference::quantize`], [`crate::reference::dequantize`]):
//! f32 → int8/int16, int8 ↔ int16 and same-type requantisation, int8/int16 → f32.

#[allow(unused_imports)]
use super::*;

impl Builder<'_> {
    /// QUANTIZE: operand and option checks, output shape, kernel.
    pub(super) fn quantize(
        &self,
        cx: &OpCx,
        _op: &Operator,
        ins: &OpInputs,
        output: usize,
    ) -> Result<(Kernel, Vec<usize>), RuntimeError> {
        let out_dtype = self.info(output).dtype;
        ins.count(1, 1)?;
        let x = ins.req(0)?;
        let shape = self.info(x).shape.clone();
        match (self.info(x).dtype, out_dtype) {
            (TensorType::Float32, TensorType::Int8) => {
                let (scale, zero_point) = self.per_tensor(cx, output, "output")?;
                Ok((Kernel::QuantizeF32I8 { scale, zero_point }, shape))
            }
            (TensorType::Float32, TensorType::Int16) => {
                let (scale, zero_point) = self.per_tensor(cx, output, "output")?;
                Ok((Kernel::QuantizeF32I16 { scale, zero_point }, shape))
            }
            (
                from @ (TensorType::Int8 | TensorType::Int16),
                to @ (TensorType::Int8 | TensorType::Int16),
            ) => {
                let (s_in, zp_in) = self.per_tensor(cx, x, "input")?;
                let (s_out, zp_out) = self.per_tensor(cx, output, "output")?;
                let m = self.multiplier(cx, s_in as f64 / s_out as f64)?;
                let (act_min, act_max) = if to == TensorType::Int16 {
                    (i16::MIN as i32, i16::MAX as i32)
                } else {
                    (i8::MIN as i32, i8::MAX as i32)
                };
                Ok((
                    Kernel::Requantize {
                        params: RequantParams {
                            input_zero_point: zp_in,
                            output_zero_point: zp_out,
                            multiplier: m.multiplier,
                            shift: m.shift,
                            act_min,
                            act_max,
                        },
                        input_i16: from == TensorType::Int16,
                        output_i16: to == TensorType::Int16,
                    },
                    shape,
                ))
            }
            _ => Err(self.type_error(cx, &[x], output)),
        }
    }

    /// DEQUANTIZE: operand and option checks, output shape, kernel.
    pub(super) fn dequantize(
        &self,
        cx: &OpCx,
        _op: &Operator,
        ins: &OpInputs,
        output: usize,
    ) -> Result<(Kernel, Vec<usize>), RuntimeError> {
        let out_dtype = self.info(output).dtype;
        ins.count(1, 1)?;
        let x = ins.req(0)?;
        let shape = self.info(x).shape.clone();
        match (self.info(x).dtype, out_dtype) {
            (TensorType::Int8, TensorType::Float32) => {
                let (scale, zero_point) = self.per_tensor(cx, x, "input")?;
                Ok((Kernel::DequantizeI8 { scale, zero_point }, shape))
            }
            (TensorType::Int16, TensorType::Float32) => {
                let (scale, zero_point) = self.per_tensor(cx, x, "input")?;
                Ok((Kernel::DequantizeI16 { scale, zero_point }, shape))
            }
            _ => Err(self.type_error(cx, &[x], output)),
        }
    }
}
