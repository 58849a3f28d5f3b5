//! The kernel table: every kernel choice of the runtime, made once in `Interpreter::new`.
//!
//! In the manner of tract-linalg: [`KernelTable::reference`] fills every slot with the portable
//! reference kernels (bit-exact with LiteRT `BUILTIN_REF`); [`KernelTable::select`] reads the
//! CPU's features and the `TFLITE_RUNTIME_KERNELS` override **once**, then each plug overwrites
//! the slots it speeds up:
//!
//! - `plug_fast_f32`: the packed-weight f32 convolution factories (`fast::f32_conv`, on the
//!   `gemm` crate) and the vectorised f32 MAX_POOL_2D;
//! - `plug_int8`: the packed int8 GEMM path (AVX-512 VNNI, AVX2, NEON with or without dot
//!   product, portable), given as a [`DetectedPath`], a token that only CPU detection can make,
//!   so no table can hold a path the CPU cannot run.
//!
//! `prepare` asks the table for every heavy operator's kernel (packing constant weights through
//! its factories), `exec` calls the slots, and `fast_ops::FastOps` packs the int8 operators of the
//! table's path, and the 16x8 convolutions (`vpmaddwd` on the x86 paths, portable Rust on the
//! others). Nothing else chooses a kernel.

use crate::error::RuntimeError;
use crate::fast::f32_conv::{PackedConv2dF32, PackedTransposeConvF32};
use crate::fast::{DetectedPath, Int8Path};
use crate::frame::{ConvGeometry, ConvQuantParams, PoolGeometry};
use crate::reference;

/// The environment variable that overrides [`KernelTier::Best`]: `reference`, `best`, or an int8
/// path name (`avx512vnni`, `avx2`, `neon-dotprod`, `neon`, `portable`).
pub const KERNELS_ENV: &str = "TFLITE_RUNTIME_KERNELS";

/// f32 convolution kernel: geometry, activation clamp, input, filter, bias, output.
pub type ConvF32Fn = fn(&ConvGeometry, (f32, f32), &[f32], &[f32], Option<&[f32]>, &mut [f32]);
/// Int8 convolution kernel.
pub type ConvI8Fn = fn(&ConvGeometry, &ConvQuantParams, &[i8], &[i8], Option<&[i32]>, &mut [i8]);
/// Int8 transposed convolution kernel (with an i32 scratch of the output's size).
pub type TransposeConvI8Fn =
    fn(&ConvGeometry, &ConvQuantParams, &[i8], &[i8], Option<&[i32]>, &mut [i32], &mut [i8]);
/// f32 max-pool kernel: geometry, activation clamp, input, output, threads (the reference runs
/// on one).
pub type MaxPoolF32Fn = fn(&PoolGeometry, (f32, f32), &[f32], &mut [f32], usize);
/// Packs a constant f32 CONV_2D filter for the GEMM kernels (`None`: shape not covered).
pub type PackConvF32Fn = fn(&ConvGeometry, (f32, f32), &[f32]) -> Option<PackedConv2dF32>;
/// Packs a constant f32 TRANSPOSE_CONV filter for the GEMM kernels (`None`: not covered).
pub type PackTransposeConvF32Fn =
    fn(&ConvGeometry, (f32, f32), &[f32]) -> Option<PackedTransposeConvF32>;

/// Which kernels to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelTier {
    /// The reference kernels, bit-exact with LiteRT `BUILTIN_REF`.
    #[default]
    Reference,
    /// The best kernels this CPU supports (unless [`KERNELS_ENV`] says otherwise): packed f32
    /// convolutions and the fastest int8 path, bit-exact with the reference for int8.
    Best,
    /// The fast int8 kernels forced to the portable Rust microkernel.
    Portable,
    /// The fast int8 kernels forced to AVX2 (x86-64).
    Avx2,
    /// The fast int8 kernels forced to AVX-512 VNNI (x86-64).
    Avx512Vnni,
    /// The fast int8 kernels forced to AVX-VNNI, 256-bit (x86-64).
    AvxVnni,
    /// The fast int8 kernels forced to NEON without dot product (aarch64).
    Neon,
    /// The fast int8 kernels forced to NEON with dot product (aarch64).
    NeonDotprod,
}

impl KernelTier {
    /// The int8 path a forced tier names (`None` for `Reference` and `Best`).
    pub fn forced_path(self) -> Option<Int8Path> {
        match self {
            KernelTier::Reference | KernelTier::Best => None,
            KernelTier::Portable => Some(Int8Path::Portable),
            KernelTier::Avx2 => Some(Int8Path::Avx2),
            KernelTier::Avx512Vnni => Some(Int8Path::Avx512Vnni),
            KernelTier::AvxVnni => Some(Int8Path::AvxVnni),
            KernelTier::Neon => Some(Int8Path::Neon),
            KernelTier::NeonDotprod => Some(Int8Path::NeonDotprod),
        }
    }
}

/// The packed-weight f32 convolution factories.
#[derive(Debug, Clone, Copy)]
pub struct PackedF32Factories {
    /// CONV_2D.
    pub conv2d: PackConvF32Fn,
    /// TRANSPOSE_CONV.
    pub transpose_conv: PackTransposeConvF32Fn,
}

