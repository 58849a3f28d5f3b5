//! Calibration: runs the float model through `tflite-runtime` over the representative dataset
//! and records, for every activation tensor, its exact minimum and maximum and a histogram.
//!
//! The histogram is symmetric around 0 with a power-of-two half range that doubles (merging
//! neighbouring bins) whenever a value falls outside it, so one pass over the data suffices and
//! the result does not depend on the order of the slices beyond floating-point binning.
//! Slices are split between threads; each thread owns an interpreter.

use std::collections::BTreeMap;

use tflite_runtime::{Interpreter, KernelTier, Options, TensorData};
use tflite_writer::Model;

use crate::error::QuantError;

/// Number of histogram bins (over `[-half_range, half_range]`).
pub const BINS: usize = 8192;

/// A histogram over `[-half_range, half_range]` with a growing power-of-two half range.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Half width of the covered range (a power of two).
    pub half_range: f32,
    /// Counts, `BINS` of them.
    pub counts: Vec<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            half_range: 0.0,
            counts: vec![0; BINS],
        }
    }
}

fn pow2_at_least(x: f32) -> f32 {
    let mut r = 2f32.powi(-40);
    while r < x {
        r *= 2.0;
    }
    r
}

impl Histogram {
    /// Width of one bin.
    pub fn bin_width(&self) -> f32 {
        2.0 * self.half_range / BINS as f32
    }

    /// Centre of bin `i`.
    pub fn bin_centre(&self, i: usize) -> f32 {
        -self.half_range + (i as f32 + 0.5) * self.bin_width()
    }

    /// Doubles the half range until it is at least `max_abs`.
    fn grow_to(&mut self, max_abs: f32) {
        if self.half_range == 0.0 {
            self.half_range = pow2_at_least(max_abs);
            return;
        }
        while self.half_range < max_abs {
            let mut merged = vec![0u64; BINS];
            for (i, &c) in self.counts.iter().enumerate() {
                merged[BINS / 4 + i / 2] += c;
            }
            self.counts = merged;
            self.half_range *= 2.0;
        }
    }

    fn add(&mut self, values: &[f32], max_abs: f32) {
        self.grow_to(max_abs);
        let scale = BINS as f32 / (2.0 * self.half_range);
        for &v in values {
            let i = ((v + self.half_range) * scale) as isize;
            self.counts[i.clamp(0, BINS as isize - 1) as usize] += 1;
        }
    }

    fn merge(&mut self, other: &Histogram) {
        let mut other = other.clone();
        let target = self.half_range.max(other.half_range);
        if target == 0.0 {
            return;
        }
        if self.half_range == 0.0 {
            *self = other;
            return;
        }
        if other.half_range > 0.0 {
            self.grow_to(target);
            other.grow_to(target);
            for (a, b) in self.counts.iter_mut().zip(&other.counts) {
                *a += b;
            }
        }
    }

    /// Total count.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// What calibration saw of one tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorStats {
    /// Smallest value.
    pub min: f32,
    /// Largest value.
    pub max: f32,
    /// Number of values.
    pub count: u64,
    /// Value histogram.
    pub histogram: Histogram,
}

impl Default for TensorStats {
    fn default() -> Self {
        Self {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            count: 0,
            histogram: Histogram::default(),
        }
    }
}

impl TensorStats {
    /// Adds values (minimum, maximum and histogram).
    pub fn add(&mut self, values: &[f32]) {
        self.add_observed(values, true);
    }

    /// Adds finite values; the histogram only when `histogram` is set.
    fn add_observed(&mut self, values: &[f32], histogram: bool) {
        if values.is_empty() {
            return;
        }
        let (lo, hi, _) = min_max(values);
        self.add_with_extremes(values, lo, hi, histogram);
    }

    /// [`Self::add_observed`] with the values' extremes already known.
    fn add_with_extremes(&mut self, values: &[f32], lo: f32, hi: f32, histogram: bool) {
        if values.is_empty() {
            return;
        }
        self.min = self.min.min(lo);
        self.max = self.max.max(hi);
        self.count += values.len() as u64;
        if histogram {
            self.histogram.add(values, lo.abs().max(hi.abs()));
        }
    }

    fn merge(&mut self, other: &TensorStats) {
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.count += other.count;
        self.histogram.merge(&other.histogram);
    }
}

