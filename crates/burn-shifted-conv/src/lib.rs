//! The U-Net's 3×3 "same" convolution, 2×2/2 transposed convolution and 2×2 max-pool as a burn
//! backend extension with a handwritten backward (used by `unet-train`'s model).
//!
//! burn 0.22.1's autodiff differentiates `conv2d` through `conv2d_x_backward` and
//! `conv2d_weight_backward`, which Flex does not override. The generic defaults compute the
//! weight gradient as a convolution whose kernel is the whole output gradient (an `H×W` kernel
//! producing a 3×3 output) and the input gradient as a transposed convolution; on this model
//! they made backward ~70 % of a training step (the transposed convolution's defaults have
//! the same weight-gradient shape). Here Flex runs the 3×3 forward pass and both gradients as
//! nine shifted GEMMs each ([`kernel`]), the transposed convolution as one GEMM plus a
//! scatter or gather per image ([`upconv`]), and autodiff gets custom backward nodes. Weights stay burn's `[out, in, 3, 3]`, so checkpoints and the export are unchanged.
//!
//! Other backends use the trait's default bodies, which are burn's `conv2d` and its backward
//! functions; [`conv3x3`] uses the extension only on Flex (with or without autodiff), plain
//! `conv2d` elsewhere, so every backend feature still builds and runs.

#![warn(missing_docs)]

mod direct;
pub mod kernel;
pub mod pointwise;
pub mod pool;
#[cfg(test)]
mod test_support;
pub mod upconv;
pub mod winograd;

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{
    ActivationOps, ConvOptions, ConvTransposeOptions, FloatTensorOps, ModuleOps,
};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::activation::relu;
use burn::tensor::module::{conv_transpose2d, conv2d, max_pool2d};
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{DType, Device, IntDType, Slice, Tensor, TensorData};
use std::cell::Cell;

pub use direct::ConvKernel;
use kernel::Nchw;

fn same_options() -> ConvOptions<2> {
    ConvOptions::new([1, 1], [1, 1], [1, 1], 1)
}

fn pointwise_options() -> ConvOptions<2> {
    ConvOptions::new([1, 1], [0, 0], [1, 1], 1)
}

fn up_options() -> ConvTransposeOptions<2> {
    ConvTransposeOptions::new([2, 2], [0, 0], [0, 0], [1, 1], 1)
}

