//! Helpers shared by the unit tests.

use seeded_rng::SplitMix64;

/// `n` values uniform in [-1, 1).
pub fn random(n: usize, rng: &mut SplitMix64) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(1.0)).collect()
}

/// Largest absolute difference of two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// Dot product in f64.
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(a, b)| (*a as f64) * (*b as f64))
        .sum()
}
