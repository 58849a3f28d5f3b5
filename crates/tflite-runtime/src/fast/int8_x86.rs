//! x86-64 int8 microkernels: AVX2 (`vpmaddwd` on i16 operands, exact), AVX-512 VNNI and
//! AVX-VNNI (`vpdpbusd` on `x + 128` × weights, 512 and 256 bits), with an exact vectorised
//! requantisation (8 lanes on AVX2, 16 on AVX-512).
//!
//! No closures carry intrinsics here: closures do not inherit `#[target_feature]`, so the
//! loops are written out inside the feature-enabled functions.

#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::int8::{Int8Gemm, for_blocks};

/// Per-column requantisation constants of one 8-column group.
#[derive(Clone, Copy)]
struct Requant8 {
    bias: __m256i,
    mult: __m256i,
    mult_odd: __m256i,
    lshift: __m256i,
    rshift: __m256i,
    /// `2^rshift − 1`.
    mask: __m256i,
    /// `mask >> 1`.
    half: __m256i,
    zp: __m256i,
    lo: __m256i,
    hi: __m256i,
    /// `zp` as 16 i16 lanes, `lo` and `hi` as 32 i8 lanes (for [`requant8x4`]).
    zp16: __m256i,
    lo8: __m256i,
    hi8: __m256i,
}

impl Requant8 {
    #[target_feature(enable = "avx2")]
    fn with_masks(mut self) -> Self {
        let one = _mm256_set1_epi32(1);
        self.mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, self.rshift), one);
        self.half = _mm256_srai_epi32::<1>(self.mask);
        self.zp16 = _mm256_packs_epi32(self.zp, self.zp);
        let (lo16, hi16) = (
            _mm256_packs_epi32(self.lo, self.lo),
            _mm256_packs_epi32(self.hi, self.hi),
        );
        self.lo8 = _mm256_packs_epi16(lo16, lo16);
        self.hi8 = _mm256_packs_epi16(hi16, hi16);
        self
    }

    /// Loads the parameters of padded columns `col..col + 8`.
    ///
    /// # Safety
    /// AVX2 must be available and `col + 8` within the padded column arrays.
    #[target_feature(enable = "avx2")]
    unsafe fn load(g: &Int8Gemm, col: usize) -> Self {
        let (b, m) = (&g.bias[col..col + 8], &g.mult[col..col + 8]);
        let (l, r) = (&g.lshift[col..col + 8], &g.rshift[col..col + 8]);
        // SAFETY: each slice has exactly 8 i32 (32 bytes), read unaligned.
        unsafe {
            Self {
                bias: _mm256_loadu_si256(b.as_ptr().cast()),
                mult: _mm256_loadu_si256(m.as_ptr().cast()),
                mult_odd: _mm256_shuffle_epi32::<0xF5>(_mm256_loadu_si256(m.as_ptr().cast())),
                lshift: _mm256_loadu_si256(l.as_ptr().cast()),
                rshift: _mm256_loadu_si256(r.as_ptr().cast()),
                mask: _mm256_setzero_si256(),
                half: _mm256_setzero_si256(),
                zp: _mm256_set1_epi32(g.out_zp),
                lo: _mm256_set1_epi32(g.act_min),
                hi: _mm256_set1_epi32(g.act_max),
                zp16: _mm256_setzero_si256(),
                lo8: _mm256_setzero_si256(),
                hi8: _mm256_setzero_si256(),
            }
        }
        .with_masks()
    }
}

