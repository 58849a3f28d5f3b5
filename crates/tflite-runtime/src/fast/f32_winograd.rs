//! Winograd F(2×2, 3×3) and F(4×4, 3×3) for f32 3×3, stride-1, dilation-1 convolutions with
//! many channels (NHWC).
//!
//! F(m×m, 3×3) computes an m×m block of outputs of one channel pair with (m + 2)² multiply-adds
//! instead of the direct form's 9·m²: 16 instead of 36 for m = 2, 36 instead of 144 for m = 4.
//! Per output tile the (m + 2)² input patch is transformed as `V = Bᵀ·d·B`, each of the
//! (m + 2)² positions `k` of `V` is one GEMM `M_k = V_k · U_k` over the tiles
//! (`[tiles × in_c] · [in_c × out_c]`, `U = G·g·Gᵀ` packed once), and `Y = Aᵀ·M·A` gives the
//! tile's m² outputs, with bias and clamp applied on the way out. F(2×2, 3×3):
//!
//! ```text
//!      [1  0 −1  0]       [1   0   0]       [1  1  1  0]
//! Bᵀ = [0  1  1  0]   G = [½   ½   ½]   Aᵀ = [0  1 −1 −1]
//!      [0 −1  1  0]       [½  −½   ½]
//!      [0  1  0 −1]       [0   0   1]
//! ```
//!
//! F(4×4, 3×3), interpolation points 0, ±1, ±2 and ∞ (Lavin and Gray, "Fast Algorithms for
//! Convolutional Neural Networks", 2016):
//!
//! ```text
//!      [4  0 −5  0  1  0]       [ ¼     0    0 ]
//!      [0 −4 −4  1  1  0]       [−⅙    −⅙   −⅙ ]       [1  1  1  1  1  0]
//! Bᵀ = [0  4 −4 −1  1  0]   G = [−⅙     ⅙   −⅙ ]   Aᵀ = [0  1 −1  2 −2  0]
//!      [0 −2 −1  2  1  0]       [1/24 1/12  ⅙ ]        [0  1  1  4  4  0]
//!      [0  2 −1 −2  1  0]       [1/24 −1/12 ⅙ ]        [0  1 −1  8 −8  1]
//!      [0  4  0 −5  0  1]       [ 0     0    1 ]
//! ```
//!
//! In NHWC the transforms run along the channels, so they vectorise as plain loops (compiled
//! for AVX-512 or AVX2 + FMA where the CPU has them), in fixed steps of 16 channels. Tiles go
//! in blocks of at least 64 whose transformed inputs and products (`16 × (in_c + out_c)` floats
//! per tile) take about 512 KiB; the threads split the tiles.
//!
//! The sums run in another order, through the transforms' additions, so results match the
//! reference within float rounding as the other f32 paths do. F(2×2, 3×3)'s transforms only
//! add, subtract and halve; F(4×4, 3×3)'s scale by up to 8 before the sums cancel, so its
//! rounding error is larger: in a float32 model of one output tile (64 input channels, inputs
//! in ±1.5, weights in ±0.5, 50 tiles) the worst error was 1.4·10⁻⁶ of `Σ|x·w|` against
//! 4·10⁻⁸ for F(2×2, 3×3), both inside the 10⁻⁵ the tests allow every fast f32 path.

use std::cell::RefCell;

use crate::frame::ConvGeometry;
use crate::quant::clamp_f32;

/// Which Winograd algorithm: the size of its output tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tiling {
    /// F(2×2, 3×3): 2×2 outputs from a 4×4 patch, 16 positions.
    F2x2,
    /// F(4×4, 3×3): 4×4 outputs from a 6×6 patch, 36 positions.
    F4x4,
}

impl Tiling {
    /// Output rows (and columns) per tile.
    const fn out(self) -> usize {
        match self {
            Self::F2x2 => 2,
            Self::F4x4 => 4,
        }
    }

    /// Input rows (and columns) per tile's patch.
    const fn patch(self) -> usize {
        self.out() + 2
    }

    /// Positions of a transformed patch: one GEMM each.
    const fn taps(self) -> usize {
        self.patch() * self.patch()
    }
}

