//! The training loop: Adam, validation every epoch, best checkpoint by validation loss, early
//! stopping, resume, a NaN guard, and the artifacts of a run.
//!
//! Artifacts in [`TrainConfig::out_dir`] (all written atomically):
//! - `model.ckpt`: the best model by validation loss (with optimizer state);
//! - `last.ckpt`: the model after the latest epoch (what `--resume` continues from);
//! - `config.json`: model and data configuration, hyperparameters, seed, command line, commit;
//! - `history.json`: per-epoch train/validation loss and Dice;
//! - `curves.svg`: the same as plots.
//!
//! Everything random (weights, batch order, dropout masks) comes from [`TrainConfig::seed`]
//! through per-epoch streams, so a run resumed after epoch k continues exactly as the
//! uninterrupted run would have.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use unet_data::{DataConfig, SliceSource, Split, open_source};

use crate::checkpoint::{CheckpointMeta, load_checkpoint, save_checkpoint};
use crate::fsutil::ensure_writable_dir;
use crate::loss::{DiceStats, LossKind};
use crate::model::{UNet, UNetConfig};
use crate::optim::FusedAdam;
use crate::rng::SplitMix64;
use crate::{BackendKind, TrainError};
use artifact_io::write_atomic;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgressMode {
    /// A live bar when stderr is a terminal, one line per epoch otherwise (CI logs).
    #[default]
    Auto,
    /// Always the live bar.
    Bar,
    /// One line per epoch.
    Lines,
    /// Nothing (tests).
    Hidden,
}

/// Everything a training run needs.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// The architecture.
    pub model: UNetConfig,
    /// The data; its `size` must equal `model.size`.
    pub data: DataConfig,
    /// The backend.
    pub backend: BackendKind,
    /// Loss function.
    pub loss: LossKind,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Adam epsilon (Keras: 1e-7; burn's default is 1e-5).
    pub adam_epsilon: f32,
    /// Batch size.
    pub batch_size: usize,
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Optimizer steps per epoch; `None` = one pass over the training split.
    pub steps_per_epoch: Option<usize>,
    /// Validation slices per epoch (the first ones of the validation split); `None` = all.
    pub val_slices: Option<usize>,
    /// Early stopping: epochs without a better validation loss before stopping (0 disables).
    pub patience: usize,
    /// Stop after this much training time (checked after every step; the epoch is then
    /// validated and the run ends).
    pub max_train_time: Option<Duration>,
    /// Seed of the weights, batch order and dropout masks.
    pub seed: u64,
    /// Output directory.
    pub out_dir: PathBuf,
    /// Continue from this checkpoint (normally `<out_dir>/last.ckpt`).
    pub resume: Option<PathBuf>,
    /// Start a fresh run even when `out_dir` already holds one (its checkpoints are replaced
    /// from the first epoch on). Without it a fresh run into a used directory is refused.
    pub overwrite: bool,
    /// Progress display.
    pub progress: ProgressMode,
    /// The command line that started the run (recorded in `config.json`).
    pub command_line: Vec<String>,
    /// The git commit of the sources (recorded in `config.json`).
    pub git_commit: Option<String>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            model: UNetConfig::default(),
            data: DataConfig::default(),
            backend: BackendKind::Flex,
            loss: LossKind::Dice,
            learning_rate: 1e-3,
            adam_epsilon: 1e-7,
            batch_size: 8,
            epochs: 40,
            steps_per_epoch: Some(16),
            val_slices: Some(64),
            patience: 5,
            max_train_time: Some(Duration::from_secs(8 * 60)),
            seed: 42,
            out_dir: PathBuf::from("artifacts/train"),
            resume: None,
            overwrite: false,
            progress: ProgressMode::Auto,
            command_line: Vec::new(),
            git_commit: None,
        }
    }
}