/// Every kernel the interpreter calls for its heavy operators.
#[derive(Debug, Clone, Copy)]
pub struct KernelTable {
    /// Name of what filled the table (`reference`, or the int8 path's name), for reports.
    pub tier_name: &'static str,
    /// CONV_2D f32 (also the fallback of the packed factory).
    pub conv2d_f32: ConvF32Fn,
    /// CONV_2D int8 (the reference; the packed int8 path replaces it per operator).
    pub conv2d_i8: ConvI8Fn,
    /// TRANSPOSE_CONV f32.
    pub transpose_conv_f32: ConvF32Fn,
    /// TRANSPOSE_CONV int8.
    pub transpose_conv_i8: TransposeConvI8Fn,
    /// MAX_POOL_2D f32.
    pub max_pool_f32: MaxPoolF32Fn,
    /// Packed-weight f32 convolutions, for operators whose filter is constant.
    pub packed_f32: Option<PackedF32Factories>,
    /// The int8 GEMM path whose packed CONV_2D / TRANSPOSE_CONV / MAX_POOL_2D replace the
    /// reference ones (`fast_ops::FastOps`); with it, the 16x8 convolutions run packed too.
    pub int8: Option<DetectedPath>,
}

/// What a tier and the environment ask for.
enum Request {
    Reference,
    Best,
    Path { path: Int8Path, fast_f32: bool },
}

impl KernelTable {
    /// The portable reference kernels in every slot.
    pub fn reference() -> Self {
        Self {
            tier_name: "reference",
            conv2d_f32: reference::conv::conv2d_f32,
            conv2d_i8: reference::conv::conv2d_i8,
            transpose_conv_f32: reference::transpose_conv::transpose_conv_f32,
            transpose_conv_i8: reference::transpose_conv::transpose_conv_i8,
            max_pool_f32: |g, act, input, output, _threads| {
                reference::pool::max_pool_f32(g, act, input, output)
            },
            packed_f32: None,
            int8: None,
        }
    }

    /// The table for `tier`: [`KERNELS_ENV`] read once (for [`KernelTier::Best`]), the CPU's
    /// features detected once, then the plugs. A forced path this CPU cannot run, or an
    /// override that names no path, is [`RuntimeError::KernelUnavailable`], never a silent
    /// fallback.
    pub fn select(tier: KernelTier) -> Result<Self, RuntimeError> {
        let request = match tier {
            KernelTier::Reference => Request::Reference,
            KernelTier::Best => match std::env::var(KERNELS_ENV) {
                Err(_) => Request::Best,
                Ok(v) if v.trim().is_empty() || v.trim().eq_ignore_ascii_case("best") => {
                    Request::Best
                }
                Ok(v) if v.trim().eq_ignore_ascii_case("reference") => Request::Reference,
                Ok(v) => Request::Path {
                    path: Int8Path::parse(&v).ok_or_else(|| RuntimeError::KernelUnavailable {
                        requested: format!("{KERNELS_ENV}={v}"),
                        available: available_names(),
                    })?,
                    fast_f32: true,
                },
            },
            forced => Request::Path {
                path: forced.forced_path().unwrap_or(Int8Path::Portable),
                fast_f32: false,
            },
        };
        let mut table = Self::reference();
        match request {
            Request::Reference => {}
            Request::Best => {
                table.plug_fast_f32();
                table.plug_int8(DetectedPath::best());
            }
            Request::Path { path, fast_f32 } => {
                let detected = path
                    .detect()
                    .ok_or_else(|| RuntimeError::KernelUnavailable {
                        requested: path.name().to_string(),
                        available: available_names(),
                    })?;
                if fast_f32 {
                    table.plug_fast_f32();
                }
                table.plug_int8(detected);
            }
        }
        Ok(table)
    }

    /// The f32 slots of the fast tier.
    fn plug_fast_f32(&mut self) {
        self.packed_f32 = Some(PackedF32Factories {
            conv2d: PackedConv2dF32::new,
            transpose_conv: PackedTransposeConvF32::new,
        });
        self.max_pool_f32 = crate::fast::f32_pool::max_pool_f32;
    }

    /// The packed int8 kernels of `path`.
    fn plug_int8(&mut self, path: DetectedPath) {
        self.int8 = Some(path);
        self.tier_name = path.path().name();
    }
}

/// `reference, best` and the int8 paths this CPU can run, for error messages.
fn available_names() -> String {
    let mut names: Vec<&str> = vec!["reference", "best"];
    names.extend(DetectedPath::all().into_iter().map(|p| p.path().name()));
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_tier_has_no_fast_slots_and_forced_tiers_need_the_cpu() {
        let table = KernelTable::select(KernelTier::Reference).expect("reference");
        assert_eq!(table.tier_name, "reference");
        assert!(table.packed_f32.is_none() && table.int8.is_none());
        let portable = KernelTable::select(KernelTier::Portable).expect("portable runs anywhere");
        assert_eq!(
            portable.int8.map(DetectedPath::path),
            Some(Int8Path::Portable)
        );
        assert!(portable.packed_f32.is_none());
        for tier in [
            KernelTier::Avx2,
            KernelTier::Avx512Vnni,
            KernelTier::AvxVnni,
            KernelTier::Neon,
            KernelTier::NeonDotprod,
        ] {
            let path = tier.forced_path().expect("forced tier");
            match KernelTable::select(tier) {
                Ok(table) => {
                    assert!(path.is_available());
                    assert_eq!(table.int8.map(DetectedPath::path), Some(path));
                }
                Err(e) => {
                    assert!(!path.is_available());
                    assert!(matches!(e, RuntimeError::KernelUnavailable { .. }), "{e}");
                }
            }
        }
    }
}
