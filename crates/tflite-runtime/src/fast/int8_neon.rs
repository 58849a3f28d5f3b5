//! aarch64 int8 microkernels: `sdot` (dot-product extension, through `asm!` because
//! `vdotq_s32` is unstable) and plain NEON (`smull`/`smlal` + `sadalp`). Blocks of 4 columns;
//! i8 operands with the `zp·Σw` correction in the bias; scalar exact requantisation.
//!
//! Both kernels keep their accumulators in registers for the whole reduction (they leave
//! through constant-index stores into a local array, which the requantisation reads), and
//! consume more than one 4-byte K step per loop iteration:
//! - dot product: 16 bytes of each operand row per load and four by-element `sdot`s
//!   (`sdot acc, w_s, a.4b[s]`, s = 0..3) per row and block, so no broadcast is needed;
//! - plain NEON: two K steps per `smull` + `smlal` pair into i16 (exact while no weight is
//!   −128, checked when packing; otherwise one step at a time), then one `sadalp`.
//!
//! Their cycle counts under llvm-mca's Cortex-A53/A55/A76 models are in docs/arm-mca.md.

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

/// `acc += sdot(w, a.4b[LANE])`: each i32 lane adds the dot product of its 4 weight bytes and
/// the 4 bytes of `a`'s 32-bit element `LANE`.
#[target_feature(enable = "neon,dotprod")]
#[inline]
fn sdot_lane<const LANE: i32>(acc: int32x4_t, w: int8x16_t, a: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: a register-only instruction, available under the `dotprod` feature.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {w:v}.16b, {a:v}.4b[{lane}]",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            a = in(vreg) a,
            lane = const LANE,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// 16 bytes at `p + OFF` as one `ldr q`. Through `asm!` so that LLVM cannot merge two
/// neighbouring loads into an `ldp q`: in llvm-mca's Cortex-A57 model (its stand-in for the
/// A76) an `ldp q` costs 4 µops against 1 for an `ldr q`, which made the dot-product loop
/// dispatch-bound (38 cycles for 64 `sdot` instead of 32).
///
/// # Safety
/// `p + OFF .. p + OFF + 16` readable.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn ldr_q<const OFF: usize>(p: *const u8) -> int8x16_t {
    let v: int8x16_t;
    // SAFETY: caller; a plain 16-byte load without alignment requirement.
    unsafe {
        asm!(
            "ldr {v:q}, [{p}, #{off}]",
            v = lateout(vreg) v,
            p = in(reg) p,
            off = const OFF,
            options(pure, readonly, nostack, preserves_flags)
        );
    }
    v
}

