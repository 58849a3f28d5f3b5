//! The quantisation report: `quant_report.json`, `quant_report.md` and the terminal summary.

use artifact_io::write_atomic;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::dataset::DataStats;
use crate::error::QuantError;
use crate::verify::Accuracy;

/// One activation tensor of the int8 model.
#[derive(Debug, Clone, Serialize)]
pub struct TensorReport {
    /// Tensor name.
    pub name: String,
    /// Producing operator (`INPUT` for the model input).
    pub op: String,
    /// Shape.
    pub shape: Vec<i32>,
    /// Smallest calibration value.
    pub observed_min: f32,
    /// Largest calibration value.
    pub observed_max: f32,
    /// The observer's range for this tensor (before sharing).
    pub range: (f32, f32),
    /// Int8 scale.
    pub scale: f32,
    /// Zero point.
    pub zero_point: i32,
    /// The float range the grid covers: int8 `scale·(−128 − zp) … scale·(127 − zp)`, int16
    /// `scale·(−32768 … 32767)`.
    pub covered: (f32, f32),
    /// Sharing group id (equal ids = identical parameters).
    pub group: usize,
    /// `int8` or `int16`.
    pub dtype: String,
    /// SQNR on the held-out set, in dB (`null` = identical, or not evaluated).
    pub sqnr_db: Option<f64>,
}

/// How one observer scored in `auto` selection.
#[derive(Debug, Clone, Serialize)]
pub struct MethodScore {
    /// Observer name.
    pub observer: String,
    /// Output SQNR of its int8 model against fp32 on the first calibration slices (`null` =
    /// identical).
    pub output_sqnr_db: Option<f64>,
    /// Calibration slices scored.
    pub slices: usize,
    /// Whether this observer's model was kept.
    pub chosen: bool,
}

/// Calibration data summary.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationInfo {
    /// Where the slices came from.
    pub data: String,
    /// Number of slices.
    pub samples: usize,
    /// Their statistics.
    pub stats: DataStats,
    /// In-distribution statistics they were compared with.
    pub reference: Option<DataStats>,
    /// Problems found (noise-like, off-distribution).
    pub problems: Vec<String>,
}

/// Vela's verdict for one accelerator.
#[derive(Debug, Clone, Serialize)]
pub struct VelaResult {
    /// Accelerator configuration (`ethos-u55-256`, …).
    pub accelerator: String,
    /// Operators Vela placed on the NPU.
    pub npu_ops: usize,
    /// Operators left on the CPU.
    pub cpu_ops: usize,
    /// Estimated inference time in milliseconds.
    pub inference_ms: Option<f64>,
    /// Command that produced it.
    pub command: String,
}

/// One precision's model in the per-precision comparison.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PrecisionRow {
    /// `int8`, `int16x8`, `mixed`.
    pub precision: String,
    /// Model file.
    pub file: String,
    /// Model input and output types.
    pub io: String,
    /// Output SQNR vs fp32 on the held-out slices.
    pub output_sqnr_db: Option<f64>,
    /// Dice vs the ground truth.
    pub dice: Option<f64>,
    /// Dice of the float model.
    pub dice_fp32: Option<f64>,
    /// Mask agreement with fp32.
    pub mask_agreement: Option<f64>,
    /// Model size in bytes.
    pub model_bytes: usize,
    /// QUANTIZE ops in the model.
    pub quantize_ops: usize,
    /// Activation tensors in int16, of all.
    pub int16_tensors: (usize, usize),
    /// Our runtime's latency, median ms, and how it was measured.
    pub cpu_ms: Option<f64>,
    /// LiteRT XNNPACK (default resolver) latency, median ms.
    pub xnnpack_ms: Option<f64>,
    /// Why a latency is missing.
    pub latency_note: Option<String>,
    /// LiteRT BUILTIN_REF vs our runtime.
    pub bit_exact: Option<String>,
    /// Vela per accelerator.
    pub vela: Vec<VelaResult>,
}

