//! Post-training quantisation of float TFLite U-Nets: full int8, TFLite's 16x8 (int16
//! activations, int8 weights, int64 bias) and mixed int8/int16 ([`Precision`]).
//!
//! [`quantize`] takes a float model in the owned IR of `tflite-writer` (exported from the burn
//! U-Net, or read from a `.tflite` made by TensorFlow's converter) and a representative dataset,
//! and returns an int8 model with int8 input and output, per-channel int8 weights and int32
//! bias, plus a [`QuantReport`]; [`quantize_all`] returns every requested precision from one
//! calibration ([`mixed`] chooses the int16 layers of `mixed`). Its stages, one module each:
//!
//! 1. [`graph`]: checks the model and folds shape-only subgraphs away (TRANSPOSE_CONV output
//!    shapes become constants; no SHAPE/STRIDED_SLICE/PACK survives).
//! 2. [`equalize`]: rescales concatenation inputs per channel (function-preserving) so the widest
//!    no longer sets the shared int8 scale.
//! 3. [`calibrate`]: runs the float model through `tflite-runtime`, observing every tensor.
//! 4. [`observer`]: `minmax`, `percentile`, `mse` ranges (and the LOGISTIC input's range, chosen
//!    after the sigmoid); `auto` picks by output SQNR on calibration slices.
//! 5. [`rewrite`]: parameters under the TFLite int8 (and 16x8) constraints (shared scales for max-pool,
//!    resize and concatenation, assigned to the producers so no requantise op is needed;
//!    LOGISTIC at 1/256, −128; ReLU ranges from 0), weights and bias, and the int8 graph.
//!    [`gptq`] chooses the int8 weights of int16 operators (all with `--weight-rounding gptq`)
//!    against each layer's output error; [`mixed`] chooses which groups go to int16.
//! 6. [`verify`]: per-tensor and output SQNR, Dice and mask agreement on held-out data.
//! 7. [`report`]: JSON, Markdown and the terminal summary; [`vela`] and [`litert`] run the
//!    external checks (Arm Vela, LiteRT `BUILTIN_REF`).
//!
//! [`dataset`] loads calibration and evaluation sets and flags noise-like or off-distribution
//! calibration data — the mistake that collapsed the seed project's int8 Dice. [`floor`] measures
//! the machine's f32 peak and the calibration passes' compute floor that `cargo xtask quantize`
//! reports its time against.

#![warn(missing_docs)]

pub mod calibrate;
pub mod dataset;
pub mod equalize;
mod error;
pub mod floor;
pub mod gptq;
pub mod graph;
pub mod litert;
pub mod mixed;
pub mod observer;
pub mod report;
pub mod rewrite;
pub mod vela;
pub mod verify;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Instant;

use tflite_runtime::{Interpreter, KernelTier, Options, TensorData};
use tflite_writer::{Activation, BuiltinOp, Model, TensorType};

pub use dataset::{DataStats, EvalSet, ImageSet};
pub use error::QuantError;
pub use graph::{FloatGraph, prepare_float};
pub use observer::{Method, Observer};
pub use report::QuantReport;
pub use rewrite::Precision;

use crate::calibrate::parallel_chunks;
use crate::graph::fused_activation;
use crate::report::{CalibrationInfo, MethodScore, TensorReport};
use crate::rewrite::{ParamPlan, QuantizedModel, assign_params, build_quantized};
use crate::verify::{Accuracy, evaluate};

/// Default percentile of the `percentile` observer.
pub const DEFAULT_PERCENTILE: f64 = 99.99;

/// `--method auto` scores each observer's int8 model by its output SQNR against fp32 on this many
/// calibration slices, whose float outputs the calibration pass kept (no second float run).
pub const AUTO_SLICES: usize = 16;

/// `--precision mixed` scores its candidates on this many calibration slices (more than `auto`:
/// its choices differ by fractions of a dB).
pub const MIXED_SLICES: usize = 48;

