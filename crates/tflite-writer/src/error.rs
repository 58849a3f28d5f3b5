//! The crate's one error type, shared by the writer, the reader and the model checks.

use std::path::PathBuf;

/// Everything that can go wrong while checking, writing or reading a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    /// A model file failed to parse; `source` says why.
    #[error("{path}: {source}")]
    InFile {
        /// The file.
        path: PathBuf,
        /// What was wrong with its contents.
        #[source]
        source: Box<Error>,
    },
    /// The bytes are too short to hold a flatbuffer with a file identifier.
    #[error("not a TFLite model: {len} bytes is too short")]
    TooShort {
        /// Length of the input.
        len: usize,
    },
    /// The file identifier at bytes 4..8 is not `TFL3`.
    #[error("not a TFLite model: file identifier is {found:?}, expected \"TFL3\"")]
    BadIdentifier {
        /// The four bytes found (lossily decoded).
        found: String,
    },
    /// The flatbuffers verifier rejected the bytes.
    #[error("malformed flatbuffer: {0}")]
    Flatbuffer(#[from] flatbuffers::InvalidFlatbuffer),
    /// `Model.version` is not 3.
    #[error("unsupported TFLite schema version {0} (expected 3)")]
    SchemaVersion(u32),
    /// The model parsed but is inconsistent (an index out of range, a buffer of the wrong size,
    /// quantization arrays of different lengths, …).
    #[error("invalid model: {at}: {problem}")]
    Invalid {
        /// Where: e.g. `subgraph 0 tensor 3 "conv/weights"`.
        at: String,
        /// What is wrong.
        problem: String,
    },
    /// The IR holds something the writer cannot serialise faithfully.
    #[error("cannot write model: {at}: {problem}")]
    Unwritable {
        /// Where: e.g. `subgraph 0 operator 2 (MEAN)`.
        at: String,
        /// What cannot be written.
        problem: String,
    },
}

/// Errors of [`crate::read_model`] and [`crate::read_model_file`].
pub type ReadError = Error;
/// Errors of [`crate::write_model`] and [`crate::write_model_file`].
pub type WriteError = Error;

/// Shorthand for an [`Error::Invalid`].
pub(crate) fn invalid(at: impl Into<String>, problem: impl Into<String>) -> Error {
    Error::Invalid {
        at: at.into(),
        problem: problem.into(),
    }
}
