//! Register-tiled AVX-512 kernels for the folded 3×3 convolution of [`crate::kernel`] and its
//! weight gradient.
//!
//! The GEMM formulation runs one `[C_out, C_in] × [C_in, columns]` product per tap, so at the
//! first level (`C_in` = 16) each GEMM reads and writes the whole output block to do 16
//! multiply-adds per element, nine times over. Here a tile of 8 output channels × 48 columns
//! stays in 24 `zmm` accumulators for every input channel and all nine taps, and is stored
//! once. The thin layers' weight gradient (16 or 32 output channels) runs
//! [`lane_grad_tile3`]: 16 output channels in the vector lanes (the output gradient transposed
//! per chunk of columns by [`transpose_grad_rows`]) against 3 input channels × 9 taps, each
//! input value broadcast from memory into its multiply-add. Other channel counts keep 3 output
//! channels × 9 taps (27 accumulators) of one input channel over a chunk's columns and reduce
//! them once at the end ([`weight_grad_tile3`]; a leftover one or two output channels run
//! [`weight_grad_row`]). Layers with more channels have their weight gradient in
//! [`deep_grad_tile`]: 32 output channels in the vector lanes against 12 input channels at one
//! tap.
//!
//! Both read the folded buffers past a row's last column by up to [`READ_SLACK`] values
//! (lanes that are never stored, or masked), which [`crate::kernel`] appends as zeros.

use std::sync::OnceLock;

/// Values read past the last folded row's end by a partial tile.
pub(crate) const READ_SLACK: usize = 64;

/// Output channels per forward tile.
pub(crate) const TILE_ROWS: usize = 8;
/// 16-lane vectors per forward tile row.
const TILE_VECTORS: usize = 3;
/// Columns per forward tile.
pub(crate) const TILE_COLUMNS: usize = 16 * TILE_VECTORS;
/// Columns per AVX2 forward tile ([`forward_tile_avx2`]): two 8-lane vectors.
pub(crate) const TILE_COLUMNS_AVX2: usize = 16;
/// Output channels per weight-gradient tile ([`weight_grad_tile3`]).
pub(crate) const GRAD_ROWS: usize = 3;

/// The kernels the folded convolutions run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvKernel {
    /// Nine shifted GEMMs per column chunk (the gemm crate): every CPU.
    Gemm,
    /// The thin layers on [`forward_tile_avx2`] and [`lane_grad_tile1_avx2`], the others on
    /// the GEMMs: x86-64 with AVX2 and FMA.
    Avx2,
    /// The register-tiled kernels of this module: x86-64 with AVX-512F.
    Avx512,
}

impl ConvKernel {
    /// Every kernel this CPU runs, the GEMMs first.
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    pub fn available() -> Vec<ConvKernel> {
        let mut kernels = vec![ConvKernel::Gemm];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            kernels.push(ConvKernel::Avx2);
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            kernels.push(ConvKernel::Avx512);
        }
        kernels
    }

    /// The kernel training uses: the best this CPU has (AVX-512F, then AVX2 + FMA, then the
    /// GEMMs), or the one `SHIFTED_CONV_KERNEL` names (`gemm`, `avx2`, `avx512`) where the CPU
    /// runs it (the kernels are compared in `unet-train`'s `conv_kernels` example).
    pub fn selected() -> ConvKernel {
        static SELECTED: OnceLock<ConvKernel> = OnceLock::new();
        *SELECTED.get_or_init(|| {
            let available = ConvKernel::available();
            let best = available.last().copied().unwrap_or(ConvKernel::Gemm);
            let Ok(asked) = std::env::var("SHIFTED_CONV_KERNEL") else {
                return best;
            };
            let found = available
                .iter()
                .copied()
                .find(|k| format!("{k:?}").eq_ignore_ascii_case(asked.trim()));
            found.unwrap_or_else(|| {
                eprintln!(
                    "SHIFTED_CONV_KERNEL={asked:?} is not one of the kernels this CPU runs \
                     ({available:?}); using {best:?}"
                );
                best
            })
        })
    }
}

