//! Models shared by the integration tests.
#![allow(dead_code)]

use tflite_writer::*;

/// The workspace's seeded generator, so that test models depend only on their seed.
pub use seeded_rng::SplitMix64 as Rng;

/// A float CONV_2D model: 1×8×8×3 → conv 3×3 (4 filters, ReLU) → 1×8×8×4.
pub fn float_conv() -> Model {
    let mut rng = Rng::new(7);
    let mut b = ModelBuilder::new();
    let x = b.add_input("input", &[1, 8, 8, 3], TensorType::Float32, None);
    let weights: Vec<f32> = (0..4 * 3 * 3 * 3).map(|_| rng.uniform(1.0)).collect();
    let w = b.add_const_f32("conv/weights", &[4, 3, 3, 3], &weights);
    let bias = b.add_const_f32("conv/bias", &[4], &[0.1, -0.2, 0.3, 0.0]);
    let y = b.add_activation("output", &[1, 8, 8, 4], TensorType::Float32, None);
    b.add_op(
        BuiltinOp::CONV_2D,
        BuiltinOptions::Conv2D(Conv2DOptions {
            fused_activation: Activation::Relu,
            ..Conv2DOptions::default()
        }),
        &[x, w, bias],
        &[y],
    );
    b.set_outputs(&[y]);
    b.finish()
}

fn q(scale: f32, zp: i64) -> Option<Quantization> {
    Some(Quantization::per_tensor(scale, zp))
}

/// Adds an int8 per-channel conv-like weight + int32 bias pair.
fn int8_weights(
    b: &mut ModelBuilder,
    rng: &mut Rng,
    name: &str,
    shape: &[i32],
    input_scale: f32,
    axis: i32,
) -> (i32, i32) {
    let n_channels = shape[axis as usize] as usize;
    let count: usize = shape.iter().map(|&d| d as usize).product();
    let scales: Vec<f32> = (0..n_channels).map(|c| 0.01 + 0.002 * c as f32).collect();
    let values: Vec<i8> = (0..count)
        .map(|_| (rng.next_u64() as i8).max(-127))
        .collect();
    let w = b.add_const_i8(
        &format!("{name}/weights"),
        shape,
        &values,
        Some(Quantization::per_axis(scales.clone(), axis)),
    );
    let bias_scales: Vec<f32> = scales.iter().map(|s| s * input_scale).collect();
    let bias_values: Vec<i32> = (0..n_channels).map(|c| (c as i32 - 2) * 37).collect();
    let bias = b.add_const_i32(
        &format!("{name}/bias"),
        &[n_channels as i32],
        &bias_values,
        Some(Quantization::per_axis(bias_scales, 0)),
    );
    (w, bias)
}

