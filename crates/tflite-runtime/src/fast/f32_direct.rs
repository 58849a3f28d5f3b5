//! Direct f32 convolution for stride-1, dilation-1 geometries on AVX2 + FMA.
//!
//! The `gemm`-based shifted path (`f32_conv`) runs one GEMM per kernel row and so reads and
//! writes its `m × out_c` accumulator buffer `k_h` times, and the `gemm` crate packs its
//! operands on every call. At 128×128 with 16 channels that is several megabytes of traffic per
//! layer beside 38 M multiply-adds: the layers ran at ≈ 60 % of the FMA peak on one core, and two
//! threads (or two calibration passes side by side) shared the memory traffic instead of adding
//! compute. Here every tile of 6 output pixels × 16 output channels keeps its 12 accumulators in
//! registers over all taps and input channels, reads the zero-bordered input in place (one
//! broadcast per pixel and channel) and the weights packed once as `[block][tap][in_c][16]`,
//! and writes each output once with bias and clamp applied.
//!
//! Sums run in another order than the reference's (tap-major, fused multiply-add), so results
//! match it within float rounding, as the GEMM paths do.

use std::arch::x86_64::*;

use crate::frame::ConvGeometry;

/// Output channels per block (two 8-lane vectors).
const BLOCK: usize = 16;
/// Output pixels per tile (12 accumulators + 2 weight vectors + 1 broadcast = 15 registers).
const TILE: usize = 6;

/// A CONV_2D's weights packed for the direct kernel.
#[derive(Debug, Clone)]
pub(crate) struct DirectConvF32 {
    k_h: usize,
    in_c: usize,
    out_c: usize,
    out_w: usize,
    /// Row width of the zero-bordered input: `out_w + k_w − 1` pixels.
    wp: usize,
    /// Float offset of each tap `(ky, kx)` from a pixel's first tap: `(ky·wp + kx)·in_c`.
    offsets: Vec<usize>,
    /// `[block][k_h·k_w][in_c][16]`, output channels past `out_c` zero.
    weights: Vec<f32>,
}

