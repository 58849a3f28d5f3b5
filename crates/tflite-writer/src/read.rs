//! The reader: TFLite flatbuffer bytes → owned IR, verified.
//!
//! Bytes go through the flatbuffers verifier (always on), then are converted, then the model
//! passes [`check_model`]. Any failure is an [`Error`]; no input makes the reader panic (see the
//! fuzz target under `fuzz/` and the corruption tests).

use crate::check::check_model;
use crate::error::{Error, invalid};
use crate::fb;
use crate::ir::{
    Activation, Buffer, BuiltinOp, BuiltinOptions, ConcatenationOptions, Conv2DOptions,
    DepthwiseConv2DOptions, ElementwiseOptions, FullyConnectedOptions, Metadata, Model, Operator,
    PackOptions, Padding, Pool2DOptions, Quantization, ReshapeOptions, ResizeOptions, SignatureDef,
    SoftmaxOptions, StridedSliceOptions, Subgraph, Tensor, TensorMap, TensorType,
    TransposeConvOptions,
};
use std::path::Path;

/// Parses and checks a TFLite model.
pub fn read_model(bytes: &[u8]) -> Result<Model, Error> {
    if bytes.len() < 8 {
        return Err(Error::TooShort { len: bytes.len() });
    }
    if !fb::model_buffer_has_identifier(bytes) {
        return Err(Error::BadIdentifier {
            found: String::from_utf8_lossy(&bytes[4..8]).into_owned(),
        });
    }
    let root = fb::root_as_model(bytes)?;
    if root.version() != 3 {
        return Err(Error::SchemaVersion(root.version()));
    }
    let model = convert_model(&root)?;
    check_model(&model)?;
    Ok(model)
}

