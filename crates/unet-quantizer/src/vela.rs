//! Arm Vela (`pip install ethos-u-vela`): compiles an int8 model for an Ethos-U NPU and reports
//! how many operators stay on the CPU and the estimated inference time (an estimate from Vela's
//! performance model, not a measurement).

use std::path::Path;
use std::process::Command;

use crate::error::QuantError;
use crate::report::VelaResult;

/// The accelerators the project targets.
pub const ACCELERATORS: [&str; 2] = ["ethos-u55-256", "ethos-u65-256"];

/// `Ok(version)` when the `vela` command runs, else the reason it cannot.
pub fn available() -> Result<String, String> {
    match Command::new("vela").arg("--version").output() {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }
        Ok(out) => Err(format!(
            "vela --version failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run vela (pip install ethos-u-vela): {e}")),
    }
}

/// Parses Vela's printed summary: `CPU operators = N`, `NPU operators = N` and
/// `Batch Inference time  X ms`.
pub fn parse_summary(text: &str) -> Option<(usize, usize, Option<f64>)> {
    let count = |prefix: &str| -> Option<usize> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| {
                rest.trim()
                    .trim_start_matches('=')
                    .split_whitespace()
                    .next()
            })
            .and_then(|n| n.parse().ok())
    };
    let cpu = count("CPU operators")?;
    let npu = count("NPU operators")?;
    let ms = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Batch Inference time"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok());
    Some((cpu, npu, ms))
}

/// The `inference_time` column (seconds) of Vela's `<name>_summary_<system>.csv`, in ms.
pub fn parse_csv_inference_ms(csv: &str) -> Option<f64> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let column = header.iter().position(|h| h.trim() == "inference_time")?;
    let row: Vec<&str> = lines.next()?.split(',').collect();
    row.get(column)?
        .trim()
        .parse::<f64>()
        .ok()
        .map(|s| s * 1000.0)
}

fn summary_csv(out_dir: &Path) -> Option<String> {
    let entries = std::fs::read_dir(out_dir).ok()?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains("_summary_") && name.ends_with(".csv") {
            return std::fs::read_to_string(entry.path()).ok();
        }
    }
    None
}

/// Compiles `model` for `accelerator` into `out_dir` and parses the summary (operator counts from
/// the printed summary, the estimated inference time from the summary CSV).
pub fn compile(model: &Path, accelerator: &str, out_dir: &Path) -> Result<VelaResult, QuantError> {
    let tool = |detail: String| QuantError::Tool {
        tool: "vela",
        detail,
    };
    std::fs::create_dir_all(out_dir).map_err(|source| QuantError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let mut cmd = Command::new("vela");
    cmd.arg(model)
        .args(["--accelerator-config", accelerator])
        .arg("--output-dir")
        .arg(out_dir);
    let command = format!(
        "vela {} --accelerator-config {accelerator} --output-dir {}",
        model.display(),
        out_dir.display()
    );
    let out = cmd
        .output()
        .map_err(|e| tool(format!("cannot run `{command}`: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(tool(format!(
            "`{command}` failed: {}{}",
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let (cpu_ops, npu_ops, printed_ms) = parse_summary(&stdout)
        .ok_or_else(|| tool(format!("no operator summary in the output of `{command}`")))?;
    let inference_ms = summary_csv(out_dir)
        .as_deref()
        .and_then(parse_csv_inference_ms)
        .or(printed_ms);
    Ok(VelaResult {
        accelerator: accelerator.to_string(),
        npu_ops,
        cpu_ops,
        inference_ms,
        command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_summary_lines() {
        let text = "Network summary for unet\nCPU operators = 0 (0.0%)\nNPU operators = 32 (100.0%)\n\n\
                    Batch Inference time                 3.21 ms,  311.50 inferences/s (batch size 1)\n";
        assert_eq!(parse_summary(text), Some((0, 32, Some(3.21))));
        assert_eq!(parse_summary("nothing here"), None);
        let csv = "experiment,network,inference_time,passes\ndefault,unet,0.009363044,44\n";
        let ms = parse_csv_inference_ms(csv).unwrap();
        assert!((ms - 9.363044).abs() < 1e-9);
    }
}
