//! The exported float TFLite model computes what the burn model computes: checked with our
//! `tflite-runtime` (≤ 1e-4 max abs against burn) and with LiteRT, TensorFlow Lite's own runtime
//! (≤ 1e-5 against `tflite-runtime`), for both upsampling variants.

use std::path::Path;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Tensor, TensorData};
use tflite_runtime::{Interpreter, Options};
use tflite_writer::{BuiltinOp, TensorType, write_model};
use unet_train::rng::SplitMix64;
use unet_train::{UNet, UNetConfig, Upsampling, export_float};

/// Adds small random offsets to every parameter, so biases are not all zero and a wrong bias or
/// weight layout shows up in the outputs.
struct Perturb {
    rng: SplitMix64,
}

impl ModuleMapper for Perturb {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let rng = &mut self.rng;
        param.map(|t| {
            let shape = t.shape();
            let noise: Vec<f32> = (0..shape.num_elements())
                .map(|_| rng.uniform(0.05))
                .collect();
            let noise = Tensor::from_data(TensorData::new(noise, shape), &t.device());
            t + noise
        })
    }
}

fn model(upsampling: Upsampling, seed: u64) -> UNet {
    let device = Device::flex();
    let cfg = UNetConfig {
        fms: 4,
        size: 32,
        upsampling,
        dropout: 0.2,
    };
    let model = cfg.init(&device, seed).expect("valid config");
    model.map(&mut Perturb {
        rng: SplitMix64::new(seed + 100),
    })
}

fn random_image(size: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..size * size).map(|_| rng.uniform(2.0)).collect()
}

fn burn_forward(model: &UNet, image: &[f32], size: usize) -> Vec<f32> {
    let x = Tensor::<4>::from_data(
        TensorData::new(image.to_vec(), [1, 1, size, size]),
        &Device::flex(),
    );
    model.valid().forward(x).into_data().iter::<f32>().collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn runtime_forward(model: &tflite_writer::Model, image: &[f32]) -> Vec<f32> {
    let mut interpreter =
        Interpreter::new(model, Options::default()).expect("runtime accepts the export");
    interpreter.set_input::<f32>(0, image).expect("input");
    interpreter.invoke().expect("invoke");
    interpreter.output::<f32>(0).expect("output").to_vec()
}

/// Runs LiteRT on `model_path` with `input_path` (raw little-endian f32) and returns its output,
/// or `None` (with the reason printed) when the LiteRT oracle is not installed outside CI.
fn litert_forward(model_path: &Path, input_path: &Path, output_path: &Path) -> Option<Vec<f32>> {
    litert_oracle::require("LiteRT (pip ai-edge-litert)", litert_oracle::probe_litert())?;
    if let Err(e) = litert_oracle::run([
        std::ffi::OsStr::new("signature"),
        model_path.as_os_str(),
        input_path.as_os_str(),
        output_path.as_os_str(),
    ]) {
        panic!("{e}");
    }
    let bytes = std::fs::read(output_path).expect("LiteRT output");
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

fn check_variant(upsampling: Upsampling, seed: u64) {
    let size = 32;
    let model = model(upsampling, seed);
    let exported = export_float(&model);

    // Structure: NHWC batch-1 static I/O, the expected upsampling op, LOGISTIC last.
    let graph = &exported.subgraphs[0];
    let input = &graph.tensors[graph.inputs[0] as usize];
    let output = &graph.tensors[graph.outputs[0] as usize];
    assert_eq!(input.shape, vec![1, size as i32, size as i32, 1]);
    assert_eq!(output.shape, vec![1, size as i32, size as i32, 1]);
    assert_eq!(input.dtype, TensorType::Float32);
    assert_eq!(
        graph.operators.last().map(|op| op.op),
        Some(BuiltinOp::LOGISTIC)
    );
    let count = |op| graph.operators.iter().filter(|o| o.op == op).count();
    assert_eq!(count(BuiltinOp::CONV_2D), 19);
    assert_eq!(count(BuiltinOp::MAX_POOL_2D), 4);
    assert_eq!(count(BuiltinOp::CONCATENATION), 4);
    match upsampling {
        Upsampling::TransposedConv => assert_eq!(count(BuiltinOp::TRANSPOSE_CONV), 4),
        Upsampling::Nearest => assert_eq!(count(BuiltinOp::RESIZE_NEAREST_NEIGHBOR), 4),
    }
    assert_eq!(exported.signature_defs[0].signature_key, "serving_default");

    let dir = tempfile::tempdir().expect("tempdir");
    let model_path = dir.path().join("model.tflite");
    std::fs::write(
        &model_path,
        write_model(&exported).expect("writer serialises the export"),
    )
    .expect("write");

    for k in 0..2 {
        let image = random_image(size, seed * 10 + k);
        let expected = burn_forward(&model, &image, size);
        let ours = runtime_forward(&exported, &image);
        let diff = max_abs_diff(&ours, &expected);
        assert!(
            diff <= 1e-4,
            "{upsampling:?}: tflite-runtime vs burn max abs diff {diff}"
        );
        assert!(
            expected.iter().any(|&p| p > 0.01 && p < 0.99),
            "outputs are not all saturated"
        );

        let input_path = dir.path().join("input.bin");
        let bytes: Vec<u8> = image.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&input_path, bytes).expect("write input");
        if let Some(litert) = litert_forward(&model_path, &input_path, &dir.path().join("out.bin"))
        {
            let diff_runtime = max_abs_diff(&litert, &ours);
            assert!(
                diff_runtime <= 1e-5,
                "{upsampling:?}: LiteRT vs tflite-runtime max abs diff {diff_runtime}"
            );
            let diff_burn = max_abs_diff(&litert, &expected);
            assert!(
                diff_burn <= 1e-4,
                "{upsampling:?}: LiteRT vs burn max abs diff {diff_burn}"
            );
        }
    }
}

#[test]
fn transposed_conv_export_matches_burn_on_runtime_and_litert() {
    check_variant(Upsampling::TransposedConv, 1);
}

#[test]
fn nearest_export_matches_burn_on_runtime_and_litert() {
    check_variant(Upsampling::Nearest, 2);
}
