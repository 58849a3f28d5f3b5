//! The owned intermediate representation of a TFLite model.
//!
//! Plain data, mirroring the TFLite schema (version 3) closely enough that reading and writing
//! loses nothing we need, but owned and easy to build and rewrite. Operators carry their opcode
//! inline; the writer de-duplicates them into `operator_codes`.

use serde::Serialize;

/// Element type of a tensor (`TensorType` in the schema; the discriminants are the schema codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum TensorType {
    /// 32-bit float (code 0).
    Float32,
    /// 16-bit float (code 1).
    Float16,
    /// 32-bit signed integer (code 2).
    Int32,
    /// 8-bit unsigned integer (code 3).
    UInt8,
    /// 64-bit signed integer (code 4).
    Int64,
    /// Boolean, one byte (code 6).
    Bool,
    /// 16-bit signed integer (code 7).
    Int16,
    /// 8-bit signed integer (code 9).
    Int8,
    /// Any other schema code, kept so that reading never loses a tensor.
    Other(i8),
}

impl TensorType {
    /// The schema code of this type.
    pub fn code(self) -> i8 {
        match self {
            TensorType::Float32 => 0,
            TensorType::Float16 => 1,
            TensorType::Int32 => 2,
            TensorType::UInt8 => 3,
            TensorType::Int64 => 4,
            TensorType::Bool => 6,
            TensorType::Int16 => 7,
            TensorType::Int8 => 9,
            TensorType::Other(code) => code,
        }
    }

    /// The type for a schema code.
    pub fn from_code(code: i8) -> Self {
        match code {
            0 => TensorType::Float32,
            1 => TensorType::Float16,
            2 => TensorType::Int32,
            3 => TensorType::UInt8,
            4 => TensorType::Int64,
            6 => TensorType::Bool,
            7 => TensorType::Int16,
            9 => TensorType::Int8,
            other => TensorType::Other(other),
        }
    }

    /// Bytes per element, or `None` for a type whose size we do not know.
    pub fn size_bytes(self) -> Option<usize> {
        match self {
            TensorType::Float32 | TensorType::Int32 => Some(4),
            TensorType::Float16 | TensorType::Int16 => Some(2),
            TensorType::UInt8 | TensorType::Int8 | TensorType::Bool => Some(1),
            TensorType::Int64 => Some(8),
            TensorType::Other(_) => None,
        }
    }

    /// The schema's upper-case name (`FLOAT32`, `INT8`, …).
    pub fn name(self) -> String {
        match self {
            TensorType::Float32 => "FLOAT32".into(),
            TensorType::Float16 => "FLOAT16".into(),
            TensorType::Int32 => "INT32".into(),
            TensorType::UInt8 => "UINT8".into(),
            TensorType::Int64 => "INT64".into(),
            TensorType::Bool => "BOOL".into(),
            TensorType::Int16 => "INT16".into(),
            TensorType::Int8 => "INT8".into(),
            TensorType::Other(code) => format!("TYPE_{code}"),
        }
    }
}

/// Affine quantization of a tensor: `real = scale · (q − zero_point)`, per tensor or per axis.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Quantization {
    /// One scale (per tensor) or one per slice along `quantized_dimension`.
    pub scale: Vec<f32>,
    /// Zero points, same length as `scale` (int64 in the schema).
    pub zero_point: Vec<i64>,
    /// The axis that per-axis parameters run along.
    pub quantized_dimension: i32,
    /// Optional calibration minimums (kept when read, rarely written).
    pub min: Vec<f32>,
    /// Optional calibration maximums (kept when read, rarely written).
    pub max: Vec<f32>,
}

impl Quantization {
    /// Per-tensor parameters.
    pub fn per_tensor(scale: f32, zero_point: i64) -> Self {
        Self {
            scale: vec![scale],
            zero_point: vec![zero_point],
            ..Self::default()
        }
    }

    /// Per-axis parameters with zero points of 0 (symmetric weights, int32 bias).
    pub fn per_axis(scales: Vec<f32>, quantized_dimension: i32) -> Self {
        let zero_point = vec![0; scales.len()];
        Self {
            scale: scales,
            zero_point,
            quantized_dimension,
            ..Self::default()
        }
    }

    /// True when there is exactly one scale.
    pub fn is_per_tensor(&self) -> bool {
        self.scale.len() == 1
    }
}

