//! `cargo xtask`: the one command line of the project.
//!
//! Each subcommand lives in its own module and only orchestrates the library crates; the work
//! itself is done in `crates/`. Logs go through `tracing` (`-v`, `-vv` or `RUST_LOG`).

mod bench;
mod codegen;
mod cpu_mask;
mod data;
mod infer;
mod inspect;
mod pipeline;
mod quantize;
mod runtime_bench;
mod speed_report;
mod train;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// U-Net → INT8 TFLite → NPU vs CPU toolchain.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about, long_about = None)]
struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace). `RUST_LOG` overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Run as if on a narrower x86 CPU: every `cpuid` in this process and its children is
    /// answered without AVX-512 (avx2: without AVX-VNNI too), so ours, LiteRT's XNNPACK and
    /// Keras' oneDNN all take that class's code paths. The core stays this one (x86-64 Linux
    /// with CPUID faulting; reports say so).
    #[arg(long, value_enum, default_value_t = cpu_mask::CpuClass::Native, global = true)]
    cpu_class: cpu_mask::CpuClass,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    // Subcommands are added here, one variant per module, by the issue that makes them work.
    /// Look at and summarise the slice sources (synthetic, noise, decathlon).
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Regenerate the TFLite flatbuffers bindings from the schema (flatc 25.12.19).
    Codegen(codegen::CodegenArgs),
    /// Print a TFLite model: operators, tensors, quantization and size totals.
    Inspect(inspect::InspectArgs),
    /// Train the U-Net (artifacts/train/), or measure training speed with --bench-steps.
    Train(train::TrainArgs),
    /// Run one slice (.npy or .png) through a .tflite model with tflite-runtime.
    Infer(infer::InferArgs),
    /// Time tflite-runtime beside LiteRT (BUILTIN_REF, XNNPACK) on random-weight U-Nets.
    RuntimeBench(runtime_bench::RuntimeBenchArgs),
    /// Benchmark the U-Net on every backend (ours, burn, LiteRT cpu/gpu/npu, benchmark_model,
    /// Vela estimates); cross-build for the board (--target --build-only) or run there (--remote).
    Bench(Box<bench::BenchArgs>),
    /// Quantise the trained U-Net (or a float .tflite) to full int8: calibrate, verify, report.
    Quantize(Box<quantize::QuantizeArgs>),
    /// Train → quantize → bench on synthetic data, then list the artifacts and the table.
    Pipeline(pipeline::PipelineArgs),
    /// This CPU's speed goals in one table: runtime-bench and train --bench-steps against LiteRT
    /// XNNPACK and Keras, several runs, with the CPU's name and features.
    SpeedReport(speed_report::SpeedReportArgs),
}

/// The workspace root (the parent of `xtask/`).
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Whether log lines get ANSI colours: only on a terminal, and not when `NO_COLOR` is set to a
/// non-empty value (<https://no-color.org>). Pipes and log files get plain text.
fn log_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn,xtask=info",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(log_colour(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    cpu_mask::enter(cli.cpu_class)?;
    // Training and calibration free and reallocate the same large tensors every step; keep
    // them for reuse (before any worker thread starts).
    if !unet_train::allocator::retain_freed_memory() {
        tracing::debug!("malloc tuning unavailable on this C library");
    }
    match cli.command {
        Command::Codegen(args) => codegen::run(&args),
        Command::Data(command) => data::run(command),
        Command::Inspect(args) => inspect::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Infer(args) => infer::run(&args),
        Command::RuntimeBench(args) => runtime_bench::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Pipeline(args) => pipeline::run(&args),
        Command::Quantize(args) => quantize::run(&args),
        Command::SpeedReport(args) => speed_report::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::log_colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(log_colour(true, None));
        assert!(log_colour(true, Some(OsStr::new(""))));
        assert!(!log_colour(true, Some(OsStr::new("1"))));
        assert!(!log_colour(false, None));
        assert!(!log_colour(false, Some(OsStr::new(""))));
    }
}
