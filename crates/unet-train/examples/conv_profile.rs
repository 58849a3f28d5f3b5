//! Per-layer forward/backward seconds of the U-Net's 3×3 convolutions at batch 8, 128×128,
//! fms 16, comparing burn's `conv2d` (and its generic backward) with [`unet_train::conv3x3`]:
//! `cargo run --release -p unet-train --example conv_profile -- [reps] [other]`
//! (`other`: max-pool, ReLU, concatenation, product and the transposed convolutions instead).

use std::time::Instant;

use burn::tensor::activation::relu;
use burn::tensor::module::{conv_transpose2d, conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, MaxPoolOptions};
use burn::tensor::{Device, Distribution, Tensor};
use unet_train::conv3x3::{ConvImpl, conv1x1, conv3x3, set_conv_impl, upconv2x2};

fn time<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    f();
    let start = Instant::now();
    for _ in 0..reps {
        f();
    }
    start.elapsed().as_secs_f64() / reps as f64
}

/// Mean forward and backward milliseconds of `f` applied to a fresh `[batch, c, size, size]`
/// leaf, with a random upstream gradient.
fn time_op(
    reps: usize,
    x: &Tensor<4>,
    params: &[Tensor<4>],
    f: &dyn Fn(Tensor<4>, &[Tensor<4>]) -> Tensor<4>,
) -> (f64, f64) {
    let (mut fwd, mut bwd) = (0.0, 0.0);
    let _ = time(reps, || {
        let xr = x.clone().require_grad();
        let ps: Vec<Tensor<4>> = params.iter().map(|p| p.clone().require_grad()).collect();
        let t0 = Instant::now();
        let y = f(xr.clone(), &ps);
        let g = y.random_like(Distribution::Uniform(-1.0, 1.0));
        let loss = (y * g).sum();
        let _ = loss.clone().into_data();
        let t1 = Instant::now();
        let grads = loss.backward();
        let _ = xr.grad(&grads).map(|t| t.into_data());
        for p in &ps {
            let _ = p.grad(&grads).map(|t| t.into_data());
        }
        fwd += (t1 - t0).as_secs_f64();
        bwd += t1.elapsed().as_secs_f64();
    });
    (fwd / (reps + 1) as f64 * 1e3, bwd / (reps + 1) as f64 * 1e3)
}

fn other_ops(reps: usize, device: &Device, batch: usize) {
    println!("op (input)              | fwd  bwd (ms), incl. the random gradient and the product");
    for (c, size) in [(16, 128), (32, 64), (64, 32), (128, 16), (256, 8)] {
        let x = Tensor::<4>::random(
            [batch, c, size, size],
            Distribution::Uniform(-1.0, 1.0),
            device,
        );
        let (f, b) = time_op(reps, &x, &[], &|x, _| {
            max_pool2d(x, MaxPoolOptions::new([2, 2]))
        });
        println!("max_pool {c:3}x{size:3}        | {f:7.1} {b:7.1}");
        let (f, b) = time_op(reps, &x, &[], &|x, _| relu(x));
        println!("relu     {c:3}x{size:3}        | {f:7.1} {b:7.1}");
        let (f, b) = time_op(reps, &x, &[], &|x, _| Tensor::cat(vec![x.clone(), x], 1));
        println!("cat      {c:3}x{size:3}        | {f:7.1} {b:7.1}");
        let (f, b) = time_op(reps, &x, &[], &|x, _| x.clone() * x);
        println!("mul      {c:3}x{size:3}        | {f:7.1} {b:7.1}");
    }
    for (c, size) in [(256, 8), (128, 16), (64, 32), (32, 64)] {
        let x = Tensor::<4>::random(
            [batch, c, size, size],
            Distribution::Uniform(-1.0, 1.0),
            device,
        );
        let w = Tensor::<4>::random([c, c / 2, 2, 2], Distribution::Uniform(-0.1, 0.1), device);
        let options = ConvTransposeOptions::new([2, 2], [0, 0], [0, 0], [1, 1], 1);
        let (f, b) = time_op(reps, &x, std::slice::from_ref(&w), &|x, p| {
            conv_transpose2d(x, p[0].clone(), None, options.clone())
        });
        let bias = Tensor::<1>::zeros([c / 2], device);
        let (f2, b2) = time_op(reps, &x, &[w], &|x, p| {
            upconv2x2(x, p[0].clone(), bias.clone())
        });
        println!("upconv   {c:3}x{size:3}        | {f:7.1} {b:7.1} | upconv2x2 {f2:7.1} {b2:7.1}");
    }
    // The head: burn's 1×1 conv2d against the extension's conv1x1, weight and bias trained.
    let x = Tensor::<4>::random(
        [batch, 16, 128, 128],
        Distribution::Uniform(-1.0, 1.0),
        device,
    );
    let w = Tensor::<4>::random([1, 16, 1, 1], Distribution::Uniform(-0.5, 0.5), device);
    let bias = Tensor::<1>::zeros([1], device);
    let params = [w, bias.unsqueeze::<4>()];
    let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
    let (f, b) = time_op(reps, &x, &params, &|x, p| {
        conv2d(
            x,
            p[0].clone(),
            Some(p[1].clone().flatten(0, 3)),
            options.clone(),
        )
    });
    let (f2, b2) = time_op(reps, &x, &params, &|x, p| {
        conv1x1(x, p[0].clone(), p[1].clone().flatten(0, 3))
    });
    println!("head      16x128        | {f:7.1} {b:7.1} | conv1x1   {f2:7.1} {b2:7.1}");
}

