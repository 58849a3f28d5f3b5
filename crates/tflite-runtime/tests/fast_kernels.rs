//! Every fast int8 path available on this CPU, and the 16x8 kernels, against the reference
//! kernels, bit for bit:
//! seeded random shapes and quantisations (1×1, 3×3, other kernels, strides 1 and 2, dilation,
//! SAME and VALID, channel counts off every vector width, nonzero zero points, extreme
//! multipliers and shifts, ReLU/ReLU6 clamps, batches > 1, 1 and 3 threads), and the whole
//! synthetic int8 U-Net through the interpreter.
//!
//! Runs natively and under `qemu-aarch64` (with and without the dot-product extension); it
//! needs no LiteRT.

use tflite_runtime::fast::{self, Int8Path};
use tflite_runtime::frame::PoolGeometry;
use tflite_runtime::frame::{ConvGeometry, ConvQuantParams};
use tflite_runtime::quant::quantize_multiplier;
use tflite_runtime::reference;
use tflite_runtime::synth::{Rng, UNetSpec, unet};
use tflite_runtime::{Interpreter, KernelTier, Options, RuntimeError};
use tflite_writer::BuiltinOp;

fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.range_i64(0, items.len() as i64 - 1) as usize]
}

/// Output size and leading padding of one spatial axis (`tflite-int8.md` §4).
fn window(same: bool, input: usize, k: usize, stride: usize, dilation: usize) -> (usize, usize) {
    let k_eff = (k - 1) * dilation + 1;
    let out = if same {
        input.div_ceil(stride)
    } else {
        (input - k_eff) / stride + 1
    };
    let total = ((out - 1) * stride + k_eff).saturating_sub(input);
    (out, total / 2)
}

/// Random per-channel requantisation, with some extreme multipliers and shifts.
fn quant(rng: &mut Rng, out_c: usize) -> ConvQuantParams {
    let output_zero_point = rng.range_i64(-128, 127) as i32;
    let extreme = rng.range_i64(0, 3) == 0;
    let (mut multipliers, mut shifts) = (Vec::new(), Vec::new());
    for _ in 0..out_c {
        let (m, s) = if extreme {
            pick(
                rng,
                &[
                    (i32::MAX, -31),
                    (1 << 30, -31),
                    (i32::MAX, 0),
                    (1 << 30, 3),
                    (i32::MAX, 12),
                    (1_518_500_250, -17),
                    (0, 0),
                    (1 << 30, -1),
                ],
            )
        } else {
            let real = 2f64.powf(rng.range_f32(-22.0, 2.0) as f64);
            let q = quantize_multiplier(real);
            (q.multiplier, q.shift)
        };
        multipliers.push(m);
        shifts.push(s);
    }
    let (act_min, act_max) = match rng.range_i64(0, 3) {
        0 => (-128, 127),
        1 => (output_zero_point.max(-128), 127), // ReLU
        2 => (
            output_zero_point.max(-128),
            (output_zero_point + 40).min(127),
        ), // ReLU6-like
        _ => (-100, 90),
    };
    ConvQuantParams {
        input_zero_point: rng.range_i64(-128, 127) as i32,
        output_zero_point,
        multipliers,
        shifts,
        act_min,
        act_max,
    }
}

fn bias(rng: &mut Rng, n: usize) -> Vec<i32> {
    let wide = rng.range_i64(0, 5) == 0;
    (0..n)
        .map(|_| {
            if wide {
                rng.range_i64(i32::MIN as i64, i32::MAX as i64) as i32
            } else {
                rng.range_i64(-(1 << 16), 1 << 16) as i32
            }
        })
        .collect()
}