/// Options of [`quantize`].
#[derive(Debug, Clone)]
pub struct QuantConfig {
    /// Observer, or `auto`.
    pub method: Method,
    /// Percentile for the `percentile` observer (e.g. 99.99).
    pub percentile: f64,
    /// Apply empirical bias correction from the calibration set.
    pub bias_correction: bool,
    /// Rescale concatenation inputs so the widest no longer dictates the shared int8 scale
    /// ([`equalize`]).
    pub equalize: bool,
    /// Choose the range of a tensor read only by LOGISTIC against the error after the sigmoid
    /// ([`observer::logistic_input_range`]) instead of taking the observer's.
    pub logistic_range: bool,
    /// Make calibration-data problems errors instead of warnings.
    pub strict: bool,
    /// Worker threads.
    pub threads: usize,
    /// Held-out set for the final verification (per-tensor SQNR, Dice, agreement).
    pub evaluation: Option<EvalSet>,
    /// In-distribution statistics to compare the calibration data with (default: those of the
    /// evaluation set, else of the selection set).
    pub reference: Option<DataStats>,
    /// The precisions to build, from one calibration (the first is [`quantize`]'s).
    pub precisions: Vec<Precision>,
    /// Type of the model input and output (`None`: their own precision, so no QUANTIZE op;
    /// otherwise QUANTIZE ops convert where they differ).
    pub io: Option<TensorType>,
    /// Where `mixed` may compile models with Arm Vela for its per-layer costs (`None`, or Vela
    /// missing: MAC-based costs).
    pub vela_dir: Option<PathBuf>,
    /// How the int8 weights are rounded.
    pub weight_rounding: WeightRounding,
}

/// How the int8 weights are rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightRounding {
    /// Each weight to nearest.
    Nearest,
    /// [`gptq`] for every operator.
    Gptq,
    /// [`gptq`] for operators with int16 activations (16x8 is bound by its weights: +5.8 dB on
    /// our checkpoint), nearest for int8 ones (bound by their activations: GPTQ measured
    /// −0.8 dB there).
    Auto,
}

impl std::str::FromStr for WeightRounding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "nearest" => Ok(WeightRounding::Nearest),
            "gptq" => Ok(WeightRounding::Gptq),
            "auto" => Ok(WeightRounding::Auto),
            other => Err(format!(
                "unknown weight rounding {other:?}, expected nearest, gptq or auto"
            )),
        }
    }
}

impl Default for QuantConfig {
    fn default() -> Self {
        Self {
            method: Method::Fixed(Observer::MinMax),
            percentile: DEFAULT_PERCENTILE,
            bias_correction: false,
            equalize: true,
            logistic_range: true,
            strict: false,
            threads: calibrate::default_threads(),
            evaluation: None,
            reference: None,
            precisions: vec![Precision::Int8],
            io: None,
            vela_dir: None,
            weight_rounding: WeightRounding::Auto,
        }
    }
}

/// One observer's model: its parameters, the int8 graph, and its selection score.
type Candidate = (Observer, ParamPlan, QuantizedModel, Option<Option<f64>>);

/// One precision's model and report.
#[derive(Debug, Clone)]
pub struct QuantOutcome {
    /// Its precision.
    pub precision: Precision,
    /// The quantised model.
    pub model: Model,
    /// Its report.
    pub report: QuantReport,
}

fn time<T>(timings: &mut BTreeMap<String, f64>, key: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    *timings.entry(key.to_string()).or_default() += start.elapsed().as_secs_f64();
    out
}

/// Quantises `float_model` with the calibration images `calib` (see the crate docs) in the first
/// of `config.precisions` (int8 when empty).
pub fn quantize(
    float_model: &Model,
    calib: &ImageSet,
    config: &QuantConfig,
) -> Result<(Model, QuantReport), QuantError> {
    let mut config = config.clone();
    config.precisions.truncate(1);
    let outcome = quantize_all(float_model, calib, &config)?
        .into_iter()
        .next()
        .ok_or_else(|| QuantError::UnsupportedModel("no precision requested".into()))?;
    Ok((outcome.model, outcome.report))
}

