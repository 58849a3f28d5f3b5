//! The per-layer table on real Vela output: every row of Vela 5.2.0's per-layer CSVs (both
//! column namings) lands on an operator of the U-Net they were made from, TRANSPOSE_CONV
//! included (Vela lists it under the concatenation it writes into); the CPU column comes from
//! our interpreter's per-operator profile; the bottlenecks follow from the numbers.

use unet_bench::backend::{BackendResult, Engine, NpuLayers, RowStatus};
use unet_bench::backends::rust::RustEngine;
use unet_bench::backends::vela::{LayerBound, parse_per_layer};
use unet_bench::layers::{ColumnKind, LayerProfile, LayerTable, model_layers};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vela-runner/tests/fixtures");

fn vela_row(name: &str, csv: &str, clock_hz: f64) -> BackendResult {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{csv}")).expect("fixture");
    let mut row = BackendResult::new(name, "npu", RowStatus::Estimated);
    row.npu_layers = Some(NpuLayers {
        core_clock_hz: clock_hz,
        layers: parse_per_layer(&text).expect("parses"),
    });
    row
}

#[test]
fn vela_rows_and_the_cpu_profile_join_on_the_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The fixtures come from the fms=16 128² synth U-Net; tensor names do not depend on size.
    let (int8, _) = unet_bench::cli::write_synth_models(dir.path(), 4, 32, 7).expect("models");
    let layers = model_layers(&int8).expect("layers");
    assert_eq!(layers.len(), 32);

    let mut engine = RustEngine::new(int8.clone(), tflite_writer::TensorType::Int8, 1);
    engine.load().unwrap_or_else(|_| panic!("loads"));
    engine.set_input(&vec![0.3; 32 * 32]).expect("input");
    engine.invoke().expect("invoke");
    let mut cpu = BackendResult::new("rust-int8", "cpu", RowStatus::Measured);
    cpu.layer_profile = Some(engine.layer_profile(3));

    let clock = 500e6;
    let rows = vec![
        cpu,
        vela_row("vela:new", "vela_u55_256_per-layer.csv", clock),
        vela_row("vela:legacy", "vela_u55_256_legacy_per-layer.csv", clock),
        BackendResult::skipped("litert:gpu", "gpu", "no GPU"),
    ];
    let table = LayerTable::build(&layers, &rows).expect("a table");
    assert_eq!(
        table
            .columns
            .iter()
            .map(|c| (c.backend.as_str(), c.kind))
            .collect::<Vec<_>>(),
        [
            ("rust-int8", ColumnKind::Measured),
            ("vela:new", ColumnKind::Estimated),
            ("vela:legacy", ColumnKind::Estimated)
        ]
    );
    for c in &table.columns {
        assert!(c.unmatched.is_empty(), "{}: {:?}", c.backend, c.unmatched);
    }
    // Every operator has a CPU time and an estimate from Vela's default core, TRANSPOSE_CONV
    // included; the legacy core fuses the sigmoid into the head convolution (no row of its own).
    for row in &table.rows {
        assert!(
            row.cells[0].as_ref().is_some_and(|c| c.ms > 0.0),
            "{:?}",
            row.layer
        );
        let cell = row.cells[1].as_ref();
        assert!(
            cell.is_some_and(|c| c.ms > 0.0),
            "{}: {cell:?}",
            row.layer.output
        );
        let legacy = row.cells[2].as_ref();
        assert_eq!(
            legacy.is_some_and(|c| c.ms > 0.0),
            row.layer.op != "LOGISTIC",
            "{}: {legacy:?}",
            row.layer.output
        );
    }
    // The Vela column adds up to the CSV's cycles at the clock.
    for (j, csv) in [
        (1, "vela_u55_256_per-layer.csv"),
        (2, "vela_u55_256_legacy_per-layer.csv"),
    ] {
        let text = std::fs::read_to_string(format!("{FIXTURES}/{csv}")).expect("fixture");
        let cycles: f64 = parse_per_layer(&text)
            .expect("parses")
            .iter()
            .map(|l| l.cycles)
            .sum();
        let total = table.columns[j].total_ms;
        assert!(
            (total - cycles / clock * 1e3).abs() < 1e-9,
            "{total} vs {cycles}"
        );
        let shares: f64 = table
            .rows
            .iter()
            .filter_map(|r| r.cells[j].as_ref())
            .map(|c| c.share)
            .sum();
        assert!((shares - 1.0).abs() < 1e-9, "{shares}");
    }
    // A TRANSPOSE_CONV's Vela cell holds its convolution (MACs), not the concatenation's copy.
    let up = table
        .rows
        .iter()
        .find(|r| r.layer.op == "TRANSPOSE_CONV")
        .expect("upsampling");
    let concat = table
        .rows
        .iter()
        .find(|r| r.layer.op == "CONCATENATION")
        .expect("concat");
    let (up_ms, concat_ms) = (
        up.cells[1].as_ref().expect("cell").ms,
        concat.cells[1].as_ref().expect("cell").ms,
    );
    assert!(up_ms > concat_ms, "{up_ms} vs {concat_ms}");

    // Bottlenecks: three per column, the column's slowest layers in order, each with its
    // reason; for Vela, the bound of its numbers.
    for (j, c) in table.columns.iter().enumerate() {
        let named: Vec<_> = table
            .bottlenecks
            .iter()
            .filter(|b| b.backend == c.backend)
            .collect();
        assert_eq!(named.len(), 3, "{named:?}");
        let mut ms: Vec<f64> = table
            .rows
            .iter()
            .filter_map(|r| Some(r.cells[j].as_ref()?.ms))
            .collect();
        ms.sort_by(|a, b| b.total_cmp(a));
        for (b, want) in named.iter().zip(&ms) {
            let row = &table.rows[b.index];
            let cell = row.cells[j].as_ref().expect("cell");
            assert_eq!(cell.ms, *want);
            assert!(!b.why.is_empty());
            if c.kind == ColumnKind::Estimated {
                let bound = cell.bound.expect("bound");
                let prefix = match bound {
                    LayerBound::WeightStreaming => "weight-streaming",
                    LayerBound::ComputeBound => "compute-bound",
                    LayerBound::LowMacUtilisation => "low MAC utilisation",
                    LayerBound::SramBound => "SRAM-bound",
                    LayerBound::DramBound => "DRAM-bound",
                    LayerBound::Elementwise => "no MACs",
                };
                assert!(b.why.starts_with(prefix), "{bound:?}: {}", b.why);
            }
        }
    }
    let md = table.markdown();
    assert!(md.contains("| 14 | upE | TRANSPOSE_CONV |"), "{md}");
    assert!(md.contains("### Bottlenecks"));
    let svg = table.svg();
    assert!(svg.contains("rust-int8 (measured)") && svg.contains("vela:new (Vela estimate)"));

    // A skipped CPU profile says why and adds no column.
    let mut why = BackendResult::new("x", "cpu", RowStatus::Measured);
    why.layer_profile = Some(LayerProfile::Unavailable { why: "no".into() });
    assert!(LayerTable::build(&layers, &[why]).is_none());
}
