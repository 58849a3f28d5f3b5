//! The report: `report.json` (everything), `report.md` (the table), `latency.svg` (medians with
//! p10–p90 whiskers, hand-written SVG). All three are written atomically.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::backend::{BackendResult, Protocol, RowStatus};
use crate::error::BenchError;
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
        t.push_str("| backend | device | init ms | first run ms | median ms | p90 ms | p99 ms | speedup | agreement vs rust-int8 | Dice | op placement |\n");
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
            "- machine: {} ({}, {} logical CPUs; features: {})",
            self.machine.cpu_model,
            self.machine.arch,
            self.machine.logical_cpus,
            if self.machine.features.is_empty() {
                "none detected".to_string()
            } else {
                self.machine.features.join(" ")
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
        m
    }

    /// `latency.svg`: a horizontal bar per row with a median, whiskers from p10 to p90
    /// (measured rows), estimates drawn hatched and labelled.
    pub fn svg(&self) -> String {
        let bars: Vec<(&BackendResult, f64)> = self
            .rows
            .iter()
            .filter_map(|r| r.stats.as_ref().map(|s| (r, s.central())))
            .filter(|(_, m)| m.is_finite())
            .collect();
        let label_w = 230.0;
        let plot_w = 460.0;
        let row_h = 26.0;
        let top = 40.0;
        let height = top + row_h * bars.len().max(1) as f64 + 40.0;
        let width = label_w + plot_w + 120.0;
        let max = bars
            .iter()
            .map(|(r, m)| r.stats.as_ref().and_then(|s| s.p90).unwrap_or(*m).max(*m))
            .fold(0.0_f64, f64::max)
            .max(1e-9);
        let x = |v: f64| label_w + v / max * plot_w;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
        );
        s.push_str(r##"<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#f3e3c3"/><line x1="0" y1="0" x2="0" y2="6" stroke="#c08a2e" stroke-width="2"/></pattern></defs>"##);
        s.push('\n');
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="20" font-size="14" font-weight="bold">U-Net latency per inference (median, whiskers p10–p90; hatched = Vela estimate)</text>"#,
            10
        );
        for (i, (r, median)) in bars.iter().enumerate() {
            let y = top + i as f64 * row_h;
            let est = r.status == RowStatus::Estimated;
            let fill = if est { "url(#hatch)" } else { "#4a78b5" };
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                label_w - 8.0,
                y + 16.0,
                xml(&r.backend)
            );
            let _ = writeln!(
                s,
                r#"<rect x="{label_w:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{fill}"/>"#,
                y + 4.0,
                (x(*median) - label_w).max(0.5),
                row_h - 8.0
            );
            if let Some(stats) = &r.stats
                && let (Some(p10), Some(p90)) = (stats.p10, stats.p90)
            {
                let cy = y + row_h / 2.0;
                let _ = writeln!(
                    s,
                    r#"<g stroke="black" stroke-width="1.2"><line x1="{:.1}" y1="{cy:.1}" x2="{:.1}" y2="{cy:.1}"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/></g>"#,
                    x(p10),
                    x(p90),
                    x(p10),
                    cy - 5.0,
                    x(p10),
                    cy + 5.0,
                    x(p90),
                    cy - 5.0,
                    x(p90),
                    cy + 5.0
                );
            }
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}">{:.2} ms{}</text>"#,
                x(r.stats
                    .as_ref()
                    .and_then(|st| st.p90)
                    .unwrap_or(*median)
                    .max(*median))
                    + 6.0,
                y + 16.0,
                median,
                if est { " (estimate)" } else { "" }
            );
        }
        let axis_y = top + row_h * bars.len().max(1) as f64 + 6.0;
        let _ = writeln!(
            s,
            r#"<line x1="{label_w}" y1="{axis_y:.1}" x2="{:.1}" y2="{axis_y:.1}" stroke="black"/>"#,
            label_w + plot_w
        );
        for k in 0..=4 {
            let v = max * k as f64 / 4.0;
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{v:.1}</text>"#,
                x(v),
                axis_y + 16.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">milliseconds</text>"#,
            label_w + plot_w / 2.0,
            axis_y + 32.0
        );
        s.push_str("</svg>\n");
        s
    }

    /// Writes `report.json`, `report.md` and `latency.svg` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
        let json = dir.join("report.json");
        let md = dir.join("report.md");
        let svg = dir.join("latency.svg");
        write_atomic(&json, serde_json::to_string_pretty(self)?.as_bytes())?;
        write_atomic(&md, self.markdown().as_bytes())?;
        write_atomic(&svg, self.svg().as_bytes())?;
        Ok(vec![json, md, svg])
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
