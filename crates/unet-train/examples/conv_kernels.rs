//! Milliseconds and GFLOP/s of the 3×3 convolution's forward pass and both gradients, per
//! U-Net layer shape (batch 8, 128×128 at level A, fms 16), for every kernel this CPU runs,
//! in one process so the kernels are compared side by side:
//! `cargo run --release -p unet-train --example conv_kernels -- [reps]`.

use std::time::Instant;

use burn_shifted_conv::ConvKernel;
use burn_shifted_conv::kernel::{Nchw, conv3x3_forward, conv3x3_input_grad, conv3x3_weight_grad};
use burn_shifted_conv::upconv::{upconv2x2_forward, upconv2x2_input_grad, upconv2x2_weight_grad};

/// Best of `reps` runs of `f`, in milliseconds (after one warm-up run).
fn best_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// A batch of 8 square `size × size` images with `channels` channels.
fn batch_of_8(channels: usize, size: usize) -> Nchw {
    Nchw {
        batch: 8,
        channels,
        height: size,
        width: size,
    }
}

fn main() {
    let reps = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    // As training does: keep freed buffers instead of faulting their pages in again.
    unet_train::allocator::retain_freed_memory();
    let kernels = ConvKernel::available();
    println!("kernels: {kernels:?}; best of {reps}; ms (GFLOP/s)");
    println!(
        "(Avx512 falls back to the GEMMs where both sides have more than 32 channels, as in training;"
    );
    println!("this table runs the direct form, the Winograd comparison follows it)");
    burn_shifted_conv::winograd::set_enabled(false);
    print!("{:<14}", "layer");
    for kernel in &kernels {
        print!(
            " | {:<44}",
            format!("{kernel:?} forward / input grad / weight grad")
        );
    }
    println!();
    let layers = [
        ("A 1->16", 1, 16, 128),
        ("A 16->16", 16, 16, 128),
        ("A 32->16", 32, 16, 128),
        ("B 32->32", 32, 32, 64),
        ("B 64->32", 64, 32, 64),
        ("C 64->64", 64, 64, 32),
        ("D 128->128", 128, 128, 16),
        ("E 256->256", 256, 256, 8),
    ];
    for (name, c_in, c_out, size) in layers {
        let shape = batch_of_8(c_in, size);
        let x = values(8 * c_in * size * size, 1);
        let g = values(8 * c_out * size * size, 2);
        let w = values(c_out * c_in * 9, 3);
        let b = values(c_out, 4);
        let gflop = 2.0 * 9.0 * (8 * size * size * c_in * c_out) as f64 / 1e9;
        print!("{name:<14}");
        for &kernel in &kernels {
            let fwd = best_ms(reps, || {
                std::hint::black_box(conv3x3_forward(
                    &x,
                    shape,
                    &w,
                    Some(&b),
                    c_out,
                    true,
                    kernel,
                ));
            });
            let dx = best_ms(reps, || {
                std::hint::black_box(conv3x3_input_grad(&g, shape, &w, c_out, kernel));
            });
            let dw = best_ms(reps, || {
                std::hint::black_box(conv3x3_weight_grad(&x, shape, &g, c_out, kernel));
            });
            let cell = |ms: f64| format!("{ms:.2} ({:.0})", gflop / ms * 1e3);
            print!(
                " | {:<44}",
                format!("{} / {} / {}", cell(fwd), cell(dx), cell(dw))
            );
        }
        println!();
    }
    println!(
        "Winograd / the direct form above, taking turns: forward and input grad F(2x2, 3x3) \
         ({}+ channels on one side, {}+ on the other), weight grad F(3x3, 2x2) ({}+ on both), \
         {}+ tiles of 2x2 outputs:",
        burn_shifted_conv::winograd::MIN_NARROW_CHANNELS,
        burn_shifted_conv::winograd::MIN_CHANNELS,
        burn_shifted_conv::winograd::MIN_CHANNELS,
        burn_shifted_conv::winograd::MIN_TILES
    );
    let kernel = ConvKernel::selected();
    for (batch, c_in, c_out, size) in [
        (8, 64, 32, 64),
        (8, 32, 64, 32),
        (8, 64, 64, 32),
        (8, 128, 64, 32),
        (8, 128, 128, 16),
        (8, 256, 128, 16),
        (8, 256, 256, 8),
        (1, 64, 64, 32),
        (1, 128, 128, 16),
        (1, 256, 256, 8),
    ] {
        let shape = Nchw {
            batch,
            ..batch_of_8(c_in, size)
        };
        let x = values(batch * c_in * size * size, 1);
        let g = values(batch * c_out * size * size, 2);
        let w = values(c_out * c_in * 9, 3);
        let gflop = 2.0 * 9.0 * (batch * size * size * c_in * c_out) as f64 / 1e9;
        let (mut times, mut direct) = ([f64::INFINITY; 3], [f64::INFINITY; 3]);
        for _ in 0..reps {
            for (on, best) in [(true, &mut times), (false, &mut direct)] {
                burn_shifted_conv::winograd::set_enabled(on);
                best[0] = best[0].min(best_ms(1, || {
                    std::hint::black_box(conv3x3_forward(&x, shape, &w, None, c_out, true, kernel));
                }));
                best[1] = best[1].min(best_ms(1, || {
                    std::hint::black_box(conv3x3_input_grad(&g, shape, &w, c_out, kernel));
                }));
                best[2] = best[2].min(best_ms(1, || {
                    std::hint::black_box(conv3x3_weight_grad(&x, shape, &g, c_out, kernel));
                }));
            }
        }
        burn_shifted_conv::winograd::set_enabled(true);
        let cell = |ms: f64| format!("{ms:.2} ({:.0})", gflop / ms * 1e3);
        println!(
            "{:<16} | {} / {} / {} | direct {} / {} / {} | {:.2}x / {:.2}x / {:.2}x",
            format!("{c_in}->{c_out} @{size} b{batch}"),
            cell(times[0]),
            cell(times[1]),
            cell(times[2]),
            cell(direct[0]),
            cell(direct[1]),
            cell(direct[2]),
            times[0] / direct[0],
            times[1] / direct[1],
            times[2] / direct[2]
        );
    }
    println!("2x2/2 transposed convolutions (one kernel): forward / input grad / weight grad");
    for (c_in, c_out, size) in [(256, 128, 8), (128, 64, 16), (64, 32, 32), (32, 16, 64)] {
        let shape = batch_of_8(c_in, size);
        let x = values(8 * c_in * size * size, 1);
        let g = values(8 * c_out * 4 * size * size, 2);
        let w = values(c_in * c_out * 4, 3);
        let b = values(c_out, 4);
        let gflop = 2.0 * 4.0 * (8 * size * size * c_in * c_out) as f64 / 1e9;
        let fwd = best_ms(reps, || {
            std::hint::black_box(upconv2x2_forward(&x, shape, &w, Some(&b), c_out));
        });
        let dx = best_ms(reps, || {
            std::hint::black_box(upconv2x2_input_grad(&g, shape, &w, c_out));
        });
        let dw = best_ms(reps, || {
            std::hint::black_box(upconv2x2_weight_grad(&x, shape, &g, c_out));
        });
        let cell = |ms: f64| format!("{ms:.2} ({:.0})", gflop / ms * 1e3);
        println!(
            "{:<14} | {} / {} / {}",
            format!("up {c_in}x{size}->{c_out}"),
            cell(fwd),
            cell(dx),
            cell(dw)
        );
    }
}
