//! The produced int8 model against the outside world: LiteRT `BUILTIN_REF` gives the same bytes
//! as our runtime, and Arm Vela puts every operator on the Ethos-U NPU. Each test prints why it
//! is skipped when its tool is missing (CI installs both).

use tflite_runtime::synth::{UNetSpec, unet};
use unet_data::{DataConfig, SourceKind, Split};
use unet_quantizer::dataset::from_source;
use unet_quantizer::verify::quantize_input;
use unet_quantizer::{Method, Observer, QuantConfig, litert, quantize, vela};

const SIZE: usize = 32;

fn tiny_int8() -> (tflite_writer::Model, Vec<Vec<i8>>) {
    let float = unet(UNetSpec {
        fms: 4,
        size: SIZE,
        in_channels: 1,
        int8: false,
        seed: 11,
    });
    let cfg = DataConfig {
        source: SourceKind::Synthetic,
        size: SIZE,
        seed: 42,
        slices_per_split: Some(32),
        ..DataConfig::default()
    };
    let calib = from_source(&cfg, Split::Train, 8)
        .expect("calibration data")
        .images;
    let held_out = from_source(&cfg, Split::Test, 4).expect("held-out data");
    let config = QuantConfig {
        method: Method::Fixed(Observer::Mse),
        threads: 2,
        ..QuantConfig::default()
    };
    let (int8, _) = quantize(&float, &calib, &config).expect("quantize");
    let sg = &int8.subgraphs[0];
    let q = sg.tensors[sg.inputs[0] as usize]
        .quantization
        .clone()
        .expect("input quant");
    let inputs = held_out
        .images
        .images
        .iter()
        .map(|x| quantize_input(x, q.scale[0], q.zero_point[0] as i32))
        .collect();
    (int8, inputs)
}

#[test]
fn litert_builtin_ref_matches_our_runtime_bit_for_bit() {
    if litert_oracle::require("LiteRT (pip ai-edge-litert)", litert::available()).is_none() {
        return;
    }
    let (int8, inputs) = tiny_int8();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("unet_int8.tflite");
    tflite_writer::write_model_file(&int8, &path).expect("write model");
    let result = litert::compare(&int8, &path, &inputs, dir.path()).expect("LiteRT run");
    assert_eq!(result.samples, 4);
    assert_eq!(result.values, 4 * SIZE * SIZE);
    assert!(result.is_exact(), "{result:?}");
}

#[test]
fn vela_puts_every_operator_on_the_npu() {
    if litert_oracle::require("Arm Vela (pip ethos-u-vela)", vela::available()).is_none() {
        return;
    }
    let (int8, _) = tiny_int8();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("unet_int8.tflite");
    tflite_writer::write_model_file(&int8, &path).expect("write model");
    for accelerator in vela::ACCELERATORS {
        let result =
            vela::compile(&path, accelerator, &dir.path().join(accelerator)).expect("vela");
        assert_eq!(result.cpu_ops, 0, "{accelerator}: {result:?}");
        assert!(
            result.npu_ops >= int8.subgraphs[0].operators.len(),
            "{accelerator}: {result:?}"
        );
        assert!(result.inference_ms.is_some_and(|ms| ms > 0.0), "{result:?}");
    }
}
