//! Segmentation metrics, one definition each, shared by training, quantisation and the bench.
//!
//! Three Dice scores are in use and they are not interchangeable, so each has its own name and
//! every report says which one it shows:
//! - **pooled Dice** ([`PooledDice`]): `2·|P∩G| / (|P|+|G|)` with the pixels of all slices
//!   counted together (1 when both are empty). Large tumours weigh more. The bench uses it.
//! - **mean slice Dice** ([`slice_dice`], averaged): IntelAI's `dice_coef` per slice, with a
//!   smoothing term [`DICE_SMOOTH`], then the mean over slices. An empty slice predicted empty
//!   scores 1. Quantisation verification and training validation use it.
//! - **soft Dice**: the same per-slice formula on probabilities instead of thresholded masks;
//!   the training loss is `−log` of it (computed on tensors in `unet-train`).
//!
//! Training's running validation metrics ([`SliceDiceMeans`]: mean slice Dice and mean soft
//! Dice) accumulate the same per-slice formulas on the model's own sigmoid outputs, unchecked.
//!
//! Predictions are probabilities, thresholded at 0.5 (`p > 0.5` is tumour, which is what
//! rounding half to even gives on `[0, 1]`). Inputs are checked: a mask must be 0/1 and a
//! prediction a finite value in `[0, 1]`; anything else is a [`MetricError`], never a silent
//! Dice above 1 or a NaN counted as background.

use std::fmt;

/// The smoothing term of the per-slice Dice (IntelAI's `smooth`).
pub const DICE_SMOOTH: f64 = 1e-4;

/// How far outside `[0, 1]` a probability may lie before it counts as not a probability
/// (dequantised int8 outputs land exactly on the grid, so this only absorbs float rounding).
const PROBABILITY_SLACK: f32 = 1e-4;

/// Why a metric could not be computed.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricError {
    /// A prediction is NaN, infinite or outside `[0, 1]` (the model has no sigmoid output?).
    NotAProbability {
        /// Pixel index within the slice.
        pixel: usize,
        /// The value.
        value: f32,
    },
    /// A ground-truth value is not 0 or 1.
    NotABinaryMask {
        /// Pixel index within the slice.
        pixel: usize,
        /// The value.
        value: f32,
    },
    /// Prediction and mask differ in length.
    LengthMismatch {
        /// Prediction values.
        prediction: usize,
        /// Mask values.
        mask: usize,
    },
}

impl fmt::Display for MetricError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricError::NotAProbability { pixel, value } => write!(
                f,
                "prediction {value} at pixel {pixel} is not a probability in [0, 1]; Dice needs the model's sigmoid output"
            ),
            MetricError::NotABinaryMask { pixel, value } => write!(
                f,
                "mask value {value} at pixel {pixel} is not 0 or 1; ground-truth masks must be binary"
            ),
            MetricError::LengthMismatch { prediction, mask } => write!(
                f,
                "prediction has {prediction} values but the mask has {mask}"
            ),
        }
    }
}

impl std::error::Error for MetricError {}

/// Checks that every value of `mask` is exactly 0 or 1.
pub fn check_mask(mask: &[f32]) -> Result<(), MetricError> {
    match mask.iter().position(|&m| m != 0.0 && m != 1.0) {
        Some(pixel) => Err(MetricError::NotABinaryMask {
            pixel,
            value: mask[pixel],
        }),
        None => Ok(()),
    }
}

/// Checks that every value of `probabilities` is finite and within `[0, 1]`.
pub fn check_probabilities(probabilities: &[f32]) -> Result<(), MetricError> {
    let bad = |p: f32| !(-PROBABILITY_SLACK..=1.0 + PROBABILITY_SLACK).contains(&p);
    match probabilities.iter().position(|&p| bad(p)) {
        Some(pixel) => Err(MetricError::NotAProbability {
            pixel,
            value: probabilities[pixel],
        }),
        None => Ok(()),
    }
}

fn checked(probabilities: &[f32], mask: &[f32]) -> Result<(), MetricError> {
    if probabilities.len() != mask.len() {
        return Err(MetricError::LengthMismatch {
            prediction: probabilities.len(),
            mask: mask.len(),
        });
    }
    check_probabilities(probabilities)?;
    check_mask(mask)
}

