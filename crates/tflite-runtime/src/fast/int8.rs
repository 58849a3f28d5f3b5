//! The shared part of the fast int8 kernels: weight packing, the per-invoke operand buffer,
//! the pixel/column driver, threading and the exact requantisation parameters.

use super::{DetectedPath, Int8Path};
use crate::frame::{ConvGeometry, ConvQuantParams};
use crate::quant::multiply_by_quantized_multiplier;
use crate::reference;

/// How the path stores its left operand (the activations) and its packed weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operand {
    /// `x` as i8; padding `zp`; correction `zp·Σw` (NEON, portable).
    RawI8,
    /// `x + 128` as u8; padding `zp + 128`; correction `(zp + 128)·Σw` (VNNI `vpdpbusd`).
    ShiftedU8,
    /// `x − zp` as i16; padding 0; no correction (AVX2 `vpmaddwd`).
    CenteredI16,
}

impl Operand {
    fn bytes(self) -> usize {
        match self {
            Operand::CenteredI16 => 2,
            _ => 1,
        }
    }
}

/// Geometry of the operand (A) buffer and the mapping of GEMM rows to pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowMap {
    /// CONV_2D: rows are output pixels; A is the zero-point-padded input
    /// `[batches][hp][wp][cp]`.
    Conv {
        batches: usize,
        out_h: usize,
        out_w: usize,
        out_c: usize,
        hp: usize,
        wp: usize,
        stride_h: usize,
        stride_w: usize,
    },
    /// CONV_2D with few input channels: rows are output pixels, A holds each pixel's whole
    /// receptive field (`k_h·k_w·in_c` values, padded to a multiple of 4), i.e. im2col.
    Im2col { out_c: usize },
    /// TRANSPOSE_CONV with `kernel == stride`: rows are input pixels, A is the input
    /// `[pixels][cp]`, each row writes a disjoint `k_h × k_w` output block.
    Transposed {
        in_h: usize,
        in_w: usize,
        out_h: usize,
        out_w: usize,
        out_c: usize,
        stride_h: usize,
        stride_w: usize,
    },
}

/// A packed int8 convolution (or transposed convolution) for one path: everything the
/// microkernels need, prepared once.
#[derive(Debug, Clone)]
pub struct Int8Gemm {
    pub(crate) path: Int8Path,
    pub(crate) operand: Operand,
    /// Columns per block (the path's i32 vector width).
    pub(crate) lanes: usize,
    /// Number of column blocks.
    pub(crate) n_blocks: usize,
    /// Byte offsets (in the A buffer) of each tap relative to the row's first tap.
    pub(crate) taps: Vec<usize>,
    /// 4-byte reduction steps per tap (`cp · operand bytes / 4`).
    pub(crate) steps: usize,
    /// Bytes of one column block of packed weights (`taps · steps · lanes · 4`).
    pub(crate) blk_bytes: usize,
    /// Packed weights: `[block][tap][step][lane][4 bytes]`.
    pub(crate) w: Vec<u8>,
    /// Output byte offset of each column block relative to the row's output base.
    pub(crate) col_dest: Vec<usize>,
    /// Valid columns of each block (the rest is padding and is not stored).
    pub(crate) col_valid: Vec<usize>,
    /// Per padded column: bias with the zero-point correction folded in.
    pub(crate) bias: Vec<i32>,
    /// Per padded column: Q31 multiplier.
    pub(crate) mult: Vec<i32>,
    /// Per padded column: the reference shift (positive = left).
    pub(crate) shift: Vec<i32>,
    /// Per padded column: `max(shift, 0)`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) lshift: Vec<i32>,
    /// Per padded column: `max(−shift, 0)`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) rshift: Vec<i32>,
    /// True when every column's parameters are in the range the SIMD requantisation
    /// reproduces exactly (left shift ≤ 31, right shift ≤ 31, multiplier ≠ i32::MIN);
    /// otherwise the scalar reference arithmetic is used.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) vector_requant: bool,
    /// True when, for every column, `|Σ (x − zp)·w + bias| · 2^lshift < 2^30` for any input, so
    /// the rescaled value plus the output zero point cannot wrap in i32 and saturating packs
    /// to i16 and i8 followed by the activation clamp give the reference's clamp exactly (the
    /// AVX2 epilogue then packs four rows at once).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) narrow_output: bool,
    /// True when no packed weight byte is −128, so two products of an i8 weight and an i8
    /// operand byte sum without i16 overflow (2 · 127 · 128 = 32512): the plain-NEON kernel
    /// then pairs two K steps per `smull`/`smlal`.
    #[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
    pub(crate) weights_above_min: bool,
    pub(crate) out_zp: i32,
    pub(crate) act_min: i32,
    pub(crate) act_max: i32,
    input_zp: i32,
    geom: ConvGeometry,
    in_c: usize,
    cp: usize,
    /// Pixels per operand pixel of a direct convolution: 1, or k_w for the horizontal
    /// im2col window of few-channel inputs (operand pixel x holds padded pixels x..x + k_w).
    window: usize,
    map: RowMap,
    rows: usize,
    a_bytes: usize,
    in_len: usize,
    out_len: usize,
}

/// Pixels per driver chunk: a multiple of every microkernel's row count.
const CHUNK: usize = 48;

impl Int8Gemm {
    fn layout(path: Int8Path) -> (Operand, usize) {
        match path {
            Int8Path::Portable => (Operand::RawI8, 8),
            Int8Path::Avx2 => (Operand::CenteredI16, 8),
            Int8Path::Avx512Vnni => (Operand::ShiftedU8, 16),
            Int8Path::AvxVnni => (Operand::ShiftedU8, 8),
            Int8Path::Neon | Int8Path::NeonDotprod => (Operand::RawI8, 4),
        }
    }

