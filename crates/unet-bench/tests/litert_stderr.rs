//! What LiteRT's GPU/NPU accelerators print to stderr while they fail to load (WebGPU,
//! Vulkan, dispatch-library errors) goes into the row's reason, not onto the terminal.
//!
//! The check needs the process's real fd 2, which the test harness does not capture for
//! native code: the test re-runs itself as a child process, which runs the suite through the
//! bench API, and the parent reads the child's stderr and its report.

use std::path::Path;
use std::process::{Command, Stdio};

use clap::Parser;
use unet_bench::backends::litert::find_library;
use unet_bench::cli::BenchArgs;

/// Set in the child: the output directory of its report.
const CHILD_OUT: &str = "UNET_BENCH_LITERT_STDERR_CHILD_OUT";
const TEST_NAME: &str = "gpu_and_npu_errors_go_into_the_row_not_onto_stderr";
const BACKENDS: [&str; 2] = ["litert:gpu", "litert:npu"];

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

/// The child: the LiteRT GPU and NPU rows on a tiny model, report into `out`.
fn child(out: &Path) {
    let argv = [
        "unet-bench",
        "--synth",
        "--synth-fms",
        "4",
        "--synth-size",
        "32",
        "--warmup",
        "1",
        "--runs",
        "2",
        "--slices",
        "1",
        "--no-progress",
        "--backends",
        // rust-int8 gives the suite one measured row (a run where nothing is measured is an error).
        &format!("rust-int8,{}", BACKENDS.join(",")),
        "--out",
    ]
    .map(String::from)
    .into_iter()
    .chain([out.display().to_string()]);
    let args = Cli::parse_from(argv).bench;
    unet_bench::cli::run(&args, vec!["test".into()]).expect("suite runs");
}

#[test]
fn gpu_and_npu_errors_go_into_the_row_not_onto_stderr() {
    if let Some(out) = std::env::var_os(CHILD_OUT) {
        child(Path::new(&out));
        return;
    }
    if litert_oracle::require("libLiteRt.so (pip ai-edge-litert)", find_library(None)).is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("bench");
    // Without --nocapture the harness keeps the child's own Rust output (the suite's row
    // lines) off its stderr; only what native code writes to fd 2 reaches it.
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args([TEST_NAME, "--exact", "--test-threads=1"])
        .env(CHILD_OUT, &out)
        .stdin(Stdio::null())
        .output()
        .expect("child runs");
    let stderr = String::from_utf8_lossy(&child.stderr);
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success(),
        "child failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("report.json")).expect("report.json"),
    )
    .expect("json");
    let rows = report["rows"].as_array().expect("rows");
    let unexpected: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        unexpected.is_empty(),
        "native output reached stderr instead of the rows:\n{}\nrows: {rows:#?}",
        unexpected.join("\n")
    );
    for name in BACKENDS {
        let row = rows
            .iter()
            .find(|r| r["backend"] == name)
            .unwrap_or_else(|| panic!("no row {name}: {rows:#?}"));
        let reason = row["reason"].as_str().unwrap_or("");
        match row["status"].as_str() {
            Some("skipped") => {
                assert!(
                    reason.contains("LiteRtCreateCompiledModel"),
                    "{name}: {reason}"
                )
            }
            // A machine with the device compiles the model; what LiteRT printed, if anything,
            // is kept in the row's details.
            Some("measured") => {
                eprintln!("note: {name} ran here (a real device is present)");
                continue;
            }
            other => panic!("{name}: status {other:?}: {reason}"),
        }
        // Without a GPU adapter LiteRT's WebGPU delegate (Dawn, Vulkan) explains why on fd 2:
        // those lines are now in the reason.
        if name == "litert:gpu" && reason.contains("status 3") {
            let (_, printed) = reason
                .split_once("LiteRT printed: ")
                .unwrap_or_else(|| panic!("{name}: LiteRT's own lines missing: {reason}"));
            assert!(
                printed.contains("WebGPU") || printed.contains("Vulkan"),
                "{name}: {reason}"
            );
        }
    }
}
