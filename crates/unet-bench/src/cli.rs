//! The command line shared by the standalone `unet-bench` binary and `cargo xtask bench`.

use std::path::{Path, PathBuf};

use crate::backend::{Protocol, RowStatus};
use crate::error::BenchError;
use crate::inputs::InputSource;
use crate::report::Report;
use crate::suite::{DEFAULT_BACKENDS, SuiteConfig, parse_backends, run_suite};

/// The most input slices a bench run holds in memory (4096 slices of 128×128 are 256 MiB with
/// their masks); runs cycle through the slices, so more would only cost memory.
pub const MAX_SLICES: usize = 4096;

/// The longest time budget `--max-secs` takes: one day.
pub const MAX_SECONDS: f64 = 86_400.0;

/// Parses a time budget in seconds: a finite number above 0 and at most [`MAX_SECONDS`].
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !value.is_finite() || value <= 0.0 || value > MAX_SECONDS {
        return Err(format!(
            "`{text}`: a time budget must be a finite number of seconds above 0 and at most {MAX_SECONDS} (one day)"
        ));
    }
    Ok(value)
}

/// Parses a count flag: a whole number of `unit` from 1 to `max`; `range` is the message when
/// it is out of range. Shared by the count flags of every subcommand.
pub fn parse_count(text: &str, max: usize, unit: &str, range: &str) -> Result<usize, String> {
    let value: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number of {unit}"))?;
    if !(1..=max).contains(&value) {
        return Err(format!("`{text}`: {range}"));
    }
    Ok(value)
}

/// Parses `--slices`: 1 to [`MAX_SLICES`].
pub fn parse_slices(text: &str) -> Result<usize, String> {
    parse_count(
        text,
        MAX_SLICES,
        "slices",
        &format!("the bench needs 1 to {MAX_SLICES} input slices (runs cycle through them)"),
    )
}

/// Which data the input slices come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DataArg {
    /// Seeded synthetic held-out phantoms (no files needed).
    Synthetic,
    /// Medical Segmentation Decathlon Task01 test split (`--data-path`).
    Decathlon,
}

