//! Backend specifications, the suite configuration, and [`run_suite`].

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;
use tflite_writer::TensorType;

use crate::backend::{Backend, BackendResult, InProcess, Protocol, RowStatus, SuiteContext};
use crate::backends::benchmark_model::BenchmarkModelBackend;
use crate::backends::litert::{self, Accelerator, LiteRtConfig, LiteRtEngine};
use crate::backends::rust::RustEngine;
use crate::backends::vela::{self, VelaBackend};
use crate::error::BenchError;
use crate::inputs::{BenchInputs, InputSource};
use crate::report::Report;
use crate::sys::{self, MachineInfo};

/// One backend as named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSpec {
    /// `rust-int8`: tflite-runtime on the int8 model (the agreement reference).
    RustInt8,
    /// `rust-f32`: tflite-runtime on the float model.
    RustF32,
    /// `burn-f32`: the burn checkpoint on burn's CPU backend.
    BurnF32,
    /// `litert:<cpu|gpu|npu>` (int8 model) or `litert-f32:<...>` (float model).
    LiteRt {
        /// The accelerator.
        accelerator: Accelerator,
        /// Run the float model instead of the int8 one.
        float: bool,
    },
    /// `vela:<accelerator-config>`.
    Vela(String),
    /// `benchmark-model:<path>`.
    BenchmarkModel(PathBuf),
}

impl FromStr for BackendSpec {
    type Err = BenchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |problem: &str| BenchError::BadSpec {
            spec: s.to_string(),
            problem: problem.to_string(),
        };
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        match (kind, arg) {
            ("rust-int8", None) => Ok(BackendSpec::RustInt8),
            ("rust-f32", None) => Ok(BackendSpec::RustF32),
            ("burn-f32", None) => Ok(BackendSpec::BurnF32),
            ("litert" | "litert-f32", Some(a)) => Ok(BackendSpec::LiteRt {
                accelerator: Accelerator::parse(a)
                    .ok_or_else(|| bad("the accelerator must be cpu, gpu or npu"))?,
                float: kind == "litert-f32",
            }),
            ("litert" | "litert-f32", None) => Ok(BackendSpec::LiteRt {
                accelerator: Accelerator::Cpu,
                float: kind == "litert-f32",
            }),
            ("vela", Some(a)) if !a.is_empty() => Ok(BackendSpec::Vela(a.to_string())),
            ("benchmark-model", Some(a)) if !a.is_empty() => {
                Ok(BackendSpec::BenchmarkModel(PathBuf::from(a)))
            }
            _ => Err(bad(
                "expected rust-int8, rust-f32, burn-f32, litert:<cpu|gpu|npu>, litert-f32:<...>, vela:<config> or benchmark-model:<path>",
            )),
        }
    }
}

impl std::fmt::Display for BackendSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendSpec::RustInt8 => f.write_str("rust-int8"),
            BackendSpec::RustF32 => f.write_str("rust-f32"),
            BackendSpec::BurnF32 => f.write_str("burn-f32"),
            BackendSpec::LiteRt { accelerator, float } => {
                write!(
                    f,
                    "{}:{}",
                    if *float { "litert-f32" } else { "litert" },
                    accelerator.name()
                )
            }
            BackendSpec::Vela(c) => write!(f, "vela:{c}"),
            BackendSpec::BenchmarkModel(p) => write!(f, "benchmark-model:{}", p.display()),
        }
    }
}

/// The default backend list: every row the issue asks for, plus `benchmark_model` from `PATH`
/// (skipped when absent).
pub const DEFAULT_BACKENDS: &str = "rust-int8,rust-f32,burn-f32,litert:cpu,litert:gpu,litert:npu,vela:ethos-u55-256,vela:ethos-u65-256,benchmark-model:benchmark_model";

/// Parses a comma-separated backend list.
pub fn parse_backends(list: &str) -> Result<Vec<BackendSpec>, BenchError> {
    let specs: Vec<BackendSpec> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(BackendSpec::from_str)
        .collect::<Result<_, _>>()?;
    if specs.is_empty() {
        return Err(BenchError::BadSpec {
            spec: list.to_string(),
            problem: format!(
                "no backend given; name at least one, e.g. --backends={DEFAULT_BACKENDS}"
            ),
        });
    }
    Ok(specs)
}

