//! Typed views of tensor data, the element trait of the typed setters and getters, and the
//! aligned byte storage behind constants and the arena.

use tflite_writer::{Quantization, TensorType};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for i8 {}
    impl Sealed for u8 {}
    impl Sealed for i16 {}
    impl Sealed for i32 {}
    impl Sealed for i64 {}
}

/// Element types the interpreter reads and writes as typed slices.
pub trait Element: bytemuck::Pod + sealed::Sealed {
    /// The matching TFLite tensor type.
    const DTYPE: TensorType;
}

impl Element for f32 {
    const DTYPE: TensorType = TensorType::Float32;
}
impl Element for i8 {
    const DTYPE: TensorType = TensorType::Int8;
}
impl Element for u8 {
    const DTYPE: TensorType = TensorType::UInt8;
}
impl Element for i16 {
    const DTYPE: TensorType = TensorType::Int16;
}
impl Element for i32 {
    const DTYPE: TensorType = TensorType::Int32;
}
impl Element for i64 {
    const DTYPE: TensorType = TensorType::Int64;
}

/// A borrowed, typed view of a tensor's data.
#[derive(Debug, Clone, Copy)]
pub enum TensorData<'a> {
    /// FLOAT32.
    F32(&'a [f32]),
    /// INT8.
    I8(&'a [i8]),
    /// UINT8 or BOOL.
    U8(&'a [u8]),
    /// INT16.
    I16(&'a [i16]),
    /// INT32.
    I32(&'a [i32]),
    /// INT64.
    I64(&'a [i64]),
}

impl<'a> TensorData<'a> {
    /// View raw little-endian bytes as the given type (bytes must be aligned for the type,
    /// which the arena and constant storage guarantee).
    pub(crate) fn from_bytes(dtype: TensorType, bytes: &'a [u8]) -> Self {
        match dtype {
            TensorType::Float32 => TensorData::F32(bytemuck::cast_slice(bytes)),
            TensorType::Int8 => TensorData::I8(bytemuck::cast_slice(bytes)),
            TensorType::Int16 => TensorData::I16(bytemuck::cast_slice(bytes)),
            TensorType::Int32 => TensorData::I32(bytemuck::cast_slice(bytes)),
            TensorType::Int64 => TensorData::I64(bytemuck::cast_slice(bytes)),
            _ => TensorData::U8(bytes),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::I8(v) => v.len(),
            TensorData::U8(v) => v.len(),
            TensorData::I16(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::I64(v) => v.len(),
        }
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Real values: f32 as they are, quantised types through `scale·(q − zero_point)` when
    /// `quant` is given (per-tensor), integers converted otherwise.
    pub fn to_f32_vec(&self, quant: Option<(f32, i32)>) -> Vec<f32> {
        let deq = |q: i64| match quant {
            Some((scale, zero_point)) => scale * (q - zero_point as i64) as f32,
            None => q as f32,
        };
        match self {
            TensorData::F32(v) => v.to_vec(),
            TensorData::I8(v) => v.iter().map(|&x| deq(x as i64)).collect(),
            TensorData::U8(v) => v.iter().map(|&x| deq(x as i64)).collect(),
            TensorData::I16(v) => v.iter().map(|&x| deq(x as i64)).collect(),
            TensorData::I32(v) => v.iter().map(|&x| deq(x as i64)).collect(),
            TensorData::I64(v) => v.iter().map(|&x| deq(x)).collect(),
        }
    }
}

/// Static description of a tensor after preparation.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Index in the subgraph.
    pub index: usize,
    /// Name.
    pub name: String,
    /// Shape (static).
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: TensorType,
    /// Quantisation, if any (empty scale arrays count as none).
    pub quantization: Option<Quantization>,
}

impl TensorInfo {
    /// Number of elements.
    pub fn num_elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Per-tensor `(scale, zero_point)` when the tensor is quantised per tensor.
    pub fn per_tensor_quant(&self) -> Option<(f32, i32)> {
        let q = self.quantization.as_ref()?;
        if q.scale.len() == 1 && q.zero_point.len() == 1 {
            Some((q.scale[0], q.zero_point[0] as i32))
        } else {
            None
        }
    }
}

/// Byte storage aligned to 8 bytes (enough for every element type we view it as).
#[derive(Debug, Clone, Default)]
pub(crate) struct AlignedBytes {
    words: Vec<u64>,
    len: usize,
}

impl AlignedBytes {
    /// Zeroed storage of `len` bytes.
    pub(crate) fn zeroed(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(8)],
            len,
        }
    }

    /// A copy of `bytes`.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Self {
        let mut out = Self::zeroed(bytes.len());
        out.as_bytes_mut().copy_from_slice(bytes);
        out
    }

    /// The bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..self.len]
    }

    /// The bytes, mutably.
    pub(crate) fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.words)[..self.len]
    }
}
