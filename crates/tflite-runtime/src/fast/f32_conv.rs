//! Fast f32 CONV_2D and TRANSPOSE_CONV on the `gemm` crate (runtime-dispatched AVX2/AVX-512/
//! NEON microkernels) or, for stride-1 convolutions on AVX2 + FMA CPUs (on AVX-512 ones where a
//! side has at most 16 channels), the direct kernel of `f32_direct`, with the weights packed once, when the interpreter is
//! prepared. With `threads > 1` every path splits its output rows over the persistent
//! threads of [`super::workers`]; each part runs single-threaded GEMMs on its own buffers.
//!
//! Convolution paths (chosen from the geometry, and the CPU, when the weights are packed):
//! - **direct** (the shifted geometry below, AVX2 + FMA; on AVX-512 only where a side has at
//!   most 16 channels): 6 pixels × 16 output channels per register tile (AVX-512: up to 12 × 32
//!   or 16 × 16) over every tap, reading the zero-bordered input in place;
//! - **pointwise** (1×1, stride 1, no padding): one GEMM `[pixels × in_c] · [in_c × out_c]`
//!   straight into the output;
//! - **shifted** (any kernel, stride 1, dilation 1; the U-Net's 3×3 SAME convolutions): the
//!   input is copied once into a zero-bordered buffer of width `Wp = out_w + k_w − 1`. In that
//!   layout the `k_w` taps of one kernel row are `k_w·in_c` *contiguous* floats, so each kernel
//!   row is one GEMM `[out_h·Wp × k_w·in_c] · [k_w·in_c × out_c]` whose left-hand rows overlap
//!   (row stride `in_c`): an implicit im2col with no copy. The `k_w − 1` extra columns of each
//!   row are computed and dropped by the epilogue;
//! - **winograd 4×4** (3×3, stride 1, dilation 1, ≥ 16 channels on both sides and ≥ 16 tiles:
//!   all of the U-Net's 3×3 layers from 128×128 to 16×16 but the first, see `winograd_tiling`):
//!   F(4×4, 3×3) in `f32_winograd`, 36 multiply-adds per 4×4 outputs and channel pair instead of
//!   144, as 36 GEMMs over the tiles;
//! - **winograd** (the same with ≥ 32 channels where there are too few 4×4 tiles: the U-Net's
//!   8×8 layers): F(2×2, 3×3), 16 multiply-adds per 2×2 outputs instead of 36, 16 GEMMs;
//! - **im2col** (strides, dilations, anything else): explicit im2col in chunks of output rows.
//!
//! TRANSPOSE_CONV is one GEMM `[pixels × in_c] · [in_c × k_h·k_w·out_c]` followed by a scatter
//! of each pixel's `k_h × k_w × out_c` block into the output. When the blocks tile the output
//! exactly (stride = kernel, no padding: the U-Net's 2×2 stride-2 up-convolutions) the scatter
//! writes each output once and applies bias and activation on the way; otherwise the blocks
//! are accumulated into a zeroed output (col2im) and the epilogue runs afterwards.
//!
//! Results equal the reference kernels up to float rounding: the GEMM sums the same products
//! in a different order (blocked, vectorised, fused multiply-add), so each output differs by a
//! few ulps of the sum of the absolute products.

use std::cell::RefCell;

use gemm::Parallelism;

use super::f32_winograd::{Tiling, WinogradConvF32};
use super::workers::for_row_parts;
use crate::frame::ConvGeometry;
use crate::quant::clamp_f32;

/// Floats of im2col buffer per chunk (4 MiB).
const IM2COL_CHUNK: usize = 1 << 20;

thread_local! {
    /// The calling thread's buffer for the padded input or the im2col rows.
    static OPERAND: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// Each thread's buffer for the GEMM output of its rows.
    static ACC: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on `len` floats of this thread's `buffer` (contents unspecified).
fn with_buffer<R>(
    buffer: &'static std::thread::LocalKey<RefCell<Vec<f32>>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    buffer.with(|cell| {
        let mut v = cell.borrow_mut();
        if v.len() < len {
            v.resize(len, 0.0);
        }
        f(&mut v[..len])
    })
}

fn parallelism(threads: usize) -> Parallelism {
    if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    }
}

