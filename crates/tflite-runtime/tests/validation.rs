//! Bad input is refused with clear errors, in `new()` for model problems and in `set_input` /
//! `invoke` for caller mistakes; a property test feeds random valid and corrupted models and
//! checks that nothing panics.

mod common;

use proptest::prelude::*;
use tflite_runtime::synth::{Rng, UNetSpec, parameter_count, unet};
use tflite_runtime::{Interpreter, Options, RuntimeError};
use tflite_writer::*;

fn int8_conv() -> Model {
    let mut rng = Rng::new(3);
    common::conv_case(
        &mut rng,
        true,
        (6, 6),
        2,
        3,
        (3, 3),
        (1, 1),
        (1, 1),
        Padding::Same,
        Activation::Relu,
    )
    .model
}

fn new_err(model: &Model) -> String {
    match Interpreter::new(model, Options::default()) {
        Ok(_) => panic!("the model was accepted"),
        Err(e) => e.to_string(),
    }
}

fn check_err(model: &Model, expected: &[&str]) {
    let msg = new_err(model);
    for part in expected {
        assert!(
            msg.contains(part),
            "error {msg:?} does not mention {part:?}"
        );
    }
}

#[test]
fn valid_model_is_accepted_and_runs() {
    let model = int8_conv();
    let mut interp = Interpreter::new(&model, Options::default()).unwrap();
    interp.set_input(0, &[5i8; 72]).unwrap();
    interp.invoke().unwrap();
    assert_eq!(interp.output::<i8>(0).unwrap().len(), 108);
}

#[test]
fn inconsistent_declared_shape_is_refused() {
    let mut model = int8_conv();
    let y = model.subgraphs[0].outputs[0] as usize;
    model.subgraphs[0].tensors[y].shape = vec![1, 5, 6, 3];
    check_err(
        &model,
        &[
            "operator 0 (CONV_2D)",
            "declared [1, 5, 6, 3]",
            "[1, 6, 6, 3]",
        ],
    );
}

#[test]
fn channel_mismatch_is_refused() {
    let mut model = int8_conv();
    model.subgraphs[0].tensors[0].shape = vec![1, 6, 6, 4];
    check_err(&model, &["CONV_2D", "4 channels", "expects 2"]);
}

#[test]
fn short_buffer_is_refused() {
    let mut model = int8_conv();
    let w = model.subgraphs[0].operators[0].inputs[1] as usize;
    let buffer = model.subgraphs[0].tensors[w].buffer as usize;
    model.buffers[buffer].data.truncate(10);
    check_err(&model, &["'filter'", "holds 10 bytes", "needs 54"]);
}

#[test]
fn missing_buffer_is_refused() {
    let mut model = int8_conv();
    model.subgraphs[0].tensors[1].buffer = 99;
    check_err(&model, &["buffer index 99 is out of range"]);
}

#[test]
fn wrong_length_quantization_is_refused() {
    let mut model = int8_conv();
    let q = model.subgraphs[0].tensors[0].quantization.as_mut().unwrap();
    q.zero_point.push(0);
    check_err(&model, &["'x'", "1 scales but 2 zero points"]);

    let mut model = int8_conv();
    let w = model.subgraphs[0].operators[0].inputs[1] as usize;
    let q = model.subgraphs[0].tensors[w].quantization.as_mut().unwrap();
    q.scale.pop();
    q.zero_point.pop();
    check_err(
        &model,
        &["'filter'", "2 per-axis scales but dimension 0 has size 3"],
    );
}

#[test]
fn zero_and_negative_scales_are_refused() {
    for bad in [0.0f32, -0.5, f32::NAN, f32::INFINITY] {
        let mut model = int8_conv();
        model.subgraphs[0].tensors[0]
            .quantization
            .as_mut()
            .unwrap()
            .scale[0] = bad;
        check_err(&model, &["'x'", "not a finite positive number"]);
    }
}

#[test]
fn unsupported_op_names_op_and_index() {
    let mut model = int8_conv();
    let mut softmax = model.subgraphs[0].operators[0].clone();
    softmax.op = BuiltinOp::SOFTMAX;
    model.subgraphs[0].operators.push(softmax);
    let err = Interpreter::new(&model, Options::default()).unwrap_err();
    assert!(matches!(err, RuntimeError::UnsupportedOp { index: 1, .. }));
    assert_eq!(
        err.to_string(),
        "operator 1: SOFTMAX is not supported by tflite-runtime"
    );
}

#[test]
fn unsupported_type_names_op_and_types() {
    let mut model = int8_conv();
    for t in &mut model.subgraphs[0].tensors[..1] {
        t.dtype = TensorType::Int16;
    }
    check_err(
        &model,
        &["operator 0 (CONV_2D)", "unsupported type", "INT16"],
    );
}

