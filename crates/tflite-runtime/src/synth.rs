//! Synthetic models with random weights, for tests, benches and `cargo xtask infer` demos:
//! a U-Net shaped like IntelAI's 2D U-Net (f32 or int8), built with `tflite-writer`'s
//! [`ModelBuilder`].

use tflite_writer::{
    Activation, BuiltinOp, BuiltinOptions, ConcatenationOptions, Conv2DOptions, Model,
    ModelBuilder, Padding, Pool2DOptions, Quantization, TensorType, TransposeConvOptions,
};

/// The seeded generator of the synthetic models (SplitMix64 from `seeded-rng`), so that a model
/// depends only on its seed.
pub use seeded_rng::SplitMix64 as Rng;

/// Configuration of [`unet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UNetSpec {
    /// Feature maps of the first level (16 in IntelAI's model).
    pub fms: usize,
    /// Input height and width (divisible by 16).
    pub size: usize,
    /// Input channels (1: FLAIR).
    pub in_channels: usize,
    /// True for a fully int8 model (int8 input and output, per-channel weights).
    pub int8: bool,
    /// Weight seed.
    pub seed: u64,
}

/// The int8 activation quantisation used after every ReLU: [0, 12.75] in 255 steps.
const RELU_QUANT: (f32, i64) = (0.05, -128);

struct UNetBuilder {
    b: ModelBuilder,
    rng: Rng,
    int8: bool,
    counter: usize,
}

impl UNetBuilder {
    fn name(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("{what}_{}", self.counter)
    }

    fn act_quant(&self, q: (f32, i64)) -> Option<Quantization> {
        self.int8.then(|| Quantization::per_tensor(q.0, q.1))
    }

    fn dtype(&self) -> TensorType {
        if self.int8 {
            TensorType::Int8
        } else {
            TensorType::Float32
        }
    }

    /// Weights `[out_c, k, k, in_c]` and bias, He-scaled; int8 per channel when quantised.
    fn weights(&mut self, out_c: usize, k: usize, in_c: usize, in_scale: f32) -> (i32, i32) {
        let fan_in = (k * k * in_c) as f32;
        let limit = (6.0 / fan_in).sqrt();
        let n = out_c * k * k * in_c;
        let shape = [out_c as i32, k as i32, k as i32, in_c as i32];
        let (wn, bn) = (self.name("w"), self.name("b"));
        if self.int8 {
            let mut scales = Vec::with_capacity(out_c);
            for _ in 0..out_c {
                scales.push(limit * self.rng.range_f32(0.7, 1.0) / 127.0);
            }
            let values = self.rng.i8s(n, -127, 127);
            let bias_scales: Vec<f32> = scales.iter().map(|s| s * in_scale).collect();
            let bias: Vec<i32> = bias_scales
                .iter()
                .map(|s| (self.rng.range_f32(-0.05, 0.05) / s).round() as i32)
                .collect();
            let w = self.b.add_const_i8(
                &wn,
                &shape,
                &values,
                Some(Quantization::per_axis(scales, 0)),
            );
            let b = self.b.add_const_i32(
                &bn,
                &[out_c as i32],
                &bias,
                Some(Quantization::per_axis(bias_scales, 0)),
            );
            (w, b)
        } else {
            let values = self.rng.f32s(n, -limit, limit);
            let bias = self.rng.f32s(out_c, -0.05, 0.05);
            let w = self.b.add_const_f32(&wn, &shape, &values);
            let b = self.b.add_const_f32(&bn, &[out_c as i32], &bias);
            (w, b)
        }
    }

    fn conv_relu(&mut self, x: i32, shape: [usize; 4], out_c: usize) -> i32 {
        let (w, b) = self.weights(out_c, 3, shape[3], RELU_QUANT.0);
        let name = self.name("conv");
        let y = self.b.add_activation(
            &name,
            &[
                shape[0] as i32,
                shape[1] as i32,
                shape[2] as i32,
                out_c as i32,
            ],
            self.dtype(),
            self.act_quant(RELU_QUANT),
        );
        self.b.add_op(
            BuiltinOp::CONV_2D,
            BuiltinOptions::Conv2D(Conv2DOptions {
                padding: Padding::Same,
                stride_w: 1,
                stride_h: 1,
                fused_activation: Activation::Relu,
                dilation_w: 1,
                dilation_h: 1,
            }),
            &[x, w, b],
            &[y],
        );
        y
    }

    fn pool(&mut self, x: i32, shape: [usize; 4]) -> i32 {
        let name = self.name("pool");
        let y = self.b.add_activation(
            &name,
            &[
                shape[0] as i32,
                (shape[1] / 2) as i32,
                (shape[2] / 2) as i32,
                shape[3] as i32,
            ],
            self.dtype(),
            self.act_quant(RELU_QUANT),
        );
        self.b.add_op(
            BuiltinOp::MAX_POOL_2D,
            BuiltinOptions::Pool2D(Pool2DOptions {
                padding: Padding::Valid,
                stride_w: 2,
                stride_h: 2,
                filter_width: 2,
                filter_height: 2,
                fused_activation: Activation::None,
            }),
            &[x],
            &[y],
        );
        y
    }

    fn up(&mut self, x: i32, shape: [usize; 4], out_c: usize) -> i32 {
        let (w, b) = self.weights(out_c, 2, shape[3], RELU_QUANT.0);
        let out = [
            shape[0] as i32,
            (shape[1] * 2) as i32,
            (shape[2] * 2) as i32,
            out_c as i32,
        ];
        let shape_name = self.name("up_shape");
        let s = self.b.add_const_i32(&shape_name, &[4], &out, None);
        let name = self.name("up");
        let y = self
            .b
            .add_activation(&name, &out, self.dtype(), self.act_quant(RELU_QUANT));
        self.b.add_op(
            BuiltinOp::TRANSPOSE_CONV,
            BuiltinOptions::TransposeConv(TransposeConvOptions {
                padding: Padding::Same,
                stride_w: 2,
                stride_h: 2,
                fused_activation: Activation::None,
            }),
            &[s, w, x, b],
            &[y],
        );
        y
    }

