//! Winograd's F(2×2, 3×3) form of the folded 3×3 convolution, for layers with many channels
//! on both sides.
//!
//! A 2×2 block of outputs (a *tile*) needs the 4×4 patch of padded input around it. With
//! `U = G·g·Gᵀ` (each 3×3 kernel `g` as 4×4), `V = Bᵀ·d·B` (each input patch `d` as 4×4) and
//! `Y = Aᵀ·(U ⊙ V)·A`, the 36 multiply-adds per tile, input channel and output channel of the
//! direct form become 16, and the channel sums become 16 independent GEMMs
//! `M[ξ] = U[ξ] · V[ξ]` (`[C_out, C_in] × [C_in, tiles]`), one per element `ξ` of the 4×4
//! transform. Only valid outputs are tiles, so the folded layout's discarded columns (27 % more
//! columns at 8×8, 13 % at 16×16) are not computed either. The transforms cost a few additions
//! per value and channel, which the GEMMs amortise on the layers with [`MIN_CHANNELS`] or
//! more (see there) and [`MIN_TILES`] tiles or more (`--example conv_kernels` in `unet-train`
//! times both forms).
//!
//! The matrices (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016):
//! `Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]`,
//! `G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]`, `Aᵀ = [1 1 1 0; 0 1 −1 −1]`.
//!
//! The sums run in another order than the direct form's and through the transforms, so results
//! match it within float rounding (the tests bound the difference); they do not depend on
//! which thread runs which chunk of tiles.
//!
//! `SHIFTED_CONV_WINOGRAD=off` in the environment (or [`set_enabled`]) runs the direct form
//! instead, to compare the two.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU8, Ordering};

use rayon::prelude::*;

use crate::kernel::{Epilogue, Nchw, OutPtr, even_share, part_outputs};
use crate::upconv::gemm_into;

/// The Winograd form runs a convolution's forward pass and input gradient when its wider side
/// has at least this many channels, and its weight gradient when both sides have (and the
/// image has even sides). Below it the transforms' memory traffic outweighs the saved
/// multiply-adds: 32 → 32 channels ran at 1.0–1.1× the direct kernels' time, 16 → 16 at
/// 1.5–1.6× (`--example conv_kernels`, Sapphire Rapids).
pub const MIN_CHANNELS: usize = 64;

/// The narrower side's least channels for the forward pass and input gradient: 64 → 32 ran at
/// 0.80–0.95× the direct form's time, 32 → 64 at 0.72–0.90× (their weight gradients at
/// 0.84–1.05×, so those keep the direct form).
pub const MIN_NARROW_CHANNELS: usize = 32;

/// Bytes of transformed input and output a chunk of tiles keeps (`16 · (C_in + C_out)` values
/// per tile), so that the sixteen GEMMs read and write them from L2.
const CHUNK_BYTES: usize = 1 << 21;

/// [`enabled`]'s state: not read yet, on, off.
static MODE: AtomicU8 = AtomicU8::new(0);

/// Whether the convolutions the Winograd form [`applies`] to run in it: yes, unless the
/// environment has `SHIFTED_CONV_WINOGRAD=off` (read once) or [`set_enabled`] said no.
pub fn enabled() -> bool {
    match MODE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let off = std::env::var("SHIFTED_CONV_WINOGRAD").is_ok_and(|v| {
                ["off", "0", "false", "no"]
                    .iter()
                    .any(|o| v.eq_ignore_ascii_case(o))
            });
            MODE.store(if off { 2 } else { 1 }, Ordering::Relaxed);
            !off
        }
    }
}

/// Turns the Winograd form on or off for the rest of the process (the direct form runs every
/// convolution when off).
pub fn set_enabled(on: bool) {
    MODE.store(if on { 1 } else { 2 }, Ordering::Relaxed);
}

/// The Winograd form runs a convolution when it has at least this many tiles (2×2 outputs):
/// below it, transforming the weights (16 values per pair of channels, on every call) and
/// the GEMMs' few columns cost more than the saved multiply-adds. `--example conv_kernels`,
/// Sapphire Rapids: 0.6–0.8× the direct form's time with 128–2,048 tiles (batch 8), 0.8× with
/// 256 (64 channels at 32×32, batch 1), 1.2× with 64 and 2–3× with 16 (batch 1 at 16×16 and
/// 8×8).
pub const MIN_TILES: usize = 128;

/// Whether [`conv_folded`] runs a convolution of `shape` (its input) to `c_out` channels.
pub(crate) fn applies(shape: Nchw, c_out: usize) -> bool {
    shape.channels.min(c_out) >= MIN_NARROW_CHANNELS
        && shape.channels.max(c_out) >= MIN_CHANNELS
        && tiles_apply(shape)
}

/// Whether [`weight_grad`] runs the weight gradient of a convolution of `shape` to `c_out`.
pub(crate) fn weight_grad_applies(shape: Nchw, c_out: usize) -> bool {
    shape.channels.min(c_out) >= MIN_CHANNELS && tiles_apply(shape)
}

/// Even sides and at least [`MIN_TILES`] tiles.
fn tiles_apply(shape: Nchw) -> bool {
    shape.height.is_multiple_of(2)
        && shape.width.is_multiple_of(2)
        && shape.batch * (shape.height / 2) * (shape.width / 2) >= MIN_TILES
}

/// Values of each plane per block of [`transform_weights`].
const WEIGHT_BLOCK: usize = 1024;

