//! Shared helpers of the runtime's integration tests: random single-op models covering every
//! operator, padding, stride and fused activation, and the LiteRT oracle plumbing.

#![allow(dead_code)]

use tflite_runtime::npy::{NpyArray, NpyData};
use tflite_runtime::padding::out_size;
use tflite_runtime::synth::{Rng, UNetSpec, unet};
use tflite_writer::*;

/// One model with its inputs.
pub struct Case {
    pub name: String,
    pub model: Model,
    pub inputs: Vec<NpyArray>,
}

pub const ACTIVATIONS: [Activation; 4] = [
    Activation::None,
    Activation::Relu,
    Activation::Relu6,
    Activation::ReluN1To1,
];

fn dims(shape: &[usize]) -> Vec<i32> {
    shape.iter().map(|&d| d as i32).collect()
}

/// Random int8 activation quantisation.
fn act_quant(rng: &mut Rng) -> (f32, i64) {
    (rng.range_f32(0.01, 0.1), rng.range_i64(-30, 30))
}

fn input_array(rng: &mut Rng, shape: &[usize], int8: bool) -> NpyArray {
    let n = shape.iter().product();
    NpyArray {
        shape: shape.to_vec(),
        data: if int8 {
            NpyData::I8(rng.i8s(n, -128, 127))
        } else {
            NpyData::F32(rng.f32s(n, -1.5, 1.5))
        },
    }
}

fn dtype(int8: bool) -> TensorType {
    if int8 {
        TensorType::Int8
    } else {
        TensorType::Float32
    }
}

fn quant(int8: bool, q: (f32, i64)) -> Option<Quantization> {
    int8.then(|| Quantization::per_tensor(q.0, q.1))
}

/// Appends a square MAX_POOL_2D (`max`) or AVERAGE_POOL_2D from `x` to `y`.
fn add_pool(
    b: &mut ModelBuilder,
    max: bool,
    (x, y): (i32, i32),
    filter: usize,
    stride: usize,
    padding: Padding,
    act: Activation,
) {
    b.add_op(
        if max {
            BuiltinOp::MAX_POOL_2D
        } else {
            BuiltinOp::AVERAGE_POOL_2D
        },
        BuiltinOptions::Pool2D(Pool2DOptions {
            padding,
            stride_w: stride as i32,
            stride_h: stride as i32,
            filter_width: filter as i32,
            filter_height: filter as i32,
            fused_activation: act,
        }),
        &[x],
        &[y],
    );
}

/// Filter + bias for a conv-like op; returns (filter, bias, output quant).
#[allow(clippy::too_many_arguments)]
fn conv_weights(
    b: &mut ModelBuilder,
    rng: &mut Rng,
    int8: bool,
    out_c: usize,
    k_h: usize,
    k_w: usize,
    in_c: usize,
    in_q: (f32, i64),
    with_bias: bool,
) -> (i32, i32, (f32, i64)) {
    let n = out_c * k_h * k_w * in_c;
    let shape = [out_c as i32, k_h as i32, k_w as i32, in_c as i32];
    if int8 {
        let scales: Vec<f32> = (0..out_c).map(|_| rng.range_f32(0.002, 0.02)).collect();
        let w = b.add_const_i8(
            "filter",
            &shape,
            &rng.i8s(n, -127, 127),
            Some(Quantization::per_axis(scales.clone(), 0)),
        );
        let bias = if with_bias {
            let bias_scales: Vec<f32> = scales.iter().map(|s| s * in_q.0).collect();
            let values: Vec<i32> = (0..out_c)
                .map(|_| rng.range_i64(-6000, 6000) as i32)
                .collect();
            b.add_const_i32(
                "bias",
                &[out_c as i32],
                &values,
                Some(Quantization::per_axis(bias_scales, 0)),
            )
        } else {
            -1
        };
        let mean_scale = scales.iter().sum::<f32>() / out_c as f32;
        let taps = (k_h * k_w * in_c) as f32;
        let s_out =
            in_q.0 * mean_scale * taps.sqrt() * 74.0 * 73.0 / 40.0 * rng.range_f32(0.6, 1.5);
        (w, bias, (s_out, rng.range_i64(-20, 20)))
    } else {
        let w = b.add_const_f32("filter", &shape, &rng.f32s(n, -1.0, 1.0));
        let bias = if with_bias {
            b.add_const_f32("bias", &[out_c as i32], &rng.f32s(out_c, -1.0, 1.0))
        } else {
            -1
        };
        (w, bias, (1.0, 0))
    }
}