    fn concat(&mut self, a: i32, b: i32, shape: [usize; 4], channels: usize) -> i32 {
        let name = self.name("concat");
        let y = self.b.add_activation(
            &name,
            &[
                shape[0] as i32,
                shape[1] as i32,
                shape[2] as i32,
                channels as i32,
            ],
            self.dtype(),
            self.act_quant(RELU_QUANT),
        );
        self.b.add_op(
            BuiltinOp::CONCATENATION,
            BuiltinOptions::Concatenation(ConcatenationOptions {
                axis: 3,
                fused_activation: Activation::None,
            }),
            &[a, b],
            &[y],
        );
        y
    }
}

/// A U-Net with IntelAI's topology: four levels of two 3×3 conv+ReLU and a 2×2 max pool, a
/// bottleneck, four 2×2 stride-2 transposed convolutions each concatenated with its skip
/// connection and followed by two conv+ReLU, then a 1×1 conv and a sigmoid. With `fms = 16` it
/// has 1,940,817 parameters like the original. Weights are random (He-scaled).
pub fn unet(spec: UNetSpec) -> Model {
    let mut u = UNetBuilder {
        b: ModelBuilder::new(),
        rng: Rng::new(spec.seed),
        int8: spec.int8,
        counter: 0,
    };
    let n = spec.size;
    let input_quant = u.act_quant((0.05, 0));
    let x = u.b.add_input(
        "input",
        &[1, n as i32, n as i32, spec.in_channels as i32],
        u.dtype(),
        input_quant,
    );
    let mut shape = [1, n, n, spec.in_channels];
    let mut skips = Vec::new();
    let mut cur = x;
    // The int8 input's scale differs from RELU_QUANT; the first conv's bias scale uses it.
    let mut level_c = spec.fms;
    for level in 0..4 {
        cur = if level == 0 && spec.int8 {
            let (w, b) = u.weights(level_c, 3, shape[3], 0.05);
            let y = u.b.add_activation(
                "conv_in",
                &[1, n as i32, n as i32, level_c as i32],
                u.dtype(),
                u.act_quant(RELU_QUANT),
            );
            u.b.add_op(
                BuiltinOp::CONV_2D,
                BuiltinOptions::Conv2D(Conv2DOptions {
                    fused_activation: Activation::Relu,
                    ..Conv2DOptions::default()
                }),
                &[cur, w, b],
                &[y],
            );
            y
        } else {
            u.conv_relu(cur, shape, level_c)
        };
        shape[3] = level_c;
        cur = u.conv_relu(cur, shape, level_c);
        skips.push((cur, shape));
        cur = u.pool(cur, shape);
        shape = [1, shape[1] / 2, shape[2] / 2, level_c];
        level_c *= 2;
    }
    cur = u.conv_relu(cur, shape, level_c);
    shape[3] = level_c;
    cur = u.conv_relu(cur, shape, level_c);
    for (skip, skip_shape) in skips.into_iter().rev() {
        level_c /= 2;
        let up = u.up(cur, shape, level_c);
        shape = [1, shape[1] * 2, shape[2] * 2, level_c];
        cur = u.concat(up, skip, shape, 2 * level_c);
        debug_assert_eq!(skip_shape[1], shape[1]);
        shape[3] = 2 * level_c;
        cur = u.conv_relu(cur, shape, level_c);
        shape[3] = level_c;
        cur = u.conv_relu(cur, shape, level_c);
    }
    // 1×1 conv to one channel, then the sigmoid.
    let logits_quant = (0.1, 0);
    let (w, b) = u.weights(1, 1, level_c, RELU_QUANT.0);
    let logits = u.b.add_activation(
        "logits",
        &[1, n as i32, n as i32, 1],
        u.dtype(),
        u.act_quant(logits_quant),
    );
    u.b.add_op(
        BuiltinOp::CONV_2D,
        BuiltinOptions::Conv2D(Conv2DOptions::default()),
        &[cur, w, b],
        &[logits],
    );
    let mask = u.b.add_activation(
        "mask",
        &[1, n as i32, n as i32, 1],
        u.dtype(),
        u.act_quant((1.0 / 256.0, -128)),
    );
    u.b.add_op(
        BuiltinOp::LOGISTIC,
        BuiltinOptions::None,
        &[logits],
        &[mask],
    );
    u.b.set_outputs(&[mask]);
    u.b.set_description(if spec.int8 {
        "random-weight int8 U-Net (tflite_runtime::synth)"
    } else {
        "random-weight f32 U-Net (tflite_runtime::synth)"
    });
    u.b.finish()
}

/// Number of weights and biases: the elements of the filter and bias inputs of every CONV_2D
/// and TRANSPOSE_CONV of subgraph 0.
pub fn parameter_count(model: &Model) -> usize {
    let Some(sg) = model.subgraphs.first() else {
        return 0;
    };
    let mut count = 0;
    for op in &sg.operators {
        let slots: &[usize] = match op.op {
            BuiltinOp::CONV_2D => &[1, 2],
            BuiltinOp::TRANSPOSE_CONV => &[1, 3],
            _ => &[],
        };
        for &k in slots {
            if let Some(t) = op.inputs.get(k).and_then(|&t| usize::try_from(t).ok()) {
                count += sg.tensors.get(t).map_or(0, |t| t.num_elements());
            }
        }
    }
    count
}
