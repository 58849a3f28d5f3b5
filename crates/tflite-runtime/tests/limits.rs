//! Models whose shapes ask for absurd amounts of memory are refused by `Interpreter::new` with
//! an error naming the tensor and the sizes, before anything of that size is allocated; the
//! limit can be lowered and raised through `Limits`.

use tflite_runtime::{Interpreter, KernelTier, Limits, Options, RuntimeError};
use tflite_writer::*;

/// 46340² < 2³¹: every element count is a valid `i32`, the bytes are not reasonable.
const HUGE: [i32; 4] = [1, 46340, 46340, 1];

/// `x → RELU → y (→ RELU → z)`, all of `shape` and `dtype`, written to bytes and read back.
fn relu_chain(shape: &[i32], dtype: TensorType, two: bool) -> (Vec<u8>, Model) {
    let quant = || (dtype == TensorType::Int8).then(|| Quantization::per_tensor(0.1, 0));
    let mut b = ModelBuilder::new();
    let x = b.add_input("x", shape, dtype, quant());
    let y = b.add_activation("y", shape, dtype, quant());
    b.add_op(BuiltinOp::RELU, BuiltinOptions::None, &[x], &[y]);
    let mut out = y;
    if two {
        let z = b.add_activation("z", shape, dtype, quant());
        b.add_op(BuiltinOp::RELU, BuiltinOptions::None, &[y], &[z]);
        out = z;
    }
    b.set_outputs(&[out]);
    let bytes = write_model(&b.finish()).expect("write");
    let model = read_model(&bytes).expect("read back");
    (bytes, model)
}

fn memory_err(result: Result<Interpreter, RuntimeError>) -> (String, u64, u64) {
    match result {
        Ok(_) => panic!("the model was accepted"),
        Err(err @ RuntimeError::MemoryLimit { needed, limit, .. }) => {
            (err.to_string(), needed, limit)
        }
        Err(other) => panic!("expected a memory-limit error, got: {other}"),
    }
}

fn assert_mentions(message: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            message.contains(needle),
            "error {message:?} does not mention {needle:?}"
        );
    }
}

#[test]
fn huge_float_tensor_is_refused_naming_it() {
    let (bytes, model) = relu_chain(&HUGE, TensorType::Float32, false);
    assert!(bytes.len() < 1024, "a small file: {} bytes", bytes.len());
    let (message, needed, limit) = memory_err(Interpreter::new(&model, Options::default()));
    assert_eq!(needed, 46340 * 46340 * 4);
    assert_eq!(limit, Limits::DEFAULT_MAX_MEMORY_BYTES);
    assert_mentions(
        &message,
        &[
            "tensor 0 'x'",
            "[1, 46340, 46340, 1]",
            "FLOAT32",
            "8589582400 bytes",
            "memory limit of 4294967296 bytes",
            "TFLITE_RUNTIME_MAX_MEMORY_BYTES",
        ],
    );
}

#[test]
fn arena_over_the_limit_is_refused_naming_the_largest_tensor() {
    // Each int8 tensor (2 GiB) fits under 4 GiB; x, y and z alive together do not.
    let (_, model) = relu_chain(&HUGE, TensorType::Int8, true);
    for kernels in [KernelTier::Reference, KernelTier::Best] {
        let options = Options {
            kernels,
            threads: 1,
        };
        let (message, needed, _) = memory_err(Interpreter::new(&model, options));
        assert!(needed > Limits::DEFAULT_MAX_MEMORY_BYTES, "{needed}");
        assert_mentions(
            &message,
            &[
                "activation arena",
                "3 tensors",
                "tensor 0 'x' (shape [1, 46340, 46340, 1], INT8)",
            ],
        );
    }
}

