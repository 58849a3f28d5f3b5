//! The `--vela` check: compiles the int8 model with Arm Vela (through [`vela_runner`], the
//! workspace's one Vela door) and keeps what the quantizer reports: operators left on the CPU and
//! the estimated inference time (an estimate of Vela's performance model, not a measurement).

use std::collections::HashMap;
use std::path::Path;

use crate::error::QuantError;
use crate::report::VelaResult;

/// The accelerators the project targets.
pub use vela_runner::ACCELERATORS;

/// `Ok(version)` when the `vela` command runs, else the reason it cannot.
pub fn available() -> Result<String, String> {
    vela_runner::version(Path::new(vela_runner::DEFAULT_EXECUTABLE)).map_err(|e| e.to_string())
}

/// Compiles `model` for `accelerator` into `out_dir` and keeps the operator counts and the
/// estimated inference time.
pub fn compile(model: &Path, accelerator: &str, out_dir: &Path) -> Result<VelaResult, QuantError> {
    let tool = |detail: String| QuantError::Tool {
        tool: "vela",
        detail,
    };
    let compiled = vela_runner::VelaJob::new(model, accelerator, out_dir)
        .run()
        .map_err(|e| tool(e.to_string()))?;
    let estimate = &compiled.estimate;
    let (Some(npu_ops), Some(cpu_ops)) = (estimate.npu_ops, estimate.cpu_ops) else {
        return Err(tool(format!(
            "no operator summary in the output of `{}`",
            compiled.command
        )));
    };
    Ok(VelaResult {
        accelerator: accelerator.to_string(),
        npu_ops,
        cpu_ops,
        inference_ms: Some(estimate.inference_ms),
        command: compiled.command,
    })
}

/// The accelerator `--precision mixed` prices its choices on (the smallest of the targets).
pub const COST_ACCELERATOR: &str = "ethos-u55-256";

/// Compiles `model` for `accelerator` into `out_dir` with Vela's per-layer estimate and returns
/// each layer's cycles, keyed by the tensor the layer writes, and the estimated inference time
/// in ms.
pub fn layer_cycles(
    model: &tflite_writer::Model,
    accelerator: &str,
    out_dir: &Path,
) -> Result<(HashMap<String, f64>, f64), QuantError> {
    let path = out_dir.join("model.tflite");
    let bytes = tflite_writer::write_model(model)?;
    artifact_io::write_atomic(&path, &bytes)?;
    let mut job = vela_runner::VelaJob::new(&path, accelerator, out_dir);
    job.per_layer = true;
    let compiled = job.run().map_err(|e| QuantError::Tool {
        tool: "vela",
        detail: e.to_string(),
    })?;
    let mut cycles = HashMap::new();
    for layer in compiled.layers {
        *cycles.entry(layer.name).or_default() += layer.cycles;
    }
    Ok((cycles, compiled.estimate.inference_ms))
}