/// `U[ξ][c_out][c_in] = (G·g·Gᵀ)[ξ]` for every kernel `g` of the tap-major `taps`
/// (`[9][c_out][c_in]`, `plane = c_out·c_in`).
fn transform_weights(taps: &[f32], plane: usize) -> Vec<f32> {
    let mut u = vec![0.0f32; 16 * plane];
    let blocks = plane.div_ceil(WEIGHT_BLOCK);
    let dst = OutPtr(u.as_mut_ptr());
    let run = |blk: usize| transform_weight_block_widest(taps, plane, blk, dst);
    if plane < crate::kernel::SERIAL_VALUES {
        (0..blocks).for_each(run);
    } else {
        (0..blocks).into_par_iter().for_each(run);
    }
    u
}

/// Block `blk` (values `blk·1024 ..` of each plane) of [`transform_weights`] into `dst`, the
/// `16 · plane` values of `U`.
#[inline(always)]
fn transform_weight_block(taps: &[f32], plane: usize, blk: usize, dst: OutPtr) {
    const BLOCK: usize = WEIGHT_BLOCK;
    let k0 = blk * BLOCK;
    let n = BLOCK.min(plane - k0);
    let tap = |t: usize| &taps[t * plane + k0..][..n];
    // SAFETY: block `blk` writes elements k0..k0+n of each of the 16 planes of `U` behind `dst`
    // (`16 · plane` values), which no other block writes.
    let out =
        |xi: usize| unsafe { std::slice::from_raw_parts_mut(dst.get().add(xi * plane + k0), n) };
    // Rows of G·g: r[ky][0..4] from kernel row ky's three taps.
    let mut rows = [[[0.0f32; BLOCK]; 4]; 3];
    for (ky, row) in rows.iter_mut().enumerate() {
        let (a, b, c) = (tap(3 * ky), tap(3 * ky + 1), tap(3 * ky + 2));
        for k in 0..n {
            row[0][k] = a[k];
            row[1][k] = (a[k] + b[k] + c[k]) * 0.5;
            row[2][k] = (a[k] - b[k] + c[k]) * 0.5;
            row[3][k] = c[k];
        }
    }
    // Then G applied down the columns: U[i][j] from rows[0..3][j].
    let [row0, row1, row2] = &rows;
    for (j, ((r0, r1), r2)) in row0.iter().zip(row1).zip(row2).enumerate() {
        let (u0, u1, u2, u3) = (out(j), out(4 + j), out(8 + j), out(12 + j));
        for k in 0..n {
            u0[k] = r0[k];
            u1[k] = (r0[k] + r1[k] + r2[k]) * 0.5;
            u2[k] = (r0[k] - r1[k] + r2[k]) * 0.5;
            u3[k] = r2[k];
        }
    }
}

/// Values between the planes `ξ` of a chunk's transformed inputs or GEMM results
/// (`channels · n` values each): 64 bytes more, so that the 16 planes' rows at the same tile
/// are not all 4 KiB apart multiples, which would put the transforms' 16 reads or writes of a
/// tile in one L1 set.
fn xi_stride(channels: usize, n: usize) -> usize {
    channels * n + 16
}

/// Zeros the padding after the `len` values of each plane (`stride` apart) of `planes`.
fn zero_padding(planes: &mut [MaybeUninit<f32>], len: usize, stride: usize) {
    for plane in planes.chunks_exact_mut(stride) {
        plane[len..].iter_mut().for_each(|v| {
            v.write(0.0);
        });
    }
}

/// The geometry of the tiles: `tw` tiles per tile row, `th` tile rows per image.
#[derive(Clone, Copy)]
struct Tiles {
    tw: usize,
    th: usize,
    /// Row width of the folded buffer (`W + 1`).
    pw: usize,
    /// Values per image block of the folded buffer.
    block: usize,
    /// Channel stride of the folded buffer.
    stride: usize,
}

impl Tiles {
    /// The tiles of `shape` (even sides), whose fold has `folded_len` values: checks that
    /// the last tile row of the last image, which reads the folded row below it (the zero
    /// tail) one value past its end, stays inside the buffer.
    fn new(shape: Nchw, folded_len: usize) -> Tiles {
        let (h, w) = (shape.height, shape.width);
        let t = Tiles {
            tw: w / 2,
            th: h / 2,
            pw: w + 1,
            block: (h + 1) * (w + 1),
            stride: shape.folded_stride(),
        };
        assert!(
            (shape.channels - 1) * t.stride + shape.batch * t.block + t.pw < folded_len,
            "winograd: folded input too short"
        );
        t
    }
}

