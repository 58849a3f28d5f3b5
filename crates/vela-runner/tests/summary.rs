//! `vela_runner::parse` on a real Vela 5.2.0 summary CSV and stdout (see `fixtures/README.md`),
//! and a real compilation when Vela is installed.

use vela_runner::{LayerBound, parse as parse_vela, parse_per_layer};

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn real_u55_summary() {
    let est = parse_vela(
        &fixture("vela_u55_256_summary.csv"),
        &fixture("vela_u55_256_stdout.txt"),
    )
    .expect("parses");
    assert_eq!(est.accelerator, "Ethos_U55_256");
    assert_eq!(est.system_config, "Ethos_U55_High_End_Embedded");
    assert_eq!(est.memory_mode, "Shared_Sram");
    assert_eq!(est.core_clock_hz, 500e6);
    assert!((est.inference_ms - 9.347528).abs() < 1e-9);
    assert_eq!(est.cycles_total, 4_673_764.0);
    assert_eq!(est.cycles_npu, Some(3_984_308.0));
    // Inference time is cycles / clock in Vela's model.
    assert!((est.cycles_total / est.core_clock_hz * 1e3 - est.inference_ms).abs() < 1e-6);
    assert_eq!(est.sram_kib, Some(898.171875));
    assert_eq!(est.off_chip_flash_kib, Some(1913.109375));
    assert_eq!(est.npu_ops, Some(32));
    assert_eq!(est.cpu_ops, Some(0));
    assert_eq!(est.macs, Some(855_064_576.0));
}

#[test]
fn broken_summary_is_an_error() {
    let e = parse_vela("experiment,network\n", "").expect_err("no data row");
    assert!(e.to_string().contains("no data row"), "{e}");
    let e = parse_vela("experiment,inference_time\ndefault,abc\n", "").expect_err("not numeric");
    assert!(e.to_string().contains("inference_time"), "{e}");
}

#[test]
fn real_compilation_of_the_committed_tf_model() {
    let Some(_) = litert_oracle::require(
        "Arm Vela (pip ethos-u-vela)",
        vela_runner::version(std::path::Path::new(vela_runner::DEFAULT_EXECUTABLE))
            .map_err(|e| e.to_string()),
    ) else {
        return;
    };
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/tf_unet/tiny_unet_int8.tflite");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut job = vela_runner::VelaJob::new(&model, "ethos-u55-256", &dir.path().join("u55"));
    job.per_layer = true;
    let compiled = job.run().expect("vela compiles the TF model");
    assert!(compiled.estimate.inference_ms > 0.0);
    assert!(
        !compiled.layers.is_empty(),
        "--verbose-performance gives per-layer rows"
    );
    assert!(compiled.command.contains("--verbose-performance"));
    assert!(compiled.estimate.npu_ops.is_some());
    assert!(dir.path().join("u55/vela_stdout.txt").is_file());
    // A configuration Vela does not know is an error naming the command, not a panic.
    let bad = vela_runner::VelaJob::new(&model, "ethos-u99-1", &dir.path().join("bad"));
    let err = bad.run().expect_err("unknown accelerator");
    assert!(err.to_string().contains("ethos-u99-1"), "{err}");
}

#[test]
fn real_per_layer_csvs_of_both_compiler_cores() {
    let summary = parse_vela(
        &fixture("vela_u55_256_summary.csv"),
        &fixture("vela_u55_256_stdout.txt"),
    )
    .expect("summary");
    for (file, rows, first_op, last) in [
        ("vela_u55_256_per-layer.csv", 50, "Conv2D", "output"),
        (
            "vela_u55_256_legacy_per-layer.csv",
            35,
            "CONV_2D",
            "PredictionMask/logits",
        ),
    ] {
        let layers = parse_per_layer(&fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(layers.len(), rows, "{file}");
        assert_eq!(layers[0].source_operator, first_op, "{file}");
        assert_eq!(layers[0].name, "encodeAa", "{file}");
        assert_eq!(layers[rows - 1].name, last, "{file}");
        // The first convolution (1 input channel) barely uses the MACs; the 3×3 convolutions of
        // the first level do better.
        assert!(
            layers[0].mac_utilisation_percent < 10.0,
            "{file}: {:?}",
            layers[0]
        );
        assert!(
            layers.iter().any(|l| l.mac_utilisation_percent > 50.0),
            "{file}"
        );
        // Every layer's MACs together are the network's MACs that the summary reports.
        let macs: f64 = layers.iter().map(|l| l.macs).sum();
        let network = summary.macs.expect("summary MACs");
        assert!(
            (macs - network).abs() / network < 0.01,
            "{file}: {macs} vs {network}"
        );
    }
}

#[test]
fn per_layer_csv_without_its_columns_is_an_error() {
    let e = parse_per_layer("Name,Op Cycles\nconv,12\n").expect_err("columns missing");
    assert!(e.to_string().contains("NNG Operator"), "{e}");
    let bad = fixture("vela_u55_256_per-layer.csv").replacen(
        "Conv2D,Conv2D,NPU,278928",
        "Conv2D,Conv2D,NPU,lots",
        1,
    );
    let e = parse_per_layer(&bad).expect_err("not a number");
    assert!(e.to_string().contains("Staging Usage"), "{e}");
}

#[test]
fn bottlenecks_read_from_the_numbers() {
    let layers = parse_per_layer(&fixture("vela_u55_256_per-layer.csv")).expect("parses");
    let mut by_cycles: Vec<_> = layers.iter().collect();
    by_cycles.sort_by(|a, b| b.cycles.total_cmp(&a.cycles));
    // The two 8×8×256 bottleneck convolutions of this U-Net wait on their weights from off-chip
    // flash; the first convolution (one input channel) leaves most of the MAC array idle; a
    // decoder convolution at ~99 % utilisation is compute-bound.
    assert_eq!(by_cycles[0].name, "encodeEb");
    assert_eq!(LayerBound::of(by_cycles[0]), LayerBound::WeightStreaming);
    let conv_30 = layers
        .iter()
        .find(|l| l.name == "encodeEa")
        .expect("encodeEa");
    assert_eq!(LayerBound::of(conv_30), LayerBound::WeightStreaming);
    assert_eq!(LayerBound::of(&layers[0]), LayerBound::LowMacUtilisation);
    assert!(
        LayerBound::of(&layers[0])
            .describe(&layers[0])
            .contains("9.2 %")
    );
    let conv_63 = layers
        .iter()
        .find(|l| l.name == "decodeAa")
        .expect("decodeAa");
    assert_eq!(LayerBound::of(conv_63), LayerBound::ComputeBound);
    let relu = layers
        .iter()
        .find(|l| l.macs == 0.0)
        .expect("a layer without MACs");
    assert_eq!(LayerBound::of(relu), LayerBound::Elementwise);
    assert!(
        LayerBound::WeightStreaming
            .describe(by_cycles[0])
            .starts_with("weight-streaming: 100 %")
    );
}
