//! The output directory check of a run (the writes themselves go through `artifact_io`).

use std::path::Path;

use crate::TrainError;

/// Creates `dir` (and parents) and checks that a file can be written in it.
pub(crate) fn ensure_writable_dir(dir: &Path) -> Result<(), TrainError> {
    artifact_io::ensure_writable_dir(dir).map_err(|e| TrainError::OutputNotWritable {
        path: dir.to_path_buf(),
        source: match e {
            artifact_io::WriteError::Io { source, .. } => source,
            other => std::io::Error::other(other.to_string()),
        },
    })
}
