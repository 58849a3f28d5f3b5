//! Portable int8 microkernel: plain Rust over the packed layout (8 columns per block, i8
//! operands), for CPUs without a SIMD path and as the executable specification of the layout.

use super::int8::{Int8Gemm, for_blocks};

const MR: usize = 4;
const LANES: usize = 8;

/// Runs one chunk of rows over every column block.
///
/// # Safety
/// `a` must point to the filled operand buffer of `g` and `out` to its output; `rows` must
/// come from `Int8Gemm::row` (bounds verified in `Int8Gemm::build`), and no other thread may
/// write these rows.
pub(super) unsafe fn tile(g: &Int8Gemm, a: *const u8, rows: &[(usize, usize)], out: *mut i8) {
    debug_assert_eq!(g.lanes, LANES);
    let steps = g.steps;
    for j in 0..g.n_blocks {
        let wblk = &g.w[j * g.blk_bytes..(j + 1) * g.blk_bytes];
        let col = j * LANES;
        let (dest, valid_cols) = (g.col_dest[j], g.col_valid[j]);
        for_blocks::<MR>(rows, |ao, oo, valid_rows| {
            let mut acc = [[0i32; LANES]; MR];
            for (ti, &t) in g.taps.iter().enumerate() {
                for s in 0..steps {
                    let wv = &wblk[(ti * steps + s) * LANES * 4..][..LANES * 4];
                    for (m, acc_m) in acc.iter_mut().enumerate() {
                        // SAFETY: `ao[m] + t + 4·s + 4 ≤ a_bytes` (checked in `build`).
                        let av: [u8; 4] =
                            unsafe { a.add(ao[m] + t + 4 * s).cast::<[u8; 4]>().read_unaligned() };
                        for (l, acc_ml) in acc_m.iter_mut().enumerate() {
                            let mut sum = 0i32;
                            for e in 0..4 {
                                sum = sum.wrapping_add(
                                    (av[e] as i8 as i32).wrapping_mul(wv[l * 4 + e] as i8 as i32),
                                );
                            }
                            *acc_ml = acc_ml.wrapping_add(sum);
                        }
                    }
                }
            }
            for (m, acc_m) in acc.iter().enumerate().take(valid_rows) {
                for (l, &v) in acc_m.iter().enumerate().take(valid_cols) {
                    // SAFETY: `oo[m] + dest + l < out_len` (checked in `build`); rows are
                    // owned by this thread.
                    unsafe { *out.add(oo[m] + dest + l) = g.requant_scalar(v, col + l) };
                }
            }
        });
    }
}