/// `dst = lhs · rhs` (or `dst += lhs · rhs` when `accumulate`), where `lhs` is `m × k` with
/// unit column stride and row stride `lhs_rs` (rows may overlap), `rhs` is `k × n` row-major
/// and `dst` is `m × n` with unit column stride and row stride `dst_rs`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    lhs: &[f32],
    lhs_rs: usize,
    rhs: &[f32],
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(dst_rs >= n && dst.len() >= (m - 1) * dst_rs + n);
    if k == 0 {
        if !accumulate {
            for row in 0..m {
                dst[row * dst_rs..row * dst_rs + n].fill(0.0);
            }
        }
        return;
    }
    assert!(lhs.len() >= (m - 1) * lhs_rs + k);
    assert!(rhs.len() >= k * n);
    // SAFETY: the asserts above keep every element the GEMM reads or writes inside the
    // slices: dst[(i·dst_rs + j)] for i < m, j < n; lhs[i·lhs_rs + p] for p < k; rhs[p·n + j].
    // `dst` is exclusively borrowed, so it aliases neither `lhs` nor `rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            1,
            lhs_rs as isize,
            rhs.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism(threads),
        );
    }
}

/// `out[p] = act(Σ_c x[p·in_c + c]·w[c] + add)`: a 1×1 convolution to one channel (the
/// U-Net's head), one dot product per pixel in eight running sums. As a GEMM its one output
/// column filled a whole column block of the kernel: 0.25 ms for the 16 → 1 head at 128×128,
/// 0.17 ms this way (`--example op_profile -- f32 best 20`, Sapphire Rapids; an AVX2 build of
/// the same loop was no faster, so the pass is bound by reading the 1 MB input).
fn dot_per_pixel(x: &[f32], in_c: usize, w: &[f32], add: f32, act: (f32, f32), out: &mut [f32]) {
    let w = &w[..in_c];
    for (o, px) in out.iter_mut().zip(x.chunks_exact(in_c)) {
        let mut lanes = [0.0f32; 8];
        let (mut xs, mut ws) = (px.chunks_exact(8), w.chunks_exact(8));
        for (a, b) in (&mut xs).zip(&mut ws) {
            for ((lane, a), b) in lanes.iter_mut().zip(a).zip(b) {
                *lane += a * b;
            }
        }
        let mut sum: f32 = lanes.iter().sum();
        for (a, b) in xs.remainder().iter().zip(ws.remainder()) {
            sum += a * b;
        }
        *o = clamp_f32(sum + add, act.0, act.1);
    }
}

/// `v = act(v + bias[c])` over rows of `channels` values.
fn bias_act(values: &mut [f32], channels: usize, bias: Option<&[f32]>, act: (f32, f32)) {
    match bias {
        Some(bias) => {
            for row in values.chunks_exact_mut(channels) {
                for (v, b) in row.iter_mut().zip(bias) {
                    *v = clamp_f32(*v + b, act.0, act.1);
                }
            }
        }
        None => {
            for v in values.iter_mut() {
                *v = clamp_f32(*v + 0.0, act.0, act.1);
            }
        }
    }
}

/// `dst = act(src + bias)` for one row of `bias.len()` (or `dst.len()`) channels.
#[inline]
fn bias_act_into(dst: &mut [f32], src: &[f32], bias: Option<&[f32]>, act: (f32, f32)) {
    match bias {
        Some(bias) => {
            for ((d, s), b) in dst.iter_mut().zip(src).zip(bias) {
                *d = clamp_f32(s + b, act.0, act.1);
            }
        }
        None => {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = clamp_f32(s + 0.0, act.0, act.1);
            }
        }
    }
}

