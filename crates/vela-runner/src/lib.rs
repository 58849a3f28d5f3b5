//! Arm Vela (`pip install ethos-u-vela`), the compiler of int8 `.tflite` models for Arm's
//! Ethos-U NPUs: runs it and parses what it reports.
//!
//! This is the one Vela door of the workspace: `unet-quantizer`'s `--vela` check (operators left
//! on the CPU) and `unet-bench`'s `vela:<config>` rows (the estimated latency) both go through
//! [`VelaJob::run`]. Every time it returns is an **estimate** of Vela's performance model, never a
//! measurement on an NPU.
//!
//! ```no_run
//! use std::path::Path;
//! let job = vela_runner::VelaJob::new(Path::new("unet_int8.tflite"), "ethos-u55-256", Path::new("out/vela"));
//! let compiled = job.run()?;
//! println!("{} CPU ops, {:.2} ms (estimate)", compiled.cpu_ops(), compiled.estimate.inference_ms);
//! # Ok::<(), vela_runner::VelaError>(())
//! ```

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

/// The Ethos-U configurations this project checks its models for.
pub const ACCELERATORS: [&str; 2] = ["ethos-u55-256", "ethos-u65-256"];

/// The executable looked up on `PATH` when none is given.
pub const DEFAULT_EXECUTABLE: &str = "vela";

/// What went wrong running or reading Vela.
#[derive(Debug, thiserror::Error)]
pub enum VelaError {
    /// The executable does not run (not installed, or broken).
    #[error("{0} (pip install ethos-u-vela)")]
    Unavailable(String),
    /// Vela ran and failed: the command and the last lines it printed.
    #[error("`{command}` exited with {status}: {tail}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// The last lines of its stderr and stdout.
        tail: String,
    },
    /// A file of Vela's output could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The stdout log could not be written.
    #[error(transparent)]
    Write(#[from] artifact_io::WriteError),
    /// Vela's summary is not what this parser knows.
    #[error("Vela summary: {0}")]
    Parse(String),
}

/// What Vela's performance model estimated for one compilation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VelaEstimate {
    /// Accelerator configuration as Vela names it (e.g. `Ethos_U55_256`).
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

/// One finished compilation.
#[derive(Debug, Clone)]
pub struct Compilation {
    /// The parsed estimate.
    pub estimate: VelaEstimate,
    /// The per-layer estimate, in execution order (empty unless [`VelaJob::per_layer`]).
    pub layers: Vec<VelaLayer>,
    /// The command line that produced it.
    pub command: String,
    /// The directory holding Vela's outputs (the compiled model, the CSVs, `vela_stdout.txt`).
    pub out_dir: PathBuf,
}

impl Compilation {
    /// Operators Vela left for the CPU (0 when its summary had no count, which Vela prints only
    /// when there are operators to place).
    pub fn cpu_ops(&self) -> usize {
        self.estimate.cpu_ops.unwrap_or(0)
    }
}

