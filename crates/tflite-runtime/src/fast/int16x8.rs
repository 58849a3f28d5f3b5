//! Fast 16x8 convolutions: CONV_2D and TRANSPOSE_CONV with int16 activations (zero point 0),
//! int8 per-channel weights and int64 bias, bit-identical to the reference kernels
//! (`reference::conv::conv2d_i16`, `reference::transpose_conv::transpose_conv_i16`).
//!
//! The reference accumulates every product in i64. Here each output is one GEMM row × column:
//! - the operand buffer is the input copied once per run with zero borders and its channels
//!   padded to an even count (zero is exact: the zero point is 0); a CONV_2D row (output pixel)
//!   reads it at one offset per filter tap, a TRANSPOSE_CONV row (input pixel, kernel = stride)
//!   at its own pixel and writes its own `k_h × k_w` output block; a CONV_2D with fewer than
//!   4 input channels gets an im2col buffer instead (one reduction of `k_h·k_w·in_c`);
//! - weights are packed once as i16 pairs, 8 columns per block;
//! - the AVX2 kernel multiplies pairs with `vpmaddwd` into i32 lanes and folds them into i64
//!   every [`PAIRS_PER_FOLD`] pairs, before any i32 sum could overflow (a pair is at most
//!   `2 · 32768 · 128 = 2^23`, and `255 · 2^23 < 2^31`), so the i64 total is the reference's
//!   exactly; the portable kernel accumulates in i64 directly;
//! - the epilogue adds the i64 bias and requantises with the reference's int64
//!   `MultiplyByQuantizedMultiplier` (`quant::QuantizedMultiplierI64`, its constants computed once
//!   per column), then clamps.
//!
//! `threads > 1` splits the rows into contiguous ranges (whole input rows for a transposed
//! convolution), each writing its own contiguous part of the output.

use crate::frame::{ConvGeometry, ConvQuantParams};
use crate::quant::QuantizedMultiplierI64;

/// Columns per block (one AVX2 vector of i32).
const LANES: usize = 8;
/// Rows per microkernel call.
const MR: usize = 4;
/// Column blocks per microkernel call (the last call of a row group may take one).
const NB: usize = 2;
/// `vpmaddwd` pairs summed in i32 before they are folded into i64 (see the module docs).
#[cfg(target_arch = "x86_64")]
const PAIRS_PER_FOLD: usize = 255;

/// How GEMM rows map onto the operand buffer and the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// CONV_2D: rows are output pixels; the operand buffer is the zero-bordered input
    /// `[batches][hp][wp][cp]`, read at one offset per tap.
    Conv { hp: usize, wp: usize },
    /// CONV_2D with few input channels: rows are output pixels; the operand buffer holds each
    /// pixel's receptive field (`k_h·k_w·in_c`, padded to `cp`).
    Im2col,
    /// TRANSPOSE_CONV with kernel = stride and no padding: rows are input pixels `[pixels][cp]`,
    /// column `tap · out_c + oc`.
    Transposed,
}

/// A packed 16x8 CONV_2D or TRANSPOSE_CONV.
#[derive(Debug, Clone)]
pub struct Int16x8Gemm {
    shape: Shape,
    geom: ConvGeometry,
    /// Operand values per row and tap (even).
    cp: usize,
    /// Operand-buffer offset of each tap from the row's base.
    taps: Vec<usize>,
    /// Operand values one row reads from its base (`max(taps) + cp`).
    span: usize,
    /// Real columns (`out_c`, or `k_h·k_w·out_c`).
    n_cols: usize,
    /// Packed weights `[block][tap][pair][lane][2]`, zero beyond the reduction and `n_cols`.
    w: Vec<i16>,
    /// Per column, padded to whole blocks: bias and requantisation.
    epilogue: Epilogue,
    /// Per column: output offset from the row's base.
    col_off: Vec<usize>,
    act_min: i32,
    act_max: i32,
    /// Whether the AVX2 kernel runs (else the portable one).
    avx2: bool,
}

