//! Fast f32 MAX_POOL_2D: the reference kernel's comparisons in the same order per output
//! element, with the channel loop innermost (contiguous, vectorisable) instead of a boxed
//! window iterator per element. Results are identical to `reference::pool::max_pool_f32`.

use crate::frame::PoolGeometry;
use crate::quant::clamp_f32;

/// f32 max pool (NHWC), bit-identical to the reference kernel, its output rows (over batches
/// and `out_h`) split over `threads` threads (the persistent workers).
pub fn max_pool_f32(
    g: &PoolGeometry,
    act: (f32, f32),
    input: &[f32],
    output: &mut [f32],
    threads: usize,
) {
    let c = g.channels;
    assert_eq!(input.len(), g.batches * g.in_h * g.in_w * c);
    assert_eq!(output.len(), g.batches * g.out_h * g.out_w * c);
    if c == 0 {
        return;
    }
    super::workers::for_row_parts(output, g.out_w * c, threads, |rows, part| {
        pool_rows(g, act, input, rows, part)
    });
}

/// Output rows `rows` (row `r` = batch `r / out_h`, `oy = r % out_h`) into `output`, which
/// holds exactly those rows.
fn pool_rows(
    g: &PoolGeometry,
    act: (f32, f32),
    input: &[f32],
    rows: std::ops::Range<usize>,
    output: &mut [f32],
) {
    let c = g.channels;
    let first = rows.start;
    for r in rows {
        let (b, oy) = (r / g.out_h, r % g.out_h);
        let iy0 = (oy * g.stride_h) as isize - g.pad_top as isize;
        let fy_start = (-iy0).max(0) as usize;
        let fy_end = (g.filter_h as isize).min(g.in_h as isize - iy0).max(0) as usize;
        for ox in 0..g.out_w {
            let ix0 = (ox * g.stride_w) as isize - g.pad_left as isize;
            let fx_start = (-ix0).max(0) as usize;
            let fx_end = (g.filter_w as isize).min(g.in_w as isize - ix0).max(0) as usize;
            let at = ((r - first) * g.out_w + ox) * c;
            let out = &mut output[at..at + c];
            out.fill(f32::MIN);
            for fy in fy_start..fy_end {
                let iy = (iy0 + fy as isize) as usize;
                for fx in fx_start..fx_end {
                    let ix = (ix0 + fx as isize) as usize;
                    let at = ((b * g.in_h + iy) * g.in_w + ix) * c;
                    for (m, &x) in out.iter_mut().zip(&input[at..at + c]) {
                        // std::max(max, x) as in the reference: keeps `max` unless x is larger.
                        *m = if *m < x { x } else { *m };
                    }
                }
            }
            for m in out.iter_mut() {
                *m = clamp_f32(*m, act.0, act.1);
            }
        }
    }
}