    /// Packs a CONV_2D. `None` when the fast kernels do not cover the case (input zero point
    /// outside int8, wrong slice sizes); the caller then uses the reference kernel.
    ///
    /// Soundness: [`Int8Gemm::run`] calls the `#[target_feature]` kernels of the path, so the
    /// path comes as a [`DetectedPath`], which only CPU detection makes.
    pub fn conv(
        path: DetectedPath,
        g: &ConvGeometry,
        q: &ConvQuantParams,
        filter: &[i8],
        bias: Option<&[i32]>,
    ) -> Option<Self> {
        Self::pack_conv(path.path(), g, q, filter, bias)
    }

    /// [`Int8Gemm::conv`] for any path, available or not: only for the scalar emulation of
    /// every layout in this crate's tests, which never calls [`Int8Gemm::run`].
    pub(crate) fn pack_conv(
        path: Int8Path,
        g: &ConvGeometry,
        q: &ConvQuantParams,
        filter: &[i8],
        bias: Option<&[i32]>,
    ) -> Option<Self> {
        if filter.len() != g.out_c * g.k_h * g.k_w * g.in_c {
            return None;
        }
        let need_h = (g.out_h.max(1) - 1) * g.stride_h + (g.k_h - 1) * g.dilation_h + 1;
        let need_w = (g.out_w.max(1) - 1) * g.stride_w + (g.k_w - 1) * g.dilation_w + 1;
        let hp = (g.pad_top + g.in_h).max(need_h);
        let wp = (g.pad_left + g.in_w).max(need_w);
        let (operand, _) = Self::layout(path);
        let khw = g.k_h * g.k_w;
        let columns: Vec<(usize, usize)> = (0..g.out_c).map(|oc| (oc, oc)).collect();
        let rows = g.batches * g.out_h * g.out_w;
        // Rows of a direct convolution (the window and the per-tap forms below).
        let map = RowMap::Conv {
            batches: g.batches,
            out_h: g.out_h,
            out_w: g.out_w,
            out_c: g.out_c,
            hp,
            wp,
            stride_h: g.stride_h,
            stride_w: g.stride_w,
        };
        if g.in_c < 4 && g.k_w > 1 && g.dilation_w == 1 {
            // Few input channels: operand pixel x holds the k_w·in_c values of padded pixels
            // x..x + k_w (a horizontal im2col window), so a kernel row is one tap of
            // ceil(k_w·in_c / 4) steps instead of k_w padded ones, and the fill writes
            // k_w·in_c values per padded pixel instead of k_h·k_w·in_c per output pixel.
            let win = g.k_w * g.in_c;
            let cp = win.div_ceil(4) * 4;
            let pixel = cp * operand.bytes();
            let taps = (0..g.k_h)
                .map(|ky| ky * g.dilation_h * wp * pixel)
                .collect();
            // Value c of tap ky is channel c % in_c of kernel tap (ky, c / in_c).
            let weight = |n: usize, t: usize, c: usize| filter[(n * khw + t * g.k_w) * g.in_c + c];
            let mut gemm = Self::build(
                path,
                g,
                q,
                bias,
                map,
                taps,
                (cp, cp),
                win,
                &columns,
                g.out_c,
                |n| n,
                weight,
                g.batches * hp * wp * pixel,
                rows,
            )?;
            gemm.window = g.k_w;
            return Some(gemm);
        }
        if g.in_c < 4 && khw > 1 {
            // im2col: one reduction of k_h·k_w·in_c per pixel instead of k_h·k_w padded ones.
            let kc = khw * g.in_c;
            let cp = kc.div_ceil(4) * 4;
            let weight = |n: usize, _t: usize, k: usize| filter[n * kc + k];
            return Self::build(
                path,
                g,
                q,
                bias,
                RowMap::Im2col { out_c: g.out_c },
                vec![0],
                (cp, cp),
                kc,
                &columns,
                g.out_c,
                |n| n,
                weight,
                rows * cp * operand.bytes(),
                rows,
            );
        }
        let cp = g.in_c.div_ceil(4) * 4;
        let pixel = cp * operand.bytes();
        // With dilation_w = 1 the k_w taps of a kernel row read adjacent pixels, so they are
        // one reduction of k_w·cp channels over a contiguous run (fewer, longer taps: the
        // microkernels set up their row pointers once per tap). The packed weights have the
        // same byte order either way ([tap][step] with tap = ky·k_w + kx).
        let row_taps = if g.dilation_w == 1 { g.k_w } else { 1 };
        let mut taps = Vec::with_capacity(g.k_h * g.k_w);
        for ky in 0..g.k_h {
            for kx in (0..g.k_w).step_by(row_taps) {
                taps.push((ky * g.dilation_h * wp + kx * g.dilation_w) * pixel);
            }
        }
        let tap_cp = row_taps * cp;
        // Channel `c` of merged tap `t` is channel `c % cp` of kernel tap `t·row_taps + c / cp`;
        // the block padding channels (`c % cp ≥ in_c`) have zero weights.
        let weight = |n: usize, t: usize, c: usize| {
            let (kt, ch) = (t * row_taps + c / cp, c % cp);
            if ch < g.in_c {
                filter[(n * khw + kt) * g.in_c + ch]
            } else {
                0
            }
        };
        Self::build(
            path,
            g,
            q,
            bias,
            map,
            taps,
            (cp, tap_cp),
            tap_cp,
            &columns,
            g.out_c,
            |n| n,
            weight,
            g.batches * hp * wp * pixel,
            rows,
        )
    }