/// Everything `quantize` did and measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct QuantReport {
    /// Tool name and version.
    pub tool: String,
    /// The command line (filled by the caller).
    pub command_line: Vec<String>,
    /// Git commit of the sources (filled by the caller).
    pub git_commit: Option<String>,
    /// Seed of the data (filled by the caller).
    pub seed: Option<u64>,
    /// Requested method (`minmax`, `percentile`, `mse`, `auto`).
    pub method_requested: String,
    /// Observer whose model was kept.
    pub method: String,
    /// Percentile of the percentile observer.
    pub percentile: f64,
    /// Whether empirical bias correction was applied.
    pub bias_correction: bool,
    /// `int8`, `int16x8` or `mixed`.
    pub precision: String,
    /// How the int8 weights were rounded.
    pub weight_rounding: String,
    /// Model input and output types (`int8 -> int8`).
    pub io: String,
    /// QUANTIZE ops between precisions and at the IO.
    pub conversions: usize,
    /// What `mixed` measured and chose.
    pub mixed: Option<crate::mixed::MixedChoice>,
    /// One row per precision built in the same run (filled by the caller).
    pub precisions: Vec<PrecisionRow>,
    /// Calibration data.
    pub calibration: Option<CalibrationInfo>,
    /// Per-observer scores (`auto`).
    pub selection: Vec<MethodScore>,
    /// Accuracy on the held-out evaluation set.
    pub accuracy: Option<Accuracy>,
    /// Every activation tensor.
    pub tensors: Vec<TensorReport>,
    /// Operators per type in the quantised model.
    pub ops: BTreeMap<String, usize>,
    /// Operators removed from the float model (shape folding, dead code).
    pub removed_float_ops: usize,
    /// Weights and biases.
    pub parameters: usize,
    /// Size of the written quantised model in bytes.
    pub model_bytes: usize,
    /// Size of the float model in bytes (filled by the caller).
    pub fp32_model_bytes: Option<usize>,
    /// Warnings (calibration data, range collapse, …).
    pub warnings: Vec<String>,
    /// Concatenation inputs rescaled so that the widest no longer sets the shared scale.
    pub equalized: Vec<crate::equalize::EqualizedInput>,
    /// Tensors read only by LOGISTIC: the range chosen against the error after the sigmoid,
    /// with the calibration-histogram SQNR of the LOGISTIC output before and after, and its
    /// ceiling (the fixed 1/256 output grid alone).
    pub logistic_inputs: Vec<LogisticInputReport>,
    /// Seconds per phase.
    pub timings_s: BTreeMap<String, f64>,
    /// The calibration passes' compute floor and the whole command against it (filled by the
    /// caller).
    pub compute_floor: Option<crate::floor::ComputeFloor>,
    /// LiteRT BUILTIN_REF vs our runtime on the quantised model (filled by the caller).
    pub litert_bit_exact: Option<String>,
    /// Vela compilation results (filled by the caller).
    pub vela: Vec<VelaResult>,
}

/// One tensor read only by LOGISTIC (see [`crate::observer::logistic_input_range`]).
#[derive(Debug, Clone, Serialize)]
pub struct LogisticInputReport {
    /// Tensor name.
    pub name: String,
    /// The fit.
    #[serde(flatten)]
    pub fit: crate::observer::LogisticFit,
}

impl LogisticInputReport {
    /// One line for the terminal and the Markdown report.
    pub fn line(&self) -> String {
        let f = &self.fit;
        format!(
            "LOGISTIC input `{}`: range [{:.2}, {:.2}] -> [{:.2}, {:.2}] chosen against the error after the sigmoid; \
             LOGISTIC output on the calibration histogram {:.1} -> {:.1} dB (ceiling of its 1/256 grid {:.1} dB)",
            self.name,
            f.observer_range.0,
            f.observer_range.1,
            f.chosen_range.0,
            f.chosen_range.1,
            f.observer_sqnr_db,
            f.chosen_sqnr_db,
            f.ceiling_sqnr_db
        )
    }
}

fn db(v: Option<f64>) -> String {
    v.map_or("exact".into(), |v| format!("{v:.2} dB"))
}

