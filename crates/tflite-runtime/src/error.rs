//! The one error type of the runtime.

use thiserror::Error;

/// Everything that can go wrong when preparing or running a model.
///
/// Model problems are reported by [`crate::Interpreter::new`]; `invoke` only fails on caller
/// mistakes (wrong input length or type, missing input).
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// The model has no subgraph.
    #[error("the model has no subgraph")]
    NoSubgraph,
    /// A tensor index (of an operator, or of the graph inputs/outputs) is out of range.
    #[error("{context}: tensor index {index} is out of range (the subgraph has {count} tensors)")]
    TensorIndex {
        /// Where the index appeared (e.g. `operator 3 (CONV_2D) input 1`).
        context: String,
        /// The bad index.
        index: i64,
        /// Number of tensors in the subgraph.
        count: usize,
    },
    /// An operator code the runtime does not implement.
    #[error("operator {index}: {op} is not supported by tflite-runtime")]
    UnsupportedOp {
        /// Operator index in execution order.
        index: usize,
        /// Operator name (`BUILTIN_<code>` when unknown, or the custom code).
        op: String,
    },
    /// A supported operator with an element type (or type combination) it does not implement.
    #[error("operator {index} ({op}): unsupported type: {detail}")]
    UnsupportedType {
        /// Operator index.
        index: usize,
        /// Operator name.
        op: String,
        /// Which tensor and type.
        detail: String,
    },
    /// A supported operator used with options or a configuration the runtime does not implement
    /// (e.g. a TANH fused activation, an ellipsis mask).
    #[error("operator {index} ({op}): unsupported configuration: {detail}")]
    Unsupported {
        /// Operator index.
        index: usize,
        /// Operator name.
        op: String,
        /// What is unsupported.
        detail: String,
    },
    /// An operator whose inputs, outputs or options are inconsistent.
    #[error("operator {index} ({op}): {detail}")]
    InvalidOp {
        /// Operator index.
        index: usize,
        /// Operator name.
        op: String,
        /// What is wrong.
        detail: String,
    },
    /// A tensor whose declared shape disagrees with the shape inferred from its producer.
    #[error(
        "operator {index} ({op}): output tensor {tensor} '{name}' is declared {declared:?} but the inputs give {inferred:?}"
    )]
    ShapeMismatch {
        /// Operator index.
        index: usize,
        /// Operator name.
        op: String,
        /// Tensor index.
        tensor: usize,
        /// Tensor name.
        name: String,
        /// Shape in the model.
        declared: Vec<i32>,
        /// Shape computed from the inputs.
        inferred: Vec<usize>,
    },
    /// A tensor that is malformed in itself (negative dims, bad buffer, bad quantization).
    #[error("tensor {tensor} '{name}': {detail}")]
    InvalidTensor {
        /// Tensor index.
        tensor: usize,
        /// Tensor name.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// A non-constant tensor read before any operator writes it (and not a graph input).
    #[error("operator {index} ({op}) reads tensor {tensor} '{name}', which nothing has written")]
    ReadBeforeWrite {
        /// Operator index.
        index: usize,
        /// Operator name.
        op: String,
        /// Tensor index.
        tensor: usize,
        /// Tensor name.
        name: String,
    },
    /// Graph input/output index problems (out of range, output never written, ...).
    #[error("graph {what}: {detail}")]
    InvalidGraphIo {
        /// `input` or `output`.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// `set_input`/`output` called with an index beyond the graph's inputs or outputs.
    #[error("{what} index {index} is out of range (the model has {count})")]
    IoIndex {
        /// `input` or `output`.
        what: &'static str,
        /// The bad index.
        index: usize,
        /// Number of inputs or outputs.
        count: usize,
    },
    /// Input or output accessed with the wrong element type.
    #[error("{what} {index} is {expected}, not {got}")]
    IoType {
        /// `input` or `output`.
        what: &'static str,
        /// Input or output index.
        index: usize,
        /// The tensor's type.
        expected: String,
        /// The type asked for.
        got: String,
    },
    /// Input slice of the wrong length.
    #[error("input {index} needs {expected} elements (shape {shape:?}), got {got}")]
    InputLength {
        /// Input index.
        index: usize,
        /// Elements needed.
        expected: usize,
        /// Elements given.
        got: usize,
        /// The input's shape.
        shape: Vec<usize>,
    },
    /// `invoke` called before every input was set.
    #[error("input {index} was never set")]
    InputNotSet {
        /// Input index.
        index: usize,
    },
    /// Preparing the model would allocate more memory than [`crate::Limits::max_memory_bytes`]
    /// allows. Checked before anything of that size is allocated.
    #[error(
        "{what} needs {needed} bytes, more than the memory limit of {limit} bytes (raise Limits::max_memory_bytes or set {env}=BYTES if the model is meant to be this large)",
        env = crate::interpreter::MAX_MEMORY_ENV
    )]
    MemoryLimit {
        /// What needs the memory (a tensor with its index, name, shape and type, the arena, ...).
        what: String,
        /// Bytes it needs (saturated at `u64::MAX`).
        needed: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The memory-limit environment variable holds something that is not a byte count.
    #[error("{variable}={value:?} is not a byte count (expected e.g. 8589934592, 8192MiB or 8GiB)")]
    InvalidLimit {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// A malformed or unsupported `.npy` file.
    #[error("bad .npy data: {detail}")]
    Npy {
        /// What is wrong.
        detail: String,
    },
    /// A kernel path was forced (by `Options::kernels` or `TFLITE_RUNTIME_KERNELS`) that this
    /// build or CPU cannot run, or the variable names no path.
    #[error("kernel path {requested} is not available on this CPU/build (available: {available})")]
    KernelUnavailable {
        /// What was asked for.
        requested: String,
        /// The paths that are available here.
        available: String,
    },
}