/// `V[ξ][c][k]` (`n` tiles per row `c`) for the tile rows `rows` (`q = b·th + ty`) of every
/// input channel `c` of `folded`.
#[inline(always)]
fn transform_input(
    folded: &[f32],
    c_in: usize,
    t: Tiles,
    rows: std::ops::Range<usize>,
    v: &mut [MaybeUninit<f32>],
) {
    let n = rows.len() * t.tw;
    let vs = xi_stride(c_in, n);
    let tw = t.tw;
    // Even and odd columns of the four patch rows (tw + 1 each), then of their row transform
    // Bᵀ·d: tile tx's patch columns are even[tx], odd[tx], even[tx + 1], odd[tx + 1].
    let mut even = vec![0.0f32; 4 * (tw + 1)];
    let mut odd = vec![0.0f32; 4 * (tw + 1)];
    let mut t_even = vec![0.0f32; 4 * (tw + 1)];
    let mut t_odd = vec![0.0f32; 4 * (tw + 1)];
    for c in 0..c_in {
        for (r, q) in rows.clone().enumerate() {
            let (b, ty) = (q / t.th, q % t.th);
            // Patch row dy of tile (ty, tx) is folded row 2·ty + dy of image b (row 0 being the
            // zero row above the image), columns 2·tx .. 2·tx + 4 (column 0 the left zero; the
            // last tile's fourth column is the next row's zero).
            let base = c * t.stride + b * t.block + 2 * ty * t.pw;
            for dy in 0..4 {
                let src = &folded[base + dy * t.pw..][..2 * tw + 2];
                let e = &mut even[dy * (tw + 1)..][..tw + 1];
                let o = &mut odd[dy * (tw + 1)..][..tw + 1];
                for ((pair, e), o) in src.chunks_exact(2).zip(e).zip(o) {
                    *e = pair[0];
                    *o = pair[1];
                }
            }
            for (plane, t_plane) in [(&even, &mut t_even), (&odd, &mut t_odd)] {
                let (d0, rest) = plane.split_at(tw + 1);
                let (d1, rest) = rest.split_at(tw + 1);
                let (d2, d3) = rest.split_at(tw + 1);
                let (t0, rest) = t_plane.split_at_mut(tw + 1);
                let (t1, rest) = rest.split_at_mut(tw + 1);
                let (t2, t3) = rest.split_at_mut(tw + 1);
                for k in 0..tw + 1 {
                    t0[k] = d0[k] - d2[k];
                    t1[k] = d1[k] + d2[k];
                    t2[k] = d2[k] - d1[k];
                    t3[k] = d1[k] - d3[k];
                }
            }
            // Then ·B along each row.
            for i in 0..4 {
                let e = &t_even[i * (tw + 1)..][..tw + 1];
                let o = &t_odd[i * (tw + 1)..][..tw + 1];
                let at = |j: usize| (4 * i + j) * vs + c * n + r * tw;
                let (v0, rest) = v[at(0)..].split_at_mut(vs);
                let (v1, rest) = rest.split_at_mut(vs);
                let (v2, v3) = rest.split_at_mut(vs);
                let (v0, v1, v2, v3) = (&mut v0[..tw], &mut v1[..tw], &mut v2[..tw], &mut v3[..tw]);
                for tx in 0..tw {
                    v0[tx].write(e[tx] - e[tx + 1]);
                    v1[tx].write(o[tx] + e[tx + 1]);
                    v2[tx].write(e[tx + 1] - o[tx]);
                    v3[tx].write(o[tx] - o[tx + 1]);
                }
            }
        }
    }
}

/// `Aᵀ·M·A` of the tiles of one tile row of one output channel (`m[ξ]` their 16 GEMM
/// results, `tw` each): output rows `top` and `bottom` (`2·tw` values each), plus `add`.
#[inline(always)]
fn transform_output(m: [&[f32]; 16], add: f32, top: &mut [f32], bottom: &mut [f32], s: &mut [f32]) {
    let tw = m[0].len();
    // s[j] = M[0][j] + M[1][j] + M[2][j], s[4 + j] = M[1][j] − M[2][j] − M[3][j].
    let (s_top, s_bottom) = s.split_at_mut(4 * tw);
    for j in 0..4 {
        let (a, b, e, f) = (
            &m[j][..tw],
            &m[4 + j][..tw],
            &m[8 + j][..tw],
            &m[12 + j][..tw],
        );
        let st = &mut s_top[j * tw..][..tw];
        let sb = &mut s_bottom[j * tw..][..tw];
        for k in 0..tw {
            st[k] = a[k] + b[k] + e[k];
            sb[k] = b[k] - e[k] - f[k];
        }
    }
    for (s, out) in [(&*s_top, top), (&*s_bottom, bottom)] {
        let (s0, s1, s2, s3) = (
            &s[..tw],
            &s[tw..2 * tw],
            &s[2 * tw..3 * tw],
            &s[3 * tw..4 * tw],
        );
        for (k, pair) in out[..2 * tw].chunks_exact_mut(2).enumerate() {
            pair[0] = s0[k] + s1[k] + s2[k] + add;
            pair[1] = s1[k] - s2[k] - s3[k] + add;
        }
    }
}

/// `V` of the tile rows `rows` of every channel of `folded` (`c_in` channels):
/// `[16][c_in][n]`, planes [`xi_stride`] apart, by the AVX-512 transform when `avx512` (which
/// the CPU must have) or the portable one.
fn transformed_input(
    folded: &[f32],
    c_in: usize,
    t: Tiles,
    rows: std::ops::Range<usize>,
    avx512: bool,
) -> Vec<f32> {
    let n = rows.len() * t.tw;
    let vs = xi_stride(c_in, n);
    let mut v: Vec<f32> = Vec::with_capacity(16 * vs);
    let v_planes = &mut v.spare_capacity_mut()[..16 * vs];
    zero_padding(v_planes, c_in * n, vs);
    #[cfg(target_arch = "x86_64")]
    if avx512 {
        assert!(std::arch::is_x86_feature_detected!("avx512f"));
        // SAFETY: the CPU has AVX-512F; `v_planes` holds `16` planes of `c_in · n` values and
        // `folded` the reads its callers check.
        unsafe { avx512::transform_input(folded, c_in, t, rows, v_planes) };
    } else {
        transform_input_widest(folded, c_in, t, rows, v_planes);
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = avx512;
        transform_input(folded, c_in, t, rows, v_planes);
    }
    // SAFETY: the transform wrote the `c_in · n` values of every plane, `zero_padding` the
    // rest.
    unsafe { v.set_len(16 * vs) };
    v
}

