//! `cargo xtask runtime-bench`: the runtime's end-to-end latency on random-weight U-Nets (int8
//! and f32), beside LiteRT's reference kernels (`BUILTIN_REF`) and LiteRT's default path
//! (XNNPACK, 1 thread), all measured in the same run on the same machine and models.
//!
//! Writes `OUT/unet_random_int8.tflite`, `OUT/unet_random_f32.tflite`, a synthetic slice
//! `OUT/slice.npy` (for `cargo xtask infer`), and `OUT/runtime_bench.{json,md}`.

use anyhow::Context;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use tflite_runtime::npy::{NpyArray, NpyData, write_npy};
use tflite_runtime::synth::{UNetSpec, parameter_count, unet};
use tflite_runtime::{Interpreter, Options};

use crate::infer::write_atomic;

/// Arguments of `cargo xtask runtime-bench`.
#[derive(Debug, clap::Args)]
pub struct RuntimeBenchArgs {
    /// Output directory for the models, the sample slice and the report.
    #[arg(long, default_value = "artifacts/runtime")]
    pub out: PathBuf,
    /// Feature maps of the first U-Net level.
    #[arg(long, default_value_t = 16)]
    pub fms: usize,
    /// Input height and width (divisible by 16).
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Timed runs per backend.
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// Untimed warm-up runs per backend.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Seed of the random weights and the sample slice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Skip LiteRT (when `python3 -c 'import ai_edge_litert'` is not available).
    #[arg(long)]
    pub no_litert: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn time_ours(
    model_path: &Path,
    slice: &[f32],
    args: &RuntimeBenchArgs,
) -> anyhow::Result<serde_json::Value> {
    let model = tflite_writer::read_model_file(model_path)?;
    let t0 = Instant::now();
    let mut interp = Interpreter::new(&model, Options::default())?;
    let prepare_ms = t0.elapsed().as_secs_f64() * 1e3;
    let info = interp.input_info(0)?.clone();
    match info.per_tensor_quant() {
        Some((scale, zp)) if info.dtype == tflite_writer::TensorType::Int8 => {
            let mut q = vec![0i8; slice.len()];
            tflite_runtime::reference::quantize::quantize_f32_i8(scale, zp, slice, &mut q);
            interp.set_input(0, &q)?;
        }
        _ => interp.set_input(0, slice)?,
    }
    for _ in 0..args.warmup {
        interp.invoke()?;
    }
    let mut times = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let t = Instant::now();
        interp.invoke()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let memory = interp.memory();
    Ok(json!({
        "median_ms": median(times.clone()),
        "min_ms": times.iter().cloned().fold(f64::INFINITY, f64::min),
        "runs": args.runs,
        "prepare_ms": prepare_ms,
        "kernels": interp.kernel_tier(),
        "arena_bytes": memory.arena_bytes,
        "unshared_activation_bytes": memory.unshared_bytes,
        "scratch_bytes": memory.scratch_bytes,
        "constant_bytes": memory.constant_bytes,
    }))
}

fn time_litert(model_path: &Path, args: &RuntimeBenchArgs) -> anyhow::Result<serde_json::Value> {
    let script = crate::project_root().join("crates/tflite-runtime/scripts/litert_oracle.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg("time")
        .arg(model_path)
        .arg(args.runs.to_string())
        .arg(args.warmup.to_string())
        .output()
        .context("running python3 (pass --no-litert to skip LiteRT)")?;
    anyhow::ensure!(
        out.status.success(),
        "LiteRT timing of {} failed (pass --no-litert to skip): {}",
        model_path.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("parsing LiteRT timing output {last:?}"))
}

fn git_commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(crate::project_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Runs `cargo xtask runtime-bench`.
pub fn run(args: &RuntimeBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.size >= 16 && args.size.is_multiple_of(16),
        "--size {} must be a positive multiple of 16",
        args.size
    );
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    let slice = unet_data::phantom(args.seed, args.size);
    let slice_path = args.out.join("slice.npy");
    write_atomic(
        &slice_path,
        &write_npy(&NpyArray {
            shape: vec![1, args.size, args.size, 1],
            data: NpyData::F32(slice.image.clone()),
        }),
    )?;
    let mut rows = Vec::new();
    let mut report = Vec::new();
    for int8 in [true, false] {
        let model = unet(UNetSpec {
            fms: args.fms,
            size: args.size,
            in_channels: 1,
            int8,
            seed: args.seed,
        });
        let kind = if int8 { "int8" } else { "f32" };
        let path = args.out.join(format!("unet_random_{kind}.tflite"));
        let bytes = tflite_writer::write_model(&model)?;
        write_atomic(&path, &bytes)?;
        tracing::info!(model = %path.display(), params = parameter_count(&model), "timing tflite-runtime");
        let ours = time_ours(&path, &slice.image, args)?;
        let litert = if args.no_litert {
            serde_json::Value::Null
        } else {
            tracing::info!(model = %path.display(), "timing LiteRT");
            time_litert(&path, args)?
        };
        let ms = |v: &serde_json::Value| {
            v["median_ms"]
                .as_f64()
                .map_or("—".to_string(), |x| format!("{x:.1}"))
        };
        rows.push(format!(
            "| {kind} | {} | {} | {} | {} |",
            ms(&ours),
            ms(&litert["builtin_ref"]),
            ms(&litert["xnnpack_1thread"]),
            ours["arena_bytes"]
        ));
        report.push(json!({
            "model": kind,
            "path": path,
            "parameters": parameter_count(&model),
            "tflite_runtime_reference": ours,
            "litert": litert,
        }));
    }
    let command: Vec<String> = std::env::args().collect();
    let header = format!(
        "U-Net fms={} {}×{}, random weights (seed {}), {} timed runs after {} warm-up, one thread; median ms.",
        args.fms, args.size, args.size, args.seed, args.runs, args.warmup
    );
    let md = format!(
        "# tflite-runtime end-to-end latency\n\n{header}\n\n\
         | model | tflite-runtime (reference kernels) | LiteRT BUILTIN_REF | LiteRT XNNPACK 1 thread | arena peak bytes |\n\
         |---|---|---|---|---|\n{}\n\ncommand: `{}`, commit {}\n",
        rows.join("\n"),
        command.join(" "),
        git_commit()
    );
    let full = json!({
        "command": command,
        "commit": git_commit(),
        "fms": args.fms,
        "size": args.size,
        "seed": args.seed,
        "runs": args.runs,
        "warmup": args.warmup,
        "results": report,
    });
    write_atomic(
        &args.out.join("runtime_bench.json"),
        serde_json::to_string_pretty(&full)?.as_bytes(),
    )?;
    write_atomic(&args.out.join("runtime_bench.md"), md.as_bytes())?;
    println!("{md}");
    println!(
        "wrote {}/{{unet_random_int8,unet_random_f32}}.tflite, slice.npy, runtime_bench.{{json,md}}",
        args.out.display()
    );
    Ok(())
}
