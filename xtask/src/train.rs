//! `cargo xtask train`: train the U-Net (crates/unet-train) and write `artifacts/train/`;
//! `--bench-steps N` measures seconds per training step instead, against Keras when TensorFlow
//! is installed.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use unet_data::{DataConfig, SourceKind};
use unet_train::bench::{BenchConfig, BenchReport, bench_steps};
use unet_train::conv3x3::ConvImpl;
use unet_train::{BackendKind, LossKind, ProgressMode, TrainConfig, UNetConfig, Upsampling};

use crate::project_root;

/// Data source names.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DataArg {
    /// Seeded synthetic brain phantoms.
    Synthetic,
    /// The seed project's random data.
    Noise,
    /// Medical Segmentation Decathlon Task01 (needs --data-path).
    Decathlon,
}

/// Upsampling names.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum UpsamplingArg {
    /// 2×2/2 transposed convolution (IntelAI default when use_upsampling=False).
    Transposed,
    /// Nearest-neighbour ×2.
    Nearest,
}

/// Loss names.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LossArg {
    /// −log soft Dice.
    Dice,
    /// 0.85 · dice + 0.15 · BCE.
    Combined,
}

/// Backend names.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BackendArg {
    /// burn-flex, pure-Rust CPU (default).
    Flex,
    /// burn-ndarray (needs xtask built with `--features ndarray`).
    Ndarray,
    /// burn-wgpu (needs `--features wgpu`).
    Wgpu,
    /// burn-cuda (needs `--features cuda`).
    Cuda,
}

/// Progress display names.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProgressArg {
    /// A bar in a terminal, one line per epoch otherwise.
    Auto,
    /// Always a bar.
    Bar,
    /// One line per epoch.
    Lines,
    /// Nothing.
    None,
}

/// Arguments of `cargo xtask train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Output directory.
    #[arg(long, default_value = "artifacts/train")]
    out: PathBuf,
    /// Data source.
    #[arg(long, value_enum, default_value_t = DataArg::Synthetic)]
    data: DataArg,
    /// The Task01_BrainTumour directory (for --data decathlon).
    #[arg(long)]
    data_path: Option<PathBuf>,
    /// Random flips/rot90 (and crop offsets for decathlon).
    #[arg(long)]
    augment: bool,
    /// Slices per split (synthetic/noise) or a cap per split (decathlon); 1 to 10,000,000.
    #[arg(long, value_parser = parse_slices)]
    slices: Option<usize>,
    /// Seed of the data (default: --seed).
    #[arg(long)]
    data_seed: Option<u64>,
    /// Feature maps of the first level.
    #[arg(long, default_value_t = 16)]
    fms: usize,
    /// Input size (a multiple of 16).
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Decoder upsampling.
    #[arg(long, value_enum, default_value_t = UpsamplingArg::Transposed)]
    upsampling: UpsamplingArg,
    /// Spatial dropout after the first conv of levels C and D.
    #[arg(long, default_value_t = 0.2)]
    dropout: f64,
    /// Loss.
    #[arg(long, value_enum, default_value_t = LossArg::Dice)]
    loss: LossArg,
    /// Adam learning rate (IntelAI uses 1e-4 on BraTS; 1e-3 suits short synthetic runs).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Batch size.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Maximum epochs.
    #[arg(long, default_value_t = 40)]
    epochs: usize,
    /// Optimizer steps per epoch (0 = one pass over the training split).
    #[arg(long, default_value_t = 16)]
    steps_per_epoch: usize,
    /// Validation slices per epoch (0 = the whole validation split).
    #[arg(long, default_value_t = 64)]
    val_slices: usize,
    /// Early-stopping patience in epochs (0 disables).
    #[arg(long, default_value_t = 5)]
    patience: usize,
    /// Training time budget in minutes (0 = none; at most a week).
    #[arg(long, default_value_t = 8.0, value_parser = parse_minutes)]
    max_minutes: f64,
    /// Seed of weights, batch order and dropout.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Continue from a checkpoint (without a value: <out>/last.ckpt).
    #[arg(long, num_args = 0..=1)]
    resume: Option<Option<PathBuf>>,
    /// Start a fresh run in an --out that already holds one (its checkpoints are replaced from
    /// the first epoch on); without it such a run is refused.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Backend.
    #[arg(long, value_enum, default_value_t = BackendArg::Flex)]
    backend: BackendArg,
    /// Progress display.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    progress: ProgressArg,
    /// Measure N training steps (batch --batch-size, --size) instead of training, and compare
    /// with Keras when `python3 -c 'import tensorflow'` works.
    #[arg(long)]
    bench_steps: Option<usize>,
    /// Untimed warm-up steps for --bench-steps.
    #[arg(long, default_value_t = 2)]
    bench_warmup: usize,
    /// With --bench-steps: measure ours then Keras this many times in turn and report the
    /// median of the per-round ratios, so that a slow spell of a shared machine falls on both
    /// sides of a ratio rather than on one.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
    bench_rounds: u16,
    /// With --bench-steps on Flex: also time the previous formulation of the 3×3 convolutions
    /// (burn's `conv2d` and its generic backward), in the same run.
    #[arg(long)]
    bench_conv2d: bool,
}

