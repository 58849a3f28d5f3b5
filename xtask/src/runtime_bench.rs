//! `cargo xtask runtime-bench`: the runtime's end-to-end latency on random-weight U-Nets (int8
//! and f32), beside LiteRT's reference kernels (`BUILTIN_REF`) and LiteRT's default path
//! (XNNPACK, 1 thread), all measured in the same run on the same machine and models.
//!
//! Ours runs with the best kernels (`KernelTier::Best`: the fast int8 path chosen from the CPU's
//! features); `--with-reference` also times our reference kernels. For int8 it prints our
//! median and LiteRT XNNPACK's, their ratio, our GOPS (2·MACs counted from the model's conv
//! geometry) and its fraction of `--peak-gops`, and a per-op-type profile of ours.
//!
//! With `--threads N` it also times both at N threads, and (when LiteRT's C library is found)
//! runs ours and XNNPACK at 1 and N threads taking turns, round by round
//! ([`unet_bench::backend::time_interleaved`]), for ratios that a drifting machine speed does not
//! bias.
//!
//! Writes `OUT/unet_random_int8.tflite`, `OUT/unet_random_f32.tflite`, a synthetic slice
//! `OUT/slice.npy` (for `cargo xtask infer`), and `OUT/runtime_bench.{json,md}`.

use anyhow::Context;
use serde_json::json;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tflite_runtime::npy::{NpyArray, NpyData, write_npy};
use tflite_runtime::profile::{conv_macs, profile_op_types};
use tflite_runtime::synth::{UNetSpec, parameter_count, unet};
use tflite_runtime::{Interpreter, KernelTier, Options};

use artifact_io::write_atomic;
use unet_bench::backend::{Engine, LoadError, time_interleaved};
use unet_bench::backends::litert::{Accelerator, LiteRtConfig, LiteRtEngine};
use unet_bench::backends::rust::RustEngine;

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
    /// Skip LiteRT. Without it, LiteRT is skipped with the reason printed when `python3` cannot
    /// import `ai_edge_litert`.
    #[arg(long)]
    pub no_litert: bool,
    /// Also time our reference kernels (slow: about a second per int8 run).
    #[arg(long)]
    pub with_reference: bool,
    /// Also time ours and LiteRT XNNPACK with this many threads (in the same run, beside the
    /// one-thread rows), for the scaling figures.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
    /// The int8 peak the GOPS figure is compared with (default: the AVX-512 VNNI figure
    /// for the Sapphire Rapids machine, ≈590 GOPS; pass this CPU's own peak where known).
    #[arg(long, default_value_t = 590.0)]
    pub peak_gops: f64,
    /// With --threads > 1: timed invokes per engine and round of the round-by-round table
    /// (ours and LiteRT XNNPACK, one thread and --threads, taking turns; --runs in all).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub round_block: u16,
}

/// The median of `v` (the mean of the middle two for an even count; NaN when empty).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
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
    kernels: KernelTier,
    threads: usize,
) -> anyhow::Result<serde_json::Value> {
    let model = tflite_writer::read_model_file(model_path)?;
    let t0 = Instant::now();
    let mut interp = Interpreter::new(&model, Options { kernels, threads })?;
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
    let macs = conv_macs(&model);
    let median_ms = median(times.clone());
    let profile: Vec<serde_json::Value> = profile_op_types(&mut interp, args.runs.min(10))?
        .into_iter()
        .map(|t| json!({"op": t.op, "count": t.count, "median_ms": t.median_ms}))
        .collect();
    Ok(json!({
        "conv_macs": macs,
        "gops": 2.0 * macs as f64 / median_ms / 1e6,
        "profile": profile,
        "median_ms": median(times.clone()),
        "min_ms": times.iter().cloned().fold(f64::INFINITY, f64::min),
        "runs": args.runs,
        "prepare_ms": prepare_ms,
        "kernels": interp.kernel_tier(),
        "threads": threads,
        "arena_bytes": memory.arena_bytes,
        "unshared_activation_bytes": memory.unshared_bytes,
        "scratch_bytes": memory.scratch_bytes,
        "constant_bytes": memory.constant_bytes,
    }))
}

