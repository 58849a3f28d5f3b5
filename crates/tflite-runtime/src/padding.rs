//! Output sizes and padding of windowed ops (`tflite/kernels/padding.h`).

use tflite_writer::Padding;

/// `ComputeOutSize`: the output extent of a window of `filter` taps with `dilation` and
/// `stride` over `input` elements. May be ≤ 0 for windows larger than a VALID input.
pub fn out_size(padding: Padding, input: i64, filter: i64, stride: i64, dilation: i64) -> i64 {
    let effective = (filter - 1) * dilation + 1;
    match padding {
        Padding::Same => (input + stride - 1) / stride,
        Padding::Valid => (input + stride - effective) / stride,
    }
}

/// `ComputePaddingWithOffset`: the padding before the first element (the extra odd element at
/// the end is implicit in the kernels' bounds checks).
pub fn leading_padding(stride: i64, dilation: i64, input: i64, filter: i64, output: i64) -> i64 {
    let effective = (filter - 1) * dilation + 1;
    let total = ((output - 1) * stride + effective - input).max(0);
    total / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_examples() {
        // 3×3 s1 SAME: pad 1.
        assert_eq!(out_size(Padding::Same, 10, 3, 1, 1), 10);
        assert_eq!(leading_padding(1, 1, 10, 3, 10), 1);
        // 2×2 s2 max pool, odd input, SAME: out (in+1)/2, pad 0.
        assert_eq!(out_size(Padding::Same, 7, 2, 2, 1), 4);
        assert_eq!(leading_padding(2, 1, 7, 2, 4), 0);
        // VALID with dilation 2 on a 3-tap filter: effective 5.
        assert_eq!(out_size(Padding::Valid, 9, 3, 1, 2), 5);
        // Window larger than the input: no output.
        assert!(out_size(Padding::Valid, 2, 3, 1, 1) <= 0);
    }
}