/// Tile rows per chunk and the number of chunks for `tile_rows` rows of `tw` tiles whose
/// transformed values take `per_tile` bytes: chunks that fit [`CHUNK_BYTES`], at least one
/// per thread where there are enough rows.
fn chunking(tile_rows: usize, tw: usize, per_tile: usize) -> (usize, usize) {
    let cached_rows = (CHUNK_BYTES / (per_tile * tw)).max(1);
    let enough_rows = tile_rows.div_ceil(rayon::current_num_threads()).max(1);
    let mut rows_per_chunk = cached_rows.min(enough_rows);
    // Whole multiples of 64 tiles where that is possible: the GEMMs' blocks of 64 rows (of the
    // transposed products), without a remainder block (`--example conv_kernels`: 0.58–0.73×
    // the direct form's time on the 256-channel layers' forward pass, 0.66–0.76× with 80- and
    // 32-tile chunks, the other shapes within the noise).
    if tw < 64 && 64 % tw == 0 && rows_per_chunk * tw >= 64 {
        rows_per_chunk = rows_per_chunk * tw / 64 * 64 / tw;
    }
    (rows_per_chunk, tile_rows.div_ceil(rows_per_chunk))
}

/// The 3×3 convolution of [`crate::kernel`]'s folded input (`shape`, `taps` as
/// `[9][c_out][c_in]`) by F(2×2, 3×3), through `epilogue`, into one NCHW tensor per part of
/// the output channels (`parts`), as the direct form returns them. [`applies`] must hold.
pub(crate) fn conv_folded(
    folded: &[f32],
    shape: Nchw,
    taps: &[f32],
    parts: &[usize],
    epilogue: Epilogue,
) -> Vec<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    let avx512 = std::arch::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    let avx512 = false;
    conv_folded_on(folded, shape, taps, parts, epilogue, avx512)
}

/// [`conv_folded`] with the transforms' AVX-512 form (`avx512`, which the CPU must have) or
/// their portable one.
fn conv_folded_on(
    folded: &[f32],
    shape: Nchw,
    taps: &[f32],
    parts: &[usize],
    epilogue: Epilogue,
    avx512: bool,
) -> Vec<Vec<f32>> {
    let c_out: usize = parts.iter().sum();
    let c_in = shape.channels;
    assert!(applies(shape, c_out));
    assert_eq!(taps.len(), 9 * c_out * c_in);
    let (w, plane) = (shape.width, shape.height * shape.width);
    let t = Tiles::new(shape, folded.len());
    let u = transform_weights(taps, c_out * c_in);
    let tile_rows = shape.batch * t.th;
    let per_tile = 16 * (c_in + c_out) * std::mem::size_of::<f32>();
    let (rows_per_chunk, chunks) = chunking(tile_rows, t.tw, per_tile);
    let parallelism = if chunks >= rayon::current_num_threads() {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(0)
    };
    let (mut outs, dsts) = part_outputs(shape, parts);
    // Output channel → (part, channel in it).
    let owners: Vec<(usize, usize)> = parts
        .iter()
        .enumerate()
        .flat_map(|(p, &c)| (0..c).map(move |k| (p, k)))
        .collect();
    (0..chunks).into_par_iter().for_each(|i| {
        let rows = i * rows_per_chunk..((i + 1) * rows_per_chunk).min(tile_rows);
        let n = rows.len() * t.tw;
        let (vs, ms) = (xi_stride(c_in, n), xi_stride(c_out, n));
        let v = transformed_input(folded, c_in, t, rows.clone(), avx512);
        let mut m: Vec<f32> = Vec::with_capacity(16 * ms);
        let dst = m.spare_capacity_mut().as_mut_ptr().cast::<f32>();
        for xi in 0..16 {
            // SAFETY: dst block ξ is `c_out × n` row-major inside `m`'s capacity, written
            // whole; U[ξ] is `c_out × c_in` row-major, V[ξ] is `c_in × n` row-major; none
            // overlap.
            unsafe {
                gemm_into(
                    dst.add(xi * ms),
                    c_out,
                    n,
                    c_in,
                    u.as_ptr().add(xi * c_out * c_in),
                    c_in as isize,
                    1,
                    v.as_ptr().add(xi * vs),
                    n as isize,
                    1,
                    false,
                    parallelism,
                );
            }
        }
        zero_padding(&mut m.spare_capacity_mut()[..16 * ms], c_out * n, ms);
        // SAFETY: the sixteen GEMMs wrote the `c_out · n` values of every plane,
        // `zero_padding` the rest.
        unsafe { m.set_len(16 * ms) };
        let outputs = Outputs {
            parts,
            owners: &owners,
            dsts: &dsts,
            epilogue,
            width: w,
            plane,
        };
        #[cfg(target_arch = "x86_64")]
        if avx512 {
            // SAFETY: the CPU has AVX-512F (asserted above); `m` holds the chunk's
            // `16 · c_out · n` results.
            unsafe { avx512::store_outputs(&m, c_out, t, rows, &outputs) };
        } else {
            store_outputs_widest(&m, c_out, t, rows, &outputs);
        }
        #[cfg(not(target_arch = "x86_64"))]
        store_outputs(&m, c_out, t, rows, &outputs);
    });
    for (out, &c) in outs.iter_mut().zip(parts) {
        // SAFETY: every tile row of every image is in one chunk, which wrote its two output
        // rows in each of the part's `c` channels: all `B·c·H·W` values.
        unsafe { out.set_len(shape.batch * c * plane) };
    }
    outs
}

