//! Several models in one benchmark (`--model a.tflite --model b.tflite`): each model runs the
//! whole suite into its own directory (`OUT/<model>/`), then one table (`models.md`, `models.json`)
//! and one chart (`models.svg`, log time axis) put every model's rows side by side, grouped by backend, so
//! "int8 vs 16x8 vs mixed, NPU vs CPU" is one picture.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use artifact_io::write_atomic;
use serde::Serialize;
use unet_charts::plotters::prelude::*;
use unet_charts::{Axis, LABEL_SIZE, LegendEntry, Swatch};

use crate::backend::{BackendResult, RowStatus};
use crate::error::BenchError;
use crate::report::Report;

/// One model's suite.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRun {
    /// Its label (the file stem, made unique).
    pub label: String,
    /// The model file.
    pub path: PathBuf,
    /// Its whole report (also written to its own directory).
    pub report: Report,
}

/// Every model's suite.
#[derive(Debug, Clone, Serialize)]
pub struct ModelsReport {
    /// The command line.
    pub command: Vec<String>,
    /// One suite per model, in the order given.
    pub models: Vec<ModelRun>,
}

/// Labels for `paths`: file stems, with `-2`, `-3`… where two stems are equal.
pub fn labels(paths: &[PathBuf]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(paths.len());
    for p in paths {
        let stem = p
            .file_stem()
            .map_or_else(|| "model".to_string(), |s| s.to_string_lossy().into_owned());
        let mut label = stem.clone();
        let mut n = 2;
        while out.contains(&label) {
            label = format!("{stem}-{n}");
            n += 1;
        }
        out.push(label);
    }
    out
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.2}"))
}

/// The rows of `run` that the table and chart show, in backend order.
fn status_text(r: &BackendResult) -> String {
    match (&r.status, &r.reason) {
        (RowStatus::Measured, _) => "measured".into(),
        (RowStatus::Estimated, _) => "estimate".into(),
        (RowStatus::Skipped, Some(why)) => format!("skipped: {why}"),
        (RowStatus::Failed, Some(why)) => format!("failed: {why}"),
        (s, None) => format!("{s:?}").to_lowercase(),
    }
}

impl ModelsReport {
    /// The backends in the order they first appear.
    fn backends(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in &self.models {
            for r in &m.report.rows {
                if !out.contains(&r.backend) {
                    out.push(r.backend.clone());
                }
            }
        }
        out
    }

