//! The per-layer table: one row per operator of the int8 model (name, type, output shape,
//! MACs), one column per backend that can time or estimate single layers:
//!
//! - measured CPU backends: our interpreter's per-operator profile (by operator index and
//!   output tensor), `benchmark_model --enable_op_profiling` on a board (by output tensor);
//! - `vela:<config>` rows: Vela's per-layer performance estimate (cycles, time at the
//!   configuration's clock, MAC utilisation, the memory the layer waits on, SRAM).
//!
//! Layers are matched by the name of the tensor they write, which is what Vela's per-layer CSV
//! and TFLite's op profiler print. [`LayerTable::bottlenecks`] names, for every column, the
//! layers that dominate it and why, from these numbers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use tflite_writer::BuiltinOp;

use crate::backend::{BackendResult, RowStatus};
use crate::backends::vela::{LayerBound, VelaLayer};
use crate::error::BenchError;

/// One operator's time as a backend measured it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct LayerTime {
    /// Operator index in the model the backend ran, where the backend knows it.
    pub index: Option<usize>,
    /// The tensor the operator writes (the join key).
    pub output: String,
    /// Operator type as the backend names it (`CONV_2D`).
    pub op: String,
    /// Time per invoke in milliseconds (median or average, see [`LayerProfile`]).
    pub ms: f64,
}

/// A backend's per-layer timing, or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LayerProfile {
    /// Timed here.
    Measured {
        /// How the times were taken.
        source: String,
        /// Invokes the times summarise.
        runs: usize,
        /// One entry per executed operator, in execution order.
        layers: Vec<LayerTime>,
    },
    /// This backend cannot time single layers; the reason says why.
    Unavailable {
        /// Why not.
        why: String,
    },
}

/// One operator of the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelLayer {
    /// Index in subgraph 0.
    pub index: usize,
    /// Operator type (`CONV_2D`).
    pub op: String,
    /// The tensor it writes.
    pub output: String,
    /// That tensor's shape.
    pub output_shape: Vec<i32>,
    /// Multiply-accumulates (convolutions; 0 for the others).
    pub macs: u64,
    /// Input channels of a convolution's filter.
    pub in_channels: Option<i32>,
    /// The tensors it reads (names; constants included).
    #[serde(skip)]
    pub inputs: Vec<String>,
}

/// Reads the operators of `model_path` (subgraph 0).
pub fn model_layers(model_path: &Path) -> Result<Vec<ModelLayer>, BenchError> {
    let model = tflite_writer::read_model_file(model_path).map_err(|source| BenchError::Model {
        path: model_path.to_path_buf(),
        source,
    })?;
    let macs = tflite_runtime::profile::op_macs(&model);
    let Some(sg) = model.subgraphs.first() else {
        return Ok(Vec::new());
    };
    let tensor = |t: Option<&i32>| t.and_then(|&t| sg.tensors.get(usize::try_from(t).ok()?));
    Ok(sg
        .operators
        .iter()
        .enumerate()
        .map(|(index, op)| {
            let out = tensor(op.outputs.first());
            let filter = tensor(op.inputs.get(1));
            let in_channels = match op.op {
                BuiltinOp::CONV_2D => filter.and_then(|f| f.shape.get(3).copied()),
                BuiltinOp::TRANSPOSE_CONV => filter.and_then(|f| f.shape.get(3).copied()),
                _ => None,
            };
            ModelLayer {
                index,
                op: op.op.name(),
                output: out.map(|t| t.name.clone()).unwrap_or_default(),
                output_shape: out.map(|t| t.shape.clone()).unwrap_or_default(),
                macs: macs.get(index).copied().unwrap_or(0),
                in_channels,
                inputs: op
                    .inputs
                    .iter()
                    .filter_map(|t| tensor(Some(t)).map(|t| t.name.clone()))
                    .collect(),
            }
        })
        .collect())
}

/// Is a column measured or a Vela estimate?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// Measured here (CPU profile).
    Measured,
    /// Vela's performance model.
    Estimated,
}