/// The most positions of a transformed patch (F(4×4, 3×3)'s 36).
const MAX_TAPS: usize = Tiling::F4x4.taps();
/// The most outputs of a tile (F(4×4, 3×3)'s 16).
const MAX_OUTS: usize = Tiling::F4x4.out() * Tiling::F4x4.out();

thread_local! {
    /// Each thread's transformed inputs and products of one block of tiles.
    static BLOCK: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The calling thread's zero-bordered input.
    static PADDED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// A 3×3 stride-1 CONV_2D with its weights transformed for F(2×2, 3×3) or F(4×4, 3×3).
#[derive(Debug, Clone)]
pub(crate) struct WinogradConvF32 {
    g: ConvGeometry,
    /// The algorithm.
    tiling: Tiling,
    /// `U = G·g·Gᵀ` as `[taps][in_c][out_c]` row-major (one GEMM right-hand side per position).
    u: Vec<f32>,
    /// Tiles per block (see the module documentation).
    block: usize,
    /// The instruction set the transforms were compiled for, chosen when packing.
    simd: Simd,
}

/// Which build of the transform loops runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Simd {
    Plain,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Simd {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Self::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Self::Avx2;
            }
        }
        Self::Plain
    }
}

/// One tile's place: image, first output row and column.
#[derive(Clone, Copy)]
struct Tile {
    b: usize,
    oy: usize,
    ox: usize,
}

impl WinogradConvF32 {
    /// Whether F(2×2, 3×3) applies to `g` (3×3, stride 1, dilation 1, a padding of at most one
    /// on the top and left, as SAME and VALID have).
    pub(crate) fn applies(g: &ConvGeometry) -> bool {
        g.k_h == 3
            && g.k_w == 3
            && g.stride_h == 1
            && g.stride_w == 1
            && g.dilation_h == 1
            && g.dilation_w == 1
            && g.pad_top <= 1
            && g.pad_left <= 1
            && g.out_h > 0
            && g.out_w > 0
            && g.in_c > 0
            && g.out_c > 0
    }

    /// Transforms the OHWI `filter` of `g` (which [`Self::applies`] to; `out_c·9·in_c` values)
    /// for `tiling`.
    pub(crate) fn pack(g: &ConvGeometry, filter: &[f32], tiling: Tiling) -> Self {
        assert!(Self::applies(g), "winograd f32 conv: geometry");
        let (ci_n, co_n) = (g.in_c, g.out_c);
        assert_eq!(filter.len(), co_n * 9 * ci_n, "winograd f32 conv: filter");
        let (p, taps) = (tiling.patch(), tiling.taps());
        let times_g = |a: f32, b: f32, c: f32| -> [f32; 6] {
            match tiling {
                Tiling::F2x2 => {
                    let [u0, u1, u2, u3] = times_g2(a, b, c);
                    [u0, u1, u2, u3, 0.0, 0.0]
                }
                Tiling::F4x4 => times_g4(a, b, c),
            }
        };
        let mut u = vec![0.0f32; taps * ci_n * co_n];
        // Output channels innermost, so that the writes run along `U`'s rows.
        for ci in 0..ci_n {
            for co in 0..co_n {
                let w = |ky: usize, kx: usize| filter[((co * 3 + ky) * 3 + kx) * ci_n + ci];
                // G·g, one column of `p` per kernel column, then (G·g)·Gᵀ row by row.
                let cols: [[f32; 6]; 3] =
                    std::array::from_fn(|kx| times_g(w(0, kx), w(1, kx), w(2, kx)));
                for i in 0..p {
                    let row = times_g(cols[0][i], cols[1][i], cols[2][i]);
                    for (j, &v) in row[..p].iter().enumerate() {
                        u[((i * p + j) * ci_n + ci) * co_n + co] = v;
                    }
                }
            }
        }
        // A block's taps·(in_c + out_c) floats per tile in ≈ 512 KiB, and at least 64 tiles
        // (GEMMs of fewer rows ran slower: `--example conv_micro`-style timing of single layers,
        // 1 MiB or 256 KiB blocks, 16 or 32 tiles at least, were 2–10 % slower on the U-Net's
        // shapes with F(2×2, 3×3)).
        let block = ((1usize << 17) / (taps * (ci_n + co_n))).clamp(64, 256);
        Self {
            g: *g,
            tiling,
            u,
            block,
            simd: Simd::detect(),
        }
    }

