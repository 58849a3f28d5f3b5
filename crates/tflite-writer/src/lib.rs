//! The owned TFLite model: the one graph format of the project after training.
//!
//! `ir` holds the plain-data model (model, subgraphs, tensors, operators, buffers).

#![warn(missing_docs)]

pub mod ir;

pub use ir::*;