/// Exact `MultiplyByQuantizedMultiplier(acc + bias)` of 8 lanes (before the zero point).
#[target_feature(enable = "avx2")]
#[inline]
fn scale8(acc: __m256i, p: &Requant8) -> __m256i {
    let zero = _mm256_setzero_si256();
    let x = _mm256_sllv_epi32(_mm256_add_epi32(acc, p.bias), p.lshift);
    // SaturatingRoundingDoublingHighMul: gemmlowp's `(p + nudge) / 2^31` with truncating
    // division equals `floor((p + 2^30) / 2^31)` for both signs of p (for p < 0 the
    // truncation adds 2^31 − 1 to p + 1 − 2^30). The i32::MIN² case is excluded by
    // `vector_requant`. Bits 31..62 of the 64-bit sum are the result. The odd lanes reach
    // `vpmuldq` through a dword shuffle: written as a 64-bit shift, LLVM rebuilt the signed
    // multiply from three unsigned ones.
    let round = _mm256_set1_epi64x(1 << 30);
    let even = _mm256_add_epi64(_mm256_mul_epi32(x, p.mult), round);
    let odd = _mm256_add_epi64(
        _mm256_mul_epi32(_mm256_shuffle_epi32::<0xF5>(x), p.mult_odd),
        round,
    );
    let r = _mm256_blend_epi32::<0b1010_1010>(
        _mm256_srli_epi64::<31>(even),
        _mm256_slli_epi64::<1>(odd),
    );
    // RoundingDivideByPOT, ties away from zero.
    let rem = _mm256_and_si256(r, p.mask);
    let thr = _mm256_sub_epi32(p.half, _mm256_cmpgt_epi32(zero, r));
    _mm256_sub_epi32(_mm256_srav_epi32(r, p.rshift), _mm256_cmpgt_epi32(rem, thr))
}

/// Exact `clamp(MultiplyByQuantizedMultiplier(acc + bias) + zp)` of 8 lanes, packed to i8 in
/// the low 8 bytes.
#[target_feature(enable = "avx2")]
#[inline]
fn requant8(acc: __m256i, p: &Requant8) -> __m128i {
    let v = _mm256_add_epi32(scale8(acc, p), p.zp);
    let v = _mm256_min_epi32(_mm256_max_epi32(v, p.lo), p.hi);
    let w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    _mm_packs_epi16(w, w)
}

/// [`requant8`] of four rows' accumulators of one 8-column block, stored as 8 bytes at each of
/// `dst[0..4]`: one pack, one zero-point add (in i16) and one clamp (in i8) for all 32 values,
/// exact when `Int8Gemm::narrow_output` holds (the sums cannot wrap, so saturation to i16 and
/// i8 commutes with the clamp to the int8 activation range).
///
/// # Safety
/// AVX2; 8 writable bytes at each `dst[i]`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn requant8x4(acc: [__m256i; 4], p: &Requant8, dst: [*mut i8; 4]) {
    let v = [
        scale8(acc[0], p),
        scale8(acc[1], p),
        scale8(acc[2], p),
        scale8(acc[3], p),
    ];
    // Per 128-bit lane: rows 0 and 1 (then 2 and 3) of columns 0–3, then of columns 4–7.
    let r01 = _mm256_adds_epi16(_mm256_packs_epi32(v[0], v[1]), p.zp16);
    let r23 = _mm256_adds_epi16(_mm256_packs_epi32(v[2], v[3]), p.zp16);
    let b = _mm256_packs_epi16(r01, r23);
    let b = _mm256_min_epi8(_mm256_max_epi8(b, p.lo8), p.hi8);
    // Dwords are (row, half) = (0,0) (1,0) (2,0) (3,0) (0,1) (1,1) (2,1) (3,1): gather each
    // row's two halves into one qword.
    let b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    let (r01, r23) = (_mm256_castsi256_si128(b), _mm256_extracti128_si256::<1>(b));
    // SAFETY: 8 writable bytes at each destination (caller).
    unsafe {
        _mm_storel_epi64(dst[0].cast(), r01);
        _mm_storeh_pd(dst[1].cast(), _mm_castsi128_pd(r01));
        _mm_storel_epi64(dst[2].cast(), r23);
        _mm_storeh_pd(dst[3].cast(), _mm_castsi128_pd(r23));
    }
}

