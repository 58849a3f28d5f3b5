//! Per-layer forward/backward seconds of the U-Net's 3×3 convolutions at batch 8, 128×128,
//! fms 16, comparing burn's `conv2d` with the im2col + matmul formulation:
//! `cargo run --release -p unet-train --example conv_profile -- [reps]`.

use std::time::Instant;

use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Device, Distribution, Tensor};

fn time<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    f();
    let start = Instant::now();
    for _ in 0..reps {
        f();
    }
    start.elapsed().as_secs_f64() / reps as f64
}

fn nhwc_conv(x: Tensor<4>, weight: Tensor<4>) -> Tensor<4> {
    let [b, h, w, c] = x.dims();
    let c_out = weight.dims()[0];
    let padded = x.pad([(0, 0), (1, 1), (1, 1), (0, 0)], PadMode::Constant(0.0));
    let mut taps = Vec::with_capacity(9);
    for dy in 0..3 {
        for dx in 0..3 {
            taps.push(padded.clone().slice([0..b, dy..dy + h, dx..dx + w, 0..c]));
        }
    }
    let cols = Tensor::cat(taps, 3).reshape([b * h * w, 9 * c]);
    let wmat = weight.permute([2, 3, 1, 0]).reshape([9 * c, c_out]);
    cols.matmul(wmat).reshape([b, h, w, c_out])
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let base = Device::flex();
    let device = base.clone().autodiff();
    let batch = 8;
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
    println!("layer        | conv2d fwd  bwd  | im2col fwd  bwd  (ms)");
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
        let xn = x.clone().permute([0, 2, 3, 1]);
        let gn = g.clone().permute([0, 2, 3, 1]);
        let (mut fwd, mut bwd) = (0.0, 0.0);
        let _ = time(reps, || {
            let xr = xn.clone().require_grad();
            let wr = w.clone().require_grad();
            let t0 = Instant::now();
            let y = nhwc_conv(xr.clone(), wr.clone());
            let loss = (y * gn.clone()).sum();
            let _ = loss.clone().into_data();
            let t1 = Instant::now();
            let grads = loss.backward();
            let _ = xr.grad(&grads).map(|t| t.into_data());
            let _ = wr.grad(&grads).map(|t| t.into_data());
            fwd += (t1 - t0).as_secs_f64();
            bwd += t1.elapsed().as_secs_f64();
        });
        let (new_f, new_b) = (fwd / (reps + 1) as f64, bwd / (reps + 1) as f64);
        println!(
            "{name:12} | {:7.1} {:7.1} | {:7.1} {:7.1}",
            old_f * 1e3,
            old_b * 1e3,
            new_f * 1e3,
            new_b * 1e3
        );
    }
}
