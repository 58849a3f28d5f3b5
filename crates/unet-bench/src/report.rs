//! The report: `report.json` (everything), `report.md` (the table), `latency.svg` (medians with
//! p10–p90 whiskers, drawn with plotters in `chart.rs`). All three are written atomically.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::backend::{BackendResult, Protocol, RowStatus};
use crate::error::BenchError;
use crate::layers::LayerTable;
use crate::suite::{Libraries, Models};
use crate::sys::MachineInfo;
use artifact_io::write_atomic;

/// A whole benchmark run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `unet-bench <version>`.
    pub tool: String,
    /// The command line that made it.
    pub command: Vec<String>,
    /// Git commit of the source tree (`-dirty` with local changes), when known.
    pub commit: Option<String>,
    /// Seconds since the Unix epoch.
    pub created_unix_s: u64,
    /// CPU model, features, cores.
    pub machine: MachineInfo,
    /// Warm-up, runs, time budget, threads.
    pub protocol: Protocol,
    /// The input slices.
    pub inputs: String,
    /// The model files.
    pub models: Models,
    /// Library versions.
    pub libraries: Libraries,
    /// The backend speedups are relative to.
    pub baseline: String,
    /// Peak RSS of the whole process (MiB).
    pub process_peak_rss_mib: Option<f64>,
    /// One row per backend.
    pub rows: Vec<BackendResult>,
    /// Per-layer table (CPU profiles and Vela's per-layer estimates), when any row has one.
    pub layers: Option<LayerTable>,
    /// The Vela configuration sweep (`--vela-sweep`).
    pub vela_sweep: Option<crate::sweep::VelaSweep>,
}

fn ms(v: Option<f64>) -> String {
    v.map(|v| {
        if v >= 100.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.3}")
        }
    })
    .unwrap_or_else(|| "–".into())
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