/// Stores the low `n` (≤ 8) bytes of `v` at `dst`.
///
/// # Safety
/// `dst..dst + n` must be writable.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn store8(dst: *mut i8, v: __m128i, n: usize) {
    if n == 8 {
        // SAFETY: 8 writable bytes (caller).
        unsafe { _mm_storel_epi64(dst.cast(), v) };
    } else {
        let mut tmp = [0i8; 16];
        // SAFETY: `tmp` has 16 bytes.
        unsafe { _mm_storeu_si128(tmp.as_mut_ptr().cast(), v) };
        for (l, &b) in tmp.iter().enumerate().take(n) {
            // SAFETY: `l < n` writable bytes (caller).
            unsafe { *dst.add(l) = b };
        }
    }
}

/// Requantises and stores 8 accumulators of padded column `col` for one row.
///
/// # Safety
/// AVX2; `dst..dst + n` writable; `col + 8` within the padded columns.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn finish8(g: &Int8Gemm, acc: __m256i, p: &Requant8, col: usize, dst: *mut i8, n: usize) {
    if n == 0 {
        return;
    }
    if g.vector_requant {
        // SAFETY: forwarded from the caller.
        unsafe { store8(dst, requant8(acc, p), n) };
    } else {
        let mut tmp = [0i32; 8];
        // SAFETY: `tmp` holds 8 i32.
        unsafe { _mm256_storeu_si256(tmp.as_mut_ptr().cast(), acc) };
        for l in 0..n {
            // SAFETY: `l < n` writable bytes (caller).
            unsafe { *dst.add(l) = g.requant_scalar(tmp[l], col + l) };
        }
    }
}

/// AVX2 microkernel: `MR` rows × `NB` blocks of 8 columns.
///
/// # Safety
/// AVX2; the `Int8Gemm::tile` contract for `a`, `ao`, `out`, `oo`; `jb + NB ≤ n_blocks`.
#[target_feature(enable = "avx2")]
unsafe fn kernel_avx2<const MR: usize, const NB: usize>(
    g: &Int8Gemm,
    a: *const u8,
    ao: &[usize; MR],
    jb: usize,
    out: *mut i8,
    oo: &[usize; MR],
    valid: usize,
) {
    let mut acc = [[_mm256_setzero_si256(); NB]; MR];
    let blk = g.blk_bytes;
    // SAFETY (whole body): the packed weights hold `n_blocks · blk_bytes` bytes, read in
    // `blk_bytes` per block; operand reads are `ao[m] + tap + 4·s + 4 ≤ a_bytes` and output
    // writes `oo[m] + col_dest + col_valid ≤ out_len`, all checked in `Int8Gemm::build`.
    unsafe {
        let mut wp = g.w.as_ptr().add(jb * blk);
        for &t in g.taps.iter() {
            let mut rp = [a; MR];
            for m in 0..MR {
                rp[m] = a.add(ao[m] + t);
            }
            for s in 0..g.steps {
                let mut wv = [_mm256_setzero_si256(); NB];
                for j in 0..NB {
                    wv[j] = _mm256_loadu_si256(wp.add(j * blk).cast());
                }
                for m in 0..MR {
                    let av = _mm256_set1_epi32(rp[m].add(4 * s).cast::<i32>().read_unaligned());
                    for j in 0..NB {
                        acc[m][j] = _mm256_add_epi32(acc[m][j], _mm256_madd_epi16(av, wv[j]));
                    }
                }
                wp = wp.add(32);
            }
        }
        // Spill the tile once (by value: `acc` itself never has its address taken, so it
        // stays in registers during the reduction), then requantise row by row.
        let mut tile = [[[0i32; 8]; NB]; MR];
        for m in 0..MR {
            for j in 0..NB {
                _mm256_storeu_si256(tile[m][j].as_mut_ptr().cast(), acc[m][j]);
            }
        }
        epilogue_avx2(g, &tile, jb, out, oo, valid);
    }
}

