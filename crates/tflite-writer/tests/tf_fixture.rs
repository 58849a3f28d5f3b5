//! Models made by TensorFlow's own converter (`fixtures/tf_unet/make_fixture.py`, committed):
//! the reader takes them, our versioning agrees with the converter's, and rewriting is stable.

use std::path::PathBuf;
use tflite_writer::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/tf_unet")
        .join(name)
}

const FIXTURES: [&str; 2] = ["tiny_unet_int8.tflite", "tiny_unet_fp32.tflite"];

#[test]
fn reads_converter_output_with_shape_ops() {
    for name in FIXTURES {
        let model = read_model_file(&fixture(name)).unwrap();
        let ops: Vec<BuiltinOp> = model.subgraphs[0]
            .operators
            .iter()
            .map(|op| op.op)
            .collect();
        for needed in [
            BuiltinOp::SHAPE,
            BuiltinOp::STRIDED_SLICE,
            BuiltinOp::PACK,
            BuiltinOp::TRANSPOSE_CONV,
            BuiltinOp::CONV_2D,
            BuiltinOp::MAX_POOL_2D,
            BuiltinOp::CONCATENATION,
            BuiltinOp::LOGISTIC,
        ] {
            assert!(ops.contains(&needed), "{name}: no {}", needed.name());
        }
        let input = &model.subgraphs[0].tensors[model.subgraphs[0].inputs[0] as usize];
        assert_eq!(
            input.shape_signature.as_deref(),
            Some(&[-1, 16, 16, 1][..]),
            "{name}: dynamic batch kept"
        );
        assert_eq!(model.signature_defs[0].signature_key, "serving_default");
    }
    let int8 = read_model_file(&fixture("tiny_unet_int8.tflite")).unwrap();
    let main = &int8.subgraphs[0];
    let conv = main
        .operators
        .iter()
        .find(|op| op.op == BuiltinOp::CONV_2D)
        .unwrap();
    let weights = &main.tensors[conv.inputs[1] as usize];
    let q = weights.quantization.as_ref().unwrap();
    assert_eq!(weights.dtype, TensorType::Int8);
    assert_eq!(
        q.scale.len(),
        weights.shape[0] as usize,
        "per-channel weights on dim 0"
    );
    assert_eq!(
        main.tensors[main.inputs[0] as usize].dtype,
        TensorType::Int8
    );
}

/// The converter's op versions and `min_runtime_version` equal what our rules compute.
#[test]
fn versioning_matches_the_converter() {
    for name in FIXTURES {
        let model = read_model_file(&fixture(name)).unwrap();
        let main = &model.subgraphs[0];
        for (idx, op) in main.operators.iter().enumerate() {
            assert_eq!(
                versioning::op_version(main, op),
                op.version,
                "{name}: operator {idx} ({}) version",
                op.op.name()
            );
        }
        let theirs = summary::summary(&model).min_runtime_version;
        let mut ours_model = model.clone();
        for op in &mut ours_model.subgraphs[0].operators {
            op.version = 0;
        }
        let ours = summary::summary(&finalize(&ours_model).unwrap()).min_runtime_version;
        assert!(theirs.is_some());
        assert_eq!(ours, theirs, "{name}: min_runtime_version");
    }
}

#[test]
fn rewriting_converter_output_is_stable() {
    for name in FIXTURES {
        let model = read_model_file(&fixture(name)).unwrap();
        let first = write_model(&model).unwrap();
        let reread = read_model(&first).unwrap();
        assert_eq!(reread, finalize(&model).unwrap(), "{name}");
        assert_eq!(
            write_model(&reread).unwrap(),
            first,
            "{name}: write -> read -> write changed bytes"
        );
        // The converter's metadata (CONVERSION_METADATA) and its buffers survive.
        assert!(
            reread
                .metadata
                .iter()
                .any(|m| m.name == "CONVERSION_METADATA"),
            "{name}"
        );
        assert!(
            reread.description.contains("MLIR Converted"),
            "{name}: {}",
            reread.description
        );
    }
}