impl TrainConfig {
    /// Checks the values that need no file system.
    pub fn validate(&self) -> Result<(), TrainError> {
        self.model.validate()?;
        self.data.validate()?;
        if self.data.size != self.model.size {
            return Err(TrainError::InvalidConfig(format!(
                "data size {} differs from model size {}",
                self.data.size, self.model.size
            )));
        }
        if self.batch_size == 0 || self.epochs == 0 || self.steps_per_epoch == Some(0) {
            return Err(TrainError::InvalidConfig(
                "batch size, epochs and steps per epoch must be at least 1".into(),
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(TrainError::InvalidConfig(format!(
                "learning rate {} must be a positive number",
                self.learning_rate
            )));
        }
        Ok(())
    }
}

/// JSON has no NaN or infinity: such values are written as `null` and read back as NaN.
pub(crate) mod float_or_null {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a finite value as a number, anything else as `null`.
    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            serializer.serialize_f64(*value)
        } else {
            serializer.serialize_none()
        }
    }

    /// Reads a number, or `null` as NaN.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
    }
}

/// One epoch of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number (1-based).
    pub epoch: usize,
    /// Optimizer steps in this epoch.
    pub steps: usize,
    /// Mean training loss.
    #[serde(with = "float_or_null")]
    pub train_loss: f64,
    /// Training Dice (rounded predictions).
    #[serde(with = "float_or_null")]
    pub train_dice: f64,
    /// Training soft Dice.
    #[serde(with = "float_or_null")]
    pub train_soft_dice: f64,
    /// Validation loss.
    #[serde(with = "float_or_null")]
    pub val_loss: f64,
    /// Validation Dice (rounded predictions).
    #[serde(with = "float_or_null")]
    pub val_dice: f64,
    /// Validation soft Dice.
    #[serde(with = "float_or_null")]
    pub val_soft_dice: f64,
    /// Mean wall-clock seconds per optimizer step in this epoch.
    pub seconds_per_step: f64,
    /// Training seconds since the start of the run (validation excluded), at the end of the epoch.
    pub train_seconds: f64,
    /// Whether this epoch produced the best validation loss so far.
    pub best: bool,
}

/// The per-epoch history of a run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct History {
    /// Epochs, in order.
    pub epochs: Vec<EpochRecord>,
    /// Why the run stopped.
    pub stop_reason: String,
}

/// The outcome of [`train`].
pub struct TrainedModel {
    /// The best model (by validation loss), in inference mode.
    pub model: UNet,
    /// History of every epoch.
    pub history: History,
    /// Epoch (1-based) of the best validation loss.
    pub best_epoch: usize,
    /// Best validation loss.
    pub best_val_loss: f64,
    /// Path of the best checkpoint.
    pub checkpoint: PathBuf,
}

/// A batch of images and masks as NCHW host buffers.
struct HostBatch {
    images: Vec<f32>,
    masks: Vec<f32>,
    len: usize,
}

fn load_batch(
    source: &dyn SliceSource,
    indices: &[usize],
    size: usize,
) -> Result<HostBatch, TrainError> {
    // Slices are made (synthetic phantoms, ~7 ms each) or decoded in parallel: serially they
    // were ~10 % of a training step.
    let slices: Vec<_> = indices
        .par_iter()
        .map(|&index| source.get(index).map(|slice| (index, slice)))
        .collect::<Result<_, _>>()?;
    let mut images = Vec::with_capacity(indices.len() * size * size);
    let mut masks = Vec::with_capacity(indices.len() * size * size);
    for (index, slice) in slices {
        if slice.height != size || slice.width != size || slice.image.len() != size * size {
            return Err(TrainError::InvalidConfig(format!(
                "{}: slice {index} is {}x{}, the model expects {size}x{size}",
                source.describe(),
                slice.height,
                slice.width
            )));
        }
        images.extend_from_slice(&slice.image);
        masks.extend_from_slice(&slice.mask);
    }
    Ok(HostBatch {
        images,
        masks,
        len: indices.len(),
    })
}