/// Pixel counts of one slice: (|P∩G|, |P|, |G|).
fn counts(probabilities: &[f32], mask: &[f32]) -> (u64, u64, u64) {
    let (mut both, mut predicted, mut truth) = (0u64, 0u64, 0u64);
    for (&p, &m) in probabilities.iter().zip(mask) {
        let p = p > 0.5;
        let m = m == 1.0;
        both += u64::from(p && m);
        predicted += u64::from(p);
        truth += u64::from(m);
    }
    (both, predicted, truth)
}

/// The per-slice Dice of thresholded predictions (IntelAI's `dice_coef` with [`DICE_SMOOTH`]);
/// average it over slices for the **mean slice Dice**.
pub fn slice_dice(probabilities: &[f32], mask: &[f32]) -> Result<f64, MetricError> {
    checked(probabilities, mask)?;
    let (both, predicted, truth) = counts(probabilities, mask);
    Ok((2.0 * both as f64 + DICE_SMOOTH) / ((predicted + truth) as f64 + DICE_SMOOTH))
}

/// The **pooled Dice** over slices: pixel counts summed over every slice added.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PooledDice {
    intersection: u64,
    predicted: u64,
    truth: u64,
    slices: usize,
}

impl PooledDice {
    /// Adds one slice: probabilities (thresholded at 0.5) and its 0/1 mask. A bad slice is
    /// refused and leaves the counts unchanged.
    pub fn add(&mut self, probabilities: &[f32], mask: &[f32]) -> Result<(), MetricError> {
        checked(probabilities, mask)?;
        let (both, predicted, truth) = counts(probabilities, mask);
        self.intersection += both;
        self.predicted += predicted;
        self.truth += truth;
        self.slices += 1;
        Ok(())
    }

    /// Slices added.
    pub fn slices(&self) -> usize {
        self.slices
    }

    /// The pooled Dice; `None` when no slice was added, 1 when prediction and truth are both
    /// empty.
    pub fn finish(&self) -> Option<f64> {
        if self.slices == 0 {
            return None;
        }
        let denominator = self.predicted + self.truth;
        Some(if denominator == 0 {
            1.0
        } else {
            2.0 * self.intersection as f64 / denominator as f64
        })
    }
}

/// Per-slice Dice of thresholded predictions and soft Dice of the probabilities, averaged over
/// the slices added: training's validation metrics (IntelAI's `dice_coef` and
/// `soft_dice_coef`). Unchecked, because the inputs are the model's own sigmoid outputs and the
/// dataset's masks; sums are in f64.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SliceDiceMeans {
    hard_sum: f64,
    soft_sum: f64,
    slices: usize,
}

