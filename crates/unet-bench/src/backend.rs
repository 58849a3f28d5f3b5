//! The one [`Backend`] trait, the result of one backend's run, and the measurement protocol
//! shared by every backend that runs in this process ([`Engine`] + [`measure_engine`]).

use std::time::Instant;

use serde::Serialize;

use crate::error::BenchError;
use crate::inputs::BenchInputs;
use crate::layers::LayerProfile;
use crate::stats::{Agreement, AgreementAcc, Stats};
use crate::sys;

/// Measurement settings, modelled on TFLite's `benchmark_model` flags.
#[derive(Debug, Clone, Serialize)]
pub struct Protocol {
    /// Untimed runs after the first inference (`--warmup`).
    pub warmup: usize,
    /// Timed runs (`--runs`).
    pub runs: usize,
    /// Time budget for the timed runs in seconds (`--max-secs`); the runs stop at `runs` or
    /// when the budget is spent, whichever comes first.
    pub max_secs: Option<f64>,
    /// CPU threads for backends that can use several.
    pub threads: usize,
    /// Extra invokes that time every operator, after the timed runs, for the per-layer table
    /// (`--layer-runs`; 0: no per-layer profile).
    pub layer_runs: usize,
    /// Show a progress bar on a terminal.
    #[serde(skip)]
    pub progress: bool,
}

impl Default for Protocol {
    fn default() -> Self {
        Self {
            warmup: 10,
            runs: 100,
            max_secs: None,
            threads: 1,
            layer_runs: 10,
            progress: true,
        }
    }
}

/// A backend's output for one slice.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Quantised probabilities.
    Int8 {
        /// The raw int8 values.
        values: Vec<i8>,
        /// Output scale.
        scale: f32,
        /// Output zero point.
        zero_point: i32,
    },
    /// Quantised probabilities of a 16x8 model.
    Int16 {
        /// The raw int16 values.
        values: Vec<i16>,
        /// Output scale.
        scale: f32,
        /// Output zero point.
        zero_point: i32,
    },
    /// Float probabilities.
    F32(Vec<f32>),
}

/// `scale · (q − zero_point)` of every value.
fn dequantize<Q: Copy>(values: &[Q], scale: f32, zero_point: i32) -> Vec<f32>
where
    i32: From<Q>,
{
    values
        .iter()
        .map(|&q| scale * (i32::from(q) - zero_point) as f32)
        .collect()
}

impl Output {
    /// Probabilities in `[0, 1]`.
    pub fn probabilities(&self) -> Vec<f32> {
        match self {
            Output::Int8 {
                values,
                scale,
                zero_point,
            } => dequantize(values, *scale, *zero_point),
            Output::Int16 {
                values,
                scale,
                zero_point,
            } => dequantize(values, *scale, *zero_point),
            Output::F32(v) => v.clone(),
        }
    }

    /// The output as int8 in the given quantisation: raw values when they already use it,
    /// otherwise probabilities quantised like TFLite's QUANTIZE (round half away from zero).
    pub fn to_int8(&self, scale: f32, zero_point: i32) -> (Vec<i8>, bool) {
        match self {
            Output::Int8 {
                values,
                scale: s,
                zero_point: z,
            } if *s == scale && *z == zero_point => (values.clone(), false),
            other => {
                let probs = other.probabilities();
                let mut q = vec![0i8; probs.len()];
                tflite_runtime::reference::quantize::quantize_f32_i8(
                    scale, zero_point, &probs, &mut q,
                );
                (q, !matches!(other, Output::Int8 { .. }))
            }
        }
    }
}

/// How a row ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    /// Really run and timed here.
    Measured,
    /// A model-based estimate (Vela), not a measurement.
    Estimated,
    /// Not runnable on this machine; the reason says why.
    Skipped,
    /// Tried and failed; the reason holds the error.
    Failed,
}

