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

/// The calibration method: one observer, or `auto` (each observer, keep the best output SQNR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Method {
    /// One observer.
    Fixed(Observer),
    /// Try every observer and keep the model with the best output SQNR against fp32 on the
    /// first calibration slices.
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

/// How a LOGISTIC input range was chosen (see [`logistic_input_range`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LogisticFit {
    /// The range the observer chose.
    pub observer_range: (f32, f32),
    /// The range chosen against the error after the int8 LOGISTIC.
    pub chosen_range: (f32, f32),
    /// SQNR of the int8 LOGISTIC output over the calibration histogram with the observer's range.
    pub observer_sqnr_db: f64,
    /// The same with the chosen range.
    pub chosen_sqnr_db: f64,
    /// The ceiling: the output grid (1/256, −128) alone, with an exact input.
    pub ceiling_sqnr_db: f64,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn db(signal: f64, noise: f64) -> f64 {
    if noise <= 0.0 {
        f64::INFINITY
    } else {
        10.0 * (signal.max(1e-300) / noise).log10()
    }
}

/// Squared error, after the int8 LOGISTIC (its 256-entry table, output `out`), of the histogram
/// `bins` quantised on the int8 grid of `[lo, hi]`.
fn logistic_error(bins: &[(f32, f32, u64)], lo: f32, hi: f32, out: (f32, i32)) -> f64 {
    let Some((scale, zp)) = qparams(lo, hi) else {
        return f64::INFINITY;
    };
    let lut = tflite_runtime::reference::logistic::logistic_lut_i8(scale, zp, out.0, out.1);
    let inv = 1.0 / scale;
    let mut err = 0.0f64;
    for &(centre, target, count) in bins {
        let q = ((centre * inv).round() as i32 + zp).clamp(-128, 127);
        let y = out.0 * (i32::from(lut[(q as i8) as u8 as usize]) - out.1) as f32;
        let e = f64::from(target - y);
        err += e * e * count as f64;
    }
    err
}

/// The input range of a tensor read only by an int8 LOGISTIC whose output parameters are `out`
/// (1/256, −128 in TFLite): chosen against the error *after* the sigmoid, over the calibration
/// histogram, starting from the observer's range `observed`. The sigmoid is flat beyond about
/// ±6, so a range that clips there loses nothing after it, while its finer grid helps every
/// value in between; the search tries the observed bounds and bounds of ±0.5 … ±24 inside them.
pub fn logistic_input_range(
    stats: &TensorStats,
    observed: (f32, f32),
    out: (f32, i32),
) -> LogisticFit {
    // The histogram merged 8 bins to 1 (1024 bins over the range: finer than any candidate's
    // int8 grid), so the search costs milliseconds.
    const MERGE: usize = 8;
    let h = &stats.histogram;
    let bins: Vec<(f32, f32, u64)> = (0..BINS / MERGE)
        .filter_map(|j| {
            let counts = &h.counts[j * MERGE..(j + 1) * MERGE];
            let n: u64 = counts.iter().sum();
            if n == 0 {
                return None;
            }
            let mean = counts
                .iter()
                .enumerate()
                .map(|(k, &c)| f64::from(h.bin_centre(j * MERGE + k)) * c as f64)
                .sum::<f64>()
                / n as f64;
            let c = mean as f32;
            Some((c, sigmoid(c), n))
        })
        .collect();
    let signal: f64 = bins
        .iter()
        .map(|&(_, y, n)| f64::from(y) * f64::from(y) * n as f64)
        .sum();
    let ceiling_noise: f64 = bins
        .iter()
        .map(|&(_, y, n)| {
            let q = ((y / out.0).round() as i32 + out.1).clamp(-128, 127);
            let e = f64::from(y - out.0 * (q - out.1) as f32);
            e * e * n as f64
        })
        .sum();
    let (lo0, hi0) = observed;
    let bounds = |limit: f32, sign: f32| -> Vec<f32> {
        let mut v = vec![limit];
        v.extend(
            (1..=48)
                .map(|k| sign * k as f32 * 0.5)
                .filter(|b| b.abs() < limit.abs()),
        );
        v
    };
    let observer_err = logistic_error(&bins, lo0, hi0, out);
    let mut best = (observer_err, (lo0, hi0));
    for &lo in &bounds(lo0.min(0.0), -1.0) {
        for &hi in &bounds(hi0.max(0.0), 1.0) {
            let err = logistic_error(&bins, lo, hi, out);
            if err < best.0 {
                best = (err, (lo, hi));
            }
        }
    }
    LogisticFit {
        observer_range: observed,
        chosen_range: best.1,
        observer_sqnr_db: db(signal, observer_err),
        chosen_sqnr_db: db(signal, best.0),
        ceiling_sqnr_db: db(signal, ceiling_noise),
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
    fn logistic_input_range_clips_where_the_sigmoid_is_flat() {
        // Logits of a confident segmentation: most pixels far below 0, a few far above, a
        // spread in between.
        let mut values: Vec<f32> = (0..20_000)
            .map(|i| -30.0 + (i % 100) as f32 * 0.1)
            .collect();
        values.extend((0..2_000).map(|i| 5.0 + (i % 100) as f32 * 0.1));
        values.extend((0..2_000).map(|i| -6.0 + (i % 120) as f32 * 0.1));
        let s = stats(&values);
        let observed = observed_range(&s, Observer::MinMax, 99.99);
        let fit = logistic_input_range(&s, observed, (1.0 / 256.0, -128));
        let (lo, hi) = fit.chosen_range;
        assert!(lo > -20.0 && lo < -4.0, "lo {lo}");
        assert!(hi < 14.9 && hi > 4.0, "hi {hi}");
        assert!(
            fit.chosen_sqnr_db > fit.observer_sqnr_db + 3.0,
            "{} vs {}",
            fit.chosen_sqnr_db,
            fit.observer_sqnr_db
        );
        assert!(fit.chosen_sqnr_db <= fit.ceiling_sqnr_db + 1e-9);
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
