//! Export of a trained [`UNet`] to the float TFLite IR of `tflite-writer`.
//!
//! The graph is what TensorFlow's converter makes of IntelAI's Keras model, with static shapes:
//! - input `[1, size, size, 1]` and output `[1, size, size, 1]`, NHWC, float32, batch 1;
//! - `CONV_2D` with SAME padding and the ReLU fused, weights OHWI (burn's `[O, I, kh, kw]`
//!   transposed), bias `[O]`;
//! - `MAX_POOL_2D` 2×2/2 VALID;
//! - upsampling: `TRANSPOSE_CONV` 2×2/2 SAME with a constant int32 output-shape tensor, weights
//!   OHWI (burn's `[I, O, kh, kw]` transposed) and bias as the fourth input; or
//!   `RESIZE_NEAREST_NEIGHBOR` with a constant size tensor (no align-corners, no half-pixel
//!   centres);
//! - `CONCATENATION` on the channel axis, `[upsampled, skip]` as in the Keras model;
//! - the 1×1 `CONV_2D` head without activation, then `LOGISTIC`;
//! - one signature, `serving_default`, input `input`, output `output`.
//!
//! No shape-computation ops: every shape is a constant, so the int8 model can run on an NPU.

use burn::tensor::Tensor;
use tflite_writer::unet_graph::{self, UNetEmitter, emit_unet};
use tflite_writer::{
    Buffer, BuiltinOp, BuiltinOptions, Model, Operator, ResizeOptions, SignatureDef, Subgraph,
    Tensor as TfTensor, TensorMap, TensorType,
};

use crate::model::{Conv3x3, UNet, UpConv};

/// Name of the exported input tensor and signature input.
pub const INPUT_NAME: &str = "input";
/// Name of the exported output tensor and signature output.
pub const OUTPUT_NAME: &str = "output";

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    // `iter` converts from whatever float dtype the backend stores, so this cannot fail.
    t.into_data().iter::<f32>().collect()
}

/// `[O, I, kh, kw]` → `[O, kh, kw, I]`.
fn oihw_to_ohwi(w: &[f32], [o, i, kh, kw]: [usize; 4]) -> Vec<f32> {
    let mut out = vec![0.0; w.len()];
    for oc in 0..o {
        for ic in 0..i {
            for y in 0..kh {
                for x in 0..kw {
                    out[((oc * kh + y) * kw + x) * i + ic] = w[((oc * i + ic) * kh + y) * kw + x];
                }
            }
        }
    }
    out
}