/// Everything one backend reports.
#[derive(Debug, Clone, Serialize)]
pub struct BackendResult {
    /// Backend name as given on the command line (`rust-int8`, `litert:npu`, `vela:ethos-u55-256`).
    pub backend: String,
    /// What it runs on.
    pub device: String,
    /// Outcome.
    pub status: RowStatus,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    /// Model load + compile/prepare time in milliseconds.
    pub init_ms: Option<f64>,
    /// The first inference in milliseconds.
    pub first_run_ms: Option<f64>,
    /// Warm-up runs done.
    pub warmup_runs: usize,
    /// Latency statistics of the timed runs (milliseconds).
    pub stats: Option<Stats>,
    /// int8 agreement with `rust-int8`.
    pub agreement: Option<Agreement>,
    /// Dice of thresholded outputs against ground truth.
    pub dice: Option<f64>,
    /// Where the operators ran.
    pub op_placement: Option<String>,
    /// Peak resident memory of this process while the backend ran (MiB), where measurable.
    pub peak_rss_mib: Option<f64>,
    /// Threads the backend used.
    pub threads: Option<usize>,
    /// Baseline median / this row's median (filled by the suite).
    pub speedup_vs_baseline: Option<f64>,
    /// Backend-specific details (Vela's cycles and memory, benchmark_model's command line...).
    pub details: serde_json::Value,
    /// Per-operator times, for backends that can time single layers (or why not).
    pub layer_profile: Option<LayerProfile>,
    /// Vela's per-layer estimate (also in `details.layers`), for the per-layer table.
    #[serde(skip)]
    pub npu_layers: Option<NpuLayers>,
    /// Outputs of the evaluation pass (one per slice), kept for agreement checks.
    #[serde(skip)]
    pub outputs: Vec<Output>,
}

impl BackendResult {
    /// An empty row for `backend` on `device` with the given status.
    pub fn new(backend: impl Into<String>, device: impl Into<String>, status: RowStatus) -> Self {
        Self {
            backend: backend.into(),
            device: device.into(),
            status,
            reason: None,
            init_ms: None,
            first_run_ms: None,
            warmup_runs: 0,
            stats: None,
            agreement: None,
            dice: None,
            op_placement: None,
            peak_rss_mib: None,
            threads: None,
            speedup_vs_baseline: None,
            details: serde_json::Value::Null,
            layer_profile: None,
            npu_layers: None,
            outputs: Vec::new(),
        }
    }

    /// A skipped row.
    pub fn skipped(
        backend: impl Into<String>,
        device: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        let mut r = Self::new(backend, device, RowStatus::Skipped);
        r.reason = Some(reason.into());
        r
    }

    /// A failed row.
    pub fn failed(
        backend: impl Into<String>,
        device: impl Into<String>,
        error: &BenchError,
    ) -> Self {
        let mut r = Self::new(backend, device, RowStatus::Failed);
        r.reason = Some(error.to_string());
        r
    }
}

/// Vela's per-layer estimate of one configuration.
#[derive(Debug, Clone)]
pub struct NpuLayers {
    /// The configuration's core clock (Hz), to turn cycles into time.
    pub core_clock_hz: f64,
    /// Vela's rows, in execution order.
    pub layers: Vec<vela_runner::VelaLayer>,
}

/// What every backend sees while it runs.
#[derive(Debug)]
pub struct SuiteContext<'a> {
    /// Measurement settings.
    pub protocol: &'a Protocol,
    /// The fixed input slices.
    pub inputs: &'a BenchInputs,
    /// `rust-int8`'s outputs, once it has run.
    pub reference: Option<&'a [Vec<i8>]>,
    /// The int8 model's output quantisation (scale, zero point), used to compare float outputs.
    pub reference_quant: Option<(f32, i32)>,
}

