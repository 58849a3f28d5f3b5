//! Per-operator time of the random-weight U-Net (fms=16, 128×128) through tflite-runtime:
//! `cargo run --release -p tflite-runtime --example op_profile -- [f32|int8] [reference|best] [RUNS] [THREADS] [MODEL.tflite [SLICES.npy]]`
//! (a float MODEL instead of the random one, fed the first slice of SLICES or random values).
//!
//! The time of an operator is measured between consecutive observer calls (so it includes the
//! interpreter's small per-op overhead); the median over RUNS invokes is printed per op.

use std::time::Instant;
use tflite_runtime::synth::{Rng, UNetSpec, unet};
use tflite_runtime::{Interpreter, KernelTier, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let int8 = args.first().is_some_and(|a| a == "int8");
    let kernels = if args.get(1).is_some_and(|a| a == "reference") {
        KernelTier::Reference
    } else {
        KernelTier::Best
    };
    let runs: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let threads: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let model = match args.get(4) {
        Some(path) => tflite_writer::read_model_file(std::path::Path::new(path))?,
        None => unet(UNetSpec {
            fms: 16,
            size: 128,
            in_channels: 1,
            int8,
            seed: 1,
        }),
    };
    let mut interp = Interpreter::new(&model, Options { kernels, threads })?;
    let mut rng = Rng::new(2);
    let n = interp.input_info(0)?.num_elements();
    if let Some(npy) = args.get(5) {
        let array = tflite_runtime::npy::read_npy(&std::fs::read(npy)?)?;
        let tflite_runtime::npy::NpyData::F32(values) = array.data else {
            return Err("SLICES.npy must be float32".into());
        };
        interp.set_input(0, &values[..n])?;
    } else if args.get(4).is_some() {
        interp.set_input(0, &rng.f32s(n, -1.0, 3.0))?;
    } else if int8 {
        interp.set_input(0, &rng.i8s(128 * 128, -128, 127))?;
    } else {
        interp.set_input(0, &rng.f32s(128 * 128, -2.0, 2.0))?;
    }
    interp.invoke()?;
    let mut per_op: Vec<(String, Vec<f64>)> = Vec::new();
    let mut totals = Vec::new();
    for _ in 0..runs {
        let mut i = 0;
        let start = Instant::now();
        let mut last = start;
        interp.invoke_with_observer(&mut |obs| {
            let now = Instant::now();
            let ms = (now - last).as_secs_f64() * 1e3;
            last = now;
            if per_op.len() <= i {
                per_op.push((format!("{:?} {:?}", obs.op, obs.tensor.shape), Vec::new()));
            }
            per_op[i].1.push(ms);
            if let tflite_runtime::TensorData::F32(v) = obs.data {
                let sub = v.iter().filter(|x| x.is_subnormal()).count();
                if sub > 0 && per_op[i].1.len() == 1 {
                    eprintln!("op {i}: {sub} subnormal values of {}", v.len());
                }
            }
            i += 1;
        })?;
        totals.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("kernels {} threads {threads}", interp.kernel_tier());
    for (name, times) in &mut per_op {
        println!("{:8.3} ms  {name}", median(times));
    }
    println!("{:8.3} ms  total (median of {runs})", median(&mut totals));
    Ok(())
}