/// Requantises and stores an AVX2 tile of accumulators (`tile[m][j]`: row `m`, block
/// `jb + j`) for the first `valid` rows.
///
/// # Safety
/// AVX2; the `Int8Gemm::tile` contract for `out` and `oo`; `jb + NB ≤ n_blocks`.
#[target_feature(enable = "avx2")]
unsafe fn epilogue_avx2<const MR: usize, const NB: usize>(
    g: &Int8Gemm,
    tile: &[[[i32; 8]; NB]; MR],
    jb: usize,
    out: *mut i8,
    oo: &[usize; MR],
    valid: usize,
) {
    for j in 0..NB {
        let col = (jb + j) * 8;
        // SAFETY: `col + 8` is within the padded columns (`jb + j < n_blocks`).
        let p = unsafe { Requant8::load(g, col) };
        let (dest, n) = (g.col_dest[jb + j], g.col_valid[jb + j]);
        let rows = valid.min(MR);
        let mut first = 0;
        if n == 8 && g.narrow_output {
            while first + 4 <= rows {
                let m = first;
                // SAFETY: `tile[m + i][j]` holds 8 i32; `oo[m + i] + dest + 8 ≤ out_len`
                // (checked in `Int8Gemm::build`).
                unsafe {
                    let row = |i: usize| tile[m + i][j].as_ptr().cast();
                    let acc = [
                        _mm256_loadu_si256(row(0)),
                        _mm256_loadu_si256(row(1)),
                        _mm256_loadu_si256(row(2)),
                        _mm256_loadu_si256(row(3)),
                    ];
                    let dst = [
                        out.add(oo[m] + dest),
                        out.add(oo[m + 1] + dest),
                        out.add(oo[m + 2] + dest),
                        out.add(oo[m + 3] + dest),
                    ];
                    requant8x4(acc, &p, dst);
                }
                first += 4;
            }
        }
        for m in first..rows {
            // SAFETY: `tile[m][j]` holds 8 i32; `oo[m] + dest + n ≤ out_len` (checked in
            // `Int8Gemm::build`).
            unsafe {
                let acc = _mm256_loadu_si256(tile[m][j].as_ptr().cast());
                finish8(g, acc, &p, col, out.add(oo[m] + dest), n);
            }
        }
    }
}

/// Runs one chunk of rows over every column block with the AVX2 kernels.
///
/// # Safety
/// AVX2 must be available; the `Int8Gemm::tile` contract.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn tile_avx2(g: &Int8Gemm, a: *const u8, rows: &[(usize, usize)], out: *mut i8) {
    let mut jb = 0;
    while jb < g.n_blocks {
        if g.n_blocks - jb >= 2 {
            for_blocks::<6>(rows, |ao, oo, v| {
                // SAFETY: forwarded contract; AVX2 checked by the caller.
                unsafe { kernel_avx2::<6, 2>(g, a, ao, jb, out, oo, v) }
            });
            jb += 2;
        } else {
            for_blocks::<12>(rows, |ao, oo, v| {
                // SAFETY: as above.
                unsafe { kernel_avx2::<12, 1>(g, a, ao, jb, out, oo, v) }
            });
            jb += 1;
        }
    }
}

/// Per-column requantisation constants of one 16-column block, for the AVX-512 epilogue.
#[derive(Clone, Copy)]
struct Requant16 {
    bias: __m512i,
    mult: __m512i,
    mult_odd: __m512i,
    lshift: __m512i,
    rshift: __m512i,
    /// `2^rshift − 1`.
    mask: __m512i,
    /// `mask >> 1`.
    half: __m512i,
    zp: __m512i,
    lo: __m512i,
    hi: __m512i,
}