/// Minimum, maximum and whether any value is NaN or infinite, in one pass that the compiler
/// vectorises (sixteen independent lanes; a non-finite value makes `v · 0` NaN).
pub fn min_max(values: &[f32]) -> (f32, f32, bool) {
    const LANES: usize = 16;
    let mut lo = [f32::INFINITY; LANES];
    let mut hi = [f32::NEG_INFINITY; LANES];
    let mut bad = [0.0f32; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for c in &mut chunks {
        let Ok(c) = <&[f32; LANES]>::try_from(c) else {
            continue;
        };
        for i in 0..LANES {
            lo[i] = lo[i].min(c[i]);
            hi[i] = hi[i].max(c[i]);
            bad[i] += c[i] * 0.0;
        }
    }
    let (mut l, mut h, mut b) = (f32::INFINITY, f32::NEG_INFINITY, 0.0f32);
    for i in 0..LANES {
        l = l.min(lo[i]);
        h = h.max(hi[i]);
        b += bad[i];
    }
    for &v in chunks.remainder() {
        l = l.min(v);
        h = h.max(v);
        b += v * 0.0;
    }
    (l, h, b != 0.0)
}

/// Which tensors calibration keeps a histogram of (the `percentile` and `mse` observers and the
/// LOGISTIC input search need one; `minmax` needs only the extremes).
#[derive(Debug, Clone)]
pub enum Histograms {
    /// Every tensor.
    All,
    /// Only these tensor indices.
    Only(Vec<usize>),
}

impl Histograms {
    fn wants(&self, tensor: usize) -> bool {
        match self {
            Histograms::All => true,
            Histograms::Only(t) => t.contains(&tensor),
        }
    }
}

/// Statistics of every activation tensor (by tensor index of the float model's subgraph 0).
#[derive(Debug, Clone, Default)]
pub struct CalibrationStats {
    /// Per tensor: the model input and every operator output.
    pub tensors: BTreeMap<usize, TensorStats>,
    /// Slices run.
    pub samples: usize,
    /// Tensors that held a NaN or an infinity (the float model overflowed on the data).
    pub non_finite: Vec<usize>,
    /// Time spent in the observers (min/max and histograms), summed over the worker threads.
    pub observer_thread_s: f64,
    /// The float model's output on the first calibration slices (as many as asked for), in
    /// order: `auto` scores its candidates against them without running the float model again.
    pub outputs: Vec<Vec<f32>>,
}

impl CalibrationStats {
    fn merge(&mut self, other: CalibrationStats) {
        for (t, s) in other.tensors {
            self.tensors.entry(t).or_default().merge(&s);
        }
        self.samples += other.samples;
        self.observer_thread_s += other.observer_thread_s;
        self.outputs.extend(other.outputs);
        for t in other.non_finite {
            if !self.non_finite.contains(&t) {
                self.non_finite.push(t);
            }
        }
    }
}

/// Number of worker threads to use by default (the machine's parallelism, at most 8).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// Runs `work` over chunks of `items` on up to `threads` threads, each with its own interpreter
/// for `model`, and returns the per-chunk results in order.
pub(crate) fn parallel_chunks<T, R, F>(
    model: &Model,
    context: &str,
    items: &[T],
    threads: usize,
    work: F,
) -> Result<Vec<R>, QuantError>
where
    T: Sync,
    R: Send,
    F: Fn(&mut Interpreter, &[T]) -> Result<R, QuantError> + Sync,
{
    let options = Options {
        kernels: KernelTier::Best,
        ..Options::default()
    };
    let proto = Interpreter::new(model, options).map_err(QuantError::runtime(context))?;
    let threads = threads.max(1).min(items.len().max(1));
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                let mut interpreter = proto.clone();
                let work = &work;
                scope.spawn(move || work(&mut interpreter, part))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(QuantError::Tool {
                        tool: "worker thread",
                        detail: format!("{context}: a worker thread panicked"),
                    })
                })
            })
            .collect()
    })
}