/// Tap-major weights `[9][c_out][c_in]` packed for the forward tile: `[block][c_in][9][8]`,
/// block `b` holding output channels `8b..8b+8`, zeros past `c_out`.
pub(crate) fn pack_for_tiles(taps: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    use rayon::prelude::*;
    let blocks = c_out.div_ceil(TILE_ROWS);
    let mut packed = vec![0.0; blocks * c_in * 9 * TILE_ROWS];
    if c_in == 0 {
        return packed;
    }
    // One block of output channels per task; each tap row `taps[t][co]` is read in order.
    // Small layers' weights are packed on the calling thread ([`crate::kernel::SERIAL_VALUES`]).
    let block_len = c_in * 9 * TILE_ROWS;
    let pack_block = |(block, dst): (usize, &mut [f32])| {
        for o in 0..TILE_ROWS.min(c_out - block * TILE_ROWS) {
            let co = block * TILE_ROWS + o;
            for t in 0..9 {
                let src = &taps[(t * c_out + co) * c_in..][..c_in];
                for (ci, &v) in src.iter().enumerate() {
                    dst[(ci * 9 + t) * TILE_ROWS + o] = v;
                }
            }
        }
    };
    if packed.len() < crate::kernel::SERIAL_VALUES {
        packed
            .chunks_mut(block_len)
            .enumerate()
            .for_each(pack_block);
    } else {
        packed
            .par_chunks_mut(block_len)
            .enumerate()
            .for_each(pack_block);
    }
    packed
}

/// Where one forward tile reads and writes.
// Read only by the x86-64 kernels.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct Tile {
    /// First column of the tile in the folded input (its channel 0).
    pub input: *const f32,
    /// Row (channel) stride of the folded input.
    pub input_stride: usize,
    /// The nine tap offsets in the folded input.
    pub offsets: [usize; 9],
    /// The tile's packed weights, `[c_in][9][8]`.
    pub weights: *const f32,
    /// Input channels.
    pub c_in: usize,
    /// First output element (row 0, first column).
    pub output: *mut f32,
    /// Row stride of the output.
    pub output_stride: usize,
    /// Output rows to store (≤ 8).
    pub rows: usize,
    /// Columns to store (≤ 48).
    pub columns: usize,
}

/// Runs one forward tile.
///
/// # Safety
/// The CPU has AVX-512F; `input` is readable for `c_in` rows of `input_stride` from the tile's
/// first column plus `offsets[8] + 48` values (with [`READ_SLACK`] zeros after the last row);
/// `weights` holds `c_in · 72` values; `output` is writable for `rows` rows of `columns`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn forward_tile(tile: &Tile) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); TILE_VECTORS]; TILE_ROWS];
    for ci in 0..tile.c_in {
        // SAFETY (all pointer arithmetic and loads below): within the ranges the caller
        // guarantees.
        let row = unsafe { tile.input.add(ci * tile.input_stride) };
        let w = unsafe { tile.weights.add(ci * 9 * TILE_ROWS) };
        for t in 0..9 {
            let p = unsafe { row.add(tile.offsets[t]) };
            let mut x = [_mm512_setzero_ps(); TILE_VECTORS];
            for (k, v) in x.iter_mut().enumerate() {
                *v = unsafe { _mm512_loadu_ps(p.add(16 * k)) };
            }
            for (o, acc_row) in acc.iter_mut().enumerate() {
                let wv = _mm512_set1_ps(unsafe { *w.add(t * TILE_ROWS + o) });
                for (a, xv) in acc_row.iter_mut().zip(&x) {
                    *a = _mm512_fmadd_ps(wv, *xv, *a);
                }
            }
        }
    }
    for (o, acc_row) in acc.iter().enumerate().take(tile.rows) {
        for (k, a) in acc_row.iter().enumerate() {
            let lanes = tile.columns.saturating_sub(16 * k).min(16);
            let mask = ((1u32 << lanes) - 1) as __mmask16;
            // SAFETY: only the `columns` stored lanes of the `rows` rows are written.
            unsafe {
                _mm512_mask_storeu_ps(tile.output.add(o * tile.output_stride + 16 * k), mask, *a)
            };
        }
    }
}

/// Where one weight-gradient tile reads: `rows` output-gradient rows against one input
/// channel, over `columns` columns.
// Read only by the x86-64 kernels.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct GradTile {
    /// First column of the first output-gradient row (the wide view of its fold).
    pub grad: *const f32,
    /// Row stride of the output gradient.
    pub grad_stride: usize,
    /// First column of the input channel's row in its fold.
    pub input: *const f32,
    /// The nine tap offsets in the folded input (`offsets[3·dy + dx] = offsets[3·dy] + dx`).
    pub offsets: [usize; 9],
    /// Columns to reduce over.
    pub columns: usize,
}

/// Adds (or writes, when `!accumulate`) each row's nine sums to `out[t * tap_stride + r *
/// row_stride]` (row `r`, tap `t`), reducing every accumulator across its lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn store_tap_sums(
    rows: &[[std::arch::x86_64::__m512; 9]],
    out: &mut [f32],
    tap_stride: usize,
    row_stride: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::_mm512_reduce_add_ps;
    for (r, acc_row) in rows.iter().enumerate() {
        for (t, a) in acc_row.iter().enumerate() {
            let sum = _mm512_reduce_add_ps(*a);
            let slot = &mut out[t * tap_stride + r * row_stride];
            *slot = if accumulate { *slot + sum } else { sum };
        }
    }
}