    /// Packs a TRANSPOSE_CONV whose kernel equals its stride with no padding (each input
    /// pixel writes its own output block, as in the U-Net decoder's 2×2 stride 2). `None`
    /// for every other case; the caller then uses the reference kernel. The path is a
    /// [`DetectedPath`], as for [`Int8Gemm::conv`].
    pub fn transposed(
        path: DetectedPath,
        g: &ConvGeometry,
        q: &ConvQuantParams,
        filter: &[i8],
        bias: Option<&[i32]>,
    ) -> Option<Self> {
        Self::pack_transposed(path.path(), g, q, filter, bias)
    }

    /// [`Int8Gemm::transposed`] for any path (see [`Int8Gemm::pack_conv`]).
    pub(crate) fn pack_transposed(
        path: Int8Path,
        g: &ConvGeometry,
        q: &ConvQuantParams,
        filter: &[i8],
        bias: Option<&[i32]>,
    ) -> Option<Self> {
        if !g.is_tiling_transpose() || filter.len() != g.out_c * g.k_h * g.k_w * g.in_c {
            return None;
        }
        let (operand, lanes) = Self::layout(path);
        let cp = g.in_c.div_ceil(4) * 4;
        let ocp = g.out_c.div_ceil(lanes) * lanes;
        let khw = g.k_h * g.k_w;
        // Column n = tap · ocp + oc (the padded channels of each tap are never stored).
        let columns: Vec<(usize, usize)> = (0..khw * ocp)
            .map(|n| (n / ocp, n % ocp))
            .filter(|&(_, oc)| oc < g.out_c)
            .map(|(t, oc)| (t * ocp + oc, oc))
            .collect();
        let map = RowMap::Transposed {
            in_h: g.in_h,
            in_w: g.in_w,
            out_h: g.out_h,
            out_w: g.out_w,
            out_c: g.out_c,
            stride_h: g.stride_h,
            stride_w: g.stride_w,
        };
        let out_w = g.out_w;
        let out_c = g.out_c;
        let kw = g.k_w;
        let dest = move |n: usize| {
            let (t, oc) = (n / ocp, n % ocp);
            ((t / kw) * out_w + t % kw) * out_c + oc
        };
        let weight = |n: usize, _t: usize, c: usize| {
            let (t, oc) = (n / ocp, n % ocp);
            filter[(oc * khw + t) * g.in_c + c]
        };
        Self::build(
            path,
            g,
            q,
            bias,
            map,
            vec![0],
            (cp, cp),
            g.in_c,
            &columns,
            khw * ocp,
            dest,
            weight,
            g.batches * g.in_h * g.in_w * cp * operand.bytes(),
            g.batches * g.in_h * g.in_w,
        )
    }

    /// Common packing. `cp` is the operand's padded channels per pixel, `tap_cp` the padded
    /// reduction length of one tap (a multiple of `cp` when taps are merged), `kc` the
    /// channels per tap the weight function is asked for, `columns` lists `(column, output
    /// channel)` of every real column,
    /// `n_cols` the column count before block padding, `dest(n)` the output offset of a
    /// block's first column, `weight(n, tap, c)` the filter.
    #[allow(clippy::too_many_arguments)]
    fn build(
        path: Int8Path,
        g: &ConvGeometry,
        q: &ConvQuantParams,
        bias: Option<&[i32]>,
        map: RowMap,
        taps: Vec<usize>,
        (cp, tap_cp): (usize, usize),
        kc: usize,
        columns: &[(usize, usize)],
        n_cols: usize,
        dest: impl Fn(usize) -> usize,
        weight: impl Fn(usize, usize, usize) -> i8,
        a_bytes: usize,
        rows: usize,
    ) -> Option<Self> {
        if !(-128..=127).contains(&q.input_zero_point)
            || q.multipliers.len() != g.out_c
            || q.shifts.len() != g.out_c
            || bias.is_some_and(|b| b.len() != g.out_c)
        {
            return None;
        }
        let (operand, lanes) = Self::layout(path);
        let n_blocks = n_cols.div_ceil(lanes);
        let padded = n_blocks * lanes;
        let group = 4 / operand.bytes(); // channels per 4-byte step
        let steps = tap_cp / group;
        let blk_bytes = taps.len() * steps * lanes * 4;
        let mut w = vec![0u8; n_blocks * blk_bytes];
        let mut real = vec![None; padded];
        for &(n, oc) in columns {
            real[n] = Some(oc);
        }
        let zp = q.input_zero_point;
        let corr = match operand {
            Operand::RawI8 => zp,
            Operand::ShiftedU8 => zp + 128,
            Operand::CenteredI16 => 0,
        };
        let (mut bias_v, mut mult, mut shift) =
            (vec![0i32; padded], vec![0i32; padded], vec![0i32; padded]);
        for (n, oc) in real.iter().enumerate() {
            let Some(oc) = *oc else { continue };
            let (j, lane) = (n / lanes, n % lanes);
            let mut sum_w = 0i32;
            for t in 0..taps.len() {
                for c in 0..kc {
                    let wv = weight(n, t, c);
                    sum_w = sum_w.wrapping_add(wv as i32);
                    let (s, e) = (c / group, c % group);
                    let at = j * blk_bytes + ((t * steps + s) * lanes + lane) * 4;
                    match operand {
                        Operand::CenteredI16 => {
                            w[at + 2 * e..at + 2 * e + 2]
                                .copy_from_slice(&(wv as i16).to_le_bytes());
                        }
                        _ => w[at + e] = wv as u8,
                    }
                }
            }
            let b = bias.map_or(0, |b| b[oc]);
            bias_v[n] = b.wrapping_sub(corr.wrapping_mul(sum_w));
            mult[n] = q.multipliers[oc];
            shift[n] = q.shifts[oc];
        }
        let lshift: Vec<i32> = shift.iter().map(|&s| s.max(0)).collect();
        let rshift: Vec<i32> = shift.iter().map(|&s| (-s).max(0)).collect();
        let vector_requant = lshift.iter().all(|&s| s <= 31)
            && rshift.iter().all(|&s| s <= 31)
            && mult.iter().all(|&m| m != i32::MIN);
        // The largest |Σ (x − zp)·w|: every term is at most 255 · 128.
        let terms = (taps.len() * kc) as i64 * 255 * 128;
        let narrow_output = vector_requant
            && real.iter().enumerate().all(|(n, oc)| {
                oc.is_none_or(|oc| {
                    let b = i64::from(bias.map_or(0, |b| b[oc]));
                    terms + b.abs() < (1i64 << 30) >> lshift[n]
                })
            });
        let mut col_dest = Vec::with_capacity(n_blocks);
        let mut col_valid = Vec::with_capacity(n_blocks);
        for j in 0..n_blocks {
            col_dest.push(dest(j * lanes));
            col_valid.push(
                (0..lanes)
                    .take_while(|l| real[j * lanes + l].is_some())
                    .count(),
            );
        }
        let weights_above_min = w.iter().all(|&b| b != 0x80);
        let gemm = Self {
            path,
            operand,
            lanes,
            n_blocks,
            taps,
            steps,
            blk_bytes,
            w,
            col_dest,
            col_valid,
            bias: bias_v,
            mult,
            shift,
            lshift,
            rshift,
            vector_requant,
            narrow_output,
            weights_above_min,
            out_zp: q.output_zero_point,
            act_min: q.act_min,
            act_max: q.act_max,
            input_zp: zp,
            geom: *g,
            in_c: g.in_c,
            cp,
            window: 1,
            map,
            rows,
            a_bytes,
            in_len: g.batches * g.in_h * g.in_w * g.in_c,
            out_len: g.batches * g.out_h * g.out_w * g.out_c,
        };
        gemm.check_bounds().then_some(gemm)
    }