/// Runs the float `model` over `images` (each `H·W·C` values) and collects statistics of the
/// input and of every operator output (histograms as `histograms` says), keeping the float
/// output of the first `keep_outputs` slices.
pub fn calibrate(
    model: &Model,
    images: &[Vec<f32>],
    threads: usize,
    histograms: &Histograms,
    keep_outputs: usize,
) -> Result<CalibrationStats, QuantError> {
    let input_tensor = model.subgraphs[0].inputs[0] as usize;
    let indexed: Vec<(usize, &Vec<f32>)> = images.iter().enumerate().collect();
    let parts = parallel_chunks(
        model,
        "calibration (float model)",
        &indexed,
        threads,
        |interpreter, part| {
            let mut stats = CalibrationStats::default();
            for &(index, image) in part {
                interpreter
                    .set_input(0, image)
                    .map_err(QuantError::runtime("calibration input"))?;
                let mut non_finite = Vec::new();
                observe_values(
                    &mut stats.tensors,
                    &mut non_finite,
                    input_tensor,
                    image,
                    histograms.wants(input_tensor),
                );
                let tensors = &mut stats.tensors;
                let mut observing = std::time::Duration::ZERO;
                interpreter
                    .invoke_with_observer(&mut |obs| {
                        let start = std::time::Instant::now();
                        if let TensorData::F32(values) = obs.data {
                            let t = obs.tensor.index;
                            observe_values(
                                tensors,
                                &mut non_finite,
                                t,
                                values,
                                histograms.wants(t),
                            );
                        }
                        observing += start.elapsed();
                    })
                    .map_err(QuantError::runtime("calibration run"))?;
                stats.observer_thread_s += observing.as_secs_f64();
                if index < keep_outputs {
                    stats.outputs.push(
                        interpreter
                            .output::<f32>(0)
                            .map_err(QuantError::runtime("calibration output"))?
                            .to_vec(),
                    );
                }
                for t in non_finite {
                    if !stats.non_finite.contains(&t) {
                        stats.non_finite.push(t);
                    }
                }
                stats.samples += 1;
            }
            Ok(stats)
        },
    )?;
    let mut total = CalibrationStats::default();
    for part in parts {
        total.merge(part);
    }
    Ok(total)
}

/// Adds `values` to the statistics of tensor `t`, dropping NaN and infinities (and noting them).
fn observe_values(
    tensors: &mut BTreeMap<usize, TensorStats>,
    non_finite: &mut Vec<usize>,
    t: usize,
    values: &[f32],
    histogram: bool,
) {
    let stats = tensors.entry(t).or_default();
    let (lo, hi, non_finite_values) = min_max(values);
    if non_finite_values {
        non_finite.push(t);
        let finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
        stats.add_observed(&finite, histogram);
    } else {
        stats.add_with_extremes(values, lo, hi, histogram);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_max_finds_extremes_and_non_finite_values_anywhere() {
        let values: Vec<f32> = (0..37).map(|i| ((i * 11) % 37) as f32 - 18.0).collect();
        assert_eq!(min_max(&values), (-18.0, 18.0, false));
        for at in [0, 5, 31, 36] {
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let mut v = values.clone();
                v[at] = bad;
                assert!(min_max(&v).2, "{bad} at {at}");
            }
        }
        assert_eq!(min_max(&[2.5]), (2.5, 2.5, false));
        let mut s = TensorStats::default();
        s.add_observed(&values, false);
        assert_eq!((s.min, s.max, s.count), (-18.0, 18.0, 37));
        assert_eq!(s.histogram.total(), 0);
    }

    #[test]
    fn histogram_grows_and_keeps_counts() {
        let mut h = Histogram::default();
        h.add(&[0.1, -0.2, 0.3], 0.3);
        assert_eq!(h.half_range, 0.5);
        h.add(&[3.0], 3.0);
        assert_eq!(h.half_range, 4.0);
        assert_eq!(h.total(), 4);
        // 0.3 must still be in a bin whose centre is within one bin width of it.
        let w = h.bin_width();
        let near = (0..BINS).any(|i| h.counts[i] > 0 && (h.bin_centre(i) - 0.3).abs() <= w);
        assert!(near);
    }

    #[test]
    fn merge_of_histograms_equals_single_pass() {
        let values: Vec<f32> = (0..1000)
            .map(|i| ((i * 37) % 101) as f32 / 10.0 - 5.0)
            .collect();
        let mut single = TensorStats::default();
        single.add(&values[..10]);
        single.add(&values[10..]);
        let mut a = TensorStats::default();
        a.add(&values[..10]);
        let mut b = TensorStats::default();
        b.add(&values[10..]);
        a.merge(&b);
        assert_eq!(a.count, single.count);
        assert_eq!(a.min, single.min);
        assert_eq!(a.max, single.max);
        assert_eq!(a.histogram.half_range, single.histogram.half_range);
        assert_eq!(a.histogram.total(), single.histogram.total());
    }
}