impl Requant16 {
    /// Loads the parameters of padded columns `col..col + 16`.
    ///
    /// # Safety
    /// AVX-512F must be available and `col + 16` within the padded column arrays.
    #[target_feature(enable = "avx512f")]
    unsafe fn load(g: &Int8Gemm, col: usize) -> Self {
        let (b, m) = (&g.bias[col..col + 16], &g.mult[col..col + 16]);
        let (l, r) = (&g.lshift[col..col + 16], &g.rshift[col..col + 16]);
        // SAFETY: each slice has exactly 16 i32 (64 bytes), read unaligned.
        unsafe {
            Self::from_lanes(
                g,
                _mm512_loadu_si512(b.as_ptr().cast()),
                _mm512_loadu_si512(m.as_ptr().cast()),
                _mm512_loadu_si512(l.as_ptr().cast()),
                _mm512_loadu_si512(r.as_ptr().cast()),
            )
        }
    }

    /// The parameters from per-lane bias, multiplier and shifts (the derived vectors and
    /// `g`'s output zero point and activation range).
    #[target_feature(enable = "avx512f")]
    fn from_lanes(
        g: &Int8Gemm,
        bias: __m512i,
        mult: __m512i,
        lshift: __m512i,
        rshift: __m512i,
    ) -> Self {
        let one = _mm512_set1_epi32(1);
        let mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, rshift), one);
        Self {
            bias,
            mult,
            mult_odd: _mm512_shuffle_epi32::<0xF5>(mult),
            lshift,
            rshift,
            mask,
            half: _mm512_srai_epi32::<1>(mask),
            zp: _mm512_set1_epi32(g.out_zp),
            lo: _mm512_set1_epi32(g.act_min),
            hi: _mm512_set1_epi32(g.act_max),
        }
    }

    /// Column `col`'s parameters in all 16 lanes (for [`kernel_vnni_one_column`], whose
    /// lanes are rows).
    #[target_feature(enable = "avx512f")]
    fn splat(g: &Int8Gemm, col: usize) -> Self {
        Self::from_lanes(
            g,
            _mm512_set1_epi32(g.bias[col]),
            _mm512_set1_epi32(g.mult[col]),
            _mm512_set1_epi32(g.lshift[col]),
            _mm512_set1_epi32(g.rshift[col]),
        )
    }
}

/// [`requant8`] on 16 lanes: the exact `clamp(MultiplyByQuantizedMultiplier(acc + bias) + zp)`
/// as i32 (already inside the int8 activation range).
#[target_feature(enable = "avx512f")]
#[inline]
fn requant16(acc: __m512i, p: &Requant16) -> __m512i {
    let (zero, one) = (_mm512_setzero_si512(), _mm512_set1_epi32(1));
    let x = _mm512_sllv_epi32(_mm512_add_epi32(acc, p.bias), p.lshift);
    // SaturatingRoundingDoublingHighMul as in `requant8`: bits 31..62 of `x·m + 2^30`.
    let round = _mm512_set1_epi64(1 << 30);
    let even = _mm512_add_epi64(_mm512_mul_epi32(x, p.mult), round);
    let odd = _mm512_add_epi64(
        _mm512_mul_epi32(_mm512_shuffle_epi32::<0xF5>(x), p.mult_odd),
        round,
    );
    let r = _mm512_mask_blend_epi32(
        0xAAAA,
        _mm512_srli_epi64::<31>(even),
        _mm512_slli_epi64::<1>(odd),
    );
    // RoundingDivideByPOT, ties away from zero: one more when the remainder exceeds half
    // the divisor (half plus one for negative values).
    let rem = _mm512_and_si512(r, p.mask);
    let thr = _mm512_mask_add_epi32(p.half, _mm512_cmplt_epi32_mask(r, zero), p.half, one);
    let v = _mm512_srav_epi32(r, p.rshift);
    let v = _mm512_mask_add_epi32(v, _mm512_cmpgt_epi32_mask(rem, thr), v, one);
    let v = _mm512_add_epi32(v, p.zp);
    _mm512_min_epi32(_mm512_max_epi32(v, p.lo), p.hi)
}