/// `Ĝ[ξ][co][k] = (G'·g·G'ᵀ)[ξ]` for the 2×2 output-gradient tile `g` of every tile `k` of the
/// rows `rows` and channel `co` of `folded_grad` (the output gradient's fold), with
/// `G' = [1 0; ½ ½; ½ −½; 0 −1]`: F(3×3, 2×2)'s kernel transform, its last row negated so
/// that the forward pass's input transform `V` serves as its data transform.
#[inline(always)]
fn transform_grad(
    folded_grad: &[f32],
    c_out: usize,
    t: Tiles,
    rows: std::ops::Range<usize>,
    g: &mut [MaybeUninit<f32>],
) {
    let n = rows.len() * t.tw;
    let gs = xi_stride(c_out, n);
    let tw = t.tw;
    // Even and odd columns of the tile row's two gradient rows, then the rows of G'·g:
    // (p[i], q[i]) for the tile's left and right columns.
    let mut even = vec![0.0f32; 2 * tw];
    let mut odd = vec![0.0f32; 2 * tw];
    let mut p = vec![0.0f32; 4 * tw];
    let mut q = vec![0.0f32; 4 * tw];
    for co in 0..c_out {
        for (r, row) in rows.clone().enumerate() {
            let (b, ty) = (row / t.th, row % t.th);
            // Output row y of image b is folded row y + 1, its column x at x + 1.
            let base = co * t.stride + b * t.block + (2 * ty + 1) * t.pw + 1;
            for a in 0..2 {
                let src = &folded_grad[base + a * t.pw..][..2 * tw];
                let e = &mut even[a * tw..][..tw];
                let o = &mut odd[a * tw..][..tw];
                for ((pair, e), o) in src.chunks_exact(2).zip(e).zip(o) {
                    *e = pair[0];
                    *o = pair[1];
                }
            }
            for (source, dst) in [(&even, &mut p), (&odd, &mut q)] {
                let (g0, g1) = source.split_at(tw);
                let (d0, rest) = dst.split_at_mut(tw);
                let (d1, rest) = rest.split_at_mut(tw);
                let (d2, d3) = rest.split_at_mut(tw);
                for k in 0..tw {
                    d0[k] = g0[k];
                    d1[k] = (g0[k] + g1[k]) * 0.5;
                    d2[k] = (g0[k] - g1[k]) * 0.5;
                    d3[k] = -g1[k];
                }
            }
            for i in 0..4 {
                let (pi, qi) = (&p[i * tw..][..tw], &q[i * tw..][..tw]);
                let at = (4 * i) * gs + co * n + r * tw;
                let (g0, rest) = g[at..].split_at_mut(gs);
                let (g1, rest) = rest.split_at_mut(gs);
                let (g2, g3) = rest.split_at_mut(gs);
                let (g0, g1, g2, g3) = (&mut g0[..tw], &mut g1[..tw], &mut g2[..tw], &mut g3[..tw]);
                for k in 0..tw {
                    g0[k].write(pi[k]);
                    g1[k].write((pi[k] + qi[k]) * 0.5);
                    g2[k].write((pi[k] - qi[k]) * 0.5);
                    g3[k].write(-qi[k]);
                }
            }
        }
    }
}

