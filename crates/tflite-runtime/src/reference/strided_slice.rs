//! STRIDED_SLICE on raw bytes, for any rank, with begin/end/shrink masks already resolved into
//! per-axis `(start, stride, count)` by `Interpreter::new`.

/// Copies the selected elements. `in_shape` is the input shape; `axes[i] = (start, stride,
/// count)` with `start` a valid index and `count ≥ 0` elements taken along axis i.
pub fn strided_slice(
    in_shape: &[usize],
    axes: &[(i64, i64, usize)],
    element_bytes: usize,
    input: &[u8],
    output: &mut [u8],
) {
    let rank = in_shape.len();
    let total: usize = axes.iter().map(|a| a.2).product();
    if total == 0 {
        return;
    }
    let mut in_strides = vec![1i64; rank];
    for axis in (0..rank.saturating_sub(1)).rev() {
        in_strides[axis] = in_strides[axis + 1] * in_shape[axis + 1] as i64;
    }
    let mut index = vec![0usize; rank];
    for out in 0..total {
        let mut offset = 0i64;
        for axis in 0..rank {
            let (start, stride, _) = axes[axis];
            offset += (start + stride * index[axis] as i64) * in_strides[axis];
        }
        let src = offset as usize * element_bytes;
        output[out * element_bytes..(out + 1) * element_bytes]
            .copy_from_slice(&input[src..src + element_bytes]);
        for axis in (0..rank).rev() {
            index[axis] += 1;
            if index[axis] < axes[axis].2 {
                break;
            }
            index[axis] = 0;
        }
    }
}
