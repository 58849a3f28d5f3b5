//! Prepared, validated parameters of the kernels. Everything here is computed once in
//! `Interpreter::new`; the kernels themselves are infallible.

/// Geometry of a 2D convolution (NHWC input and output, OHWI filter), also used for the
/// transposed convolution, whose "input" is the small tensor and "output" the large one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Batch size.
    pub batches: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Input channels.
    pub in_c: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Output channels.
    pub out_c: usize,
    /// Kernel height.
    pub k_h: usize,
    /// Kernel width.
    pub k_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Vertical dilation.
    pub dilation_h: usize,
    /// Horizontal dilation.
    pub dilation_w: usize,
    /// Padding rows on top (the extra bottom row of odd totals is covered by bounds checks).
    pub pad_top: usize,
    /// Padding columns on the left.
    pub pad_left: usize,
}

impl ConvGeometry {
    /// For a TRANSPOSE_CONV: whether its kernel equals its stride with no padding, so that every
    /// input pixel writes its own disjoint `k_h × k_w` output block (the U-Net's 2×2 stride 2).
    pub fn is_tiling_transpose(&self) -> bool {
        self.k_h == self.stride_h
            && self.k_w == self.stride_w
            && self.pad_top == 0
            && self.pad_left == 0
            && self.out_h == self.in_h * self.stride_h
            && self.out_w == self.in_w * self.stride_w
    }
}

/// Per-output-channel requantisation of an int8 convolution.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvQuantParams {
    /// Input zero point.
    pub input_zero_point: i32,
    /// Output zero point.
    pub output_zero_point: i32,
    /// Q31 multipliers, one per output channel.
    pub multipliers: Vec<i32>,
    /// Shifts, one per output channel.
    pub shifts: Vec<i32>,
    /// Lower clamp (fused activation).
    pub act_min: i32,
    /// Upper clamp (fused activation).
    pub act_max: i32,
}

/// Geometry of a 2D pool (NHWC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGeometry {
    /// Batch size.
    pub batches: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Channels.
    pub channels: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Window height.
    pub filter_h: usize,
    /// Window width.
    pub filter_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Padding rows on top.
    pub pad_top: usize,
    /// Padding columns on the left.
    pub pad_left: usize,
}

/// Quantised ADD parameters (LiteRT's general 8-bit path, `left_shift` 20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddQuantParams {
    /// `-zero_point` of input 1.
    pub input1_offset: i32,
    /// `-zero_point` of input 2.
    pub input2_offset: i32,
    /// Output zero point.
    pub output_offset: i32,
    /// Left shift applied to both inputs before scaling (20 for int8).
    pub left_shift: i32,
    /// Input 1 multiplier.
    pub input1_multiplier: i32,
    /// Input 1 shift (≤ 0).
    pub input1_shift: i32,
    /// Input 2 multiplier.
    pub input2_multiplier: i32,
    /// Input 2 shift (≤ 0).
    pub input2_shift: i32,
    /// Output multiplier.
    pub output_multiplier: i32,
    /// Output shift (≤ 0).
    pub output_shift: i32,
    /// Lower clamp.
    pub act_min: i32,
    /// Upper clamp.
    pub act_max: i32,
}

/// Quantised MUL parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MulQuantParams {
    /// `-zero_point` of input 1.
    pub input1_offset: i32,
    /// `-zero_point` of input 2.
    pub input2_offset: i32,
    /// Output zero point.
    pub output_offset: i32,
    /// Output multiplier.
    pub output_multiplier: i32,
    /// Output shift.
    pub output_shift: i32,
    /// Lower clamp.
    pub act_min: i32,
    /// Upper clamp.
    pub act_max: i32,
}

/// Int8 → int8 rescale (`Requantize`, and the int8 RELU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequantParams {
    /// Input zero point.
    pub input_zero_point: i32,
    /// Output zero point.
    pub output_zero_point: i32,
    /// Multiplier.
    pub multiplier: i32,
    /// Shift.
    pub shift: i32,
    /// Lower clamp.
    pub act_min: i32,
    /// Upper clamp.
    pub act_max: i32,
}

