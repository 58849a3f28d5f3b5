//! `burn-f32`: the trained burn U-Net (unet-train's checkpoint) on burn's CPU backend (Flex by
//! default; ndarray when unet-train is built with its `ndarray` feature), the float reference.

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use unet_train::{BackendKind, UNet};

use crate::backend::{Engine, LoadError, Output};
use crate::error::BenchError;

/// The burn model from a checkpoint.
pub struct BurnEngine {
    checkpoint: PathBuf,
    backend: BackendKind,
    device: Option<Device>,
    model: Option<UNet>,
    size: usize,
    input: Option<Tensor<4>>,
    last: Option<Tensor<4>>,
}

impl BurnEngine {
    /// An engine for `checkpoint` (e.g. `artifacts/train/model.ckpt`) on `backend`.
    pub fn new(checkpoint: PathBuf, backend: BackendKind) -> Self {
        Self {
            checkpoint,
            backend,
            device: None,
            model: None,
            size: 0,
            input: None,
            last: None,
        }
    }
}

impl Engine for BurnEngine {
    fn device(&self) -> String {
        format!("cpu (burn {}, f32)", self.backend.name())
    }

    fn load(&mut self) -> Result<(), LoadError> {
        if !self.checkpoint.exists() {
            return Err(LoadError::Unavailable(format!(
                "{} does not exist (run `cargo xtask train` first)",
                self.checkpoint.display()
            )));
        }
        let device = match self.backend.device() {
            Ok(d) => d,
            Err(e) => return Err(LoadError::Unavailable(e.to_string())),
        };
        let (model, config) =
            unet_train::load_model(&self.checkpoint, &device).map_err(BenchError::from)?;
        self.size = config.size;
        self.model = Some(model);
        self.device = Some(device);
        Ok(())
    }

    fn set_input(&mut self, image: &[f32]) -> Result<(), BenchError> {
        let device = self
            .device
            .as_ref()
            .ok_or_else(|| BenchError::tool("burn", "model not loaded"))?;
        if image.len() != self.size * self.size {
            return Err(BenchError::UnsupportedModel {
                path: self.checkpoint.clone(),
                problem: format!(
                    "the model takes {0}x{0} slices, got {1} values",
                    self.size,
                    image.len()
                ),
            });
        }
        self.input = Some(Tensor::<4>::from_data(
            TensorData::new(image.to_vec(), [1, 1, self.size, self.size]),
            device,
        ));
        Ok(())
    }

    fn invoke(&mut self) -> Result<(), BenchError> {
        let model = self
            .model
            .as_ref()
            .ok_or_else(|| BenchError::tool("burn", "model not loaded"))?;
        let input = self
            .input
            .clone()
            .ok_or_else(|| BenchError::tool("burn", "no input set"))?;
        // On a rayon pool thread, as training runs (`unet_train::threads`); the result is
        // materialised inside the timed call, so lazy backends are timed honestly.
        let out = unet_train::threads::on_pool_thread(|| {
            let out = model.forward(input);
            drop(out.clone().into_data());
            out
        });
        self.last = Some(out);
        Ok(())
    }

    fn output(&mut self) -> Result<Output, BenchError> {
        let out = self
            .last
            .clone()
            .ok_or_else(|| BenchError::tool("burn", "no run yet"))?;
        // NCHW with C = 1 is the same element order as NHWC.
        Ok(Output::F32(out.into_data().iter::<f32>().collect()))
    }

    fn op_placement(&self) -> Option<String> {
        Some(format!("all layers on burn {} (CPU)", self.backend.name()))
    }

    fn threads(&self) -> Option<usize> {
        None
    }
}