impl Int16x8Gemm {
    /// Packs a 16x8 CONV_2D. `None` when the sizes do not match the geometry. `avx2` chooses
    /// the AVX2 kernel and is honoured only when this CPU has AVX2.
    pub fn conv(
        g: &ConvGeometry,
        q: &ConvQuantParams,
        filter: &[i8],
        bias: Option<&[i64]>,
        avx2: bool,
    ) -> Option<Self> {
        let khw = g.k_h * g.k_w;
        let k = khw * g.in_c;
        if filter.len() != g.out_c * k {
            return None;
        }
        if g.in_c < 4 && khw > 1 {
            let cp = k.div_ceil(2) * 2;
            return Self::pack(
                Shape::Im2col,
                g,
                q,
                bias,
                cp,
                vec![0],
                g.out_c,
                avx2,
                |col, _, i| (i < k).then(|| filter[col * k + i]),
            );
        }
        let need_h = (g.out_h.max(1) - 1) * g.stride_h + (g.k_h - 1) * g.dilation_h + 1;
        let need_w = (g.out_w.max(1) - 1) * g.stride_w + (g.k_w - 1) * g.dilation_w + 1;
        let hp = (g.pad_top + g.in_h).max(need_h);
        let wp = (g.pad_left + g.in_w).max(need_w);
        let cp = g.in_c.div_ceil(2) * 2;
        let mut taps = Vec::with_capacity(khw);
        for ky in 0..g.k_h {
            for kx in 0..g.k_w {
                taps.push((ky * g.dilation_h * wp + kx * g.dilation_w) * cp);
            }
        }
        let in_c = g.in_c;
        Self::pack(
            Shape::Conv { hp, wp },
            g,
            q,
            bias,
            cp,
            taps,
            g.out_c,
            avx2,
            |col, t, c| (c < in_c).then(|| filter[(col * khw + t) * in_c + c]),
        )
    }

    /// Packs a 16x8 TRANSPOSE_CONV whose kernel equals its stride, without padding (the
    /// U-Net decoder's 2×2 stride 2). `None` for every other case.
    pub fn transposed(
        g: &ConvGeometry,
        q: &ConvQuantParams,
        filter: &[i8],
        bias: Option<&[i64]>,
        avx2: bool,
    ) -> Option<Self> {
        let khw = g.k_h * g.k_w;
        if !g.is_tiling_transpose() || filter.len() != g.out_c * khw * g.in_c {
            return None;
        }
        let (out_c, in_c) = (g.out_c, g.in_c);
        let cp = in_c.div_ceil(2) * 2;
        Self::pack(
            Shape::Transposed,
            g,
            q,
            bias,
            cp,
            vec![0],
            khw * out_c,
            avx2,
            |col, _, c| {
                let (t, oc) = (col / out_c, col % out_c);
                (c < in_c).then(|| filter[(oc * khw + t) * in_c + c])
            },
        )
    }

