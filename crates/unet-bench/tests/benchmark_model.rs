//! `parse_benchmark_model` on real outputs of TFLite's `benchmark_model` (sources in
//! `fixtures/README.md`).

use unet_bench::backends::benchmark_model::parse_benchmark_model;

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn imx8mp_npu_with_vx_delegate_and_op_profiling() {
    let s = parse_benchmark_model(&fixture("imx8mp_vx_delegate_npu.log")).expect("parses");
    assert!(close(s.init_ms, 12.434));
    assert!(close(s.first_inference_ms, 4625.131));
    assert!(close(s.warmup_avg_ms, 4625.13));
    assert!(close(s.inference_avg_ms, 2.52559));
    let runs = s.runs.clone().expect("count= line");
    // The timed runs' line, not the warm-up `count=1` nor the profiler's `Timings` line.
    assert_eq!(runs.count, 379);
    assert!(close(runs.min_ms, 2.471));
    assert!(close(runs.max_ms, 2.586));
    assert!(close(runs.avg_ms, 2.52559));
    assert!(close(runs.std_ms, 0.013));
    assert_eq!(runs.median_ms, None);
    assert_eq!(s.memory_overall_mb, Some(34.3164));
    assert!(
        s.delegation
            .as_deref()
            .unwrap_or("")
            .contains("completely executed by the delegate")
    );
    let stats = s.stats();
    assert_eq!(stats.count, 379);
    assert!(close(stats.mean, 2.52559));
    assert_eq!(
        stats.median, None,
        "the old format has no median; we must not invent one"
    );
    assert_eq!(stats.p90, None);
}

#[test]
fn imx8mp_cpu_ignores_warmup_and_profiler_lines() {
    let s = parse_benchmark_model(&fixture("imx8mp_cpu.log")).expect("parses");
    assert!(close(s.init_ms, 2.409));
    assert!(close(s.first_inference_ms, 169.816));
    assert!(close(s.warmup_avg_ms, 164.822));
    assert!(close(s.inference_avg_ms, 162.98));
    let runs = s.runs.expect("count= line");
    assert_eq!(runs.count, 50);
    assert!(close(runs.min_ms, 162.744));
    assert!(close(runs.max_ms, 163.299));
    assert_eq!(s.memory_overall_mb, Some(10.332));
    assert_eq!(s.delegation, None);
}

#[test]
fn ti_am62x_xnnpack_info_prefix_and_percentiles() {
    let s = parse_benchmark_model(&fixture("ti_am62x_xnnpack.log")).expect("parses");
    assert!(close(s.init_ms, 614.333));
    assert!(close(s.first_inference_ms, 905.463));
    assert!(close(s.inference_avg_ms, 899.641));
    let runs = s.runs.clone().expect("count= line");
    assert_eq!(runs.count, 50);
    assert!(close(runs.min_ms, 898.007));
    assert!(close(runs.median_ms.expect("median"), 899.281));
    assert!(close(runs.p5_ms.expect("p5"), 898.333));
    assert!(close(runs.p95_ms.expect("p95"), 904.305));
    assert_eq!(s.memory_overall_mb, Some(150.141));
    assert!(
        s.delegation
            .as_deref()
            .unwrap_or("")
            .contains("partially executed by the delegate")
    );
    assert!(close(s.stats().median.expect("median"), 899.281));
}

#[test]
fn ti_am62x_cpu_scientific_notation() {
    let s = parse_benchmark_model(&fixture("ti_am62x_cpu.log")).expect("parses");
    assert!(close(s.init_ms, 5.579));
    assert!(close(s.warmup_avg_ms, 1357.6));
    assert!(close(s.inference_avg_ms, 1240.27));
    let runs = s.runs.expect("count= line");
    assert!(close(runs.avg_ms, 1240.27));
    assert!(close(runs.median_ms.expect("median"), 1239.807));
    assert_eq!(s.memory_overall_mb, Some(109.832));
}

#[test]
fn output_without_summary_is_a_clear_error() {
    let e = parse_benchmark_model("STARTING!\nFailed to load model\n").expect_err("no summary");
    assert!(e.to_string().contains("Inference timings in us"), "{e}");
    let truncated = "Inference timings in us: Init: 12, First inference: 3\n";
    let e = parse_benchmark_model(truncated).expect_err("incomplete");
    assert!(e.to_string().contains("Warmup (avg)"), "{e}");
}
