//! The writer: owned IR → TFLite flatbuffer bytes.
//!
//! [`finalize`] fills in what every model we write carries (op versions, the description, the
//! `serving_default` signature, `min_runtime_version` metadata, the `buffers[0]` sentinel) and
//! checks the model; the serialiser then emits it with the generated bindings. The same IR always
//! gives the same bytes: nothing depends on time, addresses or hash order.

use crate::check::check_model;
use crate::error::Error;
use crate::fb;
use crate::ir::{
    Activation, Buffer, BuiltinOp, BuiltinOptions, Metadata, Model, Operator, Padding,
    SignatureDef, TensorMap, TensorType,
};
use crate::versioning;
use flatbuffers::{FlatBufferBuilder, ForwardsUOffset, Push, PushAlignment, Vector, WIPOffset};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// The name our writer puts in the model description, followed by the crate version.
pub const TOOL_NAME: &str = "tflite-writer";
/// TFLite schema version written to `Model.version`.
const SCHEMA_VERSION: u32 = 3;
/// Metadata name of the minimum runtime version string.
const MIN_RUNTIME_VERSION: &str = "min_runtime_version";
/// Size of the `min_runtime_version` buffer, as the converter writes it.
const MIN_RUNTIME_VERSION_LEN: usize = 16;
/// Alignment of constant data in the file.
const DATA_ALIGNMENT: usize = 16;

/// Serialises `model` to TFLite flatbuffer bytes (identifier `TFL3`, schema version 3).
///
/// The bytes are those of [`finalize`]`(model)`; see there for what is filled in.
pub fn write_model(model: &Model) -> Result<Vec<u8>, Error> {
    let model = finalize(model)?;
    serialize(&model)
}

/// Writes `model` to `path` atomically: the bytes go to a temporary file in the same directory,
/// which is then renamed over `path`, so a failure never leaves a half-written model.
pub fn write_model_file(model: &Model, path: &Path) -> Result<(), Error> {
    let bytes = write_model(model)?;
    Ok(artifact_io::write_atomic(path, &bytes)?)
}

