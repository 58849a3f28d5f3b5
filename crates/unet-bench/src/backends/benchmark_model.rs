//! `benchmark-model:<path>`: TensorFlow Lite's `benchmark_model` binary (which board vendors
//! ship with their NPU delegates), run with our protocol's settings and extra pass-through
//! flags; its timing summary is parsed into our statistics.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::backend::{Backend, BackendResult, RowStatus, SuiteContext};
use crate::error::BenchError;
use crate::layers::LayerProfile;
use crate::stats::Stats;

/// What `benchmark_model` printed, in its own units converted to milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchmarkModelSummary {
    /// `Init:` of the timing summary.
    pub init_ms: f64,
    /// `First inference:`.
    pub first_inference_ms: f64,
    /// `Warmup (avg):`.
    pub warmup_avg_ms: f64,
    /// `Inference (avg):`.
    pub inference_avg_ms: f64,
    /// The `count=… first=… min=… max=… avg=… std=…` line of the timed runs.
    pub runs: Option<RunLine>,
    /// Peak memory (`Peak memory footprint (MB)` or `Memory footprint delta…`), `overall=` in MB.
    pub memory_overall_mb: Option<f64>,
    /// The delegate line (how much of the graph the delegate took), if printed.
    pub delegation: Option<String>,
}

/// One `count=…` statistics line (microseconds in the tool, milliseconds here).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunLine {
    /// Runs.
    pub count: usize,
    /// Fastest run.
    pub min_ms: f64,
    /// Slowest run.
    pub max_ms: f64,
    /// Mean.
    pub avg_ms: f64,
    /// Standard deviation.
    pub std_ms: f64,
    /// Median (newer versions print `p5= median= p95=`).
    pub median_ms: Option<f64>,
    /// 5th percentile.
    pub p5_ms: Option<f64>,
    /// 95th percentile.
    pub p95_ms: Option<f64>,
}

fn field(text: &str, key: &str) -> Option<f64> {
    let start = text.find(key)? + key.len();
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn key_value(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace().find_map(|tok| {
        tok.strip_prefix(key)
            .and_then(|v| v.strip_prefix('='))?
            .parse()
            .ok()
    })
}

fn parse_run_line(line: &str) -> Option<RunLine> {
    let us = 1e-3;
    Some(RunLine {
        count: key_value(line, "count")? as usize,
        min_ms: key_value(line, "min")? * us,
        max_ms: key_value(line, "max")? * us,
        avg_ms: key_value(line, "avg")? * us,
        std_ms: key_value(line, "std")? * us,
        median_ms: key_value(line, "median").map(|v| v * us),
        p5_ms: key_value(line, "p5").map(|v| v * us),
        p95_ms: key_value(line, "p95").map(|v| v * us),
    })
}

/// Parses `benchmark_model`'s output (stdout and stderr together). Works with and without
/// the `INFO: ` log prefix, with scientific notation, and with the op-profiling tables (whose
/// `Timings (microseconds): count=…` lines are ignored).
pub fn parse_benchmark_model(output: &str) -> Result<BenchmarkModelSummary, BenchError> {
    let summary_key = "Inference timings in us:";
    let summary_pos = output.find(summary_key).ok_or_else(|| {
        BenchError::tool(
            "benchmark_model",
            format!("no \"{summary_key}\" line in its output"),
        )
    })?;
    let summary_line = output[summary_pos..].lines().next().unwrap_or_default();
    let get = |key: &str| {
        field(summary_line, key).ok_or_else(|| {
            BenchError::tool(
                "benchmark_model",
                format!("no \"{key}\" in \"{summary_line}\""),
            )
        })
    };
    let init = get("Init: ")?;
    let first = get("First inference: ")?;
    let warmup = get("Warmup (avg): ")?;
    let inference = get("Inference (avg): ")?;

    // The timed runs' statistics are the last `count=` line with `first=` before the summary
    // (the warm-up line comes first; profiling tables come after the summary).
    let runs = output[..summary_pos]
        .lines()
        .map(|l| l.trim().trim_start_matches("INFO:").trim())
        .rfind(|l| l.starts_with("count=") && l.contains("first=") && l.contains("avg="))
        .and_then(parse_run_line);

    let memory_overall_mb = output
        .lines()
        .find(|l| l.to_ascii_lowercase().contains("memory footprint") && l.contains("overall="))
        .and_then(|l| key_value(l.split("(MB):").nth(1).unwrap_or(l), "overall"));
    let delegation = output
        .lines()
        .map(|l| l.trim().trim_start_matches("INFO:").trim())
        .find(|l| {
            l.contains("will be completely executed by the delegate")
                || l.contains("partially executed by the delegate")
                || l.contains("node(s) with delegate")
        })
        .map(str::to_string);

    Ok(BenchmarkModelSummary {
        init_ms: init * 1e-3,
        first_inference_ms: first * 1e-3,
        warmup_avg_ms: warmup * 1e-3,
        inference_avg_ms: inference * 1e-3,
        runs,
        memory_overall_mb,
        delegation,
    })
}

/// One row of `benchmark_model`'s per-operator "Run Order" table (`--enable_op_profiling`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpProfileRow {
    /// `[node type]`: the TFLite operator (`CONV_2D`), the delegate node
    /// (`TfLiteNnapiDelegate`), or the delegate's own operator (`Convolution (NHWC, QC8) IGEMM`).
    pub node_type: String,
    /// `[avg ms]`: average of one call.
    pub avg_ms: f64,
    /// `[times called]` per run (0 for setup events that do not run per inference).
    pub times_called: u64,
    /// `[Name]` as printed: `[tensor, …]:node`, `Delegate/<op>:<i>` or `AllocateTensors/0`.
    pub name: String,
    /// The first output tensor of a `[…]:node` name.
    pub output: Option<String>,
    /// The node index of a `[…]:node` name (the model's operator index for builtins).
    pub node: Option<usize>,
    /// A delegate's own operator (`Delegate/…` name): its index is the delegate's, not the model's.
    pub delegate_op: bool,
}

