//! The `cargo xtask inspect` report on models written by the tests and by TensorFlow.

mod common;

use tflite_writer::*;

#[test]
fn int8_summary_lists_ops_tensors_and_totals() {
    let bytes = write_model(&common::int8_all_ops()).unwrap();
    let model = read_model(&bytes).unwrap();
    let s = summary::summary(&model);
    let text = s.to_text();
    if std::env::var_os("SHOW_SUMMARY").is_some() {
        println!("{text}");
    }
    let main = &s.subgraphs[0];
    assert_eq!(main.operators.len(), 18);
    assert_eq!(main.operators[0].op, "CONV_2D");
    assert_eq!(main.operators[0].version, 3);
    assert!(
        main.operators[0].options.contains("stride=1x1")
            && main.operators[0].options.contains("act=Relu")
    );
    // Per-channel weights are shown as count + range, constants are flagged.
    let weights = main
        .tensors
        .iter()
        .find(|t| t.name == "conv/weights")
        .unwrap();
    assert!(weights.constant);
    assert_eq!(weights.n_scales, 4);
    let q = weights.quantization.as_deref().unwrap();
    assert!(
        q.starts_with("per-axis(dim 0) n=4 s=[1.000e-2, 1.600e-2] zp=[0, 0]"),
        "{q}"
    );
    let input = main.tensors.iter().find(|t| t.name == "input").unwrap();
    assert!(!input.constant);
    assert_eq!(input.quantization.as_deref(), Some("s=2.000000e-2 zp=-3"));
    // Totals: parameters exclude the int32 shape/size/slice constants but include the int32 biases.
    let expected_params = 4 * 3 * 3 * 2 + 4 + 3 * 3 * 4 + 4 + 4 * 2 * 2 * 4 + 4 + 10 * 512 + 10;
    assert_eq!(main.totals.params, expected_params);
    let const_bytes: usize = model.buffers.iter().map(|b| b.data.len()).sum::<usize>() - 16; // less min_runtime_version
    assert_eq!(main.totals.weight_bytes, const_bytes);
    // The largest live set is at the CONCATENATION (operator 9): its two 256-byte inputs, its
    // 512-byte output, and the 256-byte TRANSPOSE_CONV output that waits for the PACK.
    assert_eq!(main.totals.peak_activation_bytes, 256 + 256 + 512 + 256);
    assert_eq!(main.totals.peak_at_operator, Some(9));
    assert_eq!(s.min_runtime_version.as_deref(), Some("2.3.0"));
    for needle in [
        "operators:",
        "tensors:",
        "parameters:",
        "weight bytes:",
        "peak activation bytes:",
        "min runtime version:      2.3.0",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn summary_of_converter_model() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/tf_unet/tiny_unet_int8.tflite");
    let model = read_model_file(&path).unwrap();
    let s = summary::summary(&model);
    assert_eq!(s.min_runtime_version.as_deref(), Some("2.2.0"));
    let main = &s.subgraphs[0];
    let ops: Vec<&str> = main.operators.iter().map(|o| o.op.as_str()).collect();
    assert!(
        ops.contains(&"SHAPE") && ops.contains(&"STRIDED_SLICE") && ops.contains(&"PACK"),
        "{ops:?}"
    );
    // Keras layers: 1·9·4+4, 4·9·4+4, 4·9·8+8, 8·9·8+8, transposed 8·4·4+4, 8·9·4+4, 4·1+1.
    let keras_params = (9 * 4 + 4)
        + (4 * 9 * 4 + 4)
        + (4 * 9 * 8 + 8)
        + (8 * 9 * 8 + 8)
        + (8 * 4 * 4 + 4)
        + (8 * 9 * 4 + 4)
        + (4 + 1);
    // The converter drops the transposed conv's all-zero (initial) bias: TRANSPOSE_CONV v2, no bias input.
    let tconv = model.subgraphs[0]
        .operators
        .iter()
        .find(|o| o.op == BuiltinOp::TRANSPOSE_CONV)
        .unwrap();
    assert!(tconv.inputs.len() == 3 || tconv.inputs[3] == -1);
    assert_eq!(main.totals.params, keras_params - 4);
    let json = serde_json::to_value(&s).unwrap();
    assert!(json["subgraphs"][0]["tensors"].as_array().unwrap().len() > 10);
}