fn to_tensor(values: Vec<f32>, len: usize, size: usize, device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values, [len, 1, size, size]), device)
}

/// Loss and Dice of `model` over the first `limit` slices of `source`.
pub fn evaluate(
    model: &UNet,
    source: &dyn SliceSource,
    limit: Option<usize>,
    batch_size: usize,
    loss: LossKind,
    device: &Device,
) -> Result<(f64, DiceStats), TrainError> {
    let size = model_size(model, source)?;
    let n = limit.map_or(source.len(), |l| l.min(source.len()));
    let mut stats = DiceStats::default();
    let mut loss_sum = 0.0;
    let indices: Vec<usize> = (0..n).collect();
    for chunk in indices.chunks(batch_size.max(1)) {
        let batch = load_batch(source, chunk, size)?;
        let images = to_tensor(batch.images, batch.len, size, device);
        let masks = to_tensor(batch.masks.clone(), batch.len, size, device);
        let logits = model.forward_logits(images, None);
        let batch_loss: f32 = loss.compute(logits.clone(), masks).into_scalar();
        loss_sum += batch_loss as f64 * batch.len as f64;
        let probs: Vec<f32> = sigmoid(logits).into_data().iter::<f32>().collect();
        stats.add(&probs, &batch.masks, batch.len);
    }
    Ok((loss_sum / n.max(1) as f64, stats))
}

fn model_size(_model: &UNet, source: &dyn SliceSource) -> Result<usize, TrainError> {
    let first = source.get(0)?;
    Ok(first.height)
}

/// The `config.json` document of a run.
fn config_json(cfg: &TrainConfig, train_len: usize, val_len: usize) -> serde_json::Value {
    let data = &cfg.data;
    serde_json::json!({
        "model": cfg.model,
        "data": {
            "source": data.source.name(),
            "size": data.size,
            "seed": data.seed,
            "data_path": data.data_path.as_ref().map(|p| p.display().to_string()),
            "augment": data.augment,
            "slices_per_split": data.slices_per_split,
            "validation_fraction": data.validation_fraction,
            "test_fraction": data.test_fraction,
            "train_slices": train_len,
            "validation_slices_available": val_len,
        },
        "training": {
            "backend": cfg.backend,
            "loss": cfg.loss,
            "optimizer": "adam",
            "learning_rate": cfg.learning_rate,
            "adam_beta_1": 0.9,
            "adam_beta_2": 0.999,
            "adam_epsilon": cfg.adam_epsilon,
            "batch_size": cfg.batch_size,
            "epochs": cfg.epochs,
            "steps_per_epoch": cfg.steps_per_epoch,
            "val_slices": cfg.val_slices,
            "patience": cfg.patience,
            "max_train_seconds": cfg.max_train_time.map(|d| d.as_secs_f64()),
            "resume": cfg.resume.as_ref().map(|p| p.display().to_string()),
        },
        "seed": cfg.seed,
        "command_line": cfg.command_line,
        "git_commit": cfg.git_commit,
        "tool": format!("unet-train {}", env!("CARGO_PKG_VERSION")),
    })
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), TrainError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| TrainError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    bytes.push(b'\n');
    Ok(write_atomic(path, &bytes)?)
}

fn write_history(out_dir: &Path, history: &History) -> Result<(), TrainError> {
    write_json(&out_dir.join("history.json"), history)?;
    Ok(write_atomic(
        &out_dir.join("curves.svg"),
        crate::curves::render(history).as_bytes(),
    )?)
}

/// Progress output: a live bar or plain lines.
struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
}