/// AVX-512 VNNI microkernel: `MR` rows × `NB` blocks of 16 columns.
///
/// # Safety
/// AVX-512F, AVX-512 VNNI and AVX2; the `Int8Gemm::tile` contract; `jb + NB ≤ n_blocks`.
#[target_feature(enable = "avx512f,avx512vnni,avx2")]
unsafe fn kernel_vnni<const MR: usize, const NB: usize>(
    g: &Int8Gemm,
    a: *const u8,
    ao: &[usize; MR],
    jb: usize,
    out: *mut i8,
    oo: &[usize; MR],
    valid: usize,
) {
    let mut acc = [[_mm512_setzero_si512(); NB]; MR];
    let blk = g.blk_bytes;
    // SAFETY (whole body): as in `kernel_avx2`, with 64 bytes of weights per step.
    unsafe {
        let mut wp = g.w.as_ptr().add(jb * blk);
        for &t in g.taps.iter() {
            let mut rp = [a; MR];
            for m in 0..MR {
                rp[m] = a.add(ao[m] + t);
            }
            for s in 0..g.steps {
                let mut wv = [_mm512_setzero_si512(); NB];
                for j in 0..NB {
                    wv[j] = _mm512_loadu_si512(wp.add(j * blk).cast());
                }
                for m in 0..MR {
                    let av = _mm512_set1_epi32(rp[m].add(4 * s).cast::<i32>().read_unaligned());
                    for j in 0..NB {
                        acc[m][j] = _mm512_dpbusd_epi32(acc[m][j], av, wv[j]);
                    }
                }
                wp = wp.add(64);
            }
        }
        // Spill the tile once (as in `kernel_avx2`: `acc` stays in registers in the loop).
        let mut tile = [[[0i32; 16]; NB]; MR];
        for m in 0..MR {
            for j in 0..NB {
                _mm512_storeu_si512(tile[m][j].as_mut_ptr().cast(), acc[m][j]);
            }
        }
        epilogue_vnni(g, &tile, jb, out, oo, valid);
    }
}

/// AVX-512 VNNI kernel for a convolution to one output channel (the U-Net's 16 → 1 head): 16
/// rows in the 16 lanes, each step's four operand bytes of the 16 rows gathered into one
/// vector against the column's four weight bytes broadcast, and one requantisation per 16
/// rows. [`kernel_vnni`] with one block computes 16 columns per row for the one it stores:
/// the head took 0.20 ms of a 5.6 ms int8 U-Net (`--example op_profile -- int8 best 30`).
///
/// # Safety
/// AVX-512F and AVX-512 VNNI; the `Int8Gemm::tile` contract; `g.n_blocks == 1`,
/// `g.col_valid[0] == 1`; every `ao[m] + tap + 4·step` below `i32::MAX`.
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn kernel_vnni_one_column(
    g: &Int8Gemm,
    a: *const u8,
    ao: &[usize; 16],
    out: *mut i8,
    oo: &[usize; 16],
    valid: usize,
) {
    let rows: [i32; 16] = std::array::from_fn(|m| ao[m] as i32);
    // SAFETY (whole body): the gathers read 4 bytes at `ao[m] + t + 4·s` for the row's taps
    // and steps, inside its operand row as in `kernel_vnni`; the weights are block 0's, 64
    // bytes per step (lane 0 first); the stores are as in `epilogue_vnni`.
    unsafe {
        let idx = _mm512_loadu_si512(rows.as_ptr().cast());
        let mut acc = _mm512_setzero_si512();
        let mut wp = g.w.as_ptr();
        for &t in g.taps.iter() {
            for s in 0..g.steps {
                let at = _mm512_add_epi32(idx, _mm512_set1_epi32((t + 4 * s) as i32));
                let av = _mm512_i32gather_epi32::<1>(at, a.cast());
                let wv = _mm512_set1_epi32(wp.cast::<i32>().read_unaligned());
                acc = _mm512_dpbusd_epi32(acc, av, wv);
                wp = wp.add(64);
            }
        }
        let dest = g.col_dest[0];
        let valid = valid.min(16);
        if g.vector_requant {
            let v = requant16(acc, &Requant16::splat(g, 0));
            if (0..valid).all(|m| oo[m] == oo[0] + m) {
                let keep = ((1u32 << valid) - 1) as __mmask16;
                _mm512_mask_cvtsepi32_storeu_epi8(out.add(oo[0] + dest), keep, v);
            } else {
                let mut lanes = [0i32; 16];
                _mm512_storeu_si512(lanes.as_mut_ptr().cast(), v);
                for m in 0..valid {
                    *out.add(oo[m] + dest) = lanes[m] as i8;
                }
            }
        } else {
            let mut lanes = [0i32; 16];
            _mm512_storeu_si512(lanes.as_mut_ptr().cast(), acc);
            for m in 0..valid {
                *out.add(oo[m] + dest) = g.requant_scalar(lanes[m], 0);
            }
        }
    }
}