/// Backend operations of the 3×3 same convolution (stride 1, padding 1, one group) and the
/// 2×2 stride-2 transposed convolution.
#[backend_extension(Flex, Autodiff)]
pub trait UNetConvBackend: Backend {
    /// `conv2d(x, weight, bias)` with 3×3 same padding; `x` `[B, C_in, H, W]`, `weight`
    /// `[C_out, C_in, 3, 3]`, `bias` `[C_out]`.
    fn conv3x3(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, Some(bias), same_options())
    }

    /// `relu(conv3x3(x, weight, bias))`, the U-Net's convolution block, in one pass on Flex.
    fn conv3x3_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::relu(Self::conv3x3(x, weight, bias))
    }

    /// [`Self::conv3x3_relu`], and what its backward pass keeps of `x`
    /// ([`Self::conv3x3_relu_grads`]'s `saved`): `x` itself by default; Flex keeps the padded
    /// fold of `x` it convolved, so that the backward pass does not fold `x` again.
    fn conv3x3_relu_saving(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        (Self::conv3x3_relu(x.clone(), weight, bias), x)
    }

    /// Gradient at the convolution's output of [`Self::conv3x3_relu`], from `grad` at the
    /// ReLU's `output`.
    fn conv3x3_relu_grad(output: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::relu_backward(output, grad)
    }

    /// 2×2 stride-2 max pooling, `x` `[B, C, H, W]`.
    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], false)
    }

    /// Gradient of [`Self::max_pool2x2`] with respect to `x`, from `grad` at its output.
    fn max_pool2x2_grad(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        burn_max_pool2x2_grad::<Self>(x, grad)
    }

    /// Gradient of the convolution with respect to `x`.
    fn conv3x3_input_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv2d_x_backward(x, weight, grad, same_options())
    }

    /// Gradient of the convolution with respect to `weight`.
    fn conv3x3_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv2d_weight_backward(x, weight, grad, same_options())
    }

    /// Every gradient of the convolution from `grad` at its output, `(x, weight, bias)`, the
    /// one with respect to `x` only when `input_grad`. Flex folds and sums `grad` in one pass
    /// and reads that fold for both convolutions.
    fn conv3x3_grads(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        input_grad: bool,
    ) -> (
        Option<FloatTensor<Self>>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    ) {
        separate_conv3x3_grads::<Self>(x, weight, bias, None, grad, input_grad)
    }

    /// [`Self::conv3x3_grads`] of [`Self::conv3x3_relu`], from `grad` at the ReLU's `output`;
    /// `saved` is the input `x` or what [`Self::conv3x3_relu_saving`] kept of it. Flex masks,
    /// folds and sums `grad` in one pass.
    fn conv3x3_relu_grads(
        saved: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        input_grad: bool,
    ) -> (
        Option<FloatTensor<Self>>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    ) {
        separate_conv3x3_grads::<Self>(saved, weight, bias, Some(output), grad, input_grad)
    }

    /// [`Self::conv3x3_relu`] of `[a, b]` concatenated over channels (the decoder's
    /// `[upsampled, skip]`); Flex convolves both without concatenating them.
    fn conv3x3_relu_cat(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv3x3_relu_cat_saving(a, b, weight, bias).0
    }

    /// [`Self::conv3x3_relu_saving`] of `[a, b]` concatenated over channels; Flex folds both
    /// into the one fold it convolves and keeps, without the concatenation.
    fn conv3x3_relu_cat_saving(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        Self::conv3x3_relu_saving(Self::float_cat(vec![a, b], 1), weight, bias)
    }

    /// [`Self::conv3x3_relu_grads`] of [`Self::conv3x3_relu_cat`], `a` having `a_channels`
    /// channels: `(da, db, weight, bias)`, the first two when `input_grad`. Flex writes `da`
    /// and `db` straight from its convolution.
    // The output is spelled out: `backend_extension` maps tuple outputs, not aliases.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn conv3x3_relu_cat_grads(
        saved: FloatTensor<Self>,
        a_channels: usize,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        input_grad: bool,
    ) -> (
        Option<FloatTensor<Self>>,
        Option<FloatTensor<Self>>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    ) {
        let c_in = weight.shape()[1];
        let (dx, dw, db) = Self::conv3x3_relu_grads(saved, weight, bias, output, grad, input_grad);
        let mut parts = dx.map(|dx| split_channels::<Self>(dx, &[a_channels, c_in - a_channels]));
        let d_b = parts.as_mut().and_then(Vec::pop);
        let d_a = parts.as_mut().and_then(Vec::pop);
        (d_a, d_b, dw, db)
    }

    /// Gradient of the convolution with respect to `bias`.
    fn conv3x3_bias_grad(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv2d_bias_backward(x, bias, grad)
    }

    /// `conv2d(x, weight, bias)` with a 1×1 kernel (the U-Net's head); `weight`
    /// `[C_out, C_in, 1, 1]`.
    fn conv1x1(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, Some(bias), pointwise_options())
    }

    /// Gradient of [`Self::conv1x1`] with respect to `x`.
    fn conv1x1_input_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv2d_x_backward(x, weight, grad, pointwise_options())
    }

    /// Gradient of [`Self::conv1x1`] with respect to `weight`.
    fn conv1x1_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv2d_weight_backward(x, weight, grad, pointwise_options())
    }

    /// `conv_transpose2d(x, weight, bias)`, kernel 2×2, stride 2, padding 0; `weight`
    /// `[C_in, C_out, 2, 2]`.
    fn upconv2x2(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv_transpose2d(x, weight, Some(bias), up_options())
    }

    /// Gradient of the transposed convolution with respect to `x`.
    fn upconv2x2_input_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let _ = x;
        Self::conv_transpose2d_x_backward(weight, grad, up_options())
    }

    /// Gradient of the transposed convolution with respect to `weight`.
    fn upconv2x2_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv_transpose2d_weight_backward(x, weight, grad, up_options())
    }

    /// Gradient of the transposed convolution with respect to `bias`.
    fn upconv2x2_bias_grad(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv_transpose2d_bias_backward(x, bias, grad)
    }
}

/// The gradients `(x, weight, bias)` of [`UNetConvBackend::conv3x3_grads`].
type ConvGradTensors<B> = (Option<FloatTensor<B>>, FloatTensor<B>, FloatTensor<B>);

/// [`UNetConvBackend::conv3x3_grads`] (or, with `relu_output`, `conv3x3_relu_grads`) from the
/// separate operations: the ReLU's mask, then each gradient on its own.
fn separate_conv3x3_grads<B: UNetConvBackend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: FloatTensor<B>,
    relu_output: Option<FloatTensor<B>>,
    grad: FloatTensor<B>,
    input_grad: bool,
) -> ConvGradTensors<B> {
    let grad = match relu_output {
        Some(output) => B::conv3x3_relu_grad(output, grad),
        None => grad,
    };
    let dx = input_grad.then(|| B::conv3x3_input_grad(x.clone(), weight.clone(), grad.clone()));
    let db = B::conv3x3_bias_grad(x.clone(), bias, grad.clone());
    (dx, B::conv3x3_weight_grad(x, weight, grad), db)
}

/// `x` (`[B, C, H, W]`) split over channels into tensors of `parts` channels (summing to `C`).
fn split_channels<B: Backend>(x: FloatTensor<B>, parts: &[usize]) -> Vec<FloatTensor<B>> {
    let dims = x.shape();
    let mut start = 0;
    parts
        .iter()
        .map(|&channels| {
            let slices = [
                Slice::from(0..dims[0]),
                Slice::from(start..start + channels),
                Slice::from(0..dims[2]),
                Slice::from(0..dims[3]),
            ];
            start += channels;
            B::float_slice(x.clone(), &slices)
        })
        .collect()
}

/// burn's own gradient of the 2×2 stride-2 max pooling (through its index tensor).
fn burn_max_pool2x2_grad<B: Backend>(x: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
    let (kernel, stride, padding, dilation) = ([2, 2], [2, 2], [0, 0], [1, 1]);
    let pooled = B::max_pool2d_with_indices(
        x.clone(),
        kernel,
        stride,
        padding,
        dilation,
        false,
        IntDType::I64,
    );
    B::max_pool2d_with_indices_backward(
        x,
        kernel,
        stride,
        padding,
        dilation,
        false,
        grad,
        pooled.indices,
    )
    .x_grad
}

