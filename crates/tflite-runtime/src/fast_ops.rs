//! The packed int8 and 16x8 operators (and the int8/int16 max pools) of one prepared model: which executed operators the
//! kernel table's fast path replaces, their packed weights, and the operand workspace they
//! share. (Kept out of `fast/`, which holds only kernels, so that the kernels depend on nothing
//! above them.)

use crate::fast::{DetectedPath, Int8Gemm, Int8Path, Int16x8Gemm, max_pool_i8, max_pool_i16};

/// A prepared fast operator of the interpreter.
#[derive(Debug, Clone)]
pub(crate) enum FastOp {
    /// A packed int8 CONV_2D or TRANSPOSE_CONV.
    Gemm {
        /// Which operator input holds the activations (0 for CONV_2D, 2 for TRANSPOSE_CONV).
        input_index: usize,
        /// The packed kernel.
        gemm: Box<Int8Gemm>,
    },
    /// A packed 16x8 CONV_2D or TRANSPOSE_CONV (no shared workspace).
    Gemm16x8 {
        /// As for [`FastOp::Gemm`].
        input_index: usize,
        /// The packed kernel.
        gemm: Box<Int16x8Gemm>,
    },
    /// int8 MAX_POOL_2D over channel vectors.
    MaxPool {
        /// Pool geometry.
        geometry: crate::frame::PoolGeometry,
        /// Activation clamp.
        act: (i32, i32),
    },
    /// int16 MAX_POOL_2D over channel vectors.
    MaxPool16 {
        /// Pool geometry.
        geometry: crate::frame::PoolGeometry,
        /// Activation clamp.
        act: (i32, i32),
    },
}

/// The fast int8 operators of a prepared model, parallel to its executed operators, and the
/// operand workspace they share.
#[derive(Debug, Clone, Default)]
pub(crate) struct FastOps {
    /// The int8 path in use (`None`: reference kernels only). The 16x8 kernels run `vpmaddwd`
    /// on the x86 paths and portable Rust on the others.
    pub path: Option<DetectedPath>,
    /// `ops[j]` replaces executed operator `j` when set.
    pub ops: Vec<Option<FastOp>>,
    /// Operand buffer, as large as the largest op needs.
    pub workspace: Vec<u8>,
}