/// The weight gradient `[c_out][c_in][3][3]` of the 3×3 convolution of the input whose fold
/// is `folded_x` (`shape`), given the fold of its output gradient `folded_grad`, by
/// F(3×3, 2×2): per tile, the 3×3 gradient is a correlation of the 4×4 input patch with the
/// 2×2 output-gradient tile, so `dW = Aᵀ·(Σ_tiles Ĝ ⊙ V)·A` with
/// `Aᵀ = [1 1 1 0; 0 1 −1 0; 0 1 1 1]`, `V` the forward pass's input transform and `Ĝ` from
/// [`transform_grad`]: sixteen GEMMs `[C_out, tiles] × [tiles, C_in]`, 16 multiply-adds per
/// tile and channel pair instead of 36. Each thread sums a contiguous range of chunks of
/// tiles in order, and the threads' sums are added in order, so the result does not depend
/// on scheduling. [`weight_grad_applies`] must hold.
pub(crate) fn weight_grad(
    folded_x: &[f32],
    folded_grad: &[f32],
    shape: Nchw,
    c_out: usize,
) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    let avx512 = std::arch::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    let avx512 = false;
    let c_in = shape.channels;
    assert!(weight_grad_applies(shape, c_out));
    let t = Tiles::new(shape, folded_x.len());
    assert!(
        (c_out - 1) * t.stride + shape.batch * t.block < folded_grad.len(),
        "winograd: folded gradient too short"
    );
    let tile_rows = shape.batch * t.th;
    let per_tile = 16 * (c_in + c_out) * std::mem::size_of::<f32>();
    let (rows_per_chunk, chunks) = chunking(tile_rows, t.tw, per_tile);
    let plane = c_out * c_in;
    let groups = rayon::current_num_threads().clamp(1, chunks);
    let parallelism = if groups >= rayon::current_num_threads() {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(0)
    };
    // Adds (or writes, when `!accumulate`) chunk i's sixteen products to `acc`.
    let chunk_grad = |acc: &mut [f32], i: usize, accumulate: bool| {
        let rows = i * rows_per_chunk..((i + 1) * rows_per_chunk).min(tile_rows);
        let n = rows.len() * t.tw;
        let (vs, gs) = (xi_stride(c_in, n), xi_stride(c_out, n));
        let v = transformed_input(folded_x, c_in, t, rows.clone(), avx512);
        let mut g: Vec<f32> = Vec::with_capacity(16 * gs);
        let g_planes = &mut g.spare_capacity_mut()[..16 * gs];
        zero_padding(g_planes, c_out * n, gs);
        transform_grad_widest(folded_grad, c_out, t, rows, g_planes);
        // SAFETY: the transform wrote the `c_out · n` values of every plane, `zero_padding`
        // the rest.
        unsafe { g.set_len(16 * gs) };
        for xi in 0..16 {
            // SAFETY: dst is `acc`'s plane ξ, `c_out × c_in` row-major (initialised when
            // accumulating); Ĝ[ξ] is `c_out × n` row-major; V[ξ]ᵀ is `n × c_in` (V[ξ] is
            // `c_in × n` row-major: row stride 1, column stride n); none overlap.
            unsafe {
                gemm_into(
                    acc.as_mut_ptr().add(xi * plane),
                    c_out,
                    c_in,
                    n,
                    g.as_ptr().add(xi * gs),
                    n as isize,
                    1,
                    v.as_ptr().add(xi * vs),
                    1,
                    n as isize,
                    accumulate,
                    parallelism,
                );
            }
        }
    };
    let sums: Vec<Vec<f32>> = (0..groups)
        .into_par_iter()
        .map(|group| {
            let mut acc = vec![0.0f32; 16 * plane];
            let range = even_share(group, groups, chunks);
            for (k, i) in range.enumerate() {
                chunk_grad(&mut acc, i, k > 0);
            }
            acc
        })
        .collect();
    let mut sums = sums.into_iter();
    let mut total = sums.next().unwrap_or_else(|| vec![0.0; 16 * plane]);
    for sum in sums {
        total.iter_mut().zip(&sum).for_each(|(t, s)| *t += s);
    }
    // dW = Aᵀ·M·A per channel pair, one output channel per task.
    let mut dw = vec![0.0f32; plane * 9];
    dw.par_chunks_mut(c_in * 9)
        .enumerate()
        .for_each(|(co, dst)| {
            let m: [&[f32]; 16] =
                std::array::from_fn(|xi| &total[xi * plane + co * c_in..][..c_in]);
            for (ci, out) in dst.chunks_exact_mut(9).enumerate() {
                // Rows of Aᵀ·M: r[ky][j].
                let r = |j: usize| {
                    let (a, b, e, f) = (m[j][ci], m[4 + j][ci], m[8 + j][ci], m[12 + j][ci]);
                    [a + b + e, b - e, b + e + f]
                };
                let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
                for ky in 0..3 {
                    out[3 * ky] = r0[ky] + r1[ky] + r2[ky];
                    out[3 * ky + 1] = r1[ky] - r2[ky];
                    out[3 * ky + 2] = r1[ky] + r2[ky] + r3[ky];
                }
            }
        });
    dw
}

/// Where [`store_outputs`] writes: one NCHW tensor per part of the output channels.
struct Outputs<'a> {
    parts: &'a [usize],
    /// Output channel → (part, channel in it).
    owners: &'a [(usize, usize)],
    dsts: &'a [OutPtr],
    epilogue: Epilogue<'a>,
    width: usize,
    plane: usize,
}

/// The outputs of the tile rows `rows` from their GEMM results `m` (`[16][c_out][n]`):
/// `Aᵀ·M·A`, the epilogue, and two output rows per tile row and channel.
#[inline(always)]
fn store_outputs(m: &[f32], c_out: usize, t: Tiles, rows: std::ops::Range<usize>, o: &Outputs) {
    let n = rows.len() * t.tw;
    let ms = xi_stride(c_out, n);
    let w = o.width;
    let mut top = vec![0.0f32; 2 * t.tw];
    let mut bottom = vec![0.0f32; 2 * t.tw];
    let mut scratch = vec![0.0f32; 8 * t.tw];
    for (co, &(part, c)) in o.owners.iter().enumerate() {
        let add = o.epilogue.bias.map_or(0.0, |bias| bias[co]);
        let channels = o.parts[part];
        for (r, q) in rows.clone().enumerate() {
            let (b, ty) = (q / t.th, q % t.th);
            let tiles: [&[f32]; 16] =
                std::array::from_fn(|xi| &m[xi * ms + co * n + r * t.tw..][..t.tw]);
            transform_output(tiles, add, &mut top, &mut bottom, &mut scratch);
            if o.epilogue.relu {
                top.iter_mut()
                    .chain(bottom.iter_mut())
                    .for_each(|v| *v = relu(*v));
            }
            let first = (b * channels + c) * o.plane + 2 * ty * w;
            // SAFETY: output rows 2·ty and 2·ty + 1 of channel c of image b in this part's
            // `B·channels·plane` values; tile row q is in this chunk alone, so no other task
            // writes them.
            unsafe {
                let out = o.dsts[part].get().add(first);
                std::ptr::copy_nonoverlapping(top.as_ptr(), out, w);
                std::ptr::copy_nonoverlapping(bottom.as_ptr(), out.add(w), w);
            }
        }
    }
}

