//! Losses and metrics of IntelAI's `2D/model.py`.
//!
//! - [`dice_loss`]: `−log(2·mean(Σ p·t + s)) + log(mean(Σ t + Σ p + s))`, sums over H and W,
//!   means over the batch, `s = 1e-4` (IntelAI's `dice_coef_loss`).
//! - [`bce_with_logits`]: binary cross-entropy, computed from logits for stability (Keras computes
//!   it from clipped probabilities; the two agree away from saturation).
//! - [`LossKind::Combined`]: `0.85 · dice + 0.15 · BCE` (`combined_dice_ce_loss`).
//! - [`DiceStats`]: the metrics `dice_coef` (predictions rounded) and `soft_dice_coef`, per sample,
//!   averaged over everything seen.

use burn::tensor::Tensor;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

/// IntelAI's smoothing constant.
pub const SMOOTH: f32 = 1e-4;
/// IntelAI's weight of the dice term in the combined loss.
pub const DICE_WEIGHT: f32 = 0.85;

/// Which loss to train with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// −log soft Dice.
    #[default]
    Dice,
    /// 0.85 · dice + 0.15 · BCE.
    Combined,
}

impl LossKind {
    /// The loss (a one-element tensor) for logits and 0/1 targets, both `[B, 1, H, W]`.
    pub fn compute(self, logits: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
        match self {
            LossKind::Dice => dice_loss(sigmoid(logits), target),
            LossKind::Combined => {
                let dice = dice_loss(sigmoid(logits.clone()), target.clone());
                let bce = bce_with_logits(logits, target);
                dice.mul_scalar(DICE_WEIGHT) + bce.mul_scalar(1.0 - DICE_WEIGHT)
            }
        }
    }
}

/// −log soft Dice of probabilities against targets, `[B, C, H, W]` each.
pub fn dice_loss(probs: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    let intersection = (probs.clone() * target.clone()).sum_dims(&[2, 3]);
    let p = probs.sum_dims(&[2, 3]);
    let t = target.sum_dims(&[2, 3]);
    let numerator = intersection.add_scalar(SMOOTH).mean();
    let denominator = (t + p).add_scalar(SMOOTH).mean();
    denominator.log() - numerator.mul_scalar(2.0).log()
}

/// Mean binary cross-entropy of `sigmoid(logits)` against 0/1 targets:
/// `max(z, 0) − z·t + log(1 + e^−|z|)`.
pub fn bce_with_logits(logits: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    let relu_part = logits.clone().clamp_min(0.0);
    let softplus = logits.clone().abs().neg().exp().log1p();
    (relu_part - logits * target + softplus).mean()
}

/// Running Dice metrics over many samples: [`unet_data::metrics::SliceDiceMeans`] (the one
/// definition of the mean slice Dice and mean soft Dice) fed a batch at a time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DiceStats {
    means: unet_data::metrics::SliceDiceMeans,
}

impl DiceStats {
    /// Adds `n_samples` samples: `probs` and `target` hold them one after the other, each
    /// `len / n_samples` values.
    pub fn add(&mut self, probs: &[f32], target: &[f32], n_samples: usize) {
        if n_samples == 0 || probs.len() != target.len() {
            return;
        }
        let per_sample = probs.len() / n_samples;
        for (p, t) in probs.chunks(per_sample).zip(target.chunks(per_sample)) {
            self.means.add(p, t);
        }
    }

    /// Mean slice Dice of rounded predictions (IntelAI's `dice_coef`), 0 when empty.
    pub fn dice(&self) -> f64 {
        self.means.mean_slice_dice()
    }

    /// Mean soft Dice (`soft_dice_coef`), 0 when empty.
    pub fn soft_dice(&self) -> f64 {
        self.means.mean_soft_dice()
    }

    /// Samples seen.
    pub fn samples(&self) -> usize {
        self.means.slices()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn tensor(values: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(values, shape), &Device::flex())
    }

    fn scalar(t: Tensor<1>) -> f32 {
        t.into_scalar::<f32>()
    }

    #[test]
    fn dice_loss_matches_the_intelai_formula_by_hand() {
        // Two samples of 2×2.
        let p = vec![0.9, 0.1, 0.8, 0.2, 0.5, 0.5, 0.0, 1.0];
        let t = vec![1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0];
        let inter = [0.9 + 0.8, 0.5 + 1.0];
        let sums = [(0.9 + 0.1 + 0.8 + 0.2) + 2.0, (0.5 + 0.5 + 0.0 + 1.0) + 2.0];
        let num = (inter[0] + SMOOTH + inter[1] + SMOOTH) / 2.0;
        let den = (sums[0] + SMOOTH + sums[1] + SMOOTH) / 2.0;
        let expected = -(2.0 * num).ln() + den.ln();
        let got = scalar(dice_loss(tensor(p, [2, 1, 2, 2]), tensor(t, [2, 1, 2, 2])));
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
    }

    #[test]
    fn perfect_prediction_has_near_zero_dice_loss() {
        let t = vec![1.0, 0.0, 0.0, 1.0];
        let got = scalar(dice_loss(
            tensor(t.clone(), [1, 1, 2, 2]),
            tensor(t, [1, 1, 2, 2]),
        ));
        assert!(got.abs() < 1e-4, "{got}");
    }

    #[test]
    fn bce_with_logits_matches_probability_form() {
        let z = vec![-3.0f32, -0.5, 0.0, 2.0];
        let t = vec![0.0f32, 1.0, 1.0, 0.0];
        let expected: f32 = z
            .iter()
            .zip(&t)
            .map(|(&z, &t)| {
                let p = 1.0 / (1.0 + (-z).exp());
                -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
            })
            .sum::<f32>()
            / 4.0;
        let got = scalar(bce_with_logits(
            tensor(z, [1, 1, 2, 2]),
            tensor(t, [1, 1, 2, 2]),
        ));
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
    }

    #[test]
    fn combined_loss_weights_dice_and_bce() {
        let z = vec![1.0f32, -1.0, 2.0, -2.0];
        let t = vec![1.0f32, 0.0, 0.0, 1.0];
        let dice = scalar(dice_loss(
            sigmoid(tensor(z.clone(), [1, 1, 2, 2])),
            tensor(t.clone(), [1, 1, 2, 2]),
        ));
        let bce = scalar(bce_with_logits(
            tensor(z.clone(), [1, 1, 2, 2]),
            tensor(t.clone(), [1, 1, 2, 2]),
        ));
        let got =
            scalar(LossKind::Combined.compute(tensor(z, [1, 1, 2, 2]), tensor(t, [1, 1, 2, 2])));
        assert!((got - (0.85 * dice + 0.15 * bce)).abs() < 1e-5);
    }

    #[test]
    fn dice_stats_round_and_average_per_sample() {
        let mut stats = DiceStats::default();
        // Sample 1: rounded prediction equals the target → dice 1. Sample 2: empty target and
        // empty prediction → (0 + s) / (0 + s) = 1 as in IntelAI. Sample 3: disjoint → ~0.
        let probs = [0.9, 0.2, 0.1, 0.3, 1.0, 0.0];
        let target = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0];
        stats.add(&probs, &target, 3);
        assert_eq!(stats.samples(), 3);
        assert!((stats.dice() - 2.0 / 3.0).abs() < 1e-4, "{}", stats.dice());
        assert!(stats.soft_dice() < stats.dice());
    }
}
