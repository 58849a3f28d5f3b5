//! The atomic writer against the cases that lost artifacts before it existed: symlinks and
//! devices replaced, temporaries left by failed or killed writers, partial sets of outputs.

use std::fs;
use std::io;
use std::path::Path;

use artifact_io::{
    Staged, WriteError, check_replaceable, clean_stale_temporaries, is_temporary_name,
    write_atomic, write_atomic_with,
};

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn writes_and_replaces_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/model.tflite");
    write_atomic(&path, b"one").unwrap();
    write_atomic(&path, b"two").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"two");
    assert_eq!(names(&dir.path().join("sub")), ["model.tflite"]);
}

#[cfg(unix)]
#[test]
fn refuses_to_replace_a_symlink_and_leaves_it() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.npy");
    fs::write(&real, b"keep").unwrap();
    let link = dir.path().join("link.npy");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let err = write_atomic(&link, b"new").unwrap_err();
    assert!(matches!(err, WriteError::NotARegularFile { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("link.npy") && msg.contains("symbolic link"),
        "{msg}"
    );
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(&real).unwrap(), b"keep");
    assert_eq!(names(dir.path()), ["link.npy", "real.npy"]);
}

#[cfg(unix)]
#[test]
fn refuses_a_device_such_as_dev_null() {
    let err = check_replaceable(Path::new("/dev/null")).unwrap_err();
    assert!(err.to_string().contains("/dev/null"), "{err}");
    assert!(err.to_string().contains("character device"), "{err}");
    let err = write_atomic(Path::new("/dev/null"), b"x").unwrap_err();
    assert!(matches!(err, WriteError::NotARegularFile { .. }), "{err}");
    assert!(
        fs::symlink_metadata("/dev/null")
            .map(|m| !m.file_type().is_file())
            .unwrap_or(true)
    );
}

#[test]
fn refuses_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("out.json")).unwrap();
    let err = write_atomic(&dir.path().join("out.json"), b"{}").unwrap_err();
    assert!(err.to_string().contains("a directory"), "{err}");
}

#[test]
fn a_failed_write_leaves_the_old_file_and_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    fs::write(&path, b"old").unwrap();
    let err = write_atomic_with(&path, |w| {
        w.write_all(b"half")?;
        Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
    })
    .unwrap_err();
    assert!(err.to_string().contains("report.json"), "{err}");
    assert!(err.to_string().contains("disk full"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"old");
    assert_eq!(names(dir.path()), ["report.json"]);
}

#[test]
fn staged_files_change_nothing_until_commit_and_vanish_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.tflite");
    let b = dir.path().join("b.json");
    fs::write(&a, b"old a").unwrap();
    fs::write(&b, b"old b").unwrap();
    {
        let mut staged = Staged::new();
        let tmp = staged.write(&a, b"new a").unwrap();
        assert_eq!(fs::read(&tmp).unwrap(), b"new a");
        staged.write(&b, b"new b").unwrap();
        assert_eq!(fs::read(&a).unwrap(), b"old a");
        // Dropped: a late check failed.
    }
    assert_eq!(names(dir.path()), ["a.tflite", "b.json"]);
    assert_eq!(fs::read(&a).unwrap(), b"old a");

    let mut staged = Staged::new();
    staged.write(&a, b"new a").unwrap();
    staged.write(&b, b"new b").unwrap();
    staged.commit().unwrap();
    assert_eq!(fs::read(&a).unwrap(), b"new a");
    assert_eq!(fs::read(&b).unwrap(), b"new b");
    assert_eq!(names(dir.path()), ["a.tflite", "b.json"]);
}

#[cfg(unix)]
#[test]
fn a_staged_commit_with_one_bad_target_changes_none() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.tflite");
    let b = dir.path().join("b.json");
    fs::write(&a, b"old a").unwrap();
    let mut staged = Staged::new();
    staged.write(&a, b"new a").unwrap();
    staged.write(&b, b"new b").unwrap();
    // The target turns into a symlink between staging and commit.
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let err = staged.commit().unwrap_err();
    assert!(err.to_string().contains("b.json"), "{err}");
    assert_eq!(fs::read(&a).unwrap(), b"old a");
    assert_eq!(names(dir.path()), ["a.tflite", "b.json"]);
}

#[test]
fn stale_temporaries_of_dead_processes_are_removed_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    // A process id that certainly ran and ended.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = format!(".last.ckpt.partial-{dead}-0");
    let ours = format!(".model.ckpt.partial-{}-7", std::process::id());
    for name in [
        stale.as_str(),
        ours.as_str(),
        "model.ckpt",
        ".last.ckpt.tmp123",
        "notes.partial-1-1",
    ] {
        fs::write(dir.path().join(name), b"x").unwrap();
    }
    assert!(is_temporary_name(&stale));
    let removed = clean_stale_temporaries(dir.path()).unwrap();
    assert_eq!(removed, [dir.path().join(&stale)]);
    let mut expected = vec![
        ".last.ckpt.tmp123".to_string(),
        ours.clone(),
        "model.ckpt".into(),
        "notes.partial-1-1".into(),
    ];
    expected.sort();
    assert_eq!(names(dir.path()), expected);
    assert!(
        clean_stale_temporaries(&dir.path().join("missing"))
            .unwrap()
            .is_empty()
    );
}
