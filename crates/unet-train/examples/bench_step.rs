//! Seconds per training step (batch 8, 128×128, fms 16) on Flex, without the xtask:
//! `cargo run --release -p unet-train --example bench_step -- [steps]`
//! (`UNET_TRAIN_CONV=burn` times burn's `conv2d` formulation instead of the shifted GEMMs).

use unet_train::bench::{BenchConfig, bench_steps};

fn main() -> Result<(), unet_train::TrainError> {
    // As `cargo xtask` does: keep freed tensors' memory for the next step.
    unet_train::allocator::retain_freed_memory();
    let steps = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let report = bench_steps(&BenchConfig {
        steps,
        conv: unet_train::conv3x3::conv_impl(),
        ..BenchConfig::default()
    })?;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    Ok(())
}
