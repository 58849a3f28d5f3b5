//! Synthetic models with random weights, for tests, benches and `cargo xtask infer` demos:
//! a U-Net shaped like IntelAI's 2D U-Net (f32 or int8), built with `tflite-writer`'s
//! [`ModelBuilder`].

use tflite_writer::unet_graph::{self, UNetEmitter, emit_unet};
use tflite_writer::{BuiltinOp, BuiltinOptions, Model, ModelBuilder, Quantization, TensorType};

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
/// The int8 input's quantisation.
const INPUT_QUANT: (f32, i64) = (0.05, 0);
/// The int8 quantisation of the 1×1 head's logits.
const LOGITS_QUANT: (f32, i64) = (0.1, 0);
/// The int8 output of LOGISTIC, fixed by TFLite: scale 1/256, zero point −128.
const OUTPUT_QUANT: (f32, i64) = (1.0 / 256.0, -128);

struct UNetBuilder {
    b: ModelBuilder,
    rng: Rng,
    int8: bool,
}

/// A tensor of the builder and its NHWC shape.
type Handle = (i32, [usize; 4]);

impl UNetBuilder {
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

    fn activation(&mut self, name: &str, shape: [usize; 4], quant: (f32, i64)) -> Handle {
        let dims = shape.map(|d| d as i32);
        let q = self.act_quant(quant);
        (self.b.add_activation(name, &dims, self.dtype(), q), shape)
    }

    /// Weights `[out_c, k, k, in_c]` and bias, He-scaled; int8 per channel when quantised.
    fn weights(
        &mut self,
        name: &str,
        out_c: usize,
        k: usize,
        in_c: usize,
        in_scale: f32,
    ) -> (i32, i32) {
        let fan_in = (k * k * in_c) as f32;
        let limit = (6.0 / fan_in).sqrt();
        let n = out_c * k * k * in_c;
        let shape = [out_c as i32, k as i32, k as i32, in_c as i32];
        let (wn, bn) = (format!("{name}/kernel"), format!("{name}/bias"));
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
}

impl UNetEmitter for UNetBuilder {
    type Tensor = Handle;

    fn input(&mut self, size: usize, channels: usize) -> Handle {
        let shape = [1, size, size, channels];
        let dims = shape.map(|d| d as i32);
        let q = self.act_quant(INPUT_QUANT);
        (self.b.add_input("input", &dims, self.dtype(), q), shape)
    }

    fn conv(&mut self, name: &str, x: Handle, out_c: usize, k: usize, relu: bool) -> Handle {
        // Every activation, the input included, has the scale of RELU_QUANT (0.05).
        let (w, b) = self.weights(name, out_c, k, x.1[3], RELU_QUANT.0);
        let quant = if relu { RELU_QUANT } else { LOGITS_QUANT };
        let y = self.activation(name, [1, x.1[1], x.1[2], out_c], quant);
        self.b.add_op(
            BuiltinOp::CONV_2D,
            BuiltinOptions::Conv2D(unet_graph::conv_options(relu)),
            &[x.0, w, b],
            &[y.0],
        );
        y
    }

    fn max_pool(&mut self, name: &str, x: Handle) -> Handle {
        let [n, h, w, c] = x.1;
        let y = self.activation(name, [n, h / 2, w / 2, c], RELU_QUANT);
        self.b.add_op(
            BuiltinOp::MAX_POOL_2D,
            BuiltinOptions::Pool2D(unet_graph::pool_options()),
            &[x.0],
            &[y.0],
        );
        y
    }

    fn upsample(&mut self, name: &str, x: Handle, out_c: usize) -> Handle {
        let (w, b) = self.weights(name, out_c, 2, x.1[3], RELU_QUANT.0);
        let out = [x.1[0], x.1[1] * 2, x.1[2] * 2, out_c];
        let s = self.b.add_const_i32(
            &format!("{name}/output_shape"),
            &[4],
            &out.map(|d| d as i32),
            None,
        );
        let y = self.activation(name, out, RELU_QUANT);
        self.b.add_op(
            BuiltinOp::TRANSPOSE_CONV,
            BuiltinOptions::TransposeConv(unet_graph::transpose_conv_options()),
            &[s, w, x.0, b],
            &[y.0],
        );
        y
    }

    fn concat(&mut self, name: &str, upsampled: Handle, skip: Handle) -> Handle {
        let [n, h, w, c] = upsampled.1;
        let y = self.activation(name, [n, h, w, c + skip.1[3]], RELU_QUANT);
        self.b.add_op(
            BuiltinOp::CONCATENATION,
            BuiltinOptions::Concatenation(unet_graph::concat_options()),
            &[upsampled.0, skip.0],
            &[y.0],
        );
        y
    }

    fn sigmoid(&mut self, logits: Handle) -> Handle {
        let y = self.activation("output", logits.1, OUTPUT_QUANT);
        self.b.add_op(
            BuiltinOp::LOGISTIC,
            BuiltinOptions::None,
            &[logits.0],
            &[y.0],
        );
        y
    }
}

/// A U-Net with IntelAI's topology ([`tflite_writer::unet_graph`]): four levels of two 3×3
/// conv+ReLU and a 2×2 max pool, a bottleneck, four 2×2 stride-2 transposed convolutions each
/// concatenated with its skip connection and followed by two conv+ReLU, then a 1×1 conv and a
/// sigmoid. With `fms = 16` it has 1,940,817 parameters like the original. Weights are random
/// (He-scaled).
pub fn unet(spec: UNetSpec) -> Model {
    let mut u = UNetBuilder {
        b: ModelBuilder::new(),
        rng: Rng::new(spec.seed),
        int8: spec.int8,
    };
    let (_, output) = emit_unet(&mut u, spec.size, spec.in_channels, spec.fms);
    u.b.set_outputs(&[output.0]);
    u.b.set_description(if spec.int8 {
        "random-weight int8 U-Net (tflite_runtime::synth)"
    } else {
        "random-weight f32 U-Net (tflite_runtime::synth)"
    });
    u.b.finish()
}

/// Multiplies the filter of every TRANSPOSE_CONV of a float model by `factor`: the
/// up-convolutions then span a much wider range than the skip tensors they are concatenated
/// with, as in TensorFlow's trained U-Net (the case the quantizer's concatenation
/// equalisation is for). Returns how many filters were scaled.
pub fn widen_transpose_convs(model: &mut Model, factor: f32) -> usize {
    let Some(sg) = model.subgraphs.first() else {
        return 0;
    };
    let buffers: Vec<usize> = sg
        .operators
        .iter()
        .filter(|op| op.op == BuiltinOp::TRANSPOSE_CONV)
        .filter_map(|op| op.inputs.get(1).and_then(|&w| usize::try_from(w).ok()))
        .filter_map(|w| sg.tensors.get(w).map(|t| t.buffer as usize))
        .collect();
    for &b in &buffers {
        if let Some(buffer) = model.buffers.get_mut(b) {
            for chunk in buffer.data.chunks_exact_mut(4) {
                let v = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) * factor;
                chunk.copy_from_slice(&v.to_le_bytes());
            }
        }
    }
    buffers.len()
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
