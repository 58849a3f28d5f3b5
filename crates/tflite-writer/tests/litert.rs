//! Checks against the real runtime: LiteRT (pip `ai-edge-litert`) loads every model the writer
//! tests build, allocates its tensors, reports the shapes, dtypes and quantization our IR holds,
//! and runs read-then-rewritten models with identical outputs.
//!
//! Without `python3` + `ai_edge_litert` these tests print why they skipped; with
//! `REQUIRE_LITERT=1` (set by `.ci/run`) a missing oracle is a failure instead.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use tflite_writer::*;

use litert_oracle::litert;

fn probe(args: &[&Path], command: &str) -> Value {
    let argv =
        std::iter::once(std::ffi::OsStr::new(command)).chain(args.iter().map(|p| p.as_os_str()));
    let stdout =
        litert_oracle::run(argv).unwrap_or_else(|e| panic!("LiteRT rejected {args:?}:\n{e}"));
    serde_json::from_str(&stdout).expect("oracle output is JSON")
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tflite-writer-litert-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn numpy_dtype(dtype: TensorType) -> &'static str {
    match dtype {
        TensorType::Float32 => "float32",
        TensorType::Float16 => "float16",
        TensorType::Int32 => "int32",
        TensorType::UInt8 => "uint8",
        TensorType::Int64 => "int64",
        TensorType::Bool => "bool",
        TensorType::Int16 => "int16",
        TensorType::Int8 => "int8",
        TensorType::Other(_) => "other",
    }
}

/// LiteRT's view of `model` equals the IR: every tensor's shape, dtype and quantization, and the
/// graph inputs, outputs and signature.
fn assert_litert_agrees(name: &str, model: &Model, dir: &Path) {
    let model = finalize(model).unwrap();
    let path = dir.join(format!("{name}.tflite"));
    write_model_file(&model, &path).unwrap();
    let report = probe(&[&path], "describe");
    let main = &model.subgraphs[0];
    let tensors = report["tensors"].as_array().unwrap();
    // LiteRT may append its own scratch tensors after ours.
    assert!(
        tensors.len() >= main.tensors.len(),
        "{name}: LiteRT sees {} tensors, the IR has {}",
        tensors.len(),
        main.tensors.len()
    );
    for (idx, tensor) in main.tensors.iter().enumerate() {
        let seen = tensors
            .iter()
            .find(|t| t["index"] == idx)
            .unwrap_or_else(|| panic!("{name}: tensor {idx} missing"));
        let at = format!("{name} tensor {idx} {:?}", tensor.name);
        assert_eq!(seen["name"], tensor.name.as_str(), "{at}");
        let shape: Vec<i64> = seen["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(
            shape,
            tensor
                .shape
                .iter()
                .map(|&d| i64::from(d))
                .collect::<Vec<_>>(),
            "{at}: shape"
        );
        assert_eq!(seen["dtype"], numpy_dtype(tensor.dtype), "{at}: dtype");
        let scales: Vec<f32> = seen["scales"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let zero_points: Vec<i64> = seen["zero_points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        match &tensor.quantization {
            Some(q) if !q.scale.is_empty() => {
                assert_eq!(scales, q.scale, "{at}: scales");
                assert_eq!(zero_points, q.zero_point, "{at}: zero points");
                assert_eq!(
                    seen["quantized_dimension"], q.quantized_dimension,
                    "{at}: quantized dimension"
                );
            }
            _ => assert!(
                scales.is_empty() && zero_points.is_empty(),
                "{at}: LiteRT sees quantization {scales:?}"
            ),
        }
    }
    assert_eq!(
        report["inputs"],
        serde_json::json!(main.inputs),
        "{name}: inputs"
    );
    assert_eq!(
        report["outputs"],
        serde_json::json!(main.outputs),
        "{name}: outputs"
    );
    let signature = &report["signatures"]["serving_default"];
    let names = |maps: &[TensorMap]| maps.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
    let sig = &model.signature_defs[0];
    let mut expected_inputs = names(&sig.inputs);
    let mut expected_outputs = names(&sig.outputs);
    expected_inputs.sort();
    expected_outputs.sort();
    let got = |key: &str| {
        let mut v: Vec<String> = signature[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(got("inputs"), expected_inputs, "{name}: signature inputs");
    assert_eq!(
        got("outputs"),
        expected_outputs,
        "{name}: signature outputs"
    );
}

#[test]
fn litert_loads_float_conv_model() {
    if litert().is_err() {
        return;
    }
    let dir = temp_dir("float");
    assert_litert_agrees("float_conv", &common::float_conv(), &dir);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn litert_loads_int8_per_channel_model_with_every_op() {
    if litert().is_err() {
        return;
    }
    let dir = temp_dir("int8");
    assert_litert_agrees("int8_all_ops", &common::int8_all_ops(), &dir);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A model LiteRT accepts, read and written back, runs in LiteRT with identical outputs.
fn assert_rewrite_runs_identically(name: &str, original: &Path, dir: &Path) {
    let bytes = std::fs::read(original).unwrap();
    let model = read_model(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let rewritten = dir.join(format!("{name}.rewritten.tflite"));
    write_model_file(&model, &rewritten).unwrap();
    // And the rewrite is stable: write(read(write(read(x)))) == write(read(x)).
    let again = write_model(&read_model(&std::fs::read(&rewritten).unwrap()).unwrap()).unwrap();
    assert_eq!(
        again,
        std::fs::read(&rewritten).unwrap(),
        "{name}: rewrite is not a fixed point"
    );
    let report = probe(&[original, &rewritten], "compare");
    assert!(
        report["n_values"].as_u64().unwrap() > 0,
        "{name}: nothing compared: {report}"
    );
    assert_eq!(
        report["identical"], true,
        "{name}: outputs differ: {report}"
    );
}

#[test]
fn litert_runs_rewritten_models_identically() {
    if litert().is_err() {
        return;
    }
    let dir = temp_dir("rewrite");
    for (name, model) in [
        ("float_conv", common::float_conv()),
        ("int8_all_ops", common::int8_all_ops()),
    ] {
        let original = dir.join(format!("{name}.tflite"));
        write_model_file(&model, &original).unwrap();
        assert_rewrite_runs_identically(name, &original, &dir);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// TensorFlow's converter output (int8 with SHAPE/STRIDED_SLICE/PACK, and float), read and written
/// back by us, runs in LiteRT with outputs identical to the original's, and LiteRT sees the same
/// tensors as our IR.
#[test]
fn litert_runs_rewritten_converter_models_identically() {
    if litert().is_err() {
        return;
    }
    let dir = temp_dir("tf");
    for name in ["tiny_unet_int8", "tiny_unet_fp32"] {
        let original = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../fixtures/tf_unet/{name}.tflite"));
        assert_rewrite_runs_identically(name, &original, &dir);
        let model = read_model_file(&original).unwrap();
        assert_litert_agrees(name, &model, &dir);
    }
    std::fs::remove_dir_all(dir).unwrap();
}