#[allow(clippy::too_many_arguments)]
pub fn conv_case(
    rng: &mut Rng,
    int8: bool,
    hw: (usize, usize),
    in_c: usize,
    out_c: usize,
    k: (usize, usize),
    stride: (usize, usize),
    dilation: (usize, usize),
    padding: Padding,
    act: Activation,
) -> Case {
    let mut b = ModelBuilder::new();
    let in_q = act_quant(rng);
    let in_shape = [1, hw.0, hw.1, in_c];
    let x = b.add_input("x", &dims(&in_shape), dtype(int8), quant(int8, in_q));
    let (w, bias, out_q) = conv_weights(&mut b, rng, int8, out_c, k.0, k.1, in_c, in_q, true);
    let oh = out_size(
        padding,
        hw.0 as i64,
        k.0 as i64,
        stride.0 as i64,
        dilation.0 as i64,
    ) as usize;
    let ow = out_size(
        padding,
        hw.1 as i64,
        k.1 as i64,
        stride.1 as i64,
        dilation.1 as i64,
    ) as usize;
    let y = b.add_activation(
        "y",
        &dims(&[1, oh, ow, out_c]),
        dtype(int8),
        quant(int8, out_q),
    );
    b.add_op(
        BuiltinOp::CONV_2D,
        BuiltinOptions::Conv2D(Conv2DOptions {
            padding,
            stride_w: stride.1 as i32,
            stride_h: stride.0 as i32,
            fused_activation: act,
            dilation_w: dilation.1 as i32,
            dilation_h: dilation.0 as i32,
        }),
        &[x, w, bias],
        &[y],
    );
    b.set_outputs(&[y]);
    Case {
        name: format!(
            "conv_{}_{}x{}_k{}x{}_s{}x{}_d{}x{}_{:?}_{:?}",
            if int8 { "i8" } else { "f32" },
            hw.0,
            hw.1,
            k.0,
            k.1,
            stride.0,
            stride.1,
            dilation.0,
            dilation.1,
            padding,
            act
        ),
        model: b.finish(),
        inputs: vec![input_array(rng, &in_shape, int8)],
    }
}

#[allow(clippy::too_many_arguments)]
pub fn transpose_conv_case(
    rng: &mut Rng,
    int8: bool,
    hw: (usize, usize),
    in_c: usize,
    out_c: usize,
    k: usize,
    stride: usize,
    padding: Padding,
    act: Activation,
    with_bias: bool,
    tf_shape_ops: bool,
) -> Case {
    let mut b = ModelBuilder::new();
    let in_q = act_quant(rng);
    let in_shape = [1, hw.0, hw.1, in_c];
    let x = b.add_input("x", &dims(&in_shape), dtype(int8), quant(int8, in_q));
    let (w, bias, out_q) = conv_weights(&mut b, rng, int8, out_c, k, k, in_c, in_q, with_bias);
    let big = |n: usize| match padding {
        Padding::Same => n * stride,
        Padding::Valid => (n - 1) * stride + k,
    };
    let out_shape = [1, big(hw.0), big(hw.1), out_c];
    let shape_t = if tf_shape_ops {
        // What TensorFlow's converter emits: shape(x)[0] packed with constant H, W, C.
        let s = b.add_activation("shape", &[4], TensorType::Int32, None);
        b.add_op(
            BuiltinOp::SHAPE,
            BuiltinOptions::Untyped { options_type: 55 },
            &[x],
            &[s],
        );
        let begin = b.add_const_i32("begin", &[1], &[0], None);
        let end = b.add_const_i32("end", &[1], &[1], None);
        let strides = b.add_const_i32("strides", &[1], &[1], None);
        let batch = b.add_activation("batch", &[], TensorType::Int32, None);
        b.add_op(
            BuiltinOp::STRIDED_SLICE,
            BuiltinOptions::StridedSlice(StridedSliceOptions {
                shrink_axis_mask: 1,
                ..Default::default()
            }),
            &[s, begin, end, strides],
            &[batch],
        );
        let h = b.add_const_i32("h", &[], &[out_shape[1] as i32], None);
        let w_ = b.add_const_i32("w", &[], &[out_shape[2] as i32], None);
        let c = b.add_const_i32("c", &[], &[out_c as i32], None);
        let packed = b.add_activation("output_shape", &[4], TensorType::Int32, None);
        b.add_op(
            BuiltinOp::PACK,
            BuiltinOptions::Pack(PackOptions {
                values_count: 4,
                axis: 0,
            }),
            &[batch, h, w_, c],
            &[packed],
        );
        packed
    } else {
        b.add_const_i32("output_shape", &[4], &dims(&out_shape), None)
    };
    let y = b.add_activation("y", &dims(&out_shape), dtype(int8), quant(int8, out_q));
    b.add_op(
        BuiltinOp::TRANSPOSE_CONV,
        BuiltinOptions::TransposeConv(TransposeConvOptions {
            padding,
            stride_w: stride as i32,
            stride_h: stride as i32,
            fused_activation: act,
        }),
        &[shape_t, w, x, bias],
        &[y],
    );
    b.set_outputs(&[y]);
    Case {
        name: format!(
            "tconv_{}_{}x{}_k{k}_s{stride}_{padding:?}_{act:?}_bias{with_bias}{}",
            if int8 { "i8" } else { "f32" },
            hw.0,
            hw.1,
            if tf_shape_ops { "_tfshape" } else { "" }
        ),
        model: b.finish(),
        inputs: vec![input_array(rng, &in_shape, int8)],
    }
}

