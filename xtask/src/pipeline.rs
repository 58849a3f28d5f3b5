//! `cargo xtask pipeline`: train → quantize → bench on the embedded synthetic data, with
//! defaults short enough for a fresh 2-core machine, then the artifact list and the table.
//!
//! Each step calls the same function as its own subcommand, with arguments parsed by that
//! subcommand's own parser, so the pipeline cannot drift from `cargo xtask train` etc.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, FromArgMatches};

/// Arguments of `cargo xtask pipeline`.
#[derive(Debug, clap::Args)]
pub struct PipelineArgs {
    /// Artifact root (train/, unet_fp32.tflite, unet_int8.tflite, bench/).
    #[arg(long, default_value = "artifacts")]
    pub out: PathBuf,
    /// Training time budget in minutes: 5 here (`cargo xtask train` allows 8), so that train,
    /// quantize and bench fit in about 15 minutes on a 2-core machine.
    #[arg(long, default_value_t = 5.0, value_parser = crate::train::parse_minutes)]
    pub train_minutes: f64,
    /// Maximum training epochs.
    #[arg(long, default_value_t = 40)]
    pub epochs: usize,
    /// Seed of data and weights.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Quantize: calibration slices.
    #[arg(long, default_value_t = 32)]
    pub calib_samples: usize,
    /// Quantize: held-out slices for verification.
    #[arg(long, default_value_t = 8)]
    pub eval_samples: usize,
    /// Bench: timed runs per backend.
    #[arg(long, default_value_t = 30)]
    pub runs: usize,
    /// Bench: warm-up runs per backend.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Bench: time budget per backend's timed runs, seconds.
    #[arg(long, default_value_t = 20.0, value_parser = unet_bench::cli::parse_seconds)]
    pub max_secs: f64,
    /// Bench: CPU threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Skip training and reuse OUT/train/model.ckpt.
    #[arg(long)]
    pub skip_train: bool,
    /// Skip quantisation and reuse OUT/unet_{fp32,int8}.tflite.
    #[arg(long)]
    pub skip_quantize: bool,
    /// Do not `pip install` the Python tools behind the LiteRT and Vela rows (ai-edge-litert,
    /// ethos-u-vela) when they are missing; those rows then say `skipped: <why>`.
    #[arg(long)]
    pub no_pip_install: bool,
}

/// The Python packages behind the LiteRT and Vela rows: (module to import, pip package).
const PYTHON_TOOLS: [(&str, &str); 3] = [
    ("numpy", "numpy"),
    ("ai_edge_litert", "ai-edge-litert"),
    ("ethosu.vela", "ethos-u-vela"),
];