    /// Common packing; `weight(column, tap, c)` is the filter value, `None` for padding.
    #[allow(clippy::too_many_arguments)]
    fn pack(
        shape: Shape,
        g: &ConvGeometry,
        q: &ConvQuantParams,
        bias: Option<&[i64]>,
        cp: usize,
        taps: Vec<usize>,
        n_cols: usize,
        avx2: bool,
        weight: impl Fn(usize, usize, usize) -> Option<i8>,
    ) -> Option<Self> {
        if q.multipliers.len() != g.out_c
            || q.shifts.len() != g.out_c
            || bias.is_some_and(|b| b.len() != g.out_c)
            || g.out_c == 0
        {
            return None;
        }
        let pairs = cp / 2;
        let blk_len = taps.len() * pairs * LANES * 2;
        let n_blocks = n_cols.div_ceil(LANES);
        let mut w = vec![0i16; n_blocks * blk_len];
        for col in 0..n_cols {
            let (blk, lane) = (col / LANES, col % LANES);
            for t in 0..taps.len() {
                for c in 0..cp {
                    let (p, e) = (c / 2, c % 2);
                    let at = blk * blk_len + ((t * pairs + p) * LANES + lane) * 2 + e;
                    w[at] = weight(col, t, c).map_or(0, i16::from);
                }
            }
        }
        let oc = |col: usize| col % g.out_c;
        #[cfg(target_arch = "x86_64")]
        let avx2 = avx2 && std::arch::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        let avx2 = avx2 && false;
        Some(Self {
            shape,
            geom: *g,
            cp,
            span: taps.iter().copied().max().unwrap_or(0) + cp,
            taps,
            n_cols,
            w,
            epilogue: Epilogue::new(n_blocks * LANES, |c| {
                (c < n_cols).then(|| {
                    (
                        bias.map_or(0, |b| b[oc(c)]),
                        QuantizedMultiplierI64::new(q.multipliers[oc(c)], q.shifts[oc(c)]),
                    )
                })
            }),
            col_off: (0..n_cols)
                .map(|c| match shape {
                    Shape::Transposed => {
                        let (t, oc) = (c / g.out_c, c % g.out_c);
                        ((t / g.k_w) * g.out_w + t % g.k_w) * g.out_c + oc
                    }
                    _ => c,
                })
                .collect(),
            act_min: q.act_min,
            act_max: q.act_max,
            avx2,
        })
    }

    /// Whether the AVX2 kernel runs (else the portable one).
    pub fn uses_avx2(&self) -> bool {
        self.avx2
    }

    /// GEMM rows, and rows per splitting unit with the output elements of one unit.
    fn units(&self) -> (usize, usize, usize) {
        let g = &self.geom;
        match self.shape {
            Shape::Conv { .. } | Shape::Im2col => (g.batches * g.out_h * g.out_w, 1, g.out_c),
            Shape::Transposed => (
                g.batches * g.in_h * g.in_w,
                g.in_w,
                g.stride_h * g.out_w * g.out_c,
            ),
        }
    }

    /// Runs the operator: `input` int16 `[N,H,W,C]`, `output` int16.
    ///
    /// # Panics
    /// If the slice lengths do not match the packed geometry (the interpreter sizes them).
    pub fn run(&self, input: &[i16], output: &mut [i16], threads: usize) {
        let g = &self.geom;
        assert_eq!(
            input.len(),
            g.batches * g.in_h * g.in_w * g.in_c,
            "fast 16x8 kernel: input length"
        );
        assert_eq!(
            output.len(),
            g.batches * g.out_h * g.out_w * g.out_c,
            "fast 16x8 kernel: output length"
        );
        let a = self.operand(input);
        let (rows, unit_rows, unit_out) = self.units();
        let units = rows / unit_rows.max(1);
        let threads = threads.clamp(1, units.max(1));
        if threads == 1 {
            self.run_rows(&a, 0..rows, output, 0);
            return;
        }
        super::workers::for_row_parts(output, unit_out, threads, |units, part| {
            let range = units.start * unit_rows..units.end * unit_rows;
            self.run_rows(&a, range, part, units.start * unit_out);
        });
    }