/// One K step of a dot-product quad: the 16 weight bytes of step `LANE` of every block
/// (block `j` at `wj[j]`) against element `LANE` of every row's 16 operand bytes.
///
/// # Safety
/// `wj[j] + 16·LANE + 16` readable for `j < NB`.
#[target_feature(enable = "neon,dotprod")]
#[inline]
unsafe fn quad_step<const LANE: i32, const OFF: usize, const MR: usize, const NB: usize>(
    acc: &mut [[int32x4_t; NB]; MR],
    av: &[int8x16_t; MR],
    wj: &[*const u8; NB],
) {
    let mut wv = [vdupq_n_s8(0); NB];
    for j in 0..NB {
        // SAFETY: caller.
        wv[j] = unsafe { ldr_q::<OFF>(wj[j]) };
    }
    for m in 0..MR {
        for j in 0..NB {
            acc[m][j] = sdot_lane::<LANE>(acc[m][j], wv[j], av[m]);
        }
    }
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
    let quads = g.steps / 4;
    // SAFETY (whole body): weight reads stay in `n_blocks · blk_bytes`; operand reads
    // `ao[m] + tap + 4·s + 4 ≤ a_bytes` (a quad reads steps 4q..4q+3, all < steps); output
    // writes `oo[m] + col_dest + col_valid ≤ out_len` (checked in `Int8Gemm::build`).
    unsafe {
        let mut wp = g.w.as_ptr().add(jb * blk);
        for &t in g.taps.iter() {
            let mut rp = [a; MR];
            for m in 0..MR {
                rp[m] = a.add(ao[m] + t);
            }
            for q in 0..quads {
                let mut av = [vdupq_n_s8(0); MR];
                for m in 0..MR {
                    av[m] = vld1q_s8(rp[m].add(16 * q).cast());
                }
                let mut wj = [wp; NB];
                for j in 0..NB {
                    wj[j] = wp.add(j * blk);
                }
                quad_step::<0, 0, MR, NB>(&mut acc, &av, &wj);
                quad_step::<1, 16, MR, NB>(&mut acc, &av, &wj);
                quad_step::<2, 32, MR, NB>(&mut acc, &av, &wj);
                quad_step::<3, 48, MR, NB>(&mut acc, &av, &wj);
                wp = wp.add(64);
            }
            for s in 4 * quads..g.steps {
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
        // Constant indices only: the accumulators stay in registers through the loops above.
        let mut sums = [[[0i32; 4]; NB]; MR];
        for m in 0..MR {
            for j in 0..NB {
                vst1q_s32(sums[m][j].as_mut_ptr(), acc[m][j]);
            }
        }
        for j in 0..NB {
            let col = (jb + j) * 4;
            let (dest, n) = (g.col_dest[jb + j], g.col_valid[jb + j]);
            for m in 0..MR.min(valid) {
                finish4(g, sums[m][j], col, out.add(oo[m] + dest), n);
            }
        }
    }
}

/// Plain NEON microkernel: `smull`/`smull2` of the 16 weight bytes by the broadcast 4
/// operand bytes (plus `smlal`/`smlal2` of the next step's when no weight is −128),
/// pairwise-accumulated into two i32x4 (`sadalp`; no i16 overflow: one product is at most
/// 2^14, two at most 32512), folded at the end with `addp`.
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
    let pairs = if g.weights_above_min { g.steps / 2 } else { 0 };
    // SAFETY (whole body): as in `kernel_dotprod`.
    unsafe {
        let mut wp = g.w.as_ptr().add(jb * blk);
        for &t in g.taps.iter() {
            let mut rp = [a; MR];
            for m in 0..MR {
                rp[m] = a.add(ao[m] + t);
            }
            // Two steps per iteration: w_s·a_s + w_{s+1}·a_{s+1} in i16, then one sadalp.
            for p in 0..pairs {
                let mut w0 = [vdupq_n_s8(0); NB];
                let mut w1 = [vdupq_n_s8(0); NB];
                for j in 0..NB {
                    w0[j] = vld1q_s8(wp.add(j * blk).cast());
                    w1[j] = vld1q_s8(wp.add(j * blk + 16).cast());
                }
                for m in 0..MR {
                    let a0 = vreinterpretq_s8_u32(vld1q_dup_u32(rp[m].add(8 * p).cast()));
                    let a1 = vreinterpretq_s8_u32(vld1q_dup_u32(rp[m].add(8 * p + 4).cast()));
                    for j in 0..NB {
                        let p0 = vmlal_s8(
                            vmull_s8(vget_low_s8(w0[j]), vget_low_s8(a0)),
                            vget_low_s8(w1[j]),
                            vget_low_s8(a1),
                        );
                        let p1 = vmlal_high_s8(vmull_high_s8(w0[j], a0), w1[j], a1);
                        lo[m][j] = vpadalq_s16(lo[m][j], p0);
                        hi[m][j] = vpadalq_s16(hi[m][j], p1);
                    }
                }
                wp = wp.add(32);
            }
            for s in 2 * pairs..g.steps {
                let mut wv = [vdupq_n_s8(0); NB];
                for j in 0..NB {
                    wv[j] = vld1q_s8(wp.add(j * blk).cast());
                }
                for m in 0..MR {
                    let av = vreinterpretq_s8_u32(vld1q_dup_u32(rp[m].add(4 * s).cast()));
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
        // lo = [c0 half, c0 half, c1 half, c1 half], hi likewise for c2, c3. Constant
        // indices only, so the accumulators stay in registers through the loops above.
        let mut sums = [[[0i32; 4]; NB]; MR];
        for m in 0..MR {
            for j in 0..NB {
                vst1q_s32(sums[m][j].as_mut_ptr(), vpaddq_s32(lo[m][j], hi[m][j]));
            }
        }
        for j in 0..NB {
            let col = (jb + j) * 4;
            let (dest, n) = (g.col_dest[jb + j], g.col_valid[jb + j]);
            for m in 0..MR.min(valid) {
                finish4(g, sums[m][j], col, out.add(oo[m] + dest), n);
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
