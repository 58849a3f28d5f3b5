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
//! Layout (after tract-linalg): [`kernels`] is the kernel table, the one place where kernels are
//! chosen (reference slots first, then the plugs of the fast tier after one CPU-feature read);
//! [`frame`] holds the kernel parameter types, [`reference`] one file per operator, [`fast`]
//! the packed f32 convolutions and the packed int8 CONV_2D / TRANSPOSE_CONV / MAX_POOL_2D
//! kernels (AVX-512 VNNI, AVX2, NEON with and without dot product, portable), bit-identical to
//! [`reference`] and chosen with `KernelTier::Best` (or forced, see [`fast::Int8Path`]).

#![warn(missing_docs)]

#[cfg(target_endian = "big")]
compile_error!("tflite-runtime reads TFLite's little-endian buffers in place");

pub mod error;
mod exec;
pub mod fast;
mod fast_ops;
pub mod frame;
mod interpreter;
pub mod kernels;
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
pub use interpreter::{Interpreter, Limits, MAX_MEMORY_ENV, MemoryReport, Observation, Options};
pub use kernels::KernelTier;
pub use tensor::{Element, TensorData, TensorInfo};

/// Memory limit of [`fuzz_invoke`]: 64 MiB, so that fuzzing explores shapes, not allocation.
#[doc(hidden)]
pub const FUZZ_MAX_MEMORY_BYTES: u64 = 64 << 20;

/// The fuzzing property, shared by the cargo-fuzz target `runtime_invoke` (`fuzz/`) and the
/// property tests: arbitrary bytes that read as a model are prepared with a 64 MiB memory limit
/// on the reference and the best kernels; every model that prepares gets inputs made from the
/// same bytes, runs, and has its outputs read. Panics only when that property is broken.
#[doc(hidden)]
pub fn fuzz_invoke(data: &[u8]) {
    let Ok(model) = tflite_writer::read_model(data) else {
        return;
    };
    let limits = Limits::default().with_max_memory_bytes(FUZZ_MAX_MEMORY_BYTES);
    for kernels in [KernelTier::Reference, KernelTier::Best] {
        let options = Options {
            kernels,
            threads: 1,
        };
        let Ok(mut interpreter) = Interpreter::with_limits(&model, options, limits) else {
            continue;
        };
        // Input bytes cycle through `data` so the fuzzer steers the values too.
        let byte = |k: usize| data.get(k % data.len().max(1)).copied().unwrap_or(0);
        for i in 0..interpreter.num_inputs() {
            let Ok(info) = interpreter.input_info(i) else {
                continue;
            };
            let (n, dtype) = (info.num_elements(), info.dtype);
            let _ = match dtype {
                tflite_writer::TensorType::Int8 => {
                    let v: Vec<i8> = (0..n).map(|k| byte(k) as i8).collect();
                    interpreter.set_input(i, &v)
                }
                tflite_writer::TensorType::UInt8 | tflite_writer::TensorType::Bool => {
                    let v: Vec<u8> = (0..n).map(byte).collect();
                    interpreter.set_input(i, &v)
                }
                tflite_writer::TensorType::Float32 => {
                    let v: Vec<f32> = (0..n)
                        .map(|k| {
                            f32::from_le_bytes([byte(k), byte(k + 1), byte(k + 2), byte(k + 3)])
                        })
                        .collect();
                    interpreter.set_input(i, &v)
                }
                tflite_writer::TensorType::Int32 => {
                    let v: Vec<i32> = (0..n).map(|k| i32::from(byte(k) as i8)).collect();
                    interpreter.set_input(i, &v)
                }
                tflite_writer::TensorType::Int64 => {
                    let v: Vec<i64> = (0..n).map(|k| i64::from(byte(k) as i8)).collect();
                    interpreter.set_input(i, &v)
                }
                _ => Ok(()),
            };
        }
        let _ = interpreter.invoke();
        for k in 0..interpreter.num_outputs() {
            if let Ok(data) = interpreter.output_data(k) {
                let _ = data.to_f32_vec(None);
            }
        }
        let _ = interpreter.memory();
    }
}
