//! Captures what native libraries write straight to file descriptor 2.
//!
//! LiteRT (and the WebGPU/Vulkan stack behind its GPU accelerator, or a vendor's NPU dispatch
//! library) prints its own error lines to fd 2 while an environment or compiled model is
//! created, bypassing Rust's `std::io::stderr` and the log filter. [`capture`] points fd 2 at
//! an unlinked temporary file for the duration of one call, restores it afterwards (also when
//! the call panics), and returns what was written, so that the caller can put those lines into
//! a row's reason instead of the terminal.
//!
//! fd 2 belongs to the whole process: anything another thread writes to stderr during a
//! capture lands in the capture too. Captures are serialised by a process-wide lock, so two
//! of them never interleave their redirections.

/// Runs `f` with fd 2 redirected and returns its result and what was written to fd 2 meanwhile
/// (lossy UTF-8, at most [`MAX_BYTES`]). Where the redirection cannot be set up (no temporary
/// directory, no free descriptor, not a Unix system) `f` runs with fd 2 untouched and the text
/// is empty.
pub(crate) fn capture<T>(f: impl FnOnce() -> T) -> (T, String) {
    imp::capture(f)
}

/// The most bytes of captured output kept.
pub(crate) const MAX_BYTES: u64 = 64 * 1024;

/// The most lines [`summarize`] keeps.
const MAX_LINES: usize = 12;

/// The captured text as one line for a report: blank lines dropped, repeated lines kept once,
/// at most [`MAX_LINES`] lines joined with ` | `; `None` when nothing was written.
pub(crate) fn summarize(text: &str) -> Option<String> {
    let mut lines: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    if lines.is_empty() {
        return None;
    }
    let omitted = lines.len().saturating_sub(MAX_LINES);
    lines.truncate(MAX_LINES);
    let mut joined = lines.join(" | ");
    if omitted > 0 {
        joined.push_str(&format!(" | … ({omitted} more lines)"));
    }
    Some(joined)
}