/// One backend's column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Column {
    /// Backend name (`rust-int8`, `vela:ethos-u55-256`).
    pub backend: String,
    /// Measured or estimated.
    pub kind: ColumnKind,
    /// Sum of the matched layers' times (ms).
    pub total_ms: f64,
    /// Layers of the backend that match no operator of the model (name not found).
    pub unmatched: Vec<String>,
}

/// One backend's figures for one layer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cell {
    /// Time per invoke (ms); for Vela, its cycles at the configuration's clock.
    pub ms: f64,
    /// Share of the column's total.
    pub share: f64,
    /// Vela: cycles.
    pub cycles: Option<f64>,
    /// Vela: MAC utilisation (%).
    pub mac_utilisation_percent: Option<f64>,
    /// Vela: the memory with the most access cycles (`SRAM`, `DRAM`, `off-chip flash`...).
    pub waits_on: Option<String>,
    /// Vela: SRAM (staging) usage in KiB.
    pub sram_kib: Option<f64>,
    /// Vela: what bounds the layer.
    pub bound: Option<LayerBound>,
    /// Vela: the bound in words, from the layer's own numbers.
    pub why: Option<String>,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerRow {
    /// The operator.
    pub layer: ModelLayer,
    /// One cell per column (same order as [`LayerTable::columns`]); `None` where the backend has
    /// no figure for the layer (folded at load, fused away, or not profiled).
    pub cells: Vec<Option<Cell>>,
}

/// A named bottleneck.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bottleneck {
    /// The column.
    pub backend: String,
    /// The layer's output tensor.
    pub layer: String,
    /// Operator index.
    pub index: usize,
    /// Share of the column's total.
    pub share: f64,
    /// Why, in words, from the numbers.
    pub why: String,
}

/// The whole per-layer comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerTable {
    /// The columns.
    pub columns: Vec<Column>,
    /// One row per operator of the model.
    pub rows: Vec<LayerRow>,
    /// The layers that dominate each column, and why.
    pub bottlenecks: Vec<Bottleneck>,
}

/// Strips what tools add around a tensor name: TFLite's profiler prints `[name]:0`.
pub fn tensor_key(name: &str) -> &str {
    let name = name.trim();
    let name = name.strip_prefix('[').unwrap_or(name);
    let name = match name.rfind(']') {
        Some(end) => &name[..end],
        None => name,
    };
    name.trim()
}

fn vela_layers(row: &BackendResult) -> Option<(&[VelaLayer], f64)> {
    let npu = row.npu_layers.as_ref()?;
    (npu.core_clock_hz > 0.0).then_some((npu.layers.as_slice(), npu.core_clock_hz))
}

/// Whether Vela's name for the source operator (`TransposeConv2D`, `TRANSPOSE_CONV`,
/// `Sigmoid`, …) is the TFLite operator type `op`. An empty source matches anything.
fn same_operator(vela_source: &str, op: &str) -> bool {
    let norm = |s: &str| -> String {
        let s: String = s
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if s == "logistic" { "sigmoid".into() } else { s }
    };
    let (a, b) = (norm(vela_source), norm(op));
    a.is_empty() || a.starts_with(&b) || b.starts_with(&a)
}

/// The model operator a Vela row belongs to: the one writing the tensor it names, or, when
/// Vela wrote an operator straight into its consumer's buffer (a TRANSPOSE_CONV into the
/// CONCATENATION after it is listed under the concatenation's name), the producer of one of
/// that operator's inputs whose type is the row's source operator.
fn vela_owner(
    layers: &[ModelLayer],
    by_name: &BTreeMap<&str, usize>,
    v: &VelaLayer,
) -> Option<usize> {
    let key = tensor_key(&v.name);
    let Some(&i) = by_name.get(key) else {
        // Vela's legacy core names the parts it splits an operator into after the operator's
        // output plus a suffix (`concatD0_avgpool`): the longest output name that starts the
        // row's name, of the row's source operator type.
        return layers
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                !l.output.is_empty()
                    && key.starts_with(l.output.as_str())
                    && same_operator(&v.source_operator, &l.op)
            })
            .max_by_key(|(_, l)| l.output.len())
            .map(|(i, _)| i);
    };
    if same_operator(&v.source_operator, &layers[i].op) {
        return Some(i);
    }
    layers[i]
        .inputs
        .iter()
        .filter_map(|input| by_name.get(input.as_str()).copied())
        .find(|&j| same_operator(&v.source_operator, &layers[j].op))
        .or(Some(i))
}

