//! `--vela-sweep` with the real Vela: every accelerator configuration Vela lists, each memory
//! mode of its configuration file, both `--optimise` strategies; a combination Vela refuses is
//! a row with Vela's reason, never a failure of the sweep.

use std::path::Path;

use unet_bench::sweep::{OPTIMISE, run_sweep};

#[test]
fn sweep_covers_every_configuration_vela_lists() {
    let Some(_) = litert_oracle::require(
        "Arm Vela (pip ethos-u-vela)",
        vela_runner::version(Path::new(vela_runner::DEFAULT_EXECUTABLE)).map_err(|e| e.to_string()),
    ) else {
        return;
    };
    let vela = Path::new(vela_runner::DEFAULT_EXECUTABLE);
    let options = vela_runner::options(vela).expect("vela lists its options");
    assert!(
        options.accelerators.iter().any(|a| a == "ethos-u55-256"),
        "{options:?}"
    );
    assert!(!options.memory_modes.is_empty(), "{options:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let model =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tf_unet/tiny_unet_int8.tflite");
    let sweep = run_sweep(&model, vela, &dir.path().join("sweep"), 2).expect("sweep");
    assert_eq!(
        sweep.points.len(),
        options.accelerators.len() * OPTIMISE.len() * options.memory_modes.len(),
        "one compilation per accelerator, optimise strategy and memory mode"
    );
    for acc in &options.accelerators {
        for optimise in OPTIMISE {
            let mine: Vec<_> = sweep
                .points
                .iter()
                .filter(|p| &p.accelerator == acc && p.optimise == optimise)
                .collect();
            assert_eq!(mine.len(), options.memory_modes.len(), "{acc} {optimise}");
            assert!(
                mine.iter().any(|p| p.rejected.is_none()),
                "{acc} {optimise}: Vela's default memory mode must compile"
            );
        }
    }
    for p in &sweep.points {
        match (&p.rejected, p.inference_ms) {
            (None, Some(ms)) => {
                assert!(
                    ms > 0.0 && p.sram_kib.is_some() && p.cpu_ops.is_some(),
                    "{p:?}"
                )
            }
            (Some(why), None) => assert!(!why.is_empty() && !why.contains("Traceback"), "{p:?}"),
            _ => panic!("a point is either estimated or rejected: {p:?}"),
        }
        assert_eq!(
            Some(p.macs_per_cycle),
            unet_bench::sweep::macs_per_cycle(&p.accelerator)
        );
    }
    // More MACs per cycle never make Vela's estimate slower within the U55 family (same clock,
    // same memory mode and strategy).
    let u55: Vec<(u32, f64)> = sweep
        .points
        .iter()
        .filter(|p| {
            p.accelerator.starts_with("ethos-u55")
                && p.memory_mode == "Shared_Sram"
                && p.optimise == "Performance"
        })
        .filter_map(|p| Some((p.macs_per_cycle, p.inference_ms?)))
        .collect();
    assert!(u55.len() >= 2, "{u55:?}");
    for w in u55.windows(2) {
        assert!(w[0].0 < w[1].0 && w[1].1 <= w[0].1 * 1.0001, "{u55:?}");
    }
    let md = sweep.markdown();
    assert!(
        md.contains("## Vela sweep") && md.contains("ethos-u85-2048")
            || !options.accelerators.iter().any(|a| a == "ethos-u85-2048")
    );
    let svg = sweep.svg();
    assert!(
        svg.contains("MACs per cycle") && svg.contains("<svg"),
        "{svg}"
    );
    // Nothing of the compilations is left behind.
    assert!(
        std::fs::read_dir(dir.path().join("sweep")).map_or(0, |d| d.count()) == 0,
        "work directories removed"
    );
}
