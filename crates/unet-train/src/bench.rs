//! `--bench-steps N`: seconds per training step on synthetic data, split into forward (with the
//! loss), backward and the Adam update. Speed is reported, never asserted.

use std::time::Instant;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Tensor, TensorData};
use serde::Serialize;

use crate::conv3x3::{ConvImpl, conv_impl, set_conv_impl};
use crate::optim::FusedAdam;
use crate::rng::SplitMix64;
use crate::{BackendKind, LossKind, TrainError, UNetConfig};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The architecture (default: IntelAI's, 128×128, fms 16).
    pub model: UNetConfig,
    /// Backend.
    pub backend: BackendKind,
    /// Batch size (default 8).
    pub batch_size: usize,
    /// Untimed warm-up steps.
    pub warmup_steps: usize,
    /// Timed steps.
    pub steps: usize,
    /// Seed of weights and inputs.
    pub seed: u64,
    /// The 3×3 convolution's implementation on Flex (the shifted GEMMs by default; burn's
    /// `conv2d` to measure the previous formulation).
    pub conv: ConvImpl,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            model: UNetConfig::default(),
            backend: BackendKind::Flex,
            batch_size: 8,
            warmup_steps: 2,
            steps: 10,
            seed: 42,
            conv: ConvImpl::ShiftedGemm,
        }
    }
}

/// Timings of the measured steps.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Backend name.
    pub backend: String,
    /// The 3×3 convolution: `shifted_gemm` or `burn_conv2d` on Flex (other backends always
    /// use burn's `conv2d`).
    pub conv: String,
    /// Batch size.
    pub batch_size: usize,
    /// Input size.
    pub size: usize,
    /// Feature maps.
    pub fms: usize,
    /// Timed steps.
    pub steps: usize,
    /// Seconds of each timed step.
    pub step_seconds: Vec<f64>,
    /// Median seconds per step.
    pub median_step_seconds: f64,
    /// Mean seconds per step.
    pub mean_step_seconds: f64,
    /// Mean seconds in the forward pass and loss.
    pub mean_forward_seconds: f64,
    /// Mean seconds in backward.
    pub mean_backward_seconds: f64,
    /// Mean seconds in the optimizer update.
    pub mean_optimizer_seconds: f64,
    /// Mean seconds of a batch-1 inference forward pass (no autodiff).
    pub inference_batch1_seconds: f64,
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// Runs the benchmark.
pub fn bench_steps(cfg: &BenchConfig) -> Result<BenchReport, TrainError> {
    let previous = conv_impl();
    set_conv_impl(cfg.conv);
    let report = crate::threads::on_pool_thread(|| bench_steps_with_current_conv(cfg));
    set_conv_impl(previous);
    report
}

fn bench_steps_with_current_conv(cfg: &BenchConfig) -> Result<BenchReport, TrainError> {
    cfg.model.validate()?;
    if cfg.steps == 0 || cfg.batch_size == 0 {
        return Err(TrainError::InvalidConfig(
            "bench steps and batch size must be at least 1".into(),
        ));
    }
    let base = cfg.backend.device()?;
    let device = base.clone().autodiff();
    let mut model = cfg.model.init(&device, cfg.seed)?;
    let mut optimizer: ModuleOptimizer = FusedAdam::new(1e-7).init();
    let size = cfg.model.size;
    let n = cfg.batch_size * size * size;
    let mut rng = SplitMix64::stream(cfg.seed, 0xBE4C);
    let images: Vec<f32> = (0..n).map(|_| rng.uniform(1.0)).collect();
    // Blobs-like masks: a filled square per sample, so the Dice terms are non-trivial.
    let masks: Vec<f32> = (0..n)
        .map(|k| {
            let p = k % (size * size);
            let (y, x) = (p / size, p % size);
            if (size / 4..size / 2).contains(&y) && (size / 3..size / 2 + size / 8).contains(&x) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let shape = [cfg.batch_size, 1, size, size];
    let mut dropout_rng = SplitMix64::stream(cfg.seed, 0xD0);
    let (mut steps, mut fwd, mut bwd, mut opt) = (Vec::new(), 0.0, 0.0, 0.0);
    for i in 0..cfg.warmup_steps + cfg.steps {
        let x = Tensor::<4>::from_data(TensorData::new(images.clone(), shape), &device);
        let t = Tensor::<4>::from_data(TensorData::new(masks.clone(), shape), &device);
        let start = Instant::now();
        let logits = model.forward_logits(x, Some(&mut dropout_rng));
        let loss = LossKind::Dice.compute(logits, t);
        let _loss_value: f32 = loss.clone().into_scalar();
        let t_forward = start.elapsed().as_secs_f64();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let t_backward = start.elapsed().as_secs_f64();
        model = optimizer.step(1e-4, model, grads);
        base.sync()
            .map_err(|e| TrainError::InvalidConfig(format!("device sync failed: {e:?}")))?;
        let t_total = start.elapsed().as_secs_f64();
        if i >= cfg.warmup_steps {
            steps.push(t_total);
            fwd += t_forward;
            bwd += t_backward - t_forward;
            opt += t_total - t_backward;
        }
    }
    let valid = burn::module::Module::valid(&model);
    let x1 = Tensor::<4>::from_data(
        TensorData::new(images[..size * size].to_vec(), [1, 1, size, size]),
        &base,
    );
    let _ = valid.forward(x1.clone()).into_data();
    let reps = 5;
    let start = Instant::now();
    for _ in 0..reps {
        let _ = valid.forward(x1.clone()).into_data();
    }
    let inference = start.elapsed().as_secs_f64() / reps as f64;
    let count = steps.len() as f64;
    Ok(BenchReport {
        backend: cfg.backend.name().to_string(),
        conv: if crate::conv3x3::uses_shifted_gemm(&base) {
            "shifted_gemm"
        } else {
            "burn_conv2d"
        }
        .to_string(),
        batch_size: cfg.batch_size,
        size,
        fms: cfg.model.fms,
        steps: steps.len(),
        median_step_seconds: median(&steps),
        mean_step_seconds: steps.iter().sum::<f64>() / count,
        step_seconds: steps,
        mean_forward_seconds: fwd / count,
        mean_backward_seconds: bwd / count,
        mean_optimizer_seconds: opt / count,
        inference_batch1_seconds: inference,
    })
}