/// The NCHW shape of a 4-D tensor.
fn nchw(t: &FlexTensor) -> Nchw {
    let shape = t.shape();
    Nchw {
        batch: shape[0],
        channels: shape[1],
        height: shape[2],
        width: shape[3],
    }
}

fn all_f32(tensors: &[&FlexTensor]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32)
}

/// Contiguous f32 view (copies only when strided or offset).
fn f32_values(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

fn as_f32(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("f32_values made the tensor contiguous f32")
}

fn flex_from(values: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.to_vec()))
}

/// The shifted-GEMM convolution on f32 Flex tensors; `None` for other dtypes.
fn flex_conv3x3(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    with_relu: bool,
) -> Option<FlexTensor> {
    if !all_f32(&[x, weight, bias]) {
        return None;
    }
    let shape = nchw(x);
    let x = f32_values(x);
    let folded = kernel::fold_input(as_f32(&x), shape);
    Some(flex_conv3x3_folded(&folded, shape, weight, bias, with_relu))
}

/// The convolution + ReLU of f32 tensors from the fold of its input (`shape`), and that fold
/// as a 1-D tensor for the backward pass.
fn conv3x3_relu_keeping_fold(
    folded: Vec<f32>,
    shape: Nchw,
    weight: &FlexTensor,
    bias: &FlexTensor,
) -> (FlexTensor, FlexTensor) {
    let out = flex_conv3x3_folded(&folded, shape, weight, bias, true);
    let len = folded.len();
    (out, flex_from(folded, &[len]))
}

/// [`flex_conv3x3`] of f32 tensors from the fold of `x` (`shape`).
fn flex_conv3x3_folded(
    folded: &[f32],
    shape: Nchw,
    weight: &FlexTensor,
    bias: &FlexTensor,
    with_relu: bool,
) -> FlexTensor {
    let c_out = weight.shape()[0];
    let (weight, bias) = (f32_values(weight), f32_values(bias));
    let out = kernel::conv3x3_forward_folded(
        folded,
        shape,
        as_f32(&weight),
        Some(as_f32(&bias)),
        c_out,
        with_relu,
        ConvKernel::selected(),
    );
    flex_from(out, &[shape.batch, c_out, shape.height, shape.width])
}

/// Flex's `conv3x3_grads`, `conv3x3_relu_grads` and `conv3x3_relu_cat_grads`:
/// [`kernel::conv3x3_grads`] on f32, the separate operations (burn's, for other dtypes)
/// otherwise. `saved` is the convolution's input `x` (`[B, C_in, H, W]`) or its padded fold
/// (1-D, from `conv3x3_relu_saving` or `conv3x3_relu_cat_saving`); the input gradient, when
/// `input_parts` asks for it, comes split over channels into those parts.
fn flex_conv3x3_grads(
    saved: FlexTensor,
    weight: FlexTensor,
    bias: FlexTensor,
    relu_output: Option<FlexTensor>,
    grad: FlexTensor,
    input_parts: Option<&[usize]>,
) -> (Option<Vec<FlexTensor>>, FlexTensor, FlexTensor) {
    let mut tensors = vec![&saved, &weight, &grad];
    tensors.extend(relu_output.as_ref());
    let is_fold = saved.shape().len() == 1;
    if !all_f32(&tensors) {
        assert!(!is_fold, "a fold is only saved for f32 convolutions");
        let input_grad = input_parts.is_some();
        let (dx, dw, db) =
            separate_conv3x3_grads::<Flex>(saved, weight, bias, relu_output, grad, input_grad);
        let parts = input_parts
            .zip(dx)
            .map(|(parts, dx)| split_channels::<Flex>(dx, parts));
        return (parts, dw, db);
    }
    let shape = Nchw {
        channels: weight.shape()[1],
        ..nchw(&grad)
    };
    let c_out = weight.shape()[0];
    let (saved, weight, grad) = (f32_values(&saved), f32_values(&weight), f32_values(&grad));
    let folded_x = if is_fold {
        None
    } else {
        Some(kernel::fold_input(as_f32(&saved), shape))
    };
    let relu_output = relu_output.map(|output| f32_values(&output));
    let grads = kernel::conv3x3_grads(
        folded_x.as_deref().unwrap_or(as_f32(&saved)),
        shape,
        as_f32(&weight),
        relu_output.as_ref().map(as_f32),
        as_f32(&grad),
        c_out,
        ConvKernel::selected(),
        input_parts,
    );
    let input = grads.input.zip(input_parts).map(|(values, parts)| {
        values
            .into_iter()
            .zip(parts)
            .map(|(dx, &channels)| {
                flex_from(dx, &[shape.batch, channels, shape.height, shape.width])
            })
            .collect()
    });
    (
        input,
        flex_from(grads.weight, &[c_out, shape.channels, 3, 3]),
        flex_from(grads.bias, &[c_out]),
    )
}

/// [`flex_conv3x3_grads`] with the input gradient whole (`[B, C_in, H, W]`), when asked for.
fn flex_conv3x3_grads_whole(
    saved: FlexTensor,
    weight: FlexTensor,
    bias: FlexTensor,
    relu_output: Option<FlexTensor>,
    grad: FlexTensor,
    input_grad: bool,
) -> ConvGradTensors<Flex> {
    let whole = [weight.shape()[1]];
    let parts = input_grad.then_some(&whole[..]);
    let (dx, dw, db) = flex_conv3x3_grads(saved, weight, bias, relu_output, grad, parts);
    (dx.and_then(|mut dx| dx.pop()), dw, db)
}

