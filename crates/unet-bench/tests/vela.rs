//! `parse_vela` on a real Vela 5.2.0 summary CSV and stdout (see `fixtures/README.md`).

use unet_bench::backends::vela::parse_vela;

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