    /// The operand buffer of one run (see [`Shape`]).
    fn operand(&self, input: &[i16]) -> Vec<i16> {
        let g = &self.geom;
        let (cp, in_c) = (self.cp, g.in_c);
        match self.shape {
            Shape::Conv { hp, wp } => {
                let mut a = vec![0i16; g.batches * hp * wp * cp];
                for b in 0..g.batches {
                    for y in 0..g.in_h {
                        let src = &input[(b * g.in_h + y) * g.in_w * in_c..][..g.in_w * in_c];
                        let at = ((b * hp + g.pad_top + y) * wp + g.pad_left) * cp;
                        let dst = &mut a[at..at + g.in_w * cp];
                        if cp == in_c {
                            dst.copy_from_slice(src);
                        } else {
                            for (d, s) in dst.chunks_exact_mut(cp).zip(src.chunks_exact(in_c)) {
                                d[..in_c].copy_from_slice(s);
                            }
                        }
                    }
                }
                a
            }
            Shape::Transposed => {
                if cp == in_c {
                    return input.to_vec();
                }
                let mut a = vec![0i16; input.len() / in_c.max(1) * cp];
                for (d, s) in a.chunks_exact_mut(cp).zip(input.chunks_exact(in_c)) {
                    d[..in_c].copy_from_slice(s);
                }
                a
            }
            Shape::Im2col => {
                let rows = g.batches * g.out_h * g.out_w;
                let mut a = vec![0i16; rows * cp];
                for (r, row) in a.chunks_exact_mut(cp).enumerate() {
                    let ox = r % g.out_w;
                    let rest = r / g.out_w;
                    let (oy, b) = (rest % g.out_h, rest / g.out_h);
                    for ky in 0..g.k_h {
                        let iy = (oy * g.stride_h + ky * g.dilation_h).checked_sub(g.pad_top);
                        let Some(iy) = iy.filter(|&v| v < g.in_h) else {
                            continue;
                        };
                        for kx in 0..g.k_w {
                            let ix = (ox * g.stride_w + kx * g.dilation_w).checked_sub(g.pad_left);
                            let Some(ix) = ix.filter(|&v| v < g.in_w) else {
                                continue;
                            };
                            let src = ((b * g.in_h + iy) * g.in_w + ix) * in_c;
                            let dst = (ky * g.k_w + kx) * in_c;
                            // At most 3 values: a loop, not a `memmove` call.
                            for (d, &x) in row[dst..dst + in_c].iter_mut().zip(&input[src..]) {
                                *d = x;
                            }
                        }
                    }
                }
                a
            }
        }
    }

    /// Operand-buffer offset of GEMM row `r`.
    fn row_base(&self, r: usize) -> usize {
        let g = &self.geom;
        match self.shape {
            Shape::Conv { hp, wp } => {
                let ox = r % g.out_w;
                let rest = r / g.out_w;
                let (oy, b) = (rest % g.out_h, rest / g.out_h);
                ((b * hp + oy * g.stride_h) * wp + ox * g.stride_w) * self.cp
            }
            Shape::Im2col | Shape::Transposed => r * self.cp,
        }
    }

    /// Rows `range`, writing `out`, which is the output from element `base` on.
    fn run_rows(&self, a: &[i16], range: std::ops::Range<usize>, out: &mut [i16], base: usize) {
        let blk_len = self.taps.len() * self.cp * LANES;
        let n_blocks = self.n_cols.div_ceil(LANES);
        for m0 in range.clone().step_by(MR) {
            let n = (range.end - m0).min(MR);
            // Rows past `n` repeat the last one; their sums are not stored.
            let rows: [usize; MR] = std::array::from_fn(|m| self.row_base(m0 + m.min(n - 1)));
            let mut blk = 0;
            while blk < n_blocks {
                let nb = (n_blocks - blk).min(NB);
                let wb = &self.w[blk * blk_len..(blk + nb) * blk_len];
                let acc = self.dot_tile(a, &rows, wb, nb);
                for (m, sums) in acc.iter().enumerate().take(n) {
                    self.store(m0 + m, blk, &sums[..nb * LANES], out, base);
                }
                blk += nb;
            }
        }
    }