fn conv_case(rng: &mut Rng) -> ConvGeometry {
    loop {
        let k = pick(rng, &[1, 1, 3, 3, 3, 2, 5]);
        let stride = pick(rng, &[1, 1, 2]);
        let dilation = if k > 1 && rng.range_i64(0, 5) == 0 {
            2
        } else {
            1
        };
        // One case in four has a non-square kernel (the kernels merge or window the k_w taps
        // of a kernel row).
        let k_w = if rng.range_i64(0, 3) == 0 {
            pick(rng, &[1, 2, 3, 4, 5])
        } else {
            k
        };
        let same = rng.range_i64(0, 1) == 0;
        let in_h = rng.range_i64(1, 11) as usize;
        let in_w = rng.range_i64(1, 13) as usize;
        let (kh_eff, kw_eff) = ((k - 1) * dilation + 1, (k_w - 1) * dilation + 1);
        if !same && (in_h < kh_eff || in_w < kw_eff) {
            continue;
        }
        let (out_h, pad_top) = window(same, in_h, k, stride, dilation);
        let (out_w, pad_left) = window(same, in_w, k_w, stride, dilation);
        return ConvGeometry {
            batches: rng.range_i64(1, 2) as usize,
            in_h,
            in_w,
            in_c: pick(rng, &[1, 2, 3, 4, 5, 7, 8, 16, 17, 31, 33, 64]),
            out_h,
            out_w,
            out_c: pick(rng, &[1, 2, 3, 5, 8, 9, 15, 16, 17, 24, 33, 48, 64, 65]),
            k_h: k,
            k_w,
            stride_h: stride,
            stride_w: stride,
            dilation_h: dilation,
            dilation_w: dilation,
            pad_top,
            pad_left,
        };
    }
}

fn paths() -> Vec<Int8Path> {
    let paths = Int8Path::available();
    eprintln!(
        "int8 paths under test: {:?}",
        paths.iter().map(|p| p.name()).collect::<Vec<_>>()
    );
    assert!(paths.contains(&Int8Path::Portable));
    paths
}

#[test]
fn conv2d_every_path_matches_reference() {
    let paths = paths();
    let mut rng = Rng::new(0xC0117);
    let cases = if cfg!(target_arch = "x86_64") {
        300
    } else {
        120
    };
    for case in 0..cases {
        let mut g = conv_case(&mut rng);
        // Every seventh case has one output channel (the head's kernel on AVX-512 VNNI).
        if case % 7 == 2 {
            g.out_c = 1;
        }
        let q = quant(&mut rng, g.out_c);
        let mut input = rng.i8s(g.batches * g.in_h * g.in_w * g.in_c, -128, 127);
        // Every third case keeps the weights in TFLite's [-127, 127] (the plain-NEON kernel
        // then pairs two K steps in i16); every ninth puts both operands at the extremes that
        // make those pairs largest: 2 · 127 · 128 = 32512.
        let filter = match case % 9 {
            0 => {
                input.iter_mut().for_each(|x| *x = -128);
                (0..g.out_c * g.k_h * g.k_w * g.in_c)
                    .map(|i| if i % 5 == 4 { 126 } else { -127 })
                    .collect()
            }
            3 | 6 => rng.i8s(g.out_c * g.k_h * g.k_w * g.in_c, -127, 127),
            _ => rng.i8s(g.out_c * g.k_h * g.k_w * g.in_c, -128, 127),
        };
        let b = bias(&mut rng, g.out_c);
        let with_bias = rng.range_i64(0, 7) != 0;
        let bias = with_bias.then_some(b.as_slice());
        let n_out = g.batches * g.out_h * g.out_w * g.out_c;
        let mut expected = vec![0i8; n_out];
        reference::conv::conv2d_i8(&g, &q, &input, &filter, bias, &mut expected);
        for &path in &paths {
            for threads in [1, 3] {
                let mut got = vec![0i8; n_out];
                let fast_ran =
                    fast::conv2d_i8(path, threads, &g, &q, &input, &filter, bias, &mut got)
                        .expect("available path");
                assert!(fast_ran, "case {case}: {} did not run fast", path.name());
                if got != expected {
                    let first = got.iter().zip(&expected).position(|(a, b)| a != b).unwrap();
                    panic!(
                        "case {case}: {} threads {threads} differs at {first}: got {} want {}\n{g:?}\n{q:?}",
                        path.name(),
                        got[first],
                        expected[first]
                    );
                }
            }
        }
    }
}