#[test]
fn unsupported_activation_is_refused() {
    let mut model = int8_conv();
    if let BuiltinOptions::Conv2D(o) = &mut model.subgraphs[0].operators[0].options {
        o.fused_activation = Activation::Tanh;
    }
    check_err(&model, &["CONV_2D", "Tanh"]);
}

#[test]
fn read_before_write_is_refused() {
    let mut model = int8_conv();
    model.subgraphs[0].inputs.clear();
    check_err(&model, &["reads tensor 0 'x'", "nothing has written"]);
}

#[test]
fn bad_tensor_index_is_refused() {
    let mut model = int8_conv();
    model.subgraphs[0].operators[0].inputs[0] = 42;
    check_err(&model, &["operator 0 (CONV_2D) input 0", "tensor index 42"]);
}

#[test]
fn wrong_input_length_and_type_are_refused() {
    let model = int8_conv();
    let mut interp = Interpreter::new(&model, Options::default()).unwrap();
    let err = interp.set_input(0, &[0i8; 71]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "input 0 needs 72 elements (shape [1, 6, 6, 2]), got 71"
    );
    let err = interp.set_input(0, &[0f32; 72]).unwrap_err();
    assert_eq!(err.to_string(), "input 0 is INT8, not FLOAT32");
    assert!(interp.set_input(1, &[0i8; 72]).is_err());
    let err = interp.invoke().unwrap_err();
    assert_eq!(err.to_string(), "input 0 was never set");
    assert!(interp.output::<f32>(0).is_err());
}

#[test]
fn observer_sees_every_executed_op() {
    let model = unet(UNetSpec {
        fms: 2,
        size: 16,
        in_channels: 1,
        int8: true,
        seed: 1,
    });
    let mut interp = Interpreter::new(&model, Options::default()).unwrap();
    interp.set_input(0, &[3i8; 256]).unwrap();
    let mut seen = Vec::new();
    let mut last = Vec::new();
    interp
        .invoke_with_observer(&mut |obs| {
            assert_eq!(obs.data.len(), obs.tensor.num_elements());
            seen.push((obs.op_index, obs.tensor.index));
            if let tflite_runtime::TensorData::I8(v) = obs.data {
                last = v.to_vec();
            }
        })
        .unwrap();
    assert_eq!(seen.len(), model.subgraphs[0].operators.len());
    assert_eq!(seen.len(), interp.num_executed_ops());
    let ops: Vec<usize> = seen.iter().map(|s| s.0).collect();
    assert_eq!(ops, (0..seen.len()).collect::<Vec<_>>());
    // The last observation is the model output, and plain invoke gives the same.
    assert_eq!(interp.output::<i8>(0).unwrap(), last.as_slice());
    interp.invoke().unwrap();
    assert_eq!(interp.output::<i8>(0).unwrap(), last.as_slice());
}

#[test]
fn shape_subgraph_is_folded() {
    let mut rng = Rng::new(5);
    let case = common::transpose_conv_case(
        &mut rng,
        true,
        (4, 4),
        3,
        2,
        2,
        2,
        Padding::Same,
        Activation::None,
        true,
        true,
    );
    let interp = Interpreter::new(&case.model, Options::default()).unwrap();
    assert_eq!(interp.num_folded_ops(), 3, "SHAPE, STRIDED_SLICE and PACK");
    assert_eq!(interp.num_executed_ops(), 1);
}

#[test]
fn unet_arena_reuses_memory_and_has_intel_parameter_count() {
    let model = unet(UNetSpec {
        fms: 16,
        size: 128,
        in_channels: 1,
        int8: true,
        seed: 1,
    });
    assert_eq!(parameter_count(&model), 1_940_817);
    let interp = Interpreter::new(&model, Options::default()).unwrap();
    let memory = interp.memory();
    assert!(memory.arena_bytes < memory.unshared_bytes / 2, "{memory:?}");
    // At least the largest simultaneous pair: the 128×128×32 concat and its two inputs.
    assert!(memory.arena_bytes >= 2 * 128 * 128 * 32, "{memory:?}");
}