/// Requantises and stores an AVX-512 tile of accumulators (`tile[m][j]`: row `m`, block
/// `jb + j`) for the first `valid` rows: 16 lanes at a time, stored with a byte mask.
///
/// # Safety
/// AVX-512F; the `Int8Gemm::tile` contract for `out` and `oo`; `jb + NB ≤ n_blocks`.
#[target_feature(enable = "avx512f")]
unsafe fn epilogue_vnni<const MR: usize, const NB: usize>(
    g: &Int8Gemm,
    tile: &[[[i32; 16]; NB]; MR],
    jb: usize,
    out: *mut i8,
    oo: &[usize; MR],
    valid: usize,
) {
    for j in 0..NB {
        let col = (jb + j) * 16;
        let (dest, n) = (g.col_dest[jb + j], g.col_valid[jb + j]);
        if !g.vector_requant {
            for m in 0..valid.min(MR) {
                for l in 0..n {
                    // SAFETY: `oo[m] + dest + n ≤ out_len` (checked in `Int8Gemm::build`).
                    unsafe {
                        *out.add(oo[m] + dest + l) = g.requant_scalar(tile[m][j][l], col + l)
                    };
                }
            }
            continue;
        }
        // SAFETY: `col + 16` is within the padded columns (`jb + j < n_blocks`).
        let p = unsafe { Requant16::load(g, col) };
        let keep = ((1u32 << n) - 1) as __mmask16;
        for m in 0..valid.min(MR) {
            // SAFETY: `tile[m][j]` holds 16 i32; the masked store writes the `n` bytes
            // `oo[m] + dest .. + n ≤ out_len` (checked in `Int8Gemm::build`).
            unsafe {
                let acc = _mm512_loadu_si512(tile[m][j].as_ptr().cast());
                _mm512_mask_cvtsepi32_storeu_epi8(out.add(oo[m] + dest), keep, requant16(acc, &p));
            }
        }
    }
}

/// Runs one chunk of rows over every column block with the VNNI kernels.
///
/// # Safety
/// AVX-512F, AVX-512 VNNI and AVX2 must be available; the `Int8Gemm::tile` contract.
#[target_feature(enable = "avx512f,avx512vnni,avx2")]
pub(super) unsafe fn tile_vnni(g: &Int8Gemm, a: *const u8, rows: &[(usize, usize)], out: *mut i8) {
    let reach = g.taps.iter().max().unwrap_or(&0) + 4 * g.steps;
    let gatherable = rows.iter().all(|&(ao, _)| ao + reach <= i32::MAX as usize);
    if g.n_blocks == 1 && g.col_valid[0] == 1 && gatherable {
        for_blocks::<16>(rows, |ao, oo, v| {
            // SAFETY: forwarded contract; one block of one valid column; the operand
            // offsets fit the gathers' i32 indices (checked above).
            unsafe { kernel_vnni_one_column(g, a, ao, out, oo, v) }
        });
        return;
    }
    let mut jb = 0;
    while jb < g.n_blocks {
        let left = g.n_blocks - jb;
        if left >= 4 {
            for_blocks::<6>(rows, |ao, oo, v| {
                // SAFETY: forwarded contract; the features were checked by the caller.
                unsafe { kernel_vnni::<6, 4>(g, a, ao, jb, out, oo, v) }
            });
            jb += 4;
        } else if left >= 2 {
            for_blocks::<12>(rows, |ao, oo, v| {
                // SAFETY: as above.
                unsafe { kernel_vnni::<12, 2>(g, a, ao, jb, out, oo, v) }
            });
            jb += 2;
        } else {
            for_blocks::<16>(rows, |ao, oo, v| {
                // SAFETY: as above.
                unsafe { kernel_vnni::<16, 1>(g, a, ao, jb, out, oo, v) }
            });
            jb += 1;
        }
    }
}

