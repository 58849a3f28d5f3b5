//! The interpreter: owns the prepared model, the constants and the arena, and runs the ops.

use tflite_writer::{BuiltinOp, Model};

use crate::error::RuntimeError;
use crate::exec::execute;
use crate::fast::{DetectedPath, Int8Path};
use crate::fast_ops::FastOps;
use crate::kernels::{KernelTable, KernelTier};
use crate::prepare::{Loc, Prepared, prepare};
use crate::tensor::{AlignedBytes, Element, TensorData, TensorInfo};

/// Interpreter options.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Kernel tier (the reference kernels by default).
    pub kernels: KernelTier,
    /// Worker threads the heavy kernels may use (default 1, the comparison setting; 0 is read
    /// as 1).
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            kernels: KernelTier::default(),
            threads: 1,
        }
    }
}

/// Environment variable read by [`Limits::from_env`] (and so by [`Interpreter::new`]): the
/// memory limit in bytes, optionally with a `KiB`, `MiB` or `GiB` suffix.
pub const MAX_MEMORY_ENV: &str = "TFLITE_RUNTIME_MAX_MEMORY_BYTES";

/// Resource limits checked by [`Interpreter::with_limits`] before anything is allocated, so that
/// a model whose shapes ask for absurd amounts of memory is refused with
/// [`RuntimeError::MemoryLimit`] instead of aborting the process.
///
/// ```
/// use tflite_runtime::Limits;
/// let limits = Limits::default().with_max_memory_bytes(16 << 30); // a 16 GiB model is fine
/// assert_eq!(limits.max_memory_bytes, 16 << 30);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes the interpreter may allocate for what the model's shapes (not its file size)
    /// decide: each activation tensor, the planned arena, the transposed convolutions'
    /// accumulator scratch, the fast kernels' workspace and the constants folded in `new`.
    /// Default [`Limits::DEFAULT_MAX_MEMORY_BYTES`].
    pub max_memory_bytes: u64,
}

impl Limits {
    /// The default memory limit: 4 GiB (the int8 U-Net at 128×128 needs about 2 MiB).
    pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 4 << 30;

    /// These limits with another memory limit in bytes.
    pub fn with_max_memory_bytes(self, bytes: u64) -> Self {
        Self {
            max_memory_bytes: bytes,
        }
    }

    /// The default limits, with the memory limit taken from [`MAX_MEMORY_ENV`] when it is set
    /// (a byte count such as `8589934592`, `8192MiB` or `8GiB`).
    pub fn from_env() -> Result<Self, RuntimeError> {
        match std::env::var(MAX_MEMORY_ENV) {
            Ok(value) => parse_bytes(&value)
                .map(|bytes| Self::default().with_max_memory_bytes(bytes))
                .ok_or(RuntimeError::InvalidLimit {
                    variable: MAX_MEMORY_ENV,
                    value,
                }),
            Err(_) => Ok(Self::default()),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_memory_bytes: Self::DEFAULT_MAX_MEMORY_BYTES,
        }
    }
}

/// `123`, `64KiB`, `512MiB`, `8GiB` (surrounding spaces allowed) as bytes.
fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, shift) = [("GiB", 30), ("MiB", 20), ("KiB", 10)]
        .iter()
        .find_map(|&(suffix, shift)| text.strip_suffix(suffix).map(|d| (d.trim_end(), shift)))
        .unwrap_or((text, 0));
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// What an observer sees after each operator: the operator and the tensor it wrote.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// Position of the operator in the model's operator list.
    pub op_index: usize,
    /// The operator.
    pub op: BuiltinOp,
    /// The output tensor's static description.
    pub tensor: &'a TensorInfo,
    /// The output tensor's data, valid until the observer returns.
    pub data: TensorData<'a>,
}

/// Memory figures of a prepared model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryReport {
    /// Peak activation memory: the arena's size in bytes.
    pub arena_bytes: usize,
    /// What the activations would take with no reuse at all.
    pub unshared_bytes: usize,
    /// Accumulator scratch (transposed convolutions), in bytes.
    pub scratch_bytes: usize,
    /// Constant data (weights, biases, folded shapes), in bytes.
    pub constant_bytes: usize,
}

/// A prepared model ready to run.
///
/// ```
/// # fn demo(model: &tflite_writer::Model) -> Result<(), tflite_runtime::RuntimeError> {
/// use tflite_runtime::{Interpreter, Options};
/// let mut interpreter = Interpreter::new(model, Options::default())?;
/// let n = interpreter.input_info(0)?.num_elements();
/// interpreter.set_input(0, &vec![0i8; n])?;
/// interpreter.invoke()?;
/// let mask: &[i8] = interpreter.output(0)?;
/// # let _ = mask; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Interpreter {
    prepared: Prepared,
    arena: AlignedBytes,
    scratch: Vec<i32>,
    table: KernelTable,
    threads: usize,
    input_set: Vec<bool>,
    /// Packed fast int8 and 16x8 kernels (empty with the reference tier).
    fast: FastOps,
}