impl UNetConvBackend for Flex {
    fn conv3x3(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        match flex_conv3x3(&x, &weight, &bias, false) {
            Some(out) => out,
            None => Self::conv2d(x, weight, Some(bias), same_options()),
        }
    }

    fn conv3x3_relu(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        match flex_conv3x3(&x, &weight, &bias, true) {
            Some(out) => out,
            None => Self::relu(Self::conv2d(x, weight, Some(bias), same_options())),
        }
    }

    fn max_pool2x2(x: FlexTensor) -> FlexTensor {
        let shape = nchw(&x);
        if !all_f32(&[&x]) || !pool::supports(shape) {
            return Self::max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], false);
        }
        let x = f32_values(&x);
        let out = pool::max_pool2x2_forward(as_f32(&x), shape);
        flex_from(
            out,
            &[
                shape.batch,
                shape.channels,
                shape.height / 2,
                shape.width / 2,
            ],
        )
    }

    fn max_pool2x2_grad(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        let shape = nchw(&x);
        if !all_f32(&[&x, &grad]) || !pool::supports(shape) {
            return burn_max_pool2x2_grad::<Self>(x, grad);
        }
        let (x, grad) = (f32_values(&x), f32_values(&grad));
        let out = pool::max_pool2x2_input_grad(as_f32(&x), shape, as_f32(&grad));
        flex_from(out, &shape.dims())
    }

    fn conv3x3_relu_grad(output: FlexTensor, grad: FlexTensor) -> FlexTensor {
        if !all_f32(&[&output, &grad]) {
            return Self::relu_backward(output, grad);
        }
        let shape = grad.shape().to_vec();
        let output = f32_values(&output);
        let n = as_f32(&output).len();
        let mut grad = grad;
        if grad.is_contiguous()
            && grad.layout().start_offset() == 0
            && let Some(values) = grad.try_storage_mut::<f32>()
            && let Some(values) = values.get_mut(..n)
        {
            // The usual case: the gradient buffer is this node's alone; mask it where it is.
            kernel::relu_grad_in_place(as_f32(&output), values);
            return grad;
        }
        let grad = f32_values(&grad);
        flex_from(kernel::relu_grad(as_f32(&output), as_f32(&grad)), &shape)
    }

    fn conv3x3_input_grad(x: FlexTensor, weight: FlexTensor, grad: FlexTensor) -> FlexTensor {
        if !all_f32(&[&x, &weight, &grad]) {
            return Self::conv2d_x_backward(x, weight, grad, same_options());
        }
        let shape = nchw(&x);
        let c_out = weight.shape()[0];
        let (weight, grad) = (f32_values(&weight), f32_values(&grad));
        let out = kernel::conv3x3_input_grad(
            as_f32(&grad),
            shape,
            as_f32(&weight),
            c_out,
            ConvKernel::selected(),
        );
        flex_from(out, &shape.dims())
    }

    fn conv3x3_weight_grad(x: FlexTensor, weight: FlexTensor, grad: FlexTensor) -> FlexTensor {
        if !all_f32(&[&x, &weight, &grad]) {
            return Self::conv2d_weight_backward(x, weight, grad, same_options());
        }
        let shape = nchw(&x);
        let c_out = weight.shape()[0];
        let (x, grad) = (f32_values(&x), f32_values(&grad));
        let out = kernel::conv3x3_weight_grad(
            as_f32(&x),
            shape,
            as_f32(&grad),
            c_out,
            ConvKernel::selected(),
        );
        flex_from(out, &[c_out, shape.channels, 3, 3])
    }

    fn conv3x3_grads(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        grad: FlexTensor,
        input_grad: bool,
    ) -> ConvGradTensors<Self> {
        flex_conv3x3_grads_whole(x, weight, bias, None, grad, input_grad)
    }

    fn conv3x3_relu_saving(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        if !all_f32(&[&x, &weight, &bias]) {
            return (Self::conv3x3_relu(x.clone(), weight, bias), x);
        }
        let shape = nchw(&x);
        let x = f32_values(&x);
        conv3x3_relu_keeping_fold(kernel::fold_input(as_f32(&x), shape), shape, &weight, &bias)
    }

    fn conv3x3_relu_grads(
        saved: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        output: FlexTensor,
        grad: FlexTensor,
        input_grad: bool,
    ) -> ConvGradTensors<Self> {
        flex_conv3x3_grads_whole(saved, weight, bias, Some(output), grad, input_grad)
    }

    fn conv3x3_relu_cat_saving(
        a: FlexTensor,
        b: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
    ) -> (FlexTensor, FlexTensor) {
        let (dims_a, dims_b) = (a.shape(), b.shape());
        let same_images = dims_a.len() == 4
            && dims_b.len() == 4
            && (dims_a[0], dims_a[2], dims_a[3]) == (dims_b[0], dims_b[2], dims_b[3]);
        if !same_images || !all_f32(&[&a, &b, &weight, &bias]) {
            // burn's concatenation, which reports mismatched shapes.
            return Self::conv3x3_relu_saving(Self::float_cat(vec![a, b], 1), weight, bias);
        }
        let (shape_a, shape_b) = (nchw(&a), nchw(&b));
        let shape = Nchw {
            channels: shape_a.channels + shape_b.channels,
            ..shape_a
        };
        let (a, b) = (f32_values(&a), f32_values(&b));
        let parts = [
            (as_f32(&a), shape_a.channels),
            (as_f32(&b), shape_b.channels),
        ];
        conv3x3_relu_keeping_fold(kernel::fold_inputs(&parts, shape), shape, &weight, &bias)
    }

    fn conv3x3_relu_cat_grads(
        saved: FlexTensor,
        a_channels: usize,
        weight: FlexTensor,
        bias: FlexTensor,
        output: FlexTensor,
        grad: FlexTensor,
        input_grad: bool,
    ) -> (
        Option<FlexTensor>,
        Option<FlexTensor>,
        FlexTensor,
        FlexTensor,
    ) {
        let parts = [a_channels, weight.shape()[1] - a_channels];
        let input_parts = input_grad.then_some(&parts[..]);
        let (dx, dw, db) = flex_conv3x3_grads(saved, weight, bias, Some(output), grad, input_parts);
        let mut dx = dx.unwrap_or_default();
        let d_b = dx.pop();
        let d_a = dx.pop();
        (d_a, d_b, dw, db)
    }

    fn conv3x3_bias_grad(x: FlexTensor, bias: FlexTensor, grad: FlexTensor) -> FlexTensor {
        if !all_f32(&[&x, &bias, &grad]) {
            return Self::conv2d_bias_backward(x, bias, grad);
        }
        let Nchw {
            batch,
            channels: c_out,
            height,
            width,
        } = nchw(&grad);
        let grad = f32_values(&grad);
        let out = kernel::bias_grad(as_f32(&grad), batch, c_out, height * width);
        flex_from(out, &[c_out])
    }

    fn conv1x1(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        if !all_f32(&[&x, &weight, &bias]) {
            return Self::conv2d(x, weight, Some(bias), pointwise_options());
        }
        let shape = nchw(&x);
        let c_out = weight.shape()[0];
        let (x, weight, bias) = (f32_values(&x), f32_values(&weight), f32_values(&bias));
        let out =
            pointwise::conv1x1_forward(as_f32(&x), shape, as_f32(&weight), as_f32(&bias), c_out);
        flex_from(out, &[shape.batch, c_out, shape.height, shape.width])
    }

    fn conv1x1_input_grad(x: FlexTensor, weight: FlexTensor, grad: FlexTensor) -> FlexTensor {
        if !all_f32(&[&x, &weight, &grad]) {
            return Self::conv2d_x_backward(x, weight, grad, pointwise_options());
        }
        let shape = nchw(&x);
        let c_out = weight.shape()[0];
        let (weight, grad) = (f32_values(&weight), f32_values(&grad));
        let out = pointwise::conv1x1_input_grad(as_f32(&grad), shape, as_f32(&weight), c_out);
        flex_from(out, &shape.dims())
    }

    fn conv1x1_weight_grad(x: FlexTensor, weight: FlexTensor, grad: FlexTensor) -> FlexTensor {
        if !all_f32(&[&x, &weight, &grad]) {
            return Self::conv2d_weight_backward(x, weight, grad, pointwise_options());
        }
        let shape = nchw(&x);
        let c_out = weight.shape()[0];
        let (x, grad) = (f32_values(&x), f32_values(&grad));
        let out = pointwise::conv1x1_weight_grad(as_f32(&x), shape, as_f32(&grad), c_out);
        flex_from(out, &[c_out, shape.channels, 1, 1])
    }

    fn upconv2x2(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        if !all_f32(&[&x, &weight, &bias]) {
            return Self::conv_transpose2d(x, weight, Some(bias), up_options());
        }
        let shape = nchw(&x);
        let c_out = weight.shape()[1];
        let (x, weight, bias) = (f32_values(&x), f32_values(&weight), f32_values(&bias));
        let out = upconv::upconv2x2_forward(
            as_f32(&x),
            shape,
            as_f32(&weight),
            Some(as_f32(&bias)),
            c_out,
        );
        flex_from(
            out,
            &[shape.batch, c_out, 2 * shape.height, 2 * shape.width],
        )
    }

    fn upconv2x2_input_grad(x: FlexTensor, weight: FlexTensor, grad: FlexTensor) -> FlexTensor {
        if !all_f32(&[&x, &weight, &grad]) {
            return Self::conv_transpose2d_x_backward(weight, grad, up_options());
        }
        let shape = nchw(&x);
        let c_out = weight.shape()[1];
        let (weight, grad) = (f32_values(&weight), f32_values(&grad));
        let out = upconv::upconv2x2_input_grad(as_f32(&grad), shape, as_f32(&weight), c_out);
        flex_from(out, &shape.dims())
    }

    fn upconv2x2_weight_grad(x: FlexTensor, weight: FlexTensor, grad: FlexTensor) -> FlexTensor {
        if !all_f32(&[&x, &weight, &grad]) {
            return Self::conv_transpose2d_weight_backward(x, weight, grad, up_options());
        }
        let shape = nchw(&x);
        let c_out = weight.shape()[1];
        let (x, grad) = (f32_values(&x), f32_values(&grad));
        let out = upconv::upconv2x2_weight_grad(as_f32(&x), shape, as_f32(&grad), c_out);
        flex_from(out, &[shape.channels, c_out, 2, 2])
    }

    fn upconv2x2_bias_grad(x: FlexTensor, bias: FlexTensor, grad: FlexTensor) -> FlexTensor {
        // The same reduction as the 3×3 convolution's: dY summed over batch and space.
        Self::conv3x3_bias_grad(x, bias, grad)
    }
}

