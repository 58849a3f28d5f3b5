//! Int8 and int16 MAX_POOL_2D over whole channel vectors (the compiler vectorises the
//! per-channel maximum), identical to the reference: the maximum over the in-image part of the
//! window, starting from the type's minimum, then the activation clamp. With `threads > 1` the
//! output rows are split over the persistent worker threads.

use crate::frame::PoolGeometry;

/// Int8 max pool on `threads` threads, bit-identical to `reference::pool::max_pool_i8`.
pub fn max_pool_i8(
    g: &PoolGeometry,
    act: (i32, i32),
    input: &[i8],
    output: &mut [i8],
    threads: usize,
) {
    let clamp = |v: i32| v.clamp(-128, 127) as i8;
    max_pool(
        g,
        (clamp(act.0), clamp(act.1)),
        i8::MIN,
        input,
        output,
        threads,
    );
}

/// Int16 max pool (16x8 models) on `threads` threads, bit-identical to
/// `reference::pool::max_pool_i16`.
pub fn max_pool_i16(
    g: &PoolGeometry,
    act: (i32, i32),
    input: &[i16],
    output: &mut [i16],
    threads: usize,
) {
    let clamp = |v: i32| v.clamp(-32768, 32767) as i16;
    max_pool(
        g,
        (clamp(act.0), clamp(act.1)),
        i16::MIN,
        input,
        output,
        threads,
    );
}

fn max_pool<T: Copy + Ord + Send + Sync>(
    g: &PoolGeometry,
    (lo, hi): (T, T),
    min: T,
    input: &[T],
    output: &mut [T],
    threads: usize,
) {
    let c = g.channels;
    assert_eq!(
        input.len(),
        g.batches * g.in_h * g.in_w * c,
        "max pool input"
    );
    assert_eq!(
        output.len(),
        g.batches * g.out_h * g.out_w * c,
        "max pool output"
    );
    if c == 0 {
        return;
    }
    let clipped = |o: usize, stride: usize, pad: usize, window: usize, size: usize| {
        let start = (o * stride) as isize - pad as isize;
        let from = start.max(0) as usize;
        let to = (start + window as isize).clamp(0, size as isize) as usize;
        from..to.max(from)
    };
    if is_plain_2x2(g) {
        super::workers::for_row_parts(output, g.out_w * c, threads, |rows, part| {
            for (r, out_row) in rows.zip(part.chunks_exact_mut(g.out_w * c)) {
                let (b, oy) = (r / g.out_h, r % g.out_h);
                let at = |iy: usize| &input[(b * g.in_h + iy) * g.in_w * c..][..2 * g.out_w * c];
                pool_row_2x2(at(2 * oy), at(2 * oy + 1), c, (lo, hi), out_row);
            }
        });
        return;
    }
    // Output rows (over batches and out_h) split over the threads; each part computes its own.
    super::workers::for_row_parts(output, g.out_w * c, threads, |rows, part| {
        let mut pixels = part.chunks_exact_mut(c);
        for r in rows {
            let (b, oy) = (r / g.out_h, r % g.out_h);
            let ys = clipped(oy, g.stride_h, g.pad_top, g.filter_h, g.in_h);
            for ox in 0..g.out_w {
                let xs = clipped(ox, g.stride_w, g.pad_left, g.filter_w, g.in_w);
                let Some(out) = pixels.next() else { return };
                out.fill(min);
                for iy in ys.clone() {
                    let row = &input[((b * g.in_h + iy) * g.in_w) * c..][..g.in_w * c];
                    for ix in xs.clone() {
                        for (o, &x) in out.iter_mut().zip(&row[ix * c..(ix + 1) * c]) {
                            *o = (*o).max(x);
                        }
                    }
                }
                for o in out.iter_mut() {
                    *o = (*o).clamp(lo, hi);
                }
            }
        }
    });
}

/// A 2×2 window with stride 2 and no padding, every window inside the image (the U-Net's
/// pools): [`pool_row_2x2`] applies.
fn is_plain_2x2(g: &PoolGeometry) -> bool {
    (
        g.filter_h, g.filter_w, g.stride_h, g.stride_w, g.pad_top, g.pad_left,
    ) == (2, 2, 2, 2, 0, 0)
        && 2 * g.out_h <= g.in_h
        && 2 * g.out_w <= g.in_w
}

/// One output row of a plain 2×2 stride-2 pool: pixel `x` of `out` (`c` channels) is the
/// clamped maximum of input pixels `2x` and `2x + 1` of rows `top` and `bottom`. The maximum
/// of four values in any order equals the reference's running maximum from the type's minimum,
/// and with `lo ≤ hi` (checked once) `max(lo).min(hi)` is its clamp. One pass over the five
/// channel runs of a pixel with no branch inside, which the compiler turns into vector maxima
/// (a 16-lane block loop with `Ord::clamp` in it stayed scalar: 78 µs for the 64×64×16 pool).
fn pool_row_2x2<T: Copy + Ord>(top: &[T], bottom: &[T], c: usize, (lo, hi): (T, T), out: &mut [T]) {
    assert!(lo <= hi, "max pool: activation range");
    let pixels = out
        .chunks_exact_mut(c)
        .zip(top.chunks_exact(2 * c).zip(bottom.chunks_exact(2 * c)));
    for (o, (t, b)) in pixels {
        let (t0, t1) = t.split_at(c);
        let (b0, b1) = b.split_at(c);
        let window = t0.iter().zip(t1).zip(b0.iter().zip(b1));
        for (v, ((&a, &b), (&d, &e))) in o.iter_mut().zip(window) {
            *v = a.max(b).max(d.max(e)).max(lo).min(hi);
        }
    }
}