/// An int8 model with per-channel weights that exercises every op of the IR that LiteRT runs
/// in int8: CONV_2D, DEPTHWISE_CONV_2D, MAX_POOL_2D, AVERAGE_POOL_2D, TRANSPOSE_CONV,
/// CONCATENATION, RESHAPE, STRIDED_SLICE, PACK, RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR, ADD,
/// MUL, FULLY_CONNECTED, SOFTMAX, LOGISTIC, QUANTIZE, DEQUANTIZE.
pub fn int8_all_ops() -> Model {
    let mut rng = Rng::new(42);
    let mut b = ModelBuilder::new();
    let s_in = 0.02;
    let x = b.add_input("input", &[1, 8, 8, 2], TensorType::Int8, q(s_in, -3));
    // CONV_2D 3x3, 2 -> 4, per-channel on dim 0 (OHWI).
    let (w, bias) = int8_weights(&mut b, &mut rng, "conv", &[4, 3, 3, 2], s_in, 0);
    let c1 = b.add_activation("conv", &[1, 8, 8, 4], TensorType::Int8, q(0.05, 2));
    b.add_op(
        BuiltinOp::CONV_2D,
        BuiltinOptions::Conv2D(Conv2DOptions {
            fused_activation: Activation::Relu,
            ..Conv2DOptions::default()
        }),
        &[x, w, bias],
        &[c1],
    );
    // DEPTHWISE_CONV_2D 3x3, per-channel on dim 3 ([1, H, W, C]).
    let (dw, dbias) = int8_weights(&mut b, &mut rng, "dw", &[1, 3, 3, 4], 0.05, 3);
    let d1 = b.add_activation("depthwise", &[1, 8, 8, 4], TensorType::Int8, q(0.05, 2));
    b.add_op(
        BuiltinOp::DEPTHWISE_CONV_2D,
        BuiltinOptions::DepthwiseConv2D(DepthwiseConv2DOptions::default()),
        &[c1, dw, dbias],
        &[d1],
    );
    // MAX_POOL_2D 2x2 -> 1x4x4x4 (same scale as its input).
    let p1 = b.add_activation("maxpool", &[1, 4, 4, 4], TensorType::Int8, q(0.05, 2));
    b.add_op(
        BuiltinOp::MAX_POOL_2D,
        BuiltinOptions::Pool2D(Pool2DOptions::square(2)),
        &[d1],
        &[p1],
    );
    // AVERAGE_POOL_2D 2x2 on the conv output.
    let p2 = b.add_activation("avgpool", &[1, 4, 4, 4], TensorType::Int8, q(0.05, 2));
    b.add_op(
        BuiltinOp::AVERAGE_POOL_2D,
        BuiltinOptions::Pool2D(Pool2DOptions::square(2)),
        &[c1],
        &[p2],
    );
    // ADD and MUL of the two pools.
    let a1 = b.add_activation("add", &[1, 4, 4, 4], TensorType::Int8, q(0.1, 0));
    b.add_op(
        BuiltinOp::ADD,
        BuiltinOptions::Add(ElementwiseOptions::default()),
        &[p1, p2],
        &[a1],
    );
    let m1 = b.add_activation("mul", &[1, 4, 4, 4], TensorType::Int8, q(0.2, -5));
    b.add_op(
        BuiltinOp::MUL,
        BuiltinOptions::Mul(ElementwiseOptions::default()),
        &[p1, p2],
        &[m1],
    );
    // TRANSPOSE_CONV 2x up: output_shape, weights (OHWI, per-channel dim 0), input, bias.
    let out_shape = b.add_const_i32("tconv/output_shape", &[4], &[1, 8, 8, 4], None);
    let (tw, tbias) = int8_weights(&mut b, &mut rng, "tconv", &[4, 2, 2, 4], 0.1, 0);
    // PACK needs its inputs quantized like its output.
    let t1 = b.add_activation("tconv", &[1, 8, 8, 4], TensorType::Int8, q(0.2, -5));
    b.add_op(
        BuiltinOp::TRANSPOSE_CONV,
        BuiltinOptions::TransposeConv(TransposeConvOptions::default()),
        &[out_shape, tw, a1, tbias],
        &[t1],
    );
    // RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR of the MUL output to 8x8.
    let size = b.add_const_i32("resize/size", &[2], &[8, 8], None);
    let r1 = b.add_activation(
        "resize_nearest",
        &[1, 8, 8, 4],
        TensorType::Int8,
        q(0.2, -5),
    );
    b.add_op(
        BuiltinOp::RESIZE_NEAREST_NEIGHBOR,
        BuiltinOptions::ResizeNearestNeighbor(ResizeOptions::default()),
        &[m1, size],
        &[r1],
    );
    let r2 = b.add_activation(
        "resize_bilinear",
        &[1, 8, 8, 4],
        TensorType::Int8,
        q(0.2, -5),
    );
    b.add_op(
        BuiltinOp::RESIZE_BILINEAR,
        BuiltinOptions::ResizeBilinear(ResizeOptions {
            align_corners: false,
            half_pixel_centers: true,
        }),
        &[m1, size],
        &[r2],
    );
    // CONCATENATION on channels (all inputs share the output's scale).
    let cat = b.add_activation("concat", &[1, 8, 8, 8], TensorType::Int8, q(0.2, -5));
    b.add_op(
        BuiltinOp::CONCATENATION,
        BuiltinOptions::Concatenation(ConcatenationOptions {
            axis: 3,
            fused_activation: Activation::None,
        }),
        &[r1, r2],
        &[cat],
    );
    // STRIDED_SLICE: the first 4 channels.
    let begin = b.add_const_i32("slice/begin", &[4], &[0, 0, 0, 0], None);
    let end = b.add_const_i32("slice/end", &[4], &[1, 8, 8, 4], None);
    let strides = b.add_const_i32("slice/strides", &[4], &[1, 1, 1, 1], None);
    let sl = b.add_activation("slice", &[1, 8, 8, 4], TensorType::Int8, q(0.2, -5));
    b.add_op(
        BuiltinOp::STRIDED_SLICE,
        BuiltinOptions::StridedSlice(StridedSliceOptions::default()),
        &[cat, begin, end, strides],
        &[sl],
    );
    // PACK the slice with the transposed conv output: [2, 1, 8, 8, 4] → RESHAPE to [1, 512].
    let packed = b.add_activation("pack", &[2, 1, 8, 8, 4], TensorType::Int8, q(0.2, -5));
    b.add_op(
        BuiltinOp::PACK,
        BuiltinOptions::Pack(PackOptions {
            values_count: 2,
            axis: 0,
        }),
        &[sl, t1],
        &[packed],
    );
    let new_shape = b.add_const_i32("reshape/shape", &[2], &[1, 512], None);
    let flat = b.add_activation("flatten", &[1, 512], TensorType::Int8, q(0.2, -5));
    b.add_op(
        BuiltinOp::RESHAPE,
        BuiltinOptions::Reshape(ReshapeOptions {
            new_shape: vec![1, 512],
        }),
        &[packed, new_shape],
        &[flat],
    );
    // FULLY_CONNECTED 512 -> 10 (per-tensor weights, as LiteRT's int8 FC expects).
    let fc_w: Vec<i8> = (0..10 * 512)
        .map(|_| (rng.next_u64() as i8).max(-127))
        .collect();
    let fw = b.add_const_i8("fc/weights", &[10, 512], &fc_w, q(0.004, 0));
    let fbias = b.add_const_i32(
        "fc/bias",
        &[10],
        &[5, -3, 0, 7, 1, 2, -9, 4, 0, 3],
        q(0.2 * 0.004, 0),
    );
    let logits = b.add_activation("logits", &[1, 10], TensorType::Int8, q(0.3, 4));
    b.add_op(
        BuiltinOp::FULLY_CONNECTED,
        BuiltinOptions::FullyConnected(FullyConnectedOptions::default()),
        &[flat, fw, fbias],
        &[logits],
    );
    // SOFTMAX (output 1/256, -128) and LOGISTIC (same).
    let probs = b.add_activation("softmax", &[1, 10], TensorType::Int8, q(1.0 / 256.0, -128));
    b.add_op(
        BuiltinOp::SOFTMAX,
        BuiltinOptions::Softmax(SoftmaxOptions::default()),
        &[logits],
        &[probs],
    );
    let sig = b.add_activation("logistic", &[1, 10], TensorType::Int8, q(1.0 / 256.0, -128));
    b.add_op(BuiltinOp::LOGISTIC, BuiltinOptions::None, &[logits], &[sig]);
    // DEQUANTIZE to float, QUANTIZE back with another scale.
    let deq = b.add_activation("dequantize", &[1, 10], TensorType::Float32, None);
    b.add_op(BuiltinOp::DEQUANTIZE, BuiltinOptions::None, &[sig], &[deq]);
    let req = b.add_activation("quantize", &[1, 10], TensorType::Int8, q(1.0 / 128.0, -128));
    b.add_op(BuiltinOp::QUANTIZE, BuiltinOptions::None, &[deq], &[req]);
    b.set_outputs(&[probs, req]);
    b.finish()
}