impl SliceDiceMeans {
    /// Adds one slice (probabilities and its mask, equally long).
    pub fn add(&mut self, probabilities: &[f32], mask: &[f32]) {
        let (mut inter_hard, mut union_hard, mut inter_soft, mut union_soft) =
            (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for (&p, &t) in probabilities.iter().zip(mask) {
            let (p, t) = (f64::from(p), f64::from(t));
            // Rounding half to even on [0, 1] is the `p > 0.5` threshold.
            let rounded = p.round_ties_even();
            inter_hard += rounded * t;
            union_hard += rounded + t;
            inter_soft += p * t;
            union_soft += p + t;
        }
        self.hard_sum += (2.0 * inter_hard + DICE_SMOOTH) / (union_hard + DICE_SMOOTH);
        self.soft_sum += (2.0 * inter_soft + DICE_SMOOTH) / (union_soft + DICE_SMOOTH);
        self.slices += 1;
    }

    /// The mean slice Dice (0 when no slice was added).
    pub fn mean_slice_dice(&self) -> f64 {
        self.mean(self.hard_sum)
    }

    /// The mean soft Dice (0 when no slice was added).
    pub fn mean_soft_dice(&self) -> f64 {
        self.mean(self.soft_sum)
    }

    /// Slices added.
    pub fn slices(&self) -> usize {
        self.slices
    }

    fn mean(&self, sum: f64) -> f64 {
        if self.slices == 0 {
            0.0
        } else {
            sum / self.slices as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_dice_of_identical_disjoint_and_empty() {
        let m = [1.0, 0.0, 1.0, 0.0];
        assert!((slice_dice(&m, &m).unwrap() - 1.0).abs() < 1e-9);
        assert!(slice_dice(&[0.0, 1.0, 0.0, 1.0], &m).unwrap() < 1e-4);
        assert!((slice_dice(&[0.2, 0.4], &[0.0, 0.0]).unwrap() - 1.0).abs() < 1e-12);
        // 0.5 is background (round half to even), 0.51 tumour.
        assert!(slice_dice(&[0.5], &[1.0]).unwrap() < 1e-4);
        assert!((slice_dice(&[0.51], &[1.0]).unwrap() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn pooled_dice_counts_pixels_over_slices() {
        let mut acc = PooledDice::default();
        assert!(acc.finish().is_none());
        acc.add(&[0.9, 0.9, 0.1, 0.1], &[1.0, 0.0, 1.0, 0.0])
            .unwrap();
        assert!((acc.finish().unwrap() - 0.5).abs() < 1e-12);
        let mut empty = PooledDice::default();
        empty.add(&[0.1, 0.2], &[0.0, 0.0]).unwrap();
        assert_eq!(empty.finish(), Some(1.0));
    }

    #[test]
    fn values_that_are_not_probabilities_or_masks_are_refused() {
        // A logit output: the rounding formula used to give Dice 8.28-like values above 1.
        let err = slice_dice(&[8.28, 0.0], &[1.0, 0.0]).unwrap_err();
        assert_eq!(
            err,
            MetricError::NotAProbability {
                pixel: 0,
                value: 8.28
            }
        );
        assert!(err.to_string().contains("sigmoid"), "{err}");
        assert!(matches!(
            slice_dice(&[0.0, f32::NAN], &[1.0, 0.0]),
            Err(MetricError::NotAProbability { pixel: 1, .. })
        ));
        assert!(matches!(
            slice_dice(&[0.0, 0.0], &[255.0, 0.0]),
            Err(MetricError::NotABinaryMask { pixel: 0, .. })
        ));
        assert!(matches!(
            slice_dice(&[0.0, 0.0], &[f32::NAN, 0.0]),
            Err(MetricError::NotABinaryMask { .. })
        ));
        assert!(matches!(
            slice_dice(&[0.0], &[0.0, 0.0]),
            Err(MetricError::LengthMismatch { .. })
        ));
        let mut acc = PooledDice::default();
        assert!(acc.add(&[0.9], &[f32::NAN]).is_err());
        assert_eq!(acc.slices(), 0);
        assert_eq!(acc.finish(), None);
    }

    #[test]
    fn slice_dice_means_agree_with_slice_dice_on_binary_inputs() {
        let slices: [(&[f32], &[f32]); 2] = [
            (&[0.9, 0.2, 0.7, 0.1], &[1.0, 0.0, 0.0, 0.0]),
            (&[0.1, 0.2], &[0.0, 0.0]),
        ];
        let mut means = SliceDiceMeans::default();
        let mut expected = 0.0;
        for (p, m) in slices {
            means.add(p, m);
            expected += slice_dice(p, m).unwrap();
        }
        assert_eq!(means.slices(), 2);
        assert!((means.mean_slice_dice() - expected / 2.0).abs() < 1e-12);
        // Soft Dice of the first slice: 2·0.9 / (0.9+0.2+0.7+0.1 + 1); of the second, whose mask
        // is empty, smooth / (0.1+0.2 + smooth): the probabilities count against it.
        let soft =
            ((1.8 + DICE_SMOOTH) / (2.9 + DICE_SMOOTH) + DICE_SMOOTH / (0.3 + DICE_SMOOTH)) / 2.0;
        assert!((means.mean_soft_dice() - soft).abs() < 1e-6);
        assert_eq!(SliceDiceMeans::default().mean_slice_dice(), 0.0);
    }
}
