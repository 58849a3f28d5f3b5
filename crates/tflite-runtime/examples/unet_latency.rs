//! End-to-end latency of the random-weight U-Net (fms=16, 128×128, int8 and f32) in
//! tflite-runtime (reference kernels and the best tier), beside LiteRT BUILTIN_REF and LiteRT's default path
//! (XNNPACK, 1 thread), measured in one run on the same models:
//!
//! `cargo run --release -p tflite-runtime --example unet_latency -- [RUNS] [OUT_DIR]`
//!
//! (`cargo xtask runtime-bench` does the same and also writes a report; this example needs no
//! training stack to build.)

use std::path::PathBuf;
use std::time::Instant;
use tflite_runtime::synth::{Rng, UNetSpec, unet};
use tflite_runtime::{Interpreter, KernelTier, Options, RuntimeError};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "artifacts/runtime".into()));
    std::fs::create_dir_all(&out)?;
    println!(
        "| model | tflite-runtime reference (median ms) | tflite-runtime best | LiteRT BUILTIN_REF | LiteRT XNNPACK 1 thread | arena peak bytes |"
    );
    println!("|---|---|---|---|---|---|");
    for int8 in [true, false] {
        let model = unet(UNetSpec {
            fms: 16,
            size: 128,
            in_channels: 1,
            int8,
            seed: 1,
        });
        let kind = if int8 { "int8" } else { "f32" };
        let path = out.join(format!("unet_random_{kind}.tflite"));
        tflite_writer::write_model_file(&model, &path)?;
        let time_tier = |kernels: KernelTier| -> Result<(f64, Interpreter), RuntimeError> {
            let mut interp = Interpreter::new(
                &model,
                Options {
                    kernels,
                    threads: 1,
                },
            )?;
            let mut rng = Rng::new(2);
            if int8 {
                interp.set_input(0, &rng.i8s(128 * 128, -128, 127))?;
            } else {
                interp.set_input(0, &rng.f32s(128 * 128, -2.0, 2.0))?;
            }
            interp.invoke()?;
            let mut times = Vec::new();
            for _ in 0..runs {
                let t = Instant::now();
                interp.invoke()?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(f64::total_cmp);
            Ok((times[times.len() / 2], interp))
        };
        let (ours, interp) = time_tier(KernelTier::Reference)?;
        let (best, best_interp) = time_tier(KernelTier::Best)?;
        let litert =
            litert_oracle::command(["time", &path.to_string_lossy(), &runs.to_string(), "1"])
                .output();
        let (reference, xnnpack) = match litert {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                let v: serde_json::Value =
                    serde_json::from_str(text.lines().last().unwrap_or_default())?;
                (
                    format!(
                        "{:.1}",
                        v["builtin_ref"]["median_ms"].as_f64().unwrap_or(f64::NAN)
                    ),
                    format!(
                        "{:.1}",
                        v["xnnpack_1thread"]["median_ms"]
                            .as_f64()
                            .unwrap_or(f64::NAN)
                    ),
                )
            }
            Ok(o) => {
                eprintln!(
                    "LiteRT timing failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                ("—".into(), "—".into())
            }
            Err(e) => {
                eprintln!("skipped LiteRT: cannot run python3: {e}");
                ("—".into(), "—".into())
            }
        };
        println!(
            "| {kind} | {ours:.1} | {best:.1} ({}) | {reference} | {xnnpack} | {} |",
            best_interp.kernel_tier(),
            interp.memory().arena_bytes
        );
    }
    println!("({runs} timed runs each after one warm-up; one thread)");
    Ok(())
}