fn waits_on(layer: &VelaLayer) -> Option<String> {
    [
        ("SRAM", layer.sram_access_cycles),
        ("DRAM", layer.dram_access_cycles),
        ("on-chip flash", layer.on_chip_flash_access_cycles),
        ("off-chip flash", layer.off_chip_flash_access_cycles),
    ]
    .into_iter()
    .filter(|(_, c)| *c > 0.0)
    .max_by(|a, b| a.1.total_cmp(&b.1))
    .map(|(m, _)| m.to_string())
}

impl LayerTable {
    /// Builds the table for `layers` (the model's operators) from every row that has a
    /// measured layer profile or a Vela per-layer estimate. `None` when no row has either.
    pub fn build(layers: &[ModelLayer], rows: &[BackendResult]) -> Option<Self> {
        let by_name: BTreeMap<&str, usize> = layers
            .iter()
            .enumerate()
            .map(|(i, l)| (l.output.as_str(), i))
            .collect();
        let mut columns = Vec::new();
        let mut cells: Vec<Vec<Option<Cell>>> = vec![Vec::new(); layers.len()];
        for row in rows {
            let mut col: Vec<Option<Cell>> = vec![None; layers.len()];
            let mut unmatched = Vec::new();
            let kind =
                if let Some(LayerProfile::Measured { layers: times, .. }) = &row.layer_profile {
                    for t in times {
                        match by_name.get(tensor_key(&t.output)) {
                            Some(&i) => {
                                let c = col[i].get_or_insert_with(Cell::default);
                                c.ms += t.ms;
                            }
                            None => unmatched.push(t.output.clone()),
                        }
                    }
                    ColumnKind::Measured
                } else if row.status == RowStatus::Estimated
                    && let Some((vela, clock_hz)) = vela_layers(row)
                {
                    // Vela lists fused parts of one operator (Conv2D + its ReLU) as separate rows
                    // under the same name: their cycles add up; the figures of the row with the
                    // most cycles describe the layer.
                    let mut best: Vec<f64> = vec![-1.0; layers.len()];
                    for v in vela {
                        let Some(i) = vela_owner(layers, &by_name, v) else {
                            unmatched.push(v.name.clone());
                            continue;
                        };
                        let c = col[i].get_or_insert_with(Cell::default);
                        c.ms += v.cycles / clock_hz * 1e3;
                        *c.cycles.get_or_insert(0.0) += v.cycles;
                        *c.sram_kib.get_or_insert(0.0) =
                            c.sram_kib.unwrap_or(0.0).max(v.sram_bytes / 1024.0);
                        if v.cycles > best[i] {
                            best[i] = v.cycles;
                            c.mac_utilisation_percent = Some(v.mac_utilisation_percent);
                            c.waits_on = waits_on(v);
                            let bound = LayerBound::of(v);
                            c.bound = Some(bound);
                            c.why = Some(bound.describe(v));
                        }
                    }
                    ColumnKind::Estimated
                } else {
                    continue;
                };
            let total: f64 = col.iter().flatten().map(|c| c.ms).sum();
            for c in col.iter_mut().flatten() {
                c.share = if total > 0.0 { c.ms / total } else { 0.0 };
            }
            unmatched.sort();
            unmatched.dedup();
            columns.push(Column {
                backend: row.backend.clone(),
                kind,
                total_ms: total,
                unmatched,
            });
            for (i, c) in col.into_iter().enumerate() {
                cells[i].push(c);
            }
        }
        if columns.is_empty() {
            return None;
        }
        let rows: Vec<LayerRow> = layers
            .iter()
            .cloned()
            .zip(cells)
            .map(|(layer, cells)| LayerRow { layer, cells })
            .collect();
        let bottlenecks = bottlenecks(&columns, &rows, 3);
        Some(Self {
            columns,
            rows,
            bottlenecks,
        })
    }