/// Benchmark options (flags modelled on TFLite's `benchmark_model`).
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The quantised `.tflite` (any int8, 16x8 or mixed model with one `[1,H,W,1]` input,
    /// including TensorFlow's converter's). Repeat it to compare models: each runs the whole
    /// suite into OUT/<model>/, and models.md / models.svg put them side by side.
    #[arg(long, default_value = "artifacts/unet_int8.tflite")]
    pub model: Vec<PathBuf>,
    /// The float `.tflite` for rust-f32 / litert-f32.
    #[arg(long, default_value = "artifacts/unet_fp32.tflite")]
    pub float_model: PathBuf,
    /// The burn checkpoint for burn-f32.
    #[arg(long, default_value = "artifacts/train/model.ckpt")]
    pub checkpoint: PathBuf,
    /// burn backend for burn-f32 (flex, or ndarray when built with it).
    #[arg(long, default_value = "flex")]
    pub burn_backend: String,
    /// Comma-separated backends: rust-int8, rust-f32, burn-f32, litert:<cpu|gpu|npu>,
    /// litert-f32:<...>, vela:<ethos-u config>, benchmark-model:<path>.
    #[arg(long, default_value = DEFAULT_BACKENDS)]
    pub backends: String,
    /// Untimed warm-up runs after the first inference.
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
    /// Timed runs.
    #[arg(long, default_value_t = 100)]
    pub runs: usize,
    /// Time budget for the timed runs of each backend, in seconds (> 0, at most a day).
    #[arg(long, value_parser = parse_seconds)]
    pub max_secs: Option<f64>,
    /// CPU threads (tflite-runtime, LiteRT XNNPACK, benchmark_model).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Extra runs that time every operator, for the per-layer table (0: none).
    #[arg(long, default_value_t = 10)]
    pub layer_runs: usize,
    /// Number of fixed input slices (runs cycle through them; 1 to 4096).
    #[arg(long, default_value_t = 8, value_parser = parse_slices)]
    pub slices: usize,
    /// Input slices as .npy (float32 `[N,H,W]`, `[N,H,W,1]` or `[N,1,H,W]`).
    #[arg(long)]
    pub inputs: Option<PathBuf>,
    /// Ground-truth masks for `--inputs` (same layout, 0/1).
    #[arg(long, requires = "inputs")]
    pub masks: Option<PathBuf>,
    /// Slice source when `--inputs` is not given.
    #[arg(long, value_enum, default_value_t = DataArg::Synthetic)]
    pub data: DataArg,
    /// Task01_BrainTumour directory for `--data decathlon`.
    #[arg(long)]
    pub data_path: Option<PathBuf>,
    /// Seed of the synthetic slices and of the Decathlon split.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Path of `libLiteRt.so` (else `$LITERT_LIB`, else the pip ai-edge-litert package).
    #[arg(long)]
    pub litert_lib: Option<PathBuf>,
    /// Directory of the vendor's LiteRT NPU dispatch libraries (`libLiteRtDispatch*.so`).
    #[arg(long)]
    pub litert_dispatch_dir: Option<PathBuf>,
    /// The Vela executable.
    #[arg(long, default_value = "vela")]
    pub vela: PathBuf,
    /// Extra Vela flag (repeatable), e.g. `--vela-arg=--system-config=Ethos_U55_High_End_Embedded`.
    #[arg(long = "vela-arg", allow_hyphen_values = true)]
    pub vela_args: Vec<String>,
    /// Also compile the model with Vela for every Ethos-U configuration and memory mode Vela
    /// knows, under `--optimise Performance` and `Size` (report section, `vela_sweep.svg`).
    #[arg(long)]
    pub vela_sweep: bool,
    /// Vela processes at a time during `--vela-sweep`.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub vela_sweep_jobs: u16,
    /// Flag passed through to benchmark_model (repeatable), e.g.
    /// `--benchmark-model-arg=--external_delegate_path=/usr/lib/libvx_delegate.so`.
    #[arg(long = "benchmark-model-arg", allow_hyphen_values = true)]
    pub benchmark_model_args: Vec<String>,
    /// Backend whose median the speedups divide (falls back to rust-int8 if it did not run).
    #[arg(long, default_value = "litert:cpu")]
    pub baseline: String,
    /// Output directory of report.json, report.md and latency.svg.
    #[arg(long, default_value = "artifacts/bench")]
    pub out: PathBuf,
    /// Benchmark random-weight U-Nets made on the spot (OUT/synth/) instead of `--model`/
    /// `--float-model`: for trying the harness before a model is trained.
    #[arg(long)]
    pub synth: bool,
    /// First-level feature maps of the `--synth` U-Net.
    #[arg(long, default_value_t = 16)]
    pub synth_fms: usize,
    /// Input size of the `--synth` U-Net.
    #[arg(long, default_value_t = 128)]
    pub synth_size: usize,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// Writes random-weight int8 and f32 U-Nets to `dir`; returns (int8, f32) paths.
pub fn write_synth_models(
    dir: &Path,
    fms: usize,
    size: usize,
    seed: u64,
) -> Result<(PathBuf, PathBuf), BenchError> {
    use tflite_runtime::synth::{UNetSpec, unet};
    if size == 0 || !size.is_multiple_of(16) || fms == 0 {
        return Err(BenchError::BadSpec {
            spec: format!("--synth-fms {fms} --synth-size {size}"),
            problem: "size must be a positive multiple of 16 and fms positive".into(),
        });
    }
    let int8 = dir.join("unet_synth_int8.tflite");
    let f32 = dir.join("unet_synth_fp32.tflite");
    for (path, is_int8) in [(&int8, true), (&f32, false)] {
        let model = unet(UNetSpec {
            fms,
            size,
            in_channels: 1,
            int8: is_int8,
            seed,
        });
        let bytes = tflite_writer::write_model(&model).map_err(|source| BenchError::Model {
            path: path.clone(),
            source,
        })?;
        artifact_io::write_atomic(path, &bytes)?;
    }
    Ok((int8, f32))
}

impl BenchArgs {
    /// The suite configuration these flags describe (writing `--synth` models if asked).
    pub fn to_config(&self, command: Vec<String>) -> Result<SuiteConfig, BenchError> {
        let (model, float_model) = if self.synth {
            write_synth_models(
                &self.out.join("synth"),
                self.synth_fms,
                self.synth_size,
                self.seed,
            )?
        } else {
            let model = match self.model.as_slice() {
                [one] => one.clone(),
                _ => {
                    return Err(BenchError::Tool {
                        tool: "unet-bench".into(),
                        problem: "one suite runs one --model; several go through run_models".into(),
                    });
                }
            };
            (model, self.float_model.clone())
        };
        if !model.exists() {
            return Err(BenchError::BadInput {
                path: model,
                problem:
                    "no such model; run `cargo xtask quantize` first, pass --model, or use --synth"
                        .into(),
            });
        }
        let inputs = match (&self.inputs, self.data) {
            (Some(images), _) => InputSource::Npy {
                images: images.clone(),
                masks: self.masks.clone(),
            },
            (None, DataArg::Decathlon) => InputSource::Decathlon {
                path: self.data_path.clone().ok_or_else(|| BenchError::BadInput {
                    path: PathBuf::from("--data-path"),
                    problem: "--data decathlon needs --data-path <Task01_BrainTumour dir>".into(),
                })?,
                seed: self.seed,
            },
            (None, DataArg::Synthetic) => InputSource::Synthetic { seed: self.seed },
        };
        if self.runs == 0 {
            return Err(BenchError::BadSpec {
                spec: "--runs 0".into(),
                problem: "at least one timed run is needed".into(),
            });
        }
        Ok(SuiteConfig {
            model,
            float_model: Some(float_model),
            checkpoint: if self.synth {
                None
            } else {
                Some(self.checkpoint.clone())
            },
            burn_backend: self.burn_backend.clone(),
            backends: parse_backends(&self.backends)?,
            protocol: Protocol {
                warmup: self.warmup,
                runs: self.runs,
                max_secs: self.max_secs,
                threads: self.threads.max(1),
                layer_runs: self.layer_runs,
                progress: !self.no_progress,
            },
            inputs,
            slices: self.slices,
            litert_lib: self.litert_lib.clone(),
            litert_dispatch_dir: self.litert_dispatch_dir.clone(),
            vela: self.vela.clone(),
            vela_args: self.vela_args.clone(),
            benchmark_model_args: self.benchmark_model_args.clone(),
            baseline: self.baseline.clone(),
            out_dir: self.out.clone(),
            command,
        })
    }
}

/// Runs the suite once per `--model`, each into `OUT/<model>/`, then writes `models.json`,
/// `models.md` and `models.svg` into `OUT` (see [`crate::models`]).
pub fn run_models(
    args: &BenchArgs,
    command: Vec<String>,
) -> Result<(crate::models::ModelsReport, Vec<PathBuf>), BenchError> {
    let labels = crate::models::labels(&args.model);
    let mut models = Vec::with_capacity(args.model.len());
    let mut paths = Vec::new();
    for (path, label) in args.model.iter().zip(labels) {
        eprintln!("== {label}: {} ==", path.display());
        let one = BenchArgs {
            model: vec![path.clone()],
            out: args.out.join(&label),
            ..args.clone()
        };
        let (report, written) = run(&one, command.clone())?;
        paths.extend(written);
        models.push(crate::models::ModelRun {
            label,
            path: path.clone(),
            report,
        });
    }
    let report = crate::models::ModelsReport { command, models };
    std::fs::create_dir_all(&args.out).map_err(|e| BenchError::io(&args.out, e))?;
    paths.extend(report.write(&args.out)?);
    Ok((report, paths))
}

/// Runs the suite described by `args`, writes the report files and returns the report with
/// the paths written.
pub fn run(args: &BenchArgs, command: Vec<String>) -> Result<(Report, Vec<PathBuf>), BenchError> {
    let cfg = args.to_config(command)?;
    if let Err(e) = artifact_io::clean_stale_temporaries(&cfg.out_dir) {
        tracing::warn!(
            "{}: cannot clean stale temporary files: {e}",
            cfg.out_dir.display()
        );
    }
    let mut report = run_suite(&cfg)?;
    if args.vela_sweep {
        eprintln!("Vela sweep: every configuration Vela knows (estimates)…");
        // A sweep that cannot run (no Vela here, e.g. on a board) leaves the measured report
        // as it is and says why.
        match crate::sweep::run_sweep(
            &cfg.model,
            &cfg.vela,
            &cfg.out_dir.join("vela-sweep"),
            usize::from(args.vela_sweep_jobs),
        ) {
            Ok(mut sweep) => {
                sweep.cpu_lines = report
                    .rows
                    .iter()
                    .filter(|r| r.status == RowStatus::Measured)
                    .filter_map(|r| Some((r.backend.clone(), r.stats.as_ref()?.central())))
                    .collect();
                report.vela_sweep = Some(sweep);
            }
            Err(e) => eprintln!("Vela sweep skipped: {e}"),
        }
        let _ = std::fs::remove_dir(cfg.out_dir.join("vela-sweep"));
    }
    let produced = |s: &RowStatus| matches!(s, RowStatus::Measured | RowStatus::Estimated);
    if !report.rows.iter().any(|r| produced(&r.status)) {
        // Nothing measured: keep the previous report files and say why each backend gave up.
        let why: Vec<String> = report
            .rows
            .iter()
            .map(|r| {
                format!(
                    "  {} ({:?}): {}",
                    r.backend,
                    r.status,
                    r.reason.as_deref().unwrap_or("no reason given")
                )
            })
            .collect();
        return Err(BenchError::Tool {
            tool: "unet-bench".into(),
            problem: format!(
                "no backend produced a result; the report in {} was left as it was:\n{}",
                cfg.out_dir.display(),
                why.join("\n")
            ),
        });
    }
    let paths = report.write(&cfg.out_dir)?;
    Ok((report, paths))
}