    /// Tiles in the output: `batches · ⌈out_h/m⌉ · ⌈out_w/m⌉`.
    fn tiles(&self) -> usize {
        let (g, m) = (&self.g, self.tiling.out());
        g.batches * g.out_h.div_ceil(m) * g.out_w.div_ceil(m)
    }

    fn tile(&self, t: usize) -> Tile {
        let m = self.tiling.out();
        let (th, tw) = (self.g.out_h.div_ceil(m), self.g.out_w.div_ceil(m));
        Tile {
            b: t / (th * tw),
            oy: (t / tw % th) * m,
            ox: (t % tw) * m,
        }
    }

    /// Rows and columns of the zero-bordered input [`Self::run`] builds: every tile's patch
    /// lies inside it.
    fn padded_dims(&self) -> (usize, usize) {
        let (g, m) = (&self.g, self.tiling.out());
        (g.out_h.div_ceil(m) * m + 2, g.out_w.div_ceil(m) * m + 2)
    }

    /// `output = act(input ⊛ filter + bias)` (NHWC), the tiles split over `threads` threads.
    pub(crate) fn run(
        &self,
        input: &[f32],
        bias: Option<&[f32]>,
        output: &mut [f32],
        act: (f32, f32),
        threads: usize,
    ) {
        PADDED.with(|cell| {
            self.run_padded(input, bias, output, act, threads, &mut cell.borrow_mut())
        });
    }

    fn run_padded(
        &self,
        input: &[f32],
        bias: Option<&[f32]>,
        output: &mut [f32],
        act: (f32, f32),
        threads: usize,
        padded: &mut Vec<f32>,
    ) {
        let g = &self.g;
        assert_eq!(input.len(), g.batches * g.in_h * g.in_w * g.in_c);
        assert_eq!(output.len(), g.batches * g.out_h * g.out_w * g.out_c);
        let zeros;
        let bias = match bias.filter(|b| b.len() >= g.out_c) {
            Some(b) => &b[..g.out_c],
            None => {
                zeros = vec![0.0f32; g.out_c];
                &zeros[..]
            }
        };
        let (hp, wp) = self.padded_dims();
        // Every value is written by the copy, so the buffer is only grown, not cleared.
        padded.resize(g.batches * hp * wp * g.in_c, 0.0);
        let padded = &mut padded[..g.batches * hp * wp * g.in_c];
        super::f32_conv::copy_bordered(input, g, (hp, wp), padded, threads);
        let padded = &padded[..];
        let tiles = self.tiles();
        let out = OutPtr(output.as_mut_ptr());
        let per = tiles.div_ceil(threads.max(1)).max(1);
        let parts = tiles.div_ceil(per);
        super::workers::run_on_threads(parts, &|p| {
            let (lo, hi) = (p * per, ((p + 1) * per).min(tiles));
            let mut t0 = lo;
            while t0 < hi {
                let t1 = (t0 + self.block).min(hi);
                self.run_block(padded, (hp, wp), t0..t1, bias, act, out);
                t0 = t1;
            }
        });
    }