/// burn's transposed-conv `[I, O, kh, kw]` → TFLite TRANSPOSE_CONV `[O, kh, kw, I]`.
fn iohw_to_ohwi(w: &[f32], [i, o, kh, kw]: [usize; 4]) -> Vec<f32> {
    let mut out = vec![0.0; w.len()];
    for ic in 0..i {
        for oc in 0..o {
            for y in 0..kh {
                for x in 0..kw {
                    out[((oc * kh + y) * kw + x) * i + ic] = w[((ic * o + oc) * kh + y) * kw + x];
                }
            }
        }
    }
    out
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn i32_bytes(values: &[i32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Builds the subgraph tensor by tensor.
struct GraphBuilder {
    tensors: Vec<TfTensor>,
    buffers: Vec<Buffer>,
    operators: Vec<Operator>,
}

impl GraphBuilder {
    fn new() -> Self {
        // Buffer 0 is the empty sentinel that tensors without data point at.
        Self {
            tensors: Vec::new(),
            buffers: vec![Buffer::default()],
            operators: Vec::new(),
        }
    }

    fn tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        dtype: TensorType,
        data: Option<Vec<u8>>,
    ) -> i32 {
        let buffer = match data {
            Some(data) => {
                self.buffers.push(Buffer { data });
                (self.buffers.len() - 1) as u32
            }
            None => 0,
        };
        self.tensors.push(TfTensor {
            name: name.to_string(),
            shape: shape.iter().map(|&d| d as i32).collect(),
            shape_signature: None,
            dtype,
            buffer,
            quantization: None,
            is_variable: false,
        });
        (self.tensors.len() - 1) as i32
    }

    fn activation(&mut self, name: &str, shape: &[usize]) -> i32 {
        self.tensor(name, shape, TensorType::Float32, None)
    }

    fn op(&mut self, op: BuiltinOp, inputs: Vec<i32>, outputs: Vec<i32>, options: BuiltinOptions) {
        self.operators.push(Operator {
            op,
            custom_code: None,
            version: 0,
            inputs,
            outputs,
            options,
        });
    }

    fn shape(&self, tensor: i32) -> Vec<usize> {
        self.tensors[tensor as usize]
            .shape
            .iter()
            .map(|&d| d as usize)
            .collect()
    }

    fn conv(
        &mut self,
        name: &str,
        x: i32,
        weight: Vec<f32>,
        dims: [usize; 4],
        bias: Vec<f32>,
        relu: bool,
    ) -> i32 {
        let [o, i, kh, kw] = dims;
        let w = self.tensor(
            &format!("{name}/kernel"),
            &[o, kh, kw, i],
            TensorType::Float32,
            Some(f32_bytes(&oihw_to_ohwi(&weight, dims))),
        );
        let b = self.tensor(
            &format!("{name}/bias"),
            &[o],
            TensorType::Float32,
            Some(f32_bytes(&bias)),
        );
        let in_shape = self.shape(x);
        let y = self.activation(name, &[1, in_shape[1], in_shape[2], o]);
        self.op(
            BuiltinOp::CONV_2D,
            vec![x, w, b],
            vec![y],
            BuiltinOptions::Conv2D(unet_graph::conv_options(relu)),
        );
        y
    }
}

/// The float export as a [`UNetEmitter`]: each layer's weights are the model's next module, in
/// graph order.
struct Exporter<'m> {
    g: GraphBuilder,
    convs: std::vec::IntoIter<(Vec<f32>, [usize; 4], Vec<f32>)>,
    ups: std::vec::IntoIter<&'m Option<UpConv>>,
}

impl UNetEmitter for Exporter<'_> {
    type Tensor = i32;

    fn input(&mut self, size: usize, channels: usize) -> i32 {
        self.g.activation(INPUT_NAME, &[1, size, size, channels])
    }

    fn conv(&mut self, name: &str, x: i32, _out_c: usize, _k: usize, relu: bool) -> i32 {
        let (weight, dims, bias) = self
            .convs
            .next()
            .expect("the U-Net has one convolution module per convolution of the graph");
        self.g.conv(name, x, weight, dims, bias, relu)
    }

    fn max_pool(&mut self, name: &str, x: i32) -> i32 {
        let s = self.g.shape(x);
        let y = self.g.activation(name, &[1, s[1] / 2, s[2] / 2, s[3]]);
        self.g.op(
            BuiltinOp::MAX_POOL_2D,
            vec![x],
            vec![y],
            BuiltinOptions::Pool2D(unet_graph::pool_options()),
        );
        y
    }

    fn upsample(&mut self, name: &str, x: i32, _out_c: usize) -> i32 {
        let conv = self
            .ups
            .next()
            .expect("the U-Net has one upsampling per decoder level");
        let s = self.g.shape(x);
        let (h, w) = (2 * s[1], 2 * s[2]);
        match conv {
            Some(conv) => {
                let dims = conv.weight.dims();
                let [i, o, kh, kw] = dims;
                let weight = iohw_to_ohwi(&values(conv.weight.val()), dims);
                let output_shape = [1, h as i32, w as i32, o as i32];
                let shape_t = self.g.tensor(
                    &format!("{name}/output_shape"),
                    &[4],
                    TensorType::Int32,
                    Some(i32_bytes(&output_shape)),
                );
                let w_t = self.g.tensor(
                    &format!("{name}/kernel"),
                    &[o, kh, kw, i],
                    TensorType::Float32,
                    Some(f32_bytes(&weight)),
                );
                let b_t = self.g.tensor(
                    &format!("{name}/bias"),
                    &[o],
                    TensorType::Float32,
                    Some(f32_bytes(&values(conv.bias.val()))),
                );
                let y = self.g.activation(name, &[1, h, w, o]);
                self.g.op(
                    BuiltinOp::TRANSPOSE_CONV,
                    vec![shape_t, w_t, x, b_t],
                    vec![y],
                    BuiltinOptions::TransposeConv(unet_graph::transpose_conv_options()),
                );
                y
            }
            None => {
                let size_t = self.g.tensor(
                    &format!("{name}/size"),
                    &[2],
                    TensorType::Int32,
                    Some(i32_bytes(&[h as i32, w as i32])),
                );
                let y = self.g.activation(name, &[1, h, w, s[3]]);
                let options = ResizeOptions {
                    align_corners: false,
                    half_pixel_centers: false,
                };
                self.g.op(
                    BuiltinOp::RESIZE_NEAREST_NEIGHBOR,
                    vec![x, size_t],
                    vec![y],
                    BuiltinOptions::ResizeNearestNeighbor(options),
                );
                y
            }
        }
    }

    fn concat(&mut self, name: &str, upsampled: i32, skip: i32) -> i32 {
        let (sa, sb) = (self.g.shape(upsampled), self.g.shape(skip));
        let y = self.g.activation(name, &[1, sa[1], sa[2], sa[3] + sb[3]]);
        self.g.op(
            BuiltinOp::CONCATENATION,
            vec![upsampled, skip],
            vec![y],
            BuiltinOptions::Concatenation(unet_graph::concat_options()),
        );
        y
    }

    fn sigmoid(&mut self, logits: i32) -> i32 {
        let output = self.g.activation(OUTPUT_NAME, &self.g.shape(logits));
        self.g.op(
            BuiltinOp::LOGISTIC,
            vec![logits],
            vec![output],
            BuiltinOptions::None,
        );
        output
    }
}