/// Adds (or writes, when `!accumulate`) `Σ_j grad[j] · input[j + offsets[t]]` to
/// `out[t * tap_stride]` for one output-gradient row: the one or two rows
/// [`weight_grad_tile3`] leaves over.
///
/// # Safety
/// The CPU has AVX-512F; `grad` is readable for `columns`, `input` for `offsets[8] +
/// columns` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn weight_grad_row(
    tile: &GradTile,
    out: &mut [f32],
    tap_stride: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_ps(); 9];
    for j in (0..tile.columns).step_by(16) {
        let lanes = (tile.columns - j).min(16);
        let mask = ((1u32 << lanes) - 1) as __mmask16;
        // SAFETY (every load below): lanes of `mask` at column j of the gradient row and at
        // offsets[t] + j of the input, as the caller guarantees.
        let g = unsafe { _mm512_maskz_loadu_ps(mask, tile.grad.add(j)) };
        for (t, a) in acc.iter_mut().enumerate() {
            let x = unsafe { _mm512_maskz_loadu_ps(mask, tile.input.add(tile.offsets[t] + j)) };
            *a = _mm512_fmadd_ps(g, x, *a);
        }
    }
    store_tap_sums(&[acc], out, tap_stride, 0, accumulate);
}

/// Adds (or writes, when `!accumulate`) `Σ_j grad[r][j] · input[j + offsets[t]]` to
/// `out[t * tap_stride + r * row_stride]` for three output-gradient rows `r`. Its 27
/// accumulators are separate variables: with them in an array, LLVM moved them between
/// registers and the stack on every step (74 register moves and 61 stack accesses around 27
/// multiply-adds); the same happened with two rows, so leftover rows run
/// [`weight_grad_row`].
///
/// # Safety
/// The CPU has AVX-512F; `grad` is readable for three rows of `columns`, `input` for
/// `offsets[8] + columns` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn weight_grad_tile3(
    tile: &GradTile,
    out: &mut [f32],
    tap_stride: usize,
    row_stride: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    let z = _mm512_setzero_ps();
    let (mut a00, mut a01, mut a02, mut a03, mut a04, mut a05, mut a06, mut a07, mut a08) =
        (z, z, z, z, z, z, z, z, z);
    let (mut a10, mut a11, mut a12, mut a13, mut a14, mut a15, mut a16, mut a17, mut a18) =
        (z, z, z, z, z, z, z, z, z);
    let (mut a20, mut a21, mut a22, mut a23, mut a24, mut a25, mut a26, mut a27, mut a28) =
        (z, z, z, z, z, z, z, z, z);
    let steps = tile.columns.div_ceil(16);
    let rest = tile.columns % 16;
    for step in 0..steps {
        let mask: __mmask16 = if step + 1 == steps && rest > 0 {
            ((1u32 << rest) - 1) as __mmask16
        } else {
            0xffff
        };
        let j = 16 * step;
        // SAFETY (every load below): lanes of `mask` at column j of the three gradient rows
        // and at offsets[t] + j of the input, as the caller guarantees.
        let g0 = unsafe { _mm512_maskz_loadu_ps(mask, tile.grad.add(j)) };
        let g1 = unsafe { _mm512_maskz_loadu_ps(mask, tile.grad.add(tile.grad_stride + j)) };
        let g2 = unsafe { _mm512_maskz_loadu_ps(mask, tile.grad.add(2 * tile.grad_stride + j)) };
        // offsets[3·dy + dx] = offsets[3·dy] + dx.
        let r0 = unsafe { tile.input.add(tile.offsets[0] + j) };
        let r1 = unsafe { tile.input.add(tile.offsets[3] + j) };
        let r2 = unsafe { tile.input.add(tile.offsets[6] + j) };
        macro_rules! tap {
            ($row:ident + $dx:literal, $x0:ident, $x1:ident, $x2:ident) => {
                let x = unsafe { _mm512_maskz_loadu_ps(mask, $row.add($dx)) };
                $x0 = _mm512_fmadd_ps(g0, x, $x0);
                $x1 = _mm512_fmadd_ps(g1, x, $x1);
                $x2 = _mm512_fmadd_ps(g2, x, $x2);
            };
        }
        tap!(r0 + 0, a00, a10, a20);
        tap!(r0 + 1, a01, a11, a21);
        tap!(r0 + 2, a02, a12, a22);
        tap!(r1 + 0, a03, a13, a23);
        tap!(r1 + 1, a04, a14, a24);
        tap!(r1 + 2, a05, a15, a25);
        tap!(r2 + 0, a06, a16, a26);
        tap!(r2 + 1, a07, a17, a27);
        tap!(r2 + 2, a08, a18, a28);
    }
    let rows = [
        [a00, a01, a02, a03, a04, a05, a06, a07, a08],
        [a10, a11, a12, a13, a14, a15, a16, a17, a18],
        [a20, a21, a22, a23, a24, a25, a26, a27, a28],
    ];
    store_tap_sums(&rows, out, tap_stride, row_stride, accumulate);
}

