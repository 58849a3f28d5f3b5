//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can stop a benchmark run (a backend that cannot run on this machine is not
/// an error: it becomes a `skipped` row).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Writing an artifact failed (the error names the file; the old file is unchanged).
    #[error(transparent)]
    Write(#[from] artifact_io::WriteError),
    /// A file could not be read, written or renamed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A model file could not be read or checked.
    #[error("{path}: {source}")]
    Model {
        /// The model file.
        path: PathBuf,
        /// What was wrong with it.
        #[source]
        source: tflite_writer::Error,
    },
    /// Our runtime rejected the model or failed to run it.
    #[error("tflite-runtime: {0}")]
    Runtime(#[from] tflite_runtime::RuntimeError),
    /// An input file is unusable (wrong shape, dtype, or contents).
    #[error("{path}: {problem}")]
    BadInput {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The slice source failed.
    #[error("data: {0}")]
    Data(#[from] unet_data::DataError),
    /// A LiteRT C API call returned a non-zero status.
    #[error("LiteRT {call} returned status {status} ({name})")]
    LiteRt {
        /// The C function.
        call: &'static str,
        /// The `LiteRtStatus` value.
        status: i32,
        /// Its symbolic name.
        name: &'static str,
    },
    /// A shared library or one of its symbols could not be loaded.
    #[error("cannot load {path}: {source}")]
    DynamicLoad {
        /// The library.
        path: PathBuf,
        /// The loader's error.
        #[source]
        source: libloading::Error,
    },
    /// An external tool (Vela, benchmark_model, ssh) failed or printed something unparsable.
    #[error("{tool}: {problem}")]
    Tool {
        /// The tool.
        tool: String,
        /// What went wrong.
        problem: String,
    },
    /// A `--backend` specification could not be parsed.
    #[error("bad backend {spec:?}: {problem}")]
    BadSpec {
        /// The specification as given.
        spec: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The model's inputs or outputs are not what a U-Net bench can drive.
    #[error("{path}: {problem}")]
    UnsupportedModel {
        /// The model.
        path: PathBuf,
        /// The problem.
        problem: String,
    },
    /// The burn model could not be loaded or run.
    #[cfg(feature = "burn")]
    #[error("burn: {0}")]
    Train(#[from] unet_train::TrainError),
    /// JSON serialisation failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl BenchError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BenchError::Io {
            path: path.into(),
            source,
        }
    }

    /// A failed external tool.
    pub fn tool(tool: impl Into<String>, problem: impl Into<String>) -> Self {
        BenchError::Tool {
            tool: tool.into(),
            problem: problem.into(),
        }
    }
}