    /// The table as Markdown: every operator, one time column per backend (Vela columns add
    /// MAC utilisation and what bounds the layer), then the bottlenecks in words.
    pub fn markdown(&self) -> String {
        let mut m = String::new();
        let _ = writeln!(
            m,
            "\n## Per layer: CPU (measured) and NPU (Vela estimate)\n\nOne row per operator of the int8 model, matched by the tensor it writes; `–`: no figure (folded at load, or not in that backend's profile). Vela columns are estimates: time at the configuration's clock, MAC utilisation, what bounds the layer.\n"
        );
        let mut header = String::from("| # | layer | op | output | MMACs |");
        let mut rule = String::from("|---:|---|---|---|---:|");
        for c in &self.columns {
            match c.kind {
                ColumnKind::Measured => {
                    let _ = write!(header, " {} ms |", c.backend);
                    rule.push_str("---:|");
                }
                ColumnKind::Estimated => {
                    let _ = write!(header, " {} ms (est.) | util | bound |", c.backend);
                    rule.push_str("---:|---:|---|");
                }
            }
        }
        let _ = writeln!(m, "{header}\n{rule}");
        for row in &self.rows {
            let l = &row.layer;
            let shape: Vec<String> = l.output_shape.iter().map(i32::to_string).collect();
            let _ = write!(
                m,
                "| {} | {} | {} | {} | {} |",
                l.index,
                l.output.replace('|', "\\|"),
                l.op,
                shape.join("×"),
                if l.macs > 0 {
                    format!("{:.1}", l.macs as f64 / 1e6)
                } else {
                    "–".into()
                }
            );
            for (c, cell) in self.columns.iter().zip(&row.cells) {
                match (c.kind, cell) {
                    (ColumnKind::Measured, Some(cell)) => {
                        let _ = write!(m, " {:.3} |", cell.ms);
                    }
                    (ColumnKind::Measured, None) => m.push_str(" – |"),
                    (ColumnKind::Estimated, Some(cell)) => {
                        let _ = write!(
                            m,
                            " {:.3} | {} | {} |",
                            cell.ms,
                            cell.mac_utilisation_percent
                                .filter(|_| l.macs > 0)
                                .map(|u| format!("{u:.0} %"))
                                .unwrap_or_else(|| "–".into()),
                            cell.bound.map(LayerBound::label).unwrap_or("–")
                        );
                    }
                    (ColumnKind::Estimated, None) => m.push_str(" – | – | – |"),
                }
            }
            m.push('\n');
        }
        let _ = write!(
            m,
            "| | **total** | | | {:.1} |",
            self.rows.iter().map(|r| r.layer.macs as f64).sum::<f64>() / 1e6
        );
        for c in &self.columns {
            let _ = match c.kind {
                ColumnKind::Measured => write!(m, " **{:.3}** |", c.total_ms),
                ColumnKind::Estimated => write!(m, " **{:.3}** | | |", c.total_ms),
            };
        }
        m.push('\n');
        for c in self.columns.iter().filter(|c| !c.unmatched.is_empty()) {
            let _ = writeln!(
                m,
                "\n`{}` reported {} layer(s) that match no operator of the model: {}.",
                c.backend,
                c.unmatched.len(),
                c.unmatched.join(", ")
            );
        }
        let _ = writeln!(m, "\n### Bottlenecks\n");
        for b in &self.bottlenecks {
            let _ = writeln!(
                m,
                "- `{}`: #{} `{}` takes {:.1} % — {}",
                b.backend,
                b.index,
                b.layer,
                b.share * 100.0,
                b.why
            );
        }
        m
    }

    /// `layers.svg`: one group of bars per layer, one bar per column.
    pub fn svg(&self) -> String {
        crate::chart::layers_svg(self)
    }
}

