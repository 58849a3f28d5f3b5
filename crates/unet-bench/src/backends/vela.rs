//! `vela:<config>`: compiles the int8 model with Arm Vela for an Ethos-U configuration and
//! reports Vela's **performance-model estimate** (inference time, cycles, SRAM/flash, NPU/CPU
//! operator counts). Nothing runs on an NPU here: the row's status is `estimated`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::backend::{Backend, BackendResult, RowStatus, SuiteContext};
use crate::error::BenchError;
use crate::stats::Stats;

pub use vela_runner::{LayerBound, VelaEstimate, VelaLayer, parse as parse_vela, parse_per_layer};

/// The `vela:<config>` backend.
pub struct VelaBackend {
    /// Accelerator configuration (`ethos-u55-256`, `ethos-u65-256`, ...).
    pub config: String,
    /// The int8 model.
    pub model: PathBuf,
    /// The `vela` executable.
    pub vela: PathBuf,
    /// Extra Vela flags (`--config my.ini --system-config ... --memory-mode ...`).
    pub extra_args: Vec<String>,
    /// Where Vela writes its outputs (a sub-directory per configuration is made).
    pub work_dir: PathBuf,
}

/// `vela --version`, if Vela runs.
pub fn vela_version(vela: &Path) -> Option<String> {
    vela_runner::version(vela).ok()
}

impl Backend for VelaBackend {
    fn name(&self) -> String {
        format!("vela:{}", self.config)
    }

    fn run(&mut self, _ctx: &SuiteContext<'_>) -> BackendResult {
        let name = self.name();
        let device = format!("{} (Vela estimate)", self.config);
        let Some(version) = vela_version(&self.vela) else {
            return BackendResult::skipped(
                name,
                device,
                format!(
                    "`{} --version` failed: pip install ethos-u-vela",
                    self.vela.display()
                ),
            );
        };
        if !self.model.exists() {
            return BackendResult::skipped(
                name,
                device,
                format!("{} does not exist", self.model.display()),
            );
        }
        let out_dir = self.work_dir.join(format!("vela-{}", self.config));
        let t0 = Instant::now();
        match self.compile(&out_dir) {
            Ok((est, layers)) => {
                let compile_ms = t0.elapsed().as_secs_f64() * 1e3;
                let mut r = BackendResult::new(name, device, RowStatus::Estimated);
                r.init_ms = Some(compile_ms);
                r.stats = Some(Stats {
                    count: 0,
                    min: est.inference_ms,
                    p10: None,
                    median: Some(est.inference_ms),
                    mean: est.inference_ms,
                    p90: None,
                    p99: None,
                    max: est.inference_ms,
                    std: 0.0,
                    throughput: if est.inference_ms > 0.0 {
                        1000.0 / est.inference_ms
                    } else {
                        f64::INFINITY
                    },
                });
                r.op_placement = match (est.npu_ops, est.cpu_ops) {
                    (Some(n), Some(c)) => Some(format!("{n} NPU / {c} CPU ops")),
                    _ => None,
                };
                r.reason = Some("estimate from Vela's performance model, not a measurement".into());
                r.npu_layers = Some(crate::backend::NpuLayers {
                    core_clock_hz: est.core_clock_hz,
                    layers: layers.clone(),
                });
                let layers: Vec<serde_json::Value> = layers
                    .iter()
                    .map(|layer| {
                        let bound = LayerBound::of(layer);
                        serde_json::json!({
                            "layer": layer,
                            "bound": bound,
                            "why": bound.describe(layer),
                        })
                    })
                    .collect();
                r.details = serde_json::json!({ "vela_version": version, "estimate": est, "layers": layers, "output_dir": out_dir.display().to_string() });
                r
            }
            Err(e) => BackendResult::failed(name, device, &e),
        }
    }
}

impl VelaBackend {
    fn compile(&self, out_dir: &Path) -> Result<(VelaEstimate, Vec<VelaLayer>), BenchError> {
        let job = vela_runner::VelaJob {
            vela: self.vela.clone(),
            model: self.model.clone(),
            accelerator: self.config.clone(),
            extra_args: self.extra_args.clone(),
            out_dir: out_dir.to_path_buf(),
            per_layer: true,
        };
        job.run()
            .map(|compiled| (compiled.estimate, compiled.layers))
            .map_err(|e| BenchError::tool("vela", e.to_string()))
    }
}
