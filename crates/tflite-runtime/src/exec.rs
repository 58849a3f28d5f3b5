//! The prepared form of each operator and its dispatch to the kernels.

use crate::fast::f32_conv::{PackedConv2dF32, PackedTransposeConvF32};
use crate::frame::{
    AddQuantParams, BroadcastLayout, ConvGeometry, ConvQuantParams, MulQuantParams, PoolGeometry,
    RequantParams,
};
use crate::kernels::KernelTable;
use crate::reference;
use std::sync::Arc;

/// A validated operator with every parameter its kernel needs.
#[derive(Debug, Clone)]
pub(crate) enum Kernel {
    ConvF32 {
        geometry: ConvGeometry,
        act: (f32, f32),
    },
    ConvI8 {
        geometry: ConvGeometry,
        quant: ConvQuantParams,
    },
    /// 16x8 CONV_2D (int16 activations, int8 weights, int64 bias).
    ConvI16 {
        geometry: ConvGeometry,
        quant: ConvQuantParams,
    },
    TransposeConvF32 {
        geometry: ConvGeometry,
        act: (f32, f32),
    },
    /// 16x8 TRANSPOSE_CONV (int16 activations, int8 weights, int64 bias).
    TransposeConvI16 {
        geometry: ConvGeometry,
        quant: ConvQuantParams,
    },
    TransposeConvI8 {
        geometry: ConvGeometry,
        quant: ConvQuantParams,
    },
    /// CONV_2D f32 with weights packed for the GEMM kernels (`fast::f32_conv`).
    ConvF32Packed(Arc<PackedConv2dF32>),
    /// TRANSPOSE_CONV f32 with weights packed for the GEMM kernels.
    TransposeConvF32Packed(Arc<PackedTransposeConvF32>),
    MaxPoolF32 {
        geometry: PoolGeometry,
        act: (f32, f32),
    },
    MaxPoolI8 {
        geometry: PoolGeometry,
        act: (i32, i32),
    },
    MaxPoolI16 {
        geometry: PoolGeometry,
        act: (i32, i32),
    },
    AveragePoolF32 {
        geometry: PoolGeometry,
        act: (f32, f32),
    },
    AveragePoolI8 {
        geometry: PoolGeometry,
        act: (i32, i32),
    },
    Concatenation {
        outer: usize,
        slab_bytes: Vec<usize>,
    },
    LogisticF32,
    LogisticI8 {
        lut: Box<[i8; 256]>,
    },
    /// 16x8 LOGISTIC: the input rescaling.
    LogisticI16 {
        multiplier: i32,
        left_shift: i32,
    },
    ReluF32,
    ReluI8(RequantParams),
    QuantizeF32I8 {
        scale: f32,
        zero_point: i32,
    },
    QuantizeF32I16 {
        scale: f32,
        zero_point: i32,
    },
    /// QUANTIZE between int8/int16 and int8/int16 (a new scale and zero point).
    Requantize {
        params: RequantParams,
        input_i16: bool,
        output_i16: bool,
    },
    DequantizeI8 {
        scale: f32,
        zero_point: i32,
    },
    DequantizeI16 {
        scale: f32,
        zero_point: i32,
    },
    ResizeNearest {
        batches: usize,
        in_h: usize,
        in_w: usize,
        pixel_bytes: usize,
        src_y: Vec<usize>,
        src_x: Vec<usize>,
    },
    AddF32 {
        layout: BroadcastLayout,
        act: (f32, f32),
    },
    AddI8 {
        layout: BroadcastLayout,
        quant: AddQuantParams,
    },
    AddI32 {
        layout: BroadcastLayout,
    },
    MulF32 {
        layout: BroadcastLayout,
        act: (f32, f32),
    },
    MulI8 {
        layout: BroadcastLayout,
        quant: MulQuantParams,
    },
    MulI32 {
        layout: BroadcastLayout,
    },
    /// RESHAPE: a byte copy of input 0.
    Copy,
    Shape {
        dims: Vec<i64>,
        int64: bool,
    },
    StridedSlice {
        in_shape: Vec<usize>,
        axes: Vec<(i64, i64, usize)>,
        element_bytes: usize,
    },
    Pack {
        outer: usize,
        inner_bytes: usize,
    },
}

