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

/// The regular runs' per-operator table of each real `--enable_op_profiling` output (sources in
/// `fixtures/op_profiling/README.md`): one row per node the tool says it observed, the rows'
/// per-run times adding up to about the tool's own average, and the names split into output
/// tensor and node index (or marked as a delegate's own operator).
#[test]
fn op_profiles_of_four_tool_generations() {
    use unet_bench::backends::benchmark_model::parse_op_profile;
    for (file, nodes) in [
        ("tf28_mobilenetv1_cpu_riscv64.txt", 31),
        ("tf24_yolov5s_nnapi_android.txt", 11),
        ("litert_2024_efficientdet_lite0_xnnpack_x86.txt", 171),
        ("litert_2025_fc_fp32_xnnpack_kleidiai_android.txt", 5),
    ] {
        let text = fixture(&format!("op_profiling/{file}"));
        let rows = parse_op_profile(&text).unwrap_or_else(|| panic!("{file}: no table"));
        assert_eq!(rows.len(), nodes, "{file}");
        // The tool's own average of the profiled runs (`Timings (microseconds): … avg=…`).
        let avg_us: f64 = text
            .lines()
            .rfind(|l| l.contains("Timings (microseconds)"))
            .and_then(|l| l.split_whitespace().find_map(|t| t.strip_prefix("avg=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{file}: no Timings line"));
        let sum: f64 = rows.iter().map(|r| r.per_run_ms()).sum();
        assert!(
            (sum - avg_us / 1e3).abs() <= 0.1 * avg_us / 1e3,
            "{file}: rows add up to {sum} ms, the tool says {} ms",
            avg_us / 1e3
        );
    }
    let mobilenet =
        parse_op_profile(&fixture("op_profiling/tf28_mobilenetv1_cpu_riscv64.txt")).expect("table");
    let first = &mobilenet[0];
    assert_eq!(first.node_type, "CONV_2D");
    assert!(close(first.avg_ms, 60.957));
    assert_eq!(
        (first.output.as_deref(), first.node, first.delegate_op),
        (
            Some("MobilenetV1/MobilenetV1/Conv2d_0/Relu6"),
            Some(0),
            false
        )
    );
    // A delegate node that writes several tensors is named after the first.
    let yolo =
        parse_op_profile(&fixture("op_profiling/tf24_yolov5s_nnapi_android.txt")).expect("table");
    let nnapi = yolo
        .iter()
        .find(|r| r.node_type == "TfLiteNnapiDelegate")
        .expect("NNAPI rows");
    assert!(nnapi.output.is_some() && nnapi.node.is_some(), "{nnapi:?}");
    assert!(!nnapi.output.as_deref().unwrap_or(",").contains(", "));
    // XNNPACK's own operators (spaces inside the node type, tabs expanded to spaces): delegate
    // rows without a model index; setup rows with 0 calls count 0 per run.
    let det = parse_op_profile(&fixture(
        "op_profiling/litert_2024_efficientdet_lite0_xnnpack_x86.txt",
    ))
    .expect("table");
    let conv = det
        .iter()
        .find(|r| r.node_type == "Convolution (NHWC, QC8) DWConv")
        .expect("XNNPACK rows");
    assert!(
        conv.delegate_op && conv.node.is_none() && conv.times_called == 13,
        "{conv:?}"
    );
    assert!(
        det.iter()
            .any(|r| r.node_type == "QUANTIZE" && r.node == Some(0))
    );
    let fc = parse_op_profile(&fixture(
        "op_profiling/litert_2025_fc_fp32_xnnpack_kleidiai_android.txt",
    ))
    .expect("table");
    let alloc = fc
        .iter()
        .find(|r| r.node_type == "AllocateTensors")
        .expect("setup row");
    assert_eq!(alloc.per_run_ms(), 0.0);
    // No table, no profile.
    assert!(parse_op_profile(&fixture("imx8mp_cpu.log")).is_none());
}

/// A board's table for our U-Net (builtins by node index; XNNPACK's operators aligned by order
/// and kind) fills every operator; one with merged delegate rows keeps the builtins and says why.
#[test]
fn op_profile_rows_map_onto_our_model() {
    use unet_bench::backends::benchmark_model::{op_profile_layers, parse_op_profile};
    let dir = tempfile::tempdir().expect("tempdir");
    let (int8, _) = unet_bench::cli::write_synth_models(dir.path(), 4, 32, 7).expect("models");
    let layers = unet_bench::layers::model_layers(&int8).expect("layers");
    let xnnpack = |op: &str| match op {
        "CONV_2D" => "Convolution (NHWC, QC8) IGEMM",
        "MAX_POOL_2D" => "Max Pooling (NHWC, S8)",
        "TRANSPOSE_CONV" => "Deconvolution (NC, QS8, QC8W) Subconv2D",
        "CONCATENATION" => "Copy (NC, X8)",
        "LOGISTIC" => "Sigmoid (NC)",
        other => panic!("{other}"),
    };
    let mut table = String::from(
        "Operator-wise Profiling Info for Regular Benchmark Runs:\n============================== Run Order ==============================\n\t[node type]\t[first]\t[avg ms]\t[%]\t[cdf%]\t[mem KB]\t[times called]\t[Name]\n",
    );
    for (i, l) in layers.iter().enumerate() {
        let name = format!("Delegate/{}:{i}", xnnpack(&l.op));
        table.push_str(&format!(
            "\t{}\t0.1\t{:.3}\t1%\t1%\t0\t1\t{name}\n",
            xnnpack(&l.op),
            0.01 * (i + 1) as f64
        ));
    }
    let rows = parse_op_profile(&table).expect("table");
    let (times, note) = op_profile_layers(&rows, &int8).expect("maps");
    assert_eq!(note, None);
    assert_eq!(times.len(), layers.len());
    for (i, (t, l)) in times.iter().zip(&layers).enumerate() {
        assert_eq!(t.output, l.output);
        assert!((t.ms - 0.01 * (i + 1) as f64).abs() < 1e-9, "{t:?}");
    }
    let merged = table.replace("\t1\tDelegate/Copy", "\t2\tDelegate/Copy");
    let (times, note) =
        op_profile_layers(&parse_op_profile(&merged).expect("table"), &int8).expect("maps");
    assert!(times.is_empty(), "no builtin rows in this table: {times:?}");
    assert!(note.expect("why").contains("merged across partitions"));
}
