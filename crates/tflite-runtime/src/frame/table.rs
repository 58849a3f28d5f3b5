//! The kernel table: one function pointer per hot kernel, filled once in `Interpreter::new`.
//!
//! The slots start with the reference kernels. The fast tier (packed int8 GEMMs for AVX-512 VNNI,
//! AVX2 and NEON with or without the dot product, `gemm`-based f32 convolutions, in `fast/`) is
//! chosen after run-time feature detection; `KernelTier::Reference` (or the environment variable
//! `TFLITE_RUNTIME_KERNELS=reference`) pins the reference tier for tests and benches.

use super::params::{ConvGeometry, ConvQuantParams};
use crate::reference;

/// f32 convolution kernel: geometry, activation clamp, input, filter, bias, output.
pub type ConvF32Fn = fn(&ConvGeometry, (f32, f32), &[f32], &[f32], Option<&[f32]>, &mut [f32]);
/// Int8 convolution kernel.
pub type ConvI8Fn = fn(&ConvGeometry, &ConvQuantParams, &[i8], &[i8], Option<&[i32]>, &mut [i8]);
/// Int8 transposed convolution kernel (with an i32 scratch of the output's size).
pub type TransposeConvI8Fn =
    fn(&ConvGeometry, &ConvQuantParams, &[i8], &[i8], Option<&[i32]>, &mut [i32], &mut [i8]);

/// Which kernel tier to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelTier {
    /// The reference kernels, bit-exact with LiteRT `BUILTIN_REF`.
    #[default]
    Reference,
    /// The best kernels this CPU supports (f32 convolutions: packed-weight GEMM kernels of
    /// `fast::f32_conv`; faster int8 tiers plug in here and must stay bit-exact with the
    /// reference).
    Best,
    /// The fast int8 kernels forced to the portable Rust microkernel.
    Portable,
    /// The fast int8 kernels forced to AVX2 (x86-64).
    Avx2,
    /// The fast int8 kernels forced to AVX-512 VNNI (x86-64).
    Avx512Vnni,
    /// The fast int8 kernels forced to NEON without dot product (aarch64).
    Neon,
    /// The fast int8 kernels forced to NEON with dot product (aarch64).
    NeonDotprod,
}

/// Function pointers to the kernels the interpreter calls for its heavy ops.
#[derive(Debug, Clone, Copy)]
pub struct KernelTable {
    /// Name of the tier that filled the table (for reports).
    pub tier_name: &'static str,
    /// CONV_2D f32.
    pub conv2d_f32: ConvF32Fn,
    /// CONV_2D int8.
    pub conv2d_i8: ConvI8Fn,
    /// TRANSPOSE_CONV f32.
    pub transpose_conv_f32: ConvF32Fn,
    /// TRANSPOSE_CONV int8.
    pub transpose_conv_i8: TransposeConvI8Fn,
    /// Use the fast f32 kernels: CONV_2D / TRANSPOSE_CONV with constant weights packed for the
    /// GEMM kernels of `fast::f32_conv` (instead of the `*_f32` slots above), and
    /// `fast::f32_pool` for MAX_POOL_2D.
    pub fast_f32: bool,
}

impl KernelTable {
    /// The portable reference kernels.
    pub fn reference() -> Self {
        Self {
            tier_name: "reference",
            conv2d_f32: reference::conv::conv2d_f32,
            conv2d_i8: reference::conv::conv2d_i8,
            transpose_conv_f32: reference::transpose_conv::transpose_conv_f32,
            transpose_conv_i8: reference::transpose_conv::transpose_conv_i8,
            fast_f32: false,
        }
    }

    /// The table for a tier, honouring `TFLITE_RUNTIME_KERNELS=reference`.
    pub fn for_tier(tier: KernelTier) -> Self {
        let forced_reference = std::env::var("TFLITE_RUNTIME_KERNELS")
            .map(|v| v.eq_ignore_ascii_case("reference"))
            .unwrap_or(false);
        match tier {
            KernelTier::Reference => Self::reference(),
            KernelTier::Best if forced_reference => Self::reference(),
            KernelTier::Best => Self {
                tier_name: "best",
                fast_f32: true,
                ..Self::reference()
            },
            // Forced int8 paths (see `fast::Int8Path::for_tier`); the other kernels are the
            // reference ones.
            _ => Self::reference(),
        }
    }
}
