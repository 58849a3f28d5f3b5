//! The backends: our runtime, burn, LiteRT, TFLite's `benchmark_model`, and Arm Vela.

pub mod benchmark_model;
#[cfg(feature = "burn")]
pub mod burn;
pub mod litert;
pub mod rust;
pub mod vela;
