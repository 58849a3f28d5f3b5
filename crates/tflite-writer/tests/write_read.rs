//! Writer and reader on models built in the tests: header, alignment, determinism, round trips.

mod common;

use tflite_writer::*;

fn models() -> Vec<(&'static str, Model)> {
    vec![
        ("float_conv", common::float_conv()),
        ("int8_all_ops", common::int8_all_ops()),
    ]
}

#[test]
fn header_version_and_sentinel() {
    for (name, model) in models() {
        let bytes = write_model(&model).unwrap();
        assert_eq!(&bytes[4..8], b"TFL3", "{name}");
        let read = read_model(&bytes).unwrap();
        assert!(
            read.buffers[0].data.is_empty(),
            "{name}: buffers[0] must be the empty sentinel"
        );
        assert!(
            read.description.starts_with("tflite-writer "),
            "{name}: {}",
            read.description
        );
        assert_eq!(read.signature_defs.len(), 1);
        assert_eq!(read.signature_defs[0].signature_key, "serving_default");
        let sig = &read.signature_defs[0];
        let main = &read.subgraphs[0];
        let named: Vec<u32> = sig.inputs.iter().map(|m| m.tensor_index).collect();
        assert_eq!(
            named,
            main.inputs.iter().map(|&i| i as u32).collect::<Vec<_>>()
        );
        let named: Vec<u32> = sig.outputs.iter().map(|m| m.tensor_index).collect();
        assert_eq!(
            named,
            main.outputs.iter().map(|&i| i as u32).collect::<Vec<_>>()
        );
    }
}

/// Every non-empty buffer's data starts at a file offset that is a multiple of 16.
#[test]
fn constant_data_is_16_byte_aligned() {
    for (name, model) in models() {
        let bytes = write_model(&model).unwrap();
        let read = read_model(&bytes).unwrap();
        let mut checked = 0;
        for buffer in read.buffers.iter().filter(|b| !b.data.is_empty()) {
            // Find the buffer's bytes in the file, preceded by their u32 length.
            let len = (buffer.data.len() as u32).to_le_bytes();
            let found = bytes
                .windows(buffer.data.len() + 4)
                .enumerate()
                .filter(|(_, w)| w[..4] == len && w[4..] == buffer.data[..])
                .map(|(pos, _)| pos + 4)
                .collect::<Vec<_>>();
            assert!(!found.is_empty(), "{name}: buffer data not found");
            assert!(
                found.iter().any(|pos| pos % 16 == 0),
                "{name}: data at {found:?} not 16-byte aligned"
            );
            checked += 1;
        }
        assert!(checked >= 3, "{name}: only {checked} buffers checked");
    }
}

#[test]
fn same_ir_gives_same_bytes() {
    for (name, model) in models() {
        let a = write_model(&model).unwrap();
        let b = write_model(&model.clone()).unwrap();
        assert_eq!(a, b, "{name}");
    }
}

#[test]
fn write_read_write_is_identical() {
    for (name, model) in models() {
        let first = write_model(&model).unwrap();
        let read = read_model(&first).unwrap();
        assert_eq!(
            read,
            finalize(&model).unwrap(),
            "{name}: read(write(m)) != finalize(m)"
        );
        let second = write_model(&read).unwrap();
        assert_eq!(
            first, second,
            "{name}: write -> read -> write changed the bytes"
        );
    }
}

#[test]
fn op_versions_and_min_runtime_version() {
    let model = finalize(&common::int8_all_ops()).unwrap();
    let versions: Vec<(String, i32)> = model.subgraphs[0]
        .operators
        .iter()
        .map(|op| (op.op.name(), op.version))
        .collect();
    let version_of = |name: &str| versions.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    // The converter's versions for int8 ops (op_version.cc).
    assert_eq!(version_of("CONV_2D"), Some(3));
    assert_eq!(version_of("DEPTHWISE_CONV_2D"), Some(3));
    assert_eq!(version_of("MAX_POOL_2D"), Some(2));
    assert_eq!(version_of("TRANSPOSE_CONV"), Some(3));
    assert_eq!(version_of("CONCATENATION"), Some(2));
    assert_eq!(version_of("FULLY_CONNECTED"), Some(4));
    assert_eq!(version_of("RESIZE_BILINEAR"), Some(3));
    assert_eq!(version_of("RESIZE_NEAREST_NEIGHBOR"), Some(2));
    assert_eq!(version_of("LOGISTIC"), Some(2));
    assert_eq!(version_of("QUANTIZE"), Some(1));
    assert_eq!(version_of("DEQUANTIZE"), Some(2));
    let text = summary::summary(&model);
    // TRANSPOSE_CONV v3 needs 2.3.0 and is the newest requirement here.
    assert_eq!(text.min_runtime_version.as_deref(), Some("2.3.0"));
    let float = finalize(&common::float_conv()).unwrap();
    assert_eq!(float.subgraphs[0].operators[0].version, 1);
    assert_eq!(
        summary::summary(&float).min_runtime_version.as_deref(),
        Some("1.5.0")
    );
}

#[test]
fn bad_ir_is_an_error_not_a_panic() {
    let mut model = common::float_conv();
    model.subgraphs[0].operators[0].inputs[1] = 99;
    let err = write_model(&model).unwrap_err().to_string();
    assert!(err.contains("input tensor 99 out of range"), "{err}");

    let mut model = common::float_conv();
    model.buffers[1].data.pop();
    let err = write_model(&model).unwrap_err().to_string();
    assert!(err.contains("needs 432"), "{err}");

    let mut model = common::int8_all_ops();
    model.subgraphs[0].tensors[1]
        .quantization
        .as_mut()
        .unwrap()
        .zero_point
        .pop();
    let err = write_model(&model).unwrap_err().to_string();
    assert!(err.contains("scales but"), "{err}");
}

#[test]
fn file_writer_is_atomic_and_reader_names_the_file() {
    let dir = std::env::temp_dir().join(format!("tflite-writer-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.tflite");
    write_model_file(&common::float_conv(), &path).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "temporary files left behind: {leftovers:?}"
    );
    read_model_file(&path).unwrap();

    let bad = dir.join("bad.tflite");
    std::fs::write(&bad, b"definitely not a model").unwrap();
    let err = read_model_file(&bad).unwrap_err().to_string();
    assert!(err.contains("bad.tflite") && err.contains("TFL3"), "{err}");
    let err = read_model_file(&dir.join("missing.tflite"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.tflite"), "{err}");

    // An unwritable model leaves no file behind.
    let mut broken = common::float_conv();
    broken.subgraphs[0].outputs = vec![1000];
    let target = dir.join("broken.tflite");
    assert!(write_model_file(&broken, &target).is_err());
    assert!(!target.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