impl Report {
    /// The Markdown table (one row per backend).
    pub fn markdown_table(&self) -> String {
        let mut t = String::new();
        t.push_str("| backend | device | init ms | first run ms | median ms | p90 ms | p99 ms | speedup | agreement vs rust-int8 | pooled Dice | op placement |\n");
        t.push_str("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|\n");
        for r in &self.rows {
            let (median, p90, p99) = match &r.stats {
                Some(s) => (s.median.or(Some(s.mean)), s.p90, s.p99),
                None => (None, None, None),
            };
            let est = r.status == RowStatus::Estimated;
            let median = match (est, median) {
                (true, Some(m)) => format!("≈{} (estimate)", ms(Some(m))),
                (_, m) => ms(m),
            };
            let agreement = match &r.agreement {
                Some(a) => format!(
                    "max {} LSB, {:.2}% differ{}",
                    a.max_lsb,
                    a.differing_share * 100.0,
                    if a.quantized_from_float {
                        " (float output quantised)"
                    } else {
                        ""
                    }
                ),
                None => "–".into(),
            };
            let placement = match (&r.status, &r.reason) {
                (RowStatus::Skipped, Some(why)) => format!("skipped: {why}"),
                (RowStatus::Failed, Some(why)) => format!("failed: {why}"),
                _ => r.op_placement.clone().unwrap_or_else(|| "–".into()),
            };
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(&r.backend),
                cell(&r.device),
                ms(r.init_ms),
                ms(r.first_run_ms),
                median,
                ms(p90),
                ms(p99),
                r.speedup_vs_baseline
                    .map(|s| format!("{s:.2}×{}", if est { " (est.)" } else { "" }))
                    .unwrap_or_else(|| "–".into()),
                cell(&agreement),
                r.dice
                    .map(|d| format!("{d:.4}"))
                    .unwrap_or_else(|| "–".into()),
                cell(&placement),
            );
        }
        t
    }

    /// The whole `report.md`.
    pub fn markdown(&self) -> String {
        let mut m = String::new();
        let _ = writeln!(m, "# U-Net benchmark\n");
        let _ = writeln!(m, "- command: `{}`", self.command.join(" "));
        let _ = writeln!(
            m,
            "- commit: {}",
            self.commit.as_deref().unwrap_or("unknown")
        );
        let _ = writeln!(
            m,
            "- machine: {} ({}, {} logical CPUs; features: {}){}",
            self.machine.cpu_model,
            self.machine.arch,
            self.machine.logical_cpus,
            if self.machine.features.is_empty() {
                "none detected".to_string()
            } else {
                self.machine.features.join(" ")
            },
            match &self.machine.cpuid_mask {
                Some(class) => format!(
                    "; CPUID-masked to `{class}` (`--cpu-class {class}`): the features are the \
                     masked ones, the core is this CPU's"
                ),
                None => String::new(),
            }
        );
        let _ = writeln!(
            m,
            "- protocol: {} warm-up runs, {} timed runs{}, {} thread(s); inputs: {}",
            self.protocol.warmup,
            self.protocol.runs,
            self.protocol
                .max_secs
                .map(|s| format!(" or {s} s"))
                .unwrap_or_default(),
            self.protocol.threads,
            self.inputs
        );
        let _ = writeln!(
            m,
            "- libraries: tflite-runtime {}, ai-edge-litert {}, vela {}",
            self.libraries.tflite_runtime,
            self.libraries
                .ai_edge_litert
                .as_deref()
                .unwrap_or("not found"),
            self.libraries.vela.as_deref().unwrap_or("not found")
        );
        let _ = writeln!(
            m,
            "- speedup: baseline median / row median, baseline `{}`",
            self.baseline
        );
        let _ = writeln!(
            m,
            "- `vela:*` rows are **estimates from Vela's performance model**, not measurements; every other figure was measured in this run.\n"
        );
        m.push_str(&self.markdown_table());
        m.push_str(&self.vela_layers_markdown(5));
        if let Some(layers) = &self.layers {
            m.push_str(&layers.markdown());
            m.push_str("\n![per-layer chart](layers.svg)\n");
        }
        if let Some(sweep) = &self.vela_sweep {
            m.push_str(&sweep.markdown());
            m.push_str("\n![Vela sweep](vela_sweep.svg)\n");
        }
        m
    }

    /// For every `vela:` row with a per-layer estimate: its `top` layers by cycles, with their
    /// share, MACs, MAC utilisation, SRAM and what bounds them (all Vela estimates).
    pub fn vela_layers_markdown(&self, top: usize) -> String {
        let mut m = String::new();
        for row in &self.rows {
            let Some(layers) = row.details.get("layers").and_then(|l| l.as_array()) else {
                continue;
            };
            let num = |v: &serde_json::Value, key: &str| {
                v.get("layer")
                    .and_then(|l| l.get(key))
                    .and_then(serde_json::Value::as_f64)
                    .unwrap_or(0.0)
            };
            let text = |v: &serde_json::Value, key: &str| {
                v.get("layer")
                    .and_then(|l| l.get(key))
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let total: f64 = layers.iter().map(|l| num(l, "cycles")).sum();
            if layers.is_empty() || total <= 0.0 {
                continue;
            }
            let mut sorted: Vec<&serde_json::Value> = layers.iter().collect();
            sorted.sort_by(|a, b| num(b, "cycles").total_cmp(&num(a, "cycles")));
            let _ = writeln!(
                m,
                "\n### Where `{}` spends its cycles (Vela estimate, top {} of {} NPU operations)\n",
                row.backend,
                top.min(sorted.len()),
                sorted.len()
            );
            let _ = writeln!(
                m,
                "| layer | Vela op | cycles | share | MACs | MAC util | SRAM KiB | bound |\n|---|---|---:|---:|---:|---:|---:|---|"
            );
            for layer in sorted.into_iter().take(top) {
                let cycles = num(layer, "cycles");
                let _ = writeln!(
                    m,
                    "| {} | {} | {:.0} | {:.1} % | {:.0} | {:.1} % | {:.0} | {} |",
                    text(layer, "name"),
                    text(layer, "npu_operation"),
                    cycles,
                    100.0 * cycles / total,
                    num(layer, "macs"),
                    num(layer, "mac_utilisation_percent"),
                    num(layer, "sram_bytes") / 1024.0,
                    layer
                        .get("why")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("")
                );
            }
        }
        m
    }

    /// `latency.svg`: a horizontal bar per row with a median, whiskers from p10 to p90
    /// (measured rows), estimates in their own colour and labelled (see `chart.rs`).
    pub fn svg(&self) -> String {
        crate::chart::latency_svg(&self.rows)
    }

    /// Writes `report.json`, `report.md`, `latency.svg` and, with a per-layer table or a
    /// sweep, `layers.svg` and `vela_sweep.svg` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
        let json = dir.join("report.json");
        let md = dir.join("report.md");
        let svg = dir.join("latency.svg");
        write_atomic(&json, serde_json::to_string_pretty(self)?.as_bytes())?;
        write_atomic(&md, self.markdown().as_bytes())?;
        write_atomic(&svg, self.svg().as_bytes())?;
        let mut paths = vec![json, md, svg];
        if let Some(layers) = &self.layers {
            let path = dir.join("layers.svg");
            write_atomic(&path, layers.svg().as_bytes())?;
            paths.push(path);
        }
        if let Some(sweep) = &self.vela_sweep {
            let path = dir.join("vela_sweep.svg");
            write_atomic(&path, sweep.svg().as_bytes())?;
            paths.push(path);
        }
        Ok(paths)
    }
}
