//! The compute floor of a quantisation run: the float passes calibration cannot avoid, at the
//! machine's measured f32 peak.
//!
//! `floor = calibration slices × FLOPs of one float pass / f32 peak`, where a pass's FLOPs are
//! twice its multiply-accumulates (`tflite_runtime::profile::op_macs`: convolutions and
//! transposed convolutions) and the peak is measured here, not looked up: every worker thread
//! runs independent chains of fused multiply-adds on the widest vectors the CPU has (AVX-512F,
//! AVX2+FMA, NEON, or scalar `mul_add`), enough chains to cover the FMA latency on both FMA
//! pipes, for a few tens of milliseconds. On a 2.45 GHz Zen 3 core that is 2 pipes × 8 lanes × 2
//! FLOPs per cycle; the measurement includes whatever clock the machine really runs at.

use std::time::Instant;

use serde::Serialize;
use tflite_writer::Model;

/// A measured f32 peak.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct F32Peak {
    /// FLOP/s over all threads, in GFLOP/s.
    pub gflops: f64,
    /// Threads that ran at once.
    pub threads: usize,
    /// The instructions used (`avx512f`, `avx2+fma`, `neon`, `scalar`).
    pub isa: &'static str,
}

/// The floor of a run and how close the run came to it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ComputeFloor {
    /// FLOPs of one float pass (2 × multiply-accumulates).
    pub flops_per_pass: f64,
    /// Calibration passes.
    pub passes: usize,
    /// The measured peak.
    pub peak: F32Peak,
    /// `passes × flops_per_pass / peak`, in seconds.
    pub floor_s: f64,
    /// The whole command's wall time, in seconds.
    pub achieved_s: f64,
}

impl ComputeFloor {
    /// `achieved / floor`.
    pub fn ratio(&self) -> f64 {
        self.achieved_s / self.floor_s
    }

    /// One line for the terminal and the reports.
    pub fn line(&self) -> String {
        format!(
            "compute floor: {} calibration passes × {:.3} GFLOP at the measured f32 peak {:.1} GFLOP/s \
             ({} threads, {}) = {:.3} s; whole command {:.3} s = {:.2}× the floor",
            self.passes,
            self.flops_per_pass / 1e9,
            self.peak.gflops,
            self.peak.threads,
            self.peak.isa,
            self.floor_s,
            self.achieved_s,
            self.ratio()
        )
    }
}

/// FLOPs of one pass of `model`: twice the multiply-accumulates of its convolutions.
pub fn flops_per_pass(model: &Model) -> f64 {
    2.0 * tflite_runtime::profile::op_macs(model)
        .iter()
        .map(|&m| m as f64)
        .sum::<f64>()
}

/// Independent accumulator chains per thread (≥ FMA latency × FMA pipes on current cores).
const CHAINS: usize = 12;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fma_avx512(iterations: u64) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm512_set1_ps(0.999_999);
    let b = _mm512_set1_ps(1e-7);
    let mut acc = [_mm512_set1_ps(1.0); CHAINS];
    for _ in 0..iterations {
        for x in &mut acc {
            *x = _mm512_fmadd_ps(*x, a, b);
        }
    }
    acc.iter().map(|&x| _mm512_reduce_add_ps(x)).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_avx2(iterations: u64) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm256_set1_ps(0.999_999);
    let b = _mm256_set1_ps(1e-7);
    let mut acc = [_mm256_set1_ps(1.0); CHAINS];
    for _ in 0..iterations {
        for x in &mut acc {
            *x = _mm256_fmadd_ps(*x, a, b);
        }
    }
    let mut lanes = [0.0f32; 8];
    let mut total = 0.0;
    for x in acc {
        // SAFETY: `lanes` holds 8 f32, the width of one unaligned 256-bit store.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), x) };
        total += lanes.iter().sum::<f32>();
    }
    total
}

#[cfg(target_arch = "aarch64")]
fn fma_neon(iterations: u64) -> f32 {
    use std::arch::aarch64::*;
    // SAFETY: NEON is part of the aarch64 baseline.
    unsafe {
        let a = vdupq_n_f32(0.999_999);
        let b = vdupq_n_f32(1e-7);
        let mut acc = [vdupq_n_f32(1.0); CHAINS];
        for _ in 0..iterations {
            for x in &mut acc {
                *x = vfmaq_f32(b, *x, a);
            }
        }
        acc.iter().map(|&x| vaddvq_f32(x)).sum()
    }
}

fn fma_scalar(iterations: u64) -> f32 {
    let mut acc = [1.0f32; CHAINS];
    for _ in 0..iterations {
        for x in &mut acc {
            *x = x.mul_add(0.999_999, 1e-7);
        }
    }
    acc.iter().sum()
}

/// The widest FMA kernel this CPU runs: (name, lanes, kernel).
fn kernel() -> (&'static str, usize, fn(u64) -> f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was detected at run time.
            return ("avx512f", 16, |n| unsafe { fma_avx512(n) });
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the features were detected at run time.
            return ("avx2+fma", 8, |n| unsafe { fma_avx2(n) });
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        return ("neon", 4, fma_neon);
    }
    #[allow(unreachable_code)]
    ("scalar", 1, fma_scalar)
}

/// Measures the f32 FMA peak with `threads` threads running at once (about 25 ms).
pub fn measure_f32_peak(threads: usize) -> F32Peak {
    let threads = threads.max(1);
    let (isa, lanes, run) = kernel();
    let flops_per_iteration = (CHAINS * lanes * 2) as f64;
    // Size one run to ~25 ms from a short probe on this thread.
    let probe = 20_000u64;
    let start = Instant::now();
    std::hint::black_box(run(std::hint::black_box(probe)));
    let probe_s = start.elapsed().as_secs_f64().max(1e-6);
    let iterations = ((0.025 / probe_s) * probe as f64).clamp(1e4, 1e9) as u64;
    let mut best = 0.0f64;
    for _ in 0..2 {
        let start = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| std::hint::black_box(run(std::hint::black_box(iterations))));
            }
        });
        let seconds = start.elapsed().as_secs_f64();
        let flops = flops_per_iteration * iterations as f64 * threads as f64;
        best = best.max(flops / seconds);
    }
    F32Peak {
        gflops: best / 1e9,
        threads,
        isa,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tflite_runtime::synth::{UNetSpec, unet};

    #[test]
    fn intelai_unet_pass_is_its_published_flop_count() {
        // 128×128, fms=16: 0.755 G multiply-accumulates per pass.
        let model = unet(UNetSpec {
            fms: 16,
            size: 128,
            in_channels: 1,
            int8: false,
            seed: 1,
        });
        let gflop = flops_per_pass(&model) / 1e9;
        assert!((gflop - 1.51).abs() < 0.01, "{gflop}");
    }

    #[test]
    fn the_peak_kernels_agree_and_the_measurement_is_positive() {
        // Every lane of every chain computes the same recurrence as the scalar kernel.
        let (_, lanes, run) = kernel();
        let (a, b) = (run(1000) / lanes as f32, fma_scalar(1000));
        assert!((a / b - 1.0).abs() < 1e-4, "{a} vs {b}");
        let peak = measure_f32_peak(1);
        assert!(peak.gflops > 0.1 && peak.gflops.is_finite(), "{peak:?}");
    }
}