/// The zero-bordered copy the stride-1 paths read: `padded` holds images of `hp` rows of `wp`
/// pixels (`in_c` floats each), and input pixel `(b, y, x)` of `g` (NHWC `input`, as many
/// images as `padded` holds) goes to `(b, y + pad_top, x + pad_left)`; everything else is
/// zero. Each value is written once; the rows are split over `threads`.
pub(crate) fn copy_bordered(
    input: &[f32],
    g: &ConvGeometry,
    (hp, wp): (usize, usize),
    padded: &mut [f32],
    threads: usize,
) {
    let c = g.in_c;
    let left = g.pad_left.min(wp);
    let cols = g.in_w.min(wp - left);
    for_row_parts(padded, wp * c, threads, |rows, part| {
        for (r, row) in rows.zip(part.chunks_exact_mut(wp * c)) {
            let (b, py) = (r / hp, r % hp);
            let iy = py as isize - g.pad_top as isize;
            if iy < 0 || iy >= g.in_h as isize {
                row.fill(0.0);
                continue;
            }
            let src = &input[(b * g.in_h + iy as usize) * g.in_w * c..][..cols * c];
            row[..left * c].fill(0.0);
            row[left * c..(left + cols) * c].copy_from_slice(src);
            row[(left + cols) * c..].fill(0.0);
        }
    });
}

/// Which Winograd algorithm [`PackedConv2dF32::new`] takes for `g`, if any (where it applies:
/// 3×3, stride 1, dilation 1): F(4×4, 3×3) with at least 16 channels on both sides and 16
/// tiles of 4×4 outputs (the U-Net's 128×128 to 16×16 layers but the first), otherwise
/// F(2×2, 3×3) with at least 32 channels on both sides and 16 tiles of 2×2 outputs (its 8×8
/// layers).
///
/// Measured on the U-Net (fms=16, 128×128, `--example thread_scaling -- 2 40 f32`, Sapphire
/// Rapids Xeon, two runs of each rule, one thread / two threads): before F(4×4, 3×3), with
/// F(2×2, 3×3) from 32 channels and 64 tiles, 9.8–10.0 / 5.4 ms; F(4×4, 3×3) from 32 channels
/// and F(2×2, 3×3) on the 8×8 layers 8.4–8.55 / 4.7–4.75 ms; F(4×4, 3×3) also on the 16-channel
/// layers 8.4–8.6 / 4.7 ms (there about as fast as the direct kernel with AVX-512, 4–8 % faster
/// or slower per layer). With the 256-bit code only (`gemm` without `x86-v4`, the direct
/// kernel's 8-lane tiles: what an AVX2 CPU runs): 13.7–14.0 / 7.2–7.3 ms before, 11.7–12.1 /
/// 6.45–6.5 and 11.3–12.05 / 6.3–6.4 ms; the 16-channel layers 0.75–0.95× the direct
/// kernel's time. Without F(2×2, 3×3) on the 8×8 layers: 8.8–8.9 ms (AVX-512), 12.8–13.7 ms
/// (256-bit). Below 16 channels the transforms cost more than the multiply-adds they save.
fn winograd_tiling(g: &ConvGeometry) -> Option<Tiling> {
    let channels = g.in_c.min(g.out_c);
    let tiles = |m: usize| g.batches * g.out_h.div_ceil(m) * g.out_w.div_ceil(m);
    if !WinogradConvF32::applies(g) {
        None
    } else if channels >= 16 && tiles(4) >= 16 {
        Some(Tiling::F4x4)
    } else if channels >= 32 && tiles(2) >= 16 {
        Some(Tiling::F2x2)
    } else {
        None
    }
}

/// How a packed convolution runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvPath {
    /// 1×1, stride 1, no padding: one GEMM into the output.
    Pointwise,
    /// Stride 1, dilation 1: zero-bordered copy, one GEMM per kernel row (implicit im2col).
    Shifted,
    /// Anything else: explicit im2col in chunks of output rows.
    Im2col,
    /// The shifted geometry on AVX2 + FMA CPUs (on AVX-512 ones where a side has at most 16
    /// channels): the direct kernel (`f32_direct`), accumulators in registers over all taps,
    /// no GEMM.
    Direct,
    /// 3×3, stride 1, dilation 1 with many channels on both sides: Winograd F(2×2, 3×3)
    /// (`f32_winograd`), 16 multiply-adds per 2×2 outputs and channel pair instead of 36.
    Winograd,
    /// As [`ConvPath::Winograd`] with F(4×4, 3×3): 36 multiply-adds per 4×4 outputs and
    /// channel pair instead of 144, for layers with enough 4×4 tiles.
    Winograd4x4,
}