/// Everything a suite run needs.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// The int8 model (rust-int8, litert, vela, benchmark-model).
    pub model: PathBuf,
    /// The float model (rust-f32, litert-f32).
    pub float_model: Option<PathBuf>,
    /// The burn checkpoint (burn-f32).
    pub checkpoint: Option<PathBuf>,
    /// burn backend name for burn-f32 (`flex` or `ndarray`).
    pub burn_backend: String,
    /// Backends, in the order given (rust-int8 always runs first: it is the reference).
    pub backends: Vec<BackendSpec>,
    /// Measurement settings.
    pub protocol: Protocol,
    /// Input slices.
    pub inputs: InputSource,
    /// Number of slices.
    pub slices: usize,
    /// `--litert-lib`.
    pub litert_lib: Option<PathBuf>,
    /// `--litert-dispatch-dir`.
    pub litert_dispatch_dir: Option<PathBuf>,
    /// The `vela` executable.
    pub vela: PathBuf,
    /// Extra Vela flags.
    pub vela_args: Vec<String>,
    /// Flags passed through to `benchmark_model`.
    pub benchmark_model_args: Vec<String>,
    /// Backend name whose median is the speedup baseline (falls back to `rust-int8`).
    pub baseline: String,
    /// Output directory (report files, Vela outputs).
    pub out_dir: PathBuf,
    /// The command line, for the report.
    pub command: Vec<String>,
}

/// Reads the `[1, H, W, C]` input shape of a model.
pub fn model_input_hw(path: &Path) -> Result<(usize, usize), BenchError> {
    let model = tflite_writer::read_model_file(path).map_err(|source| BenchError::Model {
        path: path.to_path_buf(),
        source,
    })?;
    let unsupported = |problem: String| BenchError::UnsupportedModel {
        path: path.to_path_buf(),
        problem,
    };
    let graph = model
        .subgraphs
        .first()
        .ok_or_else(|| unsupported("no subgraph".into()))?;
    if graph.inputs.len() != 1 || graph.outputs.len() != 1 {
        return Err(unsupported(format!(
            "{} inputs and {} outputs; a U-Net has one of each",
            graph.inputs.len(),
            graph.outputs.len()
        )));
    }
    let tensor = usize::try_from(graph.inputs[0])
        .ok()
        .and_then(|i| graph.tensors.get(i))
        .ok_or_else(|| unsupported("bad input index".into()))?;
    match tensor.shape.as_slice() {
        [_, h, w, 1] if *h > 0 && *w > 0 => Ok((*h as usize, *w as usize)),
        other => Err(unsupported(format!(
            "input shape {other:?} is not [1, H, W, 1]"
        ))),
    }
}

fn output_quant(path: &Path) -> Option<(f32, i32)> {
    let model = tflite_writer::read_model_file(path).ok()?;
    let graph = model.subgraphs.first()?;
    let tensor = graph
        .tensors
        .get(usize::try_from(*graph.outputs.first()?).ok()?)?;
    let q = tensor.quantization.as_ref()?;
    (tensor.dtype == TensorType::Int8 && q.scale.len() == 1)
        .then(|| (q.scale[0], q.zero_point[0] as i32))
}