/// Autodiff node of [`UNetConvBackend::conv3x3`]: its backward calls the inner backend's
/// gradient operations.
#[derive(Debug)]
struct Conv3x3Node;

/// A gradient function of a layer `y = f(x, weight) + bias`: `(x, weight or bias, dY)`.
type GradFn<B> = fn(FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>;

/// Autodiff node of a layer `y = f(x, weight) + bias` whose state is its three inputs
/// ([`UNetConvBackend::conv1x1`], [`UNetConvBackend::upconv2x2`]): its backward pass computes
/// each gradient a parent asks for with the layer's gradient functions `[input (of x, weight,
/// dY), weight (of x, weight, dY), bias (of x, bias, dY)]`.
#[derive(Debug)]
struct InputsNode<B: Backend> {
    grad_fns: [GradFn<B>; 3],
}

impl<B: UNetConvBackend> Backward<B, 3> for InputsNode<B> {
    type State = (NodeId, NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [input_grad, weight_grad, bias_grad] = self.grad_fns;
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, bias_state) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        let bias = checkpointer.retrieve_node_output::<FloatTensor<B>>(bias_state);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, input_grad(x.clone(), weight.clone(), grad.clone()));
        }
        if let Some(node) = node_weight {
            grads.register::<B>(node.id, weight_grad(x.clone(), weight, grad.clone()));
        }
        if let Some(node) = node_bias {
            grads.register::<B>(node.id, bias_grad(x, bias, grad));
        }
    }
}