/// A tensor of a subgraph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tensor {
    /// Name, as the converter or the exporter gave it.
    pub name: String,
    /// Static shape (NHWC for activations, OHWI for conv weights).
    pub shape: Vec<i32>,
    /// Optional signature shape, where -1 marks a dynamic dimension.
    pub shape_signature: Option<Vec<i32>>,
    /// Element type.
    pub dtype: TensorType,
    /// Index into `Model::buffers`; 0 (the empty sentinel) for tensors without constant data.
    pub buffer: u32,
    /// Quantization parameters, if any.
    pub quantization: Option<Quantization>,
    /// True for variable (stateful) tensors.
    pub is_variable: bool,
}

impl Tensor {
    /// Number of elements (product of `shape`; 1 for a scalar). Negative dims count as 0; a
    /// product beyond `usize::MAX` saturates (only reachable with absurd shapes from bad files).
    pub fn num_elements(&self) -> usize {
        self.shape
            .iter()
            .fold(1usize, |acc, &d| acc.saturating_mul(d.max(0) as usize))
    }

    /// Size of the tensor's data in bytes, when the element size is known (saturating).
    pub fn size_bytes(&self) -> Option<usize> {
        self.dtype
            .size_bytes()
            .map(|s| s.saturating_mul(self.num_elements()))
    }
}

/// A constant data buffer. `Model::buffers[0]` is always the empty sentinel.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Buffer {
    /// Raw little-endian bytes.
    pub data: Vec<u8>,
}

/// A builtin operator code (`BuiltinOperator` in the schema). A newtype, so that codes we do not
/// know are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct BuiltinOp(pub i32);

impl BuiltinOp {
    /// ADD.
    pub const ADD: Self = Self(0);
    /// AVERAGE_POOL_2D.
    pub const AVERAGE_POOL_2D: Self = Self(1);
    /// CONCATENATION.
    pub const CONCATENATION: Self = Self(2);
    /// CONV_2D.
    pub const CONV_2D: Self = Self(3);
    /// DEPTHWISE_CONV_2D.
    pub const DEPTHWISE_CONV_2D: Self = Self(4);
    /// DEQUANTIZE.
    pub const DEQUANTIZE: Self = Self(6);
    /// FULLY_CONNECTED.
    pub const FULLY_CONNECTED: Self = Self(9);
    /// LOGISTIC.
    pub const LOGISTIC: Self = Self(14);
    /// MAX_POOL_2D.
    pub const MAX_POOL_2D: Self = Self(17);
    /// MUL.
    pub const MUL: Self = Self(18);
    /// RELU.
    pub const RELU: Self = Self(19);
    /// RESHAPE.
    pub const RESHAPE: Self = Self(22);
    /// RESIZE_BILINEAR.
    pub const RESIZE_BILINEAR: Self = Self(23);
    /// SOFTMAX.
    pub const SOFTMAX: Self = Self(25);
    /// STRIDED_SLICE.
    pub const STRIDED_SLICE: Self = Self(45);
    /// TRANSPOSE_CONV.
    pub const TRANSPOSE_CONV: Self = Self(67);
    /// SHAPE.
    pub const SHAPE: Self = Self(77);
    /// PACK.
    pub const PACK: Self = Self(83);
    /// RESIZE_NEAREST_NEIGHBOR.
    pub const RESIZE_NEAREST_NEIGHBOR: Self = Self(97);
    /// QUANTIZE.
    pub const QUANTIZE: Self = Self(114);
    /// DEPTH_TO_SPACE.
    pub const DEPTH_TO_SPACE: Self = Self(5);
    /// RELU_N1_TO_1.
    pub const RELU_N1_TO_1: Self = Self(20);
    /// RELU6.
    pub const RELU6: Self = Self(21);
    /// SPACE_TO_DEPTH.
    pub const SPACE_TO_DEPTH: Self = Self(26);
    /// TANH.
    pub const TANH: Self = Self(28);
    /// CUSTOM.
    pub const CUSTOM: Self = Self(32);
    /// PAD.
    pub const PAD: Self = Self(34);
    /// GATHER.
    pub const GATHER: Self = Self(36);
    /// TRANSPOSE.
    pub const TRANSPOSE: Self = Self(39);
    /// MEAN.
    pub const MEAN: Self = Self(40);
    /// SUB.
    pub const SUB: Self = Self(41);
    /// DIV.
    pub const DIV: Self = Self(42);
    /// SQUEEZE.
    pub const SQUEEZE: Self = Self(43);
    /// MAXIMUM.
    pub const MAXIMUM: Self = Self(55);
    /// MINIMUM.
    pub const MINIMUM: Self = Self(57);
    /// PADV2.
    pub const PADV2: Self = Self(60);
    /// SLICE.
    pub const SLICE: Self = Self(65);
    /// EXPAND_DIMS.
    pub const EXPAND_DIMS: Self = Self(70);
    /// SUM.
    pub const SUM: Self = Self(74);
    /// LEAKY_RELU.
    pub const LEAKY_RELU: Self = Self(98);
    /// ABS.
    pub const ABS: Self = Self(101);
    /// HARD_SWISH.
    pub const HARD_SWISH: Self = Self(117);