fn make_backend(
    spec: &BackendSpec,
    cfg: &SuiteConfig,
) -> Result<Box<dyn Backend>, Box<BackendResult>> {
    let float_model = || {
        cfg.float_model.clone().ok_or_else(|| {
            Box::new(BackendResult::skipped(
                spec.to_string(),
                "cpu",
                "no float model given (--float-model)",
            ))
        })
    };
    Ok(match spec {
        BackendSpec::RustInt8 => Box::new(InProcess::new(
            spec.to_string(),
            RustEngine::new(cfg.model.clone(), TensorType::Int8, cfg.protocol.threads),
        )),
        BackendSpec::RustF32 => Box::new(InProcess::new(
            spec.to_string(),
            RustEngine::new(float_model()?, TensorType::Float32, cfg.protocol.threads),
        )),
        BackendSpec::BurnF32 => burn_backend(spec, cfg)?,
        BackendSpec::LiteRt { accelerator, float } => Box::new(InProcess::new(
            spec.to_string(),
            LiteRtEngine::new(LiteRtConfig {
                model: if *float {
                    float_model()?
                } else {
                    cfg.model.clone()
                },
                accelerator: *accelerator,
                threads: cfg.protocol.threads,
                library: cfg.litert_lib.clone(),
                dispatch_dir: cfg.litert_dispatch_dir.clone(),
            }),
        )),
        BackendSpec::Vela(config) => Box::new(VelaBackend {
            config: config.clone(),
            model: cfg.model.clone(),
            vela: cfg.vela.clone(),
            extra_args: cfg.vela_args.clone(),
            work_dir: cfg.out_dir.clone(),
        }),
        BackendSpec::BenchmarkModel(path) => Box::new(BenchmarkModelBackend {
            binary: path.clone(),
            model: cfg.model.clone(),
            extra_args: cfg.benchmark_model_args.clone(),
            work_dir: cfg.out_dir.clone(),
        }),
    })
}

#[cfg(feature = "burn")]
fn burn_backend(
    spec: &BackendSpec,
    cfg: &SuiteConfig,
) -> Result<Box<dyn Backend>, Box<BackendResult>> {
    let Some(checkpoint) = cfg.checkpoint.clone() else {
        return Err(Box::new(BackendResult::skipped(
            spec.to_string(),
            "cpu (burn)",
            "no checkpoint given (--checkpoint)",
        )));
    };
    let kind: unet_train::BackendKind = cfg
        .burn_backend
        .parse()
        .map_err(|e: String| Box::new(BackendResult::skipped(spec.to_string(), "cpu (burn)", e)))?;
    Ok(Box::new(InProcess::new(
        spec.to_string(),
        crate::backends::burn::BurnEngine::new(checkpoint, kind),
    )))
}

#[cfg(not(feature = "burn"))]
fn burn_backend(
    spec: &BackendSpec,
    _cfg: &SuiteConfig,
) -> Result<Box<dyn Backend>, Box<BackendResult>> {
    Err(Box::new(BackendResult::skipped(
        spec.to_string(),
        "cpu (burn)",
        "this unet-bench was built without the `burn` feature",
    )))
}

