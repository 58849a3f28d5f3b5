//! `vela:<config>`: compiles the int8 model with Arm Vela for an Ethos-U configuration and
//! reports Vela's **performance-model estimate** (inference time, cycles, SRAM/flash, NPU/CPU
//! operator counts). Nothing runs on an NPU here: the row's status is `estimated`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::Serialize;

use crate::backend::{Backend, BackendResult, RowStatus, SuiteContext};
use crate::error::BenchError;
use crate::stats::Stats;

/// What Vela estimated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VelaEstimate {
    /// Accelerator configuration (e.g. `ethos-u55-256`).
    pub accelerator: String,
    /// System configuration used.
    pub system_config: String,
    /// Memory mode used.
    pub memory_mode: String,
    /// Core clock in Hz.
    pub core_clock_hz: f64,
    /// Estimated inference time in milliseconds.
    pub inference_ms: f64,
    /// Estimated total cycles per inference.
    pub cycles_total: f64,
    /// Estimated NPU cycles.
    pub cycles_npu: Option<f64>,
    /// SRAM used (KiB).
    pub sram_kib: Option<f64>,
    /// Off-chip flash used (KiB).
    pub off_chip_flash_kib: Option<f64>,
    /// DRAM used (KiB).
    pub dram_kib: Option<f64>,
    /// Operators placed on the NPU.
    pub npu_ops: Option<usize>,
    /// Operators left for the CPU.
    pub cpu_ops: Option<usize>,
    /// MACs per inference.
    pub macs: Option<f64>,
}

/// Splits one CSV line (Vela's summary has no embedded newlines; quotes are handled).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// Parses Vela's `<model>_summary_<system>.csv` and the operator counts of its stdout.
pub fn parse_vela(summary_csv: &str, stdout: &str) -> Result<VelaEstimate, BenchError> {
    let mut lines = summary_csv.lines().filter(|l| !l.trim().is_empty());
    let (Some(header), Some(values)) = (lines.next(), lines.next()) else {
        return Err(BenchError::tool("vela", "summary CSV has no data row"));
    };
    let row: BTreeMap<String, String> = split_csv(header)
        .into_iter()
        .zip(split_csv(values))
        .collect();
    let text = |k: &str| row.get(k).cloned().unwrap_or_default();
    let num = |k: &str| row.get(k).and_then(|v| v.trim().parse::<f64>().ok());
    let need = |k: &str| {
        num(k).ok_or_else(|| BenchError::tool("vela", format!("summary CSV has no numeric {k:?}")))
    };
    let count = |label: &str| {
        stdout.lines().find_map(|l| {
            let rest = l
                .trim()
                .strip_prefix(label)?
                .trim_start()
                .strip_prefix("operators =")?;
            rest.split_whitespace().next()?.parse::<usize>().ok()
        })
    };
    let inference_s = need("inference_time")?;
    Ok(VelaEstimate {
        accelerator: text("accelerator_configuration"),
        system_config: text("system_config"),
        memory_mode: text("memory_mode"),
        core_clock_hz: need("core_clock")?,
        inference_ms: inference_s * 1e3,
        cycles_total: need("cycles_total")?,
        cycles_npu: num("cycles_npu"),
        sram_kib: num("sram_memory_used"),
        off_chip_flash_kib: num("off_chip_flash_memory_used"),
        dram_kib: num("dram_memory_used"),
        npu_ops: count("NPU"),
        cpu_ops: count("CPU"),
        macs: num("nn_macs"),
    })
}

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
    let out = Command::new(vela).arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
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
            Ok(est) => {
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
                r.details = serde_json::json!({ "vela_version": version, "estimate": est, "output_dir": out_dir.display().to_string() });
                r
            }
            Err(e) => BackendResult::failed(name, device, &e),
        }
    }
}

impl VelaBackend {
    fn compile(&self, out_dir: &Path) -> Result<VelaEstimate, BenchError> {
        std::fs::create_dir_all(out_dir).map_err(|e| BenchError::io(out_dir, e))?;
        let out = Command::new(&self.vela)
            .arg(&self.model)
            .arg("--accelerator-config")
            .arg(&self.config)
            .arg("--output-dir")
            .arg(out_dir)
            .args(&self.extra_args)
            .output()
            .map_err(|e| BenchError::tool("vela", e.to_string()))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().chain(stdout.lines()).rev().take(4).collect();
            return Err(BenchError::tool(
                "vela",
                format!("exited with {}: {}", out.status, tail.join(" | ")),
            ));
        }
        let log = out_dir.join("vela_stdout.txt");
        std::fs::write(&log, &stdout).map_err(|e| BenchError::io(&log, e))?;
        let stem = self
            .model
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prefix = format!("{stem}_summary_");
        let csv = std::fs::read_dir(out_dir)
            .map_err(|e| BenchError::io(out_dir, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
                    && p.extension().is_some_and(|e| e == "csv")
            })
            .ok_or_else(|| {
                BenchError::tool("vela", format!("no {prefix}*.csv in {}", out_dir.display()))
            })?;
        let text = std::fs::read_to_string(&csv).map_err(|e| BenchError::io(&csv, e))?;
        parse_vela(&text, &stdout)
    }
}
