//! Int8 and int16 MAX_POOL_2D over whole channel vectors (the compiler vectorises the
//! per-channel maximum), identical to the reference: the maximum over the in-image part of the
//! window, starting from the type's minimum, then the activation clamp.

use crate::frame::PoolGeometry;

/// Int8 max pool, bit-identical to `reference::pool::max_pool_i8`.
pub fn max_pool_i8(g: &PoolGeometry, act: (i32, i32), input: &[i8], output: &mut [i8]) {
    let clamp = |v: i32| v.clamp(-128, 127) as i8;
    max_pool(g, (clamp(act.0), clamp(act.1)), i8::MIN, input, output);
}

/// Int16 max pool (16x8 models), bit-identical to `reference::pool::max_pool_i16`.
pub fn max_pool_i16(g: &PoolGeometry, act: (i32, i32), input: &[i16], output: &mut [i16]) {
    let clamp = |v: i32| v.clamp(-32768, 32767) as i16;
    max_pool(g, (clamp(act.0), clamp(act.1)), i16::MIN, input, output);
}

fn max_pool<T: Copy + Ord>(
    g: &PoolGeometry,
    (lo, hi): (T, T),
    min: T,
    input: &[T],
    output: &mut [T],
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
    let mut pixels = output.chunks_exact_mut(c);
    for b in 0..g.batches {
        for oy in 0..g.out_h {
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
    }
}