#[allow(clippy::too_many_arguments)]
pub fn pool_case(
    rng: &mut Rng,
    int8: bool,
    max: bool,
    hw: (usize, usize),
    filter: usize,
    stride: usize,
    padding: Padding,
    act: Activation,
) -> Case {
    let mut b = ModelBuilder::new();
    let q = act_quant(rng);
    let in_shape = [1, hw.0, hw.1, 3];
    let x = b.add_input("x", &dims(&in_shape), dtype(int8), quant(int8, q));
    let oh = out_size(padding, hw.0 as i64, filter as i64, stride as i64, 1) as usize;
    let ow = out_size(padding, hw.1 as i64, filter as i64, stride as i64, 1) as usize;
    let y = b.add_activation("y", &dims(&[1, oh, ow, 3]), dtype(int8), quant(int8, q));
    add_pool(&mut b, max, (x, y), filter, stride, padding, act);
    b.set_outputs(&[y]);
    Case {
        name: format!(
            "{}pool_{}_{}x{}_f{filter}_s{stride}_{padding:?}_{act:?}",
            if max { "max" } else { "avg" },
            if int8 { "i8" } else { "f32" },
            hw.0,
            hw.1
        ),
        model: b.finish(),
        inputs: vec![input_array(rng, &in_shape, int8)],
    }
}

pub fn concat_case(rng: &mut Rng, int8: bool, axis: i32, n_inputs: usize) -> Case {
    let mut b = ModelBuilder::new();
    let q = act_quant(rng);
    let rank_axis = if axis < 0 { axis + 4 } else { axis } as usize;
    let mut inputs = Vec::new();
    let mut arrays = Vec::new();
    let mut out_shape = vec![2, 3, 5, 4];
    out_shape[rank_axis] = 0;
    for i in 0..n_inputs {
        let mut shape = vec![2, 3, 5, 4];
        shape[rank_axis] = i + 1;
        out_shape[rank_axis] += i + 1;
        inputs.push(b.add_input(&format!("x{i}"), &dims(&shape), dtype(int8), quant(int8, q)));
        arrays.push(input_array(rng, &shape, int8));
    }
    let y = b.add_activation("y", &dims(&out_shape), dtype(int8), quant(int8, q));
    b.add_op(
        BuiltinOp::CONCATENATION,
        BuiltinOptions::Concatenation(ConcatenationOptions {
            axis,
            fused_activation: Activation::None,
        }),
        &inputs,
        &[y],
    );
    b.set_outputs(&[y]);
    Case {
        name: format!(
            "concat_{}_axis{axis}_n{n_inputs}",
            if int8 { "i8" } else { "f32" }
        ),
        model: b.finish(),
        inputs: arrays,
    }
}

/// A unary op from `x` to `y` with the given quantisations.
fn unary(
    name: String,
    op: BuiltinOp,
    options: BuiltinOptions,
    x: (TensorType, Option<Quantization>),
    y: (TensorType, Option<Quantization>),
    input: NpyArray,
) -> Case {
    let mut b = ModelBuilder::new();
    let shape = dims(&input.shape);
    let xt = b.add_input("x", &shape, x.0, x.1);
    let yt = b.add_activation("y", &shape, y.0, y.1);
    b.add_op(op, options, &[xt], &[yt]);
    b.set_outputs(&[yt]);
    Case {
        name,
        model: b.finish(),
        inputs: vec![input],
    }
}

/// Every int8 value once per row, `rows` rows.
fn all_int8_values(rows: usize) -> NpyArray {
    NpyArray {
        shape: vec![rows, 256],
        data: NpyData::I8((0..rows * 256).map(|i| (i % 256) as u8 as i8).collect()),
    }
}

pub fn logistic_cases(rng: &mut Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    for (i, (scale, zp)) in [
        (0.02f32, 0i64),
        (0.0625, -128),
        (0.1, 17),
        (0.0371, -5),
        (0.25, 60),
    ]
    .into_iter()
    .enumerate()
    {
        cases.push(unary(
            format!("logistic_i8_sweep{i}"),
            BuiltinOp::LOGISTIC,
            BuiltinOptions::None,
            (TensorType::Int8, Some(Quantization::per_tensor(scale, zp))),
            (
                TensorType::Int8,
                Some(Quantization::per_tensor(1.0 / 256.0, -128)),
            ),
            all_int8_values(1),
        ));
    }
    let x = NpyArray {
        shape: vec![1, 40, 25],
        data: NpyData::F32(rng.f32s(1000, -20.0, 20.0)),
    };
    cases.push(unary(
        "logistic_f32".into(),
        BuiltinOp::LOGISTIC,
        BuiltinOptions::None,
        (TensorType::Float32, None),
        (TensorType::Float32, None),
        x,
    ));
    cases
}