/// Defines `$name`, which runs the `#[inline(always)]` function `$inner` compiled for the widest
/// vectors this CPU has (AVX-512F, else AVX2, else the baseline), so that the transforms' loops
/// vectorise beyond the baseline's SSE2. (A closure handed to one generic wrapper did not do
/// it: the compiler kept the closure out of line, compiled for the baseline, and the wrappers
/// only jumped to it.) Additions, subtractions and halvings only: the results are the same on
/// every path.
macro_rules! widest {
    ($(#[$doc:meta])* $name:ident => $inner:ident($($arg:ident: $ty:ty),* $(,)?)) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) {
                    $inner($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) {
                    $inner($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $inner($($arg),*)
        }
    };
}

widest!(
    /// [`transform_weight_block`] on the widest vectors.
    transform_weight_block_widest => transform_weight_block(taps: &[f32], plane: usize, blk: usize, dst: OutPtr)
);
widest!(
    /// [`transform_input`] on the widest vectors (x86-64 only: elsewhere the callers run it plainly).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    transform_input_widest => transform_input(
        folded: &[f32],
        c_in: usize,
        t: Tiles,
        rows: std::ops::Range<usize>,
        v: &mut [MaybeUninit<f32>],
    )
);
widest!(
    /// [`store_outputs`] on the widest vectors (x86-64 only: elsewhere the callers run it plainly).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    store_outputs_widest => store_outputs(
        m: &[f32],
        c_out: usize,
        t: Tiles,
        rows: std::ops::Range<usize>,
        o: &Outputs,
    )
);
widest!(
    /// [`transform_grad`] on the widest vectors.
    transform_grad_widest => transform_grad(
        folded_grad: &[f32],
        c_out: usize,
        t: Tiles,
        rows: std::ops::Range<usize>,
        g: &mut [MaybeUninit<f32>],
    )
);

