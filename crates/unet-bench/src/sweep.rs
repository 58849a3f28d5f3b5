//! `--vela-sweep`: the int8 model compiled by Vela for every Ethos-U configuration Vela knows
//! (the choices of its `--accelerator-config`), every memory mode of the configuration file it
//! ships (`--list-configs`), under `--optimise Performance` and `Size`; each compilation's
//! estimated latency and SRAM against the configuration's MACs per cycle, with the measured CPU
//! rows as reference lines (`vela_sweep.svg`). A combination Vela rejects is a row that says
//! why. Every figure is Vela's estimate.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use vela_runner::{VelaJob, VelaOptions};

use crate::error::BenchError;

/// Vela's `--optimise` strategies.
pub const OPTIMISE: [&str; 2] = ["Performance", "Size"];

/// One compilation of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepPoint {
    /// `--accelerator-config`.
    pub accelerator: String,
    /// MACs per cycle of that configuration (the number in its name).
    pub macs_per_cycle: u32,
    /// System configuration (Vela's default for the accelerator).
    pub system_config: String,
    /// Memory mode.
    pub memory_mode: String,
    /// `--optimise`.
    pub optimise: String,
    /// Vela's estimate; `None` when Vela rejected the combination.
    pub inference_ms: Option<f64>,
    /// SRAM used (KiB).
    pub sram_kib: Option<f64>,
    /// Operators left for the CPU.
    pub cpu_ops: Option<usize>,
    /// Why Vela refused it.
    pub rejected: Option<String>,
    /// The command.
    pub command: String,
}

/// A whole sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VelaSweep {
    /// `vela --version`.
    pub vela_version: String,
    /// What Vela offered.
    pub options: VelaOptions,
    /// One point per compilation, in accelerator order.
    pub points: Vec<SweepPoint>,
    /// Measured CPU rows drawn as reference lines: (backend, median ms).
    pub cpu_lines: Vec<(String, f64)>,
}

/// The MACs per cycle in a configuration name (`ethos-u55-256` → 256).
pub fn macs_per_cycle(accelerator: &str) -> Option<u32> {
    accelerator.rsplit('-').next()?.parse().ok()
}

struct Job {
    accelerator: String,
    /// The system configuration to name with the memory mode (Vela's default for the
    /// accelerator); `None` with `memory_mode: None` (Vela picks both).
    system: Option<String>,
    memory_mode: Option<String>,
    optimise: &'static str,
}

/// Runs the sweep of `model` with `jobs` Vela processes at a time. Each compilation writes into
/// its own directory under `work_dir`, which is removed once its figures are read.
pub fn run_sweep(
    model: &Path,
    vela: &Path,
    work_dir: &Path,
    jobs: usize,
) -> Result<VelaSweep, BenchError> {
    let tool = |e: vela_runner::VelaError| BenchError::tool("vela", e.to_string());
    let version = vela_runner::version(vela).map_err(tool)?;
    let options = vela_runner::options(vela).map_err(tool)?;
    std::fs::create_dir_all(work_dir).map_err(|e| BenchError::io(work_dir, e))?;

    // First Vela's own choice for each accelerator (its default system configuration and
    // memory mode), which also says which system configuration the other modes use.
    let defaults: Vec<Job> = options
        .accelerators
        .iter()
        .map(|a| Job {
            accelerator: a.clone(),
            system: None,
            memory_mode: None,
            optimise: OPTIMISE[0],
        })
        .collect();
    let first = run_jobs(&defaults, model, vela, work_dir, &options, jobs);
    let mut rest = Vec::new();
    for (acc, point) in options.accelerators.iter().zip(&first) {
        for optimise in OPTIMISE {
            for mode in &options.memory_modes {
                if optimise == OPTIMISE[0] && *mode == point.memory_mode {
                    continue; // the default compilation above
                }
                rest.push(Job {
                    accelerator: acc.clone(),
                    system: Some(point.system_config.clone()),
                    memory_mode: Some(mode.clone()),
                    optimise,
                });
            }
        }
    }
    let more = run_jobs(&rest, model, vela, work_dir, &options, jobs);
    let mut points = first;
    points.extend(more);
    let order = |p: &SweepPoint| {
        options
            .accelerators
            .iter()
            .position(|a| *a == p.accelerator)
            .unwrap_or(usize::MAX)
    };
    points.sort_by(|a, b| {
        (order(a), &a.optimise, &a.memory_mode).cmp(&(order(b), &b.optimise, &b.memory_mode))
    });
    Ok(VelaSweep {
        vela_version: version,
        options,
        points,
        cpu_lines: Vec::new(),
    })
}

fn run_jobs(
    list: &[Job],
    model: &Path,
    vela: &Path,
    work_dir: &Path,
    options: &VelaOptions,
    jobs: usize,
) -> Vec<SweepPoint> {
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<(usize, SweepPoint)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, list.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = list.get(i) else { break };
                    let point = compile(job, model, vela, work_dir, options, i);
                    if let Ok(mut v) = out.lock() {
                        v.push((i, point));
                    }
                }
            });
        }
    });
    let mut v = out.into_inner().unwrap_or_default();
    v.sort_by_key(|(i, _)| *i);
    v.into_iter().map(|(_, p)| p).collect()
}