/// Output channels per deep weight-gradient tile (two 16-lane vectors).
pub(crate) const DEEP_GRAD_CO: usize = 32;
/// Input channels per deep weight-gradient tile (24 accumulators with the two vectors).
pub(crate) const DEEP_GRAD_CI: usize = 12;

/// Where one deep weight-gradient tile reads: 32 output channels of the transposed output
/// gradient against 12 input channels at one tap, over every column.
// Read only by the x86-64 kernels.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct DeepGradTile {
    /// The transposed output gradient of the tile's 32 output channels, `[columns][32]`.
    pub grad_t: *const f32,
    /// Per input channel, its folded row advanced by the tap's offset: column `j` reads `j`.
    pub input: [*const f32; DEEP_GRAD_CI],
    /// Columns to reduce over.
    pub columns: usize,
    /// Add to `out` instead of overwriting it (a later block of columns).
    pub accumulate: bool,
}

/// The deep layers' weight gradient (64–256 channels), where the 3-row tile's reductions and
/// the GEMMs' per-tap packing cost most: `out[c][o] = Σ_j grad_t[j][o] · input[c][j]` for the
/// tile's 32 output channels `o` and 12 input channels `c` at one tap, in 24 accumulators
/// (lanes = output channels, so nothing is reduced across lanes), summed over the columns in
/// order. One tap per tile: with the three `dx` of a row in one tile, LLVM carried the
/// overlapping input loads from one column to the next and spilled accumulators for them.
///
/// # Safety
/// The CPU has AVX-512F; `grad_t` is readable for `columns · 32` values and every `input[c]`
/// for `columns`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn deep_grad_tile(tile: &DeepGradTile, out: &mut [[f32; 32]; DEEP_GRAD_CI]) {
    use std::arch::x86_64::*;
    // Accumulators `aC_h`: input channel C, output channels 16·h..16·h+16, starting from `out`
    // when accumulating; as variables, since LLVM keeps an array of them partly on the stack
    // (see `weight_grad_tile3`).
    let init = |c: usize, h: usize| {
        if tile.accumulate {
            // SAFETY: 16 of the 32 floats of `out[c]`.
            unsafe { _mm512_loadu_ps(out[c].as_ptr().add(16 * h)) }
        } else {
            _mm512_setzero_ps()
        }
    };
    let (mut a0_0, mut a0_1, mut a1_0, mut a1_1) = (init(0, 0), init(0, 1), init(1, 0), init(1, 1));
    let (mut a2_0, mut a2_1, mut a3_0, mut a3_1) = (init(2, 0), init(2, 1), init(3, 0), init(3, 1));
    let (mut a4_0, mut a4_1, mut a5_0, mut a5_1) = (init(4, 0), init(4, 1), init(5, 0), init(5, 1));
    let (mut a6_0, mut a6_1, mut a7_0, mut a7_1) = (init(6, 0), init(6, 1), init(7, 0), init(7, 1));
    let (mut a8_0, mut a8_1, mut a9_0, mut a9_1) = (init(8, 0), init(8, 1), init(9, 0), init(9, 1));
    let (mut a10_0, mut a10_1, mut a11_0, mut a11_1) =
        (init(10, 0), init(10, 1), init(11, 0), init(11, 1));
    let [x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11] = tile.input;
    for j in 0..tile.columns {
        // SAFETY (all loads below): column j of `grad_t` and of every `input[c]`, within the
        // ranges the caller guarantees.
        let g0 = unsafe { _mm512_loadu_ps(tile.grad_t.add(32 * j)) };
        let g1 = unsafe { _mm512_loadu_ps(tile.grad_t.add(32 * j + 16)) };
        macro_rules! pair {
            ($x:ident, $lo:ident, $hi:ident) => {
                let b = _mm512_set1_ps(unsafe { *$x.add(j) });
                $lo = _mm512_fmadd_ps(g0, b, $lo);
                $hi = _mm512_fmadd_ps(g1, b, $hi);
            };
        }
        pair!(x0, a0_0, a0_1);
        pair!(x1, a1_0, a1_1);
        pair!(x2, a2_0, a2_1);
        pair!(x3, a3_0, a3_1);
        pair!(x4, a4_0, a4_1);
        pair!(x5, a5_0, a5_1);
        pair!(x6, a6_0, a6_1);
        pair!(x7, a7_0, a7_1);
        pair!(x8, a8_0, a8_1);
        pair!(x9, a9_0, a9_1);
        pair!(x10, a10_0, a10_1);
        pair!(x11, a11_0, a11_1);
    }
    let sums = [
        [a0_0, a0_1],
        [a1_0, a1_1],
        [a2_0, a2_1],
        [a3_0, a3_1],
        [a4_0, a4_1],
        [a5_0, a5_1],
        [a6_0, a6_1],
        [a7_0, a7_1],
        [a8_0, a8_1],
        [a9_0, a9_1],
        [a10_0, a10_1],
        [a11_0, a11_1],
    ];
    for (out_c, [lo, hi]) in out.iter_mut().zip(&sums) {
        // SAFETY: 32 floats.
        unsafe {
            _mm512_storeu_ps(out_c.as_mut_ptr(), *lo);
            _mm512_storeu_ps(out_c.as_mut_ptr().add(16), *hi);
        }
    }
}