pub fn relu_quantize_dequantize_cases(rng: &mut Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    for i in 0..3 {
        let (qi, qo) = (act_quant(rng), act_quant(rng));
        cases.push(unary(
            format!("relu_i8_{i}"),
            BuiltinOp::RELU,
            BuiltinOptions::None,
            (TensorType::Int8, Some(Quantization::per_tensor(qi.0, qi.1))),
            (TensorType::Int8, Some(Quantization::per_tensor(qo.0, qo.1))),
            all_int8_values(2),
        ));
        cases.push(unary(
            format!("requantize_i8_{i}"),
            BuiltinOp::QUANTIZE,
            BuiltinOptions::Untyped { options_type: 89 },
            (TensorType::Int8, Some(Quantization::per_tensor(qi.0, qi.1))),
            (TensorType::Int8, Some(Quantization::per_tensor(qo.0, qo.1))),
            all_int8_values(2),
        ));
        cases.push(unary(
            format!("dequantize_i8_{i}"),
            BuiltinOp::DEQUANTIZE,
            BuiltinOptions::Untyped { options_type: 38 },
            (TensorType::Int8, Some(Quantization::per_tensor(qi.0, qi.1))),
            (TensorType::Float32, None),
            all_int8_values(1),
        ));
        // f32 → int8 with values on and around the rounding ties of the output scale.
        let mut values = Vec::new();
        for _ in 0..600 {
            let k = rng.range_i64(-140, 140) as f32;
            values.push((k + 0.5) * qo.0);
            values.push(rng.range_f32(-12.0, 12.0));
        }
        cases.push(unary(
            format!("quantize_f32_i8_{i}"),
            BuiltinOp::QUANTIZE,
            BuiltinOptions::Untyped { options_type: 89 },
            (TensorType::Float32, None),
            (TensorType::Int8, Some(Quantization::per_tensor(qo.0, qo.1))),
            NpyArray {
                shape: vec![1, values.len()],
                data: NpyData::F32(values),
            },
        ));
    }
    cases.push(unary(
        "relu_f32".into(),
        BuiltinOp::RELU,
        BuiltinOptions::None,
        (TensorType::Float32, None),
        (TensorType::Float32, None),
        input_array(rng, &[1, 7, 9, 2], false),
    ));
    cases
}

pub fn resize_case(
    rng: &mut Rng,
    int8: bool,
    from: (usize, usize),
    to: (usize, usize),
    align_corners: bool,
    half_pixel_centers: bool,
) -> Case {
    let mut b = ModelBuilder::new();
    let q = act_quant(rng);
    let in_shape = [1, from.0, from.1, 2];
    let x = b.add_input("x", &dims(&in_shape), dtype(int8), quant(int8, q));
    let size = b.add_const_i32("size", &[2], &[to.0 as i32, to.1 as i32], None);
    let y = b.add_activation("y", &dims(&[1, to.0, to.1, 2]), dtype(int8), quant(int8, q));
    b.add_op(
        BuiltinOp::RESIZE_NEAREST_NEIGHBOR,
        BuiltinOptions::ResizeNearestNeighbor(ResizeOptions {
            align_corners,
            half_pixel_centers,
        }),
        &[x, size],
        &[y],
    );
    b.set_outputs(&[y]);
    Case {
        name: format!(
            "resize_{}_{}x{}_to_{}x{}_ac{align_corners}_hp{half_pixel_centers}",
            if int8 { "i8" } else { "f32" },
            from.0,
            from.1,
            to.0,
            to.1
        ),
        model: b.finish(),
        inputs: vec![input_array(rng, &in_shape, int8)],
    }
}

pub fn binary_case(
    rng: &mut Rng,
    int8: bool,
    add: bool,
    shape1: &[usize],
    shape2: &[usize],
    act: Activation,
    second_const: bool,
) -> Case {
    let mut b = ModelBuilder::new();
    let (q1, q2) = (act_quant(rng), act_quant(rng));
    let q_out = if add {
        (
            (q1.0 + q2.0) * rng.range_f32(0.7, 1.6),
            rng.range_i64(-20, 20),
        )
    } else {
        (
            q1.0 * q2.0 * 74.0 * 74.0 / 40.0 * rng.range_f32(0.6, 1.5),
            rng.range_i64(-20, 20),
        )
    };
    let x1 = b.add_input("x1", &dims(shape1), dtype(int8), quant(int8, q1));
    let second = input_array(rng, shape2, int8);
    let mut arrays = vec![input_array(rng, shape1, int8)];
    let x2 = if second_const {
        let bytes = match &second.data {
            NpyData::I8(v) => v.iter().map(|&x| x as u8).collect(),
            NpyData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            _ => unreachable!(),
        };
        b.add_const("x2", &dims(shape2), dtype(int8), bytes, quant(int8, q2))
    } else {
        arrays.push(second);
        b.add_input("x2", &dims(shape2), dtype(int8), quant(int8, q2))
    };
    let rank = shape1.len().max(shape2.len());
    let ext = |s: &[usize]| {
        let mut v = vec![1; rank - s.len()];
        v.extend_from_slice(s);
        v
    };
    let out_shape: Vec<usize> = ext(shape1)
        .iter()
        .zip(ext(shape2))
        .map(|(&a, b)| a.max(b))
        .collect();
    let y = b.add_activation("y", &dims(&out_shape), dtype(int8), quant(int8, q_out));
    let options = ElementwiseOptions {
        fused_activation: act,
    };
    b.add_op(
        if add { BuiltinOp::ADD } else { BuiltinOp::MUL },
        if add {
            BuiltinOptions::Add(options)
        } else {
            BuiltinOptions::Mul(options)
        },
        &[x1, x2],
        &[y],
    );
    b.set_outputs(&[y]);
    Case {
        name: format!(
            "{}_{}_{shape1:?}_{shape2:?}_{act:?}{}",
            if add { "add" } else { "mul" },
            if int8 { "i8" } else { "f32" },
            if second_const { "_const" } else { "" }
        ),
        model: b.finish(),
        inputs: arrays,
    }
}

