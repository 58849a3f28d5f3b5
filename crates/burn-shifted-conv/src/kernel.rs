//! The 3×3 "same" convolution (stride 1, padding 1) and its two gradients on NCHW f32 slices,
//! as sums of nine shifted GEMMs (the gemm crate, the one burn-flex uses) without im2col.
//!
//! The batch is folded into the GEMMs' column dimension. A *folded* buffer holds, per channel,
//! every image of the batch one after the other, each as a block of `H+1` rows of `W+1` values
//! ([`Nchw::image_block`]), followed by a zero tail. A block is a zero row, then the image's
//! rows, each after one zero: that zero is the left padding of its row and the right padding
//! of the row before, and the next block's zero row is the bottom padding, so neighbouring
//! images share their padding. The same buffer read `W+2` values further on is the *wide*
//! view: the image at the block's corner, each row followed by one zero, then a zero row.
//!
//! Output column `j = b·L + y·(W+1) + x` (`L` the block size) of a convolution reads, for tap
//! `(dy, dx)`, the padded input at column `j + dy·(W+1) + dx`, so each tap is one GEMM
//! `[C_out, C_in] × [C_in, columns]` straight out of the folded buffer with unit column
//! stride; columns with `y = H` or `x = W` are computed and discarded (1.6 % more columns at
//! 128×128, 27 % at 8×8). So:
//! - forward: `Y_wide = Σ_tap W_tap · shift_tap(X_padded)`;
//! - input gradient: the same convolution of `dY` with the kernel transposed over channels
//!   and flipped in space;
//! - weight gradient: `dW_tap = dY_wide · shift_tap(X_padded)ᵀ`, the discarded columns of
//!   `dY_wide` being zeros; `dY_wide` is the wide view of the fold the input gradient reads,
//!   so one fold of `dY` serves both gradients ([`conv3x3_grads`]).
//!
//! The columns are cut into chunks that run in parallel (rayon); each chunk runs all nine taps
//! into a `[C_out][chunk]` buffer of its own, which stays in cache, then stores its valid
//! columns straight into the NCHW output with the bias and ReLU ([`conv3x3_forward`]): the wide
//! result is never materialised. The backward pass masks the output gradient by the ReLU, folds
//! it and sums it for the bias gradient in one pass, and reads the fold of `x` the forward pass
//! kept ([`fold_input`], [`conv3x3_grads`]). Every buffer is written once, in parallel, without
//! a zeroing pass.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::direct::{self, ConvKernel, GradTile, READ_SLACK, TILE_COLUMNS, TILE_ROWS, Tile};
use crate::winograd;

/// Shape of an NCHW activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nchw {
    /// Batch.
    pub batch: usize,
    /// Channels.
    pub channels: usize,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
}

impl Nchw {
    /// `[batch, channels, height, width]`.
    pub fn dims(&self) -> [usize; 4] {
        [self.batch, self.channels, self.height, self.width]
    }

    /// Row width in a folded buffer: the row and one zero.
    pub(crate) fn padded_width(&self) -> usize {
        self.width + 1
    }

    /// Values per image and channel in a folded buffer: `H+1` rows of `W+1`.
    pub(crate) fn image_block(&self) -> usize {
        (self.height + 1) * self.padded_width()
    }

    /// GEMM columns: every image's block.
    fn columns(&self) -> usize {
        self.batch * self.image_block()
    }

    /// Row (channel) stride of a folded buffer: the columns plus the largest tap offset, so
    /// that every shifted read stays inside the channel's row.
    pub(crate) fn folded_stride(&self) -> usize {
        self.columns() + 2 * self.padded_width() + 2
    }

    /// Offset of tap `t` (`dy = t / 3`, `dx = t % 3`) in a folded buffer.
    fn tap_offset(&self, t: usize) -> usize {
        (t / 3) * self.padded_width() + t % 3
    }
}

/// Raw output pointer shared by the column chunks, which write disjoint columns.
#[derive(Clone, Copy)]
pub(crate) struct OutPtr(pub(crate) *mut f32);
// SAFETY: each parallel task writes a disjoint set of elements through it (see the callers).
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer (a method, so closures capture the `Sync` wrapper, not the raw field).
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

fn put(dst: &mut [MaybeUninit<f32>], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        d.write(*s);
    }
}

fn put_zeros(dst: &mut [MaybeUninit<f32>]) {
    for d in dst {
        d.write(0.0);
    }
}

/// Fewer values than this are written on the calling thread: waking another thread costs more
/// than copying them.
pub(crate) const SERIAL_VALUES: usize = 1 << 15;

/// A vector of `rows × row_len` values, each row written once by `fill(row, slots)`, rows in
/// parallel (serially below [`SERIAL_VALUES`] values). `fill` must write every slot.
pub(crate) fn build_rows(
    rows: usize,
    row_len: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    let len = rows * row_len;
    // Room for the read slack `fold` appends, so that appending does not reallocate.
    let mut values = Vec::with_capacity(len + READ_SLACK);
    if row_len > 0 {
        let slots = &mut values.spare_capacity_mut()[..len];
        if len < SERIAL_VALUES {
            for (row, slots) in slots.chunks_mut(row_len).enumerate() {
                fill(row, slots);
            }
        } else {
            slots
                .par_chunks_mut(row_len)
                .enumerate()
                .for_each(|(row, slots)| fill(row, slots));
        }
    }
    // SAFETY: the capacity is `len`, and `fill` wrote every one of the `len` slots.
    unsafe { values.set_len(len) };
    values
}

/// Values in the padded fold of an activation of `shape` ([`fold_input`]).
pub fn folded_len(shape: Nchw) -> usize {
    shape.channels * shape.folded_stride() + READ_SLACK
}

/// NCHW `x` (`shape`) as the padded fold the convolutions read (see the module documentation):
/// what [`conv3x3_forward_folded`] and [`conv3x3_grads`] take, so that a forward pass can keep
/// it for its backward pass instead of folding `x` twice. [`folded_len`] values.
pub fn fold_input(x: &[f32], shape: Nchw) -> Vec<f32> {
    fold_inputs(&[(x, shape.channels)], shape)
}

/// [`fold_input`] of the concatenation over channels of the NCHW tensors `parts` (each with
/// its channel count; `shape.channels` is their sum), without concatenating them: the U-Net's
/// decoder convolutions read `[upsampled, skip]` this way.
pub fn fold_inputs(parts: &[(&[f32], usize)], shape: Nchw) -> Vec<f32> {
    let plane = shape.height * shape.width;
    assert_eq!(parts.iter().map(|&(_, c)| c).sum::<usize>(), shape.channels);
    for &(x, c) in parts {
        assert_eq!(x.len(), shape.batch * c * plane);
    }
    fold_channels(shape, |b, c| {
        let mut c = c;
        for &(x, channels) in parts {
            if c < channels {
                return &x[(b * channels + c) * plane..][..plane];
            }
            c -= channels;
        }
        unreachable!("channel beyond the parts' sum, which was checked")
    })
}

/// NCHW `x` (`shape`) as a folded buffer `[C][folded_stride]`, then [`READ_SLACK`] zeros.
fn fold(x: &[f32], shape: Nchw) -> Vec<f32> {
    let plane = shape.height * shape.width;
    fold_channels(shape, |b, c| {
        &x[(b * shape.channels + c) * plane..][..plane]
    })
}

/// The folded buffer `[C][folded_stride]` (then [`READ_SLACK`] zeros) of the image planes
/// `image(b, c)` (`H·W` values each) of `shape`.
fn fold_channels<'a>(shape: Nchw, image: impl Fn(usize, usize) -> &'a [f32] + Sync) -> Vec<f32> {
    let (h, w, pw, block) = (
        shape.height,
        shape.width,
        shape.padded_width(),
        shape.image_block(),
    );
    let (columns, stride) = (shape.columns(), shape.folded_stride());
    let mut folded = build_rows(shape.channels, stride, |c, row| {
        for b in 0..shape.batch {
            let image = image(b, c);
            let dst = &mut row[b * block..][..block];
            put_zeros(&mut dst[..pw]);
            for y in 0..h {
                let start = (y + 1) * pw;
                put_zeros(&mut dst[start..start + 1]);
                put(&mut dst[start + 1..start + pw], &image[y * w..(y + 1) * w]);
            }
        }
        put_zeros(&mut row[columns..]);
    });
    folded.resize(folded.len() + READ_SLACK, 0.0);
    folded
}

