//! Per-operator scaling of the fast kernels from one thread to N on the int8 (or, with `f32`,
//! the f32) U-Net (fms=16, 128×128):
//! `cargo run --release -p tflite-runtime --example thread_scaling -- [THREADS] [RUNS] [f32]`.
//! Prints each operator's median time with 1 and N threads and the ratio, then the totals.

use tflite_runtime::profile::profile_ops;
use tflite_runtime::synth::{Rng, UNetSpec, unet};
use tflite_runtime::{Interpreter, KernelTier, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2);
    let runs: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);
    let int8 = args.next().as_deref() != Some("f32");
    let model = unet(UNetSpec {
        fms: 16,
        size: 128,
        in_channels: 1,
        int8,
        seed: 1,
    });
    let mut rng = Rng::new(2);
    let (input_i8, input_f32) = (rng.i8s(128 * 128, -128, 127), rng.f32s(128 * 128, 0.0, 1.0));
    let mut profiles = Vec::new();
    for n in [1, threads] {
        let mut interp = Interpreter::new(
            &model,
            Options {
                kernels: KernelTier::Best,
                threads: n,
            },
        )?;
        if int8 {
            interp.set_input(0, &input_i8)?;
        } else {
            interp.set_input(0, &input_f32)?;
        }
        for _ in 0..3 {
            interp.invoke()?;
        }
        profiles.push(profile_ops(&mut interp, runs)?);
    }
    let (one, many) = (&profiles[0], &profiles[1]);
    println!(
        "{:>3} {:<16} {:<24} {:>9} {:>9} {:>7}",
        "#",
        "op",
        "output",
        "1 thr ms",
        format!("{threads} thr ms"),
        "ratio"
    );
    for (a, b) in one.iter().zip(many) {
        println!(
            "{:>3} {:<16} {:<24} {:>9.3} {:>9.3} {:>6.2}×",
            a.index,
            a.op,
            a.output,
            a.median_ms,
            b.median_ms,
            a.median_ms / b.median_ms.max(1e-9)
        );
    }
    let (t1, tn): (f64, f64) = (
        one.iter().map(|o| o.median_ms).sum(),
        many.iter().map(|o| o.median_ms).sum(),
    );
    println!(
        "total: {t1:.3} ms with 1 thread, {tn:.3} ms with {threads}: {:.2}×",
        t1 / tn
    );
    Ok(())
}