pub fn reshape_case(rng: &mut Rng, int8: bool, with_shape_tensor: bool) -> Case {
    let mut b = ModelBuilder::new();
    let q = act_quant(rng);
    let in_shape = [1, 4, 6, 3];
    let out_shape = [4, 18];
    let x = b.add_input("x", &dims(&in_shape), dtype(int8), quant(int8, q));
    let y = b.add_activation("y", &dims(&out_shape), dtype(int8), quant(int8, q));
    if with_shape_tensor {
        let s = b.add_const_i32("new_shape", &[2], &[4, -1], None);
        b.add_op(
            BuiltinOp::RESHAPE,
            BuiltinOptions::Reshape(ReshapeOptions { new_shape: vec![] }),
            &[x, s],
            &[y],
        );
    } else {
        b.add_op(
            BuiltinOp::RESHAPE,
            BuiltinOptions::Reshape(ReshapeOptions {
                new_shape: vec![4, 18],
            }),
            &[x],
            &[y],
        );
    }
    b.set_outputs(&[y]);
    Case {
        name: format!(
            "reshape_{}_shape_tensor{with_shape_tensor}",
            if int8 { "i8" } else { "f32" }
        ),
        model: b.finish(),
        inputs: vec![input_array(rng, &in_shape, int8)],
    }
}

pub fn unet_case(rng: &mut Rng, int8: bool) -> Case {
    let spec = UNetSpec {
        fms: 2,
        size: 32,
        in_channels: 1,
        int8,
        seed: rng.next_u64(),
    };
    let model = unet(spec);
    let inputs = vec![if int8 {
        input_array(rng, &[1, 32, 32, 1], true)
    } else {
        NpyArray {
            shape: vec![1, 32, 32, 1],
            data: NpyData::F32(rng.f32s(1024, -2.0, 2.0)),
        }
    }];
    Case {
        name: format!("unet_fms2_32_{}", if int8 { "i8" } else { "f32" }),
        model,
        inputs,
    }
}

/// Every case of the bit-exactness suite.
pub fn all_cases() -> Vec<Case> {
    let mut rng = Rng::new(0x5EED_2026);
    let mut cases = Vec::new();
    for int8 in [true, false] {
        // CONV_2D: odd and even sizes × stride 1/2 × SAME/VALID × every activation, kernels
        // and dilations cycling.
        let mut i = 0;
        for hw in [(7, 9), (8, 8)] {
            for stride in [1, 2] {
                for padding in [Padding::Same, Padding::Valid] {
                    for act in ACTIVATIONS {
                        let k = [(3, 3), (1, 1), (2, 3), (3, 2)][i % 4];
                        let dilation = if i % 3 == 2 { (2, 2) } else { (1, 1) };
                        let stride_hw = if i % 5 == 4 {
                            (stride, 1)
                        } else {
                            (stride, stride)
                        };
                        cases.push(conv_case(
                            &mut rng, int8, hw, 3, 5, k, stride_hw, dilation, padding, act,
                        ));
                        i += 1;
                    }
                }
            }
        }
        // TRANSPOSE_CONV.
        let mut i = 0;
        for hw in [(5, 6), (4, 4)] {
            for stride in [1, 2] {
                for padding in [Padding::Same, Padding::Valid] {
                    for act in [Activation::None, Activation::Relu] {
                        let k = [2, 3][i % 2];
                        cases.push(transpose_conv_case(
                            &mut rng,
                            int8,
                            hw,
                            3,
                            4,
                            k,
                            stride,
                            padding,
                            act,
                            i % 3 != 1,
                            false,
                        ));
                        i += 1;
                    }
                }
            }
        }
        for act in [Activation::Relu6, Activation::ReluN1To1] {
            cases.push(transpose_conv_case(
                &mut rng,
                int8,
                (3, 5),
                2,
                3,
                3,
                2,
                Padding::Same,
                act,
                true,
                false,
            ));
        }
        // The TensorFlow converter's SHAPE → STRIDED_SLICE → PACK output_shape.
        cases.push(transpose_conv_case(
            &mut rng,
            int8,
            (4, 4),
            3,
            2,
            2,
            2,
            Padding::Same,
            Activation::None,
            true,
            true,
        ));
        // Pools.
        for max in [true, false] {
            let mut i = 0;
            for hw in [(7, 9), (8, 8)] {
                for stride in [1, 2] {
                    for padding in [Padding::Same, Padding::Valid] {
                        let act = ACTIVATIONS[i % 4];
                        let filter = [2, 3][i % 2];
                        cases.push(pool_case(
                            &mut rng, int8, max, hw, filter, stride, padding, act,
                        ));
                        i += 1;
                    }
                }
            }
        }
        for (axis, n) in [(3, 2), (1, 3), (-1, 3), (0, 2)] {
            cases.push(concat_case(&mut rng, int8, axis, n));
        }
        for (from, to) in [((5, 7), (10, 14)), ((8, 8), (16, 16)), ((6, 5), (4, 9))] {
            for (ac, hp) in [(false, false), (true, false), (false, true)] {
                cases.push(resize_case(&mut rng, int8, from, to, ac, hp));
            }
        }
        for add in [true, false] {
            for (i, act) in ACTIVATIONS.into_iter().enumerate() {
                let (s1, s2): (&[usize], &[usize]) = match i {
                    0 => (&[1, 5, 6, 3], &[1, 5, 6, 3]),
                    1 => (&[1, 5, 6, 3], &[1, 1, 1, 3]),
                    2 => (&[1, 5, 6, 3], &[3]),
                    _ => (&[1, 1, 6, 1], &[1, 5, 1, 3]),
                };
                cases.push(binary_case(&mut rng, int8, add, s1, s2, act, i == 1));
            }
        }
        for with_shape in [true, false] {
            cases.push(reshape_case(&mut rng, int8, with_shape));
        }
        cases.push(unet_case(&mut rng, int8));
    }
    cases.extend(logistic_cases(&mut rng));
    cases.extend(relu_quantize_dequantize_cases(&mut rng));
    cases.extend(int16_cases(&mut rng));
    cases
}