impl Interpreter {
    /// Validates `model` (subgraph 0), infers every shape, folds shape-only subgraphs, picks the
    /// kernels and plans the arena. Every unsupported operator or type, and every inconsistent
    /// tensor, is reported here, never in `invoke`.
    ///
    /// Memory is limited by [`Limits::from_env`] (4 GiB unless [`MAX_MEMORY_ENV`] says
    /// otherwise); use [`Interpreter::with_limits`] to set the limit in code.
    pub fn new(model: &Model, options: Options) -> Result<Self, RuntimeError> {
        Self::with_limits(model, options, Limits::from_env()?)
    }

    /// Like [`Interpreter::new`] with explicit [`Limits`]: a model whose tensors, arena,
    /// scratch or workspace would need more than `limits.max_memory_bytes` is refused with
    /// [`RuntimeError::MemoryLimit`] before any of it is allocated.
    pub fn with_limits(
        model: &Model,
        options: Options,
        limits: Limits,
    ) -> Result<Self, RuntimeError> {
        let table = KernelTable::select(options.kernels)?;
        let limit = limits.max_memory_bytes;
        let prepared = prepare(model, &table, limit)?;
        // `prepare` checked arena + scratch + folded constants against the limit; the fast
        // kernels' workspace gets what is left.
        let used = prepared.allocated_bytes();
        let fast = FastOps::plan(&prepared, table.int8, used, limit)?;
        let arena = AlignedBytes::zeroed(prepared.plan.peak_bytes);
        let scratch = vec![0i32; prepared.scratch_i32];
        let input_set = vec![false; prepared.inputs.len()];
        Ok(Self {
            prepared,
            arena,
            scratch,
            table,
            threads: options.threads.max(1),
            input_set,
            fast,
        })
    }

    /// Number of graph inputs.
    pub fn num_inputs(&self) -> usize {
        self.prepared.inputs.len()
    }

    /// Number of graph outputs.
    pub fn num_outputs(&self) -> usize {
        self.prepared.outputs.len()
    }

    /// Description of input `i`.
    pub fn input_info(&self, i: usize) -> Result<&TensorInfo, RuntimeError> {
        let t = *self.prepared.inputs.get(i).ok_or(RuntimeError::IoIndex {
            what: "input",
            index: i,
            count: self.prepared.inputs.len(),
        })?;
        Ok(&self.prepared.slots[t].info)
    }

    /// Description of output `i`.
    pub fn output_info(&self, i: usize) -> Result<&TensorInfo, RuntimeError> {
        let t = *self.prepared.outputs.get(i).ok_or(RuntimeError::IoIndex {
            what: "output",
            index: i,
            count: self.prepared.outputs.len(),
        })?;
        Ok(&self.prepared.slots[t].info)
    }

    /// Description of any tensor of the subgraph.
    pub fn tensor_info(&self, tensor: usize) -> Option<&TensorInfo> {
        self.prepared.slots.get(tensor).map(|s| &s.info)
    }

    /// Memory figures: peak arena bytes and friends.
    pub fn memory(&self) -> MemoryReport {
        MemoryReport {
            arena_bytes: self.prepared.plan.peak_bytes,
            unshared_bytes: self.prepared.plan.unshared_bytes,
            scratch_bytes: self.prepared.scratch_i32 * 4,
            constant_bytes: self
                .prepared
                .consts
                .iter()
                .map(|c| c.as_bytes().len())
                .sum(),
        }
    }

    /// Number of operators run by `invoke` (after folding).
    pub fn num_executed_ops(&self) -> usize {
        self.prepared.ops.len()
    }

    /// Number of operators evaluated once in `new` (shape-only subgraphs).
    pub fn num_folded_ops(&self) -> usize {
        self.prepared.folded_ops
    }