/// One random corruption of a model.
fn corrupt(model: &mut Model, rng: &mut Rng) {
    let sg = &mut model.subgraphs[0];
    let n_tensors = sg.tensors.len() as i64;
    let t = rng.range_i64(0, n_tensors - 1) as usize;
    match rng.range_i64(0, 11) {
        0 => {
            let shape = &mut sg.tensors[t].shape;
            if !shape.is_empty() {
                let d = rng.range_i64(0, shape.len() as i64 - 1) as usize;
                shape[d] = rng.range_i64(-2, 12) as i32;
            }
        }
        1 => {
            let b = sg.tensors[t].buffer as usize;
            if b < model.buffers.len() {
                let len = model.buffers[b].data.len();
                model.buffers[b]
                    .data
                    .truncate(rng.range_i64(0, len as i64) as usize);
            }
        }
        2 => {
            if let Some(q) = sg.tensors[t].quantization.as_mut() {
                match rng.range_i64(0, 3) {
                    0 => q.scale.push(0.1),
                    1 => q.zero_point.push(300),
                    2 => q.scale.iter_mut().for_each(|s| *s = -*s),
                    _ => q.quantized_dimension = rng.range_i64(-2, 6) as i32,
                }
            } else {
                sg.tensors[t].quantization = Some(Quantization::per_tensor(
                    rng.range_f32(1e-6, 10.0),
                    rng.range_i64(-200, 200),
                ));
            }
        }
        3 if !sg.operators.is_empty() => {
            let o = rng.range_i64(0, sg.operators.len() as i64 - 1) as usize;
            let op = &mut sg.operators[o];
            if !op.inputs.is_empty() {
                let k = rng.range_i64(0, op.inputs.len() as i64 - 1) as usize;
                op.inputs[k] = rng.range_i64(-3, n_tensors + 2) as i32;
            }
        }
        4 if !sg.operators.is_empty() => {
            let o = rng.range_i64(0, sg.operators.len() as i64 - 1) as usize;
            sg.operators[o].op = BuiltinOp(rng.range_i64(0, 130) as i32);
        }
        5 => {
            sg.tensors[t].dtype = TensorType::from_code(rng.range_i64(0, 10) as i8);
        }
        6 if !sg.operators.is_empty() => {
            let o = rng.range_i64(0, sg.operators.len() as i64 - 1) as usize;
            let options = &mut sg.operators[o].options;
            match options {
                BuiltinOptions::Conv2D(c) => {
                    c.stride_h = rng.range_i64(-1, 4) as i32;
                    c.dilation_w = rng.range_i64(-1, 4) as i32;
                }
                BuiltinOptions::Pool2D(p) => {
                    p.filter_height = rng.range_i64(-1, 12) as i32;
                    p.stride_w = rng.range_i64(-1, 4) as i32;
                }
                BuiltinOptions::TransposeConv(c) => c.stride_w = rng.range_i64(-1, 4) as i32,
                BuiltinOptions::Concatenation(c) => c.axis = rng.range_i64(-6, 6) as i32,
                _ => *options = BuiltinOptions::Pool2D(Pool2DOptions::square(2)),
            }
        }
        7 => {
            sg.outputs.push(rng.range_i64(-2, n_tensors + 2) as i32);
        }
        8 if !sg.operators.is_empty() => {
            let o = rng.range_i64(0, sg.operators.len() as i64 - 1) as usize;
            sg.operators[o].outputs = vec![rng.range_i64(-1, n_tensors) as i32];
        }
        9 => {
            if let Some(q) = sg.tensors[t].quantization.as_mut() {
                q.scale.iter_mut().for_each(|s| *s *= 1e20);
            }
        }
        10 if !sg.operators.is_empty() => {
            let o = rng.range_i64(0, sg.operators.len() as i64 - 1) as usize;
            sg.operators.remove(o);
        }
        _ => sg.inputs.clear(),
    }
}

fn run_if_valid(model: &Model, rng: &mut Rng) {
    let Ok(mut interp) = Interpreter::new(model, Options::default()) else {
        return;
    };
    for i in 0..interp.num_inputs() {
        let info = interp.input_info(i).unwrap().clone();
        let n = info.num_elements();
        let _ = match info.dtype {
            TensorType::Int8 => interp.set_input(i, &rng.i8s(n, -128, 127)),
            TensorType::Float32 => interp.set_input(i, &rng.f32s(n, -1e3, 1e3)),
            TensorType::Int32 => interp.set_input(i, &vec![1i32; n]),
            TensorType::UInt8 => interp.set_input(i, &vec![1u8; n]),
            TensorType::Int64 => interp.set_input(i, &vec![1i64; n]),
            _ => Ok(()),
        };
    }
    let _ = interp.invoke();
    for k in 0..interp.num_outputs() {
        let _ = interp.output_data(k);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn random_models_never_panic(seed in any::<u64>(), n_corruptions in 0usize..4) {
        let mut rng = Rng::new(seed);
        let mut cases = common::all_cases_small(&mut rng);
        let pick = rng.range_i64(0, cases.len() as i64 - 1) as usize;
        let mut model = cases.swap_remove(pick).model;
        for _ in 0..n_corruptions {
            corrupt(&mut model, &mut rng);
        }
        run_if_valid(&model, &mut rng);
    }
}
