//! aarch64 int8 microkernels: `sdot` (dot-product extension, through `asm!` because
//! `vdotq_s32` is unstable) and plain NEON (`smull` + `sadalp`). Blocks of 4 columns; i8
//! operands with the `zp·Σw` correction in the bias; scalar exact requantisation.

#![allow(clippy::needless_range_loop)]

use std::arch::aarch64::*;
use std::arch::asm;

use super::int8::{Int8Gemm, for_blocks};

/// `acc += sdot(w, a)`: each i32 lane adds the dot product of its 4 weight bytes and `a`'s
/// matching 4 bytes.
#[target_feature(enable = "neon,dotprod")]
#[inline]
fn sdot(acc: int32x4_t, w: int8x16_t, a: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: a register-only instruction, available under the `dotprod` feature.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {w:v}.16b, {a:v}.16b",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            a = in(vreg) a,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// Requantises (scalar, exact) and stores 4 accumulators of padded column `col`.
///
/// # Safety
/// `dst..dst + n` writable, `n ≤ 4`.
#[inline]
unsafe fn finish4(g: &Int8Gemm, acc: [i32; 4], col: usize, dst: *mut i8, n: usize) {
    for l in 0..n {
        // SAFETY: `l < n` writable bytes (caller).
        unsafe { *dst.add(l) = g.requant_scalar(acc[l], col + l) };
    }
}

/// Dot-product microkernel: `MR` rows × `NB` blocks of 4 columns.
///
/// # Safety
/// NEON + dotprod; the `Int8Gemm::tile` contract; `jb + NB ≤ n_blocks`.
#[target_feature(enable = "neon,dotprod")]
unsafe fn kernel_dotprod<const MR: usize, const NB: usize>(
    g: &Int8Gemm,
    a: *const u8,
    ao: &[usize; MR],
    jb: usize,
    out: *mut i8,
    oo: &[usize; MR],
    valid: usize,
) {
    let mut acc = [[vdupq_n_s32(0); NB]; MR];
    let blk = g.blk_bytes;
    // SAFETY (whole body): weight reads stay in `n_blocks · blk_bytes`; operand reads
    // `ao[m] + tap + 4·s + 4 ≤ a_bytes`; output writes `oo[m] + col_dest + col_valid ≤
    // out_len` (checked in `Int8Gemm::build`).
    unsafe {
        let mut wp = g.w.as_ptr().add(jb * blk);
        for &t in g.taps.iter() {
            let mut rp = [a; MR];
            for m in 0..MR {
                rp[m] = a.add(ao[m] + t);
            }
            for s in 0..g.steps {
                let mut wv = [vdupq_n_s8(0); NB];
                for j in 0..NB {
                    wv[j] = vld1q_s8(wp.add(j * blk).cast());
                }
                for m in 0..MR {
                    let av = vreinterpretq_s8_u32(vdupq_n_u32(
                        rp[m].add(4 * s).cast::<u32>().read_unaligned(),
                    ));
                    for j in 0..NB {
                        acc[m][j] = sdot(acc[m][j], wv[j], av);
                    }
                }
                wp = wp.add(16);
            }
        }
        for j in 0..NB {
            let col = (jb + j) * 4;
            let (dest, n) = (g.col_dest[jb + j], g.col_valid[jb + j]);
            for m in 0..MR {
                if m < valid {
                    let mut v = [0i32; 4];
                    vst1q_s32(v.as_mut_ptr(), acc[m][j]);
                    finish4(g, v, col, out.add(oo[m] + dest), n);
                }
            }
        }
    }
}

/// Plain NEON microkernel: `smull`/`smull2` of the 16 weight bytes by the broadcast 4
/// operand bytes, pairwise-accumulated into two i32x4 (`sadalp`; no i16 overflow, since one
/// product is at most 2^14), folded at the end with `addp`.
///
/// # Safety
/// NEON; the `Int8Gemm::tile` contract; `jb + NB ≤ n_blocks`.
#[target_feature(enable = "neon")]
unsafe fn kernel_neon<const MR: usize, const NB: usize>(
    g: &Int8Gemm,
    a: *const u8,
    ao: &[usize; MR],
    jb: usize,
    out: *mut i8,
    oo: &[usize; MR],
    valid: usize,
) {
    let mut lo = [[vdupq_n_s32(0); NB]; MR];
    let mut hi = [[vdupq_n_s32(0); NB]; MR];
    let blk = g.blk_bytes;
    // SAFETY (whole body): as in `kernel_dotprod`.
    unsafe {
        let mut wp = g.w.as_ptr().add(jb * blk);
        for &t in g.taps.iter() {
            let mut rp = [a; MR];
            for m in 0..MR {
                rp[m] = a.add(ao[m] + t);
            }
            for s in 0..g.steps {
                let mut wv = [vdupq_n_s8(0); NB];
                for j in 0..NB {
                    wv[j] = vld1q_s8(wp.add(j * blk).cast());
                }
                for m in 0..MR {
                    let av = vreinterpretq_s8_u32(vdupq_n_u32(
                        rp[m].add(4 * s).cast::<u32>().read_unaligned(),
                    ));
                    for j in 0..NB {
                        let p0 = vmull_s8(vget_low_s8(wv[j]), vget_low_s8(av));
                        let p1 = vmull_high_s8(wv[j], av);
                        lo[m][j] = vpadalq_s16(lo[m][j], p0);
                        hi[m][j] = vpadalq_s16(hi[m][j], p1);
                    }
                }
                wp = wp.add(16);
            }
        }
        for j in 0..NB {
            let col = (jb + j) * 4;
            let (dest, n) = (g.col_dest[jb + j], g.col_valid[jb + j]);
            for m in 0..MR {
                if m < valid {
                    // lo = [c0 half, c0 half, c1 half, c1 half], hi likewise for c2, c3.
                    let sum = vpaddq_s32(lo[m][j], hi[m][j]);
                    let mut v = [0i32; 4];
                    vst1q_s32(v.as_mut_ptr(), sum);
                    finish4(g, v, col, out.add(oo[m] + dest), n);
                }
            }
        }
    }
}

/// Runs one chunk of rows over every column block with the dot-product kernels.
///
/// # Safety
/// NEON + dotprod must be available; the `Int8Gemm::tile` contract.
#[target_feature(enable = "neon,dotprod")]
pub(super) unsafe fn tile_dotprod(
    g: &Int8Gemm,
    a: *const u8,
    rows: &[(usize, usize)],
    out: *mut i8,
) {
    let mut jb = 0;
    while jb < g.n_blocks {
        let left = g.n_blocks - jb;
        if left >= 4 {
            for_blocks::<4>(rows, |ao, oo, v| {
                // SAFETY: forwarded contract; the features were checked by the caller.
                unsafe { kernel_dotprod::<4, 4>(g, a, ao, jb, out, oo, v) }
            });
            jb += 4;
        } else if left >= 2 {
            for_blocks::<8>(rows, |ao, oo, v| {
                // SAFETY: as above.
                unsafe { kernel_dotprod::<8, 2>(g, a, ao, jb, out, oo, v) }
            });
            jb += 2;
        } else {
            for_blocks::<8>(rows, |ao, oo, v| {
                // SAFETY: as above.
                unsafe { kernel_dotprod::<8, 1>(g, a, ao, jb, out, oo, v) }
            });
            jb += 1;
        }
    }
}

/// Runs one chunk of rows over every column block with the plain NEON kernels.
///
/// # Safety
/// NEON must be available; the `Int8Gemm::tile` contract.
#[target_feature(enable = "neon")]
pub(super) unsafe fn tile_neon(g: &Int8Gemm, a: *const u8, rows: &[(usize, usize)], out: *mut i8) {
    let mut jb = 0;
    while jb < g.n_blocks {
        if g.n_blocks - jb >= 2 {
            for_blocks::<4>(rows, |ao, oo, v| {
                // SAFETY: forwarded contract.
                unsafe { kernel_neon::<4, 2>(g, a, ao, jb, out, oo, v) }
            });
            jb += 2;
        } else {
            for_blocks::<8>(rows, |ao, oo, v| {
                // SAFETY: as above.
                unsafe { kernel_neon::<8, 1>(g, a, ao, jb, out, oo, v) }
            });
            jb += 1;
        }
    }
}