impl OpProfileRow {
    /// Time per inference: the average call times the calls per run.
    pub fn per_run_ms(&self) -> f64 {
        self.avg_ms * self.times_called as f64
    }
}

fn split_columns(line: &str) -> Vec<String> {
    if line.contains('\t') {
        line.split('\t')
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty())
            .collect()
    } else {
        // Tabs expanded to spaces (pasted logs): columns are two or more spaces apart; node
        // types and names contain single spaces.
        let mut out = Vec::new();
        let mut field = String::new();
        let mut spaces = 0;
        for c in line.trim().chars() {
            if c == ' ' {
                spaces += 1;
                continue;
            }
            if spaces >= 2 && !field.is_empty() {
                out.push(std::mem::take(&mut field));
            } else if spaces == 1 {
                field.push(' ');
            }
            spaces = 0;
            field.push(c);
        }
        if !field.is_empty() {
            out.push(field);
        }
        out
    }
}

fn parse_profile_name(name: &str) -> (Option<String>, Option<usize>, bool) {
    if let Some(rest) = name.strip_prefix('[')
        && let Some(close) = rest.rfind("]:")
    {
        let node = rest[close + 2..].trim().parse().ok();
        let tensors = &rest[..close];
        // Several outputs are listed as `a, b`; the first names the node.
        let first = tensors.split(", ").next().unwrap_or(tensors).trim();
        return (Some(first.to_string()), node, false);
    }
    (None, None, name.starts_with("Delegate/"))
}

/// Parses the "Run Order" table of the regular runs' per-operator profile that
/// `benchmark_model --enable_op_profiling=true` prints (TFLite's tool, with or without the
/// `[start]` column, tabs or spaces, with or without `INFO: `), or of LiteRT's
/// `benchmark_model --use_profiler=true`, which prints the table without a title. `None` when
/// the output has no such table.
pub fn parse_op_profile(output: &str) -> Option<Vec<OpProfileRow>> {
    let strip = |l: &str| -> String {
        let t = l.trim_end();
        t.strip_prefix("INFO: ").unwrap_or(t).to_string()
    };
    let lines: Vec<String> = output.lines().map(strip).collect();
    // The regular runs' section when titled, else the last Run Order table.
    let start = lines
        .iter()
        .position(|l| l.contains("Operator-wise Profiling Info for Regular Benchmark Runs"))
        .unwrap_or(0);
    let order = start
        + lines[start..]
            .iter()
            .position(|l| l.contains("=== Run Order ==="))?;
    let order = if lines[start].contains("Operator-wise") {
        order
    } else {
        lines
            .iter()
            .rposition(|l| l.contains("=== Run Order ==="))
            .unwrap_or(order)
    };
    let header = split_columns(lines.get(order + 1)?);
    let col = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (node_type, avg, called, name) = (
        col("[node type]")?,
        col("[avg ms]")?,
        col("[times called]")?,
        col("[Name]")?,
    );
    let mut rows = Vec::new();
    for line in &lines[order + 2..] {
        if line.trim().is_empty() || line.contains("=====") {
            break;
        }
        let fields = split_columns(line);
        if fields.len() != header.len() {
            return None;
        }
        let (output, node, delegate_op) = parse_profile_name(&fields[name]);
        rows.push(OpProfileRow {
            node_type: fields[node_type].clone(),
            avg_ms: fields[avg].parse().ok()?,
            times_called: fields[called].parse().ok()?,
            name: fields[name].clone(),
            output,
            node,
            delegate_op,
        });
    }
    (!rows.is_empty()).then_some(rows)
}

