//! Preparing ADD and MUL with broadcasting ([`crate::reference::add`], [`crate::reference::mul`]).

#[allow(unused_imports)]
use super::*;

impl Builder<'_> {
    /// ADD and MUL: operand and option checks, output shape, kernel.
    pub(super) fn add_mul(
        &self,
        cx: &OpCx,
        op: &Operator,
        ins: &OpInputs,
        output: usize,
    ) -> Result<(Kernel, Vec<usize>), RuntimeError> {
        ins.count(2, 2)?;
        let activation = match &op.options {
            BuiltinOptions::Add(o) | BuiltinOptions::Mul(o) => o.fused_activation,
            BuiltinOptions::None => Activation::None,
            _ => return Err(cx.invalid("options are not AddOptions/MulOptions")),
        };
        let (a, b) = (ins.req(0)?, ins.req(1)?);
        let layout =
            BroadcastLayout::new(&self.info(a).shape, &self.info(b).shape).ok_or_else(|| {
                cx.invalid(format!(
                    "shapes {:?} and {:?} do not broadcast (or their element counts overflow)",
                    self.info(a).shape,
                    self.info(b).shape
                ))
            })?;
        let shape = layout.out_shape.clone();
        let is_add = op.op == BuiltinOp::ADD;
        let types = self.types(&[a, b, output]);
        let kernel = match types.as_slice() {
            [
                TensorType::Float32,
                TensorType::Float32,
                TensorType::Float32,
            ] => {
                let act = self.act_f32(cx, activation)?;
                if is_add {
                    Kernel::AddF32 { layout, act }
                } else {
                    Kernel::MulF32 { layout, act }
                }
            }
            [TensorType::Int32, TensorType::Int32, TensorType::Int32] => {
                if activation != Activation::None {
                    return Err(cx.unsupported("int32 with a fused activation"));
                }
                if is_add {
                    Kernel::AddI32 { layout }
                } else {
                    Kernel::MulI32 { layout }
                }
            }
            [TensorType::Int8, TensorType::Int8, TensorType::Int8] => {
                let (s1, z1) = self.per_tensor(cx, a, "input 0")?;
                let (s2, z2) = self.per_tensor(cx, b, "input 1")?;
                let (so, zo) = self.per_tensor(cx, output, "output")?;
                let (act_min, act_max) = self.act_int::<i8>(cx, output, activation)?;
                if is_add {
                    let left_shift = 20;
                    let twice_max = 2.0 * s1.max(s2) as f64;
                    let m1 = quantize_multiplier(s1 as f64 / twice_max);
                    let m2 = quantize_multiplier(s2 as f64 / twice_max);
                    let mo =
                        quantize_multiplier(twice_max / ((1i64 << left_shift) as f64 * so as f64));
                    if m1.shift > 0 || m2.shift > 0 || mo.shift > 0 {
                        return Err(cx.invalid(format!(
                            "output scale {so} is too small for input scales {s1} and {s2} (the rescale must be below 1)"
                        )));
                    }
                    Kernel::AddI8 {
                        layout,
                        quant: AddQuantParams {
                            input1_offset: -z1,
                            input2_offset: -z2,
                            output_offset: zo,
                            left_shift,
                            input1_multiplier: m1.multiplier,
                            input1_shift: m1.shift,
                            input2_multiplier: m2.multiplier,
                            input2_shift: m2.shift,
                            output_multiplier: mo.multiplier,
                            output_shift: mo.shift,
                            act_min,
                            act_max,
                        },
                    }
                } else {
                    // LiteRT multiplies and divides the float scales in float.
                    let m = self.multiplier(cx, (s1 * s2 / so) as f64)?;
                    Kernel::MulI8 {
                        layout,
                        quant: MulQuantParams {
                            input1_offset: -z1,
                            input2_offset: -z2,
                            output_offset: zo,
                            output_multiplier: m.multiplier,
                            output_shift: m.shift,
                            act_min,
                            act_max,
                        },
                    }
                }
            }
            _ => return Err(self.type_error(cx, &[a, b], output)),
        };
        Ok((kernel, shape))
    }
}
