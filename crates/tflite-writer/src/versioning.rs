//! Operator versions and the model's minimum runtime version, following the converter's rules.
//!
//! The rules restate `GetBuiltinOperatorVersion` (LiteRT `tflite/converter/tools/versioning/
//! op_version.cc`) for the operators this project names, and the `(op, version) → runtime`
//! table of `runtime_version.cc` for the same operators. Any other operator gets version 1 and
//! does not raise the minimum runtime version, which is what the converter does for ops it has
//! no entry for.

use crate::ir::{Activation, BuiltinOp, BuiltinOptions, Operator, Subgraph, TensorType};

/// The version the converter would give `op` inside `subgraph`.
pub fn op_version(subgraph: &Subgraph, op: &Operator) -> i32 {
    let input = |i: usize| tensor_type(subgraph, op.inputs.get(i).copied());
    let output = |i: usize| tensor_type(subgraph, op.outputs.get(i).copied());
    let input_rank = |i: usize| {
        op.inputs
            .get(i)
            .and_then(|&idx| usize::try_from(idx).ok())
            .and_then(|idx| subgraph.tensors.get(idx))
            .map_or(0, |t| t.shape.len())
    };
    use TensorType::{Bool, Float16, Float32, Int8, Int16, Int32, Int64, UInt8};
    let (in0, out0) = (input(0), output(0));
    match op.op {
        BuiltinOp::CONV_2D => {
            let grouped = matches!(
                (channels(subgraph, op.inputs.first(), 3), channels(subgraph, op.inputs.get(1), 3)),
                (Some(input), Some(filter)) if input != filter
            );
            if grouped {
                6
            } else if in0 == Some(Int16) && input(1) == Some(Int16) && output(1) == Some(Int16) {
                4
            } else if in0 == Some(Int8) && input(1) == Some(Int8) && out0 == Some(Int8) {
                3
            } else if in0 == Some(Float32) && input(1) == Some(Int8) && out0 == Some(Float32) {
                if is_per_channel(subgraph, op.inputs.get(1)) {
                    5
                } else {
                    2
                }
            } else {
                1
            }
        }
        BuiltinOp::DEPTHWISE_CONV_2D => {
            if in0 == Some(Int16) && input(1) == Some(Int16) && output(1) == Some(Int16) {
                5
            } else if in0 == Some(Float32) && input(1) == Some(Int8) && out0 == Some(Float32) {
                if is_per_channel(subgraph, op.inputs.get(1)) {
                    6
                } else {
                    4
                }
            } else if in0 == Some(Int8) && input(1) == Some(Int8) && out0 == Some(Int8) {
                3
            } else if matches!(&op.options, BuiltinOptions::DepthwiseConv2D(o) if o.dilation_w != 1 || o.dilation_h != 1)
            {
                2
            } else {
                1
            }
        }
        BuiltinOp::FULLY_CONNECTED => {
            let options = match &op.options {
                BuiltinOptions::FullyConnected(o) => *o,
                _ => Default::default(),
            };
            if in0 == Some(Int16) && input(1) == Some(Int16) && out0 == Some(Int16) {
                7
            } else if op.inputs.len() == 2 {
                6
            } else if options.keep_num_dims {
                5
            } else if in0 == Some(Int8) && input(1) == Some(Int8) && out0 == Some(Int8) {
                4
            } else if in0 == Some(Float32) && input(1) == Some(Int8) && out0 == Some(Float32) {
                if options.asymmetric_quantize_inputs {
                    9
                } else {
                    3
                }
            } else {
                1
            }
        }
        BuiltinOp::MAX_POOL_2D | BuiltinOp::AVERAGE_POOL_2D => {
            if in0 == Some(Int16) && out0 == Some(Int16) {
                3
            } else if in0 == Some(Int8) {
                2
            } else {
                1
            }
        }
        BuiltinOp::TRANSPOSE_CONV => {
            let fused = matches!(&op.options, BuiltinOptions::TransposeConv(o) if o.fused_activation != Activation::None);
            if fused {
                4
            } else if op.inputs.len() == 4 && op.inputs[3] != -1 {
                3
            } else if input(1) == Some(Int8) {
                2
            } else {
                1
            }
        }
        BuiltinOp::MUL => {
            if in0 == Some(Float16) {
                8
            } else if in0 == Some(Int64) {
                5
            } else if in0 == Some(Int16) {
                4
            } else if mul_rescale_at_least_one(subgraph, op) {
                3
            } else if in0 == Some(Int8) {
                2
            } else {
                1
            }
        }
        BuiltinOp::ADD => {
            if in0 == Some(Float16) {
                6
            } else if in0 == Some(Int64) {
                4
            } else if in0 == Some(Int8) {
                2
            } else {
                1
            }
        }
        BuiltinOp::SUB => {
            if in0 == Some(Int64) {
                4
            } else if broadcast_over_4d(subgraph, op) {
                3
            } else if in0 == Some(Int8) {
                2
            } else {
                1
            }
        }
        BuiltinOp::CONCATENATION => match in0 {
            Some(Float16) => 6,
            Some(Int16) => 3,
            Some(Int8) => 2,
            _ => 1,
        },
        BuiltinOp::SOFTMAX => match in0 {
            Some(Float16) => 4,
            Some(Int16) => 3,
            Some(Int8) => 2,
            _ => 1,
        },
        BuiltinOp::LOGISTIC | BuiltinOp::TANH => {
            if in0 == Some(Int16) && out0 == Some(Int16) {
                3
            } else if in0 == Some(Int8) {
                2
            } else {
                1
            }
        }
        BuiltinOp::RELU => match in0 {
            Some(Int16) => 3,
            Some(Int8) | Some(UInt8) => 2,
            _ => 1,
        },
        BuiltinOp::RELU6 | BuiltinOp::MEAN => match in0 {
            Some(Int16) => 3,
            Some(Int8) => 2,
            _ => 1,
        },
        BuiltinOp::STRIDED_SLICE => {
            let options = match &op.options {
                BuiltinOptions::StridedSlice(o) => *o,
                _ => Default::default(),
            };
            if options.offset {
                8
            } else if options.ellipsis_mask != 0 || options.new_axis_mask != 0 {
                6
            } else if input_rank(0) > 4 {
                4
            } else if in0 == Some(Bool) {
                3
            } else if in0 == Some(Int8) {
                2
            } else {
                1
            }
        }
        BuiltinOp::RESIZE_BILINEAR => {
            let options = match &op.options {
                BuiltinOptions::ResizeBilinear(o) => *o,
                _ => Default::default(),
            };
            if in0 == Some(Int16) {
                4
            } else if options.half_pixel_centers {
                3
            } else if in0 == Some(Int8) {
                2
            } else {
                1
            }
        }
        BuiltinOp::RESIZE_NEAREST_NEIGHBOR => {
            let options = match &op.options {
                BuiltinOptions::ResizeNearestNeighbor(o) => *o,
                _ => Default::default(),
            };
            if in0 == Some(Int16) {
                4
            } else if options.half_pixel_centers || options.align_corners {
                3
            } else if in0 == Some(Int8) {
                2
            } else {
                1
            }
        }
        BuiltinOp::PACK => {
            if in0 == Some(Int8) {
                2
            } else if in0 == Some(Int16) && out0 == Some(Int16) {
                3
            } else {
                1
            }
        }
        BuiltinOp::PAD | BuiltinOp::PADV2 => {
            if in0 == Some(Bool) {
                5
            } else if input_rank(0) > 4 {
                4
            } else if in0 == Some(Int16) {
                3
            } else if in0 == Some(Int8) {
                2
            } else {
                1
            }
        }
        BuiltinOp::MAXIMUM | BuiltinOp::MINIMUM => {
            if in0 == Some(Int16) && out0 == Some(Int16) {
                4
            } else if broadcast_over_4d(subgraph, op) {
                3
            } else if in0 == Some(Int8) {
                2
            } else {
                1
            }
        }
        BuiltinOp::DEQUANTIZE => match in0 {
            Some(Int16) | Some(Float16) => 3,
            Some(Int8) if is_per_channel(subgraph, op.inputs.first()) => 5,
            Some(Int8) => 2,
            _ => 1,
        },
        BuiltinOp::QUANTIZE => {
            if is_per_channel(subgraph, op.outputs.first()) {
                3
            } else if out0 == Some(Int16) {
                2
            } else {
                1
            }
        }
        BuiltinOp::LEAKY_RELU => i32::from(in0 == Some(Int16)) + 1,
        BuiltinOp::GATHER => match in0 {
            Some(Int16) => 4,
            Some(Bool) => 3,
            Some(Int8) => 2,
            _ => 1,
        },
        BuiltinOp::SPACE_TO_DEPTH | BuiltinOp::DEPTH_TO_SPACE | BuiltinOp::SUM => {
            i32::from(in0 == Some(Int8)) + 1
        }
        BuiltinOp::TRANSPOSE => {
            if in0 == Some(Int16) {
                5
            } else if input_rank(0) > 4 {
                4
            } else if in0 == Some(Bool) {
                3
            } else if in0 == Some(Int8) {
                2
            } else {
                1
            }
        }
        BuiltinOp::SLICE => {
            if input_rank(0) > 4 {
                5
            } else if in0 == Some(Int16) {
                4
            } else if in0 == Some(Int8) {
                2
            } else {
                1
            }
        }
        BuiltinOp::ABS => match in0 {
            Some(Int32) => 5,
            Some(Int8) | Some(UInt8) => 2,
            _ => 1,
        },
        _ => 1,
    }
}

