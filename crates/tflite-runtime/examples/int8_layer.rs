//! One int8 (or, with a fifth argument `16x8`, one 16x8) convolution layer in a loop
//! (development aid for profiling):
//! `cargo run --release -p tflite-runtime --example int8_layer -- IN_C OUT_C K SIZE [16x8]`.

use std::time::Instant;
use tflite_runtime::fast::{DetectedPath, Int8Gemm, Int16x8Gemm};
use tflite_runtime::frame::{ConvGeometry, ConvQuantParams};
use tflite_runtime::synth::Rng;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wide = args.get(4).is_some_and(|a| a == "16x8");
    let a: Vec<usize> = args
        .iter()
        .take(4)
        .map(|s| s.parse().expect("number"))
        .collect();
    let (in_c, out_c, k, size) = (a[0], a[1], a[2], a[3]);
    let g = ConvGeometry {
        batches: 1,
        in_h: size,
        in_w: size,
        in_c,
        out_h: size,
        out_w: size,
        out_c,
        k_h: k,
        k_w: k,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: k / 2,
        pad_left: k / 2,
    };
    let q = ConvQuantParams {
        input_zero_point: -3,
        output_zero_point: 5,
        multipliers: vec![1 << 30; out_c],
        shifts: vec![-9; out_c],
        act_min: -128,
        act_max: 127,
    };
    let mut rng = Rng::new(1);
    let filter = rng.i8s(out_c * k * k * in_c, -127, 127);
    let macs = (size * size * out_c * k * k * in_c) as f64;
    if wide {
        let q = ConvQuantParams {
            input_zero_point: 0,
            output_zero_point: 0,
            act_min: -32768,
            act_max: 32767,
            ..q
        };
        let bias = vec![7i64; out_c];
        let input: Vec<i16> = (0..size * size * in_c)
            .map(|_| rng.range_i64(-32768, 32767) as i16)
            .collect();
        let gemm = Int16x8Gemm::conv(&g, &q, &filter, Some(&bias), true).expect("fast");
        let mut out = vec![0i16; size * size * out_c];
        let mut best = f64::INFINITY;
        for _ in 0..200 {
            let t = Instant::now();
            gemm.run(&input, &mut out, 1);
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "16x8: min {best:.3} ms, {:.1} GOPS",
            2.0 * macs / best / 1e6
        );
        return;
    }
    let bias = vec![7; out_c];
    let input = rng.i8s(size * size * in_c, -128, 127);
    let gemm = Int8Gemm::conv(DetectedPath::best(), &g, &q, &filter, Some(&bias)).expect("fast");
    let mut ws = vec![0u8; gemm.workspace_bytes()];
    let mut out = vec![0i8; size * size * out_c];
    let mut best = f64::INFINITY;
    for _ in 0..200 {
        let t = Instant::now();
        gemm.run(&input, &mut ws, &mut out, 1);
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    println!("min {best:.3} ms, {:.1} GOPS", 2.0 * macs / best / 1e6);
}
