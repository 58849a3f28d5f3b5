//! `cargo xtask infer` end to end: the fast kernels (the default) and the reference kernels give
//! byte-identical int8 outputs, with one thread and two.

use std::path::Path;

mod common;
use common::xtask;

use tflite_runtime::npy::{NpyArray, NpyData, read_npy, write_npy};
use tflite_runtime::synth::{UNetSpec, unet};

/// Runs `xtask infer` with `extra` flags, returns its stdout and the output `.npy`'s data.
fn infer(model: &Path, input: &Path, out: &Path, extra: &[&str]) -> (String, NpyData) {
    let output = xtask()
        .arg("infer")
        .arg(model)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(out)
        .args(extra)
        .output()
        .expect("xtask runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "infer {extra:?} failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(out).expect("output written");
    (stdout, read_npy(&bytes).expect("valid npy").data)
}

#[test]
fn fast_and_reference_kernels_give_the_same_int8_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = unet(UNetSpec {
        fms: 4,
        size: 32,
        in_channels: 1,
        int8: true,
        seed: 7,
    });
    let model_path = dir.path().join("unet_int8.tflite");
    tflite_writer::write_model_file(&model, &model_path).expect("model written");
    // A float slice (quantised by `infer` with the input's scale and zero point).
    let values: Vec<f32> = (0..32 * 32)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let input_path = dir.path().join("slice.npy");
    let array = NpyArray {
        shape: vec![32, 32],
        data: NpyData::F32(values),
    };
    std::fs::write(&input_path, write_npy(&array)).expect("input written");

    let (text_ref, reference) = infer(
        &model_path,
        &input_path,
        &dir.path().join("ref.npy"),
        &["--kernels", "reference"],
    );
    assert!(
        text_ref.contains("kernels: reference, 1 thread(s)"),
        "{text_ref}"
    );
    let NpyData::I8(reference) = reference else {
        panic!("int8 model, int8 output expected")
    };
    assert!(
        reference.iter().any(|&v| v != reference[0]),
        "a constant output would not show a kernel difference"
    );

    // The default is the fast tier; with one thread and with two.
    for extra in [&[][..], &["--threads", "2"][..]] {
        let (text, fast) = infer(
            &model_path,
            &input_path,
            &dir.path().join("fast.npy"),
            extra,
        );
        assert!(!text.contains("kernels: reference"), "{text}");
        let threads = if extra.is_empty() { 1 } else { 2 };
        assert!(text.contains(&format!("{threads} thread(s)")), "{text}");
        assert_eq!(fast, NpyData::I8(reference.clone()), "{extra:?}: {text}");
    }
}
