//! IntelAI's 2D U-Net in burn 0.22: model, losses and metrics, the training loop with
//! checkpoints, and the export of a trained model to the float TFLite IR of `tflite-writer`.
//!
//! - [`model`]: [`UNetConfig`] and [`UNet`] (1,940,817 parameters by default).
//! - [`loss`]: −log soft Dice, Dice + BCE, Dice metrics.
//! - [`training`]: [`train`], validation each epoch, best checkpoint, early stopping, resume.
//! - [`checkpoint`]: the checkpoint file (model + optimizer + metadata, checksummed).
//! - [`export`]: [`export_float`], NCHW burn → NHWC TFLite.
//! - [`bench`]: seconds per training step, split into forward, backward and optimizer.
//! - [`optim`]: Adam in one pass per parameter on the CPU, bit-identical to burn's.
//! - [`backend`]: which burn device runs it (Flex by default).
//! - [`allocator`]: keeps freed tensor memory for the next step (glibc).
//! - [`threads`]: runs the model's work on a thread of rayon's pool.

#![warn(missing_docs)]

pub mod allocator;
pub mod backend;
pub mod bench;
pub mod checkpoint;
/// The shifted-GEMM convolutions of the model (the `burn-shifted-conv` crate).
pub use burn_shifted_conv as conv3x3;
mod curves;
mod error;
pub mod export;
mod fsutil;
pub mod loss;
pub mod model;
pub mod optim;
pub mod rng;
pub mod threads;
pub mod training;

pub use backend::BackendKind;
pub use checkpoint::{Checkpoint, CheckpointMeta, load_checkpoint, load_model};
pub use error::TrainError;
pub use export::export_float;
pub use loss::{DiceStats, LossKind};
pub use model::{UNet, UNetConfig, Upsampling};
pub use training::{EpochRecord, History, ProgressMode, TrainConfig, TrainedModel, train};