/// The minimum LiteRT runtime version for `op` at `version`, if the converter's table has it.
pub fn min_runtime_for(op: BuiltinOp, version: i32) -> Option<&'static str> {
    let table: &[(BuiltinOp, &[&str])] = &[
        (
            BuiltinOp::ADD,
            &["1.5.0", "1.14.0", "2.4.0", "2.6.0", "2.13.0", "2.23.0"],
        ),
        (BuiltinOp::AVERAGE_POOL_2D, &["1.5.0", "1.14.0", "2.3.0"]),
        (
            BuiltinOp::CONCATENATION,
            &["1.5.0", "1.14.0", "2.3.0", "2.14.0", "2.21.0", "2.23.0"],
        ),
        (
            BuiltinOp::CONV_2D,
            &[
                "1.5.0", "1.14.0", "1.14.0", "2.3.0", "2.4.0", "2.9.0", "2.11.0", "2.15.0",
            ],
        ),
        (
            BuiltinOp::DEPTHWISE_CONV_2D,
            &[
                "1.5.0", "1.12.0", "1.14.0", "2.2.0", "2.3.0", "2.3.0", "2.11.0",
            ],
        ),
        (
            BuiltinOp::DEQUANTIZE,
            &[
                "1.13.1", "1.14.0", "1.15.0", "2.2.0", "2.7.0", "2.18.0", "2.21.0", "2.22.0",
            ],
        ),
        (
            BuiltinOp::FULLY_CONNECTED,
            &[
                "1.5.0", "1.10.0", "1.14.0", "1.14.0", "2.0.0", "2.1.0", "2.3.0", "2.3.0", "2.3.0",
                "2.11.0", "2.15.0", "2.17.0", "2.18.0", "2.21.0",
            ],
        ),
        (BuiltinOp::LOGISTIC, &["1.14.0", "1.14.0", "2.3.0"]),
        (BuiltinOp::MAX_POOL_2D, &["1.5.0", "1.14.0", "2.3.0"]),
        (
            BuiltinOp::MUL,
            &[
                "1.5.0", "1.14.0", "1.15.0", "2.3.0", "2.6.0", "2.11.0", "2.13.0", "2.23.0",
            ],
        ),
        (BuiltinOp::RELU, &["1.5.0", "2.1.0", "2.5.0"]),
        (BuiltinOp::RELU6, &["1.5.0", "1.14.0", "2.5.0"]),
        (BuiltinOp::RESHAPE, &["1.5.0"]),
        (
            BuiltinOp::RESIZE_BILINEAR,
            &["1.7.0", "1.14.0", "2.2.0", "2.5.0"],
        ),
        (BuiltinOp::SOFTMAX, &["1.5.0", "1.14.0", "2.3.0", "2.23.0"]),
        (
            BuiltinOp::STRIDED_SLICE,
            &[
                "1.6.0", "1.14.0", "2.1.0", "2.2.0", "2.5.0", "2.6.0", "2.14.0", "2.14.0",
            ],
        ),
        (
            BuiltinOp::TRANSPOSE_CONV,
            &["1.9.0", "2.2.0", "2.3.0", "2.13.0", "2.15.0"],
        ),
        (BuiltinOp::SHAPE, &["1.10.0"]),
        (BuiltinOp::PACK, &["1.11.0", "1.14.0", "2.3.0", "2.13.0"]),
        (
            BuiltinOp::RESIZE_NEAREST_NEIGHBOR,
            &["1.13.1", "1.14.0", "2.3.0", "2.4.0"],
        ),
        (
            BuiltinOp::QUANTIZE,
            &["1.14.0", "1.15.0", "2.7.0", "2.21.0", "2.21.0", "2.21.0"],
        ),
        (BuiltinOp::TANH, &["1.14.0", "1.14.0", "2.3.0"]),
        (
            BuiltinOp::PAD,
            &["1.5.0", "1.14.0", "2.4.0", "2.6.0", "2.20.0"],
        ),
        (
            BuiltinOp::PADV2,
            &["1.9.0", "1.14.0", "2.4.0", "2.6.0", "2.20.0"],
        ),
        (
            BuiltinOp::SUB,
            &["1.6.0", "1.14.0", "2.3.0", "2.4.0", "2.4.0"],
        ),
        (BuiltinOp::MEAN, &["1.6.0", "1.14.0", "2.4.0"]),
        (BuiltinOp::MAXIMUM, &["1.14.0", "1.14.0", "2.3.0", "2.3.0"]),
        (BuiltinOp::MINIMUM, &["1.14.0", "1.14.0", "2.3.0", "2.3.0"]),
        (BuiltinOp::LEAKY_RELU, &["1.13.1", "2.3.0"]),
        (
            BuiltinOp::GATHER,
            &[
                "1.6.0", "1.14.0", "1.15.0", "2.4.0", "2.5.0", "2.13.0", "2.15.0",
            ],
        ),
        (
            BuiltinOp::TRANSPOSE,
            &["1.6.0", "1.14.0", "1.15.0", "2.3.0", "2.4.0", "2.12.0"],
        ),
        (
            BuiltinOp::SLICE,
            &["1.14.0", "1.14.0", "1.14.0", "2.4.0", "2.5.0"],
        ),
    ];
    let index = usize::try_from(version).ok()?.checked_sub(1)?;
    table
        .iter()
        .find(|(code, _)| *code == op)
        .and_then(|(_, versions)| versions.get(index).copied())
}