/// Output channels per lane weight-gradient tile: one 16-lane vector.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) const LANE_GRAD_CO: usize = 16;
/// Input channels per lane weight-gradient tile (27 accumulators with the nine taps).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) const LANE_GRAD_CI: usize = 3;

/// Where one lane weight-gradient tile reads: 16 (AVX-512) or 8 (AVX2) output channels of the
/// transposed output gradient against up to three input channels at all nine taps, over a
/// chunk's columns.
// Read only by the x86-64 kernels.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct LaneGradTile {
    /// The transposed output gradient of the tile's output channels, `[columns][lanes]`.
    pub grad_t: *const f32,
    /// Per input channel, its folded row at the chunk's first column (tap (0, 0)).
    pub input: [*const f32; LANE_GRAD_CI],
    /// The fold's row pitch: tap `(dy, dx)` of column `j` reads `input[c] + dy·pitch + dx + j`.
    pub pitch: usize,
    /// Columns to reduce over.
    pub columns: usize,
}

/// The thin layers' weight gradient (16 or 32 output channels): `out[c][t][o] += Σ_j
/// grad_t[j][o] · input[c][j + offset_t]` for the tile's 16 output channels `o` (the vector
/// lanes), three input channels `c` and the nine taps `t`, in 27 accumulators. Per column one
/// vector load and 27 multiply-adds, each with its input value broadcast from memory; no sum
/// across lanes. (The tile of [`weight_grad_tile3`], lanes along the columns, needs twelve
/// full-vector loads per 27 multiply-adds and reduces every accumulator at the end; it ran at
/// ≈ 40 % of the FMA peak here.)
///
/// # Safety
/// The CPU has AVX-512F; `grad_t` is readable for `columns · 16` values and every `input[c]`
/// for `2·pitch + 2 + columns`; `out` holds `3 · 9 · 16` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn lane_grad_tile3(tile: &LaneGradTile, out: &mut [f32]) {
    use std::arch::x86_64::*;
    let z = _mm512_setzero_ps();
    let (mut a00, mut a01, mut a02, mut a03, mut a04, mut a05, mut a06, mut a07, mut a08) =
        (z, z, z, z, z, z, z, z, z);
    let (mut a10, mut a11, mut a12, mut a13, mut a14, mut a15, mut a16, mut a17, mut a18) =
        (z, z, z, z, z, z, z, z, z);
    let (mut a20, mut a21, mut a22, mut a23, mut a24, mut a25, mut a26, mut a27, mut a28) =
        (z, z, z, z, z, z, z, z, z);
    let pitch = tile.pitch;
    let [x0, x1, x2] = tile.input;
    for j in 0..tile.columns {
        // SAFETY (all loads below): column j of `grad_t`, and input values at most
        // 2·pitch + 2 past column j of each row, as the caller guarantees.
        let g = unsafe { _mm512_loadu_ps(tile.grad_t.add(16 * j)) };
        macro_rules! channel {
            ($x:ident, $a0:ident, $a1:ident, $a2:ident, $a3:ident, $a4:ident, $a5:ident, $a6:ident, $a7:ident, $a8:ident) => {
                let p = unsafe { $x.add(j) };
                $a0 = _mm512_fmadd_ps(g, _mm512_set1_ps(unsafe { *p }), $a0);
                $a1 = _mm512_fmadd_ps(g, _mm512_set1_ps(unsafe { *p.add(1) }), $a1);
                $a2 = _mm512_fmadd_ps(g, _mm512_set1_ps(unsafe { *p.add(2) }), $a2);
                let p = unsafe { p.add(pitch) };
                $a3 = _mm512_fmadd_ps(g, _mm512_set1_ps(unsafe { *p }), $a3);
                $a4 = _mm512_fmadd_ps(g, _mm512_set1_ps(unsafe { *p.add(1) }), $a4);
                $a5 = _mm512_fmadd_ps(g, _mm512_set1_ps(unsafe { *p.add(2) }), $a5);
                let p = unsafe { p.add(pitch) };
                $a6 = _mm512_fmadd_ps(g, _mm512_set1_ps(unsafe { *p }), $a6);
                $a7 = _mm512_fmadd_ps(g, _mm512_set1_ps(unsafe { *p.add(1) }), $a7);
                $a8 = _mm512_fmadd_ps(g, _mm512_set1_ps(unsafe { *p.add(2) }), $a8);
            };
        }
        channel!(x0, a00, a01, a02, a03, a04, a05, a06, a07, a08);
        channel!(x1, a10, a11, a12, a13, a14, a15, a16, a17, a18);
        channel!(x2, a20, a21, a22, a23, a24, a25, a26, a27, a28);
    }
    let sums = [
        a00, a01, a02, a03, a04, a05, a06, a07, a08, a10, a11, a12, a13, a14, a15, a16, a17, a18,
        a20, a21, a22, a23, a24, a25, a26, a27, a28,
    ];
    add_lane_sums(&sums, out);
}