impl QuantReport {
    /// The `n` tensors with the lowest SQNR (a LOGISTIC input clipped on purpose excluded).
    pub fn worst_tensors(&self, n: usize) -> Vec<&TensorReport> {
        // A LOGISTIC input clipped on purpose (see `logistic_inputs`) is not a weak layer.
        let mut rows: Vec<&TensorReport> = self
            .tensors
            .iter()
            .filter(|t| t.sqnr_db.is_some())
            .filter(|t| !self.logistic_inputs.iter().any(|l| l.name == t.name))
            .collect();
        rows.sort_by(|a, b| {
            a.sqnr_db
                .partial_cmp(&b.sqnr_db)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        rows.truncate(n);
        rows
    }

    /// The per-precision comparison (`precisions`) as a Markdown table.
    pub fn precision_table(&self) -> String {
        let mut s = String::new();
        let accelerators: Vec<String> = self
            .precisions
            .iter()
            .flat_map(|r| r.vela.iter().map(|v| v.accelerator.clone()))
            .fold(Vec::new(), |mut acc, a| {
                if !acc.contains(&a) {
                    acc.push(a);
                }
                acc
            });
        let _ = write!(
            s,
            "| precision | IO | int16 tensors | QUANTIZE ops | output SQNR | Dice (fp32 {}) | mask agreement | size | ours CPU ms | XNNPACK ms |",
            self.precisions
                .first()
                .and_then(|r| r.dice_fp32)
                .map_or("-".into(), |d| format!("{d:.4}"))
        );
        for a in &accelerators {
            let _ = write!(s, " Vela {a} ms (CPU ops) |");
        }
        let _ = write!(
            s,
            " LiteRT BUILTIN_REF |\n|---|---|---|---|---|---|---|---|---|---|"
        );
        for _ in &accelerators {
            s.push_str("---|");
        }
        s.push_str("---|\n");
        let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
        for r in &self.precisions {
            let _ = write!(
                s,
                "| {} | {} | {}/{} | {} | {} | {} | {} | {:.1} KiB | {} | {} |",
                r.precision,
                r.io,
                r.int16_tensors.0,
                r.int16_tensors.1,
                r.quantize_ops,
                db(r.output_sqnr_db),
                r.dice.map_or("-".into(), |d| format!("{d:.4}")),
                r.mask_agreement
                    .map_or("-".into(), |m| format!("{:.3} %", 100.0 * m)),
                r.model_bytes as f64 / 1024.0,
                ms(r.cpu_ms),
                ms(r.xnnpack_ms),
            );
            for a in &accelerators {
                let v = r.vela.iter().find(|v| &v.accelerator == a);
                let _ = write!(
                    s,
                    " {} |",
                    v.map_or("-".into(), |v| format!(
                        "{} ({})",
                        ms(v.inference_ms),
                        v.cpu_ops
                    ))
                );
            }
            let _ = writeln!(
                s,
                " {} |",
                r.bit_exact.as_deref().unwrap_or("not checked (--litert)")
            );
        }
        for r in &self.precisions {
            if let Some(n) = &r.latency_note {
                let _ = writeln!(s, "\n{}: {n}", r.precision);
            }
        }
        s
    }

    /// A short summary for the terminal (accuracy, five worst layers, warnings).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "precision: {} (IO {}, {} QUANTIZE ops between precisions and at the IO; weights: {})",
            self.precision, self.io, self.conversions, self.weight_rounding
        );
        if let Some(m) = &self.mixed {
            let _ = writeln!(s, "{}", m.line());
            let _ = writeln!(s, "mixed {}", m.bound.line());
        }
        let _ = writeln!(
            s,
            "method: {} (requested {})",
            self.method, self.method_requested
        );
        if let Some(c) = &self.calibration {
            let _ = writeln!(s, "calibration: {} slices of {}", c.samples, c.data);
        }
        for m in &self.selection {
            let _ = writeln!(
                s,
                "  {:<10} output SQNR {} on {} calibration slices{}",
                m.observer,
                db(m.output_sqnr_db),
                m.slices,
                if m.chosen { "  <- kept" } else { "" }
            );
        }
        if let Some(a) = &self.accuracy {
            let _ = writeln!(
                s,
                "held-out ({} slices): output SQNR {}, Dice fp32 {:.4}, {} {:.4} (Δ {:+.4}), mask agreement {:.3} %",
                a.samples,
                db(a.output_sqnr_db),
                a.dice_fp32,
                self.precision,
                a.dice_quantized,
                a.dice_delta(),
                100.0 * a.mask_agreement
            );
            let worst = self.worst_tensors(5);
            if !worst.is_empty() {
                let _ = writeln!(s, "five worst layers (SQNR):");
                for t in worst {
                    let _ = writeln!(s, "  {:<28} {:<16} {}", t.name, t.op, db(t.sqnr_db));
                }
            }
        }
        for e in &self.equalized {
            let _ = writeln!(s, "{}", e.line());
        }
        for l in &self.logistic_inputs {
            let _ = writeln!(s, "{}", l.line());
        }
        let _ = writeln!(
            s,
            "{} model: {} bytes, {} parameters",
            self.precision, self.model_bytes, self.parameters
        );
        if !self.timings_s.is_empty() {
            let _ = writeln!(s, "{}", self.timing_table());
        }
        if let Some(f) = &self.compute_floor {
            let _ = writeln!(s, "{}", f.line());
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        s
    }

    /// The per-stage wall times (`timings_s`) as an aligned table, longest stage first; totals
    /// (keys starting with `total`) last.
    pub fn timing_table(&self) -> String {
        let mut rows: Vec<(&String, &f64)> = self.timings_s.iter().collect();
        rows.sort_by(|a, b| {
            let total = |k: &str| k.starts_with("total");
            total(a.0)
                .cmp(&total(b.0))
                .then(b.1.total_cmp(a.1))
                .then(a.0.cmp(b.0))
        });
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut s = String::from("stage timings (wall, s):");
        for (k, v) in rows {
            let _ = write!(s, "\n  {k:<width$}  {v:8.3}");
        }
        s
    }

    /// The Markdown report.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Quantisation report\n");
        let _ = writeln!(s, "- tool: {}", self.tool);
        let _ = writeln!(s, "- command: `{}`", self.command_line.join(" "));
        if let Some(c) = &self.git_commit {
            let _ = writeln!(s, "- commit: {c}");
        }
        if let Some(seed) = self.seed {
            let _ = writeln!(s, "- seed: {seed}");
        }
        let _ = writeln!(
            s,
            "- method: **{}** (requested {}; percentile {}; bias correction {})",
            self.method, self.method_requested, self.percentile, self.bias_correction
        );
        if let Some(c) = &self.calibration {
            let _ = writeln!(
                s,
                "- calibration: {} slices of {} (mean {:.3}, std {:.3}, neighbour correlation {:.3})",
                c.samples, c.data, c.stats.mean, c.stats.std, c.stats.neighbour_correlation
            );
            for p in &c.problems {
                let _ = writeln!(s, "  - **calibration problem:** {p}");
            }
        }
        let _ = writeln!(
            s,
            "- precision: **{}**; IO {}; {} QUANTIZE ops between precisions and at the IO; weights rounded: {}",
            self.precision, self.io, self.conversions, self.weight_rounding
        );
        let _ = writeln!(
            s,
            "- {} model: {} bytes; float model: {}; {} parameters; {} float ops removed by folding",
            self.precision,
            self.model_bytes,
            self.fp32_model_bytes
                .map_or("-".into(), |b| format!("{b} bytes")),
            self.parameters,
            self.removed_float_ops
        );
        let ops: Vec<String> = self.ops.iter().map(|(k, v)| format!("{k}×{v}")).collect();
        let _ = writeln!(s, "- {} ops: {}", self.precision, ops.join(", "));
        if let Some(l) = &self.litert_bit_exact {
            let _ = writeln!(s, "- LiteRT BUILTIN_REF vs tflite-runtime: {l}");
        }
        for e in &self.equalized {
            let _ = writeln!(s, "- {}", e.line());
        }
        for l in &self.logistic_inputs {
            let _ = writeln!(s, "- {}", l.line());
        }
        if let Some(a) = &self.accuracy {
            let _ = writeln!(s, "\n## Accuracy on held-out data\n");
            let _ = writeln!(s, "{} slices of {}\n", a.samples, a.data);
            let _ = writeln!(s, "| metric | value |\n|---|---|");
            let _ = writeln!(
                s,
                "| output SQNR ({} vs fp32) | {} |",
                self.precision,
                db(a.output_sqnr_db)
            );
            let _ = writeln!(s, "| Dice fp32 vs ground truth | {:.4} |", a.dice_fp32);
            let _ = writeln!(
                s,
                "| Dice {} vs ground truth | {:.4} |",
                self.precision, a.dice_quantized
            );
            let _ = writeln!(
                s,
                "| Dice {} − fp32 | {:+.4} |",
                self.precision,
                a.dice_delta()
            );
            let _ = writeln!(
                s,
                "| mask agreement {} vs fp32 | {:.3} % |",
                self.precision,
                100.0 * a.mask_agreement
            );
        }
        if !self.precisions.is_empty() {
            let _ = writeln!(
                s,
                "\n## Precisions (same calibration, same held-out slices)\n\n{}",
                self.precision_table()
            );
        }
        if let Some(m) = &self.mixed {
            let _ = writeln!(
                s,
                "\n## Mixed precision choice\n\n{}\n\n{}\n",
                m.line(),
                m.bound.line()
            );
            let _ = writeln!(
                s,
                "| groups | tensors | output SQNR alone in int16 | gain | int16x8 with it alone in int8 | added cost | kept |\n|---|---|---|---|---|---|---|"
            );
            for p in &m.probes {
                let _ = writeln!(
                    s,
                    "| {:?} | {} | {} | {:+.2} dB | {} | {:.3e} | {} |",
                    p.groups,
                    p.tensors.join(", "),
                    db(p.sqnr_db),
                    p.gain_db,
                    db(p.demoted_sqnr_db),
                    p.cost,
                    if p.chosen { "int16" } else { "" }
                );
            }
        }
        if !self.selection.is_empty() {
            let _ = writeln!(s, "\n## Observer selection\n");
            let _ = writeln!(
                s,
                "| observer | output SQNR (calibration slices) | slices | kept |\n|---|---|---|---|"
            );
            for m in &self.selection {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    m.observer,
                    db(m.output_sqnr_db),
                    m.slices,
                    if m.chosen { "yes" } else { "" }
                );
            }
        }
        if !self.vela.is_empty() {
            let _ = writeln!(s, "\n## Arm Vela (estimates)\n");
            let _ = writeln!(
                s,
                "| accelerator | NPU ops | CPU ops | est. inference |\n|---|---|---|---|"
            );
            for v in &self.vela {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    v.accelerator,
                    v.npu_ops,
                    v.cpu_ops,
                    v.inference_ms.map_or("-".into(), |m| format!("{m:.3} ms"))
                );
            }
        }
        let _ = writeln!(s, "\n## Tensors\n");
        let _ = writeln!(
            s,
            "| tensor | op | shape | observed | observer range | type | scale | zp | group | SQNR |\n|---|---|---|---|---|---|---|---|---|---|"
        );
        for t in &self.tensors {
            let _ = writeln!(
                s,
                "| {} | {} | {:?} | [{:.4}, {:.4}] | [{:.4}, {:.4}] | {} | {:.6} | {} | {} | {} |",
                t.name,
                t.op,
                t.shape,
                t.observed_min,
                t.observed_max,
                t.range.0,
                t.range.1,
                t.dtype,
                t.scale,
                t.zero_point,
                t.group,
                db(t.sqnr_db)
            );
        }
        if !self.timings_s.is_empty() {
            let _ = writeln!(s, "\n## Timings\n");
            for (k, v) in &self.timings_s {
                let _ = writeln!(s, "- {k}: {v:.3} s");
            }
            if let Some(f) = &self.compute_floor {
                let _ = writeln!(s, "- {}", f.line());
            }
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(s, "\n## Warnings\n");
            for w in &self.warnings {
                let _ = writeln!(s, "- {w}");
            }
        }
        s
    }

    /// The report's file names, in the order of [`QuantReport::files`].
    pub const FILE_NAMES: [&'static str; 2] = ["quant_report.json", "quant_report.md"];

    /// The report files' names and contents (JSON, then Markdown), for a caller that writes
    /// them together with other artifacts.
    pub fn files(&self) -> Result<[(&'static str, String); 2], QuantError> {
        let [json_name, md_name] = Self::FILE_NAMES;
        Ok([
            (json_name, serde_json::to_string_pretty(self)?),
            (md_name, self.to_markdown()),
        ])
    }

    /// Writes `quant_report.json` and `quant_report.md` into `dir` (each via a temporary file and
    /// a rename, so that no half-written report is ever left behind).
    pub fn write(&self, dir: &Path) -> Result<(), QuantError> {
        for (name, text) in self.files()? {
            write_atomic(&dir.join(name), text.as_bytes())?;
        }
        Ok(())
    }
}