/// For every column, its `top` layers by time, with the reason in words.
fn bottlenecks(columns: &[Column], rows: &[LayerRow], top: usize) -> Vec<Bottleneck> {
    let total_macs: f64 = rows.iter().map(|r| r.layer.macs as f64).sum();
    let mut out = Vec::new();
    for (j, column) in columns.iter().enumerate() {
        let mut ranked: Vec<(&LayerRow, &Cell)> = rows
            .iter()
            .filter_map(|r| Some((r, r.cells.get(j)?.as_ref()?)))
            .filter(|(_, c)| c.ms > 0.0)
            .collect();
        ranked.sort_by(|a, b| b.1.ms.total_cmp(&a.1.ms));
        // The column's average rate over the layers that do MACs.
        let mac_ms: f64 = ranked
            .iter()
            .filter(|(r, _)| r.layer.macs > 0)
            .map(|(_, c)| c.ms)
            .sum();
        let average_rate = if mac_ms > 0.0 {
            total_macs / (mac_ms * 1e-3) / 1e9
        } else {
            0.0
        };
        for (row, cell) in ranked.into_iter().take(top) {
            let why = match column.kind {
                ColumnKind::Estimated => vela_why(row, cell),
                ColumnKind::Measured => cpu_why(row, cell, average_rate, total_macs),
            };
            out.push(Bottleneck {
                backend: column.backend.clone(),
                layer: row.layer.output.clone(),
                index: row.layer.index,
                share: cell.share,
                why,
            });
        }
    }
    out
}

fn cpu_why(row: &LayerRow, cell: &Cell, average_gmacs: f64, total_macs: f64) -> String {
    let l = &row.layer;
    if l.macs == 0 {
        return format!(
            "{} does no multiply-accumulates: {:.3} ms of data movement",
            l.op, cell.ms
        );
    }
    let rate = l.macs as f64 / (cell.ms * 1e-3) / 1e9;
    let mac_share = l.macs as f64 / total_macs.max(1.0);
    let channels = l
        .in_channels
        .map(|c| format!(", {c} input channel{}", if c == 1 { "" } else { "s" }))
        .unwrap_or_default();
    if rate < 0.5 * average_gmacs {
        format!(
            "low MAC rate: {rate:.1} GMAC/s against this backend's {average_gmacs:.1} average over all convolutions ({:.1} % of the MACs{channels})",
            mac_share * 100.0
        )
    } else {
        format!(
            "compute-bound: {:.1} % of the model's MACs at {rate:.1} GMAC/s (average {average_gmacs:.1}{channels})",
            mac_share * 100.0
        )
    }
}

fn vela_why(row: &LayerRow, cell: &Cell) -> String {
    let sram = cell
        .sram_kib
        .map(|k| format!(", {k:.0} KiB SRAM"))
        .unwrap_or_default();
    let waits = cell
        .waits_on
        .as_deref()
        .map(|m| format!(", most access cycles on {m}"))
        .unwrap_or_default();
    let why = cell
        .why
        .clone()
        .unwrap_or_else(|| format!("{} (no Vela detail)", row.layer.op));
    format!("{why}{waits}{sram}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vela_operator_names_match_tflite_types() {
        for (vela, op) in [
            ("TransposeConv2D", "TRANSPOSE_CONV"),
            ("TRANSPOSE_CONV", "TRANSPOSE_CONV"),
            ("Conv2D", "CONV_2D"),
            ("MaxPool", "MAX_POOL_2D"),
            ("Concat", "CONCATENATION"),
            ("Sigmoid", "LOGISTIC"),
            ("", "ADD"),
        ] {
            assert!(same_operator(vela, op), "{vela} / {op}");
        }
        for (vela, op) in [
            ("TransposeConv2D", "CONCATENATION"),
            ("Conv2D", "TRANSPOSE_CONV"),
            ("MaxPool", "CONV_2D"),
        ] {
            assert!(!same_operator(vela, op), "{vela} / {op}");
        }
    }

    #[test]
    fn tensor_keys_drop_profiler_decorations() {
        assert_eq!(tensor_key("[conv_5]:0"), "conv_5");
        assert_eq!(tensor_key(" conv_5 "), "conv_5");
        assert_eq!(tensor_key("[a/b:c]"), "a/b:c");
        assert_eq!(tensor_key("plain"), "plain");
    }
}