/// Autodiff node of [`UNetConvBackend::max_pool2x2`]; its state is the input.
#[derive(Debug)]
struct MaxPool2x2Node;

impl<B: UNetConvBackend> Backward<B, 1> for MaxPool2x2Node {
    type State = NodeId;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(ops.state);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::max_pool2x2_grad(x, grad));
        }
    }
}

/// Autodiff node of [`UNetConvBackend::conv3x3_relu`]; its state also holds the output, which
/// masks the incoming gradient.
#[derive(Debug)]
struct Conv3x3ReluNode;

impl<B: UNetConvBackend> Backward<B, 3> for Conv3x3Node {
    type State = (NodeId, NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, bias_state) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        let bias = checkpointer.retrieve_node_output::<FloatTensor<B>>(bias_state);
        let input_grad = ops.parents[0].is_some();
        let conv_grads = B::conv3x3_grads(x, weight, bias, grad, input_grad);
        register_conv3x3_grads::<B>(
            ops.parents.map(|p| p.map(|node| node.id)),
            conv_grads,
            grads,
        );
    }
}

impl<B: UNetConvBackend> Backward<B, 3> for Conv3x3ReluNode {
    /// What the forward pass kept of `x` (`conv3x3_relu_saving`), the weight and bias, and
    /// the ReLU's output.
    type State = (FloatTensor<B>, NodeId, NodeId, FloatTensor<B>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (saved, weight_state, bias_state, output) = ops.state;
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        let bias = checkpointer.retrieve_node_output::<FloatTensor<B>>(bias_state);
        let input_grad = ops.parents[0].is_some();
        let conv_grads = B::conv3x3_relu_grads(saved, weight, bias, output, grad, input_grad);
        register_conv3x3_grads::<B>(
            ops.parents.map(|p| p.map(|node| node.id)),
            conv_grads,
            grads,
        );
    }
}

/// Autodiff node of [`UNetConvBackend::conv3x3_relu_cat`]: parents `a`, `b`, weight, bias;
/// its state is the fold the forward pass kept, the channels of `a`, the weight and bias, and
/// the ReLU's output.
#[derive(Debug)]
struct Conv3x3ReluCatNode;

impl<B: UNetConvBackend> Backward<B, 4> for Conv3x3ReluCatNode {
    type State = (FloatTensor<B>, usize, NodeId, NodeId, FloatTensor<B>);

    fn backward(
        self,
        ops: Ops<Self::State, 4>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (saved, a_channels, weight_state, bias_state, output) = ops.state;
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        let bias = checkpointer.retrieve_node_output::<FloatTensor<B>>(bias_state);
        let [a, b, weight_id, bias_id] = ops.parents.map(|p| p.map(|node| node.id));
        let input_grad = a.is_some() || b.is_some();
        let (d_a, d_b, dw, db) =
            B::conv3x3_relu_cat_grads(saved, a_channels, weight, bias, output, grad, input_grad);
        for (id, d) in [(a, d_a), (b, d_b)] {
            if let (Some(id), Some(d)) = (id, d) {
                grads.register::<B>(id, d);
            }
        }
        register_conv3x3_grads::<B>([None, weight_id, bias_id], (None, dw, db), grads);
    }
}

