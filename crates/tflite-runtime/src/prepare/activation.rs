//! Preparing LOGISTIC and RELU ([`crate::reference::logistic`], [`crate::reference::relu`]).

#[allow(unused_imports)]
use super::*;

impl Builder<'_> {
    /// LOGISTIC: operand and option checks, output shape, kernel.
    pub(super) fn logistic(
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
            (TensorType::Float32, TensorType::Float32) => Ok((Kernel::LogisticF32, shape)),
            (TensorType::Int8, TensorType::Int8) => {
                let (s_in, zp_in) = self.per_tensor(cx, x, "input")?;
                let (s_out, zp_out) = self.per_tensor(cx, output, "output")?;
                if s_out != 1.0 / 256.0 || zp_out != -128 {
                    return Err(cx.invalid(format!(
                        "int8 output must have scale 1/256 and zero point -128, has {s_out} and {zp_out}"
                    )));
                }
                let lut = Box::new(logistic_lut_i8(s_in, zp_in, s_out, zp_out));
                Ok((Kernel::LogisticI8 { lut }, shape))
            }
            (TensorType::Int16, TensorType::Int16) => {
                use crate::reference::logistic::{checked_log2, logistic_i16_params};
                self.symmetric_i16(cx, x, "input")?;
                self.symmetric_i16(cx, output, "output")?;
                let (s_in, _) = self.per_tensor(cx, x, "input")?;
                let (s_out, _) = self.per_tensor(cx, output, "output")?;
                if checked_log2(s_out) != (-15, true) {
                    return Err(cx.invalid(format!(
                        "int16 output must have scale 2^-15 (1/32768), has {s_out}"
                    )));
                }
                if !(s_in > 0.0 && s_in.is_finite()) {
                    return Err(cx.invalid(format!("int16 input scale {s_in} is not positive")));
                }
                let (multiplier, left_shift) = logistic_i16_params(s_in);
                Ok((
                    Kernel::LogisticI16 {
                        multiplier,
                        left_shift,
                    },
                    shape,
                ))
            }
            _ => Err(self.type_error(cx, &[x], output)),
        }
    }

    /// RELU: operand and option checks, output shape, kernel.
    pub(super) fn relu(
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
            (TensorType::Float32, TensorType::Float32) => Ok((Kernel::ReluF32, shape)),
            (TensorType::Int8, TensorType::Int8) => {
                let (s_in, zp_in) = self.per_tensor(cx, x, "input")?;
                let (s_out, zp_out) = self.per_tensor(cx, output, "output")?;
                // LiteRT: `double real_multiplier = input->scale / output->scale;`,
                // a float division.
                let m = self.multiplier(cx, (s_in / s_out) as f64)?;
                Ok((
                    Kernel::ReluI8(RequantParams {
                        input_zero_point: zp_in,
                        output_zero_point: zp_out,
                        multiplier: m.multiplier,
                        shift: m.shift,
                        act_min: (i8::MIN as i32).max(zp_out + (0.0f32 / s_out).round() as i32),
                        act_max: i8::MAX as i32,
                    }),
                    shape,
                ))
            }
            _ => Err(self.type_error(cx, &[x], output)),
        }
    }
}