    /// `acc[m][j·8 + lane] = Σ_t Σ_c a[rows[m] + taps[t] + c] · w[j][t][c][lane]` for `nb`
    /// (1 or 2) packed blocks.
    fn dot_tile(
        &self,
        a: &[i16],
        rows: &[usize; MR],
        wb: &[i16],
        nb: usize,
    ) -> [[i64; NB * LANES]; MR] {
        let end = rows.iter().copied().max().unwrap_or(0) + self.span;
        assert!(end <= a.len() && wb.len() >= nb * self.taps.len() * self.cp * LANES);
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is only true when this CPU has AVX2 (checked in `pack`); the
            // assert above is the kernel's bounds contract.
            return unsafe {
                if nb == NB {
                    dot_tile_avx2::<NB>(a, rows, &self.taps, self.cp, wb)
                } else {
                    dot_tile_avx2::<1>(a, rows, &self.taps, self.cp, wb)
                }
            };
        }
        dot_tile_portable(a, rows, &self.taps, self.cp, wb, nb)
    }

    /// Requantises row `r`'s sums of the blocks from `blk` on into the output.
    fn store(&self, r: usize, blk: usize, sums: &[i64], out: &mut [i16], base: usize) {
        let g = &self.geom;
        let row_base = match self.shape {
            Shape::Conv { .. } | Shape::Im2col => r * g.out_c,
            Shape::Transposed => {
                let ix = r % g.in_w;
                let rest = r / g.in_w;
                let (iy, b) = (rest % g.in_h, rest / g.in_h);
                ((b * g.out_h + iy * g.stride_h) * g.out_w + ix * g.stride_w) * g.out_c
            }
        } - base;
        let range = (self.act_min, self.act_max);
        for (j, block) in sums.chunks_exact(LANES).enumerate() {
            let c0 = (blk + j) * LANES;
            let n = self.n_cols.saturating_sub(c0).min(LANES);
            let block: &[i64; LANES] = block.try_into().expect("whole blocks");
            let values = self.epilogue.block(block, c0, range, self.avx2);
            match self.shape {
                Shape::Conv { .. } | Shape::Im2col => {
                    for (o, &v) in out[row_base + c0..row_base + c0 + n]
                        .iter_mut()
                        .zip(&values)
                    {
                        *o = v;
                    }
                }
                Shape::Transposed => {
                    for (&v, &off) in values.iter().zip(&self.col_off[c0..c0 + n]) {
                        out[row_base + off] = v;
                    }
                }
            }
        }
    }
}

/// The per-column epilogue constants, padded to whole blocks: `v = ((sum + bias) · reduced +
/// round) >> shift`, clamped to the activation range.
#[derive(Debug, Clone)]
struct Epilogue {
    bias: Vec<i64>,
    reduced: Vec<i64>,
    round: Vec<i64>,
    shift: Vec<i64>,
}

impl Epilogue {
    /// `column(c)` gives a real column's bias and requantisation; padding columns get 0.
    fn new(
        padded: usize,
        mut column: impl FnMut(usize) -> Option<(i64, QuantizedMultiplierI64)>,
    ) -> Self {
        let mut e = Self {
            bias: vec![0; padded],
            reduced: vec![0; padded],
            round: vec![0; padded],
            shift: vec![1; padded],
        };
        for c in 0..padded {
            if let Some((bias, rq)) = column(c) {
                e.bias[c] = bias;
                e.reduced[c] = rq.reduced;
                e.round[c] = rq.round;
                e.shift[c] = i64::from(rq.total_shift);
            }
        }
        e
    }

    /// The output values of one block of sums (columns `c0..c0 + 8`).
    fn block(&self, sums: &[i64; LANES], c0: usize, range: (i32, i32), avx2: bool) -> [i16; LANES] {
        let cols = c0..c0 + LANES;
        let (bias, reduced, round, shift) = (
            &self.bias[cols.clone()],
            &self.reduced[cols.clone()],
            &self.round[cols.clone()],
            &self.shift[cols],
        );
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: `avx2` is only true when this CPU has AVX2 (checked in `pack`); every
            // slice holds 8 values (the constants are padded to whole blocks).
            return unsafe { requant_block_avx2(sums, bias, reduced, round, shift, range) };
        }
        let _ = avx2;
        let (lo, hi) = (i64::from(range.0), i64::from(range.1));
        std::array::from_fn(|i| {
            // The activation range lies inside i32, so one clamp covers the reference's two
            // (to i32, then to the range).
            let x = sums[i].wrapping_add(bias[i]);
            let v = x.wrapping_mul(reduced[i]).wrapping_add(round[i]) >> shift[i];
            v.max(lo).min(hi) as i16
        })
    }
}