/// Registers the gradients `(x, weight, bias)` of a 3×3 convolution for those of its inputs
/// that are tracked.
fn register_conv3x3_grads<B: UNetConvBackend>(
    [x, weight, bias]: [Option<NodeId>; 3],
    (dx, dw, db): ConvGradTensors<B>,
    grads: &mut Gradients,
) {
    if let (Some(id), Some(dx)) = (x, dx) {
        grads.register::<B>(id, dx);
    }
    if let Some(id) = weight {
        grads.register::<B>(id, dw);
    }
    if let Some(id) = bias {
        grads.register::<B>(id, db);
    }
}

/// `forward(x, weight, bias)` on the inner backend, tracked by an [`InputsNode`] with
/// `grad_fns` that keeps the three inputs for its backward pass.
fn track_with_inputs<B, C>(
    grad_fns: [GradFn<B>; 3],
    inputs: [FloatTensor<Autodiff<B, C>>; 3],
    forward: GradFn<B>,
) -> FloatTensor<Autodiff<B, C>>
where
    B: UNetConvBackend,
    C: CheckpointStrategy,
{
    track_three::<B, C, _, _>(
        InputsNode { grad_fns },
        inputs,
        true,
        |x, weight, bias| (forward(x, weight, bias), ()),
        |ids, _, ()| ids.into(),
    )
}

/// Records an operation of three inputs (input, weight, bias) on the autodiff graph: `forward`
/// runs on the inner backend and returns the output and what it saves for the backward pass,
/// and `state` makes the node's backward state from the inputs' ids, the output and that.
/// The weight and bias are checkpointed, the input only when `checkpoint_x` (a node whose
/// forward pass saves what it needs of `x` does not keep `x` alive as well).
fn track_three<B, C, N, S>(
    node: N,
    [x, weight, bias]: [FloatTensor<Autodiff<B, C>>; 3],
    checkpoint_x: bool,
    forward: impl FnOnce(FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) -> (FloatTensor<B>, S),
    state: impl FnOnce([NodeId; 3], &FloatTensor<B>, S) -> N::State,
) -> FloatTensor<Autodiff<B, C>>
where
    B: UNetConvBackend,
    C: CheckpointStrategy,
    N: Backward<B, 3>,
{
    match node
        .prepare::<C>([x.node(), weight.node(), bias.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let ids = [
                if checkpoint_x {
                    prep.checkpoint(&x)
                } else {
                    x.id()
                },
                prep.checkpoint(&weight),
                prep.checkpoint(&bias),
            ];
            let (out, saved) = forward(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
            );
            let state = state(ids, &out, saved);
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(
            forward(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
            )
            .0,
        ),
    }
}

impl<B: UNetConvBackend, C: CheckpointStrategy> UNetConvBackend for Autodiff<B, C> {
    fn conv3x3(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        track_three::<B, C, _, _>(
            Conv3x3Node,
            [x, weight, bias],
            true,
            |x, weight, bias| (B::conv3x3(x, weight, bias), ()),
            |ids, _, ()| ids.into(),
        )
    }

    fn conv3x3_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        track_three::<B, C, _, _>(
            Conv3x3ReluNode,
            [x, weight, bias],
            false,
            B::conv3x3_relu_saving,
            |[_, weight, bias], out, saved| (saved, weight, bias, out.clone()),
        )
    }

    fn conv3x3_relu_cat(
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let a_channels = a.primitive().shape()[1];
        match Conv3x3ReluCatNode
            .prepare::<C>([a.node(), b.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let (weight_id, bias_id) = (prep.checkpoint(&weight), prep.checkpoint(&bias));
                let (out, saved) = B::conv3x3_relu_cat_saving(
                    a.into_primitive(),
                    b.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                );
                let state = (saved, a_channels, weight_id, bias_id, out.clone());
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::conv3x3_relu_cat(
                a.into_primitive(),
                b.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
            )),
        }
    }

    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match MaxPool2x2Node
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                prep.finish(x_state, B::max_pool2x2(x.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::max_pool2x2(x.into_primitive())),
        }
    }

    fn conv1x1(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        // The bias gradient is the 3×3 convolution's reduction: dY summed over batch and space.
        let grad_fns = [
            B::conv1x1_input_grad,
            B::conv1x1_weight_grad,
            B::conv3x3_bias_grad,
        ];
        track_with_inputs::<B, C>(grad_fns, [x, weight, bias], B::conv1x1)
    }

    fn upconv2x2(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let grad_fns = [
            B::upconv2x2_input_grad,
            B::upconv2x2_weight_grad,
            B::upconv2x2_bias_grad,
        ];
        track_with_inputs::<B, C>(grad_fns, [x, weight, bias], B::upconv2x2)
    }
}

/// Which implementation [`conv3x3`] uses on Flex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConvImpl {
    /// Shifted GEMMs with the handwritten backward (default).
    #[default]
    ShiftedGemm,
    /// burn's `conv2d` and its generic backward (the previous formulation, for comparison).
    BurnConv2d,
}

thread_local! {
    static CHOICE: Cell<Option<ConvImpl>> = const { Cell::new(None) };
}

/// Selects the implementation for the calling thread (the model's forward pass runs on the
/// caller's thread). Without a call, the environment variable `UNET_TRAIN_CONV=burn` selects
/// [`ConvImpl::BurnConv2d`], anything else [`ConvImpl::ShiftedGemm`].
pub fn set_conv_impl(choice: ConvImpl) {
    CHOICE.with(|c| c.set(Some(choice)));
}