fn compile(
    job: &Job,
    model: &Path,
    vela: &Path,
    work_dir: &Path,
    options: &VelaOptions,
    i: usize,
) -> SweepPoint {
    let dir: PathBuf = work_dir.join(format!("sweep-{i}-{}", std::process::id()));
    let mut extra = vec!["--optimise".to_string(), job.optimise.to_string()];
    if let (Some(mode), Some(file), Some(system)) =
        (&job.memory_mode, &options.config_file, &job.system)
    {
        extra.extend([
            "--config".into(),
            file.clone(),
            "--system-config".into(),
            system.clone(),
            "--memory-mode".into(),
            mode.clone(),
        ]);
    }
    let vela_job = VelaJob {
        vela: vela.to_path_buf(),
        model: model.to_path_buf(),
        accelerator: job.accelerator.clone(),
        extra_args: extra,
        out_dir: dir.clone(),
        per_layer: false,
    };
    let command = vela_job.command_line();
    let result = vela_job.run();
    let _ = std::fs::remove_dir_all(&dir);
    let macs = macs_per_cycle(&job.accelerator).unwrap_or(0);
    match result {
        Ok(c) => SweepPoint {
            accelerator: job.accelerator.clone(),
            macs_per_cycle: macs,
            system_config: c.estimate.system_config.clone(),
            memory_mode: c.estimate.memory_mode.clone(),
            optimise: job.optimise.to_string(),
            inference_ms: Some(c.estimate.inference_ms),
            sram_kib: c.estimate.sram_kib,
            cpu_ops: Some(c.cpu_ops()),
            rejected: None,
            command,
        },
        Err(e) => SweepPoint {
            accelerator: job.accelerator.clone(),
            macs_per_cycle: macs,
            system_config: job
                .system
                .clone()
                .unwrap_or_else(|| "Vela's default".into()),
            memory_mode: job
                .memory_mode
                .clone()
                .unwrap_or_else(|| "Vela's default".into()),
            optimise: job.optimise.to_string(),
            inference_ms: None,
            sram_kib: None,
            cpu_ops: None,
            rejected: Some(rejection(&e.to_string())),
            command,
        },
    }
}

/// The last line of Vela's complaint (its error class and message), without the traceback.
fn rejection(error: &str) -> String {
    let tail = error.rsplit(" | ").next().unwrap_or(error).trim();
    let tail = tail
        .strip_prefix("ethosu.vela.errors.")
        .unwrap_or(tail)
        .to_string();
    if tail.chars().count() > 200 {
        tail.chars().take(200).collect::<String>() + "…"
    } else {
        tail
    }
}

impl VelaSweep {
    /// The sweep as Markdown: one row per compilation, fastest first within each accelerator.
    pub fn markdown(&self) -> String {
        let mut m = String::new();
        let ok = self.points.iter().filter(|p| p.rejected.is_none()).count();
        let _ = writeln!(
            m,
            "\n## Vela sweep (estimates, Vela {})\n\n{} compilations: {} estimated, {} rejected by Vela. Accelerators from `vela --help`, memory modes from `vela --list-configs {}`, each accelerator with Vela's default system configuration.\n",
            self.vela_version,
            self.points.len(),
            ok,
            self.points.len() - ok,
            self.options.config_file.as_deref().unwrap_or("(none)")
        );
        let _ = writeln!(
            m,
            "| accelerator | MACs/cycle | system config | memory mode | optimise | est. ms | SRAM KiB | CPU ops |\n|---|---:|---|---|---|---:|---:|---:|"
        );
        for p in self.points.iter().filter(|p| p.rejected.is_none()) {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                p.accelerator,
                p.macs_per_cycle,
                p.system_config,
                p.memory_mode,
                p.optimise,
                p.inference_ms
                    .map(|v| format!("≈{v:.3}"))
                    .unwrap_or_else(|| "–".into()),
                p.sram_kib
                    .map(|v| format!("{v:.0}"))
                    .unwrap_or_else(|| "–".into()),
                p.cpu_ops
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "–".into()),
            );
        }
        // Rejections, one line per memory mode and reason.
        let mut rejected: std::collections::BTreeMap<(&str, &str), Vec<String>> =
            std::collections::BTreeMap::new();
        for p in &self.points {
            if let Some(why) = &p.rejected {
                rejected
                    .entry((p.memory_mode.as_str(), why.as_str()))
                    .or_default()
                    .push(format!("{} ({})", p.accelerator, p.optimise));
            }
        }
        if !rejected.is_empty() {
            let _ = writeln!(m, "\nRejected by Vela:\n");
            for ((mode, why), which) in rejected {
                let _ = writeln!(m, "- `{mode}` on {}: {why}", which.join(", "));
            }
        }
        for (name, ms) in &self.cpu_lines {
            let _ = writeln!(m, "\nMeasured CPU reference: `{name}` {ms:.3} ms.");
        }
        m
    }

    /// `vela_sweep.svg`.
    pub fn svg(&self) -> String {
        crate::chart::sweep_svg(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_come_from_the_configuration_name() {
        assert_eq!(macs_per_cycle("ethos-u55-32"), Some(32));
        assert_eq!(macs_per_cycle("ethos-u85-2048"), Some(2048));
        assert_eq!(macs_per_cycle("ethos-u65"), None);
    }

    #[test]
    fn rejections_keep_vela_s_message_only() {
        let e = "vela failed (exit status: 1): Traceback | raise CliOptionError( | ethosu.vela.errors.CliOptionError: Error: bad memory mode";
        assert_eq!(rejection(e), "CliOptionError: Error: bad memory mode");
    }
}
