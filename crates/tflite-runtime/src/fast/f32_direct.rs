//! Direct f32 convolution for stride-1, dilation-1 geometries on AVX2 + FMA, and with 16-lane
//! vectors on AVX-512.
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
//! On AVX-512 a tile is up to 12 pixels × 32 output channels (two 16-channel blocks side by
//! side, 24 accumulators of the 32 registers), so each broadcast feeds two fused
//! multiply-adds, as in the AVX2 tile, with twice the lanes.
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
    /// Run the AVX-512 tiles (chosen when packing, from the CPU's features).
    wide: bool,
}

impl DirectConvF32 {
    /// Whether this CPU runs the kernel: AVX2 and FMA (8-lane tiles), AVX-512F for the 16-lane
    /// ones.
    pub(crate) fn is_available() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    /// Whether the direct kernel should replace the `gemm` path for `g` on this CPU (given
    /// [`Self::is_available`]): always with 8-lane tiles; with AVX-512 only where a side has at
    /// most 16 channels (`--example conv_micro` on a Sapphire Rapids Xeon: 1.2–2× faster at 16
    /// channels, 0.8–1.0× from 32 channels on both sides, where `gemm`'s packed AVX-512
    /// kernels reuse the weights over more pixels).
    pub(crate) fn preferred(g: &ConvGeometry) -> bool {
        !std::arch::is_x86_feature_detected!("avx512f") || g.in_c.min(g.out_c) <= BLOCK
    }

    /// Packs an OHWI `filter` (`out_c × k_h × k_w × in_c`, length checked by the caller) for the
    /// stride-1, dilation-1 convolution `g`, for the widest tiles this CPU runs.
    pub(crate) fn pack(g: &ConvGeometry, filter: &[f32]) -> Self {
        Self::pack_for(g, filter, std::arch::is_x86_feature_detected!("avx512f"))
    }

    /// [`Self::pack`] with the tile width chosen by the caller (`wide`: AVX-512, which the
    /// CPU must have; checked when running).
    pub(crate) fn pack_for(g: &ConvGeometry, filter: &[f32], wide: bool) -> Self {
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
            wide,
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
        if self.wide {
            assert!(
                std::arch::is_x86_feature_detected!("avx512f"),
                "direct f32 conv: packed for AVX-512"
            );
            // SAFETY: AVX-512F is present (asserted); the reads and writes are those of the
            // AVX2 tiles below (the same offsets, weights and output rows), 16 lanes wide.
            return unsafe { self.run_rows_avx512(padded, oys, out, bias, act) };
        }
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

    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn run_rows_avx512(
        &self,
        padded: &[f32],
        oys: std::ops::Range<usize>,
        out: &mut [f32],
        bias: Option<&[f32]>,
        act: (f32, f32),
    ) {
        let (c, wp, out_w, offsets) = (self.in_c, self.wp, self.out_w, &self.offsets[..]);
        let blk_len = offsets.len() * c * BLOCK;
        let blocks = self.out_c.div_ceil(BLOCK);
        let x0 = padded.as_ptr();
        let o0 = out.as_mut_ptr();
        let mut block = 0;
        while block < blocks {
            let nb = (blocks - block).min(2);
            let mut epi = Epilogue16 {
                bias: [_mm512_setzero_ps(); 2],
                lo: _mm512_set1_ps(act.0),
                hi: _mm512_set1_ps(act.1),
                keep: [0; 2],
                pixel_stride: self.out_c,
            };
            for j in 0..nb {
                let first = (block + j) * BLOCK;
                let cols = (self.out_c - first).min(BLOCK);
                epi.keep[j] = ((1u32 << cols) - 1) as __mmask16;
                if let Some(bias) = bias {
                    // SAFETY: `bias` has `out_c` floats; the masked load reads `cols` of them.
                    epi.bias[j] =
                        unsafe { _mm512_maskz_loadu_ps(epi.keep[j], bias.as_ptr().add(first)) };
                }
            }
            let w = [
                self.weights[block * blk_len..].as_ptr(),
                self.weights[(block + nb - 1) * blk_len..].as_ptr(),
            ];
            for (r, oy) in oys.clone().enumerate() {
                let mut ox0 = 0;
                while ox0 < out_w {
                    let left = out_w - ox0;
                    // SAFETY: as in `run_rows_avx2`: the tile's reads and writes are in bounds.
                    let n = unsafe {
                        let x = x0.add((oy * wp + ox0) * c);
                        let o = o0.add((r * out_w + ox0) * self.out_c + block * BLOCK);
                        match (nb, left) {
                            (2, 12..) => tile16::<12, 2>(x, c, offsets, w, o, &epi),
                            (2, 8..) => tile16::<8, 2>(x, c, offsets, w, o, &epi),
                            (2, 4..) => tile16::<4, 2>(x, c, offsets, w, o, &epi),
                            (2, 2..) => tile16::<2, 2>(x, c, offsets, w, o, &epi),
                            (2, _) => tile16::<1, 2>(x, c, offsets, w, o, &epi),
                            (_, 16..) => tile16::<16, 1>(x, c, offsets, w, o, &epi),
                            (_, 8..) => tile16::<8, 1>(x, c, offsets, w, o, &epi),
                            (_, 4..) => tile16::<4, 1>(x, c, offsets, w, o, &epi),
                            (_, 2..) => tile16::<2, 1>(x, c, offsets, w, o, &epi),
                            _ => tile16::<1, 1>(x, c, offsets, w, o, &epi),
                        }
                    };
                    ox0 += n;
                }
            }
            block += nb;
        }
    }
}

/// Bias, clamp and the masked stores of one AVX-512 tile (up to two 16-channel blocks).
struct Epilogue16 {
    bias: [__m512; 2],
    lo: __m512,
    hi: __m512,
    /// Valid output channels of each block, as a lane mask.
    keep: [__mmask16; 2],
    /// Floats between consecutive output pixels.
    pixel_stride: usize,
}

/// `R` pixels × `NB` blocks of 16 output channels (block j's packed weights at `w[j]`):
/// [`tile`] with 16-lane vectors and masked stores. Returns `R`.
///
/// # Safety
/// AVX-512F + FMA; as [`tile`] for each block, with `out + r·pixel_stride + 16·j + l` writable
/// for the lanes `l` set in `keep[j]`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // j indexes the weights, accumulators, biases and masks
unsafe fn tile16<const R: usize, const NB: usize>(
    x: *const f32,
    c: usize,
    offsets: &[usize],
    w: [*const f32; 2],
    out: *mut f32,
    epi: &Epilogue16,
) -> usize {
    // SAFETY: the caller's contract covers every pointer below.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); NB]; R];
        let mut wp = w;
        for &off in offsets {
            let xp = x.add(off);
            for ic in 0..c {
                let mut wv = [_mm512_setzero_ps(); NB];
                for j in 0..NB {
                    wv[j] = _mm512_loadu_ps(wp[j]);
                    wp[j] = wp[j].add(BLOCK);
                }
                for (r, a) in acc.iter_mut().enumerate() {
                    let v = _mm512_set1_ps(*xp.add(r * c + ic));
                    for j in 0..NB {
                        a[j] = _mm512_fmadd_ps(v, wv[j], a[j]);
                    }
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            for j in 0..NB {
                let o = out.add(r * epi.pixel_stride + j * BLOCK);
                // The AVX2 tile's clamp: NaN passes through as in `clamp_f32`.
                let v = _mm512_add_ps(a[j], epi.bias[j]);
                let v = _mm512_min_ps(epi.hi, _mm512_max_ps(epi.lo, v));
                _mm512_mask_storeu_ps(o, epi.keep[j], v);
            }
        }
    }
    R
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::Rng;

    /// VALID convolution (the input is its own zero-bordered buffer) by the definition.
    fn naive(g: &ConvGeometry, x: &[f32], f: &[f32], b: &[f32], act: (f32, f32)) -> Vec<f32> {
        let mut out = vec![0.0f32; g.out_h * g.out_w * g.out_c];
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                for oc in 0..g.out_c {
                    let mut s = b[oc];
                    for ky in 0..g.k_h {
                        for kx in 0..g.k_w {
                            for ic in 0..g.in_c {
                                s += x[((oy + ky) * g.in_w + ox + kx) * g.in_c + ic]
                                    * f[((oc * g.k_h + ky) * g.k_w + kx) * g.in_c + ic];
                            }
                        }
                    }
                    out[(oy * g.out_w + ox) * g.out_c + oc] = s.clamp(act.0, act.1);
                }
            }
        }
        out
    }