/// Quantises `float_model` in every precision of `config.precisions` (int8 when empty) from one
/// calibration: the observer is chosen on the int8 model, then each precision's model is built,
/// verified and reported.
pub fn quantize_all(
    float_model: &Model,
    calib: &ImageSet,
    config: &QuantConfig,
) -> Result<Vec<QuantOutcome>, QuantError> {
    let precisions = if config.precisions.is_empty() {
        vec![Precision::Int8]
    } else {
        config.precisions.clone()
    };
    // Concatenation equalisation balances int8 activation grids at the cost of the weights'
    // per-channel balance; 16x8 is bound by its int8 weights, so it is built from the model as
    // it is (measured on TensorFlow's U-Net: 42.12 dB equalised, 43.72 dB not).
    if config.equalize && precisions.contains(&Precision::Int16x8) {
        let split = |keep: &dyn Fn(&Precision) -> bool, equalize: bool| QuantConfig {
            precisions: precisions.iter().copied().filter(|p| keep(p)).collect(),
            equalize,
            ..config.clone()
        };
        let sixteen = split(&|&p| p == Precision::Int16x8, false);
        let others = split(&|&p| p != Precision::Int16x8, true);
        let mut built = quantize_all(float_model, calib, &sixteen)?;
        if !others.precisions.is_empty() {
            built.extend(quantize_all(float_model, calib, &others)?);
        }
        built.sort_by_key(|o| precisions.iter().position(|&p| p == o.precision));
        return Ok(built);
    }
    if config.bias_correction && precisions.iter().any(|&p| p != Precision::Int8) {
        return Err(QuantError::BadData {
            what: "options",
            detail: "bias correction is implemented for int8 only; drop --bias-correction or use --precision int8".into(),
        });
    }
    if let Some(io) = config.io
        && !matches!(io, TensorType::Int8 | TensorType::Int16)
    {
        return Err(QuantError::BadData {
            what: "options",
            detail: format!("model IO type {io:?}: expected int8 or int16"),
        });
    }
    let mut report = QuantReport {
        tool: format!("unet-quantizer {}", env!("CARGO_PKG_VERSION")),
        method_requested: config.method.to_string(),
        percentile: config.percentile,
        bias_correction: config.bias_correction,
        ..QuantReport::default()
    };
    if config.percentile.is_nan() || config.percentile <= 50.0 || config.percentile > 100.0 {
        return Err(QuantError::BadData {
            what: "calibration",
            detail: format!("percentile {} is outside (50, 100]", config.percentile),
        });
    }
    let mut timings = BTreeMap::new();
    let mut graph = time(&mut timings, "prepare", || prepare_float(float_model))?;
    report.removed_float_ops = graph.removed_ops;
    let shape = format!("[1,{},{},{}]", graph.height, graph.width, graph.channels);
    dataset::check_fits(calib, "calibration", graph.input_len(), &shape)?;
    if let Some(set) = &config.evaluation {
        dataset::check_fits(&set.images, "evaluation", graph.input_len(), &shape)?;
        if set.masks.len() != set.images.images.len()
            || set.masks.iter().any(|m| m.len() != graph.input_len())
        {
            return Err(QuantError::BadData {
                what: "evaluation",
                detail: format!(
                    "{}: masks do not match the images one to one",
                    set.images.description
                ),
            });
        }
    }

    // Is the calibration data what the model will see?
    let calib_stats = dataset::data_stats(calib);
    let reference = config.reference.or_else(|| {
        config
            .evaluation
            .as_ref()
            .map(|e| dataset::data_stats(&e.images))
    });
    let problems = dataset::check_calibration(&calib_stats, reference.as_ref());
    if !problems.is_empty() {
        if config.strict {
            return Err(QuantError::CalibrationRejected(problems.join("; ")));
        }
        for p in &problems {
            tracing::warn!("{p}");
            report.warnings.push(p.clone());
        }
    }
    report.calibration = Some(CalibrationInfo {
        data: calib.description.clone(),
        samples: calib.images.len(),
        stats: calib_stats,
        reference,
        problems,
    });

    if config.equalize {
        let (equalized, rows) = time(&mut timings, "equalise concatenations", || {
            equalize::equalize_concatenations(&graph, &calib.images, config.threads)
        })?;
        graph = equalized;
        report.equalized = rows;
    }
    let observers: Vec<Observer> = match config.method {
        Method::Fixed(o) => vec![o],
        Method::Auto => Observer::ALL.to_vec(),
    };
    // `minmax` needs only the extremes; histograms where an observer or the LOGISTIC input
    // search reads them.
    let histograms = if observers.iter().all(|&o| o == Observer::MinMax) {
        calibrate::Histograms::Only(rewrite::logistic_inputs(&graph.model))
    } else {
        calibrate::Histograms::All
    };
    let keep_outputs = if precisions.contains(&Precision::Mixed) {
        MIXED_SLICES.min(calib.images.len())
    } else if config.method == Method::Auto {
        AUTO_SLICES.min(calib.images.len())
    } else {
        0
    };
    let stats = time(&mut timings, "calibrate", || {
        calibrate::calibrate(
            &graph.model,
            &calib.images,
            config.threads,
            &histograms,
            keep_outputs,
        )
    })?;
    timings.insert(
        "calibrate: of which observers (thread-seconds)".into(),
        stats.observer_thread_s,
    );

    let mut candidates: Vec<Candidate> = Vec::new();
    for &observer in &observers {
        let plan = time(&mut timings, "assign parameters", || {
            assign_params(
                &graph,
                &stats,
                observer,
                config.percentile,
                config.logistic_range,
            )
        })?;
        let description = format!("int8 U-Net (unet-quantizer, observer {observer})");
        let mut int8 = time(&mut timings, "rewrite", || {
            build_quantized(&graph, &plan, None, &HashMap::new(), &description)
        })?;
        if config.bias_correction {
            let deltas = time(&mut timings, "bias correction", || {
                bias_correction(&graph, &int8, &calib.images, config.threads)
            })?;
            int8 = time(&mut timings, "rewrite", || {
                build_quantized(&graph, &plan, None, &deltas, &description)
            })?;
        }
        let score = if config.method == Method::Auto {
            let n = stats.outputs.len().min(AUTO_SLICES);
            Some(time(
                &mut timings,
                "select (auto): int8 candidates",
                || {
                    verify::output_sqnr(
                        &int8.model,
                        &calib.images[..n],
                        &stats.outputs[..n],
                        config.threads,
                    )
                },
            )?)
        } else {
            None
        };
        candidates.push((observer, plan, int8, score));
    }
    // Keep the best output SQNR against fp32 (`None` = identical to fp32, the best).
    let key = |c: &Candidate| c.3.flatten().unwrap_or(f64::INFINITY);
    let best = (0..candidates.len())
        .max_by(|&a, &b| {
            key(&candidates[a])
                .partial_cmp(&key(&candidates[b]))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .unwrap_or(0);
    if config.method == Method::Auto {
        for (i, c) in candidates.iter().enumerate() {
            report.selection.push(MethodScore {
                observer: c.0.to_string(),
                output_sqnr_db: c.3.flatten(),
                slices: stats.outputs.len().min(AUTO_SLICES),
                chosen: i == best,
            });
        }
    }
    let (observer, mut plan, mut int8, _) = candidates.swap_remove(best);
    let gptq_wanted = match config.weight_rounding {
        WeightRounding::Nearest => false,
        WeightRounding::Gptq => true,
        WeightRounding::Auto => precisions.iter().any(|&p| p != Precision::Int8),
    };
    if gptq_wanted {
        plan.rounded_weights = time(&mut timings, "GPTQ weight rounding", || {
            gptq::round_weights(&graph, &calib.images, config.threads)
        })?;
        plan.rounded_for_int8 = config.weight_rounding == WeightRounding::Gptq;
        if plan.rounded_for_int8 {
            let description =
                format!("int8 U-Net (unet-quantizer, observer {observer}, GPTQ weights)");
            int8 = time(&mut timings, "rewrite", || {
                build_quantized(&graph, &plan, None, &HashMap::new(), &description)
            })?;
        }
    }
    report.weight_rounding = match (gptq_wanted, plan.rounded_for_int8) {
        (false, _) => "nearest".into(),
        (true, true) => "gptq (every operator)".into(),
        (true, false) => "gptq for int16 operators, nearest for int8 ones".into(),
    };
    report.method = observer.to_string();
    report.warnings.extend(plan.warnings.iter().cloned());
    report.logistic_inputs = plan
        .logistic_inputs
        .iter()
        .map(|(name, fit)| report::LogisticInputReport {
            name: name.clone(),
            fit: *fit,
        })
        .collect();
    for w in &plan.warnings {
        tracing::warn!("{w}");
    }

    let mut outcomes = Vec::with_capacity(precisions.len());
    for &precision in &precisions {
        let mut report = report.clone();
        let mut timings = timings.clone();
        let (plan_p, model) = match precision {
            // The int8 model is the one built for the observer choice, unless the IO is forced.
            Precision::Int8 if config.io.is_none() => (plan.clone(), int8.clone()),
            _ => {
                let plan_p = if precision == Precision::Mixed {
                    let (costs, int8_ms) = time(&mut timings, "mixed: costs", || {
                        mixed_costs(&graph, &plan, config)
                    })?;
                    let compile = |groups: &std::collections::BTreeSet<usize>| {
                        mixed_compiled_cost(&graph, &plan, groups, config, int8_ms.unwrap_or(1.0))
                    };
                    let n = stats.outputs.len();
                    let choice = time(&mut timings, "mixed: choose", || {
                        mixed::choose(
                            &graph,
                            &plan,
                            &costs,
                            &calib.images[..n],
                            &stats.outputs,
                            config.threads,
                            int8_ms.map(|_| &compile as mixed::CompiledCost<'_>),
                        )
                    })?;
                    let p = plan.with_int16_groups(&choice.int16_groups());
                    report.mixed = Some(choice);
                    p
                } else {
                    plan.in_precision(precision)
                };
                let description =
                    format!("{precision} U-Net (unet-quantizer, observer {observer})");
                let model = time(&mut timings, "rewrite", || {
                    build_quantized(&graph, &plan_p, config.io, &HashMap::new(), &description)
                })?;
                (plan_p, model)
            }
        };
        report.precision = precision.to_string();
        report.conversions = model.conversions;
        let accuracy = match &config.evaluation {
            Some(eval) => Some(time(&mut timings, "verify", || {
                evaluate(
                    &graph.model,
                    &model.model,
                    &model.activations,
                    eval,
                    true,
                    None,
                    config.threads,
                )
            })?),
            None => None,
        };
        let bytes = time(&mut timings, "write (serialise)", || {
            tflite_writer::write_model(&model.model)
        })?;
        report.model_bytes = bytes.len();
        let sg = &model.model.subgraphs[0];
        report.io = [sg.inputs[0], sg.outputs[0]]
            .map(|t| format!("{:?}", sg.tensors[t as usize].dtype).to_lowercase())
            .join(" -> ");
        fill_tensor_rows(
            &mut report,
            &graph,
            &stats,
            &plan_p,
            &model,
            accuracy.as_ref(),
        );
        report.accuracy = accuracy;
        report.parameters = tflite_runtime::synth::parameter_count(&model.model);
        for op in &sg.operators {
            *report.ops.entry(op.op.name()).or_default() += 1;
        }
        report.timings_s = timings;
        outcomes.push(QuantOutcome {
            precision,
            model: model.model,
            report,
        });
    }
    Ok(outcomes)
}

/// The group costs `mixed` trades against: Vela per-layer cycles on `ethos-u55-256` of the int8
/// and the int16x8 model when `config.vela_dir` is set and Vela runs (with the int8 model's
/// estimated ms), else MACs.
fn mixed_costs(
    graph: &FloatGraph,
    plan: &ParamPlan,
    config: &QuantConfig,
) -> Result<(mixed::GroupCosts, Option<f64>), QuantError> {
    let Some(dir) = &config.vela_dir else {
        return Ok((mixed::GroupCosts::from_macs(plan, graph), None));
    };
    if let Err(why) = vela::available() {
        tracing::warn!("mixed precision costs from MACs: vela not available ({why})");
        return Ok((mixed::GroupCosts::from_macs(plan, graph), None));
    }
    let accelerator = vela::COST_ACCELERATOR;
    let mut cycles = Vec::new();
    let mut int8_ms = None;
    for precision in [Precision::Int8, Precision::Int16x8] {
        let model = build_quantized(
            graph,
            &plan.in_precision(precision),
            None,
            &HashMap::new(),
            "mixed precision cost model",
        )?;
        let (layers, ms) = vela::layer_cycles(
            &model.model,
            accelerator,
            &dir.join(format!("mixed_cost_{precision}")),
        )?;
        cycles.push(layers);
        int8_ms.get_or_insert(ms);
    }
    let costs = mixed::GroupCosts::from_layer_cycles(
        plan,
        graph,
        &cycles[0],
        &cycles[1],
        format!("vela {accelerator} per-layer cycles"),
    );
    Ok((costs, int8_ms))
}

/// Vela's estimate of the mixed model with `groups` in int16, as a fraction of int8's `int8_ms`.
fn mixed_compiled_cost(
    graph: &FloatGraph,
    plan: &ParamPlan,
    groups: &std::collections::BTreeSet<usize>,
    config: &QuantConfig,
    int8_ms: f64,
) -> Result<f64, QuantError> {
    let dir = config
        .vela_dir
        .as_ref()
        .ok_or_else(|| QuantError::UnsupportedModel("no Vela directory".into()))?;
    let model = build_quantized(
        graph,
        &plan.with_int16_groups(groups),
        config.io,
        &HashMap::new(),
        "mixed precision cost check",
    )?;
    let (_, ms) = vela::layer_cycles(
        &model.model,
        vela::COST_ACCELERATOR,
        &dir.join("mixed_check"),
    )?;
    Ok(ms / int8_ms)
}

fn fill_tensor_rows(
    report: &mut QuantReport,
    graph: &FloatGraph,
    stats: &calibrate::CalibrationStats,
    plan: &ParamPlan,
    int8: &QuantizedModel,
    accuracy: Option<&Accuracy>,
) {
    let sg = &graph.model.subgraphs[0];
    let mut producer: HashMap<usize, String> = HashMap::new();
    for op in &sg.operators {
        producer.insert(op.outputs[0] as usize, op.op.name());
    }
    let sqnr: HashMap<&str, Option<f64>> = accuracy
        .map(|a| {
            a.per_tensor
                .iter()
                .map(|t| (t.name.as_str(), t.sqnr_db))
                .collect()
        })
        .unwrap_or_default();
    for &(f, _) in &int8.activations {
        let t = &sg.tensors[f];
        let p = plan.params[&f];
        let s = stats.tensors.get(&f);
        report.tensors.push(TensorReport {
            name: t.name.clone(),
            op: producer.get(&f).cloned().unwrap_or_else(|| "INPUT".into()),
            shape: t.shape.clone(),
            observed_min: s.map_or(0.0, |s| s.min),
            observed_max: s.map_or(0.0, |s| s.max),
            range: plan.ranges.get(&f).copied().unwrap_or((0.0, 0.0)),
            scale: p.scale,
            zero_point: p.zero_point,
            covered: if p.dtype == TensorType::Int16 {
                (p.scale * -32768.0, p.scale * 32767.0)
            } else {
                (
                    p.scale * (-128 - p.zero_point) as f32,
                    p.scale * (127 - p.zero_point) as f32,
                )
            },
            dtype: if p.dtype == TensorType::Int16 {
                "int16"
            } else {
                "int8"
            }
            .into(),
            group: p.group,
            sqnr_db: sqnr.get(t.name.as_str()).copied().flatten(),
        });
    }
}

/// Empirical bias correction: the mean per-channel error `f32 − dequant(int8)` of every
/// convolution's output over (up to 32) calibration slices, measured where neither side is
/// clipped, becomes a float bias offset. All layers are corrected from one run, so a layer's
/// correction does not yet see the corrections upstream of it.
fn bias_correction(
    graph: &FloatGraph,
    int8: &QuantizedModel,
    images: &[Vec<f32>],
    threads: usize,
) -> Result<HashMap<usize, Vec<f32>>, QuantError> {
    let sg = &graph.model.subgraphs[0];
    // Float output tensor → (op index, channels, ReLU).
    let mut convs: HashMap<usize, (usize, usize, bool)> = HashMap::new();
    for (op_index, op) in sg.operators.iter().enumerate() {
        if matches!(op.op, BuiltinOp::CONV_2D | BuiltinOp::TRANSPOSE_CONV) {
            let out = op.outputs[0] as usize;
            let channels = sg.tensors[out].shape.last().copied().unwrap_or(1).max(1) as usize;
            let relu = matches!(
                fused_activation(&op.options),
                Activation::Relu | Activation::Relu6
            );
            convs.insert(out, (op_index, channels, relu));
        }
    }
    let int8_to_float: HashMap<usize, usize> =
        int8.activations.iter().map(|&(f, q)| (q, f)).collect();
    let int8_proto = Interpreter::new(
        &int8.model,
        Options {
            kernels: KernelTier::Best,
            ..Options::default()
        },
    )
    .map_err(QuantError::runtime("int8 model"))?;
    let input_q = int8_proto
        .input_info(0)
        .ok()
        .and_then(|i| i.per_tensor_quant())
        .unwrap_or((1.0, 0));
    let subset = &images[..images.len().min(32)];
    type Sums = HashMap<usize, (Vec<f64>, Vec<u64>)>;
    let parts: Vec<Sums> = parallel_chunks(
        &graph.model,
        "bias correction",
        subset,
        threads,
        |float_rt, part| {
            let mut int8_rt = int8_proto.clone();
            let mut sums: Sums = HashMap::new();
            let mut float_values: HashMap<usize, Vec<f32>> = HashMap::new();
            for image in part {
                float_rt
                    .set_input(0, image)
                    .map_err(QuantError::runtime("bias correction"))?;
                float_values.clear();
                float_rt
                    .invoke_with_observer(&mut |obs| {
                        if let (TensorData::F32(v), true) =
                            (obs.data, convs.contains_key(&obs.tensor.index))
                        {
                            float_values.insert(obs.tensor.index, v.to_vec());
                        }
                    })
                    .map_err(QuantError::runtime("bias correction"))?;
                let q_in = verify::quantize_input(image, input_q.0, input_q.1);
                int8_rt
                    .set_input(0, &q_in)
                    .map_err(QuantError::runtime("bias correction"))?;
                int8_rt
                    .invoke_with_observer(&mut |obs| {
                        let (TensorData::I8(q), Some((scale, zp))) =
                            (obs.data, obs.tensor.per_tensor_quant())
                        else {
                            return;
                        };
                        let Some(f_idx) = int8_to_float.get(&obs.tensor.index) else {
                            return;
                        };
                        let (Some(&(_, channels, relu)), Some(f)) =
                            (convs.get(f_idx), float_values.get(f_idx))
                        else {
                            return;
                        };
                        let entry = sums
                            .entry(*f_idx)
                            .or_insert_with(|| (vec![0.0; channels], vec![0; channels]));
                        for (i, (&fv, &qv)) in f.iter().zip(q).enumerate() {
                            if qv == -128 || qv == 127 || (relu && fv <= 0.0) {
                                continue;
                            }
                            let c = i % channels;
                            entry.0[c] += f64::from(fv - scale * (i32::from(qv) - zp) as f32);
                            entry.1[c] += 1;
                        }
                    })
                    .map_err(QuantError::runtime("bias correction"))?;
            }
            Ok(sums)
        },
    )?;
    let mut total: Sums = HashMap::new();
    for part in parts {
        for (k, (s, n)) in part {
            let e = total
                .entry(k)
                .or_insert_with(|| (vec![0.0; s.len()], vec![0; s.len()]));
            for c in 0..s.len() {
                e.0[c] += s[c];
                e.1[c] += n[c];
            }
        }
    }
    let mut deltas = HashMap::new();
    for (f_idx, (s, n)) in total {
        if let Some(&(op_index, _, _)) = convs.get(&f_idx) {
            let delta: Vec<f32> = s
                .iter()
                .zip(&n)
                .map(|(&s, &n)| if n > 0 { (s / n as f64) as f32 } else { 0.0 })
                .collect();
            deltas.insert(op_index, delta);
        }
    }
    Ok(deltas)
}
