//! [`ModelBuilder`]: assemble small single-subgraph models in a few lines.
//!
//! ```
//! use tflite_writer::{BuiltinOp, BuiltinOptions, Conv2DOptions, ModelBuilder, TensorType};
//!
//! let mut b = ModelBuilder::new();
//! let x = b.add_input("x", &[1, 8, 8, 3], TensorType::Float32, None);
//! let w = b.add_const_f32("w", &[4, 3, 3, 3], &[0.5; 4 * 3 * 3 * 3]);
//! let bias = b.add_const_f32("b", &[4], &[0.0; 4]);
//! let y = b.add_activation("y", &[1, 8, 8, 4], TensorType::Float32, None);
//! b.add_op(BuiltinOp::CONV_2D, BuiltinOptions::Conv2D(Conv2DOptions::default()), &[x, w, bias], &[y]);
//! b.set_outputs(&[y]);
//! let model = b.finish();
//! let bytes = tflite_writer::write_model(&model).unwrap();
//! assert_eq!(&bytes[4..8], b"TFL3");
//! ```

use crate::ir::{
    Buffer, BuiltinOp, BuiltinOptions, Model, Operator, Quantization, Subgraph, Tensor, TensorType,
};

/// Builds a [`Model`] with one subgraph (`main`) and the `buffers[0]` sentinel.
///
/// Every `add_*` returns the new tensor's index, ready to pass to [`ModelBuilder::add_op`].
/// Operators get version 0 ("computed by the writer"); signature, description and metadata are
/// filled in by [`crate::write_model`] / [`crate::finalize`].
#[derive(Debug, Clone)]
pub struct ModelBuilder {
    model: Model,
}

impl Default for ModelBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ModelBuilder {
    /// An empty model: one subgraph named `main`, one empty sentinel buffer.
    pub fn new() -> Self {
        Self {
            model: Model {
                subgraphs: vec![Subgraph {
                    name: "main".into(),
                    ..Subgraph::default()
                }],
                buffers: vec![Buffer::default()],
                ..Model::default()
            },
        }
    }

    fn subgraph(&mut self) -> &mut Subgraph {
        &mut self.model.subgraphs[0]
    }

    fn push_tensor(
        &mut self,
        name: &str,
        shape: &[i32],
        dtype: TensorType,
        buffer: u32,
        quant: Option<Quantization>,
    ) -> i32 {
        let subgraph = self.subgraph();
        subgraph.tensors.push(Tensor {
            name: name.to_string(),
            shape: shape.to_vec(),
            shape_signature: None,
            dtype,
            buffer,
            quantization: quant,
            is_variable: false,
        });
        (subgraph.tensors.len() - 1) as i32
    }

    /// Adds a graph input (a tensor without data, appended to the subgraph's inputs).
    pub fn add_input(
        &mut self,
        name: &str,
        shape: &[i32],
        dtype: TensorType,
        quant: Option<Quantization>,
    ) -> i32 {
        let idx = self.push_tensor(name, shape, dtype, 0, quant);
        self.subgraph().inputs.push(idx);
        idx
    }

    /// Adds an intermediate or output tensor (no data).
    pub fn add_activation(
        &mut self,
        name: &str,
        shape: &[i32],
        dtype: TensorType,
        quant: Option<Quantization>,
    ) -> i32 {
        self.push_tensor(name, shape, dtype, 0, quant)
    }

    /// Adds a constant tensor holding `data` (raw little-endian bytes, row-major) in a new buffer.
    /// The writer checks that `data.len()` equals the element count × element size.
    pub fn add_const(
        &mut self,
        name: &str,
        shape: &[i32],
        dtype: TensorType,
        data: Vec<u8>,
        quant: Option<Quantization>,
    ) -> i32 {
        self.model.buffers.push(Buffer { data });
        let buffer = (self.model.buffers.len() - 1) as u32;
        self.push_tensor(name, shape, dtype, buffer, quant)
    }

    /// Adds a FLOAT32 constant.
    pub fn add_const_f32(&mut self, name: &str, shape: &[i32], values: &[f32]) -> i32 {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.add_const(name, shape, TensorType::Float32, data, None)
    }

    /// Adds an INT32 constant (shape tensors, or int32 bias with `quant`).
    pub fn add_const_i32(
        &mut self,
        name: &str,
        shape: &[i32],
        values: &[i32],
        quant: Option<Quantization>,
    ) -> i32 {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.add_const(name, shape, TensorType::Int32, data, quant)
    }

    /// Adds an INT8 constant (quantized weights).
    pub fn add_const_i8(
        &mut self,
        name: &str,
        shape: &[i32],
        values: &[i8],
        quant: Option<Quantization>,
    ) -> i32 {
        let data = values.iter().map(|&v| v as u8).collect();
        self.add_const(name, shape, TensorType::Int8, data, quant)
    }

    /// Appends an operator (execution order is insertion order) and returns its index.
    /// Use `-1` in `inputs` for an omitted optional input.
    pub fn add_op(
        &mut self,
        op: BuiltinOp,
        options: BuiltinOptions,
        inputs: &[i32],
        outputs: &[i32],
    ) -> usize {
        let subgraph = self.subgraph();
        subgraph.operators.push(Operator {
            op,
            custom_code: None,
            version: 0,
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
            options,
        });
        subgraph.operators.len() - 1
    }

    /// Sets the subgraph's outputs.
    pub fn set_outputs(&mut self, outputs: &[i32]) {
        self.subgraph().outputs = outputs.to_vec();
    }

    /// Sets the subgraph's inputs (replacing those added by [`ModelBuilder::add_input`]).
    pub fn set_inputs(&mut self, inputs: &[i32]) {
        self.subgraph().inputs = inputs.to_vec();
    }

    /// Sets the model description (the writer prefixes it with the tool name and version).
    pub fn set_description(&mut self, description: &str) {
        self.model.description = description.to_string();
    }

    /// The tensor at `idx`, to adjust (e.g. `shape_signature`). Panics on an index this builder
    /// never returned.
    pub fn tensor_mut(&mut self, idx: i32) -> &mut Tensor {
        &mut self.subgraph().tensors[idx as usize]
    }

    /// The model built so far.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Returns the model.
    pub fn finish(self) -> Model {
        self.model
    }
}