/// GEMM columns per parallel chunk: the chunk's input and output blocks (`c_in + c_out`
/// rows) fit in a core's L2 over the nine taps, and there are enough chunks for every thread.
fn chunk_columns(c_in: usize, c_out: usize, columns: usize) -> usize {
    let cached = (64 * 1024 / (c_in + c_out)).clamp(256, 4096);
    let enough = columns.div_ceil(2 * rayon::current_num_threads()).max(64);
    cached.min(enough).max(1)
}

/// GEMM parallelism inside a chunk: serial when the chunks alone occupy every thread.
fn chunk_parallelism(chunks: usize) -> gemm::Parallelism {
    if chunks >= rayon::current_num_threads() {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(0)
    }
}

/// What a convolution does to its sums on their way to the NCHW output: add a bias per output
/// channel, then a ReLU.
#[derive(Clone, Copy)]
pub(crate) struct Epilogue<'a> {
    /// Added to every output of a channel.
    pub(crate) bias: Option<&'a [f32]>,
    /// Then a ReLU.
    pub(crate) relu: bool,
}

/// `Σ_tap taps[tap] · shift_tap(folded)` at every valid output position, through `epilogue`,
/// as NCHW tensors: one `[B, parts[g], H, W]` per group `g` of consecutive output channels
/// (`parts` sums to `c_out`; a plain convolution has one part). `folded` is `[c_in]` rows of
/// `shape.folded_stride()` (then the read slack), `taps` is `[9][c_out][c_in]`.
///
/// Each parallel column chunk sums its `[c_out][n]` block into a buffer of its own (sized to
/// stay in L2 over the nine taps), then stores the block's valid columns straight into the
/// outputs: the wide `[c_out][columns]` result is never materialised, and each output is
/// written once.
fn conv_folded(
    folded: &[f32],
    shape: Nchw,
    taps: &[f32],
    parts: &[usize],
    kernel: ConvKernel,
    epilogue: Epilogue,
) -> Vec<Vec<f32>> {
    let c_out: usize = parts.iter().sum();
    let (c_in, columns, stride) = (shape.channels, shape.columns(), shape.folded_stride());
    assert_eq!(folded.len(), c_in * stride + READ_SLACK);
    if winograd::enabled() && winograd::applies(shape, c_out) {
        return winograd::conv_folded(folded, shape, taps, parts, epilogue);
    }
    assert_eq!(taps.len(), 9 * c_out * c_in);
    let plane = shape.height * shape.width;
    let (mut outs, dsts) = part_outputs(shape, parts);
    let tiles = forward_tiles_pay_off(kernel, c_in, c_out);
    let packed = if tiles {
        direct::pack_for_tiles(taps, c_out, c_in)
    } else {
        Vec::new()
    };
    let mut chunk = chunk_columns(c_in, c_out, columns);
    if tiles {
        chunk = chunk.next_multiple_of(TILE_COLUMNS);
    }
    let chunks = columns.div_ceil(chunk);
    let parallelism = chunk_parallelism(chunks);
    (0..chunks).into_par_iter().for_each(|i| {
        let j0 = i * chunk;
        let n = chunk.min(columns - j0);
        let mut sums: Vec<f32> = Vec::with_capacity(c_out * n);
        let block = sums.spare_capacity_mut().as_mut_ptr().cast::<f32>();
        if tiles {
            chunk_on_tiles(folded, shape, &packed, c_out, j0, n, block, kernel);
        } else {
            chunk_on_gemms(folded, shape, taps, c_out, j0, n, block, parallelism);
        }
        // SAFETY: both fill all `c_out × n` elements of the block.
        unsafe { sums.set_len(c_out * n) };
        store_valid_columns(&sums, n, shape, parts, j0, epilogue, &dsts);
    });
    for (out, &c) in outs.iter_mut().zip(parts) {
        // SAFETY: every valid output position is one column of exactly one chunk, and
        // `store_valid_columns` wrote it in each of the part's `c` channels.
        unsafe { out.set_len(shape.batch * c * plane) };
    }
    outs
}

/// Empty NCHW outputs `[B, parts[g], H, W]` of a convolution (`shape` for `B`, `H`, `W`), with
/// their capacity's pointers for the parallel tasks that fill them (each then `set_len`).
pub(crate) fn part_outputs(shape: Nchw, parts: &[usize]) -> (Vec<Vec<f32>>, Vec<OutPtr>) {
    let plane = shape.height * shape.width;
    let mut outs: Vec<Vec<f32>> = parts
        .iter()
        .map(|&c| Vec::with_capacity(shape.batch * c * plane))
        .collect();
    let dsts = outs
        .iter_mut()
        .map(|out| OutPtr(out.spare_capacity_mut().as_mut_ptr().cast::<f32>()))
        .collect();
    (outs, dsts)
}

/// The nine shifted GEMMs of one column chunk: `block[c_out][n]` (row stride `n`) from columns
/// `j0..j0 + n` of `folded`.
#[allow(clippy::too_many_arguments)]
fn chunk_on_gemms(
    folded: &[f32],
    shape: Nchw,
    taps: &[f32],
    c_out: usize,
    j0: usize,
    n: usize,
    block: *mut f32,
    parallelism: gemm::Parallelism,
) {
    let (c_in, stride) = (shape.channels, shape.folded_stride());
    for t in 0..9 {
        let offset = shape.tap_offset(t);
        let lhs = &taps[t * c_out * c_in..(t + 1) * c_out * c_in];
        // SAFETY: `block` is the chunk's own `c_out × n` buffer (row stride `n`); tap 0
        // writes every element before taps 1..9 read it. lhs is `c_out × c_in` row-major.
        // rhs is `c_in × n` with row stride `stride` starting at offset + j0; its last
        // element (c_in-1)·stride + offset + j0 + n - 1 is below c_in·stride because
        // offset + columns ≤ stride.
        unsafe {
            gemm::gemm(
                c_out,
                n,
                c_in,
                block,
                1,
                n as isize,
                t > 0,
                lhs.as_ptr(),
                1,
                c_in as isize,
                folded.as_ptr().add(offset + j0),
                1,
                stride as isize,
                1.0f32,
                1.0f32,
                false,
                false,
                false,
                parallelism,
            );
        }
    }
}

/// One column chunk's valid output positions: runs of consecutive valid columns, each as
/// (first column in the chunk, length, image, position `y·W + x` of its first pixel).
fn valid_runs(shape: Nchw, j0: usize, n: usize) -> Vec<(usize, usize, usize, usize)> {
    let (h, w, pw, block) = (
        shape.height,
        shape.width,
        shape.padded_width(),
        shape.image_block(),
    );
    let mut runs = Vec::with_capacity(n / pw + 2);
    let mut k = 0;
    while k < n {
        let p = j0 + k;
        let (b, r) = (p / block, p % block);
        let (y, x) = (r / pw, r % pw);
        let len = (pw - x).min(n - k);
        if y < h && x < w {
            runs.push((k, len.min(w - x), b, y * w + x));
        }
        k += len;
    }
    runs
}

/// Stores the valid columns of a chunk's `sums` (`[c_out][n]`, from column `j0`) through
/// `epilogue` into the NCHW outputs behind `dsts`, one per part of the output channels.
fn store_valid_columns(
    sums: &[f32],
    n: usize,
    shape: Nchw,
    parts: &[usize],
    j0: usize,
    epilogue: Epilogue,
    dsts: &[OutPtr],
) {
    let plane = shape.height * shape.width;
    let runs = valid_runs(shape, j0, n);
    let mut co = 0;
    for (&channels, dst) in parts.iter().zip(dsts) {
        for c in 0..channels {
            let add = epilogue.bias.map_or(0.0, |bias| bias[co]);
            let row = &sums[co * n..][..n];
            for &(k, len, b, pixel) in &runs {
                // SAFETY: `(b·channels + c)·plane + pixel .. + len` is the run's positions in
                // channel `c` of image `b` of this part's output (inside its `B·channels·plane`
                // values); chunks cover disjoint columns, so no other task writes them.
                let out = unsafe {
                    std::slice::from_raw_parts_mut(
                        dst.get().add((b * channels + c) * plane + pixel),
                        len,
                    )
                };
                let src = &row[k..k + len];
                if epilogue.relu {
                    out.iter_mut()
                        .zip(src)
                        .for_each(|(d, s)| *d = relu(s + add));
                } else {
                    out.iter_mut().zip(src).for_each(|(d, s)| *d = s + add);
                }
            }
            co += 1;
        }
    }
}