/// The per-layer profile of a parsed Run Order table: builtin rows by node index and output
/// tensor; a delegate's own operators (XNNPACK's `Delegate/…` rows) aligned with the model's
/// operators as LiteRT's events are ([`crate::backends::litert::map_profile`]); where they
/// cannot be aligned, only the builtin and delegate-node rows, with the reason.
pub fn op_profile_layers(
    rows: &[OpProfileRow],
    model: &Path,
) -> Result<(Vec<crate::layers::LayerTime>, Option<String>), BenchError> {
    use crate::backends::litert::{ProfileEvent, map_profile};
    use crate::layers::LayerTime;
    let layers = crate::layers::model_layers(model)?;
    let per_node: Vec<LayerTime> = rows
        .iter()
        .filter(|r| r.times_called > 0 && !r.delegate_op)
        .filter_map(|r| {
            Some(LayerTime {
                index: r.node,
                output: r.output.clone()?,
                op: r.node_type.clone(),
                ms: r.per_run_ms(),
            })
        })
        .collect();
    if !rows.iter().any(|r| r.delegate_op) {
        return Ok((per_node, None));
    }
    if rows.iter().any(|r| r.delegate_op && r.times_called != 1) {
        return Ok((
            per_node,
            Some("the delegate's operators are merged across partitions in this table ([times called] > 1), so they cannot be matched to the model's operators".into()),
        ));
    }
    let events: Vec<ProfileEvent> = rows
        .iter()
        .filter(|r| r.times_called > 0 && (r.delegate_op || r.node.is_some()))
        .map(|r| ProfileEvent {
            builtin: !r.delegate_op,
            tag: r.node_type.clone(),
            index: if r.delegate_op {
                0
            } else {
                r.node.unwrap_or(0) as u64
            },
            elapsed_us: r.per_run_ms() * 1e3,
        })
        .collect();
    match map_profile(&events, 1, &layers) {
        Ok(times) => Ok((times, None)),
        Err(why) => Ok((per_node, Some(format!("the delegate's operators: {why}")))),
    }
}

impl BenchmarkModelSummary {
    /// The statistics the tool gives (no p90/p99: it does not print them).
    pub fn stats(&self) -> Stats {
        let (count, min, max, std, median, p5) = match &self.runs {
            Some(r) => (r.count, r.min_ms, r.max_ms, r.std_ms, r.median_ms, r.p5_ms),
            None => (
                0,
                self.inference_avg_ms,
                self.inference_avg_ms,
                0.0,
                None,
                None,
            ),
        };
        let _ = p5;
        Stats {
            count,
            min,
            p10: None,
            median,
            mean: self.inference_avg_ms,
            p90: None,
            p99: None,
            max,
            std,
            throughput: if self.inference_avg_ms > 0.0 {
                1000.0 / self.inference_avg_ms
            } else {
                f64::INFINITY
            },
        }
    }
}

/// The `benchmark-model:<path>` backend.
pub struct BenchmarkModelBackend {
    /// The binary (a path, or a name looked up on `PATH`).
    pub binary: PathBuf,
    /// The model.
    pub model: PathBuf,
    /// Flags passed through unchanged (e.g. `--external_delegate_path=/usr/lib/libvx_delegate.so`).
    pub extra_args: Vec<String>,
    /// Where to write the input file for `--input_layer_value_files`.
    pub work_dir: PathBuf,
}