fn main() {
    // As `cargo xtask` does: keep freed tensors' memory for the next step.
    unet_train::allocator::retain_freed_memory();
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let device = Device::flex().autodiff();
    let batch = 8;
    if std::env::args().nth(2).as_deref() == Some("other") {
        other_ops(reps, &device, batch);
        return;
    }
    // (name, c_in, c_out, size)
    let layers = [
        ("A 16->16", 16, 16, 128),
        ("A 32->16", 32, 16, 128),
        ("B 32->32", 32, 32, 64),
        ("B 64->32", 64, 32, 64),
        ("C 64->64", 64, 64, 32),
        ("D 128->128", 128, 128, 16),
        ("E 256->256", 256, 256, 8),
    ];
    println!("layer        | conv2d fwd  bwd  | shifted-gemm fwd  bwd  (ms)  | GFLOP/s fwd bwd");
    for (name, c_in, c_out, size) in layers {
        let x = Tensor::<4>::random(
            [batch, c_in, size, size],
            Distribution::Uniform(-1.0, 1.0),
            &device,
        );
        let w = Tensor::<4>::random(
            [c_out, c_in, 3, 3],
            Distribution::Uniform(-0.1, 0.1),
            &device,
        );
        let g = Tensor::<4>::random(
            [batch, c_out, size, size],
            Distribution::Uniform(-1.0, 1.0),
            &device,
        );
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let (mut fwd, mut bwd) = (0.0, 0.0);
        let _ = time(reps, || {
            let xr = x.clone().require_grad();
            let wr = w.clone().require_grad();
            let t0 = Instant::now();
            let y = conv2d(xr.clone(), wr.clone(), None, options.clone());
            let loss = (y * g.clone()).sum();
            let _ = loss.clone().into_data();
            let t1 = Instant::now();
            let grads = loss.backward();
            let _ = xr.grad(&grads).map(|t| t.into_data());
            let _ = wr.grad(&grads).map(|t| t.into_data());
            fwd += (t1 - t0).as_secs_f64();
            bwd += t1.elapsed().as_secs_f64();
        });
        let (old_f, old_b) = (fwd / (reps + 1) as f64, bwd / (reps + 1) as f64);
        let bias = Tensor::<1>::zeros([c_out], &device);
        set_conv_impl(ConvImpl::ShiftedGemm);
        let (mut fwd, mut bwd) = (0.0, 0.0);
        let _ = time(reps, || {
            let xr = x.clone().require_grad();
            let wr = w.clone().require_grad();
            let t0 = Instant::now();
            let y = conv3x3(xr.clone(), wr.clone(), bias.clone());
            let loss = (y * g.clone()).sum();
            let _ = loss.clone().into_data();
            let t1 = Instant::now();
            let grads = loss.backward();
            let _ = xr.grad(&grads).map(|t| t.into_data());
            let _ = wr.grad(&grads).map(|t| t.into_data());
            fwd += (t1 - t0).as_secs_f64();
            bwd += t1.elapsed().as_secs_f64();
        });
        let (new_f, new_b) = (fwd / (reps + 1) as f64, bwd / (reps + 1) as f64);
        let flops = 2.0 * (batch * size * size * c_in * c_out * 9) as f64;
        println!(
            "{name:12} | {:7.1} {:7.1} | {:7.1} {:7.1} | {:5.1} {:5.1}",
            old_f * 1e3,
            old_b * 1e3,
            new_f * 1e3,
            new_b * 1e3,
            flops / new_f * 1e-9,
            2.0 * flops / new_b * 1e-9
        );
    }
}