    /// Verifies once that every access of the microkernels stays inside the buffers (the
    /// kernels themselves use unchecked pointer arithmetic).
    fn check_bounds(&self) -> bool {
        if self.rows == 0 {
            return true;
        }
        let last_row = self.row(self.rows - 1);
        let a_end = last_row.0 + self.taps.iter().max().copied().unwrap_or(0) + self.steps * 4;
        let max_dest = (0..self.n_blocks)
            .map(|j| self.col_dest[j] + self.col_valid[j])
            .max()
            .unwrap_or(0);
        let out_end = (0..self.rows).map(|r| self.row(r).1).max().unwrap_or(0) + max_dest;
        a_end <= self.a_bytes
            && out_end <= self.out_len
            && self.w.len() >= self.n_blocks * self.blk_bytes
    }

    /// Bytes of operand buffer one invoke needs.
    pub fn workspace_bytes(&self) -> usize {
        self.a_bytes
    }

    /// The path this op was packed for.
    pub fn path(&self) -> Int8Path {
        self.path
    }

    /// `(A byte offset, output byte offset)` of GEMM row `r`.
    #[inline]
    pub(crate) fn row(&self, r: usize) -> (usize, usize) {
        let pixel = self.cp * self.operand.bytes();
        match self.map {
            RowMap::Conv {
                out_h,
                out_w,
                out_c,
                hp,
                wp,
                stride_h,
                stride_w,
                ..
            } => {
                let ox = r % out_w;
                let rest = r / out_w;
                let oy = rest % out_h;
                let b = rest / out_h;
                (
                    ((b * hp + oy * stride_h) * wp + ox * stride_w) * pixel,
                    r * out_c,
                )
            }
            RowMap::Im2col { out_c } => (r * pixel, r * out_c),
            RowMap::Transposed {
                in_h,
                in_w,
                out_h,
                out_w,
                out_c,
                stride_h,
                stride_w,
            } => {
                let ix = r % in_w;
                let rest = r / in_w;
                let iy = rest % in_h;
                let b = rest / in_h;
                (
                    r * pixel,
                    ((b * out_h + iy * stride_h) * out_w + ix * stride_w) * out_c,
                )
            }
        }
    }

    /// Fills the operand buffer from the int8 input.
    fn fill_operand(&self, input: &[i8], a: &mut [u8]) {
        let (units, unit_bytes) = self.fill_units();
        self.fill_operand_part(input, &mut a[..units * unit_bytes], 0..units);
    }

    /// How the operand buffer splits into independent parts: (number of units, bytes per unit).
    /// A unit is one padded input row (direct convolution), one output row (im2col) or one
    /// input pixel (transposed convolution); `units · bytes` is `a_bytes`.
    fn fill_units(&self) -> (usize, usize) {
        let g = &self.geom;
        let elems = match self.map {
            RowMap::Conv {
                batches, hp, wp, ..
            } => (batches * hp, wp * self.cp),
            RowMap::Im2col { .. } => (g.batches * g.out_h, g.out_w * self.cp),
            RowMap::Transposed { .. } => (self.rows, self.cp),
        };
        (elems.0, elems.1 * self.operand.bytes())
    }