    /// The Markdown table: one row per backend and model, grouped by backend.
    pub fn markdown_table(&self) -> String {
        let mut t = String::from(
            "| backend | model | median ms | p90 ms | vs first model | agreement | Dice | status / op placement |\n|---|---|---:|---:|---:|---|---:|---|\n",
        );
        for backend in self.backends() {
            let first = self
                .models
                .first()
                .and_then(|m| m.report.rows.iter().find(|r| r.backend == backend))
                .and_then(|r| r.stats.as_ref().map(|s| s.central()));
            for m in &self.models {
                let Some(r) = m.report.rows.iter().find(|r| r.backend == backend) else {
                    continue;
                };
                let median = r.stats.as_ref().map(|s| s.central());
                let ratio = match (median, first) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
                    _ => "–".into(),
                };
                let agreement = r.agreement.as_ref().map_or_else(
                    || "–".into(),
                    |a| {
                        format!(
                            "max {} LSB, {:.2}% differ",
                            a.max_lsb,
                            a.differing_share * 100.0
                        )
                    },
                );
                let placement = match r.status {
                    RowStatus::Measured | RowStatus::Estimated => {
                        r.op_placement.clone().unwrap_or_else(|| status_text(r))
                    }
                    _ => status_text(r),
                };
                let _ = writeln!(
                    t,
                    "| {} | {} | {}{} | {} | {} | {} | {} | {} |",
                    backend,
                    m.label,
                    ms(median),
                    if r.status == RowStatus::Estimated {
                        " (estimate)"
                    } else {
                        ""
                    },
                    ms(r.stats.as_ref().and_then(|s| s.p90)),
                    ratio,
                    agreement,
                    r.dice.map_or_else(|| "–".into(), |d| format!("{d:.4}")),
                    placement.replace('|', "\\|").replace('\n', " "),
                );
            }
        }
        t
    }

    /// `models.md`.
    pub fn markdown(&self) -> String {
        let mut m = String::from("# U-Net benchmark: several models\n\n");
        let _ = writeln!(m, "- command: `{}`", self.command.join(" "));
        for run in &self.models {
            let _ = writeln!(
                m,
                "- {}: `{}` (its own report: `{}/report.md`)",
                run.label,
                run.path.display(),
                run.label
            );
        }
        let _ = writeln!(
            m,
            "\nMedians of measured rows are timings on this machine; Vela rows are Vela's performance\nestimate for that NPU, not a measurement. \"vs first model\" divides by the first model's row\nof the same backend.\n"
        );
        m.push_str(&self.markdown_table());
        m
    }

    /// `models.svg`: one bar per backend and model, grouped by backend, coloured by model.
    pub fn svg(&self) -> String {
        let mut svg = String::new();
        let (w, h) = self.chart_size();
        match self.draw(&mut svg) {
            Ok(()) => svg,
            Err(e) => unet_charts::message_svg(w, h, &format!("the chart could not be drawn: {e}")),
        }
    }

    fn bars(&self) -> Vec<(String, usize, f64, bool)> {
        let mut out = Vec::new();
        for backend in self.backends() {
            for (i, m) in self.models.iter().enumerate() {
                let Some(r) = m.report.rows.iter().find(|r| r.backend == backend) else {
                    continue;
                };
                let Some(v) = r.stats.as_ref().map(|s| s.central()) else {
                    continue;
                };
                if !v.is_finite() {
                    continue;
                }
                let est = r.status == RowStatus::Estimated;
                out.push((
                    format!(
                        "{backend} · {} ({v:.2} ms{})",
                        m.label,
                        if est { ", estimate" } else { "" }
                    ),
                    i,
                    v,
                    est,
                ));
            }
        }
        out
    }

    fn chart_size(&self) -> (u32, u32) {
        let bars = self.bars();
        let longest = bars.iter().map(|b| b.0.chars().count()).max().unwrap_or(0);
        let legend_w =
            40 + unet_charts::text_width(
                self.models
                    .iter()
                    .map(|m| m.label.chars().count())
                    .max()
                    .unwrap_or(0),
                LABEL_SIZE,
            ) + 40;
        (
            unet_charts::text_width(longest, LABEL_SIZE) + 16 + 460 + 30 + legend_w,
            90 + 22 * bars.len().max(1) as u32,
        )
    }

    fn draw(&self, svg: &mut String) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
        const COLOURS: [RGBColor; 6] = [
            RGBColor(0x4a, 0x78, 0xb5),
            RGBColor(0xe0, 0xa4, 0x3a),
            RGBColor(0x2c, 0xa0, 0x8c),
            RGBColor(0xc8, 0x5a, 0x2c),
            RGBColor(0x7b, 0x5e, 0xa7),
            RGBColor(0x1b, 0x3a, 0x66),
        ];
        let bars = self.bars();
        let (width, height) = self.chart_size();
        let longest = bars.iter().map(|b| b.0.chars().count()).max().unwrap_or(0);
        let label_w = unet_charts::text_width(longest, LABEL_SIZE) + 16;
        let root = SVGBackend::with_string(svg, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot_area, legend) = root.split_horizontally(label_w + 460 + 30);
        // Log scale: NPU estimates and reference-kernel CPU times lie decades apart.
        let max = bars.iter().map(|b| b.2).fold(0.0_f64, f64::max);
        let min = bars
            .iter()
            .map(|b| b.2)
            .filter(|&v| v > 0.0)
            .fold(f64::INFINITY, f64::min);
        let x = Axis::log(min, max);
        let mut chart = crate::chart::bar_chart(
            &plot_area,
            "U-Net latency per inference, by model",
            label_w,
            x.log_coord(),
            bars.iter().map(|b| b.0.clone()),
            "milliseconds, log scale (Vela rows: estimates)",
        )?;
        for (i, (_, model, v, est)) in bars.iter().enumerate() {
            let y = i as f64;
            let colour = COLOURS[model % COLOURS.len()];
            let style = if *est {
                colour.mix(0.55).filled()
            } else {
                colour.filled()
            };
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x.lo, y + 0.15), (v.max(x.lo), y + 0.85)],
                style,
            )))?;
        }
        let entries: Vec<LegendEntry<'_>> = self
            .models
            .iter()
            .enumerate()
            .map(|(i, m)| LegendEntry {
                label: m.label.as_str(),
                swatch: Swatch::Fill(COLOURS[i % COLOURS.len()]),
            })
            .collect();
        unet_charts::draw_legend(&legend.margin(36, 0, 0, 0), &entries)?;
        root.present()?;
        Ok(())
    }

    /// Writes `models.json`, `models.md` and `models.svg` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
        let json = dir.join("models.json");
        let md = dir.join("models.md");
        let svg = dir.join("models.svg");
        write_atomic(&json, serde_json::to_string_pretty(self)?.as_bytes())?;
        write_atomic(&md, self.markdown().as_bytes())?;
        write_atomic(&svg, self.svg().as_bytes())?;
        Ok(vec![json, md, svg])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_stems_made_unique() {
        let paths: Vec<PathBuf> = [
            "a/unet_int8.tflite",
            "b/unet_int8.tflite",
            "unet_mixed.tflite",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(
            labels(&paths),
            vec!["unet_int8", "unet_int8-2", "unet_mixed"]
        );
    }
}