impl DirectConvF32 {
    /// Whether this CPU runs the kernel (AVX2 and FMA) and should: on AVX-512 CPUs the `gemm`
    /// crate's 16-lane kernels are used instead (this kernel is 8 lanes wide).
    pub(crate) fn is_available() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && !std::arch::is_x86_feature_detected!("avx512f")
    }

    /// Packs an OHWI `filter` (`out_c × k_h × k_w × in_c`, length checked by the caller) for the
    /// stride-1, dilation-1 convolution `g`.
    pub(crate) fn pack(g: &ConvGeometry, filter: &[f32]) -> Self {
        let (k_h, k_w, in_c, out_c) = (g.k_h, g.k_w, g.in_c, g.out_c);
        let wp = g.out_w + k_w - 1;
        let taps = k_h * k_w;
        let blocks = out_c.div_ceil(BLOCK);
        let mut weights = vec![0.0f32; blocks * taps * in_c * BLOCK];
        for oc in 0..out_c {
            let (blk, lane) = (oc / BLOCK, oc % BLOCK);
            for t in 0..taps {
                for ic in 0..in_c {
                    weights[((blk * taps + t) * in_c + ic) * BLOCK + lane] =
                        filter[(oc * taps + t) * in_c + ic];
                }
            }
        }
        Self {
            k_h,
            in_c,
            out_c,
            out_w: g.out_w,
            wp,
            offsets: (0..k_h)
                .flat_map(|ky| (0..k_w).map(move |kx| (ky * wp + kx) * in_c))
                .collect(),
            weights,
        }
    }

    /// Row width, in pixels, of the zero-bordered input [`Self::run_rows`] reads.
    pub(crate) fn padded_width(&self) -> usize {
        self.wp
    }

    /// Computes output rows `oys` of one image into `out` (those rows, `out_w · out_c` floats
    /// each) from `padded`, the zero-bordered input of [`Self::padded_width`] pixels of `in_c`
    /// floats per row and at least `oys.end + k_h − 1` rows.
    pub(crate) fn run_rows(
        &self,
        padded: &[f32],
        oys: std::ops::Range<usize>,
        out: &mut [f32],
        bias: Option<&[f32]>,
        act: (f32, f32),
    ) {
        let (c, wp, out_w) = (self.in_c, self.wp, self.out_w);
        assert!(
            padded.len() >= (oys.end + self.k_h - 1) * wp * c,
            "direct f32 conv: padded input too short"
        );
        assert_eq!(
            out.len(),
            oys.len() * out_w * self.out_c,
            "direct f32 conv: output"
        );
        assert!(Self::is_available(), "direct f32 conv needs AVX2 and FMA");
        // SAFETY: AVX2 and FMA are present (asserted). Reads: a tile at (oy, ox0) of n ≤ TILE
        // pixels reads `padded[(oy·wp + ox0)·c + offset + r·c + ic]` for r < n, ic < c, the
        // largest being ((oy + k_h − 1)·wp + ox0 + n − 1 + k_w − 1)·c + c − 1, inside the
        // asserted length since ox0 + n ≤ out_w = wp − k_w + 1 and oy < oys.end. Weights are
        // read within `blocks·taps·c·16 = weights.len()`. Writes go to `out` rows oys
        // (asserted length), channels < out_c.
        unsafe { self.run_rows_avx2(padded, oys, out, bias, act) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_rows_avx2(
        &self,
        padded: &[f32],
        oys: std::ops::Range<usize>,
        out: &mut [f32],
        bias: Option<&[f32]>,
        act: (f32, f32),
    ) {
        let (c, wp, out_w, offsets) = (self.in_c, self.wp, self.out_w, &self.offsets[..]);
        let blk_len = offsets.len() * c * BLOCK;
        let x0 = padded.as_ptr();
        let o0 = out.as_mut_ptr();
        let lo = _mm256_set1_ps(act.0);
        let hi = _mm256_set1_ps(act.1);
        for blk in 0..self.out_c.div_ceil(BLOCK) {
            let w = self.weights[blk * blk_len..].as_ptr();
            let cols = (self.out_c - blk * BLOCK).min(BLOCK);
            let mut block_bias = [0.0f32; BLOCK];
            if let Some(bias) = bias {
                block_bias[..cols].copy_from_slice(&bias[blk * BLOCK..blk * BLOCK + cols]);
            }
            // SAFETY: `block_bias` holds 16 floats.
            let b = unsafe {
                [
                    _mm256_loadu_ps(block_bias.as_ptr()),
                    _mm256_loadu_ps(block_bias.as_ptr().add(8)),
                ]
            };
            for (r, oy) in oys.clone().enumerate() {
                let mut ox0 = 0;
                while ox0 < out_w {
                    let n = (out_w - ox0).min(TILE);
                    let epi = Epilogue {
                        bias: b,
                        lo,
                        hi,
                        cols,
                        pixel_stride: self.out_c,
                    };
                    // SAFETY: see `run_rows`: the tile's reads and writes are in bounds.
                    unsafe {
                        let x = x0.add((oy * wp + ox0) * c);
                        let o = o0.add((r * out_w + ox0) * self.out_c + blk * BLOCK);
                        match n {
                            6 => tile::<6>(x, c, offsets, w, o, &epi),
                            5 => tile::<5>(x, c, offsets, w, o, &epi),
                            4 => tile::<4>(x, c, offsets, w, o, &epi),
                            3 => tile::<3>(x, c, offsets, w, o, &epi),
                            2 => tile::<2>(x, c, offsets, w, o, &epi),
                            _ => tile::<1>(x, c, offsets, w, o, &epi),
                        }
                    }
                    ox0 += n;
                }
            }
        }
    }
}

/// Bias, clamp and the store of one tile.
struct Epilogue {
    bias: [__m256; 2],
    lo: __m256,
    hi: __m256,
    /// Valid output channels of the block (≤ 16).
    cols: usize,
    /// Floats between consecutive output pixels.
    pixel_stride: usize,
}

/// `R` pixels × 16 output channels: accumulate over every tap and input channel, then
/// `min(max(acc + bias, lo), hi)` (the reference's clamp, NaN passing through) to `out`.
///
/// # Safety
/// AVX2 + FMA; `x + offset + r·c + ic` readable for every offset, r < R, ic < c; `w` readable
/// for `offsets.len()·c·16` floats; `out + r·pixel_stride + j` writable for r < R, j < cols.
#[inline(always)]
unsafe fn tile<const R: usize>(
    x: *const f32,
    c: usize,
    offsets: &[usize],
    w: *const f32,
    out: *mut f32,
    epi: &Epilogue,
) {
    // SAFETY: the caller's contract covers every pointer below.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        let mut wp = w;
        for &off in offsets {
            let xp = x.add(off);
            for ic in 0..c {
                let w0 = _mm256_loadu_ps(wp);
                let w1 = _mm256_loadu_ps(wp.add(8));
                wp = wp.add(BLOCK);
                for (r, a) in acc.iter_mut().enumerate() {
                    let v = _mm256_broadcast_ss(&*xp.add(r * c + ic));
                    a[0] = _mm256_fmadd_ps(v, w0, a[0]);
                    a[1] = _mm256_fmadd_ps(v, w1, a[1]);
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            let o = out.add(r * epi.pixel_stride);
            let v0 = _mm256_add_ps(a[0], epi.bias[0]);
            let v1 = _mm256_add_ps(a[1], epi.bias[1]);
            // max_ps(lo, v) is `lo > v ? lo : v` and min_ps(hi, y) is `hi < y ? hi : y`:
            // exactly `clamp_f32`, NaN included.
            let v0 = _mm256_min_ps(epi.hi, _mm256_max_ps(epi.lo, v0));
            let v1 = _mm256_min_ps(epi.hi, _mm256_max_ps(epi.lo, v1));
            if epi.cols == BLOCK {
                _mm256_storeu_ps(o, v0);
                _mm256_storeu_ps(o.add(8), v1);
            } else {
                let mut tmp = [0.0f32; BLOCK];
                _mm256_storeu_ps(tmp.as_mut_ptr(), v0);
                _mm256_storeu_ps(tmp.as_mut_ptr().add(8), v1);
                std::ptr::copy_nonoverlapping(tmp.as_ptr(), o, epi.cols);
            }
        }
    }
}