/// The longest training budget `--max-minutes` takes: one week.
pub const MAX_MINUTES: f64 = 7.0 * 24.0 * 60.0;

/// The most slices per split `--slices` takes (the training order keeps an index per slice).
const MAX_SLICES: usize = unet_data::MAX_SLICES_PER_SPLIT;

/// Parses a training budget in minutes: finite, 0 (no budget) up to [`MAX_MINUTES`].
pub fn parse_minutes(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of minutes"))?;
    if !value.is_finite() || !(0.0..=MAX_MINUTES).contains(&value) {
        return Err(format!(
            "`{text}`: a training budget must be a finite number of minutes from 0 (none) to {MAX_MINUTES} (one week)"
        ));
    }
    Ok(value)
}

/// Parses `--slices`: 1 to [`MAX_SLICES`].
fn parse_slices(text: &str) -> Result<usize, String> {
    unet_bench::cli::parse_count(
        text,
        MAX_SLICES,
        "slices",
        &format!("--slices takes 1 to {MAX_SLICES} slices per split"),
    )
}

fn backend(arg: BackendArg) -> BackendKind {
    match arg {
        BackendArg::Flex => BackendKind::Flex,
        BackendArg::Ndarray => BackendKind::Ndarray,
        BackendArg::Wgpu => BackendKind::Wgpu,
        BackendArg::Cuda => BackendKind::Cuda,
    }
}

fn model_config(args: &TrainArgs) -> UNetConfig {
    UNetConfig {
        fms: args.fms,
        size: args.size,
        upsampling: match args.upsampling {
            UpsamplingArg::Transposed => Upsampling::TransposedConv,
            UpsamplingArg::Nearest => Upsampling::Nearest,
        },
        dropout: args.dropout,
    }
}

/// Runs `cargo xtask train`.
pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    if let Some(steps) = args.bench_steps {
        return bench(args, steps).map(|_| ());
    }
    let data = DataConfig {
        source: match args.data {
            DataArg::Synthetic => SourceKind::Synthetic,
            DataArg::Noise => SourceKind::Noise,
            DataArg::Decathlon => SourceKind::Decathlon,
        },
        size: args.size,
        seed: args.data_seed.unwrap_or(args.seed),
        data_path: args.data_path.clone(),
        augment: args.augment,
        slices_per_split: args.slices,
        ..DataConfig::default()
    };
    let resume = args
        .resume
        .as_ref()
        .map(|p| p.clone().unwrap_or_else(|| args.out.join("last.ckpt")));
    let cfg = TrainConfig {
        model: model_config(args),
        data,
        backend: backend(args.backend),
        loss: match args.loss {
            LossArg::Dice => LossKind::Dice,
            LossArg::Combined => LossKind::Combined,
        },
        learning_rate: args.lr,
        adam_epsilon: 1e-7,
        batch_size: args.batch_size,
        epochs: args.epochs,
        steps_per_epoch: (args.steps_per_epoch > 0).then_some(args.steps_per_epoch),
        val_slices: (args.val_slices > 0).then_some(args.val_slices),
        patience: args.patience,
        max_train_time: (args.max_minutes > 0.0)
            .then(|| Duration::from_secs_f64(args.max_minutes * 60.0)),
        seed: args.seed,
        out_dir: args.out.clone(),
        resume,
        overwrite: args.overwrite,
        progress: match args.progress {
            ProgressArg::Auto => ProgressMode::Auto,
            ProgressArg::Bar => ProgressMode::Bar,
            ProgressArg::Lines => ProgressMode::Lines,
            ProgressArg::None => ProgressMode::Hidden,
        },
        command_line: std::env::args().collect(),
        git_commit: unet_bench::sys::git_commit(&project_root()),
    };
    let trained = unet_train::train(&cfg).context("training failed")?;
    let best = trained
        .history
        .epochs
        .iter()
        .find(|e| e.epoch == trained.best_epoch);
    if let Some(best) = best {
        println!(
            "best epoch {}: val loss {:.4}, val Dice {:.3}, soft Dice {:.3}; checkpoint {}",
            best.epoch,
            best.val_loss,
            best.val_dice,
            best.val_soft_dice,
            trained.checkpoint.display()
        );
    }
    println!("artifacts in {}", args.out.display());
    Ok(())
}

