//! Latency of the int8 U-Net (fms=16, 128×128) with the fast kernels, per path, and a per-op
//! profile: `cargo run --release -p tflite-runtime --example int8_fast -- [RUNS]`.

use std::time::Instant;
use tflite_runtime::profile::{conv_macs, profile_op_types};
use tflite_runtime::synth::{Rng, UNetSpec, unet};
use tflite_runtime::{Interpreter, KernelTier, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20);
    let model = unet(UNetSpec {
        fms: 16,
        size: 128,
        in_channels: 1,
        int8: true,
        seed: 1,
    });
    let macs = conv_macs(&model);
    println!("conv MACs: {macs} ({:.3} GOP)", 2.0 * macs as f64 / 1e9);
    let input = Rng::new(2).i8s(128 * 128, -128, 127);
    for tier in [KernelTier::Best, KernelTier::Portable] {
        let mut interp = Interpreter::new(
            &model,
            Options {
                kernels: tier,
                threads: 1,
            },
        )?;
        interp.set_input(0, &input)?;
        interp.invoke()?;
        let mut times = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            interp.invoke()?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "{}: median {median:.2} ms, min {:.2} ms, {:.1} GOPS",
            interp.kernel_tier(),
            times[0],
            2.0 * macs as f64 / median / 1e6
        );
        for t in profile_op_types(&mut interp, runs.min(10))? {
            println!("  {:<16} x{:<3} {:8.3} ms", t.op, t.count, t.median_ms);
        }
    }
    Ok(())
}