/// The implementation in use on this thread.
pub fn conv_impl() -> ConvImpl {
    CHOICE.with(|c| {
        c.get().unwrap_or_else(|| {
            let from_env =
                if std::env::var("UNET_TRAIN_CONV").is_ok_and(|v| v.eq_ignore_ascii_case("burn")) {
                    ConvImpl::BurnConv2d
                } else {
                    ConvImpl::ShiftedGemm
                };
            c.set(Some(from_env));
            from_env
        })
    })
}

/// Whether [`conv3x3`] runs the shifted-GEMM extension for tensors on `device` (Flex, with or
/// without autodiff, unless [`ConvImpl::BurnConv2d`] is selected).
pub fn uses_shifted_gemm(device: &Device) -> bool {
    device.clone().without_autodiff() == Device::flex() && conv_impl() == ConvImpl::ShiftedGemm
}

/// The 3×3 same convolution plus bias, `x` `[B, C_in, H, W]`, `weight` `[C_out, C_in, 3, 3]`.
pub fn conv3x3(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>) -> Tensor<4> {
    if uses_shifted_gemm(&x.device()) {
        let out = <Dispatch as UNetConvBackend>::conv3x3(
            x.into_dispatch(),
            weight.into_dispatch(),
            bias.into_dispatch(),
        );
        Tensor::from_dispatch(out)
    } else {
        conv2d(x, weight, Some(bias), same_options())
    }
}

/// `relu(conv3x3(x, weight, bias))`: on Flex one pass whose backward masks the gradient with
/// the saved output; elsewhere burn's `conv2d` and `relu`.
pub fn conv3x3_relu(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>) -> Tensor<4> {
    if uses_shifted_gemm(&x.device()) {
        let out = <Dispatch as UNetConvBackend>::conv3x3_relu(
            x.into_dispatch(),
            weight.into_dispatch(),
            bias.into_dispatch(),
        );
        Tensor::from_dispatch(out)
    } else {
        relu(conv2d(x, weight, Some(bias), same_options()))
    }
}

/// `relu(conv3x3(cat([a, b], 1), weight, bias))`, the decoder's convolution of
/// `[upsampled, skip]`: on Flex without the concatenation (the convolution reads both, and its
/// backward pass writes both input gradients), elsewhere burn's `cat` and `conv2d`.
pub fn conv3x3_relu_cat(
    a: Tensor<4>,
    b: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
) -> Tensor<4> {
    if uses_shifted_gemm(&a.device()) {
        let out = <Dispatch as UNetConvBackend>::conv3x3_relu_cat(
            a.into_dispatch(),
            b.into_dispatch(),
            weight.into_dispatch(),
            bias.into_dispatch(),
        );
        Tensor::from_dispatch(out)
    } else {
        let x = Tensor::cat(vec![a, b], 1);
        relu(conv2d(x, weight, Some(bias), same_options()))
    }
}

/// 2×2 stride-2 max pooling, `x` `[B, C, H, W]`: on Flex one parallel pass whose backward
/// finds each window's maximum again in the saved input (no index tensor); elsewhere burn's
/// `max_pool2d`.
pub fn max_pool2x2(x: Tensor<4>) -> Tensor<4> {
    if uses_shifted_gemm(&x.device()) {
        let out = <Dispatch as UNetConvBackend>::max_pool2x2(x.into_dispatch());
        Tensor::from_dispatch(out)
    } else {
        max_pool2d(x, MaxPoolOptions::new([2, 2]))
    }
}

/// The 1×1 convolution plus bias (the U-Net's head), `weight` `[C_out, C_in, 1, 1]`: on Flex
/// one pass per image and gradient ([`pointwise`]), elsewhere burn's `conv2d`.
pub fn conv1x1(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>) -> Tensor<4> {
    if uses_shifted_gemm(&x.device()) {
        let out = <Dispatch as UNetConvBackend>::conv1x1(
            x.into_dispatch(),
            weight.into_dispatch(),
            bias.into_dispatch(),
        );
        Tensor::from_dispatch(out)
    } else {
        conv2d(x, weight, Some(bias), pointwise_options())
    }
}

/// The 2×2 stride-2 transposed convolution plus bias, `x` `[B, C_in, H, W]`, `weight`
/// `[C_in, C_out, 2, 2]`; the GEMM formulation of [`upconv`] on Flex as for [`conv3x3`].
pub fn upconv2x2(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>) -> Tensor<4> {
    if uses_shifted_gemm(&x.device()) {
        let out = <Dispatch as UNetConvBackend>::upconv2x2(
            x.into_dispatch(),
            weight.into_dispatch(),
            bias.into_dispatch(),
        );
        Tensor::from_dispatch(out)
    } else {
        conv_transpose2d(x, weight, Some(bias), up_options())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flex_devices_use_the_extension_unless_burn_conv2d_is_selected() {
        set_conv_impl(ConvImpl::ShiftedGemm);
        assert!(uses_shifted_gemm(&Device::flex()));
        assert!(uses_shifted_gemm(&Device::flex().autodiff()));
        set_conv_impl(ConvImpl::BurnConv2d);
        assert!(!uses_shifted_gemm(&Device::flex().autodiff()));
        set_conv_impl(ConvImpl::ShiftedGemm);
    }

    #[cfg(feature = "ndarray")]
    #[test]
    #[allow(deprecated)]
    fn ndarray_uses_burn_conv2d() {
        assert!(!uses_shifted_gemm(&Device::ndarray()));
    }
}