    /// The schema's name for the codes listed above, `BUILTIN_<code>` for others.
    pub fn name(self) -> String {
        let known = match self {
            Self::ADD => "ADD",
            Self::AVERAGE_POOL_2D => "AVERAGE_POOL_2D",
            Self::CONCATENATION => "CONCATENATION",
            Self::CONV_2D => "CONV_2D",
            Self::DEPTHWISE_CONV_2D => "DEPTHWISE_CONV_2D",
            Self::DEQUANTIZE => "DEQUANTIZE",
            Self::FULLY_CONNECTED => "FULLY_CONNECTED",
            Self::LOGISTIC => "LOGISTIC",
            Self::MAX_POOL_2D => "MAX_POOL_2D",
            Self::MUL => "MUL",
            Self::RELU => "RELU",
            Self::RESHAPE => "RESHAPE",
            Self::RESIZE_BILINEAR => "RESIZE_BILINEAR",
            Self::SOFTMAX => "SOFTMAX",
            Self::STRIDED_SLICE => "STRIDED_SLICE",
            Self::TRANSPOSE_CONV => "TRANSPOSE_CONV",
            Self::SHAPE => "SHAPE",
            Self::PACK => "PACK",
            Self::RESIZE_NEAREST_NEIGHBOR => "RESIZE_NEAREST_NEIGHBOR",
            Self::QUANTIZE => "QUANTIZE",
            Self::DEPTH_TO_SPACE => "DEPTH_TO_SPACE",
            Self::RELU_N1_TO_1 => "RELU_N1_TO_1",
            Self::RELU6 => "RELU6",
            Self::SPACE_TO_DEPTH => "SPACE_TO_DEPTH",
            Self::TANH => "TANH",
            Self::CUSTOM => "CUSTOM",
            Self::PAD => "PAD",
            Self::GATHER => "GATHER",
            Self::TRANSPOSE => "TRANSPOSE",
            Self::MEAN => "MEAN",
            Self::SUB => "SUB",
            Self::DIV => "DIV",
            Self::SQUEEZE => "SQUEEZE",
            Self::MAXIMUM => "MAXIMUM",
            Self::MINIMUM => "MINIMUM",
            Self::PADV2 => "PADV2",
            Self::SLICE => "SLICE",
            Self::EXPAND_DIMS => "EXPAND_DIMS",
            Self::SUM => "SUM",
            Self::LEAKY_RELU => "LEAKY_RELU",
            Self::ABS => "ABS",
            Self::HARD_SWISH => "HARD_SWISH",
            BuiltinOp(code) => return format!("BUILTIN_{code}"),
        };
        known.to_string()
    }
}

/// Padding scheme of convolutions and pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Padding {
    /// Output size `ceil(in / stride)` (code 0).
    #[default]
    Same,
    /// No padding (code 1).
    Valid,
}

/// Fused activation function (`ActivationFunctionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Activation {
    /// No activation (code 0).
    #[default]
    None,
    /// max(x, 0) (code 1).
    Relu,
    /// clamp(x, -1, 1) (code 2).
    ReluN1To1,
    /// clamp(x, 0, 6) (code 3).
    Relu6,
    /// tanh (code 4).
    Tanh,
    /// sign bit (code 5).
    SignBit,
}

/// CONV_2D options.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Conv2DOptions {
    /// Padding scheme.
    pub padding: Padding,
    /// Horizontal stride.
    pub stride_w: i32,
    /// Vertical stride.
    pub stride_h: i32,
    /// Fused activation.
    pub fused_activation: Activation,
    /// Horizontal dilation (1 = none).
    pub dilation_w: i32,
    /// Vertical dilation (1 = none).
    pub dilation_h: i32,
}