#[cfg(unix)]
mod imp {
    use std::fs::File;
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, PoisonError};

    use super::MAX_BYTES;

    /// Serialises captures: fd 2 is process-wide, and two overlapping captures would restore
    /// each other's temporary file as "the original" stderr.
    static LOCK: Mutex<()> = Mutex::new(());

    /// fd 2 pointed elsewhere; dropping it points fd 2 back at the original.
    struct Redirect {
        /// A duplicate of the original fd 2.
        saved: OwnedFd,
    }

    /// A new, already unlinked, temporary file.
    fn anonymous_file() -> std::io::Result<File> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "unet-bench-stderr-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        // The open descriptor keeps the data; nothing is left behind on any exit path.
        std::fs::remove_file(&path)?;
        Ok(file)
    }

    /// Flushes what C's stdio and Rust buffered for the current fd 2 before it changes.
    fn flush_all() {
        let _ = std::io::stderr().flush();
        // SAFETY: `fflush(NULL)` flushes every open output stream of the C library; it takes
        // no pointer of ours and is valid at any time.
        unsafe {
            libc::fflush(std::ptr::null_mut());
        }
    }

    impl Redirect {
        /// Points fd 2 at `file`.
        fn start(file: &File) -> Option<Self> {
            flush_all();
            // SAFETY: `dup` only reads the descriptor table; fd 2 may be closed, which makes
            // it fail with -1 (checked).
            let saved = unsafe { libc::dup(libc::STDERR_FILENO) };
            if saved < 0 {
                return None;
            }
            // SAFETY: `saved` is a fresh descriptor returned by `dup` that nothing else owns.
            let saved = unsafe { OwnedFd::from_raw_fd(saved) };
            // SAFETY: both descriptors are open (`file` and fd 2, just duplicated); on failure
            // fd 2 is unchanged and `saved` is closed by its drop.
            if unsafe { libc::dup2(file.as_raw_fd(), libc::STDERR_FILENO) } < 0 {
                return None;
            }
            Some(Self { saved })
        }
    }

    impl Drop for Redirect {
        fn drop(&mut self) {
            flush_all();
            // SAFETY: `saved` is open (owned by `self`) and still refers to the original
            // stderr; `dup2` atomically points fd 2 back at it. `saved` itself is closed
            // right after, by its own drop.
            unsafe {
                libc::dup2(self.saved.as_raw_fd(), libc::STDERR_FILENO);
            }
        }
    }

    pub(super) fn capture<T>(f: impl FnOnce() -> T) -> (T, String) {
        let _guard = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let Ok(mut file) = anonymous_file() else {
            return (f(), String::new());
        };
        let Some(redirect) = Redirect::start(&file) else {
            return (f(), String::new());
        };
        // A panic in `f` unwinds through `redirect`'s drop, which restores fd 2.
        let value = f();
        drop(redirect);
        let mut bytes = Vec::new();
        let read = file
            .seek(SeekFrom::Start(0))
            .and_then(|_| file.take(MAX_BYTES).read_to_end(&mut bytes));
        if read.is_err() {
            bytes.clear();
        }
        (value, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[cfg(test)]
    mod tests {
        use super::capture;
        use std::sync::{Mutex, PoisonError};

        /// These tests read which file fd 2 is before and after a capture: run one at a time,
        /// or one test's reading lands inside the other's redirect.
        static SERIAL: Mutex<()> = Mutex::new(());

        /// Writes straight to fd 2, as a C library does (bypassing Rust's stderr handle and
        /// the test harness's output capture).
        fn raw_write_fd2(text: &str) {
            // SAFETY: the pointer and length describe `text`, which outlives the call.
            let n = unsafe { libc::write(libc::STDERR_FILENO, text.as_ptr().cast(), text.len()) };
            assert_eq!(n, text.len() as isize);
        }

        /// The file fd 2 refers to, as (device, inode).
        fn fd2_identity() -> (libc::dev_t, libc::ino_t) {
            // SAFETY: `stat` is a plain C struct for which all-zero bytes are valid.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: `st` is a live, writable `stat`.
            assert_eq!(unsafe { libc::fstat(libc::STDERR_FILENO, &mut st) }, 0);
            (st.st_dev, st.st_ino)
        }

        #[test]
        fn captures_native_writes_and_restores_fd2() {
            let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
            let before = fd2_identity();
            let (value, text) = capture(|| {
                raw_write_fd2("ERROR: no GPU adapter\nsecond line\n");
                7
            });
            assert_eq!(value, 7);
            assert_eq!(text, "ERROR: no GPU adapter\nsecond line\n");
            assert_eq!(fd2_identity(), before, "fd 2 was not restored");
            // A second capture starts empty.
            let ((), text) = capture(|| ());
            assert_eq!(text, "");
        }

        #[test]
        fn fd2_is_restored_when_the_call_panics() {
            let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
            let before = fd2_identity();
            let result = std::panic::catch_unwind(|| capture(|| panic!("inside the capture")));
            assert!(result.is_err());
            assert_eq!(
                fd2_identity(),
                before,
                "fd 2 was not restored after a panic"
            );
        }
    }
}

#[cfg(not(unix))]
mod imp {
    pub(super) fn capture<T>(f: impl FnOnce() -> T) -> (T, String) {
        (f(), String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::summarize;

    #[test]
    fn summary_drops_blanks_and_repeats_and_caps_the_lines() {
        assert_eq!(summarize(""), None);
        assert_eq!(summarize("\n  \n"), None);
        assert_eq!(
            summarize("a\n\nb\na\n  c  \n").as_deref(),
            Some("a | b | c")
        );
        let many: String = (0..20).map(|i| format!("line {i}\n")).collect();
        let s = summarize(&many).expect("lines");
        assert!(s.starts_with("line 0 | line 1"), "{s}");
        assert!(s.ends_with("… (8 more lines)"), "{s}");
    }
}
