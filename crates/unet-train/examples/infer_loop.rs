//! Batch-1 inference (128×128, fms 16) on Flex, started from the main thread and from a thread
//! of rayon's pool ([`unet_train::threads`]) in turns, in one process:
//! `cargo run --release -p unet-train --example infer_loop -- [reps] [rounds]` prints each
//! turn's min and median ms.

use std::time::Instant;

use burn::tensor::{Tensor, TensorData};
use unet_train::UNetConfig;
use unet_train::threads::on_pool_thread;

fn main() -> Result<(), unet_train::TrainError> {
    unet_train::allocator::retain_freed_memory();
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
            .max(1)
    };
    let (reps, rounds) = (arg(1, 200), arg(2, 3));
    let device = burn::tensor::Device::flex();
    let model = UNetConfig::default().init(&device, 42)?;
    let valid = burn::module::Module::valid(&model);
    let image: Vec<f32> = (0..128 * 128)
        .map(|k| ((k * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(image, [1, 1, 128, 128]), &device);
    let _ = valid.forward(x.clone()).into_data();
    let run = || -> (f64, f64) {
        let mut times: Vec<f64> = (0..reps)
            .map(|_| {
                let start = Instant::now();
                let _ = valid.forward(x.clone()).into_data();
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        (times[0], times[reps / 2])
    };
    for round in 1..=rounds {
        let (main_min, main_median) = run();
        let (pool_min, pool_median) = on_pool_thread(run);
        println!(
            "round {round}: main thread min {main_min:.2} / median {main_median:.2} ms, \
             pool thread min {pool_min:.2} / median {pool_median:.2} ms ({reps} runs each)"
        );
    }
    Ok(())
}