/// Makes sure LiteRT and Vela are importable, installing the missing ones with pip unless
/// `no_install`. Never fails the pipeline: a missing tool only turns its rows into `skipped`.
fn ensure_python_tools(no_install: bool) {
    let importable = |module: &str| {
        std::process::Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let missing: Vec<&str> = PYTHON_TOOLS
        .iter()
        .filter(|(module, _)| !importable(module))
        .map(|&(_, package)| package)
        .collect();
    if missing.is_empty() {
        println!("present: ai-edge-litert (LiteRT rows), ethos-u-vela (Vela rows)");
        return;
    }
    if no_install {
        println!(
            "skipped: pip install {} (--no-pip-install); their rows will say skipped",
            missing.join(" ")
        );
        return;
    }
    println!(
        "installing {} with `python3 -m pip install` (the LiteRT and Vela rows need them; \
         --no-pip-install skips this)",
        missing.join(" ")
    );
    let status = std::process::Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(&missing)
        .status();
    match status {
        Ok(s) if s.success() => println!("installed {}", missing.join(" ")),
        Ok(s) => {
            println!("skipped: pip install failed ({s}); the LiteRT/Vela rows will say skipped")
        }
        Err(e) => println!(
            "skipped: python3 could not be run ({e}); the LiteRT/Vela rows will say skipped"
        ),
    }
}

/// Parses `argv` with the `Args` parser of a subcommand.
fn parse_args<T: Args + FromArgMatches>(name: &'static str, argv: &[String]) -> anyhow::Result<T> {
    let cmd = T::augment_args(clap::Command::new(name).no_binary_name(true));
    let matches = cmd
        .try_get_matches_from(argv)
        .with_context(|| format!("building `{name}` arguments"))?;
    Ok(T::from_arg_matches(&matches)?)
}

fn step(name: &str) {
    println!("\n==> {name}");
}

/// Runs `cargo xtask pipeline`.
pub fn run(args: &PipelineArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let out = &args.out;
    let train_dir = out.join("train");
    let checkpoint = train_dir.join("model.ckpt");
    let fp32 = out.join("unet_fp32.tflite");
    let int8 = out.join("unet_int8.tflite");
    let bench_dir = out.join("bench");
    let mut timings: Vec<(String, f64)> = Vec::new();

    step("python tools (LiteRT, Vela)");
    ensure_python_tools(args.no_pip_install);

    if !args.skip_train {
        step("train (synthetic data)");
        let t = Instant::now();
        // A pipeline run starts over by design (--skip-train keeps the previous model).
        if checkpoint.exists() {
            println!(
                "replacing the previous pipeline run in {} (use --skip-train to keep it)",
                train_dir.display()
            );
        }
        let argv: Vec<String> = vec![
            "--out".into(),
            train_dir.display().to_string(),
            "--overwrite".into(),
            "--max-minutes".into(),
            args.train_minutes.to_string(),
            "--epochs".into(),
            args.epochs.to_string(),
            "--seed".into(),
            args.seed.to_string(),
        ];
        let train_args: crate::train::TrainArgs = parse_args("train", &argv)?;
        crate::train::run(&train_args).context("train step")?;
        timings.push(("train".into(), t.elapsed().as_secs_f64()));
    }

    if !args.skip_quantize {
        step("quantize");
        let t = Instant::now();
        quantize_step(args, &checkpoint)?;
        timings.push(("quantize".into(), t.elapsed().as_secs_f64()));
    }

    step("bench");
    let t = Instant::now();
    let argv: Vec<String> = vec![
        "--model".into(),
        int8.display().to_string(),
        "--float-model".into(),
        fp32.display().to_string(),
        "--checkpoint".into(),
        checkpoint.display().to_string(),
        "--out".into(),
        bench_dir.display().to_string(),
        "--runs".into(),
        args.runs.to_string(),
        "--warmup".into(),
        args.warmup.to_string(),
        "--max-secs".into(),
        args.max_secs.to_string(),
        "--threads".into(),
        args.threads.to_string(),
        "--seed".into(),
        args.seed.to_string(),
    ];
    let bench_args: unet_bench::cli::BenchArgs = parse_args("bench", &argv)?;
    let mut command = vec!["cargo xtask pipeline".to_string()];
    command.extend(std::env::args().skip(2));
    let (report, paths) = unet_bench::cli::run(&bench_args, command).context("bench step")?;
    timings.push(("bench".into(), t.elapsed().as_secs_f64()));

    println!("\n==> artifacts");
    for (label, path) in [
        ("checkpoint", checkpoint.clone()),
        ("training history", train_dir.join("history.json")),
        ("float model", fp32.clone()),
        ("int8 model", int8.clone()),
        ("quantization report", out.join("quant_report.md")),
    ] {
        if path.exists() {
            println!("  {label:<20} {}", path.display());
        }
    }
    for p in &paths {
        println!("  {:<20} {}", "bench", p.display());
    }
    println!("\n==> timings");
    for (name, secs) in &timings {
        println!("  {name:<10} {secs:>7.1} s");
    }
    println!(
        "  {:<10} {:>7.1} s",
        "total",
        started.elapsed().as_secs_f64()
    );
    println!("\n{}", report.markdown_table());
    Ok(())
}

/// The quantize step: `cargo xtask quantize` with the pipeline's paths (it writes
/// `OUT/unet_fp32.tflite` and `OUT/unet_int8.tflite`).
fn quantize_step(args: &PipelineArgs, checkpoint: &std::path::Path) -> anyhow::Result<()> {
    let argv: Vec<String> = vec![
        "--checkpoint".into(),
        checkpoint.display().to_string(),
        "--out".into(),
        args.out.display().to_string(),
        "--seed".into(),
        args.seed.to_string(),
        "--calib-samples".into(),
        args.calib_samples.to_string(),
        "--eval-samples".into(),
        args.eval_samples.to_string(),
    ];
    let quantize_args: crate::quantize::QuantizeArgs = parse_args("quantize", &argv)?;
    crate::quantize::run(&quantize_args).context("quantize step")
}
