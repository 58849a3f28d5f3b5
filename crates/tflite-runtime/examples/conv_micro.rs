//! Times single fast f32 convolutions (3×3 SAME, stride 1) of the U-Net's shapes, the path
//! `PackedConv2dF32::new` chooses beside the `gemm` one, Winograd F(2×2, 3×3) and F(4×4, 3×3) (effective
//! GFLOP/s count the direct form's multiply-adds):
//! `cargo run --release -p tflite-runtime --example conv_micro`.
use std::time::Instant;
use tflite_runtime::fast::f32_conv::PackedConv2dF32;
use tflite_runtime::frame::ConvGeometry;
use tflite_runtime::reference::conv::conv2d_f32;
use tflite_runtime::synth::Rng;

fn main() {
    let mut rng = Rng::new(1);
    for &(hw, in_c, out_c) in &[
        (128, 16, 16),
        (128, 32, 16),
        (64, 16, 32),
        (64, 32, 32),
        (64, 64, 32),
        (32, 32, 64),
        (32, 64, 64),
        (16, 64, 128),
        (16, 128, 128),
        (16, 256, 128),
        (8, 128, 256),
        (8, 256, 256),
    ] {
        let g = ConvGeometry {
            batches: 1,
            in_h: hw,
            in_w: hw,
            in_c,
            out_h: hw,
            out_w: hw,
            out_c,
            k_h: 3,
            k_w: 3,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 1,
            pad_left: 1,
        };
        let input = rng.f32s(hw * hw * in_c, -1.0, 1.0);
        let filter = rng.f32s(9 * in_c * out_c, -0.1, 0.1);
        let bias = rng.f32s(out_c, -0.1, 0.1);
        let mut out = vec![0.0; hw * hw * out_c];
        let reps = 20;
        let time = |packed: &PackedConv2dF32, out: &mut [f32]| {
            let mut best = f64::INFINITY;
            for _ in 0..reps {
                let t = Instant::now();
                packed.run(&input, Some(&bias), out, 1);
                best = best.min(t.elapsed().as_secs_f64() * 1e3);
            }
            best
        };
        let act = (0.0, f32::INFINITY);
        let chosen = PackedConv2dF32::new(&g, act, &filter).unwrap();
        let gemm = PackedConv2dF32::with_gemm(&g, act, &filter).unwrap();
        let best = time(&chosen, &mut out);
        let best_gemm = time(&gemm, &mut out);
        let winograd = PackedConv2dF32::winograd(&g, act, &filter).unwrap();
        let best_winograd = time(&winograd, &mut out);
        let winograd4 = PackedConv2dF32::winograd4x4(&g, act, &filter).unwrap();
        let best_winograd4 = time(&winograd4, &mut out);
        let t = Instant::now();
        conv2d_f32(
            &g,
            (0.0, f32::INFINITY),
            &input,
            &filter,
            Some(&bias),
            &mut out,
        );
        let reference = t.elapsed().as_secs_f64() * 1e3;
        let gflop = 2.0 * (hw * hw * 9 * in_c * out_c) as f64 / 1e9;
        println!(
            "{hw:4}x{hw:<4} {in_c:4}->{out_c:<4} {:?} {best:7.3} ms ({:6.1} GFLOP/s)  gemm {best_gemm:7.3} ms ({:6.1} GFLOP/s)  winograd {best_winograd:7.3} ms ({:6.1})  4x4 {best_winograd4:7.3} ms ({:6.1})  reference {reference:8.2} ms",
            chosen.path(),
            gflop / best * 1e3,
            gflop / best_gemm * 1e3,
            gflop / best_winograd * 1e3,
            gflop / best_winograd4 * 1e3
        );
    }
}