/// [`lane_grad_tile3`] for one input channel (`tile.input[0]`): the one or two channels a
/// layer's input channels leave over after the groups of three. `out` holds `9 · 16` values.
///
/// # Safety
/// As [`lane_grad_tile3`], for `input[0]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn lane_grad_tile1(tile: &LaneGradTile, out: &mut [f32]) {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_ps(); 9];
    let pitch = tile.pitch;
    let x = tile.input[0];
    for j in 0..tile.columns {
        // SAFETY: as in `lane_grad_tile3`.
        let g = unsafe { _mm512_loadu_ps(tile.grad_t.add(16 * j)) };
        for (t, a) in acc.iter_mut().enumerate() {
            let v = unsafe { *x.add(j + (t / 3) * pitch + t % 3) };
            *a = _mm512_fmadd_ps(g, _mm512_set1_ps(v), *a);
        }
    }
    add_lane_sums(&acc, out);
}

/// Adds each 16-lane sum to the next 16 values of `out`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn add_lane_sums(sums: &[std::arch::x86_64::__m512], out: &mut [f32]) {
    use std::arch::x86_64::*;
    for (dst, s) in out.chunks_exact_mut(16).zip(sums) {
        // SAFETY: 16 floats of `out`.
        unsafe {
            let p = dst.as_mut_ptr();
            _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), *s));
        }
    }
}

/// `grad_t[j][o] = rows[o][j]` for `j < n`: 16 rows of the output gradient (`first`, then
/// every `stride` values) transposed into `[n][16]` for [`lane_grad_tile3`], 16 columns at a
/// time in registers. Each of four stages swaps one bit between row and column index: for the
/// rows `i` and `i + b` (bit `b` of `i` clear), the values whose column has bit `b` set trade
/// places with those of the other row whose column has it clear.
///
/// # Safety
/// The CPU has AVX-512F; each of the 16 rows is readable for `n` values; `grad_t` holds
/// `16 · n`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn transpose_grad_rows(
    first: *const f32,
    stride: usize,
    n: usize,
    grad_t: &mut [f32],
) {
    use std::arch::x86_64::*;
    // Per stage b: the index vectors of the lower row (`low`) and the upper row (`high`) for
    // `_mm512_permutex2var_ps(lower, idx, upper)` (index bit 4 picks `upper`).
    let stage = |b: i32| {
        let low: [i32; 16] = std::array::from_fn(|c| {
            let c = c as i32;
            if c & b == 0 { c } else { 16 + c - b }
        });
        let high: [i32; 16] = std::array::from_fn(|c| {
            let c = c as i32;
            if c & b == 0 { c + b } else { 16 + c }
        });
        // SAFETY: 16 i32 each.
        unsafe {
            (
                _mm512_loadu_si512(low.as_ptr().cast()),
                _mm512_loadu_si512(high.as_ptr().cast()),
            )
        }
    };
    let stages = [stage(8), stage(4), stage(2), stage(1)];
    let whole = n - n % 16;
    for j in (0..whole).step_by(16) {
        // SAFETY: 16 values of each row from column j < n - 15.
        let mut r: [__m512; 16] =
            std::array::from_fn(|o| unsafe { _mm512_loadu_ps(first.add(o * stride + j)) });
        for (k, &(low, high)) in stages.iter().enumerate() {
            let b = 8 >> k;
            for i in 0..16 {
                if i & b == 0 {
                    let (lo, hi) = (r[i], r[i + b]);
                    r[i] = _mm512_permutex2var_ps(lo, low, hi);
                    r[i + b] = _mm512_permutex2var_ps(lo, high, hi);
                }
            }
        }
        for (c, v) in r.iter().enumerate() {
            // SAFETY: grad_t holds 16 · n values; (j + c) · 16 + 16 ≤ 16 · n.
            unsafe { _mm512_storeu_ps(grad_t.as_mut_ptr().add((j + c) * 16), *v) };
        }
    }
    // SAFETY: as the caller guarantees.
    unsafe { transpose_tail(first, stride, 16, whole..n, grad_t) };
}