impl Kernel {
    /// Accumulator scratch (i32 elements) this kernel needs.
    pub(crate) fn scratch_i32(&self) -> usize {
        match self {
            Kernel::TransposeConvI8 { geometry: g, .. } => g.batches * g.out_h * g.out_w * g.out_c,
            _ => 0,
        }
    }
}

fn cast<T: bytemuck::Pod>(bytes: Option<&[u8]>) -> &[T] {
    bytemuck::cast_slice(bytes.unwrap_or(&[]))
}

fn cast_opt<T: bytemuck::Pod>(bytes: Option<&[u8]>) -> Option<&[T]> {
    bytes.map(bytemuck::cast_slice)
}

/// Runs one kernel. `inputs` is indexed like the operator's inputs (`None` for an omitted
/// optional input); all slices are aligned and sized as validated in `Interpreter::new`.
pub(crate) fn execute(
    kernel: &Kernel,
    table: &KernelTable,
    threads: usize,
    inputs: &[Option<&[u8]>],
    output: &mut [u8],
    scratch: &mut [i32],
) {
    let input = |i: usize| inputs.get(i).copied().flatten();
    match kernel {
        Kernel::ConvF32 { geometry, act } => (table.conv2d_f32)(
            geometry,
            *act,
            cast(input(0)),
            cast(input(1)),
            cast_opt(input(2)),
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::ConvI8 { geometry, quant } => (table.conv2d_i8)(
            geometry,
            quant,
            cast(input(0)),
            cast(input(1)),
            cast_opt(input(2)),
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::ConvI16 { geometry, quant } => reference::conv::conv2d_i16(
            geometry,
            quant,
            cast(input(0)),
            cast(input(1)),
            cast_opt::<i64>(input(2)),
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::TransposeConvI16 { geometry, quant } => {
            reference::transpose_conv::transpose_conv_i16(
                geometry,
                quant,
                cast(input(2)),
                cast(input(1)),
                cast_opt::<i64>(input(3)),
                bytemuck::cast_slice_mut(output),
            )
        }
        Kernel::TransposeConvF32 { geometry, act } => (table.transpose_conv_f32)(
            geometry,
            *act,
            cast(input(2)),
            cast(input(1)),
            cast_opt(input(3)),
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::TransposeConvI8 { geometry, quant } => (table.transpose_conv_i8)(
            geometry,
            quant,
            cast(input(2)),
            cast(input(1)),
            cast_opt(input(3)),
            scratch,
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::ConvF32Packed(packed) => packed.run(
            cast(input(0)),
            cast_opt(input(2)),
            bytemuck::cast_slice_mut(output),
            threads,
        ),
        Kernel::TransposeConvF32Packed(packed) => packed.run(
            cast(input(2)),
            cast_opt(input(3)),
            bytemuck::cast_slice_mut(output),
            threads,
        ),
        Kernel::MaxPoolF32 { geometry, act } => (table.max_pool_f32)(
            geometry,
            *act,
            cast(input(0)),
            bytemuck::cast_slice_mut(output),
            threads,
        ),
        Kernel::MaxPoolI8 { geometry, act } => reference::pool::max_pool_i8(
            geometry,
            *act,
            cast(input(0)),
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::MaxPoolI16 { geometry, act } => reference::pool::max_pool_i16(
            geometry,
            *act,
            cast(input(0)),
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::AveragePoolF32 { geometry, act } => reference::pool::average_pool_f32(
            geometry,
            *act,
            cast(input(0)),
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::AveragePoolI8 { geometry, act } => reference::pool::average_pool_i8(
            geometry,
            *act,
            cast(input(0)),
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::Concatenation { outer, slab_bytes } => {
            let ins: Vec<&[u8]> = inputs.iter().map(|x| x.unwrap_or(&[])).collect();
            let row: usize = slab_bytes.iter().sum();
            if threads > 1 && *outer > 1 && row > 0 {
                // Byte copies, so any split gives the same output: the outer rows (the
                // U-Net's pixels) are shared between the worker threads.
                crate::fast::workers::for_row_parts(output, row, threads, |rows, part| {
                    let sub: Vec<&[u8]> = ins
                        .iter()
                        .zip(slab_bytes)
                        .map(|(x, &slab)| &x[rows.start * slab..rows.end * slab])
                        .collect();
                    reference::concatenation::concatenation(rows.len(), slab_bytes, &sub, part);
                });
            } else {
                reference::concatenation::concatenation(*outer, slab_bytes, &ins, output);
            }
        }
        Kernel::LogisticF32 => {
            reference::logistic::logistic_f32(cast(input(0)), bytemuck::cast_slice_mut(output))
        }
        Kernel::LogisticI8 { lut } => {
            reference::logistic::logistic_i8(lut, cast(input(0)), bytemuck::cast_slice_mut(output))
        }
        Kernel::LogisticI16 {
            multiplier,
            left_shift,
        } => reference::logistic::logistic_i16(
            *multiplier,
            *left_shift,
            cast(input(0)),
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::ReluF32 => {
            reference::relu::relu_f32(cast(input(0)), bytemuck::cast_slice_mut(output))
        }
        Kernel::ReluI8(p) => {
            reference::relu::relu_i8(p, cast(input(0)), bytemuck::cast_slice_mut(output))
        }
        Kernel::QuantizeF32I8 { scale, zero_point } => reference::quantize::quantize_f32_i8(
            *scale,
            *zero_point,
            cast(input(0)),
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::QuantizeF32I16 { scale, zero_point } => reference::quantize::quantize_f32_i16(
            *scale,
            *zero_point,
            cast(input(0)),
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::Requantize {
            params,
            input_i16,
            output_i16,
        } => {
            use reference::quantize::requantize;
            let out = &mut *output;
            match (input_i16, output_i16) {
                (true, true) => {
                    requantize::<i16, i16>(params, cast(input(0)), bytemuck::cast_slice_mut(out))
                }
                (true, false) => {
                    requantize::<i16, i8>(params, cast(input(0)), bytemuck::cast_slice_mut(out))
                }
                (false, true) => {
                    requantize::<i8, i16>(params, cast(input(0)), bytemuck::cast_slice_mut(out))
                }
                (false, false) => {
                    requantize::<i8, i8>(params, cast(input(0)), bytemuck::cast_slice_mut(out))
                }
            }
        }
        Kernel::DequantizeI16 { scale, zero_point } => reference::dequantize::dequantize_i16_f32(
            *scale,
            *zero_point,
            cast(input(0)),
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::DequantizeI8 { scale, zero_point } => reference::dequantize::dequantize_i8_f32(
            *scale,
            *zero_point,
            cast(input(0)),
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::ResizeNearest {
            batches,
            in_h,
            in_w,
            pixel_bytes,
            src_y,
            src_x,
        } => reference::resize_nearest::resize_nearest(
            *batches,
            *in_h,
            *in_w,
            *pixel_bytes,
            src_y,
            src_x,
            input(0).unwrap_or(&[]),
            output,
        ),
        Kernel::AddF32 { layout, act } => reference::add::add_f32(
            layout,
            *act,
            cast(input(0)),
            cast(input(1)),
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::AddI8 { layout, quant } => reference::add::add_i8(
            layout,
            quant,
            cast(input(0)),
            cast(input(1)),
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::AddI32 { layout } => reference::add::add_i32(
            layout,
            cast(input(0)),
            cast(input(1)),
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::MulF32 { layout, act } => reference::mul::mul_f32(
            layout,
            *act,
            cast(input(0)),
            cast(input(1)),
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::MulI8 { layout, quant } => reference::mul::mul_i8(
            layout,
            quant,
            cast(input(0)),
            cast(input(1)),
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::MulI32 { layout } => reference::mul::mul_i32(
            layout,
            cast(input(0)),
            cast(input(1)),
            bytemuck::cast_slice_mut(output),
        ),
        Kernel::Copy => output.copy_from_slice(input(0).unwrap_or(&[])),
        Kernel::Shape { dims, int64 } => {
            if *int64 {
                bytemuck::cast_slice_mut::<u8, i64>(output).copy_from_slice(dims);
            } else {
                for (o, &d) in bytemuck::cast_slice_mut::<u8, i32>(output)
                    .iter_mut()
                    .zip(dims)
                {
                    *o = d as i32;
                }
            }
        }
        Kernel::StridedSlice {
            in_shape,
            axes,
            element_bytes,
        } => reference::strided_slice::strided_slice(
            in_shape,
            axes,
            *element_bytes,
            input(0).unwrap_or(&[]),
            output,
        ),
        Kernel::Pack { outer, inner_bytes } => {
            let ins: Vec<&[u8]> = inputs.iter().map(|x| x.unwrap_or(&[])).collect();
            reference::pack::pack(*outer, *inner_bytes, &ins, output);
        }
    }
}
