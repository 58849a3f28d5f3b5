//! Atomic file writes: write a temporary file in the same directory, sync it, rename it over the
//! target. A crash or a full disk never leaves a half-written artifact under the final name.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::TrainError;

/// Writes `bytes` to `path` atomically.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let io = |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    };
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Creates `dir` (and parents) and checks that a file can be written in it.
pub(crate) fn ensure_writable_dir(dir: &Path) -> Result<(), TrainError> {
    let err = |source| TrainError::OutputNotWritable {
        path: dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(dir).map_err(err)?;
    let probe = dir.join(format!(".write-probe{}", std::process::id()));
    fs::write(&probe, b"ok").map_err(err)?;
    fs::remove_file(&probe).map_err(err)
}