/// `grad_t[j][o] = rows[o][j]` for `o < lanes` and the columns `columns` (what a register
/// transposition leaves over), one value at a time.
///
/// # Safety
/// Each of the `lanes` rows from `first` (every `stride` values) is readable up to
/// `columns.end`.
#[cfg(target_arch = "x86_64")]
unsafe fn transpose_tail(
    first: *const f32,
    stride: usize,
    lanes: usize,
    columns: std::ops::Range<usize>,
    grad_t: &mut [f32],
) {
    for o in 0..lanes {
        for j in columns.clone() {
            // SAFETY: column j < columns.end of row o.
            grad_t[j * lanes + o] = unsafe { *first.add(o * stride + j) };
        }
    }
}

/// [`lane_grad_tile1`] on AVX2 + FMA: 8 output channels in the lanes (`grad_t` is
/// `[columns][8]`) against one input channel (`tile.input[0]`) at the nine taps, in 9
/// accumulators (with the gradient and a broadcast, 11 of the 16 `ymm` registers). Per column
/// one vector load, nine broadcasts and nine multiply-adds. `out` holds `9 · 8` values.
///
/// # Safety
/// The CPU has AVX2 and FMA; `grad_t` is readable for `columns · 8` values and `input[0]` for
/// `2·pitch + 2 + columns`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn lane_grad_tile1_avx2(tile: &LaneGradTile, out: &mut [f32]) {
    use std::arch::x86_64::*;
    let z = _mm256_setzero_ps();
    let (mut a0, mut a1, mut a2, mut a3, mut a4, mut a5, mut a6, mut a7, mut a8) =
        (z, z, z, z, z, z, z, z, z);
    let pitch = tile.pitch;
    let x = tile.input[0];
    for j in 0..tile.columns {
        // SAFETY (all loads below): column j of `grad_t`, and input values at most
        // 2·pitch + 2 past column j, as the caller guarantees.
        let g = unsafe { _mm256_loadu_ps(tile.grad_t.add(8 * j)) };
        let p = unsafe { x.add(j) };
        a0 = _mm256_fmadd_ps(g, _mm256_set1_ps(unsafe { *p }), a0);
        a1 = _mm256_fmadd_ps(g, _mm256_set1_ps(unsafe { *p.add(1) }), a1);
        a2 = _mm256_fmadd_ps(g, _mm256_set1_ps(unsafe { *p.add(2) }), a2);
        let p = unsafe { p.add(pitch) };
        a3 = _mm256_fmadd_ps(g, _mm256_set1_ps(unsafe { *p }), a3);
        a4 = _mm256_fmadd_ps(g, _mm256_set1_ps(unsafe { *p.add(1) }), a4);
        a5 = _mm256_fmadd_ps(g, _mm256_set1_ps(unsafe { *p.add(2) }), a5);
        let p = unsafe { p.add(pitch) };
        a6 = _mm256_fmadd_ps(g, _mm256_set1_ps(unsafe { *p }), a6);
        a7 = _mm256_fmadd_ps(g, _mm256_set1_ps(unsafe { *p.add(1) }), a7);
        a8 = _mm256_fmadd_ps(g, _mm256_set1_ps(unsafe { *p.add(2) }), a8);
    }
    for (dst, s) in out
        .chunks_exact_mut(8)
        .zip(&[a0, a1, a2, a3, a4, a5, a6, a7, a8])
    {
        // SAFETY: 8 floats of `out`.
        unsafe {
            let p = dst.as_mut_ptr();
            _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), *s));
        }
    }
}