/// The model exactly as [`write_model`] serialises it, so that
/// `read_model(&write_model(m)?)? == finalize(m)?`. It:
/// - adds the empty `buffers[0]` sentinel when there are no buffers;
/// - computes the version of every operator whose `version` is 0 ([`versioning::op_version`]);
/// - names the tool in the description (`tflite-writer 0.1.0`, or `tflite-writer 0.1.0: <yours>`);
/// - adds a `serving_default` signature over subgraph 0 when there is no signature;
/// - sets the `min_runtime_version` metadata (a 16-byte NUL-padded string, as the converter
///   writes it) from the operators and their versions;
/// - then checks the result ([`check_model`]).
pub fn finalize(model: &Model) -> Result<Model, Error> {
    let mut model = model.clone();
    if model.buffers.is_empty() {
        model.buffers.push(Buffer::default());
    }
    for subgraph in &mut model.subgraphs {
        for op_idx in 0..subgraph.operators.len() {
            if subgraph.operators[op_idx].version == 0 {
                let version = versioning::op_version(subgraph, &subgraph.operators[op_idx]);
                subgraph.operators[op_idx].version = version;
            }
        }
    }
    let tool = format!("{TOOL_NAME} {}", env!("CARGO_PKG_VERSION"));
    if !model.description.starts_with(TOOL_NAME) {
        model.description = if model.description.is_empty() {
            tool
        } else {
            format!("{tool}: {}", model.description)
        };
    }
    if model.signature_defs.is_empty()
        && let Some(main) = model.subgraphs.first()
    {
        let mut used = HashSet::new();
        let mut entry = |prefix: &str, i: usize, tensor_index: i32| {
            let tensor_name = usize::try_from(tensor_index)
                .ok()
                .and_then(|t| main.tensors.get(t))
                .map(|t| t.name.clone())
                .unwrap_or_default();
            let name = if !tensor_name.is_empty() && used.insert(tensor_name.clone()) {
                tensor_name
            } else {
                let fallback = format!("{prefix}_{i}");
                used.insert(fallback.clone());
                fallback
            };
            TensorMap {
                name,
                tensor_index: tensor_index.max(0) as u32,
            }
        };
        let inputs = main
            .inputs
            .iter()
            .enumerate()
            .map(|(i, &t)| entry("input", i, t))
            .collect();
        let outputs = main
            .outputs
            .iter()
            .enumerate()
            .map(|(i, &t)| entry("output", i, t))
            .collect();
        model.signature_defs.push(SignatureDef {
            signature_key: "serving_default".into(),
            inputs,
            outputs,
            subgraph_index: 0,
        });
    }
    let ops = model
        .subgraphs
        .iter()
        .flat_map(|sg| sg.operators.iter().map(|op| (op.op, op.version)));
    if let Some(version) = versioning::min_runtime_version(ops)
        && version.len() < MIN_RUNTIME_VERSION_LEN
    {
        let mut data = version.as_bytes().to_vec();
        data.resize(MIN_RUNTIME_VERSION_LEN, 0);
        let existing = model.metadata.iter().position(|m| {
            m.name == MIN_RUNTIME_VERSION
                && m.buffer != 0
                && (m.buffer as usize) < model.buffers.len()
        });
        match existing {
            Some(md_idx) => {
                let buffer = model.metadata[md_idx].buffer as usize;
                model.buffers[buffer].data = data;
            }
            None => {
                model.metadata.retain(|m| m.name != MIN_RUNTIME_VERSION);
                model.buffers.push(Buffer { data });
                model.metadata.push(Metadata {
                    name: MIN_RUNTIME_VERSION.into(),
                    buffer: (model.buffers.len() - 1) as u32,
                });
            }
        }
    }
    check_model(&model)?;
    Ok(model)
}

/// A zero-sized push that only aligns the builder to 16 bytes (and raises its minimum
/// alignment, so the finished buffer keeps that alignment).
struct Align16;

impl Push for Align16 {
    type Output = ();

    // SAFETY: nothing is written; the size is 0, so any `dst` is large enough.
    unsafe fn push(&self, _dst: &mut [u8], _written_len: usize) {}

    fn size() -> usize {
        0
    }

    fn alignment() -> PushAlignment {
        PushAlignment::new(DATA_ALIGNMENT)
    }
}

/// Creates a byte vector whose first data byte is 16-byte aligned in the finished file
/// (the schema's `force_align: 16`, which flatc's Rust generator does not implement).
fn aligned_bytes<'fbb>(
    fbb: &mut FlatBufferBuilder<'fbb>,
    data: &[u8],
) -> WIPOffset<Vector<'fbb, u8>> {
    fbb.push(Align16);
    // The builder writes back to front: after the data is pushed, the data's start must lie a
    // multiple of 16 bytes before the end, so pad until `used + len` is a multiple of 16.
    let pad = (DATA_ALIGNMENT - (fbb.unfinished_data().len() + data.len()) % DATA_ALIGNMENT)
        % DATA_ALIGNMENT;
    for _ in 0..pad {
        fbb.push(0u8);
    }
    fbb.create_vector(data)
}

fn padding_code(padding: Padding) -> fb::Padding {
    match padding {
        Padding::Same => fb::Padding::SAME,
        Padding::Valid => fb::Padding::VALID,
    }
}

fn activation_code(activation: Activation) -> fb::ActivationFunctionType {
    fb::ActivationFunctionType(match activation {
        Activation::None => 0,
        Activation::Relu => 1,
        Activation::ReluN1To1 => 2,
        Activation::Relu6 => 3,
        Activation::Tanh => 4,
        Activation::SignBit => 5,
    })
}