#[test]
fn limit_can_be_lowered_and_raised() {
    let (_, model) = relu_chain(&[1, 64, 64, 4], TensorType::Int8, true);
    let options = Options::default();
    let interp = Interpreter::with_limits(&model, options, Limits::default()).unwrap();
    let arena = interp.memory().arena_bytes as u64;
    assert_eq!(arena, 3 * 64 * 64 * 4);
    // One byte short of the arena: refused, naming the arena.
    let low = Limits::default().with_max_memory_bytes(arena - 1);
    let (message, needed, limit) = memory_err(Interpreter::with_limits(&model, options, low));
    assert_eq!((needed, limit), (arena, arena - 1));
    assert_mentions(&message, &["activation arena", "3 tensors"]);
    // Below one tensor: refused at that tensor.
    let tiny = Limits::default().with_max_memory_bytes(1000);
    let (message, _, _) = memory_err(Interpreter::with_limits(&model, options, tiny));
    assert_mentions(
        &message,
        &["tensor 0 'x'", "16384 bytes", "limit of 1000 bytes"],
    );
    // Exactly the arena: accepted and runs.
    let exact = Limits::default().with_max_memory_bytes(arena);
    let mut interp = Interpreter::with_limits(&model, options, exact).unwrap();
    interp.set_input(0, &vec![-3i8; 64 * 64 * 4]).unwrap();
    interp.invoke().unwrap();
    assert!(interp.output::<i8>(0).unwrap().iter().all(|&v| v == 0));
}

#[test]
fn fast_kernel_workspace_counts_against_the_limit() {
    let model = tflite_runtime::synth::unet(tflite_runtime::synth::UNetSpec {
        fms: 2,
        size: 16,
        in_channels: 1,
        int8: true,
        seed: 1,
    });
    let options = Options {
        kernels: KernelTier::Best,
        threads: 1,
    };
    let interp = Interpreter::with_limits(&model, options, Limits::default()).unwrap();
    if interp.num_fast_ops() == 0 {
        return; // no fast int8 path on this CPU/build
    }
    let memory = interp.memory();
    let used = (memory.arena_bytes + memory.scratch_bytes) as u64;
    let limits = Limits::default().with_max_memory_bytes(used);
    let (message, needed, _) = memory_err(Interpreter::with_limits(&model, options, limits));
    assert!(needed > used);
    assert_mentions(&message, &["operand workspace", "operator"]);
}

#[test]
fn fuzz_property_holds_for_the_huge_models() {
    // The fuzz target's 64 MiB limit refuses them too (and nothing panics).
    for (dtype, two) in [(TensorType::Float32, false), (TensorType::Int8, true)] {
        let (bytes, _) = relu_chain(&HUGE, dtype, two);
        tflite_runtime::fuzz_invoke(&bytes);
    }
}

#[test]
fn resize_whose_constant_size_is_huge_is_refused_before_its_tables() {
    // Found by the `runtime_invoke` fuzz target: the declared output is small, the constant
    // size asks for 2³⁰ × 2³⁰ pixels; the source-index tables were allocated before any check.
    let mut b = ModelBuilder::new();
    let x = b.add_input("x", &[1, 2, 2, 0], TensorType::Float32, None);
    let size = b.add_const_i32("size", &[2], &[1 << 30, 1 << 30], None);
    let y = b.add_activation("y", &[1, 4, 4, 0], TensorType::Float32, None);
    b.add_op(
        BuiltinOp::RESIZE_NEAREST_NEIGHBOR,
        BuiltinOptions::None,
        &[x, size],
        &[y],
    );
    b.set_outputs(&[y]);
    let model = read_model(&write_model(&b.finish()).expect("write")).expect("read back");
    let limits = Limits::default().with_max_memory_bytes(64 << 20);
    let (message, needed, _) =
        memory_err(Interpreter::with_limits(&model, Options::default(), limits));
    assert_eq!(
        needed,
        2 * (1u64 << 30) * 8,
        "only the index tables: the output is empty"
    );
    assert_mentions(
        &message,
        &["RESIZE_NEAREST_NEIGHBOR", "1073741824x1073741824"],
    );
}
