//! Which burn device trains the model.
//!
//! Flex (burn's pure-Rust CPU backend, with its SIMD kernels and rayon threads) is the default.
//! burn-ndarray (deprecated upstream) is behind the `ndarray` feature, the GPU backends behind
//! `wgpu` and `cuda`.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// A burn backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// burn-flex, pure Rust CPU (default).
    #[default]
    Flex,
    /// burn-ndarray (feature `ndarray`).
    Ndarray,
    /// burn-wgpu, default adapter (feature `wgpu`).
    Wgpu,
    /// burn-cuda, device 0 (feature `cuda`).
    Cuda,
}

impl BackendKind {
    /// All kinds.
    pub const ALL: [BackendKind; 4] = [Self::Flex, Self::Ndarray, Self::Wgpu, Self::Cuda];

    /// Command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::Ndarray => "ndarray",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }

    /// The device (without autodiff), or an error naming the feature to enable.
    pub fn device(self) -> Result<Device, TrainError> {
        match self {
            Self::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            // burn-ndarray is deprecated upstream; the user asked to keep it.
            Self::Ndarray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            Self::Wgpu => Ok(Device::wgpu(Default::default())),
            #[cfg(feature = "cuda")]
            Self::Cuda => Ok(Device::cuda(0)),
            #[allow(unreachable_patterns)]
            other => Err(TrainError::BackendNotCompiled {
                backend: other.name(),
                feature: other.name(),
            }),
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown backend `{s}` (expected flex, ndarray, wgpu or cuda)"))
    }
}
