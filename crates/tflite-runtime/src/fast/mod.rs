//! Fast kernels, plugged into the kernel table ([`crate::kernels::KernelTable::select`]) for
//! `KernelTier::Best` or a forced path, each tested against its reference kernel:
//! - f32 ([`f32_conv`], [`f32_pool`]): CONV_2D and TRANSPOSE_CONV with weights packed once in
//!   `Interpreter::new` (within float rounding of the reference): a direct register-blocked
//!   kernel for stride-1 convolutions on AVX2 + FMA CPUs without AVX-512, Winograd
//!   F(4×4, 3×3) or F(2×2, 3×3) for 3×3 layers with 16 channels or more, the `gemm` crate
//!   otherwise; and a
//!   bit-identical MAX_POOL_2D;
//! - int8 (below);
//! - 16x8 ([`Int16x8Gemm`]): CONV_2D and TRANSPOSE_CONV with int16 activations, `vpmaddwd` on
//!   AVX2 with the i32 sums folded into i64 before they could overflow, bit-identical to the
//!   reference.
//!
//! Fast int8 kernels: CONV_2D and TRANSPOSE_CONV as a register-blocked implicit GEMM, with one
//! microkernel per instruction set (AVX-512 VNNI, AVX2, NEON with and without the dot-product
//! extension, and portable Rust), all bit-identical to the reference kernels.
//!
//! How it works:
//! - `Interpreter::new` packs each int8 convolution's constant weights once ([`Int8Gemm`]):
//!   columns (output channels, or `tap × output channel` for a transposed convolution) in
//!   blocks of the path's vector width, 4 bytes of reduction per step, plus per-column `Σw`.
//! - At invoke time the input is copied once into a padded, channel-padded buffer in the form
//!   the path multiplies (`x + 128` as u8 for VNNI, `x − zp` as i16 for AVX2, `x` as i8 for NEON
//!   and portable). Padded taps hold the value that stands for `x = zp`, so they add exactly
//!   zero, like the taps the reference skips. The `zp·Σw` correction is folded into the bias.
//! - Every output pixel is one GEMM row; its accumulators are requantised with the reference's
//!   double-rounding `MultiplyByQuantizedMultiplier` (vectorised exactly on x86).
//! - `threads > 1` splits the output pixels (rows) across the persistent threads of
//!   [`workers`], for every kernel family.

pub mod f32_conv;
#[cfg(target_arch = "x86_64")]
mod f32_direct;
pub mod f32_pool;
mod f32_winograd;
mod int16x8;
mod int8;
#[cfg(target_arch = "aarch64")]
mod int8_neon;
mod int8_pool;
mod int8_portable;
#[cfg(target_arch = "x86_64")]
mod int8_x86;
pub mod workers;

pub use int8::{Int8Gemm, conv2d_i8, transpose_conv_i8};
pub use int8_pool::{max_pool_i8, max_pool_i16};
pub use int16x8::Int16x8Gemm;

/// An int8 kernel path (instruction set of the GEMM microkernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Int8Path {
    /// Plain Rust, any CPU.
    Portable,
    /// x86-64 AVX2: i16 operands and `vpmaddwd` (exact; no `vpmaddubsw` saturation).
    Avx2,
    /// x86-64 AVX-512 VNNI: `vpdpbusd` on `x + 128` (u8) × weights (i8).
    Avx512Vnni,
    /// x86-64 AVX-VNNI (the VEX-encoded, 256-bit `vpdpbusd` of Alder Lake and later client CPUs
    /// that lack AVX-512): the same operands as [`Int8Path::Avx512Vnni`], 8 columns per block.
    AvxVnni,
    /// aarch64 NEON without the dot-product extension: `smull` + `sadalp`.
    Neon,
    /// aarch64 NEON with the dot-product extension: `sdot`.
    NeonDotprod,
}

impl Int8Path {
    /// Every path, fastest first.
    pub const ALL: [Int8Path; 6] = [
        Int8Path::Avx512Vnni,
        Int8Path::AvxVnni,
        Int8Path::Avx2,
        Int8Path::NeonDotprod,
        Int8Path::Neon,
        Int8Path::Portable,
    ];

    /// The name used by `TFLITE_RUNTIME_KERNELS` and `Interpreter::kernel_tier`.
    pub fn name(self) -> &'static str {
        match self {
            Int8Path::Portable => "portable",
            Int8Path::Avx2 => "avx2",
            Int8Path::Avx512Vnni => "avx512vnni",
            Int8Path::AvxVnni => "avxvnni",
            Int8Path::Neon => "neon",
            Int8Path::NeonDotprod => "neon-dotprod",
        }
    }

    /// Parses a path name (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether this build and this CPU can run the path.
    pub fn is_available(self) -> bool {
        match self {
            Int8Path::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Int8Path::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Int8Path::Avx512Vnni => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "x86_64")]
            Int8Path::AvxVnni => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("avxvnni")
            }
            #[cfg(target_arch = "aarch64")]
            Int8Path::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(target_arch = "aarch64")]
            Int8Path::NeonDotprod => {
                std::arch::is_aarch64_feature_detected!("neon")
                    && std::arch::is_aarch64_feature_detected!("dotprod")
            }
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every path available here, fastest first (always ends with `Portable`).
    pub fn available() -> Vec<Int8Path> {
        Self::ALL.into_iter().filter(|p| p.is_available()).collect()
    }

    /// The fastest available path.
    pub fn best() -> Int8Path {
        Self::ALL
            .into_iter()
            .find(|p| p.is_available())
            .unwrap_or(Int8Path::Portable)
    }

    /// This path as a [`DetectedPath`], if this build and this CPU can run it.
    pub fn detect(self) -> Option<DetectedPath> {
        self.is_available().then_some(DetectedPath(self))
    }
}

/// An [`Int8Path`] that run-time detection found on this CPU.
///
/// Its field is private: the only ways to get one are [`Int8Path::detect`],
/// [`DetectedPath::best`] and [`DetectedPath::all`]. The packed kernels ([`Int8Gemm`]) take one,
/// so safe code cannot pack, and then run, instructions the CPU lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DetectedPath(Int8Path);

impl DetectedPath {
    /// The fastest path of this CPU (portable Rust when nothing faster is there).
    pub fn best() -> Self {
        Self(Int8Path::best())
    }

    /// Every path of this CPU, fastest first (always ends with `Portable`).
    pub fn all() -> Vec<Self> {
        Int8Path::available().into_iter().map(Self).collect()
    }

    /// The path.
    pub fn path(self) -> Int8Path {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_names_round_trip_and_portable_is_always_there() {
        for p in Int8Path::ALL {
            assert_eq!(Int8Path::parse(p.name()), Some(p));
            assert_eq!(Int8Path::parse(&p.name().to_uppercase()), Some(p));
        }
        assert_eq!(Int8Path::parse("sse9"), None);
        assert!(Int8Path::Portable.is_available());
        assert!(Int8Path::best().is_available());
        assert_eq!(Int8Path::available().last(), Some(&Int8Path::Portable));
        assert_eq!(
            Int8Path::Portable.detect().map(DetectedPath::path),
            Some(Int8Path::Portable)
        );
        // A path the CPU lacks cannot be obtained as a token.
        for p in Int8Path::ALL {
            assert_eq!(p.detect().is_some(), p.is_available(), "{}", p.name());
        }
        assert_eq!(
            DetectedPath::all().last().map(|p| p.path()),
            Some(Int8Path::Portable)
        );
    }
}