/// Random int16 values over the whole range, extremes included.
fn i16_array(rng: &mut Rng, shape: &[usize]) -> NpyArray {
    let n: usize = shape.iter().product();
    let mut values: Vec<i16> = (0..n)
        .map(|_| rng.range_i64(i16::MIN as i64, i16::MAX as i64) as i16)
        .collect();
    for (slot, v) in values.iter_mut().zip([i16::MIN, i16::MAX, 0, -1, 1]) {
        *slot = v;
    }
    NpyArray {
        shape: shape.to_vec(),
        data: NpyData::I16(values),
    }
}

/// A 16x8 convolution case: (transposed, input H×W, kernel, stride, padding, activation).
type Conv16x8 = (bool, (usize, usize), usize, usize, Padding, Activation);

/// The int16 operators of 16x8 models (symmetric int16 activations, zero point 0): max pool,
/// concatenation, nearest resize, and QUANTIZE/DEQUANTIZE between f32, int8 and int16.
pub fn int16_cases(rng: &mut Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    let q16 = |rng: &mut Rng| Quantization::per_tensor(rng.range_f32(1e-4, 2e-3), 0);
    // MAX_POOL_2D.
    let pools: [((usize, usize), usize, usize, Padding); 3] = [
        ((7, 9), 2, 2, Padding::Same),
        ((8, 8), 3, 1, Padding::Valid),
        ((5, 6), 3, 2, Padding::Same),
    ];
    for (k, (hw, filter, stride, padding)) in pools.into_iter().enumerate() {
        let act = ACTIVATIONS[k % 4];
        let q = q16(rng);
        let mut b = ModelBuilder::new();
        let in_shape = [1, hw.0, hw.1, 3];
        let x = b.add_input("x", &dims(&in_shape), TensorType::Int16, Some(q.clone()));
        let oh = out_size(padding, hw.0 as i64, filter as i64, stride as i64, 1) as usize;
        let ow = out_size(padding, hw.1 as i64, filter as i64, stride as i64, 1) as usize;
        let y = b.add_activation("y", &dims(&[1, oh, ow, 3]), TensorType::Int16, Some(q));
        add_pool(&mut b, true, (x, y), filter, stride, padding, act);
        b.set_outputs(&[y]);
        cases.push(Case {
            name: format!(
                "maxpool_i16_{}x{}_f{filter}_s{stride}_{padding:?}_{act:?}",
                hw.0, hw.1
            ),
            model: b.finish(),
            inputs: vec![i16_array(rng, &in_shape)],
        });
    }
    // CONCATENATION along channels and along height (same parameters, as LiteRT requires).
    for axis in [3, 1] {
        let q = q16(rng);
        let mut b = ModelBuilder::new();
        let shapes = [[1, 3, 4, 2], [1, 3, 4, 5]];
        let shapes = if axis == 3 {
            shapes
        } else {
            [[1, 3, 4, 2], [1, 5, 4, 2]]
        };
        let xs: Vec<i32> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                b.add_input(
                    &format!("x{i}"),
                    &dims(s),
                    TensorType::Int16,
                    Some(q.clone()),
                )
            })
            .collect();
        let mut out = shapes[0];
        out[axis] = shapes[0][axis] + shapes[1][axis];
        let y = b.add_activation("y", &dims(&out), TensorType::Int16, Some(q));
        b.add_op(
            BuiltinOp::CONCATENATION,
            BuiltinOptions::Concatenation(ConcatenationOptions {
                axis: axis as i32,
                fused_activation: Activation::None,
            }),
            &xs,
            &[y],
        );
        b.set_outputs(&[y]);
        cases.push(Case {
            name: format!("concat_i16_axis{axis}"),
            model: b.finish(),
            inputs: shapes.iter().map(|s| i16_array(rng, s)).collect(),
        });
    }
    // RESIZE_NEAREST_NEIGHBOR ×2 (the U-Net's nearest upsampling) and to an odd size.
    for (to, half_pixel) in [((8, 10), false), ((7, 9), true)] {
        let q = q16(rng);
        let mut b = ModelBuilder::new();
        let in_shape = [1, 4, 5, 2];
        let x = b.add_input("x", &dims(&in_shape), TensorType::Int16, Some(q.clone()));
        let size = b.add_const_i32("size", &[2], &[to.0 as i32, to.1 as i32], None);
        let y = b.add_activation("y", &dims(&[1, to.0, to.1, 2]), TensorType::Int16, Some(q));
        b.add_op(
            BuiltinOp::RESIZE_NEAREST_NEIGHBOR,
            BuiltinOptions::ResizeNearestNeighbor(ResizeOptions {
                align_corners: false,
                half_pixel_centers: half_pixel,
            }),
            &[x, size],
            &[y],
        );
        b.set_outputs(&[y]);
        cases.push(Case {
            name: format!("resize_i16_to_{}x{}_hp{half_pixel}", to.0, to.1),
            model: b.finish(),
            inputs: vec![i16_array(rng, &in_shape)],
        });
    }
    // 16x8 CONV_2D and TRANSPOSE_CONV: int16 input and output, int8 per-channel weights, int64
    // bias.
    let convs: [Conv16x8; 7] = [
        (false, (7, 9), 3, 1, Padding::Same, Activation::None),
        (false, (8, 8), 3, 2, Padding::Valid, Activation::Relu),
        (false, (6, 5), 1, 1, Padding::Same, Activation::Relu6),
        (false, (5, 7), 2, 1, Padding::Same, Activation::ReluN1To1),
        (true, (4, 5), 2, 2, Padding::Same, Activation::None),
        (true, (3, 4), 3, 2, Padding::Same, Activation::None),
        (true, (3, 3), 3, 1, Padding::Valid, Activation::None),
    ];
    for (transposed, hw, k, stride, padding, act) in convs {
        let (in_c, out_c) = (3, 4);
        let s_in = rng.range_f32(1e-4, 1e-3);
        let mut b = ModelBuilder::new();
        let in_shape = [1, hw.0, hw.1, in_c];
        let x = b.add_input(
            "x",
            &dims(&in_shape),
            TensorType::Int16,
            Some(Quantization::per_tensor(s_in, 0)),
        );
        let scales: Vec<f32> = (0..out_c).map(|_| rng.range_f32(0.002, 0.02)).collect();
        let w = b.add_const_i8(
            "filter",
            &[out_c as i32, k as i32, k as i32, in_c as i32],
            &rng.i8s(out_c * k * k * in_c, -127, 127),
            Some(Quantization::per_axis(scales.clone(), 0)),
        );
        let bias_q = Quantization::per_axis(scales.iter().map(|s| s * s_in).collect(), 0);
        let bias_values: Vec<i64> = (0..out_c)
            .map(|_| rng.range_i64(-400_000, 400_000))
            .collect();
        let data = bias_values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let bias = b.add_const(
            "bias",
            &[out_c as i32],
            TensorType::Int64,
            data,
            Some(bias_q),
        );
        let mean_scale = scales.iter().sum::<f32>() / out_c as f32;
        let taps = (k * k * in_c) as f32;
        let s_out = s_in * mean_scale * taps.sqrt() * 1.5e4 / 3.0e4 * rng.range_f32(0.6, 1.5);
        let out_q = Some(Quantization::per_tensor(s_out, 0));
        let (name, y) = if transposed {
            let big = |n: usize| match padding {
                Padding::Same => n * stride,
                Padding::Valid => (n - 1) * stride + k,
            };
            let out_shape = [1, big(hw.0), big(hw.1), out_c];
            let shape_t = b.add_const_i32("output_shape", &[4], &dims(&out_shape), None);
            let y = b.add_activation("y", &dims(&out_shape), TensorType::Int16, out_q);
            b.add_op(
                BuiltinOp::TRANSPOSE_CONV,
                BuiltinOptions::TransposeConv(TransposeConvOptions {
                    padding,
                    stride_w: stride as i32,
                    stride_h: stride as i32,
                    fused_activation: act,
                }),
                &[shape_t, w, x, bias],
                &[y],
            );
            ("tconv", y)
        } else {
            let oh = out_size(padding, hw.0 as i64, k as i64, stride as i64, 1) as usize;
            let ow = out_size(padding, hw.1 as i64, k as i64, stride as i64, 1) as usize;
            let y = b.add_activation("y", &dims(&[1, oh, ow, out_c]), TensorType::Int16, out_q);
            b.add_op(
                BuiltinOp::CONV_2D,
                BuiltinOptions::Conv2D(Conv2DOptions {
                    padding,
                    stride_w: stride as i32,
                    stride_h: stride as i32,
                    dilation_w: 1,
                    dilation_h: 1,
                    fused_activation: act,
                }),
                &[x, w, bias],
                &[y],
            );
            ("conv", y)
        };
        b.set_outputs(&[y]);
        cases.push(Case {
            name: format!(
                "{name}_16x8_{}x{}_k{k}_s{stride}_{padding:?}_{act:?}",
                hw.0, hw.1
            ),
            model: b.finish(),
            inputs: vec![i16_array(rng, &in_shape)],
        });
    }
    // LOGISTIC on every int16 value: the power-of-two input scale LiteRT uses as it is (2^-12),
    // and rescaled ones; the output is fixed at 2^-15.
    for s_in in [1.0 / 4096.0, 1.0 / 3000.0, 0.00123, 2.5e-4, 0.01] {
        cases.push(unary(
            format!("logistic_i16_scale{s_in:e}"),
            BuiltinOp::LOGISTIC,
            BuiltinOptions::None,
            (TensorType::Int16, Some(Quantization::per_tensor(s_in, 0))),
            (
                TensorType::Int16,
                Some(Quantization::per_tensor(1.0 / 32768.0, 0)),
            ),
            NpyArray {
                shape: vec![256, 256],
                data: NpyData::I16((0..65536).map(|i| (i as u16) as i16).collect()),
            },
        ));
    }
    // QUANTIZE and DEQUANTIZE.
    for i in 0..3 {
        let q_out = q16(rng);
        let s_out = q_out.scale[0];
        let mut values = Vec::new();
        for _ in 0..600 {
            let k = rng.range_i64(-33000, 33000) as f32;
            values.push((k + 0.5) * s_out);
            values.push(rng.range_f32(-40.0, 40.0));
        }
        cases.push(unary(
            format!("quantize_f32_i16_{i}"),
            BuiltinOp::QUANTIZE,
            BuiltinOptions::Untyped { options_type: 89 },
            (TensorType::Float32, None),
            (TensorType::Int16, Some(q_out.clone())),
            NpyArray {
                shape: vec![1, values.len()],
                data: NpyData::F32(values),
            },
        ));
        let q_in8 = act_quant(rng);
        cases.push(unary(
            format!("requantize_i8_i16_{i}"),
            BuiltinOp::QUANTIZE,
            BuiltinOptions::Untyped { options_type: 89 },
            (
                TensorType::Int8,
                Some(Quantization::per_tensor(q_in8.0, q_in8.1)),
            ),
            (TensorType::Int16, Some(q_out.clone())),
            all_int8_values(1),
        ));
        let q_in16 = q16(rng);
        let q_out8 = act_quant(rng);
        cases.push(unary(
            format!("requantize_i16_i8_{i}"),
            BuiltinOp::QUANTIZE,
            BuiltinOptions::Untyped { options_type: 89 },
            (TensorType::Int16, Some(q_in16.clone())),
            (
                TensorType::Int8,
                Some(Quantization::per_tensor(q_out8.0, q_out8.1)),
            ),
            i16_array(rng, &[2, 300]),
        ));
        cases.push(unary(
            format!("requantize_i16_i16_{i}"),
            BuiltinOp::QUANTIZE,
            BuiltinOptions::Untyped { options_type: 89 },
            (TensorType::Int16, Some(q_in16.clone())),
            (TensorType::Int16, Some(q_out)),
            i16_array(rng, &[2, 300]),
        ));
        cases.push(unary(
            format!("dequantize_i16_{i}"),
            BuiltinOp::DEQUANTIZE,
            BuiltinOptions::Untyped { options_type: 38 },
            (TensorType::Int16, Some(q_in16)),
            (TensorType::Float32, None),
            i16_array(rng, &[2, 300]),
        ));
    }
    cases
}