/// One way of running (or estimating) the model. Backends that cannot run here return a
/// [`RowStatus::Skipped`] row that says why; they never panic.
pub trait Backend {
    /// The name used on the command line and in the report.
    fn name(&self) -> String;
    /// Runs the protocol and reports.
    fn run(&mut self, ctx: &SuiteContext<'_>) -> BackendResult;
}

/// Why an engine cannot load.
#[derive(Debug)]
pub enum LoadError {
    /// Not available on this machine (a clean skip with a reason).
    Unavailable(String),
    /// A real failure.
    Failed(BenchError),
}

impl From<BenchError> for LoadError {
    fn from(e: BenchError) -> Self {
        LoadError::Failed(e)
    }
}

/// An in-process inference engine: load once, then set an input, run, read the output.
pub trait Engine {
    /// What it runs on, for the device column.
    fn device(&self) -> String;
    /// Loads and compiles the model (timed as "init").
    fn load(&mut self) -> Result<(), LoadError>;
    /// Copies one slice (f32, `H·W`) into the input, quantising it if the model wants int8.
    fn set_input(&mut self, image: &[f32]) -> Result<(), BenchError>;
    /// Runs the model once (the timed part).
    fn invoke(&mut self) -> Result<(), BenchError>;
    /// Reads the output of the last run.
    fn output(&mut self) -> Result<Output, BenchError>;
    /// Where the operators ran.
    fn op_placement(&self) -> Option<String>;
    /// Threads used.
    fn threads(&self) -> Option<usize>;
    /// Extra details for the JSON report.
    fn details(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// Times every operator over `runs` invokes of the current input, for engines that can
    /// time single layers; the others say why they cannot.
    fn layer_profile(&mut self, runs: usize) -> LayerProfile {
        let _ = runs;
        LayerProfile::Unavailable {
            why: "this engine has no per-operator timing".into(),
        }
    }
}

/// Times loaded engines (input already set) round by round, so that a machine whose speed
/// drifts (a shared VM) slows every engine alike and their ratios compare like with like:
/// each round runs every engine in turn (starting one engine later each round) for one
/// untimed invoke and then `block` timed ones. The untimed invoke is where an engine meets
/// what the one before left behind (another runtime's workers still spinning on a core, cold
/// caches, its own workers asleep); the timed ones are back to back, as one engine's own
/// benchmark runs them. `warmup` untimed rounds come first. Returns each engine's per-invoke
/// milliseconds, in round order.
pub fn time_interleaved(
    engines: &mut [&mut dyn Engine],
    warmup: usize,
    rounds: usize,
    block: usize,
) -> Result<Vec<Vec<f64>>, BenchError> {
    let n = engines.len();
    let mut times = vec![Vec::with_capacity(rounds * block); n];
    for round in 0..warmup + rounds {
        for k in 0..n {
            let e = (round + k) % n;
            engines[e].invoke()?;
            for _ in 0..block {
                let start = Instant::now();
                engines[e].invoke()?;
                if round >= warmup {
                    times[e].push(start.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
    }
    Ok(times)
}

/// Adapts an [`Engine`] to the [`Backend`] trait with the shared protocol.
pub struct InProcess<E> {
    name: String,
    engine: E,
}

impl<E: Engine> InProcess<E> {
    /// Wraps `engine` under `name`.
    pub fn new(name: impl Into<String>, engine: E) -> Self {
        Self {
            name: name.into(),
            engine,
        }
    }
}

impl<E: Engine> Backend for InProcess<E> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn run(&mut self, ctx: &SuiteContext<'_>) -> BackendResult {
        measure_engine(&self.name, &mut self.engine, ctx)
    }
}

fn progress_bar(name: &str, len: usize, enabled: bool) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{prefix:>22} [{bar:30}] {pos}/{len} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(name.to_string());
    bar
}

/// The protocol: init, first inference, warm-up, timed runs (cycling through the slices; only
/// the run call is timed), then one evaluation pass over every slice for agreement and Dice.
pub fn measure_engine<E: Engine>(
    name: &str,
    engine: &mut E,
    ctx: &SuiteContext<'_>,
) -> BackendResult {
    sys::reset_peak_rss();
    let t0 = Instant::now();
    match engine.load() {
        Ok(()) => {}
        Err(LoadError::Unavailable(reason)) => {
            return BackendResult::skipped(name, engine.device(), reason);
        }
        Err(LoadError::Failed(e)) => return BackendResult::failed(name, engine.device(), &e),
    }
    let init_ms = t0.elapsed().as_secs_f64() * 1e3;
    match timed_runs(name, engine, ctx) {
        Ok(mut result) => {
            result.init_ms = Some(init_ms);
            result.peak_rss_mib = sys::peak_rss_mib();
            result
        }
        Err(e) => BackendResult::failed(name, engine.device(), &e),
    }
}

fn timed_runs<E: Engine>(
    name: &str,
    engine: &mut E,
    ctx: &SuiteContext<'_>,
) -> Result<BackendResult, BenchError> {
    let protocol = ctx.protocol;
    let images = &ctx.inputs.images;
    let n = images.len().max(1);
    let bar = progress_bar(name, protocol.warmup + protocol.runs, protocol.progress);

    engine.set_input(&images[0])?;
    let t = Instant::now();
    engine.invoke()?;
    let first_run_ms = t.elapsed().as_secs_f64() * 1e3;

    bar.set_message("warm-up");
    for i in 0..protocol.warmup {
        engine.set_input(&images[(i + 1) % n])?;
        engine.invoke()?;
        bar.inc(1);
    }
    bar.set_message("timed");
    let budget = protocol.max_secs.map(std::time::Duration::from_secs_f64);
    let started = Instant::now();
    let mut samples = Vec::with_capacity(protocol.runs);
    for i in 0..protocol.runs {
        engine.set_input(&images[i % n])?;
        let t = Instant::now();
        engine.invoke()?;
        samples.push(t.elapsed().as_secs_f64() * 1e3);
        bar.inc(1);
        if budget.is_some_and(|b| started.elapsed() >= b) {
            break;
        }
    }
    bar.finish_and_clear();

    let mut outputs = Vec::with_capacity(images.len());
    for image in images {
        engine.set_input(image)?;
        engine.invoke()?;
        outputs.push(engine.output()?);
    }

    let mut result = BackendResult::new(name, engine.device(), RowStatus::Measured);
    result.first_run_ms = Some(first_run_ms);
    result.warmup_runs = protocol.warmup;
    result.stats = Stats::from_samples(&samples);
    result.op_placement = engine.op_placement();
    result.threads = engine.threads();
    result.details = engine.details();
    if protocol.layer_runs > 0 {
        result.layer_profile = Some(engine.layer_profile(protocol.layer_runs));
    }
    score_outputs(&mut result, &outputs, ctx);
    result.outputs = outputs;
    Ok(result)
}

/// Fills agreement (against `ctx.reference`) and Dice (against the masks) from `outputs`.
pub fn score_outputs(result: &mut BackendResult, outputs: &[Output], ctx: &SuiteContext<'_>) {
    if let Some(masks) = &ctx.inputs.masks {
        // Pooled Dice (unet_data::metrics); an output that is not a probability has none.
        let mut dice = unet_data::metrics::PooledDice::default();
        let scored = outputs
            .iter()
            .zip(masks)
            .enumerate()
            .try_for_each(|(i, (out, mask))| {
                dice.add(&out.probabilities(), mask)
                    .map_err(|e| format!("slice {i}: {e}"))
            });
        match scored {
            Ok(()) => result.dice = dice.finish(),
            Err(why) => {
                result.dice = None;
                result.details["dice"] = serde_json::Value::String(format!("not computed: {why}"));
            }
        }
    }
    if let (Some(reference), Some((scale, zero_point))) = (ctx.reference, ctx.reference_quant) {
        let mut acc = AgreementAcc::default();
        let mut from_float = false;
        for (out, reference) in outputs.iter().zip(reference) {
            let (q, converted) = out.to_int8(scale, zero_point);
            from_float |= converted;
            acc.add(reference, &q);
        }
        result.agreement = acc.finish(from_float);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_conversion_keeps_raw_values_and_quantises_floats() {
        let raw = Output::Int8 {
            values: vec![-128, 0, 127],
            scale: 1.0 / 256.0,
            zero_point: -128,
        };
        assert_eq!(raw.to_int8(1.0 / 256.0, -128), (vec![-128, 0, 127], false));
        assert_eq!(raw.probabilities(), vec![0.0, 0.5, 255.0 / 256.0]);
        // 0.5 / (1/256) - 128 = 0; 1.0 saturates at 127; 0.0 -> -128.
        let float = Output::F32(vec![0.0, 0.5, 1.0]);
        assert_eq!(float.to_int8(1.0 / 256.0, -128), (vec![-128, 0, 127], true));
    }

    /// An engine that records, in a shared log, which engine ran when.
    struct Logged {
        id: usize,
        log: std::rc::Rc<std::cell::RefCell<Vec<usize>>>,
    }

    impl Engine for Logged {
        fn device(&self) -> String {
            "test".into()
        }
        fn load(&mut self) -> Result<(), LoadError> {
            Ok(())
        }
        fn set_input(&mut self, _: &[f32]) -> Result<(), BenchError> {
            Ok(())
        }
        fn invoke(&mut self) -> Result<(), BenchError> {
            self.log.borrow_mut().push(self.id);
            Ok(())
        }
        fn output(&mut self) -> Result<Output, BenchError> {
            Ok(Output::F32(Vec::new()))
        }
        fn op_placement(&self) -> Option<String> {
            None
        }
        fn threads(&self) -> Option<usize> {
            Some(1)
        }
    }

    #[test]
    fn interleaved_timing_takes_turns_in_a_rotating_order() {
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut engines: Vec<Logged> = (0..3)
            .map(|id| Logged {
                id,
                log: log.clone(),
            })
            .collect();
        let mut refs: Vec<&mut dyn Engine> =
            engines.iter_mut().map(|e| e as &mut dyn Engine).collect();
        let times = time_interleaved(&mut refs, 1, 2, 2).unwrap();
        // Timed: 2 rounds × 2 invokes each; warm-up round untimed.
        assert_eq!(times.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 4]);
        // Each turn: one untimed and two timed invokes; round r starts with engine r % 3.
        let turns: Vec<usize> = log.borrow().chunks(3).map(|turn| turn[0]).collect();
        assert!(log.borrow().chunks(3).all(|t| t[0] == t[1] && t[1] == t[2]));
        assert_eq!(turns, [0, 1, 2, 1, 2, 0, 2, 0, 1]);
    }
}
