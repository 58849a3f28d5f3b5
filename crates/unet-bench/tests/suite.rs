//! The whole suite on tiny random-weight U-Nets: every row is measured, estimated or skipped
//! with a reason, and the three report files are written.

use clap::Parser;
use unet_bench::RowStatus;
use unet_bench::cli::BenchArgs;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

fn args(out: &std::path::Path, extra: &[&str]) -> BenchArgs {
    let mut argv = vec![
        "unet-bench".to_string(),
        "--synth".into(),
        "--synth-fms".into(),
        "4".into(),
        "--synth-size".into(),
        "32".into(),
        "--warmup".into(),
        "2".into(),
        "--runs".into(),
        "5".into(),
        "--slices".into(),
        "3".into(),
        "--no-progress".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    Cli::parse_from(argv).bench
}

/// Whether Vela runs here; under `REQUIRE_LITERT` a missing Vela fails the test.
fn vela_available() -> bool {
    let probe = std::process::Command::new("vela")
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run vela: {e}"))
        .and_then(|o| {
            o.status
                .success()
                .then_some(())
                .ok_or_else(|| format!("vela --version exited with {}", o.status))
        });
    litert_oracle::require("Arm Vela (pip ethos-u-vela)", probe).is_some()
}

#[test]
fn suite_on_tiny_models_writes_a_complete_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("bench");
    let a = args(
        &out,
        &[
            "--backends",
            "rust-f32,rust-int8,burn-f32,litert:cpu,litert:npu,vela:ethos-u55-256,benchmark-model:/nonexistent/benchmark_model",
        ],
    );
    let (report, paths) = unet_bench::cli::run(&a, vec!["test".into()]).expect("suite runs");
    // report.json, report.md, latency.svg and the per-layer chart layers.svg.
    assert_eq!(paths.len(), 4);
    let layers = report.layers.as_ref().expect("a per-layer table");
    let columns: Vec<&str> = layers.columns.iter().map(|c| c.backend.as_str()).collect();
    for want in ["rust-int8", "rust-f32", "vela:ethos-u55-256"] {
        assert!(
            columns.contains(&want) || !vela_or_litert_missing(want),
            "{want} has no per-layer column: {columns:?}"
        );
    }
    assert!(report.markdown().contains("## Per layer"));
    for p in &paths {
        assert!(p.is_file(), "{} missing", p.display());
    }
    // rust-int8 runs first: it is the reference.
    assert_eq!(report.rows[0].backend, "rust-int8");
    let row = |name: &str| {
        report
            .rows
            .iter()
            .find(|r| r.backend == name)
            .unwrap_or_else(|| panic!("no row {name}"))
    };

    let int8 = row("rust-int8");
    assert_eq!(int8.status, RowStatus::Measured);
    let stats = int8.stats.as_ref().expect("stats");
    assert_eq!(stats.count, 5);
    assert!(
        stats.min > 0.0 && stats.min <= stats.median.unwrap() && stats.median.unwrap() <= stats.max
    );
    assert_eq!(int8.agreement.as_ref().expect("self agreement").max_lsb, 0);
    assert!(int8.dice.is_some(), "synthetic slices carry masks");

    let f32 = row("rust-f32");
    assert_eq!(f32.status, RowStatus::Measured);
    let agreement = f32.agreement.as_ref().expect("agreement");
    assert!(agreement.quantized_from_float);
    assert_eq!(agreement.pixels, 3 * 32 * 32);

    let burn = row("burn-f32");
    assert_eq!(
        burn.status,
        RowStatus::Skipped,
        "no checkpoint in --synth mode"
    );
    assert!(burn.reason.is_some());

    let bm = row("benchmark-model:/nonexistent/benchmark_model");
    assert_eq!(bm.status, RowStatus::Skipped);
    assert!(bm.reason.as_deref().unwrap_or("").contains("not found"));

    let cpu = row("litert:cpu");
    let npu = row("litert:npu");
    let library = unet_bench::backends::litert::find_library(None);
    if litert_oracle::require("libLiteRt.so (pip ai-edge-litert)", library).is_some() {
        assert_eq!(cpu.status, RowStatus::Measured, "{:?}", cpu.reason);
        // XNNPACK's int8 kernels may round differently from the reference kernels, but on a
        // sigmoid output the difference stays within a few LSB.
        assert!(cpu.agreement.as_ref().expect("agreement").max_lsb <= 8);
        assert!(cpu.speedup_vs_baseline.is_some());
        assert_eq!(report.baseline, "litert:cpu");
        assert_eq!(npu.status, RowStatus::Skipped);
        assert!(
            npu.reason.as_deref().unwrap_or("").contains("504"),
            "{:?}",
            npu.reason
        );
    }

    let vela = row("vela:ethos-u55-256");
    if vela_available() {
        assert_eq!(vela.status, RowStatus::Estimated, "{:?}", vela.reason);
        let est = &vela.details["estimate"];
        assert!(est["inference_ms"].as_f64().expect("inference_ms") > 0.0);
        assert!(est["cycles_total"].as_f64().expect("cycles") > 0.0);
        assert!(est["npu_ops"].as_u64().expect("npu ops") > 0);
        // The per-layer estimate: every NPU operation with its bound, summing to the total.
        let layers = vela.details["layers"]
            .as_array()
            .expect("per-layer estimate");
        assert!(!layers.is_empty());
        let cycles: f64 = layers
            .iter()
            .map(|l| l["layer"]["cycles"].as_f64().expect("cycles"))
            .sum();
        let total = est["cycles_total"].as_f64().expect("cycles");
        assert!(
            cycles > 0.0 && cycles <= total * 1.01,
            "{cycles} vs {total}"
        );
        assert!(
            layers
                .iter()
                .all(|l| l["why"].as_str().is_some_and(|w| !w.is_empty()))
        );
    } else {
        assert_eq!(vela.status, RowStatus::Skipped);
    }

    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert_eq!(
        md.contains("### Where `vela:ethos-u55-256` spends its cycles"),
        vela_available(),
        "report.md names the Vela row's heaviest layers when Vela ran"
    );
    for r in &report.rows {
        assert!(
            md.contains(&format!("| {} |", r.backend)),
            "row {} missing from report.md",
            r.backend
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("json"))
            .expect("valid json");
    assert_eq!(
        json["rows"].as_array().map(Vec::len),
        Some(report.rows.len())
    );
    assert!(json["machine"]["cpu_model"].is_string());
    let svg = std::fs::read_to_string(out.join("latency.svg")).expect("svg");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("rust-int8"));
    // No temporary files left behind by the atomic writes.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .expect("out dir")
        .filter_map(Result::ok)
        .filter(|e| artifact_io::is_temporary_name(&e.file_name().to_string_lossy()))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("bench");
    // An .npy of the wrong slice size.
    let x = dir.path().join("x.npy");
    let array = tflite_runtime::npy::NpyArray {
        shape: vec![2, 16, 16],
        data: tflite_runtime::npy::NpyData::F32(vec![1.0; 512]),
    };
    std::fs::write(&x, tflite_runtime::npy::write_npy(&array)).expect("write");
    let a = args(
        &out,
        &[
            "--backends",
            "rust-int8",
            "--inputs",
            x.to_str().expect("utf8"),
        ],
    );
    let e = unet_bench::cli::run(&a, vec![]).expect_err("wrong shape");
    let msg = e.to_string();
    assert!(
        msg.contains("x.npy") && msg.contains("[2, 16, 16]"),
        "{msg}"
    );
    assert!(
        !out.join("report.json").exists(),
        "no report after an error"
    );

    // A file that is not a model.
    let bogus = dir.path().join("bogus.tflite");
    std::fs::write(&bogus, b"not a model").expect("write");
    let mut a = args(&out, &["--backends", "rust-int8"]);
    a.synth = false;
    a.model = vec![bogus.clone()];
    let msg = unet_bench::cli::run(&a, vec![])
        .expect_err("bogus model")
        .to_string();
    assert!(msg.contains("bogus.tflite"), "{msg}");

    // A bad backend name.
    let a = args(&out, &["--backends", "litert:tpu"]);
    let msg = unet_bench::cli::run(&a, vec![])
        .expect_err("bad backend")
        .to_string();
    assert!(msg.contains("litert:tpu"), "{msg}");
}