/// The model's minimum runtime version: the maximum over its operators (as the converter
/// compares them, numerically by dot-separated component), or `None` when no operator has an
/// entry.
pub fn min_runtime_version<'a>(ops: impl IntoIterator<Item = (BuiltinOp, i32)>) -> Option<&'a str> {
    ops.into_iter()
        .filter_map(|(op, version)| min_runtime_for(op, version))
        .max_by(|a, b| runtime_key(a).cmp(&runtime_key(b)))
}

fn runtime_key(version: &str) -> Vec<u32> {
    version
        .split('.')
        .map(|part| part.parse().unwrap_or(0))
        .collect()
}

fn tensor_type(subgraph: &Subgraph, idx: Option<i32>) -> Option<TensorType> {
    let idx = usize::try_from(idx?).ok()?;
    subgraph.tensors.get(idx).map(|t| t.dtype)
}

fn channels(subgraph: &Subgraph, idx: Option<&i32>, axis: usize) -> Option<i32> {
    let idx = usize::try_from(*idx?).ok()?;
    subgraph.tensors.get(idx)?.shape.get(axis).copied()
}

fn is_per_channel(subgraph: &Subgraph, idx: Option<&i32>) -> bool {
    idx.and_then(|&i| usize::try_from(i).ok())
        .and_then(|i| subgraph.tensors.get(i))
        .and_then(|t| t.quantization.as_ref())
        .is_some_and(|q| q.scale.len() > 1)
}