/// [`Epilogue::block`] in AVX2: the i64 product from two 32×32→64 multiplies (`reduced` has
/// at most 15 bits), the arithmetic shift as a logical one on `x ^ sign`, the clamp with
/// 64-bit compares; bit-identical to the scalar arithmetic.
///
/// # Safety
/// AVX2 must be available; every slice holds at least 8 values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn requant_block_avx2(
    sums: &[i64; LANES],
    bias: &[i64],
    reduced: &[i64],
    round: &[i64],
    shift: &[i64],
    range: (i32, i32),
) -> [i16; LANES] {
    use std::arch::x86_64::*;
    assert!(bias.len() >= 8 && reduced.len() >= 8 && round.len() >= 8 && shift.len() >= 8);
    let mut out = [0i64; LANES];
    let (lo, hi) = (
        _mm256_set1_epi64x(i64::from(range.0)),
        _mm256_set1_epi64x(i64::from(range.1)),
    );
    for h in 0..2 {
        // SAFETY: 4 i64 at offset 4h of 8-element arrays and slices (asserted above).
        unsafe {
            let load = |p: *const i64| _mm256_loadu_si256(p.add(4 * h).cast());
            let x = _mm256_add_epi64(load(sums.as_ptr()), load(bias.as_ptr()));
            let r = load(reduced.as_ptr());
            let low = _mm256_mul_epu32(x, r);
            let high = _mm256_mul_epi32(_mm256_srli_epi64::<32>(x), r);
            let prod = _mm256_add_epi64(low, _mm256_slli_epi64::<32>(high));
            let v = _mm256_add_epi64(prod, load(round.as_ptr()));
            let sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), v);
            let shifted = _mm256_xor_si256(
                _mm256_srlv_epi64(_mm256_xor_si256(v, sign), load(shift.as_ptr())),
                sign,
            );
            let v = _mm256_blendv_epi8(shifted, lo, _mm256_cmpgt_epi64(lo, shifted));
            let v = _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
            _mm256_storeu_si256(out.as_mut_ptr().add(4 * h).cast(), v);
        }
    }
    out.map(|v| v as i16)
}

/// Portable kernel: i64 accumulation.
fn dot_tile_portable(
    a: &[i16],
    rows: &[usize; MR],
    taps: &[usize],
    cp: usize,
    wb: &[i16],
    nb: usize,
) -> [[i64; NB * LANES]; MR] {
    let mut acc = [[0i64; NB * LANES]; MR];
    let blk_len = taps.len() * cp * LANES;
    for (&row, sums) in rows.iter().zip(acc.iter_mut()) {
        for j in 0..nb {
            for (t, &tap) in taps.iter().enumerate() {
                let x = &a[row + tap..row + tap + cp];
                let w = &wb[j * blk_len + t * cp * LANES..][..cp * LANES];
                for (pair, wp) in x.chunks_exact(2).zip(w.chunks_exact(2 * LANES)) {
                    for lane in 0..LANES {
                        sums[j * LANES + lane] += i64::from(pair[0]) * i64::from(wp[2 * lane])
                            + i64::from(pair[1]) * i64::from(wp[2 * lane + 1]);
                    }
                }
            }
        }
    }
    acc
}

