//! `cargo xtask quantize`: trained checkpoint (or a float `.tflite`) → `unet_int8.tflite`
//! (and, with `--precision`, `unet_int16x8.tflite`, `unet_mixed.tflite`).
//!
//! Loads the float model (exporting the checkpoint, or reading `--model`), calibrates on 100
//! slices of the training source by default, quantises with crates/unet-quantizer in every
//! requested precision, verifies on held-out slices, and writes `unet_fp32.tflite`, one
//! `unet_<precision>.tflite` each, `quant_report.json` and `quant_report.md` (the first
//! precision's report, with a row per precision) and `quant_report_<precision>.json` for the
//! others into `--out` (atomic writes, all or nothing). `--vela` and `--litert` add the
//! NPU-coverage and bit-exactness checks (and LiteRT XNNPACK latency) to every precision.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use artifact_io::write_atomic;
use tflite_runtime::npy::{NpyArray, NpyData, write_npy};
use unet_data::{DataConfig, SourceKind, Split};
use unet_quantizer::dataset::{EvalSet, ImageSet, from_source, images_from_npy, masks_from_npy};
use unet_quantizer::report::{PrecisionRow, QuantReport};
use unet_quantizer::verify::QuantInput;
use unet_quantizer::{Method, Precision, QuantConfig, litert, quantize_all, vela};

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
    /// Activation precisions to build, comma-separated, from one calibration: int8 (TFLite
    /// full int8), int16x8 (int16 activations, int8 weights, int64 bias), mixed (int8 except
    /// the sharing groups that limit the output, chosen by measurement under a 25 % NPU cost
    /// budget), or all. The first one's report is quant_report.json, with a row per precision.
    #[arg(long, value_delimiter = ',', default_value = "int8")]
    pub precision: Vec<String>,
    /// Model input/output type: int8 or int16 (default: the precision's own, so that no
    /// QUANTIZE op is added: int16 for int16x8, int8 for int8).
    #[arg(long)]
    pub io: Option<String>,
    /// Weight rounding: nearest; gptq (each weight's rounding error compensated on the weights
    /// not yet rounded, against the layer's output on 16 calibration slices); auto (gptq for
    /// operators with int16 activations, which their int8 weights limit; nearest for int8 ones).
    #[arg(long, default_value = "auto")]
    pub weight_rounding: String,
    /// Latency runs per precision for the per-precision table (our runtime and, with
    /// --litert, LiteRT XNNPACK); 0 skips the timing.
    #[arg(long, default_value_t = 5)]
    pub latency_runs: usize,
}