/// The register tiles (AVX-512, and on AVX2 the forward and lane weight-gradient tiles) run a
/// convolution, or its weight gradient, when one side has at most this many channels (and the
/// forward tiles, when it has at least their 8 output rows). Above
/// it the GEMMs were as fast (`--example conv_kernels` with the limit raised, Sapphire Rapids:
/// the forward tiles within the run-to-run noise of the GEMMs on 64–256 channels, also with
/// the input channels in blocks of 32 or 64; the weight-gradient tiles slower there).
const MAX_TILED_CHANNELS: usize = 32;

/// Whether the AVX-512 tiles run a layer with these channel counts (see [`MAX_TILED_CHANNELS`]).
fn tiles_pay_off(kernel: ConvKernel, c_in: usize, c_out: usize) -> bool {
    kernel == ConvKernel::Avx512 && c_in.min(c_out) <= MAX_TILED_CHANNELS
}

/// Whether a forward pass (or input gradient) runs on the forward tiles: the AVX-512 tiles as
/// [`tiles_pay_off`], or on AVX2 [`direct::forward_tile_avx2`] for the same channel counts;
/// both need at least the tile's 8 output rows.
fn forward_tiles_pay_off(kernel: ConvKernel, c_in: usize, c_out: usize) -> bool {
    let thin = c_in.min(c_out) <= MAX_TILED_CHANNELS && c_out >= TILE_ROWS;
    match kernel {
        ConvKernel::Avx512 | ConvKernel::Avx2 => thin,
        ConvKernel::Gemm => false,
    }
}

/// One column chunk of [`conv_folded`] on the forward tiles of [`direct`] (AVX-512: 48
/// columns, AVX2: 16): `block[c_out][n]` (row stride `n`) from columns `j0..j0 + n` of
/// `folded`, every block of 8 output channels on a tile's columns before the next, so that the
/// tile's input rows are read from L1. [`forward_tiles_pay_off`] holds for `kernel`.
#[allow(clippy::too_many_arguments)]
fn chunk_on_tiles(
    folded: &[f32],
    shape: Nchw,
    packed: &[f32],
    c_out: usize,
    j0: usize,
    n: usize,
    block: *mut f32,
    kernel: ConvKernel,
) {
    let (c_in, stride) = (shape.channels, shape.folded_stride());
    let offsets: [usize; 9] = std::array::from_fn(|t| shape.tap_offset(t));
    let avx512 = kernel == ConvKernel::Avx512;
    let tile_columns = if avx512 {
        TILE_COLUMNS
    } else {
        direct::TILE_COLUMNS_AVX2
    };
    for j in (0..n).step_by(tile_columns) {
        for rows in 0..c_out.div_ceil(TILE_ROWS) {
            let co = rows * TILE_ROWS;
            // SAFETY: the tile reads c_in rows of `folded` from column j0 + j up to
            // offsets[8] + 48 past it: at most (c_in-1)·stride + columns + 47 + offsets[8] <
            // c_in·stride + READ_SLACK, since offsets[8] + columns ≤ stride. It writes rows
            // co..co+rows, columns j..j+min(48, n-j) of the chunk's `c_out × n` block: every
            // element by one tile. The weights block has c_in·72 values.
            let tile = Tile {
                input: unsafe { folded.as_ptr().add(j0 + j) },
                input_stride: stride,
                offsets,
                weights: packed[rows * c_in * 9 * TILE_ROWS..].as_ptr(),
                c_in,
                output: unsafe { block.add(co * n + j) },
                output_stride: n,
                rows: TILE_ROWS.min(c_out - co),
                columns: tile_columns.min(n - j),
            };
            #[cfg(target_arch = "x86_64")]
            // SAFETY: ConvKernel::Avx512 (Avx2) is only chosen on a CPU with AVX-512F (AVX2
            // and FMA); the ranges are as above (the AVX2 tile reads 16 columns).
            unsafe {
                if avx512 {
                    direct::forward_tile(&tile)
                } else {
                    direct::forward_tile_avx2(&tile)
                }
            };
            #[cfg(not(target_arch = "x86_64"))]
            unreachable!("{kernel:?} on {tile:p} ({avx512})", tile = &tile);
        }
    }
}

/// ReLU that keeps NaN (as burn's Flex does), so a diverged step still shows in the loss.
fn relu(v: f32) -> f32 {
    if v > 0.0 || v.is_nan() { v } else { 0.0 }
}

/// Tap-major weights: `[9][C_out][C_in]` from `[C_out, C_in, 3, 3]`.
fn weights_by_tap(weight: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    build_rows(9, c_out * c_in, |t, dst| {
        for (k, d) in dst.iter_mut().enumerate() {
            d.write(weight[k * 9 + t]);
        }
    })
}

/// The convolution of `x` (`shape`) with `weight` `[c_out, C_in, 3, 3]` plus `bias`, followed
/// by a ReLU when `with_relu`; returns NCHW `[B, c_out, H, W]`.
pub fn conv3x3_forward(
    x: &[f32],
    shape: Nchw,
    weight: &[f32],
    bias: Option<&[f32]>,
    c_out: usize,
    with_relu: bool,
    kernel: ConvKernel,
) -> Vec<f32> {
    let folded = fold_input(x, shape);
    conv3x3_forward_folded(&folded, shape, weight, bias, c_out, with_relu, kernel)
}

/// [`conv3x3_forward`] from the input's fold ([`fold_input`]).
pub fn conv3x3_forward_folded(
    folded: &[f32],
    shape: Nchw,
    weight: &[f32],
    bias: Option<&[f32]>,
    c_out: usize,
    with_relu: bool,
    kernel: ConvKernel,
) -> Vec<f32> {
    let taps = weights_by_tap(weight, c_out, shape.channels);
    let epilogue = Epilogue {
        bias,
        relu: with_relu,
    };
    let mut outs = conv_folded(folded, shape, &taps, &[c_out], kernel, epilogue);
    outs.pop().unwrap_or_default()
}

/// [`relu_grad`] in place, for a gradient buffer nothing else holds.
pub fn relu_grad_in_place(output: &[f32], grad: &mut [f32]) {
    assert_eq!(output.len(), grad.len());
    const ROW: usize = 1 << 14;
    grad.par_chunks_mut(ROW)
        .zip(output.par_chunks(ROW))
        .for_each(|(g, out)| {
            for (g, o) in g.iter_mut().zip(out) {
                // A select, not a conditional store, so that the loop is vectorised.
                *g = relu_masked(*g, *o);
            }
        });
}

/// Gradient through a ReLU: `grad` where the ReLU's `output` is positive (or NaN, as burn
/// keeps it), zero elsewhere.
pub fn relu_grad(output: &[f32], grad: &[f32]) -> Vec<f32> {
    assert_eq!(output.len(), grad.len());
    const ROW: usize = 1 << 14;
    let mut values = Vec::with_capacity(grad.len());
    values.spare_capacity_mut()[..grad.len()]
        .par_chunks_mut(ROW)
        .zip(output.par_chunks(ROW).zip(grad.par_chunks(ROW)))
        .for_each(|(dst, (out, g))| {
            for ((d, o), g) in dst.iter_mut().zip(out).zip(g) {
                d.write(relu_masked(*g, *o));
            }
        });
    // SAFETY: the chunks wrote all `grad.len()` slots of the capacity.
    unsafe { values.set_len(grad.len()) };
    values
}

/// Gradient with respect to the input: `grad` is `[B, c_out, H, W]`, `shape` the input's.
pub fn conv3x3_input_grad(
    grad: &[f32],
    shape: Nchw,
    weight: &[f32],
    c_out: usize,
    kernel: ConvKernel,
) -> Vec<f32> {
    let grad_shape = Nchw {
        channels: c_out,
        ..shape
    };
    let folded = fold(grad, grad_shape);
    let mut parts = input_grad_folded(&folded, shape, weight, c_out, kernel, &[shape.channels]);
    parts.pop().unwrap_or_default()
}