/// Broadcast layout of a binary elementwise op: output shape and the element strides of each
/// input (0 along broadcast dims), all extended to the same rank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastLayout {
    /// Output shape.
    pub out_shape: Vec<usize>,
    /// Strides of input 1 in elements, 0 where it is broadcast.
    pub strides1: Vec<usize>,
    /// Strides of input 2 in elements, 0 where it is broadcast.
    pub strides2: Vec<usize>,
    /// True when both inputs have the output's shape (no index arithmetic needed).
    pub same_shape: bool,
}

impl BroadcastLayout {
    /// Layout for NumPy-style broadcasting of two shapes; `None` if they are incompatible or an
    /// element count overflows `usize`.
    pub fn new(shape1: &[usize], shape2: &[usize]) -> Option<Self> {
        let rank = shape1.len().max(shape2.len());
        let extend = |s: &[usize]| {
            let mut v = vec![1; rank - s.len()];
            v.extend_from_slice(s);
            v
        };
        let (s1, s2) = (extend(shape1), extend(shape2));
        let mut out_shape = Vec::with_capacity(rank);
        for (&a, &b) in s1.iter().zip(&s2) {
            let d = if a == b {
                a
            } else if a == 1 {
                b
            } else if b == 1 {
                a
            } else {
                return None;
            };
            out_shape.push(d);
        }
        // Element counts that overflow `usize` (possible when another dimension is 0, so the
        // tensor holds no bytes) are refused like shapes that do not broadcast.
        out_shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))?;
        let strides = |s: &[usize]| -> Option<Vec<usize>> {
            let mut strides = vec![0; rank];
            let mut acc = 1usize;
            for axis in (0..rank).rev() {
                strides[axis] = if s[axis] == 1 { 0 } else { acc };
                acc = acc.checked_mul(s[axis])?;
            }
            Some(strides)
        };
        Some(Self {
            strides1: strides(&s1)?,
            strides2: strides(&s2)?,
            same_shape: s1 == s2,
            out_shape,
        })
    }

    /// Calls `f(out_index, index1, index2)` for every output element in row-major order.
    #[inline]
    pub fn for_each(&self, mut f: impl FnMut(usize, usize, usize)) {
        let total: usize = self.out_shape.iter().product();
        if self.same_shape {
            for i in 0..total {
                f(i, i, i);
            }
            return;
        }
        let rank = self.out_shape.len();
        let mut index = vec![0usize; rank];
        let (mut i1, mut i2) = (0usize, 0usize);
        for out in 0..total {
            f(out, i1, i2);
            // Increment the multi-index, updating the input offsets incrementally.
            for axis in (0..rank).rev() {
                index[axis] += 1;
                i1 += self.strides1[axis];
                i2 += self.strides2[axis];
                if index[axis] < self.out_shape[axis] {
                    break;
                }
                i1 -= self.strides1[axis] * self.out_shape[axis];
                i2 -= self.strides2[axis] * self.out_shape[axis];
                index[axis] = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_layouts_of_overflowing_shapes_are_refused() {
        // Found by the `runtime_invoke` fuzz target: a zero-size tensor whose other dimensions
        // multiply past usize::MAX overflowed the stride computation.
        let huge = 1usize << 40;
        assert!(BroadcastLayout::new(&[0, huge, huge], &[1]).is_none());
        assert!(BroadcastLayout::new(&[1], &[huge, huge, 0]).is_none());
        let ok = BroadcastLayout::new(&[2, 1, 3], &[4, 1]).expect("broadcasts");
        assert_eq!(ok.out_shape, vec![2, 4, 3]);
        assert_eq!(ok.strides1, vec![3, 0, 1]);
        assert_eq!(ok.strides2, vec![0, 1, 0]);
    }
}
