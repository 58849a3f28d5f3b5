//! Fast kernels: weights packed once in `Interpreter::new`, GEMM cores, optional threads.
//!
//! Selected by `KernelTier::Best` (unless `TFLITE_RUNTIME_KERNELS=reference`); every fast
//! kernel is tested against its reference kernel.

pub mod f32_conv;
pub mod f32_pool;
