//! Killed runs: `train`, `quantize` and `bench` killed (SIGKILL, no chance to clean up) at
//! several moments leave the previous artifacts loadable and byte-for-byte as they were, and
//! the next run removes the temporaries they left.

#![cfg(unix)]

use std::path::Path;
use std::process::Stdio;

mod common;
use common::{TINY_TRAIN, ok, with, xtask};
use std::time::{Duration, Instant};

/// Starts `args`, kills it with SIGKILL after `after`, and returns whether it was still running
/// (a kill that came too late proves nothing and is reported as such).
fn kill_after(args: &[&str], after: Duration) -> bool {
    let mut child = xtask()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    while start.elapsed() < after {
        if child.try_wait().expect("wait").is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("kill");
    child.wait().expect("reap");
    true
}

fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").map(Result::unwrap) {
            let path = e.path();
            if e.file_type().unwrap().is_dir() {
                if path.file_name().is_some_and(|n| n != "quant_checks") {
                    stack.push(path);
                }
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn temporaries(dir: &Path) -> Vec<String> {
    files(dir)
        .into_keys()
        .filter(|rel| {
            Path::new(rel)
                .file_name()
                .is_some_and(|n| artifact_io::is_temporary_name(&n.to_string_lossy()))
        })
        .collect()
}

fn artifacts_without_temporaries(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let temps = temporaries(dir);
    files(dir)
        .into_iter()
        .filter(|(k, _)| !temps.contains(k))
        .collect()
}

#[test]
fn killed_runs_keep_the_previous_artifacts_and_the_next_run_cleans_up() {
    let root = tempfile::tempdir().expect("tempdir");
    let out = root.path().display().to_string();
    let train_dir = root.path().join("train").display().to_string();
    let ckpt = root.path().join("train/model.ckpt").display().to_string();
    let int8 = root.path().join("unet_int8.tflite").display().to_string();
    let fp32 = root.path().join("unet_fp32.tflite").display().to_string();
    let bench_dir = root.path().join("bench").display().to_string();
    let train = with(
        &with(&["train", "--out", &train_dir], &TINY_TRAIN)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &["--epochs", "3", "--steps-per-epoch", "2"],
    );
    let train: Vec<&str> = train.iter().map(String::as_str).collect();
    let quantize: Vec<&str> = vec![
        "quantize",
        "--checkpoint",
        &ckpt,
        "--out",
        &out,
        "--calib-samples",
        "8",
        "--eval-samples",
        "4",
        "--method",
        "auto",
    ];
    let bench: Vec<&str> = vec![
        "bench",
        "--model",
        &int8,
        "--float-model",
        &fp32,
        "--checkpoint",
        &ckpt,
        "--backends=rust-int8,rust-f32,burn-f32",
        "--runs",
        "20",
        "--warmup",
        "2",
        "--slices",
        "4",
        "--out",
        &bench_dir,
    ];
    // Each command's clean run is timed, and the kills land at fractions of that time, so
    // they hit a running command on a slow machine and on a fast one alike.
    let timed = |args: &[&str]| {
        let start = Instant::now();
        ok(args);
        start.elapsed()
    };
    let mut overwrite = train.clone();
    overwrite.push("--overwrite");
    let train_time = timed(&train);
    let quantize_time = timed(&quantize);
    let bench_time = timed(&bench);
    let before = files(root.path());

    let mut killed = 0;
    let mut attempts = 0;
    for (args, label, took) in [
        (&overwrite, "train", train_time),
        (&quantize, "quantize", quantize_time),
        (&bench, "bench", bench_time),
    ] {
        for fraction in [0.02, 0.1, 0.3, 0.55, 0.8] {
            let after = took.mul_f64(fraction);
            let ms = after.as_millis();
            attempts += 1;
            if kill_after(args, after) {
                killed += 1;
            }
            let now = artifacts_without_temporaries(root.path());
            if *label == *"train" {
                // A killed --overwrite run may have replaced the checkpoints with complete ones
                // of its own; whatever is there must be whole and load.
                let device = unet_train::BackendKind::Flex.device().expect("flex");
                unet_train::load_model(&root.path().join("train/model.ckpt"), &device)
                    .unwrap_or_else(|e| panic!("{label} killed after {ms} ms: {e}"));
            } else {
                assert_eq!(
                    now.keys().collect::<Vec<_>>(),
                    before.keys().collect::<Vec<_>>(),
                    "{label} killed after {ms} ms"
                );
                for (k, v) in &now {
                    if k.starts_with("train/") {
                        continue;
                    }
                    let changed = before.get(k) != Some(v);
                    // A kill after the commit leaves the new, complete set: accept a changed
                    // file only when it still reads as what it is.
                    if changed && k.ends_with(".tflite") {
                        tflite_writer::read_model_file(&root.path().join(k))
                            .unwrap_or_else(|e| panic!("{label} killed after {ms} ms: {e}"));
                    } else if changed && k.ends_with(".json") {
                        serde_json::from_slice::<serde_json::Value>(v)
                            .unwrap_or_else(|e| panic!("{label} killed after {ms} ms: {k}: {e}"));
                    }
                }
            }
        }
    }
    eprintln!(
        "{killed} of {attempts} kills hit a running command (clean runs: train {train_time:?}, \
         quantize {quantize_time:?}, bench {bench_time:?})"
    );
    // A clean run can be faster than the timed one (warm caches), so a late kill may miss;
    // most must land, or the test proved nothing.
    assert!(
        killed * 3 >= attempts * 2,
        "only {killed} of {attempts} kills hit a running command \
         (clean runs took train {train_time:?}, quantize {quantize_time:?}, bench {bench_time:?})"
    );

    // The next run of each command removes what the killed ones left.
    ok(&overwrite);
    ok(&quantize);
    ok(&bench);
    assert_eq!(temporaries(root.path()), Vec::<String>::new());
}