/// Runs every backend on the same inputs and returns the report (not yet written).
pub fn run_suite(cfg: &SuiteConfig) -> Result<Report, BenchError> {
    let (height, width) = model_input_hw(&cfg.model)?;
    let inputs = BenchInputs::load(&cfg.inputs, cfg.slices, height, width)?;
    std::fs::create_dir_all(&cfg.out_dir).map_err(|e| BenchError::io(&cfg.out_dir, e))?;

    let mut specs = cfg.backends.clone();
    if let Some(pos) = specs.iter().position(|s| *s == BackendSpec::RustInt8) {
        let reference = specs.remove(pos);
        specs.insert(0, reference);
    }
    let reference_quant = output_quant(&cfg.model);
    let mut reference: Option<Vec<Vec<i8>>> = None;
    let mut rows: Vec<BackendResult> = Vec::new();
    for spec in &specs {
        tracing::info!(backend = %spec, "running");
        let ctx = SuiteContext {
            protocol: &cfg.protocol,
            inputs: &inputs,
            reference: reference.as_deref(),
            reference_quant,
        };
        let mut row = match make_backend(spec, cfg) {
            Ok(mut backend) => backend.run(&ctx),
            Err(skipped) => *skipped,
        };
        if *spec == BackendSpec::RustInt8
            && row.status == RowStatus::Measured
            && let Some((scale, zero_point)) = reference_quant
        {
            let q: Vec<Vec<i8>> = row
                .outputs
                .iter()
                .map(|o| o.to_int8(scale, zero_point).0)
                .collect();
            // The reference agrees with itself by construction; compute it anyway so the
            // column is filled from the same code path.
            let ctx = SuiteContext {
                protocol: &cfg.protocol,
                inputs: &inputs,
                reference: Some(&q),
                reference_quant,
            };
            let outputs = std::mem::take(&mut row.outputs);
            crate::backend::score_outputs(&mut row, &outputs, &ctx);
            reference = Some(q);
        }
        row.outputs.clear();
        eprintln!("{}", one_line(&row));
        rows.push(row);
    }

    let baseline_median = |name: &str| {
        rows.iter()
            .find(|r| r.backend == name && r.status == RowStatus::Measured)
            .and_then(|r| r.stats.as_ref().map(|s| s.central()))
    };
    let (baseline, base) = match baseline_median(&cfg.baseline) {
        Some(m) => (cfg.baseline.clone(), Some(m)),
        None => ("rust-int8".to_string(), baseline_median("rust-int8")),
    };
    if let Some(base) = base {
        for row in &mut rows {
            if let Some(stats) = &row.stats {
                row.speedup_vs_baseline = Some(base / stats.central());
            }
        }
    }

    let litert_version = litert::find_library(cfg.litert_lib.as_deref())
        .ok()
        .and_then(|p| litert::package_version(&p));
    Ok(Report {
        tool: format!("unet-bench {}", env!("CARGO_PKG_VERSION")),
        command: cfg.command.clone(),
        commit: sys::git_commit(Path::new(env!("CARGO_MANIFEST_DIR")))
            .or_else(|| option_env!("UNET_BENCH_COMMIT").map(str::to_string)),
        created_unix_s: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        machine: MachineInfo::detect(),
        protocol: cfg.protocol.clone(),
        inputs: inputs.description.clone(),
        models: Models {
            int8: cfg.model.display().to_string(),
            float: cfg.float_model.as_ref().map(|p| p.display().to_string()),
            checkpoint: cfg.checkpoint.as_ref().map(|p| p.display().to_string()),
        },
        libraries: Libraries {
            tflite_runtime: env!("CARGO_PKG_VERSION").to_string(),
            ai_edge_litert: litert_version,
            vela: vela::vela_version(&cfg.vela),
        },
        baseline,
        process_peak_rss_mib: sys::peak_rss_mib(),
        layers: crate::layers::model_layers(&cfg.model)
            .ok()
            .and_then(|layers| crate::layers::LayerTable::build(&layers, &rows)),
        vela_sweep: None,
        rows,
    })
}

/// The model files of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Models {
    /// int8 model.
    pub int8: String,
    /// float model.
    pub float: Option<String>,
    /// burn checkpoint.
    pub checkpoint: Option<String>,
}

/// Library versions.
#[derive(Debug, Clone, Serialize)]
pub struct Libraries {
    /// This workspace's version (tflite-runtime and unet-bench share it).
    pub tflite_runtime: String,
    /// The pip package that provided `libLiteRt.so`.
    pub ai_edge_litert: Option<String>,
    /// `vela --version`.
    pub vela: Option<String>,
}

fn one_line(row: &BackendResult) -> String {
    match (&row.status, &row.stats) {
        (RowStatus::Skipped | RowStatus::Failed, _) => {
            format!(
                "{:>24}  {:?}: {}",
                row.backend,
                row.status,
                row.reason.as_deref().unwrap_or("")
            )
        }
        (_, Some(s)) => format!(
            "{:>24}  median {:.3} ms{}",
            row.backend,
            s.central(),
            if row.status == RowStatus::Estimated {
                " (Vela estimate)"
            } else {
                ""
            }
        ),
        _ => format!("{:>24}  {:?}", row.backend, row.status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_specs_parse_and_print() {
        let specs = parse_backends(DEFAULT_BACKENDS).expect("defaults parse");
        assert_eq!(specs.len(), 9);
        for spec in &specs {
            assert_eq!(
                &spec.to_string().parse::<BackendSpec>().expect("round trip"),
                spec
            );
        }
        assert_eq!(
            "litert-f32:GPU".parse::<BackendSpec>().expect("parses"),
            BackendSpec::LiteRt {
                accelerator: Accelerator::Gpu,
                float: true
            }
        );
        for bad in [
            "litert:tpu",
            "vela:",
            "benchmark-model",
            "rust-int4",
            "rust-int8:cpu",
        ] {
            let e = bad.parse::<BackendSpec>().expect_err(bad);
            assert!(e.to_string().contains(bad), "{e}");
        }
    }
}