/// AVX-VNNI microkernel (256-bit `vpdpbusd`, VEX encoding): `MR` rows × `NB` blocks of 8
/// columns; the operands and the packing are the AVX-512 VNNI path's with 8-column blocks.
///
/// # Safety
/// AVX-VNNI and AVX2; the `Int8Gemm::tile` contract; `jb + NB ≤ n_blocks`.
#[target_feature(enable = "avxvnni,avx2")]
unsafe fn kernel_avxvnni<const MR: usize, const NB: usize>(
    g: &Int8Gemm,
    a: *const u8,
    ao: &[usize; MR],
    jb: usize,
    out: *mut i8,
    oo: &[usize; MR],
    valid: usize,
) {
    let mut acc = [[_mm256_setzero_si256(); NB]; MR];
    let blk = g.blk_bytes;
    // SAFETY (whole body): as in `kernel_vnni`, with 32 bytes of weights per step.
    unsafe {
        let mut wp = g.w.as_ptr().add(jb * blk);
        for &t in g.taps.iter() {
            let mut rp = [a; MR];
            for m in 0..MR {
                rp[m] = a.add(ao[m] + t);
            }
            for s in 0..g.steps {
                let mut wv = [_mm256_setzero_si256(); NB];
                for j in 0..NB {
                    wv[j] = _mm256_loadu_si256(wp.add(j * blk).cast());
                }
                for m in 0..MR {
                    let av = _mm256_set1_epi32(rp[m].add(4 * s).cast::<i32>().read_unaligned());
                    for j in 0..NB {
                        acc[m][j] = _mm256_dpbusd_avx_epi32(acc[m][j], av, wv[j]);
                    }
                }
                wp = wp.add(32);
            }
        }
        // Spill the tile once, as in `kernel_avx2` (8-column blocks: the same epilogue).
        let mut tile = [[[0i32; 8]; NB]; MR];
        for m in 0..MR {
            for j in 0..NB {
                _mm256_storeu_si256(tile[m][j].as_mut_ptr().cast(), acc[m][j]);
            }
        }
        epilogue_avx2(g, &tile, jb, out, oo, valid);
    }
}

/// Runs one chunk of rows over every column block with the AVX-VNNI kernels.
///
/// # Safety
/// AVX-VNNI and AVX2 must be available; the `Int8Gemm::tile` contract.
#[target_feature(enable = "avxvnni,avx2")]
pub(super) unsafe fn tile_avxvnni(
    g: &Int8Gemm,
    a: *const u8,
    rows: &[(usize, usize)],
    out: *mut i8,
) {
    let mut jb = 0;
    while jb < g.n_blocks {
        if g.n_blocks - jb >= 2 {
            for_blocks::<6>(rows, |ao, oo, v| {
                // SAFETY: forwarded contract; the features were checked by the caller.
                unsafe { kernel_avxvnni::<6, 2>(g, a, ao, jb, out, oo, v) }
            });
            jb += 2;
        } else {
            for_blocks::<12>(rows, |ao, oo, v| {
                // SAFETY: as above.
                unsafe { kernel_avxvnni::<12, 1>(g, a, ao, jb, out, oo, v) }
            });
            jb += 1;
        }
    }
}
