//! Cost of the calibration observer (`TensorStats::add`: min/max and histogram) per value, on a
//! ReLU-like tensor (half zeros) and a signed one:
//! `cargo run --release -p unet-quantizer --example observer_cost`.

use std::time::Instant;
use unet_quantizer::calibrate::TensorStats;

fn main() {
    let n = 128 * 128 * 16;
    let mut state = 12345u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let signed: Vec<f32> = (0..n).map(|_| next() * 3.0).collect();
    let relu: Vec<f32> = signed.iter().map(|&v| v.max(0.0)).collect();
    for (name, values) in [("relu (half zeros)", &relu), ("signed", &signed)] {
        let mut stats = TensorStats::default();
        let mut best = f64::INFINITY;
        for _ in 0..30 {
            let t = Instant::now();
            stats.add(values);
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{name:<18} {:.2} ns/value (best of 30, {} values)",
            best * 1e9 / values.len() as f64,
            values.len()
        );
    }
}