/// DEPTHWISE_CONV_2D options.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DepthwiseConv2DOptions {
    /// Padding scheme.
    pub padding: Padding,
    /// Horizontal stride.
    pub stride_w: i32,
    /// Vertical stride.
    pub stride_h: i32,
    /// Output channels per input channel.
    pub depth_multiplier: i32,
    /// Fused activation.
    pub fused_activation: Activation,
    /// Horizontal dilation (1 = none).
    pub dilation_w: i32,
    /// Vertical dilation (1 = none).
    pub dilation_h: i32,
}

/// TRANSPOSE_CONV options.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TransposeConvOptions {
    /// Padding scheme.
    pub padding: Padding,
    /// Horizontal stride.
    pub stride_w: i32,
    /// Vertical stride.
    pub stride_h: i32,
    /// Fused activation (op version 4 and later when not NONE).
    pub fused_activation: Activation,
}

/// MAX_POOL_2D and AVERAGE_POOL_2D options.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pool2DOptions {
    /// Padding scheme.
    pub padding: Padding,
    /// Horizontal stride.
    pub stride_w: i32,
    /// Vertical stride.
    pub stride_h: i32,
    /// Window width.
    pub filter_width: i32,
    /// Window height.
    pub filter_height: i32,
    /// Fused activation.
    pub fused_activation: Activation,
}

/// CONCATENATION options.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ConcatenationOptions {
    /// Axis (negative counts from the end).
    pub axis: i32,
    /// Fused activation.
    pub fused_activation: Activation,
}

/// RESHAPE options.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReshapeOptions {
    /// The new shape, when given as an option rather than a shape tensor.
    pub new_shape: Vec<i32>,
}

/// STRIDED_SLICE options.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct StridedSliceOptions {
    /// Bit mask of dims whose begin is ignored.
    pub begin_mask: i32,
    /// Bit mask of dims whose end is ignored.
    pub end_mask: i32,
    /// Bit mask of the ellipsis dim.
    pub ellipsis_mask: i32,
    /// Bit mask of new axes.
    pub new_axis_mask: i32,
    /// Bit mask of dims that are removed.
    pub shrink_axis_mask: i32,
    /// `end` is an offset from `begin`.
    pub offset: bool,
}

/// PACK options.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PackOptions {
    /// Number of packed inputs.
    pub values_count: i32,
    /// Axis of the new dimension.
    pub axis: i32,
}

/// RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR options.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct ResizeOptions {
    /// Align corner pixels.
    pub align_corners: bool,
    /// Sample at pixel centres.
    pub half_pixel_centers: bool,
}

/// ADD and MUL options.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct ElementwiseOptions {
    /// Fused activation.
    pub fused_activation: Activation,
}

/// FULLY_CONNECTED options.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct FullyConnectedOptions {
    /// Fused activation.
    pub fused_activation: Activation,
    /// Keep the input's leading dims in the output.
    pub keep_num_dims: bool,
    /// Asymmetric dynamic-range quantisation of inputs.
    pub asymmetric_quantize_inputs: bool,
}

/// SOFTMAX options.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SoftmaxOptions {
    /// Temperature factor.
    pub beta: f32,
}

/// Typed builtin options of an operator.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub enum BuiltinOptions {
    /// No options table.
    #[default]
    None,
    /// CONV_2D.
    Conv2D(Conv2DOptions),
    /// DEPTHWISE_CONV_2D.
    DepthwiseConv2D(DepthwiseConv2DOptions),
    /// TRANSPOSE_CONV.
    TransposeConv(TransposeConvOptions),
    /// MAX_POOL_2D / AVERAGE_POOL_2D.
    Pool2D(Pool2DOptions),
    /// CONCATENATION.
    Concatenation(ConcatenationOptions),
    /// RESHAPE.
    Reshape(ReshapeOptions),
    /// STRIDED_SLICE.
    StridedSlice(StridedSliceOptions),
    /// PACK.
    Pack(PackOptions),
    /// RESIZE_NEAREST_NEIGHBOR.
    ResizeNearestNeighbor(ResizeOptions),
    /// RESIZE_BILINEAR.
    ResizeBilinear(ResizeOptions),
    /// ADD.
    Add(ElementwiseOptions),
    /// MUL.
    Mul(ElementwiseOptions),
    /// FULLY_CONNECTED.
    FullyConnected(FullyConnectedOptions),
    /// SOFTMAX.
    Softmax(SoftmaxOptions),
    /// An options table we have no typed form for; only its union type code is kept.
    Untyped {
        /// The `BuiltinOptions` union type code.
        options_type: u8,
    },
}