fn conv_weights(weight: &Tensor<4>, bias: &Tensor<1>) -> (Vec<f32>, [usize; 4], Vec<f32>) {
    (values(weight.clone()), weight.dims(), values(bias.clone()))
}

/// Exports `model` as a float32 TFLite model (NHWC, batch 1, static `size × size` input), layer
/// by layer as [`unet_graph::emit_unet`] orders them.
pub fn export_float(model: &UNet) -> Model {
    let c3 = |c: &Conv3x3| conv_weights(&c.weight.val(), &c.bias.val());
    let convs = vec![
        c3(&model.encode_a0),
        c3(&model.encode_a1),
        c3(&model.encode_b0),
        c3(&model.encode_b1),
        c3(&model.encode_c0),
        c3(&model.encode_c1),
        c3(&model.encode_d0),
        c3(&model.encode_d1),
        c3(&model.encode_e0),
        c3(&model.encode_e1),
        c3(&model.decode_c0),
        c3(&model.decode_c1),
        c3(&model.decode_b0),
        c3(&model.decode_b1),
        c3(&model.decode_a0),
        c3(&model.decode_a1),
        c3(&model.conv_out0),
        c3(&model.conv_out1),
        conv_weights(&model.prediction.weight.val(), &model.prediction.bias.val()),
    ];
    let ups = vec![
        &model.transconv_e,
        &model.transconv_c,
        &model.transconv_b,
        &model.transconv_a,
    ];
    let fms = convs[0].1[0];
    let mut exporter = Exporter {
        g: GraphBuilder::new(),
        convs: convs.into_iter(),
        ups: ups.into_iter(),
    };
    let (input, output) = emit_unet(&mut exporter, model.size, 1, fms);
    let g = exporter.g;

    let subgraph = Subgraph {
        name: "main".to_string(),
        tensors: g.tensors,
        inputs: vec![input],
        outputs: vec![output],
        operators: g.operators,
    };
    Model {
        description: format!(
            "unet-train {} export_float (IntelAI 2D U-Net)",
            env!("CARGO_PKG_VERSION")
        ),
        subgraphs: vec![subgraph],
        buffers: g.buffers,
        metadata: Vec::new(),
        signature_defs: vec![SignatureDef {
            signature_key: "serving_default".to_string(),
            inputs: vec![TensorMap {
                name: INPUT_NAME.to_string(),
                tensor_index: input as u32,
            }],
            outputs: vec![TensorMap {
                name: OUTPUT_NAME.to_string(),
                tensor_index: output as u32,
            }],
            subgraph_index: 0,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_layouts_transpose_as_tflite_expects() {
        // [O=2, I=3, 1, 2]
        let w: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let ohwi = oihw_to_ohwi(&w, [2, 3, 1, 2]);
        // out[o][0][x][i] = w[o][i][0][x]
        assert_eq!(ohwi[0..6], [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]);
        // transposed conv [I=3, O=2, 1, 2] → [O, 1, 2, I]
        let t = iohw_to_ohwi(&w, [3, 2, 1, 2]);
        // out[o=0][0][x=0][i] = w[i][0][0][0] = i*4
        assert_eq!(t[0..3], [0.0, 4.0, 8.0]);
        assert_eq!(t[6..9], [2.0, 6.0, 10.0]);
    }
}
