//! Observers: from a tensor's calibration statistics to the float range its int8 grid covers.
//!
//! - `minmax`: the observed minimum and maximum.
//! - `percentile`: clips the tails at the given percentile (both tails for signed tensors, only
//!   the upper one for non-negative tensors), read from the histogram.
//! - `mse`: the range, among shrunk versions of the min/max range, whose int8 grid reproduces the
//!   calibration histogram with the smallest squared error (rounding plus clipping).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::calibrate::{BINS, TensorStats};

/// How to turn statistics into a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Observer {
    /// Observed minimum and maximum.
    MinMax,
    /// Percentile clipping.
    Percentile,
    /// Minimum int8 reconstruction error.
    Mse,
}

impl Observer {
    /// All observers, in the order `auto` tries them.
    pub const ALL: [Observer; 3] = [Observer::MinMax, Observer::Percentile, Observer::Mse];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Observer::MinMax => "minmax",
            Observer::Percentile => "percentile",
            Observer::Mse => "mse",
        }
    }
}

impl fmt::Display for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The calibration method: one observer, or `auto` (each observer, keep the best Dice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Method {
    /// One observer.
    Fixed(Observer),
    /// Try every observer and keep the model with the best held-out Dice.
    Auto,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::Fixed(o) => o.fmt(f),
            Method::Auto => f.write_str("auto"),
        }
    }
}

impl FromStr for Method {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "minmax" => Ok(Method::Fixed(Observer::MinMax)),
            "percentile" => Ok(Method::Fixed(Observer::Percentile)),
            "mse" => Ok(Method::Fixed(Observer::Mse)),
            "auto" => Ok(Method::Auto),
            other => Err(format!(
                "unknown method {other:?}, expected minmax, percentile, mse or auto"
            )),
        }
    }
}

/// Affine int8 parameters covering `[lo, hi]` (widened to include 0): `scale = (hi−lo)/255`,
/// `zero_point = round(−128 − lo/scale)`. Returns `None` when the range is empty.
pub fn qparams(lo: f32, hi: f32) -> Option<(f32, i32)> {
    let lo = f64::from(lo.min(0.0));
    let hi = f64::from(hi.max(0.0));
    let width = hi - lo;
    if width.is_nan() || width <= 0.0 || !width.is_finite() {
        return None;
    }
    let scale = (width / 255.0) as f32;
    if scale <= 0.0 || !scale.is_finite() {
        return None;
    }
    let zero_point = (-128.0 - lo / f64::from(scale))
        .round()
        .clamp(-128.0, 127.0) as i32;
    Some((scale, zero_point))
}

/// Squared error of representing the histogram with the int8 grid of `[lo, hi]`.
fn grid_error(bins: &[(f32, u64)], lo: f32, hi: f32) -> f64 {
    let Some((scale, zp)) = qparams(lo, hi) else {
        return f64::INFINITY;
    };
    let inv = 1.0 / scale;
    let mut err = 0.0f64;
    for &(centre, count) in bins {
        let q = ((centre * inv).round() as i32 + zp).clamp(-128, 127);
        let e = centre - scale * (q - zp) as f32;
        err += f64::from(e * e) * count as f64;
    }
    err
}

/// The histogram quantile `fraction` in `[0, 1]`: the upper edge of the first bin whose
/// cumulative count reaches it (`upper`), or the lower edge of the last bin below it.
fn quantile(stats: &TensorStats, fraction: f64, upper: bool) -> f32 {
    let h = &stats.histogram;
    let total = h.total() as f64;
    if total == 0.0 {
        return 0.0;
    }
    let target = fraction * total;
    let mut cumulative = 0.0;
    for (i, &c) in h.counts.iter().enumerate() {
        cumulative += c as f64;
        if cumulative >= target && c > 0 {
            let edge = -h.half_range + i as f32 * h.bin_width();
            return if upper { edge + h.bin_width() } else { edge };
        }
    }
    h.half_range
}

/// The range `observer` chooses for a tensor (`percentile` in (50, 100], e.g. 99.99).
pub fn observed_range(stats: &TensorStats, observer: Observer, percentile: f64) -> (f32, f32) {
    if stats.count == 0 {
        return (0.0, 0.0);
    }
    let (min, max) = (stats.min.min(0.0), stats.max.max(0.0));
    match observer {
        Observer::MinMax => (min, max),
        Observer::Percentile => {
            let p = (percentile / 100.0).clamp(0.5, 1.0);
            let hi = quantile(stats, p, true).clamp(0.0, max);
            let lo = if stats.min >= 0.0 {
                0.0
            } else {
                quantile(stats, 1.0 - p, false).clamp(min, 0.0)
            };
            (lo, hi)
        }
        Observer::Mse => {
            let h = &stats.histogram;
            let bins: Vec<(f32, u64)> = (0..BINS)
                .filter(|&i| h.counts[i] > 0)
                .map(|i| (h.bin_centre(i), h.counts[i]))
                .collect();
            let mut best = (f64::INFINITY, (min, max));
            // Shrink factors 1.00, 0.99, …, 0.20 of the min/max range.
            for k in 0..=80 {
                let alpha = 1.0 - k as f32 * 0.01;
                let (lo, hi) = (min * alpha, max * alpha);
                let err = grid_error(&bins, lo, hi);
                if err < best.0 {
                    best = (err, (lo, hi));
                }
            }
            best.1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(values: &[f32]) -> TensorStats {
        let mut s = TensorStats::default();
        s.add(values);
        s
    }

    #[test]
    fn qparams_relu_range_has_zero_point_minus_128() {
        let (scale, zp) = qparams(0.0, 2.55).unwrap();
        assert!((scale - 0.01).abs() < 1e-7);
        assert_eq!(zp, -128);
        let (_, zp) = qparams(-1.0, 0.0).unwrap();
        assert_eq!(zp, 127);
        assert!(qparams(0.0, 0.0).is_none());
    }

    #[test]
    fn percentile_clips_outliers_and_minmax_keeps_them() {
        let mut values: Vec<f32> = (0..100_000).map(|i| (i % 1000) as f32 / 1000.0).collect();
        values.push(50.0);
        let s = stats(&values);
        assert_eq!(observed_range(&s, Observer::MinMax, 99.99), (0.0, 50.0));
        let (lo, hi) = observed_range(&s, Observer::Percentile, 99.9);
        assert_eq!(lo, 0.0);
        assert!(hi > 0.9 && hi < 1.1, "hi {hi}");
    }

    #[test]
    fn mse_shrinks_a_range_with_a_long_tail() {
        let mut values: Vec<f32> = (0..100_000)
            .map(|i| ((i % 2001) as f32 - 1000.0) / 1000.0)
            .collect();
        values.push(-20.0);
        values.push(20.0);
        let s = stats(&values);
        let (lo, hi) = observed_range(&s, Observer::Mse, 99.99);
        assert!(hi < 20.0 && lo > -20.0, "{lo} {hi}");
        assert!(hi >= 0.9, "{hi}");
    }
}