/// `vela --version` of `vela`, or why it does not run.
pub fn version(vela: &Path) -> Result<String, VelaError> {
    match Command::new(vela).arg("--version").output() {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }
        Ok(out) => Err(VelaError::Unavailable(format!(
            "`{} --version` failed: {}",
            vela.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
        Err(e) => Err(VelaError::Unavailable(format!(
            "cannot run `{}`: {e}",
            vela.display()
        ))),
    }
}

/// What a Vela installation offers: its accelerator configurations (the choices of
/// `--accelerator-config` in `vela --help`) and, per configuration file it ships
/// (`--list-config-files`), the system configurations and memory modes it defines
/// (`--list-configs <file>`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VelaOptions {
    /// `ethos-u55-32` … in Vela's order.
    pub accelerators: Vec<String>,
    /// The configuration file the lists below come from (`Arm/vela.ini`).
    pub config_file: Option<String>,
    /// Its `System_Config.*` sections.
    pub system_configs: Vec<String>,
    /// Its `Memory_Mode.*` sections.
    pub memory_modes: Vec<String>,
}

/// The `--accelerator-config {a,b,…}` choices of Vela's help text.
pub fn parse_accelerator_choices(help: &str) -> Vec<String> {
    let Some(pos) = help.find("--accelerator-config {") else {
        return Vec::new();
    };
    let rest = &help[pos + "--accelerator-config {".len()..];
    rest.split('}')
        .next()
        .unwrap_or_default()
        .split(',')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

/// The section names of `vela --list-configs <file>` output, split into system configurations
/// and memory modes.
pub fn parse_config_sections(listing: &str) -> (Vec<String>, Vec<String>) {
    let mut systems = Vec::new();
    let mut modes = Vec::new();
    for line in listing.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("System_Config.") {
            systems.push(name.to_string());
        } else if let Some(name) = line.strip_prefix("Memory_Mode.") {
            modes.push(name.to_string());
        }
    }
    (systems, modes)
}

fn vela_output(vela: &Path, args: &[&str]) -> Result<String, VelaError> {
    let out = Command::new(vela)
        .args(args)
        .output()
        .map_err(|e| VelaError::Unavailable(format!("cannot run `{}`: {e}", vela.display())))?;
    if !out.status.success() {
        return Err(VelaError::Failed {
            command: format!("{} {}", vela.display(), args.join(" ")),
            status: out.status.to_string(),
            tail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Asks `vela` what it offers (see [`VelaOptions`]).
pub fn options(vela: &Path) -> Result<VelaOptions, VelaError> {
    let accelerators = parse_accelerator_choices(&vela_output(vela, &["--help"])?);
    if accelerators.is_empty() {
        return Err(VelaError::Parse(
            "`vela --help` lists no --accelerator-config choices".into(),
        ));
    }
    let files = vela_output(vela, &["--list-config-files"])?;
    let config_file = files
        .lines()
        .map(str::trim)
        .find(|l| l.ends_with(".ini"))
        .map(str::to_string);
    let (system_configs, memory_modes) = match &config_file {
        Some(file) => parse_config_sections(&vela_output(vela, &["--list-configs", file])?),
        None => (Vec::new(), Vec::new()),
    };
    Ok(VelaOptions {
        accelerators,
        config_file,
        system_configs,
        memory_modes,
    })
}

/// One Vela compilation to run.
#[derive(Debug, Clone)]
pub struct VelaJob {
    /// The executable.
    pub vela: PathBuf,
    /// The int8 model.
    pub model: PathBuf,
    /// `--accelerator-config` (`ethos-u55-256`, `ethos-u65-256`, ...).
    pub accelerator: String,
    /// Extra flags passed through (`--config my.ini --system-config ... --memory-mode ...`).
    pub extra_args: Vec<String>,
    /// `--output-dir`; created when missing.
    pub out_dir: PathBuf,
    /// Also ask for the per-layer estimate (`--verbose-performance`) and parse it into
    /// [`Compilation::layers`].
    pub per_layer: bool,
}

impl VelaJob {
    /// A job with the `vela` on `PATH` and no extra flags.
    pub fn new(model: &Path, accelerator: &str, out_dir: &Path) -> Self {
        Self {
            vela: PathBuf::from(DEFAULT_EXECUTABLE),
            model: model.to_path_buf(),
            accelerator: accelerator.to_string(),
            extra_args: Vec::new(),
            out_dir: out_dir.to_path_buf(),
            per_layer: false,
        }
    }

    /// The command line, as a user would type it.
    pub fn command_line(&self) -> String {
        let mut line = format!(
            "{} {} --accelerator-config {} --output-dir {}",
            self.vela.display(),
            self.model.display(),
            self.accelerator,
            self.out_dir.display()
        );
        if self.per_layer {
            line.push_str(" --verbose-performance");
        }
        for arg in &self.extra_args {
            line.push(' ');
            line.push_str(arg);
        }
        line
    }

    /// Runs Vela, keeps its stdout as `vela_stdout.txt` in the output directory, and parses the
    /// summary CSV it writes there (`<model stem>_summary_<system config>.csv`).
    pub fn run(&self) -> Result<Compilation, VelaError> {
        let command = self.command_line();
        std::fs::create_dir_all(&self.out_dir).map_err(|source| VelaError::Io {
            path: self.out_dir.clone(),
            source,
        })?;
        let out = Command::new(&self.vela)
            .arg(&self.model)
            .arg("--accelerator-config")
            .arg(&self.accelerator)
            .arg("--output-dir")
            .arg(&self.out_dir)
            .args(self.per_layer.then_some("--verbose-performance"))
            .args(&self.extra_args)
            .output()
            .map_err(|e| VelaError::Unavailable(format!("cannot run `{command}`: {e}")))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let mut tail: Vec<&str> = stderr
                .lines()
                .chain(stdout.lines())
                .filter(|l| !l.trim().is_empty())
                .rev()
                .take(4)
                .collect();
            tail.reverse();
            return Err(VelaError::Failed {
                command,
                status: out.status.to_string(),
                tail: tail.join(" | "),
            });
        }
        artifact_io::write_atomic(&self.out_dir.join("vela_stdout.txt"), stdout.as_bytes())?;
        let csv_path = self.output_csv("_summary_")?;
        let csv = std::fs::read_to_string(&csv_path).map_err(|source| VelaError::Io {
            path: csv_path.clone(),
            source,
        })?;
        let estimate = parse(&csv, &stdout)
            .map_err(|e| VelaError::Parse(format!("{}: {e}", csv_path.display())))?;
        let layers = if self.per_layer {
            let path = self.output_csv("_per-layer")?;
            let text = std::fs::read_to_string(&path).map_err(|source| VelaError::Io {
                path: path.clone(),
                source,
            })?;
            parse_per_layer(&text)
                .map_err(|e| VelaError::Parse(format!("{}: {e}", path.display())))?
        } else {
            Vec::new()
        };
        Ok(Compilation {
            estimate,
            layers,
            command,
            out_dir: self.out_dir.clone(),
        })
    }

    /// The CSV Vela wrote as `<model stem><infix>*.csv`.
    fn output_csv(&self, infix: &str) -> Result<PathBuf, VelaError> {
        let stem = self
            .model
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prefix = format!("{stem}{infix}");
        let entries = std::fs::read_dir(&self.out_dir).map_err(|source| VelaError::Io {
            path: self.out_dir.clone(),
            source,
        })?;
        entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
                    && p.extension().is_some_and(|e| e == "csv")
            })
            .ok_or_else(|| {
                VelaError::Parse(format!("no {prefix}*.csv in {}", self.out_dir.display()))
            })
    }
}

/// A reader of Vela's CSV output (fields trimmed, rows of any length) and its header.
fn csv_with_header<'a>(
    csv_text: &'a str,
    what: &str,
) -> Result<(csv::Reader<&'a [u8]>, csv::StringRecord), VelaError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(csv_text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| VelaError::Parse(format!("bad {what} header: {e}")))?
        .clone();
    Ok((reader, header))
}

/// The header and first data row of a CSV, by column name.
fn first_row(csv_text: &str) -> Result<BTreeMap<String, String>, VelaError> {
    let (mut reader, header) = csv_with_header(csv_text, "CSV")?;
    let row = reader
        .records()
        .find(|r| r.as_ref().map_or(true, |r| r.iter().any(|f| !f.is_empty())))
        .ok_or_else(|| VelaError::Parse("summary CSV has no data row".into()))?
        .map_err(|e| VelaError::Parse(format!("bad CSV row: {e}")))?;
    Ok(header
        .iter()
        .zip(row.iter())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// `<label> operators = N` from Vela's printed network summary.
fn operator_count(stdout: &str, label: &str) -> Option<usize> {
    stdout.lines().find_map(|l| {
        let rest = l
            .trim()
            .strip_prefix(label)?
            .trim_start()
            .strip_prefix("operators")?
            .trim_start()
            .strip_prefix('=')?;
        rest.split_whitespace().next()?.parse::<usize>().ok()
    })
}

/// Parses Vela's `<model>_summary_<system>.csv` and the operator counts of its stdout
/// (`CPU operators = N (…%)`, `NPU operators = N (…%)`).
pub fn parse(summary_csv: &str, stdout: &str) -> Result<VelaEstimate, VelaError> {
    let row = first_row(summary_csv)?;
    let text = |k: &str| row.get(k).cloned().unwrap_or_default();
    let num = |k: &str| row.get(k).and_then(|v| v.parse::<f64>().ok());
    let need = |k: &str| {
        num(k).ok_or_else(|| VelaError::Parse(format!("summary CSV has no numeric {k:?}")))
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
        npu_ops: operator_count(stdout, "NPU"),
        cpu_ops: operator_count(stdout, "CPU"),
        macs: num("nn_macs"),
    })
}

/// One row of Vela's per-layer performance CSV (`<model>_per-layer.csv`, written with
/// `--verbose-performance`): one NPU operation after Vela's graph rewrites. All figures are
/// estimates of Vela's performance model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VelaLayer {
    /// The operator of the input model it came from (`Conv2D`, `CONV_2D`, …; empty if none).
    pub source_operator: String,
    /// Vela's own operation (`Conv2D`, `Conv2DBias`, `Relu`, `LUT`, …).
    pub npu_operation: String,
    /// The output tensor's name, which ties the row to the model's operator.
    pub name: String,
    /// Estimated cycles of the operation.
    pub cycles: f64,
    /// Of those, NPU cycles.
    pub npu_cycles: f64,
    /// Multiply-accumulates.
    pub macs: f64,
    /// MAC utilisation in percent of the configuration's peak.
    pub mac_utilisation_percent: f64,
    /// SRAM (staging) bytes in use during the operation.
    pub sram_bytes: f64,
    /// Cycles spent on SRAM accesses.
    pub sram_access_cycles: f64,
    /// Cycles spent on DRAM accesses.
    pub dram_access_cycles: f64,
    /// Cycles spent on on-chip flash accesses.
    pub on_chip_flash_access_cycles: f64,
    /// Cycles spent on off-chip flash accesses (weights streamed from flash).
    pub off_chip_flash_access_cycles: f64,
}

/// Parses Vela's per-layer CSV. Both column namings of Vela 5.2.0 are accepted: the default
/// core's (`Original Operator`, `Staging Usage`, `Util% (MAC)`) and the legacy core's
/// (`TFLite_operator`, `SRAM Usage`, `Util%`, with two columns named `Network%`).
pub fn parse_per_layer(csv_text: &str) -> Result<Vec<VelaLayer>, VelaError> {
    let (mut reader, header) = csv_with_header(csv_text, "per-layer CSV")?;
    // The first column with one of `names` (a header may repeat a name; the first is meant).
    let column = |names: &[&str]| header.iter().position(|h| names.contains(&h));
    let need = |names: &[&str]| {
        column(names).ok_or_else(|| {
            VelaError::Parse(format!(
                "per-layer CSV has no column {}",
                names
                    .iter()
                    .map(|n| format!("{n:?}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ))
        })
    };
    let source = column(&["Original Operator", "TFLite_operator", "TOSA_operator"]);
    let npu_operation = need(&["NNG Operator"])?;
    let name = need(&["Name"])?;
    let cycles = need(&["Op Cycles"])?;
    let npu = need(&["NPU"])?;
    let macs = need(&["MAC Count"])?;
    let util = need(&["Util% (MAC)", "MAC Util%", "Util%"])?;
    let sram = need(&["Staging Usage", "SRAM Usage"])?;
    let sram_ac = need(&["SRAM AC"])?;
    let dram_ac = need(&["DRAM AC"])?;
    let on_flash = need(&["OnFlash AC"])?;
    let off_flash = need(&["OffFlash AC"])?;
    let mut layers = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record =
            record.map_err(|e| VelaError::Parse(format!("per-layer CSV row {}: {e}", i + 1)))?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        let text = |c: usize| record.get(c).unwrap_or_default().to_string();
        let num = |c: usize| -> Result<f64, VelaError> {
            let field = record.get(c).unwrap_or_default();
            field.parse::<f64>().map_err(|_| {
                VelaError::Parse(format!(
                    "per-layer CSV row {} column {:?}: {field:?} is not a number",
                    i + 1,
                    header.get(c).unwrap_or_default()
                ))
            })
        };
        layers.push(VelaLayer {
            source_operator: source.map(text).unwrap_or_default(),
            npu_operation: text(npu_operation),
            name: text(name),
            cycles: num(cycles)?,
            npu_cycles: num(npu)?,
            macs: num(macs)?,
            mac_utilisation_percent: num(util)?,
            sram_bytes: num(sram)?,
            sram_access_cycles: num(sram_ac)?,
            dram_access_cycles: num(dram_ac)?,
            on_chip_flash_access_cycles: num(on_flash)?,
            off_chip_flash_access_cycles: num(off_flash)?,
        });
    }
    Ok(layers)
}

/// Why a layer takes its cycles, read from its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerBound {
    /// Its off-chip flash accesses take at least 90 % of its cycles (weights streamed in): the
    /// operation lasts as long as the transfer.
    WeightStreaming,
    /// Its DRAM accesses take at least 90 % of its cycles.
    DramBound,
    /// Its SRAM accesses take at least 90 % of its cycles.
    SramBound,
    /// Compute, but the MAC array is mostly idle (under 25 % utilisation).
    LowMacUtilisation,
    /// Compute at 25 % MAC utilisation or more.
    ComputeBound,
    /// No MACs and no dominant memory (elementwise, LUT, pooling).
    Elementwise,
}

impl LayerBound {
    /// A short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            LayerBound::WeightStreaming => "weight streaming",
            LayerBound::DramBound => "DRAM",
            LayerBound::SramBound => "SRAM",
            LayerBound::LowMacUtilisation => "low MAC util.",
            LayerBound::ComputeBound => "compute",
            LayerBound::Elementwise => "no MACs",
        }
    }

    /// The bound of `layer`: a memory whose access cycles take at least 90 % of the layer's
    /// cycles (Vela overlaps transfers with compute, so less than that still leaves the MACs
    /// in charge), else the MAC utilisation.
    pub fn of(layer: &VelaLayer) -> Self {
        let most = 0.9 * layer.cycles;
        if layer.cycles > 0.0 && layer.off_chip_flash_access_cycles >= most {
            LayerBound::WeightStreaming
        } else if layer.cycles > 0.0 && layer.dram_access_cycles >= most {
            LayerBound::DramBound
        } else if layer.cycles > 0.0 && layer.sram_access_cycles >= most {
            LayerBound::SramBound
        } else if layer.macs <= 0.0 {
            LayerBound::Elementwise
        } else if layer.mac_utilisation_percent < 25.0 {
            LayerBound::LowMacUtilisation
        } else {
            LayerBound::ComputeBound
        }
    }

    /// In words, for reports.
    pub fn describe(self, layer: &VelaLayer) -> String {
        let share = |part: f64| {
            if layer.cycles > 0.0 {
                100.0 * part / layer.cycles
            } else {
                0.0
            }
        };
        match self {
            LayerBound::WeightStreaming => format!(
                "weight-streaming: {:.0} % of its cycles read off-chip flash",
                share(layer.off_chip_flash_access_cycles)
            ),
            LayerBound::DramBound => format!(
                "DRAM-bound: {:.0} % of its cycles are DRAM accesses",
                share(layer.dram_access_cycles)
            ),
            LayerBound::SramBound => format!(
                "SRAM-bound: {:.0} % of its cycles are SRAM accesses",
                share(layer.sram_access_cycles)
            ),
            LayerBound::LowMacUtilisation => format!(
                "low MAC utilisation: {:.1} % of the MAC array busy",
                layer.mac_utilisation_percent
            ),
            LayerBound::ComputeBound => format!(
                "compute-bound at {:.1} % MAC utilisation",
                layer.mac_utilisation_percent
            ),
            LayerBound::Elementwise => "no MACs (elementwise or table lookup)".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vela_help_and_config_listing() {
        let help = "usage: vela [-h] [--accelerator-config {ethos-u55-32,ethos-u55-64,ethos-u85-2048}]\n  --accelerator-config {ethos-u55-32,ethos-u55-64,ethos-u85-2048}\n";
        assert_eq!(
            parse_accelerator_choices(help),
            ["ethos-u55-32", "ethos-u55-64", "ethos-u85-2048"]
        );
        assert!(parse_accelerator_choices("no such flag").is_empty());
        let listing = "Configurations defined in /x/Arm/vela.ini:\n   System_Config.Ethos_U55_High_End_Embedded\n   Memory_Mode.Shared_Sram\n   Memory_Mode.Dedicated_Sram_256KB\n";
        let (systems, modes) = parse_config_sections(listing);
        assert_eq!(systems, ["Ethos_U55_High_End_Embedded"]);
        assert_eq!(modes, ["Shared_Sram", "Dedicated_Sram_256KB"]);
    }

    #[test]
    fn operator_counts_from_the_printed_summary() {
        let text =
            "Network summary for unet\nCPU operators = 3 (8.6%)\nNPU operators = 32 (91.4%)\n";
        assert_eq!(operator_count(text, "CPU"), Some(3));
        assert_eq!(operator_count(text, "NPU"), Some(32));
        assert_eq!(operator_count("nothing here", "CPU"), None);
    }

    #[test]
    fn quoted_fields_and_blank_lines() {
        let csv = "\n\"experiment\",inference_time,core_clock,cycles_total,network\n\n\
                   default,0.5,\"1e9\",5e8,\"a, b\"\n";
        let row = first_row(csv).expect("parses");
        assert_eq!(row["network"], "a, b");
        let est = parse(csv, "").expect("parses");
        assert_eq!(est.inference_ms, 500.0);
        assert_eq!(est.core_clock_hz, 1e9);
    }

    #[test]
    fn a_missing_executable_is_unavailable() {
        let err = version(Path::new("/nonexistent/vela")).expect_err("no such file");
        assert!(matches!(err, VelaError::Unavailable(_)), "{err}");
        assert!(err.to_string().contains("/nonexistent/vela"), "{err}");
    }
}