fn scale_of(subgraph: &Subgraph, idx: Option<&i32>) -> f32 {
    idx.and_then(|&i| usize::try_from(i).ok())
        .and_then(|i| subgraph.tensors.get(i))
        .and_then(|t| t.quantization.as_ref())
        .and_then(|q| q.scale.first().copied())
        .unwrap_or(0.0)
}

fn mul_rescale_at_least_one(subgraph: &Subgraph, op: &Operator) -> bool {
    let (s1, s2, so) = (
        scale_of(subgraph, op.inputs.first()),
        scale_of(subgraph, op.inputs.get(1)),
        scale_of(subgraph, op.outputs.first()),
    );
    s1 != 0.0 && s2 != 0.0 && so != 0.0 && s1 * s2 / so >= 1.0
}

fn broadcast_over_4d(subgraph: &Subgraph, op: &Operator) -> bool {
    let shape = |i: usize| {
        op.inputs
            .get(i)
            .and_then(|&idx| usize::try_from(idx).ok())
            .and_then(|idx| subgraph.tensors.get(idx))
            .map(|t| t.shape.clone())
    };
    if op.inputs.len() < 2 {
        return false;
    }
    let (a, b) = (shape(0), shape(1));
    let max_rank = a
        .as_ref()
        .map_or(0, Vec::len)
        .max(b.as_ref().map_or(0, Vec::len));
    a != b && max_rank > 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_versions_compare_numerically() {
        let ops = [
            (BuiltinOp::CONV_2D, 3),
            (BuiltinOp::TRANSPOSE_CONV, 3),
            (BuiltinOp::MAX_POOL_2D, 2),
        ];
        assert_eq!(min_runtime_version(ops), Some("2.3.0"));
        // "1.14.0" > "1.9.0" numerically although not as strings.
        let ops = [(BuiltinOp::TRANSPOSE_CONV, 1), (BuiltinOp::CONV_2D, 3)];
        assert_eq!(min_runtime_version(ops), Some("1.14.0"));
        assert_eq!(min_runtime_version([(BuiltinOp(999), 1)]), None);
        assert_eq!(
            min_runtime_for(BuiltinOp::TRANSPOSE_CONV, 4),
            Some("2.13.0")
        );
        assert_eq!(min_runtime_for(BuiltinOp::CONV_2D, 0), None);
    }
}