/// Resolves a name on `PATH` (or returns the path if it is a file).
pub fn which(binary: &Path) -> Option<PathBuf> {
    if binary.components().count() > 1 || binary.is_file() {
        return binary.is_file().then(|| binary.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(binary))
        .find(|p| p.is_file())
}

impl Backend for BenchmarkModelBackend {
    fn name(&self) -> String {
        format!("benchmark-model:{}", self.binary.display())
    }

    fn run(&mut self, ctx: &SuiteContext<'_>) -> BackendResult {
        let name = self.name();
        let device = if self.extra_args.is_empty() {
            "cpu (TFLite benchmark_model)".to_string()
        } else {
            format!("benchmark_model {}", self.extra_args.join(" "))
        };
        let Some(binary) = which(&self.binary) else {
            return BackendResult::skipped(
                name,
                device,
                format!("{} not found", self.binary.display()),
            );
        };
        if !self.model.exists() {
            return BackendResult::skipped(
                name,
                device,
                format!("{} does not exist", self.model.display()),
            );
        }
        match self.run_tool(&binary, ctx, false) {
            Ok((summary, command, _)) => {
                let mut r = BackendResult::new(name, device, RowStatus::Measured);
                r.init_ms = Some(summary.init_ms);
                r.first_run_ms = Some(summary.first_inference_ms);
                r.warmup_runs = ctx.protocol.warmup;
                r.stats = Some(summary.stats());
                r.threads = Some(ctx.protocol.threads);
                r.op_placement = summary
                    .delegation
                    .clone()
                    .or_else(|| Some("TFLite interpreter (no delegate line)".into()));
                r.peak_rss_mib = summary.memory_overall_mb;
                r.details = serde_json::json!({ "command": command, "summary": summary });
                if ctx.protocol.layer_runs > 0 {
                    r.layer_profile = Some(self.profile_layers(&binary, ctx));
                }
                r
            }
            Err(e) => BackendResult::failed(name, device, &e),
        }
    }
}

impl BenchmarkModelBackend {
    /// A second run with `--enable_op_profiling=true` (profiling must not touch the timed
    /// runs), its Run Order table turned into per-layer times.
    fn profile_layers(&self, binary: &Path, ctx: &SuiteContext<'_>) -> LayerProfile {
        let (text, command) = match self.run_tool(binary, ctx, true) {
            Ok((_, command, text)) => (text, command),
            Err(e) => {
                return LayerProfile::Unavailable {
                    why: format!("the profiling run failed: {e}"),
                };
            }
        };
        let Some(rows) = parse_op_profile(&text) else {
            return LayerProfile::Unavailable {
                why: format!(
                    "`{}` printed no per-operator Run Order table",
                    command.join(" ")
                ),
            };
        };
        match op_profile_layers(&rows, &self.model) {
            Ok((layers, note)) => LayerProfile::Measured {
                source: format!(
                    "benchmark_model --enable_op_profiling=true (Run Order table: avg ms × times called){}",
                    note.map(|n| format!("; {n}")).unwrap_or_default()
                ),
                runs: ctx.protocol.layer_runs,
                layers,
            },
            Err(e) => LayerProfile::Unavailable { why: e.to_string() },
        }
    }

    fn run_tool(
        &self,
        binary: &Path,
        ctx: &SuiteContext<'_>,
        profile: bool,
    ) -> Result<(BenchmarkModelSummary, Vec<String>, String), BenchError> {
        let p = ctx.protocol;
        let (warmup, runs) = if profile {
            (1, p.layer_runs.max(1))
        } else {
            (p.warmup, p.runs)
        };
        let mut args = vec![
            format!("--graph={}", self.model.display()),
            format!("--num_threads={}", p.threads),
            format!("--warmup_runs={warmup}"),
            "--warmup_min_secs=0".to_string(),
            format!("--num_runs={runs}"),
            "--min_secs=0".to_string(),
        ];
        if profile {
            args.push("--enable_op_profiling=true".to_string());
        } else if let Some(s) = p.max_secs {
            args.push(format!("--max_secs={s}"));
        }
        // Our first slice as the input, so the tool does not run on random data.
        if let Some(arg) = self.input_file_arg(ctx)? {
            args.push(arg);
        }
        args.extend(self.extra_args.iter().cloned());
        let out = Command::new(binary)
            .args(&args)
            .output()
            .map_err(|e| BenchError::tool(binary.display().to_string(), e.to_string()))?;
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            return Err(BenchError::tool(
                binary.display().to_string(),
                format!(
                    "exited with {}: {}",
                    out.status,
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ),
            ));
        }
        let mut command = vec![binary.display().to_string()];
        command.extend(args);
        Ok((parse_benchmark_model(&text)?, command, text))
    }

    fn input_file_arg(&self, ctx: &SuiteContext<'_>) -> Result<Option<String>, BenchError> {
        let model =
            tflite_writer::read_model_file(&self.model).map_err(|source| BenchError::Model {
                path: self.model.clone(),
                source,
            })?;
        let Some(graph) = model.subgraphs.first() else {
            return Ok(None);
        };
        let Some(input) = graph
            .inputs
            .first()
            .and_then(|&i| graph.tensors.get(usize::try_from(i).ok()?))
        else {
            return Ok(None);
        };
        let Some(image) = ctx.inputs.images.first() else {
            return Ok(None);
        };
        let bytes: Vec<u8> = match (&input.dtype, input.quantization.as_ref()) {
            (tflite_writer::TensorType::Int8, Some(q)) if q.scale.len() == 1 => {
                let mut v = vec![0i8; image.len()];
                tflite_runtime::reference::quantize::quantize_f32_i8(
                    q.scale[0],
                    q.zero_point[0] as i32,
                    image,
                    &mut v,
                );
                v.into_iter().map(|x| x as u8).collect()
            }
            (tflite_writer::TensorType::Float32, _) => {
                image.iter().flat_map(|v| v.to_le_bytes()).collect()
            }
            _ => return Ok(None),
        };
        let path = self.work_dir.join("benchmark_model_input.bin");
        artifact_io::write_atomic(&path, &bytes)?;
        Ok(Some(format!(
            "--input_layer_value_files={}:{}",
            input.name,
            path.display()
        )))
    }
}
