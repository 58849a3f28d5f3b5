//! Per-operator times of the int8 U-Net with the best kernels (development aid):
//! `cargo run --release -p tflite-runtime --example int8_ops`.

use std::time::Instant;
use tflite_runtime::synth::{Rng, UNetSpec, unet};
use tflite_runtime::{Interpreter, KernelTier, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model = unet(UNetSpec {
        fms: 16,
        size: 128,
        in_channels: 1,
        int8: true,
        seed: 1,
    });
    let mut interp = Interpreter::new(
        &model,
        Options {
            kernels: KernelTier::Best,
            threads: 1,
        },
    )?;
    interp.set_input(0, &Rng::new(2).i8s(128 * 128, -128, 127))?;
    let mut all: Vec<Vec<(String, Vec<usize>, f64)>> = Vec::new();
    for _ in 0..15 {
        let mut v = Vec::new();
        let mut last = Instant::now();
        interp.invoke_with_observer(&mut |o| {
            let now = Instant::now();
            v.push((
                o.op.name(),
                o.tensor.shape.clone(),
                (now - last).as_secs_f64() * 1e3,
            ));
            last = Instant::now();
        })?;
        all.push(v);
    }
    for i in 0..all[0].len() {
        let mut t: Vec<f64> = all.iter().map(|r| r[i].2).collect();
        t.sort_by(f64::total_cmp);
        println!(
            "{:>2} {:<16} {:?} min {:.3} ms, median {:.3} ms",
            i,
            all[0][i].0,
            all[0][i].1,
            t[0],
            t[t.len() / 2]
        );
    }
    Ok(())
}