/// Bias and multiplier at the edge of i32: the rescaled value plus the output zero point wraps
/// in the reference arithmetic (and is clamped after wrapping), which the AVX2 epilogue's
/// four-row packing (saturating, not wrapping) must not be used for.
#[test]
fn a_rescaled_value_that_wraps_with_the_zero_point_matches_reference() {
    let g = ConvGeometry {
        batches: 1,
        in_h: 4,
        in_w: 4,
        in_c: 8,
        out_h: 4,
        out_w: 4,
        out_c: 8,
        k_h: 1,
        k_w: 1,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: 0,
        pad_left: 0,
    };
    let q = ConvQuantParams {
        input_zero_point: 0,
        output_zero_point: 100,
        multipliers: vec![i32::MAX; 8],
        shifts: vec![0; 8],
        act_min: -128,
        act_max: 127,
    };
    let mut rng = Rng::new(0x5A7);
    // Zero inputs: every accumulator is the bias, i32::MAX − 10, rescaled to i32::MAX − 11.
    let input = vec![0i8; 4 * 4 * 8];
    let filter = rng.i8s(8 * 8, -128, 127);
    let bias = vec![i32::MAX - 10; 8];
    let mut expected = vec![0i8; 4 * 4 * 8];
    reference::conv::conv2d_i8(&g, &q, &input, &filter, Some(&bias), &mut expected);
    assert!(
        expected.iter().all(|&v| v == -128),
        "the case must wrap to the activation minimum: {expected:?}"
    );
    for path in paths() {
        let mut got = vec![0i8; expected.len()];
        fast::conv2d_i8(path, 1, &g, &q, &input, &filter, Some(&bias), &mut got)
            .expect("available path");
        assert_eq!(got, expected, "{}", path.name());
    }
}

#[test]
fn transpose_conv_every_path_matches_reference() {
    let paths = paths();
    let mut rng = Rng::new(0x7C0);
    let mut fast_cases = 0;
    let cases = if cfg!(target_arch = "x86_64") {
        200
    } else {
        80
    };
    for case in 0..cases {
        // Kernel == stride (the tiled fast case) most of the time, general cases otherwise.
        let (k, stride) = pick(
            &mut rng,
            &[(2, 2), (2, 2), (1, 1), (3, 3), (3, 2), (2, 1), (3, 1)],
        );
        let same = rng.range_i64(0, 1) == 0;
        let in_h = rng.range_i64(1, 7) as usize;
        let in_w = rng.range_i64(1, 7) as usize;
        // The output size whose forward convolution gives back `in`.
        let out_of = |n: usize| {
            if same {
                n * stride
            } else {
                (n - 1) * stride + k
            }
        };
        let (out_h, out_w) = (out_of(in_h), out_of(in_w));
        let (_, pad_top) = window(same, out_h, k, stride, 1);
        let (_, pad_left) = window(same, out_w, k, stride, 1);
        let g = ConvGeometry {
            batches: rng.range_i64(1, 2) as usize,
            in_h,
            in_w,
            in_c: pick(&mut rng, &[1, 3, 4, 8, 16, 17, 32, 33]),
            out_h,
            out_w,
            out_c: pick(&mut rng, &[1, 2, 5, 8, 16, 17, 32, 40]),
            k_h: k,
            k_w: k,
            stride_h: stride,
            stride_w: stride,
            dilation_h: 1,
            dilation_w: 1,
            pad_top,
            pad_left,
        };
        let q = quant(&mut rng, g.out_c);
        let input = rng.i8s(g.batches * g.in_h * g.in_w * g.in_c, -128, 127);
        let filter = rng.i8s(g.out_c * k * k * g.in_c, -128, 127);
        let b = bias(&mut rng, g.out_c);
        let bias = (rng.range_i64(0, 3) != 0).then_some(b.as_slice());
        let n_out = g.batches * g.out_h * g.out_w * g.out_c;
        let mut expected = vec![0i8; n_out];
        let mut scratch = vec![0i32; n_out];
        reference::transpose_conv::transpose_conv_i8(
            &g,
            &q,
            &input,
            &filter,
            bias,
            &mut scratch,
            &mut expected,
        );
        for &path in &paths {
            for threads in [1, 3] {
                let mut got = vec![0i8; n_out];
                let fast_ran =
                    fast::transpose_conv_i8(path, threads, &g, &q, &input, &filter, bias, &mut got)
                        .expect("available path");
                let tiled = k == stride && g.pad_top == 0 && g.pad_left == 0;
                assert_eq!(fast_ran, tiled, "case {case}: fast path coverage {g:?}");
                fast_cases += usize::from(fast_ran);
                assert!(
                    got == expected,
                    "case {case}: {} threads {threads} differs\n{g:?}\n{q:?}",
                    path.name()
                );
            }
        }
    }
    assert!(fast_cases > 0, "no transposed case ran the fast kernel");
}