/// One operator of a subgraph, in execution order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Operator {
    /// Builtin operator code.
    pub op: BuiltinOp,
    /// Custom op name, for custom operators (`op` is then CUSTOM, code 32).
    pub custom_code: Option<String>,
    /// Operator version. 0 means "compute it from the op when writing".
    pub version: i32,
    /// Input tensor indices; -1 marks an omitted optional input.
    pub inputs: Vec<i32>,
    /// Output tensor indices.
    pub outputs: Vec<i32>,
    /// Builtin options.
    pub options: BuiltinOptions,
}

/// A subgraph: tensors, its inputs and outputs, and operators in execution order.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Subgraph {
    /// Name of the subgraph (`main` by default).
    pub name: String,
    /// All tensors.
    pub tensors: Vec<Tensor>,
    /// Indices of the input tensors.
    pub inputs: Vec<i32>,
    /// Indices of the output tensors.
    pub outputs: Vec<i32>,
    /// Operators, in execution order.
    pub operators: Vec<Operator>,
}

/// A named metadata entry pointing at a buffer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metadata {
    /// Metadata name, e.g. `min_runtime_version`.
    pub name: String,
    /// Index into `Model::buffers`.
    pub buffer: u32,
}

/// One entry of a signature's input or output map.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorMap {
    /// Public name of the input or output.
    pub name: String,
    /// Index of the tensor in the signature's subgraph.
    pub tensor_index: u32,
}

/// A signature definition (`serving_default` for our models).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignatureDef {
    /// Signature key.
    pub signature_key: String,
    /// Named inputs.
    pub inputs: Vec<TensorMap>,
    /// Named outputs.
    pub outputs: Vec<TensorMap>,
    /// The subgraph this signature runs.
    pub subgraph_index: u32,
}

/// A whole TFLite model (schema version 3).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Model {
    /// Free-text description; our writer names the tool and its version.
    pub description: String,
    /// Subgraphs; the first is the main graph.
    pub subgraphs: Vec<Subgraph>,
    /// Constant buffers; index 0 is the empty sentinel.
    pub buffers: Vec<Buffer>,
    /// Metadata entries.
    pub metadata: Vec<Metadata>,
    /// Signature definitions.
    pub signature_defs: Vec<SignatureDef>,
}

impl Model {
    /// The constant data of a tensor of subgraph `subgraph`, or `None` when it has none
    /// (buffer 0, an empty buffer, or indices out of range).
    pub fn tensor_data(&self, subgraph: usize, tensor: usize) -> Option<&[u8]> {
        let t = self.subgraphs.get(subgraph)?.tensors.get(tensor)?;
        if t.buffer == 0 {
            return None;
        }
        let data = &self.buffers.get(t.buffer as usize)?.data;
        if data.is_empty() { None } else { Some(data) }
    }
}

impl Default for Conv2DOptions {
    /// SAME padding, stride 1, no activation, no dilation.
    fn default() -> Self {
        Self {
            padding: Padding::Same,
            stride_w: 1,
            stride_h: 1,
            fused_activation: Activation::None,
            dilation_w: 1,
            dilation_h: 1,
        }
    }
}

impl Default for DepthwiseConv2DOptions {
    /// SAME padding, stride 1, depth multiplier 1, no activation, no dilation.
    fn default() -> Self {
        Self {
            padding: Padding::Same,
            stride_w: 1,
            stride_h: 1,
            depth_multiplier: 1,
            fused_activation: Activation::None,
            dilation_w: 1,
            dilation_h: 1,
        }
    }
}

impl Default for TransposeConvOptions {
    /// SAME padding, stride 2 (the U-Net's upsampling), no activation.
    fn default() -> Self {
        Self {
            padding: Padding::Same,
            stride_w: 2,
            stride_h: 2,
            fused_activation: Activation::None,
        }
    }
}

impl Pool2DOptions {
    /// A `size`×`size` window with stride `size` and VALID padding (the U-Net's 2×2 max pool).
    pub fn square(size: i32) -> Self {
        Self {
            padding: Padding::Valid,
            stride_w: size,
            stride_h: size,
            filter_width: size,
            filter_height: size,
            fused_activation: Activation::None,
        }
    }
}

impl Default for SoftmaxOptions {
    /// beta = 1.
    fn default() -> Self {
        Self { beta: 1.0 }
    }
}