/// Union type codes of options tables that have no fields: writing an empty table of the type
/// is exact.
const EMPTY_OPTION_TABLES: &[u8] = &[22, 26, 33, 36, 38, 39, 43, 48, 52, 68, 78, 89, 91];
/// `ShapeOptions`: its one field, `out_type`, is the output tensor's type.
const SHAPE_OPTIONS: u8 = 55;

fn serialize(model: &Model) -> Result<Vec<u8>, Error> {
    let estimate = model
        .buffers
        .iter()
        .map(|b| b.data.len() + DATA_ALIGNMENT)
        .sum::<usize>()
        + 64 * 1024;
    let mut fbb = FlatBufferBuilder::with_capacity(estimate.min(1 << 31));

    // Buffers first: the large data vectors, each aligned.
    let mut buffers = Vec::with_capacity(model.buffers.len());
    for buffer in &model.buffers {
        let data = (!buffer.data.is_empty()).then(|| aligned_bytes(&mut fbb, &buffer.data));
        buffers.push(fb::Buffer::create(
            &mut fbb,
            &fb::BufferArgs {
                data,
                ..Default::default()
            },
        ));
    }
    let buffers = fbb.create_vector(&buffers);

    // Operator codes, de-duplicated in order of first use.
    let mut code_index: BTreeMap<(i32, Option<String>, i32), u32> = BTreeMap::new();
    let mut codes: Vec<(BuiltinOp, Option<String>, i32)> = Vec::new();
    for subgraph in &model.subgraphs {
        for op in &subgraph.operators {
            let key = (op.op.0, op.custom_code.clone(), op.version);
            if let std::collections::btree_map::Entry::Vacant(slot) = code_index.entry(key) {
                slot.insert(codes.len() as u32);
                codes.push((op.op, op.custom_code.clone(), op.version));
            }
        }
    }
    let mut operator_codes = Vec::with_capacity(codes.len());
    for (op, custom_code, version) in &codes {
        let custom_code = custom_code.as_deref().map(|c| fbb.create_string(c));
        let deprecated = if op.0 < 127 { op.0 as i8 } else { 127 };
        operator_codes.push(fb::OperatorCode::create(
            &mut fbb,
            &fb::OperatorCodeArgs {
                deprecated_builtin_code: deprecated,
                custom_code,
                version: *version,
                builtin_code: fb::BuiltinOperator(op.0),
            },
        ));
    }
    let operator_codes = fbb.create_vector(&operator_codes);

    let mut subgraphs = Vec::with_capacity(model.subgraphs.len());
    for (sg_idx, subgraph) in model.subgraphs.iter().enumerate() {
        let mut tensors = Vec::with_capacity(subgraph.tensors.len());
        for tensor in &subgraph.tensors {
            let shape = fbb.create_vector(&tensor.shape);
            let name = fbb.create_string(&tensor.name);
            let quantization = tensor.quantization.as_ref().and_then(|q| {
                if q.scale.is_empty()
                    && q.zero_point.is_empty()
                    && q.min.is_empty()
                    && q.max.is_empty()
                {
                    return None;
                }
                let min = (!q.min.is_empty()).then(|| fbb.create_vector(&q.min));
                let max = (!q.max.is_empty()).then(|| fbb.create_vector(&q.max));
                let scale = (!q.scale.is_empty()).then(|| fbb.create_vector(&q.scale));
                let zero_point =
                    (!q.zero_point.is_empty()).then(|| fbb.create_vector(&q.zero_point));
                Some(fb::QuantizationParameters::create(
                    &mut fbb,
                    &fb::QuantizationParametersArgs {
                        min,
                        max,
                        scale,
                        zero_point,
                        quantized_dimension: q.quantized_dimension,
                        ..Default::default()
                    },
                ))
            });
            let shape_signature = tensor
                .shape_signature
                .as_ref()
                .map(|s| fbb.create_vector(s));
            tensors.push(fb::Tensor::create(
                &mut fbb,
                &fb::TensorArgs {
                    shape: Some(shape),
                    type_: fb::TensorType(tensor.dtype.code()),
                    buffer: tensor.buffer,
                    name: Some(name),
                    quantization,
                    is_variable: tensor.is_variable,
                    shape_signature,
                    has_rank: true,
                    ..Default::default()
                },
            ));
        }
        let tensors = fbb.create_vector(&tensors);
        let inputs = fbb.create_vector(&subgraph.inputs);
        let outputs = fbb.create_vector(&subgraph.outputs);
        let mut operators = Vec::with_capacity(subgraph.operators.len());
        for (op_idx, op) in subgraph.operators.iter().enumerate() {
            let key = (op.op.0, op.custom_code.clone(), op.version);
            let opcode_index = code_index[&key];
            let (options_type, options) =
                write_options(&mut fbb, subgraph, op).map_err(|problem| Error::Unwritable {
                    at: format!("subgraph {sg_idx} operator {op_idx} ({})", op.op.name()),
                    problem,
                })?;
            let inputs = fbb.create_vector(&op.inputs);
            let outputs = fbb.create_vector(&op.outputs);
            operators.push(fb::Operator::create(
                &mut fbb,
                &fb::OperatorArgs {
                    opcode_index,
                    inputs: Some(inputs),
                    outputs: Some(outputs),
                    builtin_options_type: options_type,
                    builtin_options: options,
                    ..Default::default()
                },
            ));
        }
        let operators = fbb.create_vector(&operators);
        let name = fbb.create_string(&subgraph.name);
        subgraphs.push(fb::SubGraph::create(
            &mut fbb,
            &fb::SubGraphArgs {
                tensors: Some(tensors),
                inputs: Some(inputs),
                outputs: Some(outputs),
                operators: Some(operators),
                name: Some(name),
            },
        ));
    }
    let subgraphs = fbb.create_vector(&subgraphs);

    let mut metadata = Vec::with_capacity(model.metadata.len());
    for entry in &model.metadata {
        let name = fbb.create_string(&entry.name);
        metadata.push(fb::Metadata::create(
            &mut fbb,
            &fb::MetadataArgs {
                name: Some(name),
                buffer: entry.buffer,
            },
        ));
    }
    let metadata = fbb.create_vector(&metadata);

    let mut signature_defs = Vec::with_capacity(model.signature_defs.len());
    for signature in &model.signature_defs {
        let inputs = tensor_maps(&mut fbb, &signature.inputs);
        let outputs = tensor_maps(&mut fbb, &signature.outputs);
        let key = fbb.create_string(&signature.signature_key);
        signature_defs.push(fb::SignatureDef::create(
            &mut fbb,
            &fb::SignatureDefArgs {
                inputs: Some(inputs),
                outputs: Some(outputs),
                signature_key: Some(key),
                subgraph_index: signature.subgraph_index,
            },
        ));
    }
    let signature_defs = fbb.create_vector(&signature_defs);
    let description = fbb.create_string(&model.description);

    let root = fb::Model::create(
        &mut fbb,
        &fb::ModelArgs {
            version: SCHEMA_VERSION,
            operator_codes: Some(operator_codes),
            subgraphs: Some(subgraphs),
            description: Some(description),
            buffers: Some(buffers),
            metadata_buffer: None,
            metadata: Some(metadata),
            signature_defs: Some(signature_defs),
        },
    );
    fb::finish_model_buffer(&mut fbb, root);
    Ok(fbb.finished_data().to_vec())
}

