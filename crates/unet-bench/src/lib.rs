//! NPU-vs-ARM-CPU benchmark harness for the INT8 U-Net.
//!
//! Every backend sits behind one [`Backend`] trait and reports a row that is measured,
//! estimated (Vela) or `skipped: <why>`; nothing is silently left out.
//!
//! - [`backends::rust`]: `rust-int8`, `rust-f32` (our `tflite-runtime`).
//! - [`backends::burn`]: `burn-f32`, the trained burn model (feature `burn`).
//! - [`backends::litert`]: `litert:<cpu|gpu|npu>`, LiteRT's compiled-model C API via `dlopen`.
//! - [`backends::benchmark_model`]: TFLite's `benchmark_model` binary with pass-through flags.
//! - [`backends::vela`]: Arm Vela's Ethos-U performance estimate.
//!
//! The protocol ([`backend::measure_engine`]) times init, the first inference, warm-up, then
//! the timed runs over fixed real slices ([`inputs`]), and checks every output against
//! `rust-int8` (LSB) and the ground truth (Dice). [`report::Report`] writes JSON, Markdown and
//! an SVG chart.

#![warn(missing_docs)]

pub mod backend;
pub mod backends;
mod chart;
pub mod cli;
mod error;
pub mod inputs;
pub mod layers;
pub mod models;
mod native_stderr;
pub mod report;
pub mod stats;
pub mod suite;
pub mod sweep;
pub mod sys;

pub use backend::{Backend, BackendResult, Engine, Output, Protocol, RowStatus};
pub use error::BenchError;
pub use report::Report;
pub use suite::{BackendSpec, SuiteConfig, run_suite};