fn time_litert(model_path: &Path, args: &RuntimeBenchArgs) -> anyhow::Result<serde_json::Value> {
    let runs = args.runs.to_string();
    let warmup = args.warmup.to_string();
    let threads = args.threads.to_string();
    let text = litert_oracle::run([
        OsStr::new("time"),
        model_path.as_os_str(),
        OsStr::new(&runs),
        OsStr::new(&warmup),
        OsStr::new(&threads),
    ])
    .map_err(|e| anyhow::anyhow!("LiteRT timing (pass --no-litert to skip): {e}"))?;
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("parsing LiteRT timing output {last:?}"))
}

/// Ours and LiteRT XNNPACK (LiteRT's C API from `libLiteRt.so`, in this process), each with one
/// thread and with `threads`, timed round by round ([`time_interleaved`]: every round runs all
/// four once, in a rotating order), so the speedups and ratios come from the same minutes of a
/// machine whose speed drifts. Ratios are medians of the per-round ratios.
fn time_interleaved_threads(
    path: &Path,
    int8: bool,
    image: &[f32],
    args: &RuntimeBenchArgs,
    threads: usize,
) -> anyhow::Result<serde_json::Value> {
    let want = if int8 {
        tflite_writer::TensorType::Int8
    } else {
        tflite_writer::TensorType::Float32
    };
    let litert = |threads| {
        LiteRtEngine::new(LiteRtConfig {
            model: path.to_path_buf(),
            accelerator: Accelerator::Cpu,
            threads,
            library: None,
            dispatch_dir: None,
        })
    };
    let (mut ours_1, mut ours_n) = (
        RustEngine::new(path.to_path_buf(), want, 1),
        RustEngine::new(path.to_path_buf(), want, threads),
    );
    let (mut xnnpack_1, mut xnnpack_n) = (litert(1), litert(threads));
    let mut engines: [&mut dyn Engine; 4] =
        [&mut ours_1, &mut ours_n, &mut xnnpack_1, &mut xnnpack_n];
    for engine in engines.iter_mut() {
        engine.load().map_err(|e| match e {
            LoadError::Unavailable(why) => anyhow::anyhow!("{why}"),
            LoadError::Failed(e) => anyhow::anyhow!(e),
        })?;
        engine.set_input(image)?;
    }
    let block = usize::from(args.round_block);
    let rounds = args.runs.div_ceil(block);
    let times = time_interleaved(&mut engines, 1, rounds, block)?;
    let ratio =
        |a: usize, b: usize| median(times[a].iter().zip(&times[b]).map(|(x, y)| x / y).collect());
    Ok(json!({
        "rounds": rounds,
        "invokes_per_round": args.round_block,
        "threads": threads,
        "ours_1thread_ms": median(times[0].clone()),
        "ours_threads_ms": median(times[1].clone()),
        "xnnpack_1thread_ms": median(times[2].clone()),
        "xnnpack_threads_ms": median(times[3].clone()),
        "ours_speedup": ratio(0, 1),
        "xnnpack_speedup": ratio(2, 3),
        "ours_to_xnnpack_1thread": ratio(0, 2),
        "ours_to_xnnpack_threads": ratio(1, 3),
    }))
}

/// Why LiteRT cannot be timed on this machine (`python3` cannot import `ai_edge_litert`), if
/// it cannot; a LiteRT that imports but fails to time the model is an error instead.
fn litert_unavailable() -> Option<String> {
    litert_oracle::probe_litert()
        .err()
        .map(|why| format!("{why} (python3 -m pip install ai-edge-litert)"))
}

/// Runs `cargo xtask runtime-bench`.
pub fn run(args: &RuntimeBenchArgs) -> anyhow::Result<()> {
    measure(args).map(|_| ())
}