#[test]
fn unavailable_path_is_an_error() {
    let missing = Int8Path::ALL.into_iter().find(|p| !p.is_available());
    let Some(missing) = missing else {
        eprintln!("skipped: every int8 path is available on this CPU");
        return;
    };
    let g = ConvGeometry {
        batches: 1,
        in_h: 1,
        in_w: 1,
        in_c: 1,
        out_h: 1,
        out_w: 1,
        out_c: 1,
        k_h: 1,
        k_w: 1,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: 0,
        pad_left: 0,
    };
    let q = ConvQuantParams {
        input_zero_point: 0,
        output_zero_point: 0,
        multipliers: vec![1 << 30],
        shifts: vec![0],
        act_min: -128,
        act_max: 127,
    };
    // The packed GEMM, whose safe `run` executes the path's instructions, takes a
    // `DetectedPath`, and a path this CPU lacks cannot be obtained as one.
    assert!(missing.detect().is_none());
    assert!(
        !fast::DetectedPath::all()
            .iter()
            .any(|p| p.path() == missing)
    );
    let t = ConvGeometry {
        in_h: 1,
        in_w: 1,
        out_h: 2,
        out_w: 2,
        k_h: 2,
        k_w: 2,
        stride_h: 2,
        stride_w: 2,
        ..g
    };
    let available = fast::DetectedPath::best();
    assert!(fast::Int8Gemm::transposed(available, &t, &q, &[1; 4], None).is_some());
    let mut out = [0i8];
    let err = fast::conv2d_i8(missing, 1, &g, &q, &[1], &[1], None, &mut out).unwrap_err();
    assert!(matches!(err, RuntimeError::KernelUnavailable { .. }));
    let tier = match missing {
        Int8Path::Avx2 => KernelTier::Avx2,
        Int8Path::Avx512Vnni => KernelTier::Avx512Vnni,
        Int8Path::AvxVnni => KernelTier::AvxVnni,
        Int8Path::Neon => KernelTier::Neon,
        Int8Path::NeonDotprod => KernelTier::NeonDotprod,
        Int8Path::Portable => KernelTier::Portable,
    };
    let model = unet(UNetSpec {
        fms: 2,
        size: 16,
        in_channels: 1,
        int8: true,
        seed: 3,
    });
    let err = Interpreter::new(
        &model,
        Options {
            kernels: tier,
            threads: 1,
        },
    )
    .unwrap_err();
    assert!(
        err.to_string().contains(missing.name()),
        "error names the path: {err}"
    );
}