    #[test]
    fn both_tile_widths_match_the_definition() {
        if !DirectConvF32::is_available() {
            eprintln!("skipped: this CPU has no AVX2 + FMA");
            return;
        }
        let wide = std::arch::is_x86_feature_detected!("avx512f");
        if !wide {
            eprintln!("AVX-512 tiles skipped: this CPU has no AVX-512F (8-lane tiles only)");
        }
        let mut rng = Rng::new(0xD1EC7);
        // Output widths cover every tile size and remainder; channel counts cover one block,
        // two blocks, an odd third and partial blocks.
        for (i, (k_h, k_w, in_c, out_c, out_w)) in [
            (3, 3, 16, 16, 128),
            (3, 3, 7, 33, 29),
            (1, 1, 5, 48, 13),
            (5, 3, 3, 17, 1),
            (3, 5, 32, 64, 23),
            (2, 2, 1, 1, 7),
        ]
        .into_iter()
        .enumerate()
        {
            let out_h = 3;
            let g = ConvGeometry {
                batches: 1,
                in_h: out_h + k_h - 1,
                in_w: out_w + k_w - 1,
                in_c,
                out_h,
                out_w,
                out_c,
                k_h,
                k_w,
                stride_h: 1,
                stride_w: 1,
                dilation_h: 1,
                dilation_w: 1,
                pad_top: 0,
                pad_left: 0,
            };
            let x: Vec<f32> = (0..g.in_h * g.in_w * in_c)
                .map(|_| rng.range_f32(-1.0, 1.0))
                .collect();
            let f: Vec<f32> = (0..out_c * k_h * k_w * in_c)
                .map(|_| rng.range_f32(-1.0, 1.0))
                .collect();
            let b: Vec<f32> = (0..out_c).map(|_| rng.range_f32(-1.0, 1.0)).collect();
            let act = (-0.5, 2.0);
            let want = naive(&g, &x, &f, &b, act);
            for w in [false, true] {
                if w && !wide {
                    continue;
                }
                let packed = DirectConvF32::pack_for(&g, &f, w);
                let mut got = vec![f32::NAN; want.len()];
                packed.run_rows(&x, 0..out_h, &mut got, Some(&b), act);
                for (j, (a, e)) in got.iter().zip(&want).enumerate() {
                    let tol = 1e-4 * (k_h * k_w * in_c) as f32;
                    assert!(
                        (a - e).abs() <= tol,
                        "case {i} wide={w}: output {j}: {a} vs {e}"
                    );
                }
            }
        }
    }
}
