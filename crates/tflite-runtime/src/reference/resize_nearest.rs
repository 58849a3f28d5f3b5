//! RESIZE_NEAREST_NEIGHBOR on raw bytes (`reference_ops::ResizeNearestNeighbor`), with
//! TensorFlow's `align_corners` and `half_pixel_centers` coordinate rules.

/// Source coordinate of output coordinate `out` (`GetNearestNeighbor`).
pub fn nearest_source(
    out: usize,
    in_size: usize,
    out_size: usize,
    align_corners: bool,
    half_pixel_centers: bool,
) -> usize {
    let scale = if align_corners && out_size > 1 {
        (in_size as i32 - 1) as f32 / (out_size as i32 - 1) as f32
    } else {
        in_size as i32 as f32 / out_size as i32 as f32
    };
    let offset = if half_pixel_centers { 0.5f32 } else { 0.0 };
    let x = (out as i32 as f32 + offset) * scale;
    let mut v = if align_corners {
        x.round() as i32
    } else {
        x.floor() as i32
    };
    v = v.min(in_size as i32 - 1);
    if half_pixel_centers {
        v = v.max(0);
    }
    v.max(0) as usize
}

/// NHWC resize; `pixel_bytes` is `channels · element_size`. `src_y[oy]`/`src_x[ox]` come from
/// [`nearest_source`].
#[allow(clippy::too_many_arguments)]
pub fn resize_nearest(
    batches: usize,
    in_h: usize,
    in_w: usize,
    pixel_bytes: usize,
    src_y: &[usize],
    src_x: &[usize],
    input: &[u8],
    output: &mut [u8],
) {
    let mut pos = 0;
    for b in 0..batches {
        for &iy in src_y {
            for &ix in src_x {
                let start = ((b * in_h + iy) * in_w + ix) * pixel_bytes;
                output[pos..pos + pixel_bytes].copy_from_slice(&input[start..start + pixel_bytes]);
                pos += pixel_bytes;
            }
        }
    }
}