#[derive(serde::Deserialize, serde::Serialize, Debug, Clone)]
struct KerasReport {
    tensorflow: String,
    /// Whether TensorFlow's oneDNN custom operations were on (`None`: it could not tell).
    #[serde(default)]
    onednn: Option<bool>,
    median_step_seconds: f64,
    mean_step_seconds: f64,
    inference_batch1_seconds: f64,
    params: u64,
}

fn keras_bench(args: &TrainArgs, steps: usize) -> Result<KerasReport, String> {
    let script = project_root().join("crates/unet-train/scripts/keras_unet_bench.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(["--steps", &steps.to_string()])
        .args(["--warmup", &args.bench_warmup.to_string()])
        .args(["--batch-size", &args.batch_size.to_string()])
        .args(["--size", &args.size.to_string()])
        .args(["--fms", &args.fms.to_string()])
        .args([
            "--upsampling",
            match args.upsampling {
                UpsamplingArg::Transposed => "transposed",
                UpsamplingArg::Nearest => "nearest",
            },
        ])
        .output()
        .map_err(|e| format!("cannot run python3 {}: {e}", script.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!(
            "{} exited with {}: {last}",
            script.display(),
            out.status
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("");
    serde_json::from_str(json)
        .map_err(|e| format!("unexpected output from {}: {e}", script.display()))
}

fn print_burn(burn: &BenchReport) {
    println!(
        "burn {} ({} 3x3 convs): {:.3} s/step median ({:.3} mean): forward+loss {:.3} s, backward {:.3} s, adam {:.3} s; inference batch 1 {:.1} ms",
        burn.backend,
        burn.conv,
        burn.median_step_seconds,
        burn.mean_step_seconds,
        burn.mean_forward_seconds,
        burn.mean_backward_seconds,
        burn.mean_optimizer_seconds,
        burn.inference_batch1_seconds * 1e3
    );
}

fn print_keras(report: &KerasReport) {
    println!(
        "keras (TensorFlow {}{}): {:.3} s/step median ({:.3} mean); inference batch 1 {:.1} ms; {} params",
        report.tensorflow,
        match report.onednn {
            Some(true) => ", oneDNN ops on",
            Some(false) => ", oneDNN ops off",
            None => "",
        },
        report.median_step_seconds,
        report.mean_step_seconds,
        report.inference_batch1_seconds * 1e3,
        report.params
    );
}

fn print_ratio(burn: &BenchReport, keras: &KerasReport) {
    println!(
        "ratio burn/keras: training {:.2}x, inference {:.2}x",
        burn.median_step_seconds / keras.median_step_seconds,
        burn.inference_batch1_seconds / keras.inference_batch1_seconds
    );
}

/// `--bench-steps`: times burn's training step and batch-1 inference, and Keras's when
/// TensorFlow imports, `--bench-rounds` times in turn; returns the report it writes
/// (`bench.json`).
pub fn bench_report(args: &TrainArgs) -> anyhow::Result<serde_json::Value> {
    let steps = args
        .bench_steps
        .context("bench_report needs --bench-steps")?;
    bench(args, steps)
}

fn bench(args: &TrainArgs, steps: usize) -> anyhow::Result<serde_json::Value> {
    let cfg = BenchConfig {
        model: model_config(args),
        backend: backend(args.backend),
        batch_size: args.batch_size,
        warmup_steps: args.bench_warmup,
        steps,
        seed: args.seed,
        conv: ConvImpl::ShiftedGemm,
    };
    eprintln!(
        "burn {}: {} timed steps after {} warm-up, batch {}, {}x{}, fms {}",
        cfg.backend,
        steps,
        cfg.warmup_steps,
        cfg.batch_size,
        cfg.model.size,
        cfg.model.size,
        cfg.model.fms
    );
    let burn = bench_steps(&cfg).context("burn benchmark failed")?;
    print_burn(&burn);
    let burn_conv2d = if args.bench_conv2d && cfg.backend == BackendKind::Flex {
        let old = bench_steps(&BenchConfig {
            conv: ConvImpl::BurnConv2d,
            ..cfg.clone()
        })
        .context("burn benchmark (conv2d formulation) failed")?;
        print_burn(&old);
        println!(
            "ratio conv2d/shifted-gemm formulation: training {:.2}x, inference {:.2}x",
            old.median_step_seconds / burn.median_step_seconds,
            old.inference_batch1_seconds / burn.inference_batch1_seconds
        );
        Some(old)
    } else {
        None
    };
    let mut keras_skipped = None;
    let keras = match keras_bench(args, steps) {
        Ok(report) => {
            print_keras(&report);
            print_ratio(&burn, &report);
            Some(report)
        }
        Err(why) => {
            println!("keras comparison skipped: {why}");
            keras_skipped = Some(why);
            None
        }
    };
    // Further rounds, ours then Keras each time; the first round is the one above.
    let mut rounds = vec![(burn.clone(), keras.clone())];
    for round in 2..=args.bench_rounds {
        eprintln!("round {round} of {}", args.bench_rounds);
        let ours = bench_steps(&cfg).context("burn benchmark failed")?;
        print_burn(&ours);
        let theirs = if keras.is_some() {
            let report = keras_bench(args, steps)
                .map_err(|why| anyhow::anyhow!("keras benchmark failed in round {round}: {why}"))?;
            print_keras(&report);
            print_ratio(&ours, &report);
            Some(report)
        } else {
            None
        };
        rounds.push((ours, theirs));
    }
    let round_ratios: Vec<(f64, f64)> = rounds
        .iter()
        .filter_map(|(ours, theirs)| {
            theirs.as_ref().map(|k| {
                (
                    ours.median_step_seconds / k.median_step_seconds,
                    ours.inference_batch1_seconds / k.inference_batch1_seconds,
                )
            })
        })
        .collect();
    if round_ratios.len() > 1 {
        let list = |v: Vec<f64>| {
            v.iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let (train, infer): (Vec<f64>, Vec<f64>) = round_ratios.iter().copied().unzip();
        println!(
            "{} rounds, ratio burn/keras per round: training {}; inference {}",
            round_ratios.len(),
            list(train.clone()),
            list(infer.clone())
        );
        println!(
            "median of the rounds' ratios: training {:.2}x, inference {:.2}x",
            crate::runtime_bench::median(train),
            crate::runtime_bench::median(infer)
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create", args.out.display()))?;
    let path = args.out.join("bench.json");
    let doc = serde_json::json!({
        "burn": burn,
        "burn_conv2d": burn_conv2d,
        "keras": keras,
        "keras_skipped": keras_skipped,
        "rounds": rounds
            .iter()
            .map(|(ours, theirs)| serde_json::json!({ "burn": ours, "keras": theirs }))
            .collect::<Vec<_>>(),
        "command_line": std::env::args().collect::<Vec<_>>(),
        "git_commit": unet_bench::sys::git_commit(&project_root()),
    });
    artifact_io::write_atomic(&path, &serde_json::to_vec_pretty(&doc)?)?;
    println!("report: {}", path.display());
    Ok(doc)
}