/// The whole synthetic int8 U-Net (IntelAI topology) through the interpreter: every path's
/// output equals the reference tier's, with 1 and 3 threads.
#[test]
fn unet_int8_every_path_matches_reference() {
    // Full size natively; smaller under emulation, where the reference alone takes minutes.
    let (fms, size) = if cfg!(target_arch = "x86_64") {
        (16, 128)
    } else {
        (8, 32)
    };
    let model = unet(UNetSpec {
        fms,
        size,
        in_channels: 1,
        int8: true,
        seed: 11,
    });
    let input = Rng::new(5).i8s(size * size, -128, 127);
    let run = |kernels: KernelTier, threads: usize| {
        let mut interp = Interpreter::new(&model, Options { kernels, threads }).expect("prepare");
        interp.set_input(0, &input).expect("input");
        interp.invoke().expect("invoke");
        (
            interp.output::<i8>(0).expect("output").to_vec(),
            interp.num_fast_ops(),
            interp.kernel_tier(),
        )
    };
    // Every CONV_2D, TRANSPOSE_CONV (2×2 stride 2) and MAX_POOL_2D runs a fast kernel.
    let covered = model.subgraphs[0]
        .operators
        .iter()
        .filter(|op| {
            [
                BuiltinOp::CONV_2D,
                BuiltinOp::TRANSPOSE_CONV,
                BuiltinOp::MAX_POOL_2D,
            ]
            .contains(&op.op)
        })
        .count();
    let (expected, fast_ops, _) = run(KernelTier::Reference, 1);
    assert_eq!(fast_ops, 0);
    // A mask with some structure, so equality is not trivially all-saturated.
    let distinct: std::collections::BTreeSet<i8> = expected.iter().copied().collect();
    assert!(distinct.len() > 1, "degenerate reference output");
    for path in paths() {
        let tier = match path {
            Int8Path::Portable => KernelTier::Portable,
            Int8Path::Avx2 => KernelTier::Avx2,
            Int8Path::Avx512Vnni => KernelTier::Avx512Vnni,
            Int8Path::AvxVnni => KernelTier::AvxVnni,
            Int8Path::Neon => KernelTier::Neon,
            Int8Path::NeonDotprod => KernelTier::NeonDotprod,
        };
        for threads in [1, 3] {
            let (got, fast_ops, name) = run(tier, threads);
            assert_eq!(name, path.name());
            assert_eq!(fast_ops, covered, "{}: fast ops", path.name());
            let diffs = got.iter().zip(&expected).filter(|(a, b)| a != b).count();
            assert_eq!(
                diffs,
                0,
                "{} with {threads} threads: {diffs} of {} outputs differ",
                path.name(),
                expected.len()
            );
        }
    }
}