    /// Tiles `ts` from `padded` (of `dims` rows and columns per image) into the output.
    fn run_block(
        &self,
        padded: &[f32],
        dims: (usize, usize),
        ts: std::ops::Range<usize>,
        bias: &[f32],
        act: (f32, f32),
        out: OutPtr,
    ) {
        let (ci_n, co_n) = (self.g.in_c, self.g.out_c);
        let n = ts.len();
        BLOCK.with(|cell| {
            let mut buf = cell.borrow_mut();
            let taps = self.tiling.taps();
            let need = n * taps * (ci_n + co_n);
            if buf.len() < need {
                buf.resize(need, 0.0);
            }
            let (v, m) = buf[..need].split_at_mut(n * taps * ci_n);
            let work = Block {
                padded,
                dims,
                ts,
                bias,
                act,
                out,
            };
            // SAFETY (all three): `out` points to the output `run` checked, and the block's
            // tiles are this thread's alone (see `Block::run`).
            match self.simd {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: chosen by `detect` only where the CPU has AVX-512F.
                Simd::Avx512 => unsafe { self.block_avx512(&work, v, m) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: chosen by `detect` only where the CPU has AVX2 and FMA.
                Simd::Avx2 => unsafe { self.block_avx2(&work, v, m) },
                Simd::Plain => unsafe { self.block(&work, v, m) },
            }
        });
    }

    /// [`Self::block`] compiled for AVX-512F.
    ///
    /// # Safety
    /// As for [`Self::block`], and the CPU must have AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn block_avx512(&self, work: &Block, v: &mut [f32], m: &mut [f32]) {
        // SAFETY: the caller's contract.
        unsafe { self.block(work, v, m) }
    }

    /// [`Self::block`] compiled for AVX2 and FMA.
    ///
    /// # Safety
    /// As for [`Self::block`], and the CPU must have AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block_avx2(&self, work: &Block, v: &mut [f32], m: &mut [f32]) {
        // SAFETY: the caller's contract.
        unsafe { self.block(work, v, m) }
    }

    /// The tiles of `work`: input transforms into `v` (`[tile][taps][in_c]`), the GEMMs into
    /// `m` (`[tile][taps][out_c]`), output transforms into the output. Inlined into the wrappers
    /// above, so that the transforms' loops are compiled for their vectors.
    ///
    /// # Safety
    /// `work.out` must point to the NHWC output of this convolution, and no other thread may
    /// access the outputs of `work.ts` meanwhile.
    #[inline(always)]
    unsafe fn block(&self, work: &Block, v: &mut [f32], m: &mut [f32]) {
        let g = &self.g;
        let (ci_n, co_n) = (g.in_c, g.out_c);
        let (hp, wp) = work.dims;
        let n = work.ts.len();
        let (e, p, taps) = (self.tiling.out(), self.tiling.patch(), self.tiling.taps());
        for (i, t) in work.ts.clone().enumerate() {
            let tile = self.tile(t);
            let at = ((tile.b * hp + tile.oy) * wp + tile.ox) * ci_n;
            let row = |r: usize| -> &[f32] {
                if r < p {
                    &work.padded[at + r * wp * ci_n..][..p * ci_n]
                } else {
                    &[]
                }
            };
            let dst = &mut v[i * taps * ci_n..][..taps * ci_n];
            let rows = [row(0), row(1), row(2), row(3), row(4), row(5)];
            input_transform(self.tiling, &rows, ci_n, dst);
        }
        // M_k = V_k · U_k for each position k: [n × in_c] (row stride taps·in_c) times
        // [in_c × out_c] into [n × out_c] (row stride taps·out_c).
        for k in 0..taps {
            super::f32_conv::matmul(
                n,
                co_n,
                ci_n,
                &mut m[k * co_n..],
                taps * co_n,
                false,
                &v[k * ci_n..],
                taps * ci_n,
                &self.u[k * ci_n * co_n..(k + 1) * ci_n * co_n],
                1,
            );
        }
        for (i, t) in work.ts.clone().enumerate() {
            let tile = self.tile(t);
            let src = &m[i * taps * co_n..][..taps * co_n];
            let mut planes: [&[f32]; MAX_TAPS] = [&[]; MAX_TAPS];
            for (k, plane) in planes[..taps].iter_mut().enumerate() {
                *plane = &src[k * co_n..][..co_n];
            }
            let pixel = |q: usize| {
                let (y, x) = (tile.oy + q / e, tile.ox + q % e);
                (y < g.out_h && x < g.out_w).then(|| {
                    // SAFETY: (b, y, x) is inside the output (checked), whose `out_c` floats
                    // only this tile writes (the caller's contract: tiles are disjoint, and
                    // the block's are this thread's).
                    unsafe {
                        std::slice::from_raw_parts_mut(
                            work.out
                                .0
                                .add(((tile.b * g.out_h + y) * g.out_w + x) * co_n),
                            co_n,
                        )
                    }
                })
            };
            let mut dsts: [Option<&mut [f32]>; MAX_OUTS] = [const { None }; MAX_OUTS];
            for (q, dst) in dsts[..e * e].iter_mut().enumerate() {
                *dst = pixel(q);
            }
            output_transform(self.tiling, &planes, work.bias, work.act, &mut dsts);
        }
    }
}

