//! `cargo xtask quantize`: trained checkpoint (or a float `.tflite`) → `unet_int8.tflite`.
//!
//! Loads the float model (exporting the checkpoint, or reading `--model`), calibrates on 100
//! slices of the training source by default, quantises with crates/unet-quantizer, verifies on
//! held-out slices, and writes `unet_fp32.tflite`, `unet_int8.tflite`, `quant_report.json` and
//! `quant_report.md` into `--out` (atomic writes). `--vela` and `--litert` add the NPU-coverage
//! and bit-exactness checks to the report.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use artifact_io::write_atomic;
use tflite_runtime::npy::{NpyArray, NpyData, write_npy};
use unet_data::{DataConfig, SourceKind, Split};
use unet_quantizer::dataset::{EvalSet, ImageSet, from_source, images_from_npy, masks_from_npy};
use unet_quantizer::{Method, QuantConfig, litert, quantize, vela};

use crate::project_root;

/// Where calibration or evaluation slices come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DataArg {
    /// Seeded synthetic phantoms.
    Synthetic,
    /// Uniform noise (the seed project's mistake; expect a warning).
    Noise,
    /// Medical Segmentation Decathlon Task01 (`--data-path`).
    Decathlon,
    /// A float32 `.npy` of shape [N,H,W] or [N,H,W,1] (`--data-path`).
    Npy,
}

/// Arguments of `cargo xtask quantize`.
#[derive(Debug, clap::Args)]
pub struct QuantizeArgs {
    /// Checkpoint to export and quantise.
    #[arg(long, default_value = "artifacts/train/model.ckpt")]
    pub checkpoint: PathBuf,
    /// A float `.tflite` to quantise instead of the checkpoint (e.g. TensorFlow converter output).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Output directory.
    #[arg(long, default_value = "artifacts")]
    pub out: PathBuf,
    /// Calibration data (default: the training source recorded next to the checkpoint, else synthetic).
    #[arg(long, value_enum)]
    pub calib: Option<DataArg>,
    /// Decathlon directory or `.npy` file of the calibration data.
    #[arg(long)]
    pub data_path: Option<PathBuf>,
    /// Number of calibration slices.
    #[arg(long, default_value_t = 100)]
    pub calib_samples: usize,
    /// Held-out evaluation data (default: the test split of the training source).
    #[arg(long, value_enum)]
    pub eval: Option<DataArg>,
    /// Decathlon directory or `.npy` images of the evaluation data.
    #[arg(long)]
    pub eval_data_path: Option<PathBuf>,
    /// Ground-truth masks (`.npy`, [N,H,W] or [N,H,W,1]) for `--eval npy`.
    #[arg(long)]
    pub eval_masks: Option<PathBuf>,
    /// Number of held-out slices for verification.
    #[arg(long, default_value_t = 32)]
    pub eval_samples: usize,
    /// Observer: minmax (default: the best output SQNR on every model measured, and it needs no
    /// histograms), percentile, mse, or auto (each of the three, keeping the best output SQNR
    /// against fp32 on the first 16 calibration slices).
    #[arg(long, default_value = "minmax")]
    pub method: String,
    /// Percentile of the percentile observer.
    #[arg(long, default_value_t = unet_quantizer::DEFAULT_PERCENTILE)]
    pub percentile: f64,
    /// Empirical bias correction from the calibration set.
    #[arg(long)]
    pub bias_correction: bool,
    /// Keep concatenation inputs as they are (by default, inputs whose producer is linear or ReLU
    /// are rescaled per channel, function-preserving, so the widest input no longer sets the
    /// shared int8 scale).
    #[arg(long)]
    pub no_equalize: bool,
    /// Give the tensor read by the final LOGISTIC the observer's range (by default its range is
    /// chosen against the error after the sigmoid, where logits beyond about ±6 no longer matter).
    #[arg(long)]
    pub no_logistic_range: bool,
    /// Refuse noise-like or off-distribution calibration data instead of warning.
    #[arg(long)]
    pub strict: bool,
    /// Seed of the synthetic/noise/decathlon sources.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads (default: all cores, at most 8).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Compile the int8 model with Arm Vela for ethos-u55-256 and ethos-u65-256.
    #[arg(long)]
    pub vela: bool,
    /// Check LiteRT BUILTIN_REF against our runtime on the held-out slices.
    #[arg(long)]
    pub litert: bool,
    /// Also save the calibration slices as a float32 `.npy` [N,H,W,1] (e.g. for TensorFlow's converter).
    #[arg(long)]
    pub save_calib: Option<PathBuf>,
}