/// [`transpose_grad_rows`] for 8 rows into `[n][8]`, 8 columns at a time in `ymm` registers
/// (pairs of rows interleaved, then pairs of pairs, then the 128-bit halves exchanged).
///
/// # Safety
/// The CPU has AVX2; each of the 8 rows is readable for `n` values; `grad_t` holds `8 · n`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn transpose_grad_rows8(
    first: *const f32,
    stride: usize,
    n: usize,
    grad_t: &mut [f32],
) {
    use std::arch::x86_64::*;
    let whole = n - n % 8;
    for j in (0..whole).step_by(8) {
        // SAFETY: 8 values of each row from column j < n - 7.
        let r: [__m256; 8] =
            std::array::from_fn(|o| unsafe { _mm256_loadu_ps(first.add(o * stride + j)) });
        // t: rows (2k, 2k+1) interleaved; u: columns 4c..4c+3 of rows 4h..4h+3 per lane half.
        let t = [
            _mm256_unpacklo_ps(r[0], r[1]),
            _mm256_unpackhi_ps(r[0], r[1]),
            _mm256_unpacklo_ps(r[2], r[3]),
            _mm256_unpackhi_ps(r[2], r[3]),
            _mm256_unpacklo_ps(r[4], r[5]),
            _mm256_unpackhi_ps(r[4], r[5]),
            _mm256_unpacklo_ps(r[6], r[7]),
            _mm256_unpackhi_ps(r[6], r[7]),
        ];
        let u = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        let columns = [
            _mm256_permute2f128_ps::<0x20>(u[0], u[4]),
            _mm256_permute2f128_ps::<0x20>(u[1], u[5]),
            _mm256_permute2f128_ps::<0x20>(u[2], u[6]),
            _mm256_permute2f128_ps::<0x20>(u[3], u[7]),
            _mm256_permute2f128_ps::<0x31>(u[0], u[4]),
            _mm256_permute2f128_ps::<0x31>(u[1], u[5]),
            _mm256_permute2f128_ps::<0x31>(u[2], u[6]),
            _mm256_permute2f128_ps::<0x31>(u[3], u[7]),
        ];
        for (c, v) in columns.iter().enumerate() {
            // SAFETY: grad_t holds 8 · n values; (j + c) · 8 + 8 ≤ 8 · n.
            unsafe { _mm256_storeu_ps(grad_t.as_mut_ptr().add((j + c) * 8), *v) };
        }
    }
    // SAFETY: as the caller guarantees.
    unsafe { transpose_tail(first, stride, 8, whole..n, grad_t) };
}

/// [`forward_tile`] on AVX2 + FMA: the same packed weights and 8 output rows, 16 columns,
/// in two passes of 4 rows × 2 vectors (8 accumulators; per input channel and tap two vector
/// loads and four broadcasts feed 8 multiply-adds). With 4 rows × 3 vectors (12 of the 16
/// `ymm` registers) LLVM spilled across the unrolled taps and the tile ran slower than the
/// GEMMs.
///
/// # Safety
/// The CPU has AVX2 and FMA; `input` is readable for `c_in` rows of `input_stride` from the
/// tile's first column plus `offsets[8] + 16` values; `weights` holds `c_in · 72` values;
/// `output` is writable for `rows` rows of `columns` (≤ 16).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn forward_tile_avx2(tile: &Tile) {
    use std::arch::x86_64::*;
    const HALF: usize = 4;
    for o0 in (0..tile.rows).step_by(HALF) {
        let mut acc = [[_mm256_setzero_ps(); 2]; HALF];
        for ci in 0..tile.c_in {
            // SAFETY (all pointer arithmetic and loads below): within the ranges the caller
            // guarantees.
            let row = unsafe { tile.input.add(ci * tile.input_stride) };
            let w = unsafe { tile.weights.add(ci * 9 * TILE_ROWS + o0) };
            for t in 0..9 {
                let p = unsafe { row.add(tile.offsets[t]) };
                let x: [__m256; 2] =
                    std::array::from_fn(|k| unsafe { _mm256_loadu_ps(p.add(8 * k)) });
                for (o, acc_row) in acc.iter_mut().enumerate() {
                    let wv = _mm256_set1_ps(unsafe { *w.add(t * TILE_ROWS + o) });
                    for (a, xv) in acc_row.iter_mut().zip(&x) {
                        *a = _mm256_fmadd_ps(wv, *xv, *a);
                    }
                }
            }
        }
        let lane_index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        for (o, acc_row) in acc.iter().enumerate().take(tile.rows - o0) {
            for (k, a) in acc_row.iter().enumerate() {
                let lanes = tile.columns.saturating_sub(8 * k).min(8);
                // SAFETY: only the `columns` stored lanes of the `rows` rows are written.
                let dst = unsafe { tile.output.add((o0 + o) * tile.output_stride + 8 * k) };
                if lanes == 8 {
                    unsafe { _mm256_storeu_ps(dst, *a) };
                } else if lanes > 0 {
                    let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes as i32), lane_index);
                    unsafe { _mm256_maskstore_ps(dst, mask, *a) };
                }
            }
        }
    }
}