/// A CONV_2D (f32) with its weights packed as a `[k_h·k_w·in_c × out_c]` row-major matrix.
#[derive(Debug, Clone)]
pub struct PackedConv2dF32 {
    geometry: ConvGeometry,
    act: (f32, f32),
    path: ConvPath,
    /// The GEMM paths' weights; empty where the direct kernel or Winograd packed their own.
    weights: Vec<f32>,
    #[cfg(target_arch = "x86_64")]
    direct: Option<super::f32_direct::DirectConvF32>,
    winograd: Option<super::f32_winograd::WinogradConvF32>,
}

impl PackedConv2dF32 {
    /// Packs an OHWI `filter` for the convolution `g` with fused activation clamp `act`,
    /// choosing the fastest path for the geometry and this CPU. `None` if the filter does not
    /// have `out_c·k_h·k_w·in_c` elements.
    pub fn new(g: &ConvGeometry, act: (f32, f32), filter: &[f32]) -> Option<Self> {
        if let Some(tiling) = winograd_tiling(g) {
            return Self::with_winograd(g, act, filter, tiling);
        }
        #[allow(unused_mut)]
        let mut packed = Self::with_gemm(g, act, filter)?;
        #[cfg(target_arch = "x86_64")]
        if packed.path == ConvPath::Shifted
            && super::f32_direct::DirectConvF32::is_available()
            && super::f32_direct::DirectConvF32::preferred(g)
        {
            packed.direct = Some(super::f32_direct::DirectConvF32::pack(g, filter));
            // `run_shifted` runs the direct kernel and never reads the GEMM layout.
            packed.weights = Vec::new();
            packed.path = ConvPath::Direct;
        }
        Some(packed)
    }

    /// As [`Self::new`], but Winograd F(2×2, 3×3) wherever it applies (3×3, stride 1,
    /// dilation 1), whatever the channel counts: to compare it with the other paths, and to
    /// test it on small layers.
    pub fn winograd(g: &ConvGeometry, act: (f32, f32), filter: &[f32]) -> Option<Self> {
        Self::with_winograd(g, act, filter, Tiling::F2x2)
    }

    /// As [`Self::winograd`] with F(4×4, 3×3).
    pub fn winograd4x4(g: &ConvGeometry, act: (f32, f32), filter: &[f32]) -> Option<Self> {
        Self::with_winograd(g, act, filter, Tiling::F4x4)
    }

    fn with_winograd(
        g: &ConvGeometry,
        act: (f32, f32),
        filter: &[f32],
        tiling: Tiling,
    ) -> Option<Self> {
        let mut packed = Self::with_gemm(g, act, filter)?;
        if WinogradConvF32::applies(g) {
            packed.winograd = Some(WinogradConvF32::pack(g, filter, tiling));
            // The GEMM layout is not read on this path: do not keep a second copy.
            packed.weights = Vec::new();
            packed.path = match tiling {
                Tiling::F2x2 => ConvPath::Winograd,
                Tiling::F4x4 => ConvPath::Winograd4x4,
            };
        }
        Some(packed)
    }

    /// As [`Self::new`], but never the direct kernel nor Winograd: the `gemm`-based paths only
    /// (to compare them, and to test both on CPUs that have the others).
    pub fn with_gemm(g: &ConvGeometry, act: (f32, f32), filter: &[f32]) -> Option<Self> {
        let taps = g.k_h * g.k_w * g.in_c;
        if filter.len() != g.out_c * taps {
            return None;
        }
        let mut weights = vec![0.0f32; filter.len()];
        for oc in 0..g.out_c {
            for t in 0..taps {
                weights[t * g.out_c + oc] = filter[oc * taps + t];
            }
        }
        let path = if g.k_h == 1
            && g.k_w == 1
            && g.stride_h == 1
            && g.stride_w == 1
            && g.pad_top == 0
            && g.pad_left == 0
            && g.out_h == g.in_h
            && g.out_w == g.in_w
        {
            ConvPath::Pointwise
        } else if g.stride_h == 1 && g.stride_w == 1 && g.dilation_h == 1 && g.dilation_w == 1 {
            ConvPath::Shifted
        } else {
            ConvPath::Im2col
        };
        Some(Self {
            geometry: *g,
            act,
            path,
            weights,
            #[cfg(target_arch = "x86_64")]
            direct: None,
            winograd: None,
        })
    }

