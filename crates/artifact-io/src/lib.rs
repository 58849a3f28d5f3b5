//! Writing the artifacts of a run so that no reader ever sees half a file.
//!
//! Every file the workspace produces (models, checkpoints, reports, charts, arrays) goes through
//! [`write_atomic`]: the bytes go to a temporary file in the target's directory, are synced to
//! disk, and the temporary is renamed over the target, after which the directory is synced too.
//! A crash, a kill or a full disk leaves either the old file or the new one, never a mix.
//!
//! Rules this crate adds on top of the rename:
//! - the target must be absent or a regular file: a symbolic link, a device (`/dev/null`), a FIFO
//!   or a directory is refused with [`WriteError::NotARegularFile`], because renaming over it
//!   would replace the link or device node itself;
//! - temporaries are named `.<file name>.partial-<pid>-<n>`; [`clean_stale_temporaries`] removes
//!   those of processes that no longer run (and only those: nothing else is ever deleted);
//! - [`Staged`] writes several files and commits them together, so a command whose late check
//!   fails leaves all of its earlier outputs as they were.

#![warn(missing_docs)]

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The marker between a target's name and the writer's process id in a temporary's name.
const PARTIAL_MARKER: &str = ".partial-";

/// Why an artifact could not be written. Every variant names the target path.
#[derive(Debug)]
pub enum WriteError {
    /// The target exists and is not a regular file (a symlink, device, FIFO or directory).
    NotARegularFile {
        /// The target.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// The target path has no file name (`/`, `..`, an empty path).
    NoFileName {
        /// The target.
        path: PathBuf,
    },
    /// Creating, writing, syncing or renaming failed.
    Io {
        /// The target.
        path: PathBuf,
        /// The operation that failed.
        op: &'static str,
        /// The cause.
        source: io::Error,
    },
}

impl WriteError {
    /// The target path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            WriteError::NotARegularFile { path, .. }
            | WriteError::NoFileName { path }
            | WriteError::Io { path, .. } => path,
        }
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::NotARegularFile { path, kind } => write!(
                f,
                "{}: is {kind}, not a regular file; refusing to replace it (choose another output path)",
                path.display()
            ),
            WriteError::NoFileName { path } => {
                write!(f, "{}: output path has no file name", path.display())
            }
            WriteError::Io { path, op, source } => {
                write!(f, "{}: cannot {op}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WriteError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<WriteError> for io::Error {
    fn from(err: WriteError) -> io::Error {
        let kind = match &err {
            WriteError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, err.to_string())
    }
}

/// The directory a target lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Checks that `path` is absent or a regular file, so renaming over it replaces only a file.
///
/// `Ok(())` when the target may be written. This is the check [`write_atomic`] makes first; call
/// it early to refuse a bad output path before hours of work.
pub fn check_replaceable(path: &Path) -> Result<(), WriteError> {
    if path.file_name().is_none() {
        return Err(WriteError::NoFileName {
            path: path.to_path_buf(),
        });
    }
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(WriteError::Io {
            path: path.to_path_buf(),
            op: "inspect the existing file",
            source,
        }),
        Ok(meta) => {
            let ft = meta.file_type();
            let kind = if ft.is_file() {
                return Ok(());
            } else if ft.is_symlink() {
                "a symbolic link"
            } else if ft.is_dir() {
                "a directory"
            } else {
                special_kind(&ft)
            };
            Err(WriteError::NotARegularFile {
                path: path.to_path_buf(),
                kind,
            })
        }
    }
}

#[cfg(unix)]
fn special_kind(ft: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_ft: &fs::FileType) -> &'static str {
    "a special file"
}

/// A fresh temporary name next to `path`: `.<name>.partial-<pid>-<n>`.
fn temporary_for(path: &Path) -> Result<PathBuf, WriteError> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| WriteError::NoFileName {
        path: path.to_path_buf(),
    })?;
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!("{PARTIAL_MARKER}{}-{n}", std::process::id()));
    Ok(parent_dir(path).join(tmp))
}

/// Syncs a directory so that a rename inside it survives a power loss (best effort: not every
/// platform or file system can open a directory for syncing).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes a temporary next to `path` with `fill`, syncs it, and returns its path. The temporary
/// is removed again on any error.
fn write_temporary(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<PathBuf, WriteError> {
    check_replaceable(path)?;
    let dir = parent_dir(path);
    fs::create_dir_all(dir).map_err(|source| WriteError::Io {
        path: path.to_path_buf(),
        op: "create its directory",
        source,
    })?;
    let tmp = temporary_for(path)?;
    let result = (|| -> Result<(), (&'static str, io::Error)> {
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| ("create a temporary file", e))?;
        let mut writer = io::BufWriter::new(file);
        fill(&mut writer).map_err(|e| ("write", e))?;
        let file = writer.into_inner().map_err(|e| ("write", e.into_error()))?;
        file.sync_all().map_err(|e| ("sync", e))
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err((op, source)) => {
            let _ = fs::remove_file(&tmp);
            Err(WriteError::Io {
                path: path.to_path_buf(),
                op,
                source,
            })
        }
    }
}

/// Renames a finished temporary over `path` (re-checking the target first), syncing the directory.
fn commit_temporary(tmp: &Path, path: &Path) -> Result<(), WriteError> {
    let result = check_replaceable(path).and_then(|()| {
        fs::rename(tmp, path).map_err(|source| WriteError::Io {
            path: path.to_path_buf(),
            op: "rename the finished temporary file into place",
            source,
        })
    });
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    } else {
        sync_dir(parent_dir(path));
    }
    result
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename, directory fsync).
///
/// Creates missing parent directories. Refuses a target that exists and is not a regular file.
/// On any error the target is unchanged and the temporary file is gone.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Like [`write_atomic`], with the content streamed by `fill` (for large artifacts that are
/// serialised piece by piece).
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), WriteError> {
    let tmp = write_temporary(path, fill)?;
    commit_temporary(&tmp, path)
}

