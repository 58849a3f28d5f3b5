//! Reference kernels: plain loops that reproduce LiteRT's `BUILTIN_REF` kernels bit for bit
//! (int8) and in the same accumulation order (f32). One file per operator.
//!
//! Kernels are infallible: `Interpreter::new` validated shapes, types and parameters, so only
//! `debug_assert!`s remain here.

pub mod add;
pub mod concatenation;
pub mod conv;
pub mod dequantize;
pub mod logistic;
pub mod mul;
pub mod pack;
pub mod pool;
pub mod quantize;
pub mod relu;
pub mod resize_nearest;
pub mod strided_slice;
pub mod transpose_conv;