/// The `--precision` list, `all` expanded, duplicates dropped.
fn precisions(args: &QuantizeArgs) -> anyhow::Result<Vec<Precision>> {
    let mut out = Vec::new();
    for p in &args.precision {
        let list = if p.eq_ignore_ascii_case("all") {
            Precision::ALL.to_vec()
        } else {
            vec![Precision::from_str(p.trim()).map_err(anyhow::Error::msg)?]
        };
        for p in list {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    if out.is_empty() {
        bail!("--precision: give at least one of int8, int16x8, mixed, all");
    }
    Ok(out)
}

/// The `--io` type.
fn io_type(args: &QuantizeArgs) -> anyhow::Result<Option<tflite_writer::TensorType>> {
    match args.io.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(None),
        Some("int8") => Ok(Some(tflite_writer::TensorType::Int8)),
        Some("int16") => Ok(Some(tflite_writer::TensorType::Int16)),
        Some(other) => bail!("--io {other}: expected int8 or int16"),
    }
}

/// The model file of a precision.
pub fn model_file(precision: Precision) -> String {
    format!("unet_{precision}.tflite")
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
    let interpreter = tflite_runtime::Interpreter::new(int8, tflite_runtime::Options::default())
        .context("preparing the quantised model")?;
    let info = interpreter.input_info(0)?.clone();
    let inputs = evaluation
        .images
        .images
        .iter()
        .map(|x| QuantInput::for_tensor(x, &info))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(match litert::available() {
        Err(why) => format!("skipped: {why}"),
        Ok(()) => {
            let stem = model_path
                .file_stem()
                .map_or("model".into(), |s| s.to_string_lossy().into_owned());
            let work = args.out.join("quant_checks").join(stem);
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
    let precisions = precisions(args)?;
    let io = io_type(args)?;
    if args.calib_samples == 0 {
        bail!("--calib-samples 0: at least one calibration slice is needed");
    }
    // Refuse unusable output paths before any work, and clear what killed runs left behind.
    let fp32_path = args.out.join("unet_fp32.tflite");
    let model_paths: Vec<PathBuf> = precisions
        .iter()
        .map(|&p| args.out.join(model_file(p)))
        .collect();
    let report_paths: Vec<PathBuf> = QuantReport::FILE_NAMES
        .iter()
        .map(|n| args.out.join(n))
        .chain(
            precisions
                .iter()
                .skip(1)
                .map(|p| args.out.join(format!("quant_report_{p}.json"))),
        )
        .collect();
    for path in std::iter::once(&fp32_path)
        .chain(&model_paths)
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
        precisions: precisions.clone(),
        io,
        vela_dir: (args.vela && precisions.contains(&Precision::Mixed))
            .then(|| args.out.join("quant_checks")),
        weight_rounding: args.weight_rounding.parse().map_err(anyhow::Error::msg)?,
    };
    let mut outcomes = quantize_all(&float, &calib, &config)?;
    for o in &mut outcomes {
        let report = &mut o.report;
        report.command_line = std::env::args().collect();
        report.git_commit = unet_bench::sys::git_commit(&project_root());
        report.seed = Some(seed);
        report.timings_s.insert("load float model".into(), load_s);
        report.timings_s.insert("load data".into(), data_s);
    }

    // 4. Stage the models: written to temporaries now, put in place together with the reports
    //    only after the optional checks passed, so a failed check leaves the previous set.
    let t = Instant::now();
    let mut staged = artifact_io::Staged::new();
    let fp32_bytes =
        tflite_writer::write_model(&graph.model).context("serialising the float model")?;
    staged.write(&fp32_path, &fp32_bytes)?;
    let mut model_bytes = Vec::with_capacity(outcomes.len());
    for (o, path) in outcomes.iter().zip(&model_paths) {
        let bytes = tflite_writer::write_model(&o.model)
            .with_context(|| format!("serialising the {} model", o.precision))?;
        staged.write(path, &bytes)?;
        model_bytes.push(bytes);
    }
    if let (Some(path), Some(bytes)) = (&args.save_calib, &calib_npy) {
        staged.write(path, bytes)?;
    }
    let write_s = t.elapsed().as_secs_f64();
    let before_checks_s = start.elapsed().as_secs_f64();
    for o in &mut outcomes {
        o.report.fp32_model_bytes = Some(fp32_bytes.len());
        o.report.timings_s.insert("write models".into(), write_s);
        o.report.timings_s.insert(
            "total (quantize command, before optional checks)".into(),
            before_checks_s,
        );
    }

    // 5. Optional external checks, on copies of the new models in quant_checks/.
    let checks = Instant::now();
    let vela_ok = if args.vela {
        match vela::available() {
            Err(why) => {
                for o in &mut outcomes {
                    o.report.warnings.push(format!("vela skipped: {why}"));
                }
                false
            }
            Ok(_) => true,
        }
    } else {
        false
    };
    let mut rows = Vec::with_capacity(outcomes.len());
    for (o, bytes) in outcomes.iter_mut().zip(&model_bytes) {
        let file = model_file(o.precision);
        let checked = args.out.join("quant_checks").join(&file);
        if args.litert || args.vela || (precisions.len() > 1 && args.latency_runs > 0) {
            write_atomic(&checked, bytes)?;
        }
        if args.litert {
            o.report.litert_bit_exact = Some(litert_check(&o.model, &checked, &evaluation, args)?);
        }
        if vela_ok {
            for accelerator in vela::ACCELERATORS {
                let dir = args
                    .out
                    .join("quant_checks")
                    .join(format!("{}_{accelerator}", o.precision));
                o.report
                    .vela
                    .push(vela::compile(&checked, accelerator, &dir)?);
            }
        }
        if precisions.len() > 1 {
            rows.push(precision_row(o, &file, &checked, &evaluation, args)?);
        }
    }
    let checks_s = checks.elapsed().as_secs_f64();
    // The floor: the calibration passes at this machine's measured f32 peak, against the whole
    // command (the peak measurement included, the optional checks not).
    let peak = unet_quantizer::floor::measure_f32_peak(config.threads);
    let flops = unet_quantizer::floor::flops_per_pass(&graph.model);
    let floor = unet_quantizer::floor::ComputeFloor {
        flops_per_pass: flops,
        passes: calib.images.len(),
        peak,
        floor_s: calib.images.len() as f64 * flops / (peak.gflops * 1e9),
        achieved_s: start.elapsed().as_secs_f64() - checks_s,
    };
    for (i, o) in outcomes.iter_mut().enumerate() {
        o.report.compute_floor = Some(floor);
        if i == 0 {
            o.report.precisions = rows.clone();
            for (name, text) in o.report.files()? {
                staged.write(&args.out.join(name), text.as_bytes())?;
            }
        } else {
            let text = serde_json::to_string_pretty(&o.report)?;
            staged.write(
                &args.out.join(format!("quant_report_{}.json", o.precision)),
                text.as_bytes(),
            )?;
        }
    }
    staged.commit()?;

    for o in &outcomes {
        let report = &o.report;
        if outcomes.len() > 1 {
            println!("== {} ==", o.precision);
        }
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
    }
    if let Some(first) = outcomes.first()
        && !first.report.precisions.is_empty()
    {
        println!("{}", first.report.precision_table());
    }
    let written: Vec<String> = model_paths
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    println!(
        "wrote {}, {}, and the reports in {} ({:.2} s)",
        fp32_path.display(),
        written.join(", "),
        args.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One precision's row of the comparison: accuracy from its report, latency of our runtime
/// (median of `--latency-runs`, best kernels, one thread) and of LiteRT XNNPACK (with --litert).
fn precision_row(
    o: &unet_quantizer::QuantOutcome,
    file: &str,
    checked: &Path,
    evaluation: &EvalSet,
    args: &QuantizeArgs,
) -> anyhow::Result<PrecisionRow> {
    let r = &o.report;
    let a = r.accuracy.as_ref();
    let mut row = PrecisionRow {
        precision: o.precision.to_string(),
        file: file.to_string(),
        io: r.io.clone(),
        output_sqnr_db: a.and_then(|a| a.output_sqnr_db),
        dice: a.map(|a| a.dice_quantized),
        dice_fp32: a.map(|a| a.dice_fp32),
        mask_agreement: a.map(|a| a.mask_agreement),
        model_bytes: r.model_bytes,
        quantize_ops: r.ops.get("QUANTIZE").copied().unwrap_or(0),
        int16_tensors: (
            r.tensors.iter().filter(|t| t.dtype == "int16").count(),
            r.tensors.len(),
        ),
        bit_exact: r.litert_bit_exact.clone(),
        vela: r.vela.clone(),
        ..PrecisionRow::default()
    };
    if args.latency_runs == 0 {
        row.latency_note = Some("--latency-runs 0".into());
        return Ok(row);
    }
    let mut rt = tflite_runtime::Interpreter::new(
        &o.model,
        tflite_runtime::Options {
            kernels: tflite_runtime::KernelTier::Best,
            threads: 1,
        },
    )?;
    let info = rt.input_info(0)?.clone();
    let image = evaluation
        .images
        .images
        .first()
        .context("no evaluation slice to time with")?;
    QuantInput::for_tensor(image, &info)?.set(&mut rt, 0)?;
    rt.invoke()?;
    let mut times = Vec::with_capacity(args.latency_runs);
    for _ in 0..args.latency_runs {
        let t = Instant::now();
        rt.invoke()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    row.cpu_ms = Some(times[times.len() / 2]);
    if args.litert {
        match litert::available() {
            Err(why) => row.latency_note = Some(format!("XNNPACK not timed: {why}")),
            Ok(()) => {
                let runs = args.latency_runs.to_string();
                let text = litert_oracle::run([
                    std::ffi::OsStr::new("time"),
                    checked.as_os_str(),
                    std::ffi::OsStr::new(&runs),
                    std::ffi::OsStr::new("1"),
                    std::ffi::OsStr::new("1"),
                ])
                .map_err(|e| anyhow::anyhow!("LiteRT timing of {}: {e}", checked.display()))?;
                let last = text.lines().last().unwrap_or_default();
                let json: serde_json::Value = serde_json::from_str(last)
                    .with_context(|| format!("parsing LiteRT timing output {last:?}"))?;
                row.xnnpack_ms = json["xnnpack_1thread"]["median_ms"].as_f64();
            }
        }
    } else {
        row.latency_note = Some("XNNPACK timed with --litert only".into());
    }
    Ok(row)
}
