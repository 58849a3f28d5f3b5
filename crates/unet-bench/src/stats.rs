//! Latency statistics and output agreement (LSB difference, Dice).

use serde::Serialize;

/// Summary of a list of latencies in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// Number of measured runs.
    pub count: usize,
    /// Fastest run.
    pub min: f64,
    /// 10th percentile (the lower whisker of `latency.svg`), when known.
    pub p10: Option<f64>,
    /// Median, when known (TFLite's `benchmark_model` prints it only in newer versions).
    pub median: Option<f64>,
    /// Arithmetic mean.
    pub mean: f64,
    /// 90th percentile, when known.
    pub p90: Option<f64>,
    /// 99th percentile, when known.
    pub p99: Option<f64>,
    /// Slowest run.
    pub max: f64,
    /// Population standard deviation.
    pub std: f64,
    /// Inferences per second at the mean latency.
    pub throughput: f64,
}

/// The `q`-quantile (0..=1) of sorted values, linearly interpolated between closest ranks
/// (NumPy's default method).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = pos.ceil() as usize;
            let frac = pos - lo as f64;
            sorted[lo] + (sorted[hi] - sorted[lo]) * frac
        }
    }
}

impl Stats {
    /// Statistics of `samples_ms` (milliseconds); `None` for an empty list.
    pub fn from_samples(samples_ms: &[f64]) -> Option<Stats> {
        if samples_ms.is_empty() {
            return None;
        }
        let mut sorted = samples_ms.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let mean = sorted.iter().sum::<f64>() / n;
        let var = sorted.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        Some(Stats {
            count: sorted.len(),
            min: sorted[0],
            p10: Some(quantile(&sorted, 0.10)),
            median: Some(quantile(&sorted, 0.50)),
            mean,
            p90: Some(quantile(&sorted, 0.90)),
            p99: Some(quantile(&sorted, 0.99)),
            max: sorted[sorted.len() - 1],
            std: var.sqrt(),
            throughput: if mean > 0.0 {
                1000.0 / mean
            } else {
                f64::INFINITY
            },
        })
    }

    /// The median if known, else the mean (what speedups and the chart use).
    pub fn central(&self) -> f64 {
        self.median.unwrap_or(self.mean)
    }
}

/// How far a backend's int8 output is from the `rust-int8` reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    /// Largest absolute difference in int8 steps (LSB) over all pixels of all slices.
    pub max_lsb: u32,
    /// Share of pixels (0..=1) whose int8 value differs.
    pub differing_share: f64,
    /// Number of pixels compared.
    pub pixels: usize,
    /// True when the backend's output was float and was quantised to the reference's output
    /// scale and zero point before comparing.
    pub quantized_from_float: bool,
}

/// Accumulates [`Agreement`] over slices.
#[derive(Debug, Default, Clone)]
pub struct AgreementAcc {
    max_lsb: u32,
    differing: usize,
    pixels: usize,
}

impl AgreementAcc {
    /// Adds one slice: reference and candidate int8 outputs of equal length.
    pub fn add(&mut self, reference: &[i8], candidate: &[i8]) {
        for (&a, &b) in reference.iter().zip(candidate) {
            let d = (i32::from(a) - i32::from(b)).unsigned_abs();
            self.max_lsb = self.max_lsb.max(d);
            self.differing += usize::from(d != 0);
        }
        self.pixels += reference.len().min(candidate.len());
    }

    /// The result (`None` if nothing was compared).
    pub fn finish(&self, quantized_from_float: bool) -> Option<Agreement> {
        (self.pixels > 0).then(|| Agreement {
            max_lsb: self.max_lsb,
            differing_share: self.differing as f64 / self.pixels as f64,
            pixels: self.pixels,
            quantized_from_float,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_known_samples() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Stats::from_samples(&samples).expect("non-empty");
        assert_eq!(s.count, 100);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.max, 100.0);
        assert!((s.mean - 50.5).abs() < 1e-12);
        assert!((s.median.unwrap() - 50.5).abs() < 1e-12);
        // NumPy: np.percentile(np.arange(1, 101), 90) == 90.1, 99 -> 99.01, 10 -> 10.9
        assert!((s.p90.unwrap() - 90.1).abs() < 1e-9);
        assert!((s.p99.unwrap() - 99.01).abs() < 1e-9);
        assert!((s.p10.unwrap() - 10.9).abs() < 1e-9);
        // np.std(np.arange(1, 101)) == 28.86607004772212
        assert!((s.std - 28.866_070_047_722_12).abs() < 1e-9);
        assert!((s.throughput - 1000.0 / 50.5).abs() < 1e-9);
        assert!(Stats::from_samples(&[]).is_none());
    }

    #[test]
    fn agreement_counts_lsb_and_share() {
        let mut acc = AgreementAcc::default();
        acc.add(&[0, 1, 2, 3], &[0, 1, 5, 2]);
        acc.add(&[-128, 127], &[-128, 127]);
        let a = acc.finish(false).expect("compared");
        assert_eq!(a.max_lsb, 3);
        assert_eq!(a.pixels, 6);
        assert!((a.differing_share - 2.0 / 6.0).abs() < 1e-12);
        let mut extreme = AgreementAcc::default();
        extreme.add(&[-128], &[127]);
        assert_eq!(extreme.finish(false).unwrap().max_lsb, 255);
    }
}