/// Reads and parses the model at `path`; errors name the file.
pub fn read_model_file(path: &Path) -> Result<Model, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_model(&bytes).map_err(|source| Error::InFile {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

fn convert_model(root: &fb::Model<'_>) -> Result<Model, Error> {
    let codes: Vec<(BuiltinOp, Option<String>, i32)> = root
        .operator_codes()
        .map(|codes| {
            codes
                .iter()
                .map(|code| {
                    let builtin = code
                        .builtin_code()
                        .0
                        .max(i32::from(code.deprecated_builtin_code()));
                    (
                        BuiltinOp(builtin),
                        code.custom_code().map(str::to_string),
                        code.version(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut subgraphs = Vec::new();
    for (sg_idx, subgraph) in root.subgraphs().iter().flatten().enumerate() {
        subgraphs.push(convert_subgraph(sg_idx, &subgraph, &codes)?);
    }
    let buffers = root
        .buffers()
        .iter()
        .flatten()
        .enumerate()
        .map(|(b_idx, buffer)| {
            if buffer.offset() > 1 || buffer.size() > 0 {
                return Err(invalid(
                    format!("buffer {b_idx}"),
                    "data stored outside the flatbuffer (offset/size, models over 2 GB) is not supported",
                ));
            }
            Ok(Buffer {
                data: buffer.data().map(|d| d.bytes().to_vec()).unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let metadata = root
        .metadata()
        .iter()
        .flatten()
        .map(|m| Metadata {
            name: m.name().unwrap_or_default().to_string(),
            buffer: m.buffer(),
        })
        .collect();
    let signature_defs = root
        .signature_defs()
        .iter()
        .flatten()
        .map(|s| SignatureDef {
            signature_key: s.signature_key().unwrap_or_default().to_string(),
            inputs: tensor_maps(s.inputs()),
            outputs: tensor_maps(s.outputs()),
            subgraph_index: s.subgraph_index(),
        })
        .collect();
    Ok(Model {
        description: root.description().unwrap_or_default().to_string(),
        subgraphs,
        buffers,
        metadata,
        signature_defs,
    })
}

fn tensor_maps(
    maps: Option<flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<fb::TensorMap<'_>>>>,
) -> Vec<TensorMap> {
    maps.iter()
        .flatten()
        .map(|m| TensorMap {
            name: m.name().unwrap_or_default().to_string(),
            tensor_index: m.tensor_index(),
        })
        .collect()
}

fn convert_subgraph(
    sg_idx: usize,
    subgraph: &fb::SubGraph<'_>,
    codes: &[(BuiltinOp, Option<String>, i32)],
) -> Result<Subgraph, Error> {
    let mut tensors = Vec::new();
    for (t_idx, tensor) in subgraph.tensors().iter().flatten().enumerate() {
        if tensor.sparsity().is_some() {
            return Err(invalid(
                format!("subgraph {sg_idx} tensor {t_idx}"),
                "sparse tensors are not supported",
            ));
        }
        let quantization = tensor.quantization().and_then(|q| {
            let to_vec_f32 = |v: Option<flatbuffers::Vector<'_, f32>>| {
                v.map(|v| v.iter().collect()).unwrap_or_default()
            };
            let quant = Quantization {
                scale: to_vec_f32(q.scale()),
                zero_point: q
                    .zero_point()
                    .map(|v| v.iter().collect())
                    .unwrap_or_default(),
                quantized_dimension: q.quantized_dimension(),
                min: to_vec_f32(q.min()),
                max: to_vec_f32(q.max()),
            };
            let empty = quant.scale.is_empty()
                && quant.zero_point.is_empty()
                && quant.min.is_empty()
                && quant.max.is_empty();
            (!empty).then_some(quant)
        });
        tensors.push(Tensor {
            name: tensor.name().unwrap_or_default().to_string(),
            shape: tensor
                .shape()
                .map(|s| s.iter().collect())
                .unwrap_or_default(),
            shape_signature: tensor.shape_signature().map(|s| s.iter().collect()),
            dtype: TensorType::from_code(tensor.type_().0),
            buffer: tensor.buffer(),
            quantization,
            is_variable: tensor.is_variable(),
        });
    }
    let mut operators = Vec::new();
    for (op_idx, op) in subgraph.operators().iter().flatten().enumerate() {
        let at = || format!("subgraph {sg_idx} operator {op_idx}");
        let Some((code, custom_code, version)) = codes.get(op.opcode_index() as usize) else {
            return Err(invalid(
                at(),
                format!(
                    "opcode index {} out of range (model has {} operator codes)",
                    op.opcode_index(),
                    codes.len()
                ),
            ));
        };
        let options = convert_options(&op)
            .map_err(|problem| invalid(format!("{} ({})", at(), code.name()), problem))?;
        operators.push(Operator {
            op: *code,
            custom_code: custom_code.clone(),
            version: *version,
            inputs: op.inputs().map(|v| v.iter().collect()).unwrap_or_default(),
            outputs: op.outputs().map(|v| v.iter().collect()).unwrap_or_default(),
            options,
        });
    }
    Ok(Subgraph {
        name: subgraph.name().unwrap_or_default().to_string(),
        tensors,
        inputs: subgraph
            .inputs()
            .map(|v| v.iter().collect())
            .unwrap_or_default(),
        outputs: subgraph
            .outputs()
            .map(|v| v.iter().collect())
            .unwrap_or_default(),
        operators,
    })
}

fn padding(code: fb::Padding) -> Result<Padding, String> {
    match code.0 {
        0 => Ok(Padding::Same),
        1 => Ok(Padding::Valid),
        other => Err(format!("unknown padding code {other}")),
    }
}

fn activation(code: fb::ActivationFunctionType) -> Result<Activation, String> {
    Ok(match code.0 {
        0 => Activation::None,
        1 => Activation::Relu,
        2 => Activation::ReluN1To1,
        3 => Activation::Relu6,
        4 => Activation::Tanh,
        5 => Activation::SignBit,
        other => return Err(format!("unknown fused activation code {other}")),
    })
}

/// `quantized_bias_type` (16x8 models) has no place in the IR: accepted when unset or INT64 (what
/// TensorFlow's 16x8 converter writes, and what an unset field means for an int64 bias), both
/// written back unset; INT32 (an int32 bias in a 16x8 model, which LiteRT reads differently) is
/// refused.
fn no_bias_type(bias_type: fb::TensorType) -> Result<(), String> {
    if bias_type.0 == 0 || bias_type == fb::TensorType::INT64 {
        Ok(())
    } else {
        Err(format!(
            "quantized_bias_type {} (an int32 bias in a 16x8 model) is not supported",
            bias_type.0
        ))
    }
}

fn convert_options(op: &fb::Operator<'_>) -> Result<BuiltinOptions, String> {
    use fb::BuiltinOptions as T;
    let kind = op.builtin_options_type();
    let missing = || format!("options type {} without an options table", kind.0);
    Ok(match kind {
        T::NONE => BuiltinOptions::None,
        T::Conv2DOptions => {
            let o = op
                .builtin_options_as_conv_2_doptions()
                .ok_or_else(missing)?;
            no_bias_type(o.quantized_bias_type())?;
            BuiltinOptions::Conv2D(Conv2DOptions {
                padding: padding(o.padding())?,
                stride_w: o.stride_w(),
                stride_h: o.stride_h(),
                fused_activation: activation(o.fused_activation_function())?,
                dilation_w: o.dilation_w_factor(),
                dilation_h: o.dilation_h_factor(),
            })
        }
        T::DepthwiseConv2DOptions => {
            let o = op
                .builtin_options_as_depthwise_conv_2_doptions()
                .ok_or_else(missing)?;
            BuiltinOptions::DepthwiseConv2D(DepthwiseConv2DOptions {
                padding: padding(o.padding())?,
                stride_w: o.stride_w(),
                stride_h: o.stride_h(),
                depth_multiplier: o.depth_multiplier(),
                fused_activation: activation(o.fused_activation_function())?,
                dilation_w: o.dilation_w_factor(),
                dilation_h: o.dilation_h_factor(),
            })
        }
        T::TransposeConvOptions => {
            let o = op
                .builtin_options_as_transpose_conv_options()
                .ok_or_else(missing)?;
            no_bias_type(o.quantized_bias_type())?;
            BuiltinOptions::TransposeConv(TransposeConvOptions {
                padding: padding(o.padding())?,
                stride_w: o.stride_w(),
                stride_h: o.stride_h(),
                fused_activation: activation(o.fused_activation_function())?,
            })
        }
        T::Pool2DOptions => {
            let o = op
                .builtin_options_as_pool_2_doptions()
                .ok_or_else(missing)?;
            BuiltinOptions::Pool2D(Pool2DOptions {
                padding: padding(o.padding())?,
                stride_w: o.stride_w(),
                stride_h: o.stride_h(),
                filter_width: o.filter_width(),
                filter_height: o.filter_height(),
                fused_activation: activation(o.fused_activation_function())?,
            })
        }
        T::ConcatenationOptions => {
            let o = op
                .builtin_options_as_concatenation_options()
                .ok_or_else(missing)?;
            BuiltinOptions::Concatenation(ConcatenationOptions {
                axis: o.axis(),
                fused_activation: activation(o.fused_activation_function())?,
            })
        }
        T::ReshapeOptions => {
            let o = op
                .builtin_options_as_reshape_options()
                .ok_or_else(missing)?;
            BuiltinOptions::Reshape(ReshapeOptions {
                new_shape: o
                    .new_shape()
                    .map(|v| v.iter().collect())
                    .unwrap_or_default(),
            })
        }
        T::StridedSliceOptions => {
            let o = op
                .builtin_options_as_strided_slice_options()
                .ok_or_else(missing)?;
            BuiltinOptions::StridedSlice(StridedSliceOptions {
                begin_mask: o.begin_mask(),
                end_mask: o.end_mask(),
                ellipsis_mask: o.ellipsis_mask(),
                new_axis_mask: o.new_axis_mask(),
                shrink_axis_mask: o.shrink_axis_mask(),
                offset: o.offset(),
            })
        }
        T::PackOptions => {
            let o = op.builtin_options_as_pack_options().ok_or_else(missing)?;
            BuiltinOptions::Pack(PackOptions {
                values_count: o.values_count(),
                axis: o.axis(),
            })
        }
        T::ResizeNearestNeighborOptions => {
            let o = op
                .builtin_options_as_resize_nearest_neighbor_options()
                .ok_or_else(missing)?;
            BuiltinOptions::ResizeNearestNeighbor(ResizeOptions {
                align_corners: o.align_corners(),
                half_pixel_centers: o.half_pixel_centers(),
            })
        }
        T::ResizeBilinearOptions => {
            let o = op
                .builtin_options_as_resize_bilinear_options()
                .ok_or_else(missing)?;
            BuiltinOptions::ResizeBilinear(ResizeOptions {
                align_corners: o.align_corners(),
                half_pixel_centers: o.half_pixel_centers(),
            })
        }
        T::AddOptions => {
            let o = op.builtin_options_as_add_options().ok_or_else(missing)?;
            if !o.pot_scale_int16() {
                return Err(
                    "AddOptions.pot_scale_int16 = false (int16 ADD) is not supported".into(),
                );
            }
            BuiltinOptions::Add(ElementwiseOptions {
                fused_activation: activation(o.fused_activation_function())?,
            })
        }
        T::MulOptions => {
            let o = op.builtin_options_as_mul_options().ok_or_else(missing)?;
            BuiltinOptions::Mul(ElementwiseOptions {
                fused_activation: activation(o.fused_activation_function())?,
            })
        }
        T::FullyConnectedOptions => {
            let o = op
                .builtin_options_as_fully_connected_options()
                .ok_or_else(missing)?;
            no_bias_type(o.quantized_bias_type())?;
            if o.weights_format().0 != 0 {
                return Err(format!(
                    "fully-connected weights format {} is not supported",
                    o.weights_format().0
                ));
            }
            BuiltinOptions::FullyConnected(FullyConnectedOptions {
                fused_activation: activation(o.fused_activation_function())?,
                keep_num_dims: o.keep_num_dims(),
                asymmetric_quantize_inputs: o.asymmetric_quantize_inputs(),
            })
        }
        T::SoftmaxOptions => {
            let o = op
                .builtin_options_as_softmax_options()
                .ok_or_else(missing)?;
            BuiltinOptions::Softmax(SoftmaxOptions { beta: o.beta() })
        }
        other => BuiltinOptions::Untyped {
            options_type: other.0,
        },
    })
}