/// One block of tiles for [`WinogradConvF32::block`]: where they read and write.
struct Block<'a> {
    /// The zero-bordered input, `dims` rows and columns per image.
    padded: &'a [f32],
    dims: (usize, usize),
    /// The tiles.
    ts: std::ops::Range<usize>,
    /// `out_c` values added to the outputs.
    bias: &'a [f32],
    /// The clamp.
    act: (f32, f32),
    /// The output.
    out: OutPtr,
}

/// `G·(a, b, c)ᵀ` of F(2×2, 3×3): one column (or, transposed, one row) of the kernel
/// transform.
fn times_g2(a: f32, b: f32, c: f32) -> [f32; 4] {
    [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c]
}

/// `G·(a, b, c)ᵀ` of F(4×4, 3×3).
fn times_g4(a: f32, b: f32, c: f32) -> [f32; 6] {
    let (even, odd) = (a + c, b);
    [
        0.25 * a,
        -(even + odd) / 6.0,
        -(even - odd) / 6.0,
        a / 24.0 + b / 12.0 + c / 6.0,
        a / 24.0 - b / 12.0 + c / 6.0,
        c,
    ]
}

/// The output, written by several threads at disjoint tiles.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: threads write disjoint elements through it (see `run_block`), and `run` waits for
// them all before its borrow of the output ends.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

/// Channels per step of the transforms: one AVX-512 vector, two AVX2 ones. Each step works on
/// fixed-size arrays, which the compiler keeps in vector registers (a loop over all channels
/// with 16 input and 16 output slices did not vectorise: too many possible overlaps to check).
const LANES: usize = 16;

/// `s` (at most [`LANES`] values) as a full array, zeros past its end.
#[inline(always)]
fn lanes(s: &[f32]) -> [f32; LANES] {
    let mut a = [0.0f32; LANES];
    a[..s.len()].copy_from_slice(s);
    a
}

/// `V = Bᵀ·d·B` along the channels: `rows[i]` is patch row `i` (`tiling`'s patch of pixels of
/// `c` channels; rows past the patch unused), `dst` is `[taps][c]`.
#[inline(always)]
fn input_transform(tiling: Tiling, rows: &[&[f32]; 6], c: usize, dst: &mut [f32]) {
    let dst = &mut dst[..tiling.taps() * c];
    let full = c - c % LANES;
    // Whole vectors with a constant `n`, which the compiler turns into vector loads and stores.
    for x in (0..full).step_by(LANES) {
        input_step(tiling, rows, c, x, LANES, dst);
    }
    if full < c {
        input_step(tiling, rows, c, full, c - full, dst);
    }
}

/// [`input_transform`] for channels `x..x + n` (`n ≤ LANES`).
#[inline(always)]
fn input_step(tiling: Tiling, rows: &[&[f32]; 6], c: usize, x: usize, n: usize, dst: &mut [f32]) {
    match tiling {
        Tiling::F2x2 => input_step2(rows, c, x, n, dst),
        Tiling::F4x4 => input_step4(rows, c, x, n, dst),
    }
}

