//! The produced models (int8, int16x8, mixed) against the outside world: LiteRT `BUILTIN_REF`
//! gives the same bytes as our runtime, and Arm Vela puts every operator on the Ethos-U NPU. Each
//! test prints why it is skipped when its tool is missing (CI installs both).

use tflite_runtime::synth::{UNetSpec, unet};
use unet_data::{DataConfig, SourceKind, Split};
use unet_quantizer::dataset::from_source;
use unet_quantizer::verify::QuantInput;
use unet_quantizer::{Method, Observer, Precision, QuantConfig, litert, quantize, vela};

const SIZE: usize = 32;

fn tiny(precision: Precision) -> (tflite_writer::Model, Vec<QuantInput>) {
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
    let calib = from_source(&cfg, Split::Train, 16)
        .expect("calibration data")
        .images;
    let held_out = from_source(&cfg, Split::Test, 4).expect("held-out data");
    let config = QuantConfig {
        method: Method::Fixed(Observer::Mse),
        threads: 2,
        precisions: vec![precision],
        ..QuantConfig::default()
    };
    let (model, _) = quantize(&float, &calib, &config).expect("quantize");
    let rt = tflite_runtime::Interpreter::new(&model, tflite_runtime::Options::default())
        .expect("runtime");
    let info = rt.input_info(0).expect("input").clone();
    let inputs = held_out
        .images
        .images
        .iter()
        .map(|x| QuantInput::for_tensor(x, &info).expect("quantised input"))
        .collect();
    (model, inputs)
}

#[test]
fn litert_builtin_ref_matches_our_runtime_bit_for_bit() {
    if litert_oracle::require("LiteRT (pip ai-edge-litert)", litert::available()).is_none() {
        return;
    }
    for precision in Precision::ALL {
        let (model, inputs) = tiny(precision);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(format!("unet_{precision}.tflite"));
        tflite_writer::write_model_file(&model, &path).expect("write model");
        let result = litert::compare(&model, &path, &inputs, dir.path()).expect("LiteRT run");
        assert_eq!(result.samples, 4);
        assert_eq!(result.values, 4 * SIZE * SIZE);
        assert!(result.is_exact(), "{precision}: {result:?}");
    }
}

#[test]
fn vela_puts_every_operator_on_the_npu() {
    if litert_oracle::require("Arm Vela (pip ethos-u-vela)", vela::available()).is_none() {
        return;
    }
    for precision in Precision::ALL {
        let (model, _) = tiny(precision);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(format!("unet_{precision}.tflite"));
        tflite_writer::write_model_file(&model, &path).expect("write model");
        for accelerator in vela::ACCELERATORS {
            let out = dir.path().join(accelerator);
            let result = vela::compile(&path, accelerator, &out).expect("vela");
            assert_eq!(result.cpu_ops, 0, "{precision} {accelerator}: {result:?}");
            assert!(
                result.npu_ops >= model.subgraphs[0].operators.len(),
                "{precision} {accelerator}: {result:?}"
            );
            assert!(result.inference_ms.is_some_and(|ms| ms > 0.0), "{result:?}");
        }
    }
}
