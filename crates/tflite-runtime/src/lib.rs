//! An interpreter for f32 and int8 TFLite models, executing the owned IR of `tflite-writer`.
//!
//! [`Interpreter::new`] prepares a model once: it validates every tensor and operator, infers
//! every shape statically, folds shape-only subgraphs (the `SHAPE → STRIDED_SLICE → PACK`
//! chains TensorFlow's converter puts in front of `TRANSPOSE_CONV`), chooses the kernels and
//! plans one arena in which activations share memory. [`Interpreter::invoke`] then runs the
//! operators; [`Interpreter::invoke_with_observer`] also shows every intermediate tensor.
//!
//! The kernels in [`reference`] reproduce LiteRT's `BUILTIN_REF` kernels bit for bit for int8
//! (TFLite's int8 quantisation specification and its reference kernels: the rescale of
//! `QuantizeMultiplier`, zero points, per-channel weights); the test suite checks this against
//! LiteRT itself.
//!
//! Layout (after tract-linalg): [`frame`] holds the kernel parameter types and the kernel
//! table (the selection point for future SIMD tiers), [`reference`] one file per operator,
//! [`fast`] the packed int8 CONV_2D / TRANSPOSE_CONV / MAX_POOL_2D kernels (AVX-512 VNNI, AVX2,
//! NEON with and without dot product, portable), bit-identical to [`reference`] and chosen with
//! `KernelTier::Best` (or forced, see [`fast::Int8Path`]).

#![warn(missing_docs)]

#[cfg(target_endian = "big")]
compile_error!("tflite-runtime reads TFLite's little-endian buffers in place");

pub mod error;
mod exec;
pub mod fast;
pub mod frame;
mod interpreter;
pub mod npy;
pub mod padding;
pub mod plan;
mod prepare;
pub mod profile;
pub mod quant;
pub mod reference;
pub mod synth;
pub mod tensor;

pub use error::RuntimeError;
pub use frame::KernelTier;
pub use interpreter::{Interpreter, MemoryReport, Observation, Options};
pub use tensor::{Element, TensorData, TensorInfo};