impl Progress {
    fn new(mode: ProgressMode) -> Self {
        let terminal = std::io::stderr().is_terminal();
        match mode {
            ProgressMode::Hidden => Self {
                bar: None,
                lines: false,
            },
            ProgressMode::Lines => Self {
                bar: None,
                lines: true,
            },
            ProgressMode::Auto if !terminal => Self {
                bar: None,
                lines: true,
            },
            ProgressMode::Auto | ProgressMode::Bar => {
                let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
                let style = ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
                )
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                Self {
                    bar: Some(bar),
                    lines: false,
                }
            }
        }
    }

    fn start_epoch(&self, epoch: usize, epochs: usize, steps: usize) {
        if let Some(bar) = &self.bar {
            bar.reset();
            bar.set_length(steps as u64);
            bar.set_prefix(format!("{epoch}/{epochs}"));
        }
    }

    fn step(&self, loss: f64, dice: f64) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("loss {loss:.4} dice {dice:.3}"));
            bar.inc(1);
        }
    }

    fn line(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.println(text);
        } else if self.lines {
            eprintln!("{text}");
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Trains the U-Net as configured and writes the artifacts. Returns the best model. Runs on a
/// thread of rayon's pool ([`crate::threads`]).
pub fn train(cfg: &TrainConfig) -> Result<TrainedModel, TrainError> {
    crate::threads::on_pool_thread(|| train_here(cfg))
}

/// [`train`] on the calling thread.
fn train_here(cfg: &TrainConfig) -> Result<TrainedModel, TrainError> {
    cfg.validate()?;
    let best_path = cfg.out_dir.join("model.ckpt");
    let last_path = cfg.out_dir.join("last.ckpt");
    if cfg.resume.is_none()
        && !cfg.overwrite
        && let Some(existing) = [&best_path, &last_path].into_iter().find(|p| p.exists())
    {
        return Err(TrainError::RunDirInUse {
            dir: cfg.out_dir.clone(),
            existing: existing.clone(),
        });
    }
    ensure_writable_dir(&cfg.out_dir)?;
    match artifact_io::clean_stale_temporaries(&cfg.out_dir) {
        Ok(removed) if !removed.is_empty() => tracing::info!(
            "removed {} temporary file(s) left by an interrupted run in {}",
            removed.len(),
            cfg.out_dir.display()
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(
            "{}: cannot clean stale temporary files: {e}",
            cfg.out_dir.display()
        ),
    }
    let base_device = cfg.backend.device()?;
    let device = base_device.clone().autodiff();
    let size = cfg.model.size;

    let train_source = open_source(&cfg.data, Split::Train)?;
    let val_source = open_source(&cfg.data, Split::Validation)?;
    // `config.json` describes the checkpoints beside it, so it is written with this run's first
    // checkpoint: a run that fails or is killed before that leaves the previous pair intact.
    let mut config_pending = Some(config_json(cfg, train_source.len(), val_source.len()));

    let mut optimizer: ModuleOptimizer = FusedAdam::new(cfg.adam_epsilon).init();
    let mut model: UNet;
    let mut history = History::default();
    let mut start_epoch = 0;
    let mut step: u64 = 0;
    let mut best_val_loss = f64::INFINITY;
    let mut best_epoch = 0;
    let mut last_good: Option<PathBuf> = None;
    // Resuming into another directory: that run's best model, copied here with this run's first
    // checkpoint unless this run improves on it at once.
    let mut best_to_copy: Option<PathBuf> = None;
    let mut train_seconds_before = 0.0;

    if let Some(resume) = &cfg.resume {
        let checkpoint = load_checkpoint(resume, &device, Some(&cfg.model))?;
        model = checkpoint.model;
        if let Some(record) = checkpoint.optimizer {
            optimizer = optimizer.load_record(record);
        }
        history = checkpoint.meta.history;
        history.stop_reason.clear();
        start_epoch = checkpoint.meta.epoch;
        step = checkpoint.meta.step;
        best_val_loss = checkpoint.meta.best_val_loss;
        best_epoch = checkpoint.meta.best_epoch;
        if best_epoch > 0 && !best_path.exists() {
            let source_best = resume.with_file_name("model.ckpt");
            if source_best.is_file() {
                best_to_copy = Some(source_best);
            } else {
                tracing::warn!(
                    "{}: the best model of the resumed run is not there; the best of this run's epochs becomes {}",
                    source_best.display(),
                    best_path.display()
                );
                best_val_loss = f64::INFINITY;
                best_epoch = 0;
            }
        }
        train_seconds_before = history.epochs.last().map_or(0.0, |e| e.train_seconds);
        last_good = Some(resume.clone());
        tracing::info!(checkpoint = %resume.display(), epoch = start_epoch, "resuming");
    } else {
        model = cfg.model.init(&device, cfg.seed)?;
    }

    let steps_per_epoch = cfg
        .steps_per_epoch
        .unwrap_or_else(|| train_source.len().div_ceil(cfg.batch_size));
    let progress = Progress::new(cfg.progress);
    progress.line(&format!(
        "training {} params on {} ({}), {} train / {} validation slices, batch {}, {} steps per epoch",
        model.num_params(),
        cfg.backend,
        train_source.describe(),
        train_source.len(),
        cfg.val_slices.map_or(val_source.len(), |v| v.min(val_source.len())),
        cfg.batch_size,
        steps_per_epoch
    ));

    let train_clock = Instant::now();
    let mut epochs_without_improvement =
        history.epochs.iter().rev().take_while(|e| !e.best).count();
    let mut stop_reason = format!("completed {} epochs", cfg.epochs);

    for epoch in start_epoch..cfg.epochs {
        let epoch_number = epoch + 1;
        train_source.set_epoch(epoch as u64);
        let mut order: Vec<usize> = (0..train_source.len()).collect();
        let mut shuffle_rng = SplitMix64::stream(cfg.seed, 0x5_0000 + epoch as u64);
        shuffle_rng.shuffle(&mut order);
        let mut dropout_rng = SplitMix64::stream(cfg.seed, 0xD_0000 + epoch as u64);
        progress.start_epoch(epoch_number, cfg.epochs, steps_per_epoch);

        let mut loss_sum = 0.0;
        let mut stats = DiceStats::default();
        let epoch_clock = Instant::now();
        let mut steps_done = 0;
        let mut out_of_time = false;
        for batch_index in 0..steps_per_epoch {
            let indices: Vec<usize> = (0..cfg.batch_size)
                .map(|k| order[(batch_index * cfg.batch_size + k) % order.len()])
                .collect();
            let batch = load_batch(train_source.as_ref(), &indices, size)?;
            let images = to_tensor(batch.images, batch.len, size, &device);
            let masks = to_tensor(batch.masks.clone(), batch.len, size, &device);
            let logits = model.forward_logits(images, Some(&mut dropout_rng));
            let loss = cfg.loss.compute(logits.clone(), masks);
            let loss_value: f32 = loss.clone().into_scalar();
            step += 1;
            if !loss_value.is_finite() {
                progress.finish();
                history.stop_reason = format!("non-finite loss at step {step}");
                // Before this run's first checkpoint the directory still holds the previous
                // run's files, history included: leave them as they are.
                if config_pending.is_none() {
                    write_history(&cfg.out_dir, &history)?;
                }
                return Err(TrainError::NonFiniteLoss {
                    step,
                    epoch: epoch_number,
                    batch: batch_index + 1,
                    loss: loss_value,
                    last_good,
                });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(cfg.learning_rate, model, grads);
            let probs: Vec<f32> = sigmoid(logits.detach()).into_data().iter::<f32>().collect();
            stats.add(&probs, &batch.masks, batch.len);
            loss_sum += loss_value as f64;
            steps_done += 1;
            progress.step(loss_sum / steps_done as f64, stats.dice());
            if let Some(budget) = cfg.max_train_time
                && train_seconds_before + train_clock.elapsed().as_secs_f64()
                    >= budget.as_secs_f64()
            {
                out_of_time = true;
                break;
            }
        }
        let epoch_seconds = epoch_clock.elapsed().as_secs_f64();
        let train_seconds = train_seconds_before + train_clock.elapsed().as_secs_f64();

        let valid_model = model.valid();
        let (val_loss, val_stats) = evaluate(
            &valid_model,
            val_source.as_ref(),
            cfg.val_slices,
            cfg.batch_size,
            cfg.loss,
            &base_device,
        )?;
        // Validation time does not count as training time.
        train_seconds_before -=
            val_clock_correction(&train_clock, train_seconds, train_seconds_before);
        let improved = val_loss.is_finite() && val_loss < best_val_loss;
        history.epochs.push(EpochRecord {
            epoch: epoch_number,
            steps: steps_done,
            train_loss: loss_sum / steps_done.max(1) as f64,
            train_dice: stats.dice(),
            train_soft_dice: stats.soft_dice(),
            val_loss,
            val_dice: val_stats.dice(),
            val_soft_dice: val_stats.soft_dice(),
            seconds_per_step: epoch_seconds / steps_done.max(1) as f64,
            train_seconds,
            best: improved,
        });
        progress.line(&format!(
            "epoch {epoch_number:>3}/{}: train loss {:.4} dice {:.3} | val loss {val_loss:.4} dice {:.3} soft {:.3} | {:.2} s/step, {:.0} s trained{}",
            cfg.epochs,
            loss_sum / steps_done.max(1) as f64,
            stats.dice(),
            val_stats.dice(),
            val_stats.soft_dice(),
            epoch_seconds / steps_done.max(1) as f64,
            train_seconds,
            if improved { " (best)" } else { "" }
        ));
        if improved {
            best_val_loss = val_loss;
            best_epoch = epoch_number;
            epochs_without_improvement = 0;
        } else {
            epochs_without_improvement += 1;
        }
        let meta = CheckpointMeta {
            model: cfg.model.clone(),
            epoch: epoch_number,
            step,
            best_val_loss,
            best_epoch,
            seed: cfg.seed,
            history: history.clone(),
        };
        if let Some(config) = config_pending.take() {
            write_json(&cfg.out_dir.join("config.json"), &config)?;
        }
        if let Some(source) = best_to_copy.take()
            && !improved
        {
            let bytes = std::fs::read(&source).map_err(|e| TrainError::Io {
                path: source.clone(),
                source: e,
            })?;
            write_atomic(&best_path, &bytes)?;
        }
        if improved {
            save_checkpoint(&best_path, &meta, &model, Some(&optimizer))?;
        }
        save_checkpoint(&last_path, &meta, &model, Some(&optimizer))?;
        last_good = Some(last_path.clone());
        write_history(&cfg.out_dir, &history)?;

        if out_of_time {
            stop_reason = format!(
                "training time budget of {:.0} s reached in epoch {epoch_number}",
                cfg.max_train_time.map_or(0.0, |d| d.as_secs_f64())
            );
            break;
        }
        if cfg.patience > 0 && epochs_without_improvement >= cfg.patience {
            stop_reason = format!(
                "early stopping: no better validation loss for {} epochs (best epoch {best_epoch})",
                cfg.patience
            );
            break;
        }
    }
    progress.finish();
    history.stop_reason = stop_reason.clone();
    write_history(&cfg.out_dir, &history)?;
    progress.line(&format!(
        "stopped: {stop_reason}; best validation loss {best_val_loss:.4} at epoch {best_epoch} -> {}",
        best_path.display()
    ));

    let best_model = if best_epoch == 0 {
        model.valid()
    } else {
        load_checkpoint(&best_path, &base_device, Some(&cfg.model))?.model
    };
    Ok(TrainedModel {
        model: best_model,
        history,
        best_epoch,
        best_val_loss,
        checkpoint: best_path,
    })
}

/// Validation runs between two readings of the training clock; this returns how many seconds
/// of it to subtract so that `train_seconds` counts optimisation only.
fn val_clock_correction(train_clock: &Instant, train_seconds: f64, before: f64) -> f64 {
    let now = before + train_clock.elapsed().as_secs_f64();
    now - train_seconds
}