/// One case of each kind with parameters drawn from `rng` (for the property test).
pub fn all_cases_small(rng: &mut Rng) -> Vec<Case> {
    let int8 = rng.range_i64(0, 1) == 1;
    let padding = if rng.range_i64(0, 1) == 1 {
        Padding::Same
    } else {
        Padding::Valid
    };
    let act = ACTIVATIONS[rng.range_i64(0, 3) as usize];
    let hw = (rng.range_i64(3, 9) as usize, rng.range_i64(3, 9) as usize);
    let stride = rng.range_i64(1, 2) as usize;
    let k = rng.range_i64(1, 3) as usize;
    let mut cases = vec![
        conv_case(
            rng,
            int8,
            hw,
            2,
            3,
            (k, k),
            (stride, stride),
            (1, 1),
            padding,
            act,
        ),
        transpose_conv_case(rng, int8, hw, 2, 3, k, stride, padding, act, true, k == 2),
        pool_case(rng, int8, k == 2, hw, k, stride, padding, act),
        concat_case(rng, int8, 3, 2),
        resize_case(rng, int8, hw, (hw.1, hw.0 + 1), k == 1, k == 2),
        binary_case(rng, int8, k == 2, &[1, 2, 3, 2], &[2], act, false),
        reshape_case(rng, int8, k == 3),
        unet_case(rng, int8),
    ];
    cases.extend(logistic_cases(rng).into_iter().take(2));
    cases.extend(relu_quantize_dequantize_cases(rng).into_iter().take(4));
    cases
}
