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
    /// Adds values.
    pub fn add(&mut self, values: &[f32]) {
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for &v in values {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if values.is_empty() {
            return;
        }
        self.min = self.min.min(lo);
        self.max = self.max.max(hi);
        self.count += values.len() as u64;
        self.histogram.add(values, lo.abs().max(hi.abs()));
    }

    fn merge(&mut self, other: &TensorStats) {
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.count += other.count;
        self.histogram.merge(&other.histogram);
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
}

impl CalibrationStats {
    fn merge(&mut self, other: CalibrationStats) {
        for (t, s) in other.tensors {
            self.tensors.entry(t).or_default().merge(&s);
        }
        self.samples += other.samples;
        self.observer_thread_s += other.observer_thread_s;
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
/// input and of every operator output.
pub fn calibrate(
    model: &Model,
    images: &[Vec<f32>],
    threads: usize,
) -> Result<CalibrationStats, QuantError> {
    let input_tensor = model.subgraphs[0].inputs[0] as usize;
    let parts = parallel_chunks(
        model,
        "calibration (float model)",
        images,
        threads,
        |interpreter, part| {
            let mut stats = CalibrationStats::default();
            for image in part {
                interpreter
                    .set_input(0, image)
                    .map_err(QuantError::runtime("calibration input"))?;
                stats.tensors.entry(input_tensor).or_default().add(image);
                let mut non_finite = Vec::new();
                let tensors = &mut stats.tensors;
                let mut observing = std::time::Duration::ZERO;
                interpreter
                    .invoke_with_observer(&mut |obs| {
                        let start = std::time::Instant::now();
                        if let TensorData::F32(values) = obs.data {
                            if values.iter().any(|v| !v.is_finite()) {
                                non_finite.push(obs.tensor.index);
                                let finite: Vec<f32> =
                                    values.iter().copied().filter(|v| v.is_finite()).collect();
                                tensors.entry(obs.tensor.index).or_default().add(&finite);
                            } else {
                                tensors.entry(obs.tensor.index).or_default().add(values);
                            }
                        }
                        observing += start.elapsed();
                    })
                    .map_err(QuantError::runtime("calibration run"))?;
                stats.observer_thread_s += observing.as_secs_f64();
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

#[cfg(test)]
mod tests {
    use super::*;

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