/// Runs `cargo xtask runtime-bench` and returns its report (the `runtime_bench.json` it writes).
pub fn measure(args: &RuntimeBenchArgs) -> anyhow::Result<serde_json::Value> {
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
    let mut profiles = Vec::new();
    let mut report = Vec::new();
    let mut scaling: Vec<String> = Vec::new();
    let mut interleaved_rows: Vec<String> = Vec::new();
    let litert_skipped = if args.no_litert {
        Some("--no-litert".to_string())
    } else {
        litert_unavailable()
    };
    if let Some(why) = &litert_skipped {
        println!("LiteRT columns skipped: {why}");
    }
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
        let ours = time_ours(&path, &slice.image, args, KernelTier::Best, 1)?;
        let threads = usize::from(args.threads);
        let ours_threads = if threads > 1 {
            tracing::info!(model = %path.display(), threads, "timing tflite-runtime");
            time_ours(&path, &slice.image, args, KernelTier::Best, threads)?
        } else {
            serde_json::Value::Null
        };
        let ours_reference = if args.with_reference {
            tracing::info!(model = %path.display(), "timing tflite-runtime reference kernels");
            time_ours(&path, &slice.image, args, KernelTier::Reference, 1)?
        } else {
            serde_json::Value::Null
        };
        let litert = if litert_skipped.is_some() {
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
        let ratio = match (
            ours["median_ms"].as_f64(),
            litert["xnnpack_1thread"]["median_ms"].as_f64(),
        ) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let gops = ours["gops"].as_f64().unwrap_or(f64::NAN);
        rows.push(format!(
            "| {kind} | {} ({}) | {} | {} | {} | {} | {:.1} | {:.1}% | {} |",
            ms(&ours),
            ours["kernels"].as_str().unwrap_or("?"),
            ms(&ours_reference),
            ms(&litert["builtin_ref"]),
            ms(&litert["xnnpack_1thread"]),
            ratio.map_or("—".to_string(), |r| format!("{r:.2}×")),
            gops,
            100.0 * gops / args.peak_gops,
            ours["arena_bytes"]
        ));
        let mut lines = Vec::new();
        for p in ours["profile"].as_array().into_iter().flatten() {
            lines.push(format!(
                "| {kind} | {} | {} | {:.3} |",
                p["op"].as_str().unwrap_or("?"),
                p["count"],
                p["median_ms"].as_f64().unwrap_or(f64::NAN)
            ));
        }
        profiles.push(lines.join("\n"));
        if threads > 1 {
            let xnn_n = &litert[format!("xnnpack_{threads}threads")];
            let speedup = |one: &serde_json::Value, many: &serde_json::Value| match (
                one["median_ms"].as_f64(),
                many["median_ms"].as_f64(),
            ) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
                _ => "—".into(),
            };
            let ratio_n = match (
                ours_threads["median_ms"].as_f64(),
                xnn_n["median_ms"].as_f64(),
            ) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
                _ => "—".into(),
            };
            scaling.push(format!(
                "| {kind} | {threads} | {} | {} | {} | {} | {ratio_n} |",
                ms(&ours_threads),
                speedup(&ours, &ours_threads),
                ms(xnn_n),
                speedup(&litert["xnnpack_1thread"], xnn_n),
            ));
        }
        let interleaved = if threads > 1 && litert_skipped.is_none() {
            tracing::info!(model = %path.display(), threads, "timing ours and XNNPACK round by round");
            match time_interleaved_threads(&path, int8, &slice.image, args, threads) {
                Ok(v) => {
                    let x = |key: &str| v[key].as_f64().unwrap_or(f64::NAN);
                    interleaved_rows.push(format!(
                        "| {kind} | {threads} | {:.1} | {:.1} | {:.2}× | {:.1} | {:.1} | {:.2}× | {:.2}× | {:.2}× |",
                        x("ours_1thread_ms"),
                        x("ours_threads_ms"),
                        x("ours_speedup"),
                        x("xnnpack_1thread_ms"),
                        x("xnnpack_threads_ms"),
                        x("xnnpack_speedup"),
                        x("ours_to_xnnpack_1thread"),
                        x("ours_to_xnnpack_threads"),
                    ));
                    v
                }
                Err(e) => {
                    println!("round-by-round timing skipped: {e:#}");
                    json!({"skipped": format!("{e:#}")})
                }
            }
        } else {
            serde_json::Value::Null
        };
        report.push(json!({
            "interleaved": interleaved,
            "model": kind,
            "path": path,
            "parameters": parameter_count(&model),
            "tflite_runtime": ours,
            "tflite_runtime_threads": ours_threads,
            "tflite_runtime_reference": ours_reference,
            "litert": litert,
            "ratio_ours_to_xnnpack": ratio,
            "peak_gops": args.peak_gops,
        }));
    }
    let command: Vec<String> = std::env::args().collect();
    let header = format!(
        "U-Net fms={} {}×{}, random weights (seed {}), {} timed runs after {} warm-up, one thread unless said; median ms. \
         GOPS = 2·(conv + transposed-conv MACs, from the model's shapes) / our median; % of peak against --peak-gops {}.",
        args.fms, args.size, args.size, args.seed, args.runs, args.warmup, args.peak_gops
    );
    let load = unet_bench::sys::load_average();
    let machine = unet_bench::sys::MachineInfo::detect();
    let commit =
        unet_bench::sys::git_commit(&crate::project_root()).unwrap_or_else(|| "unknown".into());
    let md = format!(
        "# tflite-runtime end-to-end latency\n\n{header}\n\n{}\n\n\
         | model | tflite-runtime best (kernel_tier: the int8 path) | tflite-runtime reference | LiteRT BUILTIN_REF | LiteRT XNNPACK 1 thread | ours / XNNPACK | our GOPS | % of peak | arena peak bytes |\n\
         |---|---|---|---|---|---|---|---|---|\n{}\n\n\
         {}Per-op-type profile of ours (median ms per invoke):\n\n| model | op | count | ms |\n|---|---|---|---|\n{}\n\n\
         load average at the end: {load}; command: `{}`, commit {commit}\n",
        machine.summary(),
        rows.join("\n"),
        if scaling.is_empty() {
            String::new()
        } else {
            format!(
                "Threads (same run): ours and LiteRT XNNPACK with --threads against their own one-thread medians.\n\n\
                 | model | threads | ours ms | ours speedup | XNNPACK ms | XNNPACK speedup | ours / XNNPACK |\n\
                 |---|---|---|---|---|---|---|\n{}\n\n{}",
                scaling.join("\n"),
                if interleaved_rows.is_empty() {
                    String::new()
                } else {
                    format!(
                        "Round by round (ours and LiteRT XNNPACK (C API, in this process), one thread and --threads, take \
                         turns in a rotating order, each for one untimed and {} timed invokes per round; ratios are \
                         medians of the ratios of invokes timed in the same round):\n\n\
                         | model | threads | ours 1 thread ms | ours N ms | ours speedup | XNNPACK 1 thread ms | XNNPACK N ms | XNNPACK speedup | ours / XNNPACK 1 thread | ours / XNNPACK N |\n\
                         |---|---|---|---|---|---|---|---|---|---|\n{}\n\n",
                        args.round_block,
                        interleaved_rows.join("\n")
                    )
                }
            )
        },
        profiles.join("\n"),
        command.join(" "),
    );
    let full = json!({
        "command": command,
        "commit": commit,
        "machine": machine,
        "fms": args.fms,
        "size": args.size,
        "seed": args.seed,
        "runs": args.runs,
        "warmup": args.warmup,
        "load_average": load,
        "litert_skipped": litert_skipped,
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
    Ok(full)
}