    /// Name of the kernel tier in use.
    pub fn kernel_tier(&self) -> &'static str {
        self.table.tier_name
    }

    /// The fast int8 path in use (`None` with the reference kernels).
    pub fn int8_path(&self) -> Option<Int8Path> {
        self.fast.path.map(DetectedPath::path)
    }

    /// Number of executed operators that run a fast int8 or 16x8 kernel.
    pub fn num_fast_ops(&self) -> usize {
        self.fast.ops.iter().flatten().count()
    }

    /// Worker threads the heavy kernels may use (at least 1).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Sets input `i` from a typed slice, which must have exactly the input's element count and
    /// type (`i8` for an int8 input, `f32` for a float one).
    pub fn set_input<T: Element>(&mut self, i: usize, data: &[T]) -> Result<(), RuntimeError> {
        let info = self.input_info(i)?;
        if info.dtype != T::DTYPE {
            return Err(RuntimeError::IoType {
                what: "input",
                index: i,
                expected: info.dtype.name(),
                got: T::DTYPE.name(),
            });
        }
        if data.len() != info.num_elements() {
            return Err(RuntimeError::InputLength {
                index: i,
                expected: info.num_elements(),
                got: data.len(),
                shape: info.shape.clone(),
            });
        }
        let t = self.prepared.inputs[i];
        let bytes: &[u8] = bytemuck::cast_slice(data);
        if let Loc::Arena(offset) = self.prepared.slots[t].loc {
            self.arena.as_bytes_mut()[offset..offset + bytes.len()].copy_from_slice(bytes);
        }
        self.input_set[i] = true;
        Ok(())
    }

    /// Output `i` as a typed slice (valid after `invoke`).
    pub fn output<T: Element>(&self, i: usize) -> Result<&[T], RuntimeError> {
        let info = self.output_info(i)?;
        if info.dtype != T::DTYPE {
            return Err(RuntimeError::IoType {
                what: "output",
                index: i,
                expected: info.dtype.name(),
                got: T::DTYPE.name(),
            });
        }
        Ok(bytemuck::cast_slice(
            self.tensor_bytes(self.prepared.outputs[i]),
        ))
    }

    /// Output `i` as an untyped view.
    pub fn output_data(&self, i: usize) -> Result<TensorData<'_>, RuntimeError> {
        let info = self.output_info(i)?;
        let t = self.prepared.outputs[i];
        Ok(TensorData::from_bytes(info.dtype, self.tensor_bytes(t)))
    }

    fn tensor_bytes(&self, t: usize) -> &[u8] {
        let slot = &self.prepared.slots[t];
        match slot.loc {
            Loc::Const(c) => self.prepared.consts[c].as_bytes(),
            Loc::Arena(offset) => &self.arena.as_bytes()[offset..offset + slot.bytes],
            Loc::Unset => &[],
        }
    }

    /// Runs the model on the inputs set so far.
    pub fn invoke(&mut self) -> Result<(), RuntimeError> {
        self.run(None)
    }

    /// Runs the model and calls `observer` after every operator with the tensor it wrote.
    /// (Operators folded in `new` are not reported; they only compute shapes.)
    pub fn invoke_with_observer(
        &mut self,
        observer: &mut dyn FnMut(&Observation<'_>),
    ) -> Result<(), RuntimeError> {
        self.run(Some(observer))
    }

    fn run(
        &mut self,
        mut observer: Option<&mut dyn FnMut(&Observation<'_>)>,
    ) -> Result<(), RuntimeError> {
        if let Some(i) = self.input_set.iter().position(|set| !set) {
            return Err(RuntimeError::InputNotSet { index: i });
        }
        let Self {
            prepared,
            arena,
            scratch,
            table,
            threads,
            fast,
            ..
        } = self;
        let arena = arena.as_bytes_mut();
        for (j, op) in prepared.ops.iter().enumerate() {
            let out_slot = &prepared.slots[op.output];
            let Loc::Arena(out_offset) = out_slot.loc else {
                continue; // unreachable by construction: executed outputs are planned
            };
            let out_end = out_offset + out_slot.bytes;
            let (left, rest) = arena.split_at_mut(out_offset);
            let (output, right) = rest.split_at_mut(out_slot.bytes);
            let (left, right): (&[u8], &[u8]) = (left, right);
            let mut inputs: Vec<Option<&[u8]>> = Vec::with_capacity(op.inputs.len());
            for t in &op.inputs {
                inputs.push(match t {
                    None => None,
                    Some(t) => {
                        let slot = &prepared.slots[*t];
                        Some(match slot.loc {
                            Loc::Const(c) => prepared.consts[c].as_bytes(),
                            Loc::Arena(offset) if offset + slot.bytes <= out_offset => {
                                &left[offset..offset + slot.bytes]
                            }
                            Loc::Arena(offset) if offset >= out_end => {
                                &right[offset - out_end..offset - out_end + slot.bytes]
                            }
                            // An input overlapping its own output, or one never written:
                            // both are excluded by `prepare`, so give the kernel nothing
                            // rather than aliasing memory.
                            _ => &[],
                        })
                    }
                });
            }
            if !fast.run(j, &inputs, output, *threads) {
                execute(&op.kernel, table, *threads, &inputs, output, scratch);
            }
            if let Some(observer) = observer.as_deref_mut() {
                observer(&Observation {
                    op_index: op.index,
                    op: op.op,
                    tensor: &out_slot.info,
                    data: TensorData::from_bytes(out_slot.info.dtype, output),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn byte_counts_parse_with_binary_suffixes() {
        assert_eq!(parse_bytes("123"), Some(123));
        assert_eq!(parse_bytes(" 64KiB "), Some(64 << 10));
        assert_eq!(parse_bytes("512 MiB"), Some(512 << 20));
        assert_eq!(parse_bytes("8GiB"), Some(8 << 30));
        for bad in ["", "GiB", "-1", "1.5GiB", "8GB", "99999999999999999999GiB"] {
            assert_eq!(parse_bytes(bad), None, "{bad:?}");
        }
    }
}