/// Whether the tool a backend needs is absent here (then its row is skipped and has no
/// per-layer column; `REQUIRE_LITERT=1` makes the other tests fail on that instead).
fn vela_or_litert_missing(backend: &str) -> bool {
    backend.starts_with("vela:")
        && vela_runner::version(std::path::Path::new(vela_runner::DEFAULT_EXECUTABLE)).is_err()
}

/// `--vela-sweep` where Vela cannot run (a board) keeps the measured report and writes no sweep.
#[test]
fn a_sweep_without_vela_leaves_the_measured_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("bench");
    let a = args(
        &out,
        &[
            "--backends",
            "rust-int8",
            "--vela-sweep",
            "--vela",
            "/nonexistent/vela",
        ],
    );
    let (report, paths) = unet_bench::cli::run(&a, vec!["test".into()]).expect("suite runs");
    assert!(report.vela_sweep.is_none());
    assert!(
        report.layers.is_some(),
        "rust-int8 still has its per-layer column"
    );
    assert!(
        !paths.iter().any(|p| p.ends_with("vela_sweep.svg")),
        "{paths:?}"
    );
    assert!(out.join("report.json").is_file());
}

#[test]
fn several_models_share_one_table_and_one_chart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("bench");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tf_unet");
    let int8 = fixtures.join("tiny_unet_int8.tflite");
    let int16x8 = fixtures.join("tiny_unet_16x8.tflite");
    let argv = [
        "unet-bench".to_string(),
        "--model".into(),
        int8.display().to_string(),
        "--model".into(),
        int16x8.display().to_string(),
        "--float-model".into(),
        fixtures.join("tiny_unet_fp32.tflite").display().to_string(),
        "--backends".into(),
        "rust-int8,litert:cpu".into(),
        "--warmup".into(),
        "1".into(),
        "--runs".into(),
        "3".into(),
        "--slices".into(),
        "2".into(),
        "--layer-runs".into(),
        "0".into(),
        "--no-progress".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    let a = Cli::parse_from(argv).bench;
    let (report, paths) =
        unet_bench::cli::run_models(&a, vec!["test".into()]).expect("both models benchmarked");
    assert_eq!(report.models.len(), 2);
    assert_eq!(report.models[0].label, "tiny_unet_int8");
    assert_eq!(report.models[1].label, "tiny_unet_16x8");
    // Our runtime runs both the int8 and the int16-IO 16x8 model.
    for m in &report.models {
        let row = m
            .report
            .rows
            .iter()
            .find(|r| r.backend == "rust-int8")
            .expect("rust-int8 row");
        assert_eq!(row.status, RowStatus::Measured, "{}: {row:?}", m.label);
    }
    // Where LiteRT runs the int8 model, it runs the int16 one through the same C API too.
    let litert = |m: usize| {
        report.models[m]
            .report
            .rows
            .iter()
            .find(|r| r.backend == "litert:cpu")
            .expect("litert row")
            .clone()
    };
    if litert(0).status == RowStatus::Measured {
        let row = litert(1);
        assert_eq!(row.status, RowStatus::Measured, "{row:?}");
    } else {
        eprintln!("skipped the LiteRT int16 check: {:?}", litert(0).reason);
    }
    let table = report.markdown_table();
    assert!(table.contains("| rust-int8 | tiny_unet_16x8 |"), "{table}");
    for name in ["models.json", "models.md", "models.svg"] {
        assert!(paths.contains(&out.join(name)), "{name} in {paths:?}");
        assert!(out.join(name).is_file());
    }
    for label in ["tiny_unet_int8", "tiny_unet_16x8"] {
        assert!(out.join(label).join("report.json").is_file());
    }
    let svg = std::fs::read_to_string(out.join("models.svg")).expect("svg");
    assert!(
        svg.contains("tiny_unet_16x8"),
        "the legend names each model"
    );
}