#[test]
fn max_pool_matches_reference() {
    let mut rng = Rng::new(0x9001);
    // Cases 300.. are the U-Net's 2×2 stride-2 pool, which has a path of its own.
    for case in 0..360 {
        let plain_2x2 = case >= 300;
        let (filter_h, filter_w) = if plain_2x2 {
            (2, 2)
        } else {
            (rng.range_i64(1, 3) as usize, rng.range_i64(1, 3) as usize)
        };
        let (stride_h, stride_w) = if plain_2x2 {
            (2, 2)
        } else {
            (rng.range_i64(1, 3) as usize, rng.range_i64(1, 3) as usize)
        };
        let same = !plain_2x2 && rng.range_i64(0, 1) == 0;
        let in_h = rng.range_i64(filter_h as i64, 9) as usize;
        let in_w = rng.range_i64(filter_w as i64, 9) as usize;
        let (out_h, pad_top) = window(same, in_h, filter_h, stride_h, 1);
        let (out_w, pad_left) = window(same, in_w, filter_w, stride_w, 1);
        let g = PoolGeometry {
            batches: rng.range_i64(1, 2) as usize,
            in_h,
            in_w,
            channels: pick(&mut rng, &[1, 3, 16, 17, 32, 64]),
            out_h,
            out_w,
            filter_h,
            filter_w,
            stride_h,
            stride_w,
            pad_top,
            pad_left,
        };
        let zp = rng.range_i64(-128, 127) as i32;
        let act = pick(
            &mut rng,
            &[(-128, 127), (zp, 127), (zp, (zp + 30).min(127))],
        );
        let input = rng.i8s(g.batches * in_h * in_w * g.channels, -128, 127);
        let n = g.batches * out_h * out_w * g.channels;
        // 1 to 3 threads: the output rows are split over the worker threads.
        let threads = 1 + case % 3;
        let (mut expected, mut got) = (vec![0i8; n], vec![1i8; n]);
        reference::pool::max_pool_i8(&g, act, &input, &mut expected);
        fast::max_pool_i8(&g, act, &input, &mut got, threads);
        assert_eq!(got, expected, "case {case}: {g:?} {act:?}");
        // The int16 pool of 16x8 models, on the same geometry.
        let act16 = pick(&mut rng, &[(-32768, 32767), (0, 32767), (-1000, 2000)]);
        let input16 = i16s(&mut rng, input.len());
        let (mut expected16, mut got16) = (vec![0i16; n], vec![1i16; n]);
        reference::pool::max_pool_i16(&g, act16, &input16, &mut expected16);
        fast::max_pool_i16(&g, act16, &input16, &mut got16, threads);
        assert_eq!(got16, expected16, "int16 case {case}: {g:?} {act16:?}");
    }
}

/// Random 16x8 requantisation: per-channel multipliers as the quantizer makes them (and a few
/// extreme ones), int16 clamps (none, ReLU, a narrow band).
fn quant16(rng: &mut Rng, out_c: usize) -> ConvQuantParams {
    let mut q = quant(rng, out_c);
    q.input_zero_point = 0;
    q.output_zero_point = 0;
    // The int64 requantisation takes shifts in [-31, 7] (LiteRT asserts it).
    for s in &mut q.shifts {
        *s = (*s).clamp(-31, 7);
    }
    (q.act_min, q.act_max) = match rng.range_i64(0, 2) {
        0 => (-32768, 32767),
        1 => (0, 32767),
        _ => (-20000, 12000),
    };
    q
}

fn i16s(rng: &mut Rng, n: usize) -> Vec<i16> {
    (0..n)
        .map(|_| rng.range_i64(-32768, 32767) as i16)
        .collect()
}

fn bias64(rng: &mut Rng, n: usize) -> Vec<i64> {
    let wide = rng.range_i64(0, 4) == 0;
    (0..n)
        .map(|_| {
            if wide {
                rng.range_i64(-(1 << 40), 1 << 40)
            } else {
                rng.range_i64(-(1 << 24), 1 << 24)
            }
        })
        .collect()
}

/// Both 16x8 kernels (AVX2 where the CPU has it, and portable) against the reference, 1 and 3
/// threads, including operands at the extremes over long reductions, where i32 sums would
/// overflow without the fold into i64.
#[test]
fn conv2d_16x8_matches_reference() {
    let mut rng = Rng::new(0x16C0);
    for case in 0..200 {
        let mut g = conv_case(&mut rng);
        if case % 10 == 0 {
            // k_h·k_w·in_c up to 9·300 = 2700 products: far past 2·255 per i32 fold.
            g.in_c = pick(&mut rng, &[130, 257, 300]);
        }
        let q = quant16(&mut rng, g.out_c);
        let n_in = g.batches * g.in_h * g.in_w * g.in_c;
        let n_w = g.out_c * g.k_h * g.k_w * g.in_c;
        let (input, filter) = if case % 5 == 0 {
            (vec![-32768i16; n_in], vec![-128i8; n_w])
        } else {
            (i16s(&mut rng, n_in), rng.i8s(n_w, -128, 127))
        };
        let b = bias64(&mut rng, g.out_c);
        let bias = (rng.range_i64(0, 7) != 0).then_some(b.as_slice());
        let n_out = g.batches * g.out_h * g.out_w * g.out_c;
        let mut expected = vec![0i16; n_out];
        reference::conv::conv2d_i16(&g, &q, &input, &filter, bias, &mut expected);
        for avx2 in [true, false] {
            let gemm = fast::Int16x8Gemm::conv(&g, &q, &filter, bias, avx2).expect("packs");
            for threads in [1, 3] {
                let mut got = vec![0i16; n_out];
                gemm.run(&input, &mut got, threads);
                if let Some(first) = got.iter().zip(&expected).position(|(a, b)| a != b) {
                    panic!(
                        "case {case}: avx2 {} threads {threads} differs at {first}: got {} want {}\n{g:?}\n{q:?}",
                        gemm.uses_avx2(),
                        got[first],
                        expected[first]
                    );
                }
            }
        }
    }
}