/// F(2×2, 3×3)'s [`input_step`]. (The loops index like the matrix formulas they write out.)
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn input_step2(rows: &[&[f32]; 6], c: usize, x: usize, n: usize, dst: &mut [f32]) {
    // t = Bᵀ·d, one patch column at a time.
    let mut t = [[[0.0f32; LANES]; 4]; 4];
    for j in 0..4 {
        let at = j * c + x;
        let (d0, d1, d2, d3) = (
            lanes(&rows[0][at..][..n]),
            lanes(&rows[1][at..][..n]),
            lanes(&rows[2][at..][..n]),
            lanes(&rows[3][at..][..n]),
        );
        for l in 0..LANES {
            t[0][j][l] = d0[l] - d2[l];
            t[1][j][l] = d1[l] + d2[l];
            t[2][j][l] = d2[l] - d1[l];
            t[3][j][l] = d1[l] - d3[l];
        }
    }
    // V = t·B, one row at a time.
    for (i, r) in t.iter().enumerate() {
        let mut v = [[0.0f32; LANES]; 4];
        for l in 0..LANES {
            v[0][l] = r[0][l] - r[2][l];
            v[1][l] = r[1][l] + r[2][l];
            v[2][l] = r[2][l] - r[1][l];
            v[3][l] = r[1][l] - r[3][l];
        }
        for (j, vj) in v.iter().enumerate() {
            dst[(i * 4 + j) * c + x..][..n].copy_from_slice(&vj[..n]);
        }
    }
}

/// `Bᵀ·d` of F(4×4, 3×3) for one vector of lanes: `d` is one patch column (or row).
#[inline(always)]
fn times_bt4(d: &[[f32; LANES]; 6]) -> [[f32; LANES]; 6] {
    let mut t = [[0.0f32; LANES]; 6];
    for l in 0..LANES {
        let (d0, d1, d2, d3, d4, d5) = (d[0][l], d[1][l], d[2][l], d[3][l], d[4][l], d[5][l]);
        t[0][l] = 4.0 * d0 - 5.0 * d2 + d4;
        t[1][l] = d3 + d4 - 4.0 * (d1 + d2);
        t[2][l] = d4 - d3 + 4.0 * (d1 - d2);
        t[3][l] = d4 - d2 + 2.0 * (d3 - d1);
        t[4][l] = d4 - d2 + 2.0 * (d1 - d3);
        t[5][l] = 4.0 * d1 - 5.0 * d3 + d5;
    }
    t
}

/// F(4×4, 3×3)'s [`input_step`].
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn input_step4(rows: &[&[f32]; 6], c: usize, x: usize, n: usize, dst: &mut [f32]) {
    // t = Bᵀ·d, one patch column at a time: t[j] holds column j of Bᵀ·d.
    let mut t = [[[0.0f32; LANES]; 6]; 6];
    for j in 0..6 {
        let at = j * c + x;
        let mut d = [[0.0f32; LANES]; 6];
        for r in 0..6 {
            d[r] = lanes(&rows[r][at..][..n]);
        }
        t[j] = times_bt4(&d);
    }
    // V = t·B: row i of V is Bᵀ applied to row i of t.
    for i in 0..6 {
        let mut r = [[0.0f32; LANES]; 6];
        for j in 0..6 {
            r[j] = t[j][i];
        }
        let v = times_bt4(&r);
        for (j, vj) in v.iter().enumerate() {
            dst[(i * 6 + j) * c + x..][..n].copy_from_slice(&vj[..n]);
        }
    }
}

/// `Y = Aᵀ·M·A` along the channels, then bias and clamp, into the tile's pixels that exist
/// (`y`: row-major, `tiling`'s outputs per tile; `None` past the output's bottom or right edge).
#[inline(always)]
fn output_transform(
    tiling: Tiling,
    m: &[&[f32]; MAX_TAPS],
    bias: &[f32],
    act: (f32, f32),
    y: &mut [Option<&mut [f32]>; MAX_OUTS],
) {
    let c = bias.len();
    let full = c - c % LANES;
    for x in (0..full).step_by(LANES) {
        output_step(tiling, m, bias, act, y, x, LANES);
    }
    if full < c {
        output_step(tiling, m, bias, act, y, full, c - full);
    }
}

/// [`output_transform`] for channels `x..x + n` (`n ≤ LANES`).
#[inline(always)]
fn output_step(
    tiling: Tiling,
    m: &[&[f32]; MAX_TAPS],
    bias: &[f32],
    act: (f32, f32),
    y: &mut [Option<&mut [f32]>; MAX_OUTS],
    x: usize,
    n: usize,
) {
    match tiling {
        Tiling::F2x2 => output_step2(m, bias, act, y, x, n),
        Tiling::F4x4 => output_step4(m, bias, act, y, x, n),
    }
}