    /// Fills units `part` of the operand buffer; `a` is exactly those units' bytes.
    fn fill_operand_part(&self, input: &[i8], a: &mut [u8], part: std::ops::Range<usize>) {
        let zp = self.input_zp;
        match self.operand {
            Operand::CenteredI16 => {
                let a: &mut [[u8; 2]] = bytemuck::cast_slice_mut(a);
                self.fill_with(
                    input,
                    a,
                    part,
                    |x| (x as i16 - zp as i16).to_le_bytes(),
                    [0, 0],
                );
            }
            Operand::RawI8 => self.fill_with(input, a, part, |x| x as u8, zp as i8 as u8),
            Operand::ShiftedU8 => {
                self.fill_with(input, a, part, |x| x as u8 ^ 0x80, (zp as i8 as u8) ^ 0x80)
            }
        }
    }

    /// Fills units `part` (see [`Self::fill_units`]) into `a`, which holds exactly those units.
    fn fill_with<E: Copy>(
        &self,
        input: &[i8],
        a: &mut [E],
        part: std::ops::Range<usize>,
        f: impl Fn(i8) -> E,
        pad: E,
    ) {
        let g = &self.geom;
        let (cp, in_c) = (self.cp, self.in_c);
        let convert = |src: &[i8], dst: &mut [E]| {
            for (d, &x) in dst.iter_mut().zip(src) {
                *d = f(x);
            }
        };
        a.fill(pad);
        match self.map {
            RowMap::Conv { hp, wp, .. } => {
                // With a window, each input row goes first into one padded row (pad values
                // beyond it too), from which every operand pixel takes its k_w·in_c values.
                let win = self.window * in_c;
                let mut padded = if self.window > 1 {
                    vec![pad; (wp + self.window) * in_c]
                } else {
                    Vec::new()
                };
                for r in part.clone() {
                    let (b, py) = (r / hp, r % hp);
                    if py < g.pad_top || py >= g.pad_top + g.in_h {
                        continue;
                    }
                    let y = py - g.pad_top;
                    let src = &input[(b * g.in_h + y) * g.in_w * in_c..][..g.in_w * in_c];
                    if self.window > 1 {
                        convert(src, &mut padded[g.pad_left * in_c..][..g.in_w * in_c]);
                        let dst = &mut a[(r - part.start) * wp * cp..][..wp * cp];
                        if in_c == 1 {
                            // Value kx of every operand pixel in one strided pass (no
                            // per-pixel copy call).
                            for kx in 0..win {
                                for (d, &v) in dst.chunks_exact_mut(cp).zip(&padded[kx..]) {
                                    d[kx] = v;
                                }
                            }
                        } else {
                            for (x, d) in dst.chunks_exact_mut(cp).enumerate() {
                                d[..win].copy_from_slice(&padded[x * in_c..x * in_c + win]);
                            }
                        }
                        continue;
                    }
                    let at = ((r - part.start) * wp + g.pad_left) * cp;
                    let dst = &mut a[at..][..g.in_w * cp];
                    if cp == in_c {
                        convert(src, dst);
                    } else {
                        for (s, d) in src.chunks_exact(in_c).zip(dst.chunks_exact_mut(cp)) {
                            convert(s, d);
                        }
                    }
                }
            }
            RowMap::Transposed { .. } => {
                let src = &input[part.start * in_c..part.end * in_c];
                if cp == in_c {
                    convert(src, a);
                } else {
                    for (s, d) in src.chunks_exact(in_c).zip(a.chunks_exact_mut(cp)) {
                        convert(s, d);
                    }
                }
            }
            RowMap::Im2col { .. } => {
                // Tap by tap, output row by output row, over the columns whose tap lands
                // inside the image (no per-element bounds test).
                let sw = g.stride_w as isize;
                for ky in 0..g.k_h {
                    for kx in 0..g.k_w {
                        let off = (ky * g.k_w + kx) * in_c;
                        let shift = (kx * g.dilation_w) as isize - g.pad_left as isize;
                        // ox with 0 ≤ ox·sw + shift < in_w.
                        let lo = if shift >= 0 {
                            0
                        } else {
                            ((-shift) + sw - 1) / sw
                        };
                        let hi =
                            ((g.in_w as isize - shift + sw - 1) / sw).clamp(0, g.out_w as isize);
                        let (lo, hi) = (lo.min(hi) as usize, hi as usize);
                        if lo == hi {
                            continue;
                        }
                        for q in part.clone() {
                            let (b, oy) = (q / g.out_h, q % g.out_h);
                            let iy =
                                (oy * g.stride_h + ky * g.dilation_h) as isize - g.pad_top as isize;
                            if iy < 0 || iy >= g.in_h as isize {
                                continue;
                            }
                            let src_row = &input[(b * g.in_h + iy as usize) * g.in_w * in_c..]
                                [..g.in_w * in_c];
                            let row0 = (q - part.start) * g.out_w;
                            let first = (lo as isize * sw + shift) as usize * in_c;
                            let dst = &mut a[(row0 + lo) * cp..(row0 + hi) * cp];
                            for (d, src) in dst
                                .chunks_exact_mut(cp)
                                .zip(src_row[first..].chunks(in_c * g.stride_w))
                            {
                                convert(&src[..in_c], &mut d[off..off + in_c]);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Appends the `(A offset, output offset)` of rows `start..end` (divisions only for the
    /// first row).
    fn rows_into(&self, start: usize, end: usize, rows: &mut Vec<(usize, usize)>) {
        if start >= end {
            return;
        }
        let pixel = self.cp * self.operand.bytes();
        match self.map {
            RowMap::Conv {
                out_h,
                out_w,
                out_c,
                hp,
                wp,
                stride_h,
                stride_w,
                ..
            } => {
                let (mut ox, rest) = (start % out_w, start / out_w);
                let (mut oy, mut b) = (rest % out_h, rest / out_h);
                for r in start..end {
                    rows.push((
                        ((b * hp + oy * stride_h) * wp + ox * stride_w) * pixel,
                        r * out_c,
                    ));
                    ox += 1;
                    if ox == out_w {
                        ox = 0;
                        oy += 1;
                        if oy == out_h {
                            oy = 0;
                            b += 1;
                        }
                    }
                }
            }
            RowMap::Im2col { out_c } => rows.extend((start..end).map(|r| (r * pixel, r * out_c))),
            RowMap::Transposed {
                in_h,
                in_w,
                out_h,
                out_w,
                out_c,
                stride_h,
                stride_w,
            } => {
                let (mut ix, rest) = (start % in_w, start / in_w);
                let (mut iy, mut b) = (rest % in_h, rest / in_h);
                for r in start..end {
                    rows.push((
                        r * pixel,
                        ((b * out_h + iy * stride_h) * out_w + ix * stride_w) * out_c,
                    ));
                    ix += 1;
                    if ix == in_w {
                        ix = 0;
                        iy += 1;
                        if iy == in_h {
                            iy = 0;
                            b += 1;
                        }
                    }
                }
            }
        }
    }

    /// Scalar requantisation of one accumulator of padded column `col` (the reference
    /// arithmetic itself).
    #[inline]
    pub(crate) fn requant_scalar(&self, acc: i32, col: usize) -> i8 {
        let x = acc.wrapping_add(self.bias[col]);
        let v = multiply_by_quantized_multiplier(x, self.mult[col], self.shift[col]);
        v.wrapping_add(self.out_zp)
            .clamp(self.act_min, self.act_max) as i8
    }

    /// Runs the op: `input` is the int8 input, `workspace` at least
    /// [`Self::workspace_bytes`] bytes, `output` the int8 output.
    pub fn run(&self, input: &[i8], workspace: &mut [u8], output: &mut [i8], threads: usize) {
        assert_eq!(input.len(), self.in_len, "fast int8 kernel: input length");
        assert_eq!(
            output.len(),
            self.out_len,
            "fast int8 kernel: output length"
        );
        assert!(
            workspace.len() >= self.a_bytes,
            "fast int8 kernel: workspace"
        );
        let out = OutPtr(output.as_mut_ptr());
        let chunks = self.rows.div_ceil(CHUNK);
        let threads = threads.clamp(1, chunks.max(1));
        if threads == 1 {
            self.fill_operand(input, workspace);
            self.run_rows(&workspace[..self.a_bytes], out, 0, self.rows);
            return;
        }
        // Every thread fills its share of the operand buffer; once all have (a row's taps read
        // its neighbours' units), every thread runs its share of the rows. Two jobs on the
        // persistent workers, so the second starts as soon as the last fill ends.
        let (units, unit_bytes) = self.fill_units();
        debug_assert_eq!(units * unit_bytes, self.a_bytes);
        let per_fill = units.div_ceil(threads);
        // Equal row shares in multiples of 16 rows (whole chunks made the 8×8 layers' 64 rows a
        // 48 / 16 split); a share that is not a multiple of a kernel's row count ends in one
        // padded tile.
        let per = self.rows.div_ceil(threads).div_ceil(16) * 16;
        let ws = WorkspacePtr(workspace.as_mut_ptr());
        super::workers::run_on_threads(threads, &|t| {
            let (u0, u1) = ((t * per_fill).min(units), ((t + 1) * per_fill).min(units));
            // SAFETY: the workspace holds at least `a_bytes = units · unit_bytes` bytes
            // (asserted above); part t writes only units u0..u1, disjoint from every other
            // part's, and the borrow ends with the part.
            let part = unsafe {
                std::slice::from_raw_parts_mut(
                    ws.get().add(u0 * unit_bytes),
                    (u1 - u0) * unit_bytes,
                )
            };
            self.fill_operand_part(input, part, u0..u1);
        });
        // SAFETY: every write to the buffer happened in the job above, which has returned; no
        // mutable borrow of it is alive.
        let a = unsafe { std::slice::from_raw_parts(ws.get().cast_const(), self.a_bytes) };
        super::workers::run_on_threads(threads, &|t| {
            let (lo, hi) = ((t * per).min(self.rows), ((t + 1) * per).min(self.rows));
            if lo < hi {
                self.run_rows(a, out, lo, hi);
            }
        });
    }

    /// Rows `lo..hi`, chunk by chunk; within a chunk every column block group runs over
    /// all its pixels (the chunk's operand rows stay in L1).
    fn run_rows(&self, a: &[u8], out: OutPtr, lo: usize, hi: usize) {
        let mut rows: Vec<(usize, usize)> = Vec::with_capacity(CHUNK);
        let mut start = lo;
        while start < hi {
            let end = (start + CHUNK).min(hi);
            rows.clear();
            self.rows_into(start, end, &mut rows);
            // SAFETY: `check_bounds` verified in `build` that every row's operand reads and
            // output writes stay inside `a` (`a_bytes`) and the output (`out_len`), and
            // `run` checked both lengths. Rows of different threads write disjoint outputs.
            unsafe { self.tile(a.as_ptr(), &rows, out.0) };
            start = end;
        }
    }

    /// Dispatches one chunk of rows to the path's microkernels.
    ///
    /// # Safety
    /// `rows` must come from [`Self::row`], `a` must point to the filled operand buffer and
    /// `out` to an output of `out_len` bytes no other thread writes at these rows.
    unsafe fn tile(&self, a: *const u8, rows: &[(usize, usize)], out: *mut i8) {
        match self.path {
            // SAFETY: the caller upholds the buffer contract.
            Int8Path::Portable => unsafe { super::int8_portable::tile(self, a, rows, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `self` was packed for a `DetectedPath`, so the CPU has AVX2; the caller
            // upholds the buffer contract.
            Int8Path::Avx2 => unsafe { super::int8_x86::tile_avx2(self, a, rows, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, for AVX-512F + VNNI + AVX2.
            Int8Path::Avx512Vnni => unsafe { super::int8_x86::tile_vnni(self, a, rows, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, for AVX-VNNI + AVX2.
            Int8Path::AvxVnni => unsafe { super::int8_x86::tile_avxvnni(self, a, rows, out) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: NEON is baseline on aarch64; the caller upholds the buffer contract.
            Int8Path::Neon => unsafe { super::int8_neon::tile_neon(self, a, rows, out) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: packed for a `DetectedPath`: the CPU has the dot-product extension.
            Int8Path::NeonDotprod => unsafe { super::int8_neon::tile_dotprod(self, a, rows, out) },
            #[allow(unreachable_patterns)]
            // SAFETY: as for `Portable`.
            _ => unsafe { super::int8_portable::tile(self, a, rows, out) },
        }
    }
}

/// The operand workspace shared by the row threads: each fills its own units, then all read.
#[derive(Clone, Copy)]
struct WorkspacePtr(*mut u8);

impl WorkspacePtr {
    /// The pointer (a method, so closures capture the `Sync` wrapper, not the raw field).
    fn get(self) -> *mut u8 {
        self.0
    }
}
// SAFETY: threads write disjoint units in one job and only read them in the next (see
// `Int8Gemm::run`).
unsafe impl Send for WorkspacePtr {}
// SAFETY: as above; the pointer itself is only copied.
unsafe impl Sync for WorkspacePtr {}

/// The output pointer shared by the row threads (each writes only its own rows).
#[derive(Clone, Copy)]
struct OutPtr(*mut i8);
// SAFETY: threads write disjoint rows of the output (see `Int8Gemm::run`).
unsafe impl Send for OutPtr {}
// SAFETY: as above; the pointer itself is only copied.
unsafe impl Sync for OutPtr {}

/// Groups `rows` into blocks of `MR` (the last one padded by repeating its last row) and calls
/// `f(a_offsets, out_offsets, valid)` for each.
#[inline(always)]
pub(crate) fn for_blocks<const MR: usize>(
    rows: &[(usize, usize)],
    mut f: impl FnMut(&[usize; MR], &[usize; MR], usize),
) {
    for block in rows.chunks(MR) {
        let n = block.len();
        let a: [usize; MR] = std::array::from_fn(|m| block[m.min(n - 1)].0);
        let o: [usize; MR] = std::array::from_fn(|m| block[m.min(n - 1)].1);
        f(&a, &o, n);
    }
}

/// CONV_2D int8 on `path` (packing the weights on every call; for tests and one-off use).
/// Falls back to the reference kernel where the fast kernels do not apply; returns whether
/// the fast path ran.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_i8(
    path: Int8Path,
    threads: usize,
    g: &ConvGeometry,
    q: &ConvQuantParams,
    input: &[i8],
    filter: &[i8],
    bias: Option<&[i32]>,
    output: &mut [i8],
) -> Result<bool, crate::RuntimeError> {
    let path = detect(path)?;
    match Int8Gemm::conv(path, g, q, filter, bias) {
        Some(gemm) => {
            let mut ws = vec![0u8; gemm.workspace_bytes()];
            gemm.run(input, &mut ws, output, threads);
            Ok(true)
        }
        None => {
            reference::conv::conv2d_i8(g, q, input, filter, bias, output);
            Ok(false)
        }
    }
}

/// TRANSPOSE_CONV int8 on `path`, like [`conv2d_i8`]; the reference kernel (with its i32
/// scratch) runs where the fast kernel does not apply.
#[allow(clippy::too_many_arguments)]
pub fn transpose_conv_i8(
    path: Int8Path,
    threads: usize,
    g: &ConvGeometry,
    q: &ConvQuantParams,
    input: &[i8],
    filter: &[i8],
    bias: Option<&[i32]>,
    output: &mut [i8],
) -> Result<bool, crate::RuntimeError> {
    let path = detect(path)?;
    match Int8Gemm::transposed(path, g, q, filter, bias) {
        Some(gemm) => {
            let mut ws = vec![0u8; gemm.workspace_bytes()];
            gemm.run(input, &mut ws, output, threads);
            Ok(true)
        }
        None => {
            let mut scratch = vec![0i32; output.len()];
            reference::transpose_conv::transpose_conv_i8(
                g,
                q,
                input,
                filter,
                bias,
                &mut scratch,
                output,
            );
            Ok(false)
        }
    }
}

fn detect(path: Int8Path) -> Result<DetectedPath, crate::RuntimeError> {
    path.detect()
        .ok_or_else(|| crate::RuntimeError::KernelUnavailable {
            requested: path.name().to_string(),
            available: Int8Path::available()
                .into_iter()
                .map(Int8Path::name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    //! The packed layout of every path (including those this CPU cannot run, such as AVX-512
    //! VNNI on an AVX2 machine) executed by a scalar model of the path's instruction, so that
    //! the packing, operand encoding, zero-point correction and output mapping of each path are
    //! checked against the reference everywhere.
    use super::*;
    use crate::quant::quantize_multiplier;
    use crate::synth::Rng;

    /// Scalar model of one 4-byte step of the path's dot instruction.
    fn dot4(operand: Operand, a: [u8; 4], w: &[u8]) -> i32 {
        match operand {
            // vpdpbusd: unsigned activations × signed weights.
            Operand::ShiftedU8 => (0..4).map(|e| a[e] as i32 * w[e] as i8 as i32).sum(),
            // sdot / smull: signed × signed.
            Operand::RawI8 => (0..4).map(|e| a[e] as i8 as i32 * w[e] as i8 as i32).sum(),
            // vpmaddwd: two i16 × i16 pairs.
            Operand::CenteredI16 => (0..2)
                .map(|e| {
                    i16::from_le_bytes([a[2 * e], a[2 * e + 1]]) as i32
                        * i16::from_le_bytes([w[2 * e], w[2 * e + 1]]) as i32
                })
                .sum(),
        }
    }

    fn run_emulated(g: &Int8Gemm, input: &[i8], output: &mut [i8]) {
        let mut a = vec![0u8; g.workspace_bytes()];
        g.fill_operand(input, &mut a);
        let mut rows = Vec::new();
        g.rows_into(0, g.rows, &mut rows);
        for &(ao, oo) in &rows {
            for j in 0..g.n_blocks {
                for l in 0..g.col_valid[j] {
                    let mut acc = 0i32;
                    for (ti, &t) in g.taps.iter().enumerate() {
                        for s in 0..g.steps {
                            let at = ao + t + 4 * s;
                            let av = [a[at], a[at + 1], a[at + 2], a[at + 3]];
                            let w = j * g.blk_bytes + ((ti * g.steps + s) * g.lanes + l) * 4;
                            acc = acc.wrapping_add(dot4(g.operand, av, &g.w[w..w + 4]));
                        }
                    }
                    output[oo + g.col_dest[j] + l] = g.requant_scalar(acc, j * g.lanes + l);
                }
            }
        }
    }

    #[test]
    fn every_layout_matches_reference_in_emulation() {
        let mut rng = Rng::new(42);
        for case in 0..150 {
            let k = [1, 3, 3, 2][case % 4];
            let stride = 1 + case % 2;
            let transposed = case % 3 == 0;
            let (in_h, in_w) = (rng.range_i64(1, 6) as usize, rng.range_i64(1, 6) as usize);
            let in_c = [1, 3, 4, 9, 16, 17][rng.range_i64(0, 5) as usize];
            let out_c = [1, 5, 8, 16, 17, 33][rng.range_i64(0, 5) as usize];
            let g = if transposed {
                ConvGeometry {
                    batches: 2,
                    in_h,
                    in_w,
                    in_c,
                    out_h: in_h * k,
                    out_w: in_w * k,
                    out_c,
                    k_h: k,
                    k_w: k,
                    stride_h: k,
                    stride_w: k,
                    dilation_h: 1,
                    dilation_w: 1,
                    pad_top: 0,
                    pad_left: 0,
                }
            } else {
                // SAME padding.
                let out = |n: usize| n.div_ceil(stride);
                let pad = |n: usize| ((out(n) - 1) * stride + k).saturating_sub(n) / 2;
                ConvGeometry {
                    batches: 2,
                    in_h,
                    in_w,
                    in_c,
                    out_h: out(in_h),
                    out_w: out(in_w),
                    out_c,
                    k_h: k,
                    k_w: k,
                    stride_h: stride,
                    stride_w: stride,
                    dilation_h: 1,
                    dilation_w: 1,
                    pad_top: pad(in_h),
                    pad_left: pad(in_w),
                }
            };
            let q = ConvQuantParams {
                input_zero_point: rng.range_i64(-128, 127) as i32,
                output_zero_point: rng.range_i64(-20, 20) as i32,
                multipliers: (0..out_c)
                    .map(|_| {
                        quantize_multiplier(2f64.powf(rng.range_f32(-16.0, -4.0) as f64)).multiplier
                    })
                    .collect(),
                shifts: (0..out_c).map(|_| rng.range_i64(-14, -4) as i32).collect(),
                act_min: -128,
                act_max: 127,
            };
            let input = rng.i8s(g.batches * in_h * in_w * in_c, -128, 127);
            let filter = rng.i8s(out_c * k * k * in_c, -128, 127);
            let bias: Vec<i32> = (0..out_c)
                .map(|_| rng.range_i64(-9999, 9999) as i32)
                .collect();
            let n_out = g.batches * g.out_h * g.out_w * out_c;
            let mut expected = vec![0i8; n_out];
            if transposed {
                let mut scratch = vec![0i32; n_out];
                reference::transpose_conv::transpose_conv_i8(
                    &g,
                    &q,
                    &input,
                    &filter,
                    Some(&bias),
                    &mut scratch,
                    &mut expected,
                );
            } else {
                reference::conv::conv2d_i8(&g, &q, &input, &filter, Some(&bias), &mut expected);
            }
            for path in Int8Path::ALL {
                let gemm = if transposed {
                    Int8Gemm::pack_transposed(path, &g, &q, &filter, Some(&bias))
                } else {
                    Int8Gemm::pack_conv(path, &g, &q, &filter, Some(&bias))
                }
                .expect("covered case");
                let mut got = vec![0i8; n_out];
                run_emulated(&gemm, &input, &mut got);
                assert_eq!(got, expected, "case {case} {} {g:?}", path.name());
            }
        }
    }
}