/// Several artifacts written now and put in place together by [`Staged::commit`].
///
/// Nothing under the final names changes until `commit`; dropping a `Staged` without committing
/// (an error, a failed check) removes its temporaries. Use it when a command writes a set of
/// files that must match each other (a model and its report) and runs checks on the new files
/// before they replace the old ones.
#[derive(Debug, Default)]
pub struct Staged {
    entries: Vec<(PathBuf, PathBuf)>,
}

impl Staged {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `bytes` to a temporary next to `path` and returns the temporary's path, which
    /// checks may read before the commit.
    pub fn write(&mut self, path: &Path, bytes: &[u8]) -> Result<PathBuf, WriteError> {
        let tmp = write_temporary(path, |w| w.write_all(bytes))?;
        self.entries.push((tmp.clone(), path.to_path_buf()));
        Ok(tmp)
    }

    /// The temporaries and their final paths, in the order they were written.
    pub fn entries(&self) -> impl Iterator<Item = (&Path, &Path)> {
        self.entries.iter().map(|(t, p)| (t.as_path(), p.as_path()))
    }

    /// Renames every temporary into place, in the order written. Every target is checked before
    /// the first rename, so a bad target leaves all of them unchanged.
    pub fn commit(mut self) -> Result<(), WriteError> {
        for (_, path) in &self.entries {
            check_replaceable(path)?;
        }
        let entries = std::mem::take(&mut self.entries);
        let mut first_error = None;
        for (tmp, path) in entries {
            if first_error.is_some() {
                let _ = fs::remove_file(&tmp);
                continue;
            }
            if let Err(e) = commit_temporary(&tmp, &path) {
                first_error = Some(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for (tmp, _) in self.entries.drain(..) {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Creates `dir` (and its parents) and proves a file can be created in it, so a long run fails
/// at its start, not at its first artifact. The probe file follows the temporaries' pattern and
/// is removed again, also when writing it fails (a full disk).
pub fn ensure_writable_dir(dir: &Path) -> Result<(), WriteError> {
    let err = |op, source| WriteError::Io {
        path: dir.to_path_buf(),
        op,
        source,
    };
    fs::create_dir_all(dir).map_err(|e| err("create the output directory", e))?;
    let probe = temporary_for(&dir.join("write-probe"))?;
    let result = File::options()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut f| f.write_all(b"ok"));
    let _ = fs::remove_file(&probe);
    result.map_err(|e| err("write a file in the output directory", e))
}

/// The process id in a temporary's name, if `name` follows this crate's pattern
/// (`.<file>.partial-<pid>-<n>`).
fn temporary_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (target, tail) = rest.rsplit_once(PARTIAL_MARKER)?;
    if target.is_empty() {
        return None;
    }
    let (pid, n) = tail.split_once('-')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process with this id runs now. Where that cannot be known (no `/proc`), only this
/// process counts as running.
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    proc.is_dir() && proc.join(pid.to_string()).exists()
}

/// Removes the temporaries that killed runs left in `dir`: files named by this crate's pattern
/// (`.<file>.partial-<pid>-<n>`) whose process no longer runs. Nothing else is touched; a
/// missing directory is not an error. Returns the paths removed.
pub fn clean_stale_temporaries(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temporary_owner) else {
            continue;
        };
        if process_alive(pid) || !entry.file_type()?.is_file() {
            continue;
        }
        let path = entry.path();
        match fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// Whether `name` is a temporary of this crate's pattern (for tests and listings that must
/// ignore in-flight files).
pub fn is_temporary_name(name: &str) -> bool {
    temporary_owner(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_round_trip() {
        let tmp = temporary_for(Path::new("dir/model.ckpt")).unwrap();
        let name = tmp.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(".model.ckpt.partial-"), "{name}");
        assert_eq!(temporary_owner(name), Some(std::process::id()));
        assert!(is_temporary_name(name));
        for other in [
            "model.ckpt",
            ".model.ckpt.tmp123",
            ".partial-12-3",
            ".x.partial-12-",
            ".x.partial-ab-1",
            ".x.partial-12-1a",
        ] {
            assert_eq!(temporary_owner(other), None, "{other}");
        }
    }
}