/// AVX2 kernel over `B` blocks: `vpmaddwd` into i32, folded into i64 every [`PAIRS_PER_FOLD`]
/// pairs.
///
/// # Safety
/// AVX2 must be available; `rows[m] + taps[t] + cp ≤ a.len()` for every row and tap, and `wb`
/// holds `B · taps.len() · cp · 8` weights.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_tile_avx2<const B: usize>(
    a: &[i16],
    rows: &[usize; MR],
    taps: &[usize],
    cp: usize,
    wb: &[i16],
) -> [[i64; NB * LANES]; MR] {
    use std::arch::x86_64::*;
    const { assert!(MR == 4 && B <= NB) };
    let pairs = cp / 2;
    let blk_len = taps.len() * cp * LANES;
    let mut wide = [[0i64; NB * LANES]; MR];
    let mut v = [[_mm256_setzero_si256(); B]; MR];
    let mut since_fold = 0;
    // SAFETY: by the contract, every operand read `rows[m] + tap + 2p + 2 ≤ a.len()` and
    // weight read `j·blk_len + (t·pairs + p)·16 + 16 ≤ wb.len()` is inside its slice.
    unsafe {
        let ap = a.as_ptr();
        let wp0 = wb.as_ptr();
        for (t, &tap) in taps.iter().enumerate() {
            let (a0, a1, a2, a3) = (
                ap.add(rows[0] + tap),
                ap.add(rows[1] + tap),
                ap.add(rows[2] + tap),
                ap.add(rows[3] + tap),
            );
            let wt = wp0.add(t * pairs * 2 * LANES);
            for p in 0..pairs {
                if since_fold == PAIRS_PER_FOLD {
                    fold::<B>(&mut v, &mut wide);
                    since_fold = 0;
                }
                since_fold += 1;
                let x = [
                    _mm256_set1_epi32(a0.add(2 * p).cast::<i32>().read_unaligned()),
                    _mm256_set1_epi32(a1.add(2 * p).cast::<i32>().read_unaligned()),
                    _mm256_set1_epi32(a2.add(2 * p).cast::<i32>().read_unaligned()),
                    _mm256_set1_epi32(a3.add(2 * p).cast::<i32>().read_unaligned()),
                ];
                for j in 0..B {
                    let w = _mm256_loadu_si256(wt.add(j * blk_len + p * 2 * LANES).cast());
                    for (vm, &xm) in v.iter_mut().zip(&x) {
                        vm[j] = _mm256_add_epi32(vm[j], _mm256_madd_epi16(xm, w));
                    }
                }
            }
        }
        fold::<B>(&mut v, &mut wide);
    }
    wide
}

/// Adds the i32 accumulators into the i64 sums and clears them.
///
/// # Safety
/// AVX2 must be available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn fold<const B: usize>(
    v: &mut [[std::arch::x86_64::__m256i; B]; MR],
    wide: &mut [[i64; NB * LANES]; MR],
) {
    use std::arch::x86_64::*;
    for m in 0..MR {
        for j in 0..B {
            let mut lanes = [0i32; LANES];
            // SAFETY: `lanes` holds 8 i32, one 256-bit store.
            unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v[m][j]) };
            for (w, l) in wide[m][j * LANES..(j + 1) * LANES].iter_mut().zip(lanes) {
                *w += i64::from(l);
            }
            v[m][j] = _mm256_setzero_si256();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Multipliers at and around the edges of the 16-bit reduction.
    const MULTIPLIERS: [i32; 6] = [0, 1, 1 << 30, 0x7FFE_FFFF, 0x7FFF_0000, i32::MAX];

    #[test]
    fn the_vector_epilogue_is_the_scalar_one() {
        let mut rng = crate::synth::Rng::new(0x2545_f491_4f6c_dd1du64);
        let mut next = || rng.next_u64();
        for case in 0..2000 {
            let e = Epilogue::new(8, |c| {
                let m = MULTIPLIERS[(next() % 6) as usize];
                let shift = (next() % 39) as i32 - 31;
                let bias = (next() as i64) >> (20 + c);
                Some((bias, QuantizedMultiplierI64::new(m, shift)))
            });
            let sums: [i64; 8] = std::array::from_fn(|_| (next() as i64) >> 17);
            let range = if case % 2 == 0 {
                (-32768, 32767)
            } else {
                (0, 20000)
            };
            let scalar = e.block(&sums, 0, range, false);
            let vector = e.block(&sums, 0, range, true);
            assert_eq!(scalar, vector, "case {case}");
            for (i, &v) in scalar.iter().enumerate() {
                let x = sums[i].wrapping_add(e.bias[i]);
                let rq = QuantizedMultiplierI64 {
                    reduced: e.reduced[i],
                    total_shift: e.shift[i] as u32,
                    round: e.round[i],
                };
                assert_eq!(i32::from(v), rq.apply(x).clamp(range.0, range.1));
            }
        }
    }
}