/// The three gradients of a convolution, from [`conv3x3_grads`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConvGrads {
    /// With respect to the input, `[B, C_in, H, W]`, in the parts asked for: one
    /// `[B, parts[g], H, W]` tensor per part (none when not asked for).
    pub input: Option<Vec<Vec<f32>>>,
    /// With respect to the weight, `[c_out, C_in, 3, 3]`.
    pub weight: Vec<f32>,
    /// With respect to the bias, `[c_out]`.
    pub bias: Vec<f32>,
}

/// Every gradient of a convolution from one pass over `grad` (`[B, c_out, H, W]`): when
/// `relu_output` is given, `grad` is at the output of a ReLU that followed the convolution
/// (`relu_output` being that output) and is masked where the ReLU was not positive. The mask,
/// the fold the two gradients read and the bias gradient's sums are one pass; the input
/// gradient (as [`conv3x3_input_grad`], split over channels into `input_parts` when given,
/// not computed otherwise) and the weight gradient (as [`conv3x3_weight_grad`]) both read
/// that fold. `folded_x` is the fold of the convolution's input ([`fold_input`], or
/// [`fold_inputs`] of the parts the input gradient is split into), which its forward pass may
/// have kept.
#[allow(clippy::too_many_arguments)]
pub fn conv3x3_grads(
    folded_x: &[f32],
    shape: Nchw,
    weight: &[f32],
    relu_output: Option<&[f32]>,
    grad: &[f32],
    c_out: usize,
    kernel: ConvKernel,
    input_parts: Option<&[usize]>,
) -> ConvGrads {
    assert_eq!(folded_x.len(), folded_len(shape));
    let grad_shape = Nchw {
        channels: c_out,
        ..shape
    };
    let (folded_grad, bias) = fold_output_grad(grad, relu_output, grad_shape);
    let input = input_parts.map(|parts| {
        assert_eq!(parts.iter().sum::<usize>(), shape.channels);
        input_grad_folded(&folded_grad, shape, weight, c_out, kernel, parts)
    });
    let weight = weight_grad_folded(folded_x, &folded_grad, shape, c_out, kernel);
    ConvGrads {
        input,
        weight,
        bias,
    }
}

/// [`fold`] of `grad` (masked by the ReLU output `relu_output` when given, as [`relu_grad`]),
/// and the sum of each channel's (masked) values: the bias gradient, summed in an order that
/// does not depend on scheduling (eight running sums per image row, in order).
fn fold_output_grad(
    grad: &[f32],
    relu_output: Option<&[f32]>,
    shape: Nchw,
) -> (Vec<f32>, Vec<f32>) {
    let (h, w, pw, block) = (
        shape.height,
        shape.width,
        shape.padded_width(),
        shape.image_block(),
    );
    let (columns, stride) = (shape.columns(), shape.folded_stride());
    if let Some(output) = relu_output {
        assert_eq!(output.len(), grad.len());
    }
    let mut sums = vec![0.0f32; shape.channels];
    let sums_out = OutPtr(sums.as_mut_ptr());
    let mut folded = build_rows(shape.channels, stride, |c, row| {
        let mut lanes = [0.0f32; 8];
        let mut masked = vec![0.0f32; if relu_output.is_some() { w } else { 0 }];
        for b in 0..shape.batch {
            let start = (b * shape.channels + c) * h * w;
            let dst = &mut row[b * block..][..block];
            put_zeros(&mut dst[..pw]);
            for y in 0..h {
                let first = (y + 1) * pw;
                put_zeros(&mut dst[first..first + 1]);
                let mut src = &grad[start + y * w..][..w];
                if let Some(output) = relu_output {
                    let mask = &output[start + y * w..][..w];
                    for ((m, g), o) in masked.iter_mut().zip(src).zip(mask) {
                        *m = relu_masked(*g, *o);
                    }
                    src = &masked;
                }
                put(&mut dst[first + 1..first + pw], src);
                add_in_lanes(&mut lanes, src);
            }
        }
        // SAFETY: channel `c` is filled by this task alone, so only it writes `sums[c]`.
        unsafe { *sums_out.get().add(c) = lanes.iter().sum() };
        put_zeros(&mut row[columns..]);
    });
    folded.resize(folded.len() + READ_SLACK, 0.0);
    (folded, sums)
}

/// `grad` where the ReLU's `output` is positive (or NaN, as burn keeps it), zero elsewhere.
fn relu_masked(grad: f32, output: f32) -> f32 {
    // `!(o <= 0)`: positive or NaN, one comparison the compiler vectorises.
    if output <= 0.0 { 0.0 } else { grad }
}

/// Adds `values` to eight running sums, value `k` to sum `k % 8`.
fn add_in_lanes(lanes: &mut [f32; 8], values: &[f32]) {
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    for (lane, v) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane += v;
    }
}

/// [`conv3x3_input_grad`] from the padded fold of `grad`.
/// The result comes in `parts` (channel counts summing to `C_in`, see [`conv_folded`]).
fn input_grad_folded(
    folded_grad: &[f32],
    shape: Nchw,
    weight: &[f32],
    c_out: usize,
    kernel: ConvKernel,
    parts: &[usize],
) -> Vec<Vec<f32>> {
    let c_in = shape.channels;
    // Transposed over channels and flipped in space: tap t of the input gradient uses
    // W[co, ci, 8 - t] as the [c_in × c_out] matrix.
    // Blocks of 16 output channels, so the reads run along 16 filters at once and each
    // input channel's row of the result is written 16 values at a time.
    let taps = build_rows(9, c_in * c_out, |t, dst| {
        for co0 in (0..c_out).step_by(16) {
            let cos = 16.min(c_out - co0);
            for ci in 0..c_in {
                let row = &mut dst[ci * c_out + co0..][..cos];
                for (o, d) in row.iter_mut().enumerate() {
                    d.write(weight[((co0 + o) * c_in + ci) * 9 + (8 - t)]);
                }
            }
        }
    });
    let grad_shape = Nchw {
        channels: c_out,
        ..shape
    };
    let epilogue = Epilogue {
        bias: None,
        relu: false,
    };
    conv_folded(folded_grad, grad_shape, &taps, parts, kernel, epilogue)
}

/// Gradient with respect to the weight, `[c_out, C_in, 3, 3]`.
pub fn conv3x3_weight_grad(
    x: &[f32],
    shape: Nchw,
    grad: &[f32],
    c_out: usize,
    kernel: ConvKernel,
) -> Vec<f32> {
    let grad_shape = Nchw {
        channels: c_out,
        ..shape
    };
    let folded_grad = fold(grad, grad_shape);
    let padded = fold(x, shape);
    weight_grad_folded(&padded, &folded_grad, shape, c_out, kernel)
}

/// [`conv3x3_weight_grad`] from the padded folds of `x` and of the output gradient.
fn weight_grad_folded(
    padded: &[f32],
    folded_grad: &[f32],
    shape: Nchw,
    c_out: usize,
    kernel: ConvKernel,
) -> Vec<f32> {
    let c_in = shape.channels;
    let (columns, stride) = (shape.columns(), shape.folded_stride());
    // The gradient aligned with the output columns: output column j (pixel (y, x) at
    // y·(W+1) + x of its block) is the padded fold's (y+1)·(W+1) + 1 + x, W+2 further on.
    // The columns a convolution discards (x = W, y = H) land on the padded fold's zeros: a
    // row's leading zero and the next block's zero row (the zero tail after the last).
    if winograd::enabled() && winograd::weight_grad_applies(shape, c_out) {
        return winograd::weight_grad(padded, folded_grad, shape, c_out);
    }
    let wide = &folded_grad[shape.padded_width() + 1..];
    let tiles = tiles_pay_off(kernel, c_in, c_out);
    if kernel == ConvKernel::Avx512 && !tiles {
        return weight_grad_deep(wide, padded, shape, c_out);
    }
    #[cfg(target_arch = "x86_64")]
    if lanes_pay_off(kernel, c_in, c_out) {
        return weight_grad_lanes(wide, padded, shape, c_out, kernel);
    }
    let chunk = chunk_columns(c_in, c_out, columns);
    let chunks = columns.div_ceil(chunk);
    let parallelism = chunk_parallelism(chunks);
    let n_taps = 9 * c_out * c_in;
    // Per chunk of columns: the tap-major partial gradient [9][c_out][c_in], summed.
    let offsets: [usize; 9] = std::array::from_fn(|t| shape.tap_offset(t));
    let chunk_grad = |acc: &mut [f32], i: usize, accumulate: bool| {
        let j0 = i * chunk;
        let k = chunk.min(columns - j0);
        if tiles {
            let shape = TiledGrad {
                c_in,
                c_out,
                stride,
                offsets,
            };
            weight_grad_tiles(wide, padded, &shape, j0, k, acc, accumulate);
            return;
        }
        for t in 0..9 {
            let offset = shape.tap_offset(t);
            let dst = &mut acc[t * c_out * c_in..(t + 1) * c_out * c_in];
            // SAFETY: dst is `c_out × c_in` row-major (row stride c_in, column stride 1);
            // lhs is the `c_out × k` block at column j0 of `wide` (row stride `stride`); rhs
            // is `k × c_in` read from `padded` at offset + j0 with row stride 1 and column
            // stride `stride`, in bounds because offset + columns ≤ stride. No buffers
            // overlap.
            unsafe {
                gemm::gemm(
                    c_out,
                    c_in,
                    k,
                    dst.as_mut_ptr(),
                    1,
                    c_in as isize,
                    accumulate,
                    wide.as_ptr().add(j0),
                    1,
                    stride as isize,
                    padded.as_ptr().add(offset + j0),
                    stride as isize,
                    1,
                    1.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    parallelism,
                );
            }
        }
    };
    let taps = ordered_sum(chunks, n_taps, chunk_grad);
    build_rows(c_out * c_in, 9, |k, dst| {
        for (t, d) in dst.iter_mut().enumerate() {
            d.write(taps[t * c_out * c_in + k]);
        }
    })
}