    /// The path chosen for this geometry.
    pub fn path(&self) -> ConvPath {
        self.path
    }

    /// The convolution's geometry.
    pub fn geometry(&self) -> &ConvGeometry {
        &self.geometry
    }

    /// Runs the convolution: `output = act(input ⊛ filter + bias)` (NHWC), using up to
    /// `threads` threads for the GEMMs.
    pub fn run(&self, input: &[f32], bias: Option<&[f32]>, output: &mut [f32], threads: usize) {
        let g = &self.geometry;
        assert_eq!(input.len(), g.batches * g.in_h * g.in_w * g.in_c);
        assert_eq!(output.len(), g.batches * g.out_h * g.out_w * g.out_c);
        let bias = bias.filter(|b| b.len() >= g.out_c);
        match self.path {
            ConvPath::Pointwise if g.out_c == 1 => {
                let (w, act) = (&self.weights, self.act);
                let add = bias.map_or(0.0, |b| b[0]);
                for_row_parts(output, 1, threads, |pixels, out| {
                    let x = &input[pixels.start * g.in_c..pixels.end * g.in_c];
                    dot_per_pixel(x, g.in_c, w, add, act, out);
                });
            }
            ConvPath::Pointwise => {
                let (w, act) = (&self.weights, self.act);
                for_row_parts(output, g.out_c, threads, |pixels, out| {
                    let x = &input[pixels.start * g.in_c..pixels.end * g.in_c];
                    matmul(
                        pixels.len(),
                        g.out_c,
                        g.in_c,
                        out,
                        g.out_c,
                        false,
                        x,
                        g.in_c,
                        w,
                        1,
                    );
                    bias_act(out, g.out_c, bias, act);
                });
            }
            ConvPath::Winograd | ConvPath::Winograd4x4 => match &self.winograd {
                Some(w) => w.run(input, bias, output, self.act, threads),
                None => self.run_shifted(input, bias, output, threads),
            },
            ConvPath::Shifted | ConvPath::Direct => self.run_shifted(input, bias, output, threads),
            ConvPath::Im2col => self.run_im2col(input, bias, output, threads),
        }
    }

    fn run_shifted(&self, input: &[f32], bias: Option<&[f32]>, output: &mut [f32], threads: usize) {
        let g = &self.geometry;
        if g.out_h == 0 || g.out_w == 0 {
            return;
        }
        let c = g.in_c;
        let wp = g.out_w + g.k_w - 1;
        let hp = g.out_h + g.k_h - 1;
        let in_image = g.in_h * g.in_w * c;
        let out_image = g.out_h * g.out_w * g.out_c;
        with_buffer(&OPERAND, hp * wp * c, |padded| {
            for b in 0..g.batches {
                let image = &input[b * in_image..(b + 1) * in_image];
                copy_bordered(image, g, (hp, wp), padded, threads);
                // Each thread: its output rows, one GEMM per kernel row (the k_w taps of a
                // kernel row are contiguous in `padded`), then bias and clamp.
                let padded = &*padded;
                let out = &mut output[b * out_image..(b + 1) * out_image];
                for_row_parts(out, g.out_w * g.out_c, threads, |oys, out| {
                    #[cfg(target_arch = "x86_64")]
                    if let Some(direct) = &self.direct {
                        debug_assert_eq!(direct.padded_width(), wp);
                        direct.run_rows(padded, oys, out, bias, self.act);
                        return;
                    }
                    let m = (oys.len() - 1) * wp + g.out_w;
                    let k = g.k_w * c;
                    with_buffer(&ACC, m * g.out_c, |acc| {
                        for ky in 0..g.k_h {
                            matmul(
                                m,
                                g.out_c,
                                k,
                                acc,
                                g.out_c,
                                ky > 0,
                                &padded[(oys.start + ky) * wp * c..],
                                c,
                                &self.weights[ky * k * g.out_c..(ky + 1) * k * g.out_c],
                                1,
                            );
                        }
                        // Drop the k_w − 1 extra columns of each row.
                        let row = g.out_w * g.out_c;
                        for (r, dst) in out.chunks_exact_mut(row).enumerate() {
                            let src = &acc[r * wp * g.out_c..][..row];
                            match bias {
                                Some(bias) => {
                                    for (d, s) in
                                        dst.chunks_exact_mut(g.out_c).zip(src.chunks_exact(g.out_c))
                                    {
                                        bias_act_into(d, s, Some(bias), self.act);
                                    }
                                }
                                None => bias_act_into(dst, src, None, self.act),
                            }
                        }
                    });
                });
            }
        });
    }

