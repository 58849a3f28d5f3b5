//! Geometric augmentation applied identically to image and mask: flips and rot90 on square
//! slices. (The random crop offset of the decathlon source lives in `decathlon.rs`.)

use crate::rng::Rng;

/// One draw of the geometric augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Augmentation {
    /// Mirror top-bottom.
    pub flip_rows: bool,
    /// Mirror left-right.
    pub flip_cols: bool,
    /// Counter-clockwise quarter turns, 0..4.
    pub quarter_turns: u8,
}

impl Augmentation {
    /// Draws flips (p = 0.5 each) and a uniform number of quarter turns.
    pub fn random(rng: &mut Rng) -> Self {
        Self {
            flip_rows: rng.chance(0.5),
            flip_cols: rng.chance(0.5),
            quarter_turns: rng.below(4) as u8,
        }
    }

    /// Applies the transform to a square `size`×`size` row-major buffer.
    pub fn apply(&self, data: &[f32], size: usize) -> Vec<f32> {
        debug_assert_eq!(data.len(), size * size);
        let last = size - 1;
        let mut out = vec![0.0f32; data.len()];
        for row in 0..size {
            for col in 0..size {
                // Output (row, col) takes input at the inverse-transformed position: undo the
                // rotation first, then the flips.
                let (mut r, mut c) = (row, col);
                for _ in 0..self.quarter_turns {
                    // Inverse of a counter-clockwise turn ((r, c) -> (last - c, r)).
                    (r, c) = (c, last - r);
                }
                if self.flip_rows {
                    r = last - r;
                }
                if self.flip_cols {
                    c = last - c;
                }
                out[row * size + col] = data[r * size + c];
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_quarter_turns_are_identity_and_one_turn_is_ccw() {
        let size = 4;
        let data: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let one = Augmentation {
            quarter_turns: 1,
            ..Default::default()
        };
        let mut turned = data.clone();
        for _ in 0..4 {
            turned = one.apply(&turned, size);
        }
        assert_eq!(turned, data);
        // Counter-clockwise: the top-right corner moves to the top-left.
        let once = one.apply(&data, size);
        assert_eq!(once[0], data[3]);
        let flip = Augmentation {
            flip_cols: true,
            ..Default::default()
        };
        assert_eq!(flip.apply(&data, size)[0], 3.0);
    }
}