/// The two transforms with 16-lane vectors, a block of up to 8 tiles of a tile row at a time
/// (its 18 input columns split into even and odd ones by two permutes). The same additions in
/// the same order as the portable loops, so the same results.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Outputs, Tiles};

    /// Tiles per block.
    const BLOCK: usize = 8;

    fn lanes(n: usize) -> __mmask16 {
        ((1u32 << n.min(16)) - 1) as __mmask16
    }

    /// [`super::transform_input`].
    ///
    /// # Safety
    /// AVX-512F; `v` holds `16 · c_in · n` values (`n = rows.len() · tw`) and `folded` every
    /// patch of the tile rows (as [`super::conv_folded`] checks).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn transform_input(
        folded: &[f32],
        c_in: usize,
        t: Tiles,
        rows: std::ops::Range<usize>,
        v: &mut [std::mem::MaybeUninit<f32>],
    ) {
        let n = rows.len() * t.tw;
        let vs = super::xi_stride(c_in, n);
        assert!(v.len() >= 16 * vs);
        let even_idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd_idx = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let vp = v.as_mut_ptr().cast::<f32>();
        for c in 0..c_in {
            for (r, q) in rows.clone().enumerate() {
                let (b, ty) = (q / t.th, q % t.th);
                let row_base = c * t.stride + b * t.block + 2 * ty * t.pw;
                for tx0 in (0..t.tw).step_by(BLOCK) {
                    let nt = BLOCK.min(t.tw - tx0);
                    let count = 2 * nt + 2;
                    let src = &folded[row_base + 2 * tx0..];
                    assert!(src.len() >= 3 * t.pw + count);
                    let (mask_lo, mask_hi) = (lanes(count), lanes(count.saturating_sub(16)));
                    let mut even = [_mm512_setzero_ps(); 4];
                    let mut odd = [_mm512_setzero_ps(); 4];
                    for dy in 0..4 {
                        // SAFETY: `count` values from dy rows down, inside `src` (asserted).
                        let (lo, hi) = unsafe {
                            let p = src.as_ptr().add(dy * t.pw);
                            (
                                _mm512_maskz_loadu_ps(mask_lo, p),
                                _mm512_maskz_loadu_ps(mask_hi, p.add(16)),
                            )
                        };
                        even[dy] = _mm512_permutex2var_ps(lo, even_idx, hi);
                        odd[dy] = _mm512_permutex2var_ps(lo, odd_idx, hi);
                    }
                    let row_t = |d: &[__m512; 4]| {
                        [
                            _mm512_sub_ps(d[0], d[2]),
                            _mm512_add_ps(d[1], d[2]),
                            _mm512_sub_ps(d[2], d[1]),
                            _mm512_sub_ps(d[1], d[3]),
                        ]
                    };
                    let (te, to) = (row_t(&even), row_t(&odd));
                    let keep = lanes(nt);
                    for i in 0..4 {
                        let (e, o) = (te[i], to[i]);
                        // Lane k of e1 / o1: column pair k + 1.
                        let e1 = _mm512_castsi512_ps(_mm512_alignr_epi32(
                            _mm512_castps_si512(e),
                            _mm512_castps_si512(e),
                            1,
                        ));
                        let o1 = _mm512_castsi512_ps(_mm512_alignr_epi32(
                            _mm512_castps_si512(o),
                            _mm512_castps_si512(o),
                            1,
                        ));
                        let out = [
                            _mm512_sub_ps(e, e1),
                            _mm512_add_ps(o, e1),
                            _mm512_sub_ps(e1, o),
                            _mm512_sub_ps(o, o1),
                        ];
                        for (j, value) in out.into_iter().enumerate() {
                            let at = (4 * i + j) * vs + c * n + r * t.tw + tx0;
                            // SAFETY: `nt` values of row (ξ, c) of V, inside `v` (asserted).
                            unsafe { _mm512_mask_storeu_ps(vp.add(at), keep, value) };
                        }
                    }
                }
            }
        }
    }

    /// [`super::store_outputs`].
    ///
    /// # Safety
    /// AVX-512F; `m` holds `16 · c_out · n` values; `o` describes the outputs as
    /// [`super::conv_folded`] made them.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn store_outputs(
        m: &[f32],
        c_out: usize,
        t: Tiles,
        rows: std::ops::Range<usize>,
        o: &Outputs,
    ) {
        let n = rows.len() * t.tw;
        let ms = super::xi_stride(c_out, n);
        assert!(m.len() >= 16 * ms);
        let w = o.width;
        let pairs = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let zero = _mm512_setzero_ps();
        let mp = m.as_ptr();
        for (co, &(part, c)) in o.owners.iter().enumerate() {
            let add = _mm512_set1_ps(o.epilogue.bias.map_or(0.0, |bias| bias[co]));
            let channels = o.parts[part];
            for (r, q) in rows.clone().enumerate() {
                let (b, ty) = (q / t.th, q % t.th);
                let first = (b * channels + c) * o.plane + 2 * ty * w;
                for tx0 in (0..t.tw).step_by(BLOCK) {
                    let nt = BLOCK.min(t.tw - tx0);
                    let keep = lanes(nt);
                    // SAFETY: `nt` values of row (ξ, co) of M from tile r·tw + tx0, inside `m`.
                    let g: [__m512; 16] = std::array::from_fn(|xi| unsafe {
                        _mm512_maskz_loadu_ps(keep, mp.add(xi * ms + co * n + r * t.tw + tx0))
                    });
                    let s = |j: usize| {
                        (
                            _mm512_add_ps(_mm512_add_ps(g[j], g[4 + j]), g[8 + j]),
                            _mm512_sub_ps(_mm512_sub_ps(g[4 + j], g[8 + j]), g[12 + j]),
                        )
                    };
                    let (s0, s1, s2, s3) = (s(0), s(1), s(2), s(3));
                    let out_row = |a: __m512, b: __m512, e: __m512, f: __m512| {
                        let left = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), e), add);
                        let right = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(b, e), f), add);
                        let mut both = _mm512_permutex2var_ps(left, pairs, right);
                        if o.epilogue.relu {
                            // Positive or NaN: `!(v <= 0)`, as `relu`.
                            let positive = _mm512_cmp_ps_mask(both, zero, _CMP_NLE_UQ);
                            both = _mm512_maskz_mov_ps(positive, both);
                        }
                        both
                    };
                    let top = out_row(s0.0, s1.0, s2.0, s3.0);
                    let bottom = out_row(s0.1, s1.1, s2.1, s3.1);
                    let store = lanes(2 * nt);
                    // SAFETY: as in `super::store_outputs`: output rows 2·ty and 2·ty + 1,
                    // columns 2·tx0 .. 2·(tx0 + nt), of this chunk's tile row.
                    unsafe {
                        let out = o.dsts[part].get().add(first + 2 * tx0);
                        _mm512_mask_storeu_ps(out, store, top);
                        _mm512_mask_storeu_ps(out.add(w), store, bottom);
                    }
                }
            }
        }
    }
}

/// ReLU that keeps NaN, as the direct form's.
fn relu(v: f32) -> f32 {
    if v > 0.0 || v.is_nan() { v } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::fold_input;
    use crate::test_support::random;
    use seeded_rng::SplitMix64;

    /// The AVX-512 transforms give the portable ones' values bit for bit (blocks of 8 tiles
    /// with 3, 4 and 8 tiles per row; bias, ReLU and two output parts).
    #[test]
    fn vector_transforms_match_the_portable_ones() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            let mut rng = SplitMix64::stream(21, 1);
            for (batch, c_in, c_out, h, w) in
                [(22, 64, 65, 4, 6), (8, 70, 64, 8, 8), (16, 64, 64, 2, 16)]
            {
                let s = Nchw {
                    batch,
                    channels: c_in,
                    height: h,
                    width: w,
                };
                let mut x = random(batch * c_in * h * w, &mut rng);
                x[3] = f32::NAN;
                let folded = fold_input(&x, s);
                let taps = random(9 * c_out * c_in, &mut rng);
                let bias = random(c_out, &mut rng);
                for relu in [false, true] {
                    let epilogue = Epilogue {
                        bias: Some(&bias),
                        relu,
                    };
                    let parts = [c_out - 7, 7];
                    let wide = conv_folded_on(&folded, s, &taps, &parts, epilogue, true);
                    let portable = conv_folded_on(&folded, s, &taps, &parts, epilogue, false);
                    let bits = |v: &Vec<Vec<f32>>| -> Vec<u32> {
                        v.iter().flatten().map(|f| f.to_bits()).collect()
                    };
                    assert_eq!(bits(&wide), bits(&portable), "{s:?} relu {relu}");
                    assert!(wide[0].iter().any(|v| v.is_nan()), "NaN kept");
                }
            }
            return;
        }
        println!("skipped: this CPU has no AVX-512F, so only the portable transforms run here");
    }
}