    fn run_im2col(&self, input: &[f32], bias: Option<&[f32]>, output: &mut [f32], threads: usize) {
        let g = &self.geometry;
        if g.out_h == 0 || g.out_w == 0 {
            return;
        }
        let c = g.in_c;
        let k = g.k_h * g.k_w * c;
        let rows_per_chunk = (IM2COL_CHUNK / (g.out_w * k).max(1)).clamp(1, g.out_h);
        let in_image = g.in_h * g.in_w * c;
        let out_image = g.out_h * g.out_w * g.out_c;
        for b in 0..g.batches {
            let image = &input[b * in_image..(b + 1) * in_image];
            let out = &mut output[b * out_image..(b + 1) * out_image];
            // Each thread: its output rows, in chunks of im2col rows in its own buffer.
            for_row_parts(out, g.out_w * g.out_c, threads, |oys, out| {
                let chunk = rows_per_chunk.min(oys.len());
                with_buffer(&OPERAND, chunk * g.out_w * k, |cols| {
                    let mut oy0 = oys.start;
                    while oy0 < oys.end {
                        let rows = chunk.min(oys.end - oy0);
                        for r in 0..rows {
                            let oy = oy0 + r;
                            for ox in 0..g.out_w {
                                let dst = &mut cols[(r * g.out_w + ox) * k..][..k];
                                for ky in 0..g.k_h {
                                    let iy = (oy * g.stride_h + ky * g.dilation_h) as isize
                                        - g.pad_top as isize;
                                    for kx in 0..g.k_w {
                                        let ix = (ox * g.stride_w + kx * g.dilation_w) as isize
                                            - g.pad_left as isize;
                                        let d = &mut dst[(ky * g.k_w + kx) * c..][..c];
                                        if iy < 0
                                            || ix < 0
                                            || iy >= g.in_h as isize
                                            || ix >= g.in_w as isize
                                        {
                                            d.fill(0.0);
                                        } else {
                                            let at = (iy as usize * g.in_w + ix as usize) * c;
                                            d.copy_from_slice(&image[at..at + c]);
                                        }
                                    }
                                }
                            }
                        }
                        let m = rows * g.out_w;
                        let at = (oy0 - oys.start) * g.out_w * g.out_c;
                        let dst = &mut out[at..at + m * g.out_c];
                        matmul(
                            m,
                            g.out_c,
                            k,
                            dst,
                            g.out_c,
                            false,
                            &cols[..m * k],
                            k,
                            &self.weights,
                            1,
                        );
                        oy0 += rows;
                    }
                });
                bias_act(out, g.out_c, bias, self.act);
            });
        }
    }
}

/// A TRANSPOSE_CONV (f32) with its weights packed as `[in_c × k_h·k_w·out_c]` row-major.
#[derive(Debug, Clone)]
pub struct PackedTransposeConvF32 {
    geometry: ConvGeometry,
    act: (f32, f32),
    weights: Vec<f32>,
    /// The kernel blocks tile the output exactly (stride = kernel, no padding).
    tiles: bool,
}