/// Whether [`weight_grad_lanes`] runs a thin layer's weight gradient (one side with at most
/// [`MAX_TILED_CHANNELS`]): on AVX-512 whole 16-lane vectors of output channels and at least
/// one group of [`direct::LANE_GRAD_CI`] input channels (the first layer, one input channel,
/// stays on [`direct::weight_grad_tile3`]); on AVX2 whole 8-lane vectors.
#[cfg(target_arch = "x86_64")]
fn lanes_pay_off(kernel: ConvKernel, c_in: usize, c_out: usize) -> bool {
    let thin = c_in.min(c_out) <= MAX_TILED_CHANNELS;
    match kernel {
        ConvKernel::Avx512 => {
            thin && c_out.is_multiple_of(direct::LANE_GRAD_CO) && c_in >= direct::LANE_GRAD_CI
        }
        ConvKernel::Avx2 => thin && c_out.is_multiple_of(8),
        ConvKernel::Gemm => false,
    }
}

/// Columns per chunk of [`weight_grad_lanes`]: the chunk's transposed gradient (16 output
/// channels, 32 KB) stays in L1 while every group of input channels reads it.
#[cfg(target_arch = "x86_64")]
const LANE_GRAD_COLUMNS: usize = 512;

/// [`conv3x3_weight_grad`] of the thin layers with output channels in the vector lanes: per
/// chunk of columns, each block of 16 (AVX-512) or 8 (AVX2) output channels of the output
/// gradient (`wide`, the wide view of its fold) is transposed to `[columns][lanes]`, then
/// every group of three input channels ([`direct::lane_grad_tile3`]; on AVX2 every input
/// channel, [`direct::lane_grad_tile1_avx2`]) adds its nine taps' sums. The chunks' partial
/// sums are added in an order that does not depend on scheduling ([`ordered_sum`]).
/// [`lanes_pay_off`] must hold.
#[cfg(target_arch = "x86_64")]
fn weight_grad_lanes(
    wide: &[f32],
    padded: &[f32],
    shape: Nchw,
    c_out: usize,
    kernel: ConvKernel,
) -> Vec<f32> {
    use direct::{LANE_GRAD_CI, LaneGradTile};
    assert!(lanes_pay_off(kernel, shape.channels, c_out));
    let avx512 = kernel == ConvKernel::Avx512;
    let (lanes, group_size) = if avx512 { (16, LANE_GRAD_CI) } else { (8, 1) };
    let c_in = shape.channels;
    let (columns, stride, pitch) = (shape.columns(), shape.folded_stride(), shape.padded_width());
    let blocks = c_out / lanes;
    let chunk = LANE_GRAD_COLUMNS;
    let chunks = columns.div_ceil(chunk);
    // Sums `[block][ci][tap][lanes]`.
    let per_block = c_in * 9 * lanes;
    let sums = ordered_sum(chunks, blocks * per_block, |acc, i, _accumulate| {
        // `acc` starts at zero in every group ([`ordered_sum`]): the tiles always add.
        let j0 = i * chunk;
        let n = chunk.min(columns - j0);
        // The transposed gradient, in a buffer each thread keeps (the transposition writes
        // all of it).
        thread_local! {
            static GRAD_T: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        GRAD_T.with_borrow_mut(|grad_t| {
            if grad_t.len() < n * lanes {
                grad_t.resize(n * lanes, 0.0);
            }
            let grad_t = &mut grad_t[..n * lanes];
            for (block, acc) in acc.chunks_exact_mut(per_block).enumerate() {
                let first = &wide[block * lanes * stride + j0..];
                assert!(first.len() >= (lanes - 1) * stride + n);
                // SAFETY: the CPU has AVX-512F (AVX2 and FMA) where `kernel` is Avx512 (Avx2),
                // see ConvKernel::available; the `lanes` rows from `first` hold n values each
                // (asserted); grad_t holds lanes · n.
                unsafe {
                    if avx512 {
                        direct::transpose_grad_rows(first.as_ptr(), stride, n, grad_t);
                    } else {
                        direct::transpose_grad_rows8(first.as_ptr(), stride, n, grad_t);
                    }
                }
                for ci0 in (0..c_in).step_by(group_size) {
                    let group = group_size.min(c_in - ci0);
                    let row = |c: usize| padded[(ci0 + c.min(group - 1)) * stride + j0..].as_ptr();
                    let tile = LaneGradTile {
                        grad_t: grad_t.as_ptr(),
                        input: std::array::from_fn(row),
                        pitch,
                        columns: n,
                    };
                    let out = &mut acc[ci0 * 9 * lanes..];
                    // SAFETY: the CPU features as above; `grad_t` holds n · lanes values; each
                    // input row holds, from column j0, stride − j0 ≥ n + 2·pitch + 2 values
                    // (offsets[8] + columns ≤ stride); `out` holds the group's
                    // `group · 9 · lanes` sums.
                    unsafe {
                        if !avx512 {
                            direct::lane_grad_tile1_avx2(&tile, out);
                        } else if group == LANE_GRAD_CI {
                            direct::lane_grad_tile3(&tile, out);
                        } else {
                            for c in 0..group {
                                let one = LaneGradTile {
                                    input: [row(c); LANE_GRAD_CI],
                                    ..tile
                                };
                                direct::lane_grad_tile1(&one, &mut out[c * 9 * lanes..]);
                            }
                        }
                    }
                }
            }
        });
    });
    // `[block][ci][t][o]` → `[co][ci][t]`.
    build_rows(c_out, c_in * 9, |co, dst| {
        let (block, o) = (co / lanes, co % lanes);
        for (k, d) in dst.iter_mut().enumerate() {
            d.write(sums[block * per_block + k * lanes + o]);
        }
    })
}

/// Columns per block of the deep weight gradient: 1,024 × 32 output channels = 128 KB of the
/// transposed gradient, read by the nine taps of a task from L2.
const DEEP_GRAD_COLUMNS: usize = 1024;

/// [`conv3x3_weight_grad`] of the deeper layers on AVX-512 ([`direct::deep_grad_tile`]): the
/// output gradient (`wide`, the wide view of its fold) transposed once per block of 32 output
/// channels, then one task per block of 32 output channels × 12 input channels, each summing
/// every column in order for all nine taps (so the result does not depend on scheduling).
fn weight_grad_deep(wide: &[f32], padded: &[f32], shape: Nchw, c_out: usize) -> Vec<f32> {
    use direct::{DEEP_GRAD_CI, DEEP_GRAD_CO, DeepGradTile};
    let c_in = shape.channels;
    let (columns, stride) = (shape.columns(), shape.folded_stride());
    let co_blocks = c_out.div_ceil(DEEP_GRAD_CO);
    // `[block][columns][32]`, zeros past c_out; 64 columns at a time, so that the 32 rows'
    // current lines stay in cache while each is written 32 apart.
    let grad_t = build_rows(co_blocks, columns * DEEP_GRAD_CO, |b, dst| {
        for j0 in (0..columns).step_by(64) {
            let n = 64.min(columns - j0);
            for o in 0..DEEP_GRAD_CO {
                let co = b * DEEP_GRAD_CO + o;
                let slots = dst[j0 * DEEP_GRAD_CO + o..]
                    .iter_mut()
                    .step_by(DEEP_GRAD_CO);
                if co < c_out {
                    for (d, &v) in slots.zip(&wide[co * stride + j0..][..n]) {
                        d.write(v);
                    }
                } else {
                    for d in slots.take(n) {
                        d.write(0.0);
                    }
                }
            }
        }
    });
    let ci_groups = c_in.div_ceil(DEEP_GRAD_CI);
    let mut dw = vec![0.0f32; c_out * c_in * 9];
    let dst = OutPtr(dw.as_mut_ptr());
    // One task per block of output channels and group of input channels; inside it, the
    // columns in blocks whose slice of the transposed gradient stays in L2 while all nine
    // taps read it (partial sums kept in `sums` between blocks).
    (0..co_blocks * ci_groups).into_par_iter().for_each(|task| {
        let group = task % ci_groups;
        let block = task / ci_groups;
        let mut sums = [[[0.0f32; DEEP_GRAD_CO]; DEEP_GRAD_CI]; 9];
        for j0 in (0..columns).step_by(DEEP_GRAD_COLUMNS) {
            let n = DEEP_GRAD_COLUMNS.min(columns - j0);
            for (t, sums_t) in sums.iter_mut().enumerate() {
                let offset = shape.tap_offset(t) + j0;
                // Past c_in the last channel is read again; those sums are not stored.
                let input = std::array::from_fn(|c| {
                    let ci = (group * DEEP_GRAD_CI + c).min(c_in - 1);
                    padded[ci * stride + offset..].as_ptr()
                });
                let tile = DeepGradTile {
                    grad_t: grad_t[(block * columns + j0) * DEEP_GRAD_CO..].as_ptr(),
                    input,
                    columns: n,
                    accumulate: j0 > 0,
                };
                #[cfg(target_arch = "x86_64")]
                // SAFETY: ConvKernel::Avx512 is only chosen on a CPU with AVX-512F; the
                // block of `grad_t` holds n · 32 values from column j0; input row ci from
                // the tap's offset + j0 holds stride − offset − j0 ≥ n values.
                unsafe {
                    direct::deep_grad_tile(&tile, sums_t)
                };
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!("ConvKernel::Avx512 on {:p} {sums_t:p}", tile.grad_t);
            }
        }
        for (t, sums_t) in sums.iter().enumerate() {
            for (c, lanes) in sums_t.iter().enumerate() {
                let ci = group * DEEP_GRAD_CI + c;
                if ci >= c_in {
                    break;
                }
                for (o, &v) in lanes.iter().enumerate().take(c_out - block * DEEP_GRAD_CO) {
                    let co = block * DEEP_GRAD_CO + o;
                    // SAFETY: (co, ci, t) is inside dw, and this task alone writes it.
                    unsafe { *dst.get().add((co * c_in + ci) * 9 + t) = v };
                }
            }
        }
    });
    dw
}

/// The geometry [`weight_grad_tiles`] works on: channel counts, the folded buffers' row stride
/// and the nine tap offsets.
#[derive(Clone, Copy)]
struct TiledGrad {
    c_in: usize,
    c_out: usize,
    stride: usize,
    offsets: [usize; 9],
}

/// The AVX-512 form of one chunk of [`conv3x3_weight_grad`]: `acc` (`[9][c_out][c_in]`) gets
/// `Σ_j wide[co][j] · padded[ci][j + offsets[t]]` over columns `j0..j0+n`, tiles of
/// [`direct::GRAD_ROWS`] output channels by one input channel.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn weight_grad_tiles(
    wide: &[f32],
    padded: &[f32],
    shape: &TiledGrad,
    j0: usize,
    n: usize,
    acc: &mut [f32],
    accumulate: bool,
) {
    let TiledGrad {
        c_in,
        c_out,
        stride,
        offsets,
    } = *shape;
    for co in (0..c_out).step_by(direct::GRAD_ROWS) {
        let rows = direct::GRAD_ROWS.min(c_out - co);
        for ci in 0..c_in {
            let tile = GradTile {
                grad: wide[co * stride + j0..].as_ptr(),
                grad_stride: stride,
                input: padded[ci * stride + j0..].as_ptr(),
                offsets,
                columns: n,
            };
            let out = &mut acc[co * c_in + ci..];
            #[cfg(target_arch = "x86_64")]
            // SAFETY: ConvKernel::Avx512 is only chosen on a CPU with AVX-512F; rows
            // co..co+rows of `wide` hold columns j0..j0+n, and `padded`'s row ci holds
            // j0 + offsets[8] + n ≤ columns + offsets[8] ≤ stride values from its start.
            // `out` reaches (8·c_out + rows-1)·c_in past its start, inside `acc`.
            unsafe {
                if rows == 3 {
                    direct::weight_grad_tile3(&tile, out, c_out * c_in, c_in, accumulate);
                } else {
                    for r in 0..rows {
                        let row = GradTile {
                            grad: tile.grad.add(r * stride),
                            ..tile
                        };
                        let out = &mut out[r * c_in..];
                        direct::weight_grad_row(&row, out, c_out * c_in, accumulate);
                    }
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            unreachable!("ConvKernel::Avx512 on {:p} {out:p}", tile.grad);
        }
    }
}

/// `Σ_i partial(i)` over `0..parts` as one `len`-vector, in an order that does not depend on
/// scheduling: contiguous groups of parts (four per thread, for load balance) each accumulate
/// in order, then the groups are added in order. A work-stealing reduction would group the float sums
/// differently from run to run, and training would no longer be deterministic from its seed.
/// `partial(acc, i, accumulate)` adds part `i` to `acc`, or overwrites it when `!accumulate`.
pub(crate) fn ordered_sum(
    parts: usize,
    len: usize,
    partial: impl Fn(&mut [f32], usize, bool) + Sync,
) -> Vec<f32> {
    let groups = (4 * rayon::current_num_threads()).clamp(1, parts.max(1));
    let sums: Vec<Vec<f32>> = (0..groups)
        .into_par_iter()
        .map(|g| {
            let mut acc = vec![0.0; len];
            let range = even_share(g, groups, parts);
            for (k, i) in range.enumerate() {
                partial(&mut acc, i, k > 0);
            }
            acc
        })
        .collect();
    let mut sums = sums.into_iter();
    let mut total = sums.next().unwrap_or_else(|| vec![0.0; len]);
    for sum in sums {
        total.iter_mut().zip(&sum).for_each(|(t, s)| *t += s);
    }
    total
}

/// Share `k` of `0..len` cut into `shares` contiguous ranges whose lengths differ by at most
/// one. (Ranges of `len.div_ceil(shares)` leave the last share short: 66 weight-gradient
/// chunks in 8 groups of 9 gave one thread 36 chunks and the other 30.)
pub(crate) fn even_share(k: usize, shares: usize, len: usize) -> std::ops::Range<usize> {
    let shares = shares.max(1);
    k * len / shares..(k + 1) * len / shares
}

/// Gradient with respect to the bias: `grad` (`[batch, c_out, plane]`) summed over batch and
/// space, `[c_out]`.
pub fn bias_grad(grad: &[f32], batch: usize, c_out: usize, plane: usize) -> Vec<f32> {
    (0..c_out)
        .into_par_iter()
        .map(|co| {
            // Eight running sums (vectorised, in a fixed order), added at the end.
            let mut lanes = [0.0f32; 8];
            for b in 0..batch {
                let values = &grad[(b * c_out + co) * plane..][..plane];
                let mut chunks = values.chunks_exact(8);
                for chunk in &mut chunks {
                    for (lane, v) in lanes.iter_mut().zip(chunk) {
                        *lane += v;
                    }
                }
                for (lane, v) in lanes.iter_mut().zip(chunks.remainder()) {
                    *lane += v;
                }
            }
            lanes.iter().sum()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{dot, max_abs_diff, random};
    use seeded_rng::SplitMix64;

    #[test]
    fn even_shares_cover_the_range_once_and_differ_by_at_most_one() {
        for (shares, len) in [(8, 66), (2, 3), (8, 3), (1, 5), (4, 0), (3, 9), (16, 100)] {
            let ranges: Vec<_> = (0..shares).map(|k| even_share(k, shares, len)).collect();
            let mut next = 0;
            for r in &ranges {
                assert_eq!(r.start, next, "{shares} shares of {len}: {ranges:?}");
                next = r.end;
            }
            assert_eq!(next, len, "{shares} shares of {len}: {ranges:?}");
            let lens: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
            let (lo, hi) = (lens.iter().min(), lens.iter().max());
            assert!(hi.zip(lo).is_some_and(|(h, l)| h - l <= 1), "{lens:?}");
        }
    }

    /// Direct definition, for checking.
    fn naive(x: &[f32], s: Nchw, weight: &[f32], c_out: usize) -> Vec<f32> {
        let (h, w, c_in) = (s.height, s.width, s.channels);
        let mut out = vec![0.0; s.batch * c_out * h * w];
        for b in 0..s.batch {
            for co in 0..c_out {
                for y in 0..h {
                    for xx in 0..w {
                        let mut acc = 0.0f64;
                        for ci in 0..c_in {
                            for dy in 0..3 {
                                for dx in 0..3 {
                                    let (iy, ix) = (y + dy, xx + dx);
                                    if iy == 0 || ix == 0 || iy > h || ix > w {
                                        continue;
                                    }
                                    acc += (weight[((co * c_in + ci) * 3 + dy) * 3 + dx]
                                        * x[((b * c_in + ci) * h + iy - 1) * w + ix - 1])
                                        as f64;
                                }
                            }
                        }
                        out[((b * c_out + co) * h + y) * w + xx] = acc as f32;
                    }
                }
            }
        }
        out
    }

    /// NCHW `x` (`s`) split over channels into `[.., first, ..]` and the rest.
    fn split_channels(x: &[f32], s: Nchw, first: usize) -> (Vec<f32>, Vec<f32>) {
        let plane = s.height * s.width;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for image in x.chunks_exact(s.channels * plane) {
            a.extend_from_slice(&image[..first * plane]);
            b.extend_from_slice(&image[first * plane..]);
        }
        (a, b)
    }

    /// The weight gradient by its definition: `dW[co][ci][dy][dx] = Σ g[b][co][y][x] ·
    /// x[b][ci][y+dy−1][x+dx−1]` (zero outside the image).
    fn naive_weight_grad(x: &[f32], s: Nchw, g: &[f32], c_out: usize) -> Vec<f64> {
        let (h, w, c_in) = (s.height, s.width, s.channels);
        let mut dw = vec![0.0f64; c_out * c_in * 9];
        for co in 0..c_out {
            for ci in 0..c_in {
                for t in 0..9 {
                    let (dy, dx) = (t / 3, t % 3);
                    let mut acc = 0.0f64;
                    for b in 0..s.batch {
                        for y in 0..h {
                            for xx in 0..w {
                                let (iy, ix) = (y + dy, xx + dx);
                                if iy == 0 || ix == 0 || iy > h || ix > w {
                                    continue;
                                }
                                let gv = g[((b * c_out + co) * h + y) * w + xx];
                                let xv = x[((b * c_in + ci) * h + iy - 1) * w + ix - 1];
                                acc += f64::from(gv) * f64::from(xv);
                            }
                        }
                    }
                    dw[(co * c_in + ci) * 9 + t] = acc;
                }
            }
        }
        dw
    }

    #[test]
    fn deep_weight_gradient_matches_the_definition() {
        // More than 32 channels on both sides: the deep AVX-512 kernel's path, with output
        // and input channels left over from its 32 × 12 blocks, and 84 and 1,300 columns
        // (one block of columns, then a second one that adds to the first).
        let mut rng = SplitMix64::stream(5, 2);
        for kernel in ConvKernel::available() {
            for (batch, c_in, c_out, h, w) in [(2, 37, 45, 5, 6), (2, 33, 64, 24, 25)] {
                let s = Nchw {
                    batch,
                    channels: c_in,
                    height: h,
                    width: w,
                };
                let x = random(batch * c_in * h * w, &mut rng);
                let g = random(batch * c_out * h * w, &mut rng);
                let weight = random(c_out * c_in * 9, &mut rng);
                let expected = naive_weight_grad(&x, s, &g, c_out);
                let dw = conv3x3_weight_grad(&x, s, &g, c_out, kernel);
                let both = conv3x3_grads(
                    &fold_input(&x, s),
                    s,
                    &weight,
                    None,
                    &g,
                    c_out,
                    kernel,
                    None,
                );
                assert_eq!(dw, both.weight);
                for (k, (got, want)) in dw.iter().zip(&expected).enumerate() {
                    assert!(
                        (f64::from(*got) - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "{kernel:?} {c_in}->{c_out} dW[{k}] {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn winograd_form_matches_the_definition() {
        // 32+ channels on one side and 64+ on the other, even sides, 128+ tiles: the
        // F(2×2, 3×3) path, for the forward pass (bias, ReLU, output in two parts) and the
        // input gradient. 2×2 images have one tile each; 6×10 ones three tile rows of five; the
        // chunks end inside images.
        let mut rng = SplitMix64::stream(9, 4);
        for (batch, c_in, c_out, h, w) in
            [(128, 64, 70, 2, 2), (9, 66, 64, 6, 10), (8, 64, 64, 8, 8)]
        {
            let s = Nchw {
                batch,
                channels: c_in,
                height: h,
                width: w,
            };
            assert!(winograd::applies(s, c_out));
            let x = random(batch * c_in * h * w, &mut rng);
            let weight = random(c_out * c_in * 9, &mut rng);
            let bias = random(c_out, &mut rng);
            let mut expected = naive(&x, s, &weight, c_out);
            for (i, v) in expected.iter_mut().enumerate() {
                *v += bias[(i / (h * w)) % c_out];
            }
            for kernel in ConvKernel::available() {
                let y = conv3x3_forward(&x, s, &weight, Some(&bias), c_out, false, kernel);
                let scale = 1.0 + expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                assert!(
                    max_abs_diff(&y, &expected) < 2e-6 * scale,
                    "{kernel:?} {s:?}"
                );
                let y_relu = conv3x3_forward(&x, s, &weight, Some(&bias), c_out, true, kernel);
                let relu: Vec<f32> = expected.iter().map(|v| v.max(0.0)).collect();
                assert!(max_abs_diff(&y_relu, &relu) < 2e-6 * scale);
                // Output channels in two parts, as the decoder's input gradient asks.
                let taps = weights_by_tap(&weight, c_out, c_in);
                let epilogue = Epilogue {
                    bias: Some(&bias),
                    relu: false,
                };
                let folded = fold_input(&x, s);
                let split = winograd::conv_folded(&folded, s, &taps, &[20, c_out - 20], epilogue);
                let (first, second) = split_channels(
                    &y,
                    Nchw {
                        channels: c_out,
                        ..s
                    },
                    20,
                );
                assert_eq!(split, vec![first, second], "{kernel:?}");
                // The input gradient (the same path with the kernel transposed and flipped)
                // by the adjoint identity <dL/dx, v> = <g, conv(v)>.
                let g = random(batch * c_out * h * w, &mut rng);
                let dx = conv3x3_input_grad(&g, s, &weight, c_out, kernel);
                let v = random(x.len(), &mut rng);
                let (lhs, rhs) = (dot(&dx, &v), dot(&g, &naive(&v, s, &weight, c_out)));
                assert!(
                    (lhs - rhs).abs() < 1e-4 * (1.0 + rhs.abs()),
                    "{lhs} vs {rhs}"
                );
            }
        }
    }

    #[test]
    fn winograd_weight_gradient_matches_the_definition() {
        // 64+ channels and 128+ tiles: the F(3×3, 2×2) weight gradient, its chunks summed in
        // two or more groups; odd tile counts per row (9, 3).
        let mut rng = SplitMix64::stream(9, 5);
        for (batch, c_in, c_out, h, w) in [(4, 64, 66, 16, 18), (30, 65, 64, 6, 6)] {
            let s = Nchw {
                batch,
                channels: c_in,
                height: h,
                width: w,
            };
            assert!(winograd::weight_grad_applies(s, c_out));
            let x = random(batch * c_in * h * w, &mut rng);
            let g = random(batch * c_out * h * w, &mut rng);
            let expected = naive_weight_grad(&x, s, &g, c_out);
            for kernel in ConvKernel::available() {
                let dw = conv3x3_weight_grad(&x, s, &g, c_out, kernel);
                for (k, (got, want)) in dw.iter().zip(&expected).enumerate() {
                    assert!(
                        (f64::from(*got) - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "{kernel:?} {c_in}->{c_out} dW[{k}] {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn forward_and_gradients_match_the_definition() {
        let kernels = ConvKernel::available();
        println!("shifted-conv kernels under test: {kernels:?}");
        for kernel in kernels {
            check_against_the_definition(kernel);
        }
    }

    fn check_against_the_definition(kernel: ConvKernel) {
        let mut rng = SplitMix64::stream(3, 1);
        // Non-square, odd sizes; the column chunks end inside images and rows, the last one
        // short (56, 300 and 2142 columns).
        // The last case has 1×1 images, whose every neighbour is shared padding.
        for (batch, c_in, c_out, h, w) in [
            (1, 3, 5, 7, 6),
            (5, 4, 2, 5, 9),
            (3, 6, 7, 20, 33),
            (3, 2, 4, 1, 1),
            // Every tile shape of the AVX-512 kernels: 8-row blocks with 1–7 rows left over
            // (forward 19 and 1 outputs, input gradient 9), 3-row gradient blocks with 1 left.
            (2, 9, 19, 6, 11),
            (2, 1, 16, 4, 3),
            // The lane weight-gradient tiles: 16 and 32 output channels (AVX-512 and AVX2),
            // 24 (AVX2 only: three 8-lane blocks), groups of three input channels with one
            // and two left over, chunks of 512 columns with the last one short and not a
            // multiple of 16 or 8 (1,428, 150 and 252 columns).
            (2, 4, 16, 20, 33),
            (1, 5, 32, 9, 14),
            (1, 2, 24, 11, 20),
            // The AVX2 forward tile's second pass of 4 rows with 2 of them stored (14 = 8 + 6).
            (1, 3, 14, 5, 30),
        ] {
            let s = Nchw {
                batch,
                channels: c_in,
                height: h,
                width: w,
            };
            let x = random(batch * c_in * h * w, &mut rng);
            let weight = random(c_out * c_in * 9, &mut rng);
            let bias = random(c_out, &mut rng);
            let mut expected = naive(&x, s, &weight, c_out);
            for (i, v) in expected.iter_mut().enumerate() {
                *v += bias[(i / (h * w)) % c_out];
            }
            let y = conv3x3_forward(&x, s, &weight, Some(&bias), c_out, false, kernel);
            assert!(max_abs_diff(&y, &expected) < 1e-5, "{kernel:?}");
            let y_relu = conv3x3_forward(&x, s, &weight, Some(&bias), c_out, true, kernel);
            let expected_relu: Vec<f32> = expected.iter().map(|v| v.max(0.0)).collect();
            assert!(max_abs_diff(&y_relu, &expected_relu) < 1e-5);
            assert!(y_relu.contains(&0.0) && y_relu.iter().any(|v| *v > 0.0));

            // Gradients of L = Σ g·y by the adjoint identities: <dL/dx, v> = <g, conv(v)>
            // for any v, and dL/dW[k] = <g, conv_{e_k}(x)>.
            let g = random(batch * c_out * h * w, &mut rng);
            let dx = conv3x3_input_grad(&g, s, &weight, c_out, kernel);
            let v = random(x.len(), &mut rng);
            let lhs = dot(&dx, &v);
            let rhs = dot(&g, &naive(&v, s, &weight, c_out));
            assert!(
                (lhs - rhs).abs() < 1e-3 * (1.0 + rhs.abs()),
                "{lhs} vs {rhs}"
            );
            let dw = conv3x3_weight_grad(&x, s, &g, c_out, kernel);
            // Every element: the AVX-512 gradient tiles cover 3 output channels × 9 taps.
            for k in 0..weight.len() {
                let mut e = vec![0.0; weight.len()];
                e[k] = 1.0;
                let expected = dot(&g, &naive(&x, s, &e, c_out));
                assert!(
                    (dw[k] as f64 - expected).abs() < 1e-3 * (1.0 + expected.abs()),
                    "{kernel:?} dW[{k}] {} vs {expected}",
                    dw[k]
                );
            }
            // All from one fold of `g`: the same values, and no input gradient unless asked.
            let folded_x = fold_input(&x, s);
            let whole = Some(&[c_in][..]);
            let all = conv3x3_grads(&folded_x, s, &weight, None, &g, c_out, kernel, whole);
            assert_eq!(all.input, Some(vec![dx.clone()]), "{kernel:?}");
            assert_eq!(all.weight, dw, "{kernel:?}");
            let no_dx = conv3x3_grads(&folded_x, s, &weight, None, &g, c_out, kernel, None);
            assert!(no_dx.input.is_none() && no_dx.weight == dw);
            let db = bias_grad(&g, batch, c_out, h * w);
            for (co, got) in db.iter().enumerate() {
                let expected: f64 = (0..batch)
                    .flat_map(|b| {
                        g[(b * c_out + co) * h * w..][..h * w]
                            .iter()
                            .map(|v| *v as f64)
                    })
                    .sum();
                assert!((*got as f64 - expected).abs() < 1e-3);
                assert!((all.bias[co] as f64 - expected).abs() < 1e-3, "{kernel:?}");
            }
            // Through a ReLU: the same as masking `g` first, the mask applied in the fold.
            let masked = relu_grad(&y_relu, &g);
            let relu_output = Some(&y_relu[..]);
            let through =
                conv3x3_grads(&folded_x, s, &weight, relu_output, &g, c_out, kernel, whole);
            let dx_masked = conv3x3_input_grad(&masked, s, &weight, c_out, kernel);
            assert_eq!(through.input, Some(vec![dx_masked.clone()]), "{kernel:?}");
            let dw_masked = conv3x3_weight_grad(&x, s, &masked, c_out, kernel);
            assert_eq!(through.weight, dw_masked, "{kernel:?}");
            let db_masked = bias_grad(&masked, batch, c_out, h * w);
            assert!(max_abs_diff(&through.bias, &db_masked) < 1e-4, "{kernel:?}");
            assert!(
                max_abs_diff(&through.bias, &all.bias) > 1e-3,
                "the mask changed nothing"
            );
            // An input given as two channel parts (the decoder's `[upsampled, skip]`): the
            // same fold without concatenating, and the input gradient in the same parts.
            if c_in >= 2 {
                let first = c_in / 2;
                let (xa, xb) = split_channels(&x, s, first);
                let parts = [(&xa[..], first), (&xb[..], c_in - first)];
                assert_eq!(fold_inputs(&parts, s), folded_x);
                let split = [first, c_in - first];
                let by_parts = conv3x3_grads(
                    &folded_x,
                    s,
                    &weight,
                    relu_output,
                    &g,
                    c_out,
                    kernel,
                    Some(&split),
                );
                let (da, db) = split_channels(&dx_masked, s, first);
                assert_eq!(by_parts.input, Some(vec![da, db]), "{kernel:?}");
                assert_eq!(by_parts.weight, through.weight);
            }
        }
    }

    #[test]
    fn relu_grad_masks_where_the_output_is_not_positive() {
        let n = 40_000; // several parallel chunks, the last one short
        let output: Vec<f32> = (0..n)
            .map(|i| match i % 4 {
                0 => 1.5,
                1 => 0.0,
                2 => f32::NAN,
                _ => -0.0,
            })
            .collect();
        let grad: Vec<f32> = (0..n).map(|i| i as f32 + 1.0).collect();
        let masked = relu_grad(&output, &grad);
        let mut in_place = grad.clone();
        relu_grad_in_place(&output, &mut in_place);
        assert_eq!(
            in_place.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            masked.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        for (i, (m, g)) in masked.iter().zip(&grad).enumerate() {
            let kept = i % 4 == 0 || i % 4 == 2;
            assert_eq!(*m, if kept { *g } else { 0.0 }, "element {i}");
        }
    }
}