#[test]
fn transpose_conv_16x8_matches_reference() {
    let mut rng = Rng::new(0x16C1);
    let mut packed = 0;
    for case in 0..150 {
        let k = pick(&mut rng, &[1, 2, 2, 3]);
        let (in_h, in_w) = (rng.range_i64(1, 9) as usize, rng.range_i64(1, 9) as usize);
        let g = ConvGeometry {
            batches: rng.range_i64(1, 2) as usize,
            in_h,
            in_w,
            in_c: pick(&mut rng, &[1, 3, 8, 16, 17, 64, 300, 520]),
            out_h: in_h * k,
            out_w: in_w * k,
            out_c: pick(&mut rng, &[1, 2, 5, 8, 16, 17, 33]),
            k_h: k,
            k_w: k,
            stride_h: k,
            stride_w: k,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
        };
        let q = quant16(&mut rng, g.out_c);
        let n_in = g.batches * g.in_h * g.in_w * g.in_c;
        let n_w = g.out_c * k * k * g.in_c;
        let (input, filter) = if case % 5 == 0 {
            (vec![32767i16; n_in], vec![-128i8; n_w])
        } else {
            (i16s(&mut rng, n_in), rng.i8s(n_w, -128, 127))
        };
        let b = bias64(&mut rng, g.out_c);
        let bias = (rng.range_i64(0, 5) != 0).then_some(b.as_slice());
        let n_out = g.batches * g.out_h * g.out_w * g.out_c;
        let mut expected = vec![0i16; n_out];
        reference::transpose_conv::transpose_conv_i16(&g, &q, &input, &filter, bias, &mut expected);
        for avx2 in [true, false] {
            let gemm = fast::Int16x8Gemm::transposed(&g, &q, &filter, bias, avx2)
                .expect("kernel = stride");
            packed += 1;
            for threads in [1, 3] {
                let mut got = vec![0i16; n_out];
                gemm.run(&input, &mut got, threads);
                if let Some(first) = got.iter().zip(&expected).position(|(a, b)| a != b) {
                    panic!(
                        "case {case}: avx2 {} threads {threads} differs at {first}: got {} want {}\n{g:?}",
                        gemm.uses_avx2(),
                        got[first],
                        expected[first]
                    );
                }
            }
        }
    }
    assert_eq!(packed, 300);
    // Other transposed convolutions are not packed (the reference kernel runs them).
    let g = ConvGeometry {
        batches: 1,
        in_h: 4,
        in_w: 4,
        in_c: 2,
        out_h: 8,
        out_w: 8,
        out_c: 3,
        k_h: 3,
        k_w: 3,
        stride_h: 2,
        stride_w: 2,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: 1,
        pad_left: 1,
    };
    let q = quant16(&mut rng, 3);
    assert!(fast::Int16x8Gemm::transposed(&g, &q, &[1; 54], None, true).is_none());
}