impl PackedTransposeConvF32 {
    /// Packs an OHWI `filter` for the transposed convolution `g` (whose `in_*` is the small
    /// data input). `None` if the filter does not have `out_c·k_h·k_w·in_c` elements.
    pub fn new(g: &ConvGeometry, act: (f32, f32), filter: &[f32]) -> Option<Self> {
        let taps = g.k_h * g.k_w;
        if filter.len() != g.out_c * taps * g.in_c {
            return None;
        }
        let n = taps * g.out_c;
        let mut weights = vec![0.0f32; filter.len()];
        for oc in 0..g.out_c {
            for t in 0..taps {
                for ic in 0..g.in_c {
                    weights[ic * n + t * g.out_c + oc] = filter[(oc * taps + t) * g.in_c + ic];
                }
            }
        }
        let tiles = g.stride_h == g.k_h
            && g.stride_w == g.k_w
            && g.pad_top == 0
            && g.pad_left == 0
            && g.out_h == g.in_h * g.k_h
            && g.out_w == g.in_w * g.k_w;
        Some(Self {
            geometry: *g,
            act,
            weights,
            tiles,
        })
    }

    /// True when the kernel blocks tile the output exactly (the single-pass scatter).
    pub fn tiles(&self) -> bool {
        self.tiles
    }

    /// Runs the transposed convolution, using up to `threads` threads for the GEMM.
    pub fn run(&self, input: &[f32], bias: Option<&[f32]>, output: &mut [f32], threads: usize) {
        let g = &self.geometry;
        assert_eq!(input.len(), g.batches * g.in_h * g.in_w * g.in_c);
        assert_eq!(output.len(), g.batches * g.out_h * g.out_w * g.out_c);
        let bias = bias.filter(|b| b.len() >= g.out_c);
        let n = g.k_h * g.k_w * g.out_c;
        if self.tiles {
            // Input row r (of all batches) fills output rows r·k_h .. (r+1)·k_h exactly, so each
            // thread takes whole input rows: its GEMM, then the scatter with bias and clamp.
            let out_rows = g.k_h * g.out_w * g.out_c;
            for_row_parts(output, out_rows, threads, |rows, out| {
                let pixels = rows.len() * g.in_w;
                let x = &input[rows.start * g.in_w * g.in_c..][..pixels * g.in_c];
                with_buffer(&ACC, pixels * n, |blocks| {
                    matmul(
                        pixels,
                        n,
                        g.in_c,
                        blocks,
                        n,
                        false,
                        x,
                        g.in_c,
                        &self.weights,
                        1,
                    );
                    for (r, out) in out.chunks_exact_mut(out_rows).enumerate() {
                        for ix in 0..g.in_w {
                            let block = &blocks[(r * g.in_w + ix) * n..][..n];
                            for ky in 0..g.k_h {
                                for kx in 0..g.k_w {
                                    let at = (ky * g.out_w + ix * g.k_w + kx) * g.out_c;
                                    let src = &block[(ky * g.k_w + kx) * g.out_c..][..g.out_c];
                                    bias_act_into(&mut out[at..at + g.out_c], src, bias, self.act);
                                }
                            }
                        }
                    }
                });
            });
            return;
        }
        // General case: one GEMM (the `gemm` crate's own threads), then col2im accumulation.
        let pixels = g.batches * g.in_h * g.in_w;
        with_buffer(&ACC, pixels * n, |blocks| {
            matmul(
                pixels,
                n,
                g.in_c,
                blocks,
                n,
                false,
                input,
                g.in_c,
                &self.weights,
                threads,
            );
            output.fill(0.0);
            for b in 0..g.batches {
                for iy in 0..g.in_h {
                    for ix in 0..g.in_w {
                        let p = (b * g.in_h + iy) * g.in_w + ix;
                        let block = &blocks[p * n..(p + 1) * n];
                        for ky in 0..g.k_h {
                            let oy = (iy * g.stride_h + ky) as isize - g.pad_top as isize;
                            if oy < 0 || oy >= g.out_h as isize {
                                continue;
                            }
                            for kx in 0..g.k_w {
                                let ox = (ix * g.stride_w + kx) as isize - g.pad_left as isize;
                                if ox < 0 || ox >= g.out_w as isize {
                                    continue;
                                }
                                let at =
                                    ((b * g.out_h + oy as usize) * g.out_w + ox as usize) * g.out_c;
                                let dst = &mut output[at..at + g.out_c];
                                let src = &block[(ky * g.k_w + kx) * g.out_c..][..g.out_c];
                                for (d, s) in dst.iter_mut().zip(src) {
                                    *d += s;
                                }
                            }
                        }
                    }
                }
            }
            bias_act(output, g.out_c, bias, self.act);
        });
    }
}