/// The training data configuration recorded in `<checkpoint dir>/config.json`, if any.
fn training_data(checkpoint: &Path) -> Option<DataConfig> {
    let path = checkpoint.parent()?.join("config.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let data = json.get("data")?;
    let mut cfg = DataConfig {
        source: SourceKind::from_str(data.get("source")?.as_str()?).ok()?,
        ..DataConfig::default()
    };
    if let Some(seed) = data.get("seed").and_then(|v| v.as_u64()) {
        cfg.seed = seed;
    }
    if let Some(p) = data.get("data_path").and_then(|v| v.as_str()) {
        cfg.data_path = Some(PathBuf::from(p));
    }
    if let Some(n) = data.get("slices_per_split").and_then(|v| v.as_u64()) {
        cfg.slices_per_split = Some(n as usize);
    }
    Some(cfg)
}

fn source_config(
    base: &DataConfig,
    arg: Option<DataArg>,
    path: Option<&PathBuf>,
    size: usize,
    seed: u64,
) -> DataConfig {
    let mut cfg = base.clone();
    cfg.size = size;
    cfg.seed = seed;
    cfg.augment = false;
    match arg {
        Some(DataArg::Synthetic) => cfg.source = SourceKind::Synthetic,
        Some(DataArg::Noise) => cfg.source = SourceKind::Noise,
        Some(DataArg::Decathlon) => cfg.source = SourceKind::Decathlon,
        Some(DataArg::Npy) | None => {}
    }
    if let Some(p) = path {
        cfg.data_path = Some(p.clone());
    }
    cfg
}

fn load_images(
    base: &DataConfig,
    arg: Option<DataArg>,
    path: Option<&PathBuf>,
    split: Split,
    count: usize,
    size: usize,
    seed: u64,
) -> anyhow::Result<ImageSet> {
    if count == 0 {
        bail!("--calib-samples 0: at least one calibration slice is needed");
    }
    if arg == Some(DataArg::Npy) {
        let Some(path) = path else {
            bail!("--calib npy needs --data-path FILE.npy");
        };
        return Ok(images_from_npy(path, Some(count))?);
    }
    let cfg = source_config(base, arg, path, size, seed);
    Ok(from_source(&cfg, split, count)?.images)
}

fn load_eval(
    args: &QuantizeArgs,
    base: &DataConfig,
    split: Split,
    size: usize,
    seed: u64,
) -> anyhow::Result<EvalSet> {
    if args.eval_samples == 0 {
        bail!("--eval-samples 0: at least one held-out slice is needed");
    }
    let cfg = source_config(base, args.eval, args.eval_data_path.as_ref(), size, seed);
    Ok(from_source(&cfg, split, args.eval_samples)?)
}

/// Every slice of `--eval-data-path` with its mask from `--eval-masks`.
fn load_eval_npy(args: &QuantizeArgs) -> anyhow::Result<EvalSet> {
    if args.eval_samples == 0 {
        bail!("--eval-samples 0: at least one held-out slice is needed");
    }
    let (Some(images), Some(masks)) = (&args.eval_data_path, &args.eval_masks) else {
        bail!("--eval npy needs --eval-data-path IMAGES.npy and --eval-masks MASKS.npy");
    };
    let images = images_from_npy(images, None).context("evaluation data")?;
    let masks = masks_from_npy(masks, &images).context("evaluation data")?;
    Ok(EvalSet { images, masks })
}

/// The first `n` slices of an `--eval npy` set (all of them when it holds fewer).
fn first_slices(all: EvalSet, n: usize) -> EvalSet {
    let n = n.min(all.images.images.len());
    if n == all.images.images.len() {
        return all;
    }
    EvalSet {
        images: ImageSet {
            description: format!("{} [slices 0..{n}]", all.images.description),
            images: all.images.images[..n].to_vec(),
            ..all.images.clone()
        },
        masks: all.masks[..n].to_vec(),
    }
}

/// LiteRT `BUILTIN_REF` against our runtime on the held-out slices: the report's line.
fn litert_check(
    int8: &tflite_writer::Model,
    model_path: &Path,
    evaluation: &EvalSet,
    args: &QuantizeArgs,
) -> anyhow::Result<String> {
    let sg = &int8.subgraphs[0];
    let q = sg.tensors[sg.inputs[0] as usize]
        .quantization
        .clone()
        .context("int8 input has no quantisation")?;
    let inputs: Vec<Vec<i8>> = evaluation
        .images
        .images
        .iter()
        .map(|x| unet_quantizer::verify::quantize_input(x, q.scale[0], q.zero_point[0] as i32))
        .collect();
    Ok(match litert::available() {
        Err(why) => format!("skipped: {why}"),
        Ok(()) => {
            let work = args.out.join("quant_checks");
            let r = litert::compare(int8, model_path, &inputs, &work)?;
            format!(
                "{} slices, {} values, {} mismatches (max |diff| {} LSB){}",
                r.samples,
                r.values,
                r.mismatches,
                r.max_abs_diff,
                if r.is_exact() { ": bit-exact" } else { "" }
            )
        }
    })
}

/// Runs `cargo xtask quantize`.
pub fn run(args: &QuantizeArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let method = Method::from_str(&args.method).map_err(anyhow::Error::msg)?;
    if args.calib_samples == 0 {
        bail!("--calib-samples 0: at least one calibration slice is needed");
    }
    // Refuse unusable output paths before any work, and clear what killed runs left behind.
    let fp32_path = args.out.join("unet_fp32.tflite");
    let int8_path = args.out.join("unet_int8.tflite");
    let report_paths = unet_quantizer::report::QuantReport::FILE_NAMES.map(|n| args.out.join(n));
    for path in [&fp32_path, &int8_path]
        .into_iter()
        .chain(&report_paths)
        .chain(&args.save_calib)
    {
        artifact_io::check_replaceable(path)?;
    }
    for dir in [
        Some(args.out.as_path()),
        args.save_calib.as_deref().and_then(Path::parent),
    ]
    .into_iter()
    .flatten()
    {
        if let Err(e) = artifact_io::clean_stale_temporaries(dir) {
            tracing::warn!("{}: cannot clean stale temporary files: {e}", dir.display());
        }
    }
    // 1. The float model.
    let t = Instant::now();
    let (float, train_data) = match &args.model {
        Some(path) => {
            let model = tflite_writer::read_model_file(path)
                .with_context(|| format!("reading the float model {}", path.display()))?;
            (model, None)
        }
        None => {
            if !args.checkpoint.exists() {
                bail!(
                    "{}: checkpoint not found; train first (`cargo xtask train`) or pass --checkpoint PATH or --model FLOAT.tflite",
                    args.checkpoint.display()
                );
            }
            let device = unet_train::BackendKind::Flex.device()?;
            let (model, _) = unet_train::load_model(&args.checkpoint, &device)
                .with_context(|| format!("loading the checkpoint {}", args.checkpoint.display()))?;
            (
                unet_train::export_float(&model),
                training_data(&args.checkpoint),
            )
        }
    };
    let load_s = t.elapsed().as_secs_f64();
    let graph = unet_quantizer::prepare_float(&float).context("preparing the float model")?;
    let size = graph.height;
    if graph.height != graph.width {
        bail!(
            "the model input is {}x{}; the slice sources make square slices",
            graph.height,
            graph.width
        );
    }
    let base = train_data.unwrap_or_default();
    let seed = args.seed.unwrap_or(base.seed);

    // 2. Data: calibration from the training split, held-out from validation (auto) and test.
    let t = Instant::now();
    let calib = load_images(
        &base,
        args.calib,
        args.data_path.as_ref(),
        Split::Train,
        args.calib_samples,
        size,
        seed,
    )
    .context("calibration data")?;
    let evaluation = if args.eval == Some(DataArg::Npy) {
        first_slices(load_eval_npy(args)?, args.eval_samples)
    } else {
        load_eval(args, &base, Split::Test, size, seed).context("evaluation data")?
    };
    let data_s = t.elapsed().as_secs_f64();
    let calib_npy = args.save_calib.as_ref().map(|_| {
        write_npy(&NpyArray {
            shape: vec![calib.images.len(), calib.height, calib.width, 1],
            data: NpyData::F32(calib.images.concat()),
        })
    });

    // 3. Quantise and verify.
    let config = QuantConfig {
        method,
        percentile: args.percentile,
        bias_correction: args.bias_correction,
        equalize: !args.no_equalize,
        logistic_range: !args.no_logistic_range,
        strict: args.strict,
        threads: args
            .threads
            .unwrap_or_else(unet_quantizer::calibrate::default_threads),
        evaluation: Some(evaluation.clone()),
        reference: None,
    };
    let (int8, mut report) = quantize(&float, &calib, &config)?;
    report.command_line = std::env::args().collect();
    report.git_commit = unet_bench::sys::git_commit(&project_root());
    report.seed = Some(seed);
    report.timings_s.insert("load float model".into(), load_s);
    report.timings_s.insert("load data".into(), data_s);

    // 4. Stage the models: written to temporaries now, put in place together with the report
    //    only after the optional checks passed, so a failed check leaves the previous set.
    let t = Instant::now();
    let mut staged = artifact_io::Staged::new();
    let fp32_bytes =
        tflite_writer::write_model(&graph.model).context("serialising the float model")?;
    let int8_bytes = tflite_writer::write_model(&int8).context("serialising the int8 model")?;
    staged.write(&fp32_path, &fp32_bytes)?;
    staged.write(&int8_path, &int8_bytes)?;
    if let (Some(path), Some(bytes)) = (&args.save_calib, &calib_npy) {
        staged.write(path, bytes)?;
    }
    report.fp32_model_bytes = Some(fp32_bytes.len());
    report
        .timings_s
        .insert("write models".into(), t.elapsed().as_secs_f64());
    report.timings_s.insert(
        "total (quantize command, before optional checks)".into(),
        start.elapsed().as_secs_f64(),
    );

    // 5. Optional external checks, on a copy of the new int8 model in quant_checks/.
    let checks = Instant::now();
    if args.litert || args.vela {
        let checked = args.out.join("quant_checks").join("unet_int8.tflite");
        write_atomic(&checked, &int8_bytes)?;
        if args.litert {
            report.litert_bit_exact = Some(litert_check(&int8, &checked, &evaluation, args)?);
        }
        if args.vela {
            match vela::available() {
                Err(why) => report.warnings.push(format!("vela skipped: {why}")),
                Ok(_) => {
                    for accelerator in vela::ACCELERATORS {
                        let dir = args.out.join("quant_checks").join(accelerator);
                        report
                            .vela
                            .push(vela::compile(&checked, accelerator, &dir)?);
                    }
                }
            }
        }
    }
    let checks_s = checks.elapsed().as_secs_f64();
    // The floor: the calibration passes at this machine's measured f32 peak, against the whole
    // command (the peak measurement included, the optional checks not).
    let peak = unet_quantizer::floor::measure_f32_peak(config.threads);
    let flops = unet_quantizer::floor::flops_per_pass(&graph.model);
    report.compute_floor = Some(unet_quantizer::floor::ComputeFloor {
        flops_per_pass: flops,
        passes: calib.images.len(),
        peak,
        floor_s: calib.images.len() as f64 * flops / (peak.gflops * 1e9),
        achieved_s: start.elapsed().as_secs_f64() - checks_s,
    });
    for (name, bytes) in report.files()? {
        staged.write(&args.out.join(name), bytes.as_bytes())?;
    }
    staged.commit()?;

    println!("{}", report.summary());
    if let Some(l) = &report.litert_bit_exact {
        println!("LiteRT BUILTIN_REF vs tflite-runtime: {l}");
    }
    for v in &report.vela {
        println!(
            "vela {}: {} NPU ops, {} CPU ops, estimated {}",
            v.accelerator,
            v.npu_ops,
            v.cpu_ops,
            v.inference_ms.map_or("-".into(), |m| format!("{m:.2} ms"))
        );
    }
    println!(
        "wrote {}, {}, quant_report.json and quant_report.md in {} ({:.2} s)",
        fp32_path.display(),
        int8_path.display(),
        args.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
