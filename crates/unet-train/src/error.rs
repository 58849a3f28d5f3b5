//! The crate's one error type. Variants about files name the file.

use std::path::PathBuf;

fn last_good_note(last_good: &Option<PathBuf>) -> String {
    match last_good {
        Some(path) => format!(", the last good checkpoint is {}", path.display()),
        None => ", no checkpoint was written yet".to_string(),
    }
}

/// Everything that can go wrong while building, training, checkpointing or exporting the U-Net.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A configuration value is out of range (the message says which and why).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The data source failed (its error names the file).
    #[error(transparent)]
    Data(#[from] unet_data::DataError),
    /// The requested backend was not compiled in.
    #[error("backend `{backend}` is not compiled in: rebuild with `--features {feature}`")]
    BackendNotCompiled {
        /// The backend asked for.
        backend: &'static str,
        /// The cargo feature of `unet-train` that enables it.
        feature: &'static str,
    },
    /// A fresh run was started in a directory that already holds a run's checkpoints.
    #[error(
        "{dir}: already holds a training run ({existing} exists); continue it with --resume, start over with --overwrite, or choose another --out"
    )]
    RunDirInUse {
        /// The output directory.
        dir: PathBuf,
        /// The checkpoint found there.
        existing: PathBuf,
    },
    /// The output directory cannot be created or written.
    #[error("{path}: output directory is not writable: {source}")]
    OutputNotWritable {
        /// The directory.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing an artifact failed (the error names the file; the old file is unchanged).
    #[error(transparent)]
    Write(#[from] artifact_io::WriteError),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The checkpoint file does not start with the checkpoint magic or fails its checksum.
    #[error("{path}: corrupt checkpoint: {reason}")]
    CorruptCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The checkpoint file ends before its declared contents.
    #[error("{path}: truncated checkpoint: needs at least {needed} bytes, the file has {actual}")]
    TruncatedCheckpoint {
        /// The file.
        path: PathBuf,
        /// Bytes the header declares.
        needed: u64,
        /// Bytes present.
        actual: u64,
    },
    /// The checkpoint was made for a different model than the one requested.
    #[error(
        "{path}: checkpoint is for a different model: it has {found}, this run asks for {expected}"
    )]
    CheckpointMismatch {
        /// The file.
        path: PathBuf,
        /// The checkpoint's model, e.g. `fms=8 size=64 upsampling=transposed_conv`.
        found: String,
        /// The requested model.
        expected: String,
    },
    /// burn could not decode or apply the stored weights.
    #[error("{path}: cannot load the weights: {message}")]
    Record {
        /// The file.
        path: PathBuf,
        /// burn's message.
        message: String,
    },
    /// The loss became NaN or infinite; training stopped.
    #[error(
        "loss is {loss} at step {step} (epoch {epoch}, batch {batch}); training stopped{}",
        last_good_note(.last_good)
    )]
    NonFiniteLoss {
        /// Global step (1-based) at which the loss was not finite.
        step: u64,
        /// Epoch (1-based).
        epoch: usize,
        /// Batch within the epoch (1-based).
        batch: usize,
        /// The loss value.
        loss: f32,
        /// The last checkpoint written before it, kept untouched.
        last_good: Option<PathBuf>,
    },
    /// A JSON file could not be encoded or decoded.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// The model cannot be exported (e.g. a weight tensor could not be read back).
    #[error("export failed: {0}")]
    Export(String),
}