fn tensor_maps<'fbb>(
    fbb: &mut FlatBufferBuilder<'fbb>,
    maps: &[TensorMap],
) -> WIPOffset<Vector<'fbb, ForwardsUOffset<fb::TensorMap<'fbb>>>> {
    let mut offsets = Vec::with_capacity(maps.len());
    for map in maps {
        let name = fbb.create_string(&map.name);
        offsets.push(fb::TensorMap::create(
            fbb,
            &fb::TensorMapArgs {
                name: Some(name),
                tensor_index: map.tensor_index,
            },
        ));
    }
    fbb.create_vector(&offsets)
}

type OptionsOffset = Option<WIPOffset<flatbuffers::UnionWIPOffset>>;

fn write_options<'fbb>(
    fbb: &mut FlatBufferBuilder<'fbb>,
    subgraph: &crate::ir::Subgraph,
    op: &Operator,
) -> Result<(fb::BuiltinOptions, OptionsOffset), String> {
    use fb::BuiltinOptions as T;
    let (kind, table) = match &op.options {
        BuiltinOptions::None | BuiltinOptions::Untyped { options_type: 0 } => {
            return Ok((T::NONE, None));
        }
        BuiltinOptions::Conv2D(o) => (
            T::Conv2DOptions,
            fb::Conv2DOptions::create(
                fbb,
                &fb::Conv2DOptionsArgs {
                    padding: padding_code(o.padding),
                    stride_w: o.stride_w,
                    stride_h: o.stride_h,
                    fused_activation_function: activation_code(o.fused_activation),
                    dilation_w_factor: o.dilation_w,
                    dilation_h_factor: o.dilation_h,
                    quantized_bias_type: fb::TensorType::FLOAT32,
                },
            )
            .as_union_value(),
        ),
        BuiltinOptions::DepthwiseConv2D(o) => (
            T::DepthwiseConv2DOptions,
            fb::DepthwiseConv2DOptions::create(
                fbb,
                &fb::DepthwiseConv2DOptionsArgs {
                    padding: padding_code(o.padding),
                    stride_w: o.stride_w,
                    stride_h: o.stride_h,
                    depth_multiplier: o.depth_multiplier,
                    fused_activation_function: activation_code(o.fused_activation),
                    dilation_w_factor: o.dilation_w,
                    dilation_h_factor: o.dilation_h,
                },
            )
            .as_union_value(),
        ),
        BuiltinOptions::TransposeConv(o) => (
            T::TransposeConvOptions,
            fb::TransposeConvOptions::create(
                fbb,
                &fb::TransposeConvOptionsArgs {
                    padding: padding_code(o.padding),
                    stride_w: o.stride_w,
                    stride_h: o.stride_h,
                    fused_activation_function: activation_code(o.fused_activation),
                    quantized_bias_type: fb::TensorType::FLOAT32,
                },
            )
            .as_union_value(),
        ),
        BuiltinOptions::Pool2D(o) => (
            T::Pool2DOptions,
            fb::Pool2DOptions::create(
                fbb,
                &fb::Pool2DOptionsArgs {
                    padding: padding_code(o.padding),
                    stride_w: o.stride_w,
                    stride_h: o.stride_h,
                    filter_width: o.filter_width,
                    filter_height: o.filter_height,
                    fused_activation_function: activation_code(o.fused_activation),
                },
            )
            .as_union_value(),
        ),
        BuiltinOptions::Concatenation(o) => (
            T::ConcatenationOptions,
            fb::ConcatenationOptions::create(
                fbb,
                &fb::ConcatenationOptionsArgs {
                    axis: o.axis,
                    fused_activation_function: activation_code(o.fused_activation),
                },
            )
            .as_union_value(),
        ),
        BuiltinOptions::Reshape(o) => {
            let new_shape = (!o.new_shape.is_empty()).then(|| fbb.create_vector(&o.new_shape));
            (
                T::ReshapeOptions,
                fb::ReshapeOptions::create(fbb, &fb::ReshapeOptionsArgs { new_shape })
                    .as_union_value(),
            )
        }
        BuiltinOptions::StridedSlice(o) => (
            T::StridedSliceOptions,
            fb::StridedSliceOptions::create(
                fbb,
                &fb::StridedSliceOptionsArgs {
                    begin_mask: o.begin_mask,
                    end_mask: o.end_mask,
                    ellipsis_mask: o.ellipsis_mask,
                    new_axis_mask: o.new_axis_mask,
                    shrink_axis_mask: o.shrink_axis_mask,
                    offset: o.offset,
                },
            )
            .as_union_value(),
        ),
        BuiltinOptions::Pack(o) => (
            T::PackOptions,
            fb::PackOptions::create(
                fbb,
                &fb::PackOptionsArgs {
                    values_count: o.values_count,
                    axis: o.axis,
                },
            )
            .as_union_value(),
        ),
        BuiltinOptions::ResizeNearestNeighbor(o) => (
            T::ResizeNearestNeighborOptions,
            fb::ResizeNearestNeighborOptions::create(
                fbb,
                &fb::ResizeNearestNeighborOptionsArgs {
                    align_corners: o.align_corners,
                    half_pixel_centers: o.half_pixel_centers,
                },
            )
            .as_union_value(),
        ),
        BuiltinOptions::ResizeBilinear(o) => (
            T::ResizeBilinearOptions,
            fb::ResizeBilinearOptions::create(
                fbb,
                &fb::ResizeBilinearOptionsArgs {
                    align_corners: o.align_corners,
                    half_pixel_centers: o.half_pixel_centers,
                },
            )
            .as_union_value(),
        ),
        BuiltinOptions::Add(o) => (
            T::AddOptions,
            fb::AddOptions::create(
                fbb,
                &fb::AddOptionsArgs {
                    fused_activation_function: activation_code(o.fused_activation),
                    pot_scale_int16: true,
                },
            )
            .as_union_value(),
        ),
        BuiltinOptions::Mul(o) => (
            T::MulOptions,
            fb::MulOptions::create(
                fbb,
                &fb::MulOptionsArgs {
                    fused_activation_function: activation_code(o.fused_activation),
                },
            )
            .as_union_value(),
        ),
        BuiltinOptions::FullyConnected(o) => (
            T::FullyConnectedOptions,
            fb::FullyConnectedOptions::create(
                fbb,
                &fb::FullyConnectedOptionsArgs {
                    fused_activation_function: activation_code(o.fused_activation),
                    keep_num_dims: o.keep_num_dims,
                    asymmetric_quantize_inputs: o.asymmetric_quantize_inputs,
                    ..Default::default()
                },
            )
            .as_union_value(),
        ),
        BuiltinOptions::Softmax(o) => (
            T::SoftmaxOptions,
            fb::SoftmaxOptions::create(fbb, &fb::SoftmaxOptionsArgs { beta: o.beta })
                .as_union_value(),
        ),
        BuiltinOptions::Untyped { options_type } if *options_type == SHAPE_OPTIONS => {
            let out_type = op
                .outputs
                .first()
                .and_then(|&t| usize::try_from(t).ok())
                .and_then(|t| subgraph.tensors.get(t))
                .map_or(TensorType::Int32, |t| t.dtype);
            (
                T::ShapeOptions,
                fb::ShapeOptions::create(
                    fbb,
                    &fb::ShapeOptionsArgs {
                        out_type: fb::TensorType(out_type.code()),
                    },
                )
                .as_union_value(),
            )
        }
        BuiltinOptions::Untyped { options_type } if EMPTY_OPTION_TABLES.contains(options_type) => {
            // An empty table: the same bytes whichever options type it is.
            let table =
                fb::QuantizeOptions::create(fbb, &fb::QuantizeOptionsArgs {}).as_union_value();
            (T(*options_type), table)
        }
        BuiltinOptions::Untyped { options_type } => {
            return Err(format!(
                "its options (BuiltinOptions type {options_type}) have no typed form, so their values were not kept"
            ));
        }
    };
    Ok((kind, Some(table)))
}