impl FastOps {
    /// Packs every int8 and 16x8 CONV_2D and TRANSPOSE_CONV with constant weights (and bias)
    /// that the fast kernels cover; the others keep their reference kernel. The shared workspace must fit
    /// in `limit` bytes together with the `used` bytes already planned, else
    /// [`crate::RuntimeError::MemoryLimit`] (checked before it is allocated).
    pub(crate) fn plan(
        prepared: &crate::prepare::Prepared,
        path: Option<DetectedPath>,
        used: u64,
        limit: u64,
    ) -> Result<Self, crate::RuntimeError> {
        use crate::exec::Kernel;
        use crate::prepare::Loc;
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let const_bytes = |t: Option<usize>| -> Option<&[u8]> {
            match prepared.slots.get(t?)?.loc {
                Loc::Const(c) => Some(prepared.consts[c].as_bytes()),
                _ => None,
            }
        };
        let simd16 = matches!(
            path.path(),
            Int8Path::Avx2 | Int8Path::Avx512Vnni | Int8Path::AvxVnni
        );
        let mut ops = Vec::with_capacity(prepared.ops.len());
        for op in &prepared.ops {
            let input = |k: usize| op.inputs.get(k).copied().flatten();
            // The constant filter (input 1) and bias (input `bias`, `None` when omitted);
            // `None` when either is not a constant.
            let constants = |bias: usize| -> Option<(&[u8], Option<&[u8]>)> {
                let filter = const_bytes(input(1))?;
                match input(bias) {
                    None => Some((filter, None)),
                    Some(b) => Some((filter, Some(const_bytes(Some(b))?))),
                }
            };
            let int8 = |input_index: usize, gemm: Option<Int8Gemm>| {
                gemm.map(|gemm| FastOp::Gemm {
                    input_index,
                    gemm: Box::new(gemm),
                })
            };
            let int16x8 = |input_index: usize, gemm: Option<Int16x8Gemm>| {
                gemm.map(|gemm| FastOp::Gemm16x8 {
                    input_index,
                    gemm: Box::new(gemm),
                })
            };
            let fast = match &op.kernel {
                Kernel::ConvI8 { geometry, quant } => constants(2).and_then(|(f, b)| {
                    // The int8 CONV_2D path is packed only with its bias.
                    let b = b?;
                    int8(
                        0,
                        Int8Gemm::conv(
                            path,
                            geometry,
                            quant,
                            bytemuck::cast_slice(f),
                            Some(bytemuck::cast_slice(b)),
                        ),
                    )
                }),
                Kernel::TransposeConvI8 { geometry, quant } => constants(3).and_then(|(f, b)| {
                    int8(
                        2,
                        Int8Gemm::transposed(
                            path,
                            geometry,
                            quant,
                            bytemuck::cast_slice(f),
                            b.map(bytemuck::cast_slice),
                        ),
                    )
                }),
                Kernel::ConvI16 { geometry, quant } => constants(2).and_then(|(f, b)| {
                    int16x8(
                        0,
                        Int16x8Gemm::conv(
                            geometry,
                            quant,
                            bytemuck::cast_slice(f),
                            b.map(bytemuck::cast_slice),
                            simd16,
                        ),
                    )
                }),
                Kernel::TransposeConvI16 { geometry, quant } => constants(3).and_then(|(f, b)| {
                    int16x8(
                        2,
                        Int16x8Gemm::transposed(
                            geometry,
                            quant,
                            bytemuck::cast_slice(f),
                            b.map(bytemuck::cast_slice),
                            simd16,
                        ),
                    )
                }),
                Kernel::MaxPoolI8 { geometry, act } => Some(FastOp::MaxPool {
                    geometry: *geometry,
                    act: *act,
                }),
                Kernel::MaxPoolI16 { geometry, act } => Some(FastOp::MaxPool16 {
                    geometry: *geometry,
                    act: *act,
                }),
                _ => None,
            };
            ops.push(fast);
        }
        let (largest, bytes) = ops
            .iter()
            .enumerate()
            .filter_map(|(j, f)| match f {
                Some(FastOp::Gemm { gemm, .. }) => Some((j, gemm.workspace_bytes())),
                _ => None,
            })
            .max_by_key(|&(j, bytes)| (bytes, std::cmp::Reverse(j)))
            .unwrap_or((0, 0));
        let needed = used.saturating_add(bytes as u64);
        if needed > limit {
            let op = &prepared.ops[largest];
            return Err(crate::RuntimeError::MemoryLimit {
                what: format!(
                    "the {} kernels' operand workspace ({bytes} bytes, for operator {} ({})) on top of {used} bytes of arena and scratch",
                    path.path().name(),
                    op.index,
                    op.op.name()
                ),
                needed,
                limit,
            });
        }
        Ok(Self {
            path: Some(path),
            ops,
            workspace: vec![0u8; bytes],
        })
    }

    /// Runs executed operator `j` if it has a fast kernel; returns false otherwise.
    pub(crate) fn run(
        &mut self,
        j: usize,
        inputs: &[Option<&[u8]>],
        output: &mut [u8],
        threads: usize,
    ) -> bool {
        let Some(Some(op)) = self.ops.get(j) else {
            return false;
        };
        match op {
            FastOp::Gemm { input_index, gemm } => {
                let input = inputs.get(*input_index).copied().flatten().unwrap_or(&[]);
                gemm.run(
                    bytemuck::cast_slice(input),
                    &mut self.workspace,
                    bytemuck::cast_slice_mut(output),
                    threads,
                );
            }
            FastOp::Gemm16x8 { input_index, gemm } => {
                let input = inputs.get(*input_index).copied().flatten().unwrap_or(&[]);
                gemm.run(
                    bytemuck::cast_slice(input),
                    bytemuck::cast_slice_mut(output),
                    threads,
                );
            }
            FastOp::MaxPool16 { geometry, act } => {
                let input = inputs.first().copied().flatten().unwrap_or(&[]);
                max_pool_i16(
                    geometry,
                    *act,
                    bytemuck::cast_slice(input),
                    bytemuck::cast_slice_mut(output),
                    threads,
                );
            }
            FastOp::MaxPool { geometry, act } => {
                let input = inputs.first().copied().flatten().unwrap_or(&[]);
                max_pool_i8(
                    geometry,
                    *act,
                    bytemuck::cast_slice(input),
                    bytemuck::cast_slice_mut(output),
                    threads,
                );
            }
        }
        true
    }
}