/// F(2×2, 3×3)'s [`output_step`].
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn output_step2(
    m: &[&[f32]; MAX_TAPS],
    bias: &[f32],
    act: (f32, f32),
    y: &mut [Option<&mut [f32]>; MAX_OUTS],
    x: usize,
    n: usize,
) {
    // s = Aᵀ·M (2 rows of 4), one column at a time, then Y = s·A.
    let mut s = [[[0.0f32; LANES]; 4]; 2];
    for j in 0..4 {
        let (m0, m1, m2, m3) = (
            lanes(&m[j][x..][..n]),
            lanes(&m[4 + j][x..][..n]),
            lanes(&m[8 + j][x..][..n]),
            lanes(&m[12 + j][x..][..n]),
        );
        for l in 0..LANES {
            s[0][j][l] = m0[l] + m1[l] + m2[l];
            s[1][j][l] = m1[l] - m2[l] - m3[l];
        }
    }
    let b = lanes(&bias[x..][..n]);
    let mut out = [[0.0f32; LANES]; 4];
    for (r, row) in s.iter().enumerate() {
        for l in 0..LANES {
            out[2 * r][l] = clamp_f32(row[0][l] + row[1][l] + row[2][l] + b[l], act.0, act.1);
            out[2 * r + 1][l] = clamp_f32(row[1][l] - row[2][l] - row[3][l] + b[l], act.0, act.1);
        }
    }
    store_pixels(&out, &mut y[..4], x, n);
}

/// `Aᵀ·m` of F(4×4, 3×3) for one vector of lanes: `m` is one column (or row) of 6.
#[inline(always)]
fn times_at4(m: &[[f32; LANES]; 6]) -> [[f32; LANES]; 4] {
    let mut s = [[0.0f32; LANES]; 4];
    for l in 0..LANES {
        let (m0, m1, m2, m3, m4, m5) = (m[0][l], m[1][l], m[2][l], m[3][l], m[4][l], m[5][l]);
        let (sum12, diff12, sum34, diff34) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4);
        s[0][l] = m0 + sum12 + sum34;
        s[1][l] = diff12 + 2.0 * diff34;
        s[2][l] = sum12 + 4.0 * sum34;
        s[3][l] = diff12 + 8.0 * diff34 + m5;
    }
    s
}

/// F(4×4, 3×3)'s [`output_step`].
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn output_step4(
    m: &[&[f32]; MAX_TAPS],
    bias: &[f32],
    act: (f32, f32),
    y: &mut [Option<&mut [f32]>; MAX_OUTS],
    x: usize,
    n: usize,
) {
    // s = Aᵀ·M (4 rows of 6), one column at a time: s[j] holds column j.
    let mut s = [[[0.0f32; LANES]; 4]; 6];
    for j in 0..6 {
        let mut col = [[0.0f32; LANES]; 6];
        for i in 0..6 {
            col[i] = lanes(&m[i * 6 + j][x..][..n]);
        }
        s[j] = times_at4(&col);
    }
    let b = lanes(&bias[x..][..n]);
    let mut out = [[0.0f32; LANES]; 16];
    // Y = s·A: row r of Y is Aᵀ applied to row r of s.
    for r in 0..4 {
        let mut row = [[0.0f32; LANES]; 6];
        for j in 0..6 {
            row[j] = s[j][r];
        }
        let yr = times_at4(&row);
        for (q, v) in yr.iter().enumerate() {
            for l in 0..LANES {
                out[r * 4 + q][l] = clamp_f32(v[l] + b[l], act.0, act.1);
            }
        }
    }
    store_pixels(&out, &mut y[..16], x, n);
}

/// Channels `x..x + n` of each output pixel that exists.
#[inline(always)]
fn store_pixels(out: &[[f32; LANES]], y: &mut [Option<&mut [f32]>], x: usize, n: usize) {
    for (dst, o) in y.iter_mut().zip(out) {
        if let Some(dst) = dst {
            dst[x..][..n].copy_from_slice(&o[..n]);
        }
    }
}
