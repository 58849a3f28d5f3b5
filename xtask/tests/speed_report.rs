//! `cargo xtask speed-report` end to end, at tiny sizes (the figures mean nothing at 32×32; the
//! test checks that every row is measured, judged or skipped with its reason, and that the CPU
//! and the commands that made the figures are named).

mod common;
use common::xtask;

#[test]
fn the_report_names_the_cpu_and_measures_every_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("speed");
    let output = xtask()
        .args([
            "speed-report",
            "--size",
            "32",
            "--fms",
            "4",
            "--runtime-repeats",
            "2",
            "--runtime-runs",
            "2",
            "--train-rounds",
            "1",
            "--train-steps",
            "1",
            "--batch-size",
            "2",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("xtask runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "speed-report failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let md = std::fs::read_to_string(out.join("speed_report.md")).expect("speed_report.md");
    let doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("speed_report.json")).expect("speed_report.json"),
    )
    .expect("valid JSON");

    // The CPU as /proc/cpuinfo names it, and its class.
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    if let Some(name) = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim())
    {
        assert!(md.contains(name), "CPU name {name} missing:\n{md}");
    }
    let class = doc["class"].as_str().expect("class");
    assert!(
        md.starts_with(&format!("# Speed against the anchors: {class}")),
        "{md}"
    );

    // Every row, with the command that measured it.
    let rows = doc["rows"].as_array().expect("rows");
    let whats: Vec<&str> = rows.iter().filter_map(|r| r["what"].as_str()).collect();
    assert_eq!(
        whats,
        [
            "int8 inference, 1 thread",
            "int8 inference, 2 threads",
            "int8, speedup of 2 threads over 1",
            "f32 inference, 1 thread",
            "f32 inference, 2 threads",
            "f32, speedup of 2 threads over 1",
            "training step",
            "batch-1 inference, burn",
        ]
    );
    assert!(
        md.contains("`cargo xtask runtime-bench --size=32 --fms=4 --runs=2 --threads=2`"),
        "{md}"
    );
    assert!(
        md.contains(
            "`cargo xtask train --size=32 --fms=4 --batch-size=2 --bench-steps=1 --bench-rounds=1`"
        ),
        "{md}"
    );
    assert_eq!(doc["runtime_bench"].as_array().map(Vec::len), Some(2));

    // Ours is always measured: two runtime runs, one training round.
    for row in &rows[..6] {
        let ours = row["ours"].as_str().unwrap_or("");
        assert!(ours.contains("ms") && !ours.contains('—'), "{row}");
    }
    assert!(
        rows[6]["ours"].as_str().unwrap_or("").ends_with(" s"),
        "{}",
        rows[6]
    );

    // The anchors: measured and judged where the tool is there, else named as skipped.
    let litert = litert_oracle::litert();
    for row in &rows[..6] {
        let anchor = row["anchor"].as_str().unwrap_or("");
        if litert.is_ok() {
            assert!(anchor.contains("XNNPACK"), "{row}");
            assert_eq!(row["ratios"].as_array().map(Vec::len), Some(2), "{row}");
            assert!(
                row["ratios"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|r| r.as_f64().is_some_and(|x| x > 0.0)),
                "{row}"
            );
        } else {
            assert!(anchor.starts_with("skipped: "), "{row}");
        }
    }
    for row in [&rows[0], &rows[1], &rows[3], &rows[4], &rows[6], &rows[7]] {
        let verdict = row["verdict_alone"]
            .as_str()
            .expect("a goal row has a verdict");
        let expected_measured = if row["what"]
            .as_str()
            .unwrap_or("")
            .contains("inference, burn")
            || row["what"] == "training step"
        {
            !row["anchor"].as_str().unwrap_or("").starts_with("skipped")
        } else {
            litert.is_ok()
        };
        assert_eq!(verdict != "not measured", expected_measured, "{row}");
    }
    if let Err(why) = litert_oracle::python_import("import tensorflow") {
        eprintln!("Keras rows skipped as expected: {why}");
        assert!(
            rows[6]["anchor"]
                .as_str()
                .unwrap_or("")
                .starts_with("skipped: "),
            "{}",
            rows[6]
        );
    }
}

/// `--cpu-class avx2`: on a CPU with more than AVX2, the report is made under `cpuid-mask`
/// (our int8 path `avx2`, no AVX-512 feature detected, the masking named); on an AVX2-only CPU
/// nothing needs masking; without CPUID faulting the command refuses rather than measure the
/// real CPU.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[test]
fn a_masked_report_runs_the_avx2_paths_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("speed");
    // xtask builds `cpuid-mask` with cargo; in a target directory of its own, since the one
    // of the `cargo test` running this may be locked.
    let output = xtask()
        .env("CARGO", env!("CARGO"))
        .env(
            "CARGO_TARGET_DIR",
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cpuid-mask-build"),
        )
        .args([
            "--cpu-class",
            "avx2",
            "speed-report",
            "--size",
            "32",
            "--fms",
            "4",
            "--runtime-repeats",
            "1",
            "--runtime-runs",
            "2",
            "--skip-train",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("xtask runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let needs_mask = std::arch::is_x86_feature_detected!("avx512f")
        || std::arch::is_x86_feature_detected!("avxvnni");
    if !needs_mask {
        assert!(output.status.success(), "{stdout}{stderr}");
        assert!(stdout.contains("nothing to mask"), "{stdout}");
        return;
    }
    if stderr.contains("has no CPUID faulting") {
        assert!(!output.status.success(), "{stdout}{stderr}");
        assert!(!out.join("speed_report.md").exists());
        eprintln!("masking refused as it must be without CPUID faulting: {stderr}");
        return;
    }
    assert!(output.status.success(), "{stdout}{stderr}");
    let md = std::fs::read_to_string(out.join("speed_report.md")).expect("speed_report.md");
    let doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("speed_report.json")).expect("speed_report.json"),
    )
    .expect("valid JSON");
    assert_eq!(doc["cpuid_mask"], "avx2", "{doc}");
    assert_eq!(doc["class"], "x86 with AVX2 (no VNNI)", "{doc}");
    let features: Vec<&str> = doc["machine"]["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter_map(|f| f.as_str())
        .collect();
    assert!(features.contains(&"avx2"), "{features:?}");
    assert!(
        !features
            .iter()
            .any(|f| f.starts_with("avx512") || *f == "avxvnni"),
        "{features:?}"
    );
    assert!(
        md.starts_with("# Speed against the anchors: x86 with AVX2 (no VNNI), CPUID-masked"),
        "{md}"
    );
    let int8 = &doc["runtime_bench"][0]["results"][0];
    assert_eq!(int8["model"], "int8");
    assert_eq!(int8["tflite_runtime"]["kernels"], "avx2", "{int8}");
    assert_eq!(doc["runtime_bench"][0]["machine"]["cpuid_mask"], "avx2");
}
