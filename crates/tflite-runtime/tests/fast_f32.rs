//! The fast f32 convolutions (`fast::f32_conv`, GEMM on packed weights) against the reference
//! kernels, on random shapes, paddings, strides, dilations, batches, activations and thread
//! counts, and end to end on the f32 U-Net.
//!
//! Tolerance: the GEMM adds the same products as the reference but in another order (blocked,
//! vectorised, with fused multiply-adds), so results are not bit-identical. Reordering a sum of
//! K terms moves it by at most about K·ε·Σ|terms| (ε = 2⁻²³), and in practice by about
//! √K·ε·Σ|terms|. Every output is therefore compared against `Σ|x·w| + |bias|` (computed by the
//! reference kernel on absolute values): the allowed error is 1e-5 of that magnitude, which
//! is ≈ 84 ε, generous for the √K growth of these K ≤ 600 sums yet far below any indexing
//! mistake (a missing or misplaced tap changes an output by a whole product, ~1e-2 of it).

mod common;

use tflite_runtime::fast::f32_conv::{ConvPath, PackedConv2dF32, PackedTransposeConvF32};
use tflite_runtime::frame::ConvGeometry;
use tflite_runtime::padding::{leading_padding, out_size};
use tflite_runtime::reference::conv::conv2d_f32;
use tflite_runtime::reference::transpose_conv::transpose_conv_f32;
use tflite_runtime::synth::{Rng, UNetSpec, unet};
use tflite_runtime::{Interpreter, KernelTier, Options};
use tflite_writer::Padding;

const REL_TOL: f32 = 1e-5;
const NO_CLAMP: (f32, f32) = (f32::NEG_INFINITY, f32::INFINITY);
const ACTS: [(f32, f32); 3] = [NO_CLAMP, (0.0, f32::INFINITY), (0.0, 6.0)];

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// Asserts `|got − want| ≤ REL_TOL·magnitude` elementwise; returns the largest relative error.
fn check(what: &str, got: &[f32], want: &[f32], magnitude: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0.0f32;
    for (i, ((g, w), m)) in got.iter().zip(want).zip(magnitude).enumerate() {
        let err = (g - w).abs();
        let allowed = REL_TOL * m.max(f32::MIN_POSITIVE);
        assert!(
            err <= allowed,
            "{what}: output {i}: fast {g} vs reference {w} (|diff| {err} > {allowed}, magnitude {m})"
        );
        worst = worst.max(err / m.max(f32::MIN_POSITIVE));
    }
    worst
}

#[allow(clippy::too_many_arguments)]
fn conv_geometry(
    batches: usize,
    hw: (usize, usize),
    in_c: usize,
    out_c: usize,
    k: (usize, usize),
    stride: (usize, usize),
    dilation: (usize, usize),
    padding: Padding,
) -> Option<ConvGeometry> {
    let oh = out_size(
        padding,
        hw.0 as i64,
        k.0 as i64,
        stride.0 as i64,
        dilation.0 as i64,
    );
    let ow = out_size(
        padding,
        hw.1 as i64,
        k.1 as i64,
        stride.1 as i64,
        dilation.1 as i64,
    );
    if oh <= 0 || ow <= 0 {
        return None;
    }
    let pad = |stride: usize, dil: usize, input: usize, k: usize, out: i64| match padding {
        Padding::Same => {
            leading_padding(stride as i64, dil as i64, input as i64, k as i64, out) as usize
        }
        Padding::Valid => 0,
    };
    Some(ConvGeometry {
        batches,
        in_h: hw.0,
        in_w: hw.1,
        in_c,
        out_h: oh as usize,
        out_w: ow as usize,
        out_c,
        k_h: k.0,
        k_w: k.1,
        stride_h: stride.0,
        stride_w: stride.1,
        dilation_h: dilation.0,
        dilation_w: dilation.1,
        pad_top: pad(stride.0, dilation.0, hw.0, k.0, oh),
        pad_left: pad(stride.1, dilation.1, hw.1, k.1, ow),
    })
}

/// Whether `PackedConv2dF32::new` should pick the direct kernel for stride-1 geometries here.
fn direct_expected(g: &ConvGeometry) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // AVX2 + FMA; with AVX-512 only where a side has at most 16 channels.
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && (!std::arch::is_x86_feature_detected!("avx512f") || g.in_c.min(g.out_c) <= 16)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = g;
        false
    }
}

/// Which Winograd path `PackedConv2dF32::new` should pick, if any: for 3×3, stride 1,
/// dilation 1, F(4×4, 3×3) with ≥ 16 channels on both sides and ≥ 16 tiles of 4×4 outputs,
/// else F(2×2, 3×3) with ≥ 32 channels and ≥ 16 tiles of 2×2 outputs.
fn winograd_expected(g: &ConvGeometry) -> Option<ConvPath> {
    let channels = g.in_c.min(g.out_c);
    let tiles = |m: usize| g.batches * g.out_h.div_ceil(m) * g.out_w.div_ceil(m);
    if !winograd_applies(g) {
        None
    } else if channels >= 16 && tiles(4) >= 16 {
        Some(ConvPath::Winograd4x4)
    } else if channels >= 32 && tiles(2) >= 16 {
        Some(ConvPath::Winograd)
    } else {
        None
    }
}

/// Whether `PackedConv2dF32::winograd` and `winograd4x4` take Winograd for `g`.
fn winograd_applies(g: &ConvGeometry) -> bool {
    (
        g.k_h,
        g.k_w,
        g.stride_h,
        g.stride_w,
        g.dilation_h,
        g.dilation_w,
    ) == (3, 3, 1, 1, 1, 1)
        && g.pad_top <= 1
        && g.pad_left <= 1
}

/// Runs one convolution on the chosen path, on the `gemm` path and, for 3×3 stride-1
/// geometries, on Winograd F(2×2, 3×3) and F(4×4, 3×3) (threads 1 and 3 each) and checks them
/// all; returns the paths taken (chosen, gemm).
fn conv_both(rng: &mut Rng, g: &ConvGeometry, act: (f32, f32), with_bias: bool) -> [ConvPath; 2] {
    let input = rng.f32s(g.batches * g.in_h * g.in_w * g.in_c, -1.5, 1.5);
    let filter = rng.f32s(g.out_c * g.k_h * g.k_w * g.in_c, -0.5, 0.5);
    let bias = with_bias.then(|| rng.f32s(g.out_c, -1.0, 1.0));
    let n_out = g.batches * g.out_h * g.out_w * g.out_c;
    let mut want = vec![0.0f32; n_out];
    conv2d_f32(g, act, &input, &filter, bias.as_deref(), &mut want);
    let mut magnitude = vec![0.0f32; n_out];
    let abs_bias = bias.as_deref().map(abs);
    conv2d_f32(
        g,
        NO_CLAMP,
        &abs(&input),
        &abs(&filter),
        abs_bias.as_deref(),
        &mut magnitude,
    );
    let chosen = PackedConv2dF32::new(g, act, &filter).expect("filter size");
    let gemm = PackedConv2dF32::with_gemm(g, act, &filter).expect("filter size");
    let shifted = g.stride_h == 1 && g.stride_w == 1 && g.dilation_h == 1 && g.dilation_w == 1;
    let pointwise = gemm.path() == ConvPath::Pointwise;
    assert_eq!(
        chosen.path() == ConvPath::Direct,
        shifted && !pointwise && direct_expected(g) && winograd_expected(g).is_none(),
        "{g:?}: path {:?}",
        chosen.path()
    );
    let winograd_chosen = [ConvPath::Winograd, ConvPath::Winograd4x4].contains(&chosen.path());
    assert_eq!(
        winograd_chosen.then_some(chosen.path()),
        winograd_expected(g),
        "{g:?}: path {:?}",
        chosen.path()
    );
    assert_ne!(gemm.path(), ConvPath::Direct);
    let winograd = PackedConv2dF32::winograd(g, act, &filter).expect("filter size");
    assert_eq!(winograd.path() == ConvPath::Winograd, winograd_applies(g));
    let winograd4x4 = PackedConv2dF32::winograd4x4(g, act, &filter).expect("filter size");
    assert_eq!(
        winograd4x4.path() == ConvPath::Winograd4x4,
        winograd_applies(g)
    );
    for packed in [&chosen, &gemm, &winograd, &winograd4x4] {
        for threads in [1, 3] {
            let mut got = vec![f32::NAN; n_out];
            packed.run(&input, bias.as_deref(), &mut got, threads);
            check(
                &format!(
                    "conv {g:?} act {act:?} path {:?} threads {threads}",
                    packed.path()
                ),
                &got,
                &want,
                &magnitude,
            );
        }
    }
    [chosen.path(), gemm.path()]
}

#[test]
fn conv_fixed_shapes_cover_every_path() {
    let mut rng = Rng::new(11);
    let cases = [
        // (batches, hw, in_c, out_c, k, stride, dilation, padding)
        (1, (9, 7), 5, 3, (1, 1), (1, 1), (1, 1), Padding::Same),
        (2, (6, 6), 16, 17, (1, 1), (1, 1), (1, 1), Padding::Valid),
        (1, (13, 11), 3, 7, (3, 3), (1, 1), (1, 1), Padding::Same),
        (3, (8, 8), 1, 16, (3, 3), (1, 1), (1, 1), Padding::Same),
        (1, (10, 9), 7, 5, (3, 3), (1, 1), (1, 1), Padding::Valid),
        (1, (9, 12), 4, 6, (2, 4), (1, 1), (1, 1), Padding::Same),
        (1, (12, 10), 5, 9, (3, 3), (2, 2), (1, 1), Padding::Same),
        (2, (11, 9), 3, 4, (3, 2), (2, 3), (1, 1), Padding::Valid),
        (1, (12, 12), 6, 5, (3, 3), (1, 1), (2, 2), Padding::Same),
        (1, (9, 9), 2, 3, (1, 1), (2, 2), (1, 1), Padding::Same),
        (1, (16, 16), 32, 32, (3, 3), (1, 1), (1, 1), Padding::Same),
        (2, (7, 13), 40, 37, (3, 3), (1, 1), (1, 1), Padding::Same),
        // Winograd F(4×4, 3×3) where `new` chooses it: odd sizes (partial tiles at the bottom
        // and right, 1–3 rows or columns of them), VALID, two images, 16 channels, several
        // blocks of tiles (33 × 33 tiles).
        (2, (15, 11), 33, 70, (3, 3), (1, 1), (1, 1), Padding::Same),
        (2, (18, 16), 64, 32, (3, 3), (1, 1), (1, 1), Padding::Valid),
        (1, (37, 35), 40, 65, (3, 3), (1, 1), (1, 1), Padding::Same),
        (1, (13, 17), 16, 24, (3, 3), (1, 1), (1, 1), Padding::Same),
        (1, (130, 131), 16, 16, (3, 3), (1, 1), (1, 1), Padding::Same),
        // F(2×2, 3×3) where there are too few 4×4 tiles: even and odd sizes.
        (1, (8, 8), 48, 40, (3, 3), (1, 1), (1, 1), Padding::Same),
        (1, (9, 7), 32, 33, (3, 3), (1, 1), (1, 1), Padding::Same),
        (1, (5, 17), 9, 48, (5, 3), (1, 1), (1, 1), Padding::Valid),
        // 1×1 to one channel (the U-Net's head): the per-pixel dot product, with 8-value
        // blocks and a remainder, and with fewer than 8 input channels.
        (2, (9, 9), 19, 1, (1, 1), (1, 1), (1, 1), Padding::Same),
        (1, (6, 7), 3, 1, (1, 1), (1, 1), (1, 1), Padding::Valid),
        (1, (16, 16), 16, 1, (1, 1), (1, 1), (1, 1), Padding::Same),
    ];
    let mut paths = Vec::new();
    for (i, &(batches, hw, in_c, out_c, k, stride, dilation, padding)) in cases.iter().enumerate() {
        let g = conv_geometry(batches, hw, in_c, out_c, k, stride, dilation, padding)
            .expect("valid case");
        paths.extend(conv_both(&mut rng, &g, ACTS[i % 3], i % 4 != 1));
    }
    // Some stride-1 case here has a side of at most 16 channels, so the direct kernel runs
    // wherever it is expected for such a geometry.
    let small = conv_geometry(1, (8, 8), 9, 48, (3, 3), (1, 1), (1, 1), Padding::Same)
        .expect("valid geometry");
    if direct_expected(&small) {
        assert!(
            paths.contains(&ConvPath::Direct),
            "no case took the direct kernel"
        );
    }
    for path in [
        ConvPath::Pointwise,
        ConvPath::Shifted,
        ConvPath::Im2col,
        ConvPath::Winograd,
        ConvPath::Winograd4x4,
    ] {
        assert!(paths.contains(&path), "no case took {path:?}");
    }
}

/// Runs [`conv_both`] on `count` geometries drawn by `draw` (which may decline with `None`),
/// each with a random activation and, four times in five, a bias.
fn random_convs(seed: u64, count: usize, mut draw: impl FnMut(&mut Rng) -> Option<ConvGeometry>) {
    let mut rng = Rng::new(seed);
    let mut done = 0;
    while done < count {
        let Some(g) = draw(&mut rng) else {
            continue;
        };
        let act = ACTS[rng.range_i64(0, 2) as usize];
        let with_bias = rng.next_f32() < 0.8;
        conv_both(&mut rng, &g, act, with_bias);
        done += 1;
    }
}

#[test]
fn conv_random_shapes() {
    random_convs(12, 40, |rng| {
        let k = (rng.range_i64(1, 3) as usize, rng.range_i64(1, 3) as usize);
        let stride = (rng.range_i64(1, 2) as usize, rng.range_i64(1, 2) as usize);
        let dilation = if rng.next_f32() < 0.2 { (2, 1) } else { (1, 1) };
        let padding = if rng.next_f32() < 0.5 {
            Padding::Same
        } else {
            Padding::Valid
        };
        conv_geometry(
            rng.range_i64(1, 2) as usize,
            (rng.range_i64(1, 15) as usize, rng.range_i64(1, 15) as usize),
            rng.range_i64(1, 19) as usize,
            rng.range_i64(1, 19) as usize,
            k,
            stride,
            dilation,
            padding,
        )
    });
}

/// Winograd F(2×2, 3×3), F(4×4, 3×3) (and whatever `new` chooses) on random 3×3 stride-1
/// geometries: odd and
/// even sizes down to 1×1, SAME and VALID, 1–70 channels, batches of 1–3.
#[test]
fn conv_winograd_random_shapes() {
    random_convs(13, 30, |rng| {
        let padding = if rng.next_f32() < 0.7 {
            Padding::Same
        } else {
            Padding::Valid
        };
        conv_geometry(
            rng.range_i64(1, 3) as usize,
            (rng.range_i64(1, 19) as usize, rng.range_i64(1, 19) as usize),
            rng.range_i64(1, 70) as usize,
            rng.range_i64(1, 70) as usize,
            (3, 3),
            (1, 1),
            (1, 1),
            padding,
        )
    });
}

/// Geometry of a transposed convolution from its small input, as `prepare` computes it.
#[allow(clippy::too_many_arguments)]
fn transpose_geometry(
    batches: usize,
    small: (usize, usize),
    big: (usize, usize),
    in_c: usize,
    out_c: usize,
    k: usize,
    stride: usize,
    padding: Padding,
) -> Option<ConvGeometry> {
    for (s, b) in [(small.0, big.0), (small.1, big.1)] {
        if out_size(padding, b as i64, k as i64, stride as i64, 1) != s as i64 {
            return None;
        }
    }
    let pad = |b: usize, s: usize| leading_padding(stride as i64, 1, b as i64, k as i64, s as i64);
    Some(ConvGeometry {
        batches,
        in_h: small.0,
        in_w: small.1,
        in_c,
        out_h: big.0,
        out_w: big.1,
        out_c,
        k_h: k,
        k_w: k,
        stride_h: stride,
        stride_w: stride,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: pad(big.0, small.0) as usize,
        pad_left: pad(big.1, small.1) as usize,
    })
}

fn transpose_both(rng: &mut Rng, g: &ConvGeometry, act: (f32, f32), with_bias: bool) -> bool {
    let input = rng.f32s(g.batches * g.in_h * g.in_w * g.in_c, -1.5, 1.5);
    let filter = rng.f32s(g.out_c * g.k_h * g.k_w * g.in_c, -0.5, 0.5);
    let bias = with_bias.then(|| rng.f32s(g.out_c, -1.0, 1.0));
    let n_out = g.batches * g.out_h * g.out_w * g.out_c;
    let mut want = vec![0.0f32; n_out];
    transpose_conv_f32(g, act, &input, &filter, bias.as_deref(), &mut want);
    let mut magnitude = vec![0.0f32; n_out];
    let abs_bias = bias.as_deref().map(abs);
    transpose_conv_f32(
        g,
        NO_CLAMP,
        &abs(&input),
        &abs(&filter),
        abs_bias.as_deref(),
        &mut magnitude,
    );
    let packed = PackedTransposeConvF32::new(g, act, &filter).expect("filter size");
    for threads in [1, 3] {
        let mut got = vec![f32::NAN; n_out];
        packed.run(&input, bias.as_deref(), &mut got, threads);
        check(
            &format!("transpose conv {g:?} act {act:?} threads {threads}"),
            &got,
            &want,
            &magnitude,
        );
    }
    packed.tiles()
}

#[test]
fn transpose_conv_shapes() {
    let mut rng = Rng::new(13);
    let cases = [
        // (batches, small, big, in_c, out_c, k, stride, padding)
        (1, (4, 5), (8, 10), 6, 3, 2, 2, Padding::Same), // U-Net: tiles exactly
        (2, (3, 3), (6, 6), 17, 16, 2, 2, Padding::Valid),
        (1, (4, 4), (8, 8), 5, 7, 3, 2, Padding::Same), // overlapping blocks
        (1, (3, 4), (7, 9), 3, 2, 3, 2, Padding::Valid),
        (1, (3, 3), (9, 9), 2, 3, 2, 3, Padding::Same), // gaps between blocks
        (2, (5, 4), (5, 4), 4, 4, 3, 1, Padding::Same),
        (1, (3, 3), (5, 5), 1, 5, 3, 1, Padding::Valid),
    ];
    let mut tiled = 0;
    for (i, &(batches, small, big, in_c, out_c, k, stride, padding)) in cases.iter().enumerate() {
        let g = transpose_geometry(batches, small, big, in_c, out_c, k, stride, padding)
            .unwrap_or_else(|| panic!("case {i} is inconsistent"));
        tiled += transpose_both(&mut rng, &g, ACTS[i % 3], i % 3 != 2) as usize;
    }
    assert!(
        tiled >= 2 && tiled < cases.len(),
        "both scatter paths ran ({tiled} tiled)"
    );
}

#[test]
fn interpreter_best_matches_reference_on_single_ops() {
    let mut rng = Rng::new(14);
    let mut cases = Vec::new();
    for (i, act) in common::ACTIVATIONS.into_iter().enumerate() {
        let padding = if i % 2 == 0 {
            Padding::Same
        } else {
            Padding::Valid
        };
        cases.push(common::conv_case(
            &mut rng,
            false,
            (9, 8),
            3,
            5,
            (3, 3),
            (1, 1),
            (1, 1),
            padding,
            act,
        ));
        cases.push(common::conv_case(
            &mut rng,
            false,
            (7, 7),
            4,
            3,
            (1, 1),
            (2, 2),
            (1, 1),
            padding,
            act,
        ));
        cases.push(common::transpose_conv_case(
            &mut rng,
            false,
            (4, 3),
            5,
            6,
            2,
            2,
            padding,
            act,
            i % 2 == 0,
            i == 3,
        ));
    }
    for case in &cases {
        let outputs: Vec<Vec<f32>> = [KernelTier::Reference, KernelTier::Best]
            .into_iter()
            .map(|kernels| {
                let mut interp = Interpreter::new(
                    &case.model,
                    Options {
                        kernels,
                        threads: 2,
                    },
                )
                .unwrap();
                for (i, array) in case.inputs.iter().enumerate() {
                    match &array.data {
                        tflite_runtime::npy::NpyData::F32(v) => interp.set_input(i, v).unwrap(),
                        other => panic!("{}: unexpected input {other:?}", case.name),
                    }
                }
                interp.invoke().unwrap();
                interp.output::<f32>(0).unwrap().to_vec()
            })
            .collect();
        // No per-output magnitude here (the kernel tests above check the tight bound): allow
        // 1e-4 of the output's range (at least 1), still far below a wrong or missing tap.
        let scale = outputs[0].iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (j, (a, b)) in outputs[0].iter().zip(&outputs[1]).enumerate() {
            assert!(
                (a - b).abs() <= 10.0 * REL_TOL * scale,
                "{}: output {j}: reference {a} vs best {b}",
                case.name
            );
        }
    }
}

fn unet_outputs(kernels: KernelTier, threads: usize, input: &[f32]) -> (Vec<f32>, Vec<Vec<f32>>) {
    let model = unet(UNetSpec {
        fms: 4,
        size: 32,
        in_channels: 1,
        int8: false,
        seed: 5,
    });
    let mut interp = Interpreter::new(&model, Options { kernels, threads }).unwrap();
    interp.set_input(0, input).unwrap();
    let mut tensors = Vec::new();
    interp
        .invoke_with_observer(&mut |obs| {
            if let tflite_runtime::TensorData::F32(v) = obs.data {
                tensors.push(v.to_vec());
            }
        })
        .unwrap();
    (interp.output::<f32>(0).unwrap().to_vec(), tensors)
}

#[test]
fn unet_f32_best_matches_reference() {
    let mut rng = Rng::new(15);
    let input = rng.f32s(32 * 32, -2.0, 2.0);
    let (want, want_tensors) = unet_outputs(KernelTier::Reference, 1, &input);
    for threads in [1, 3] {
        let (got, got_tensors) = unet_outputs(KernelTier::Best, threads, &input);
        assert_eq!(want_tensors.len(), got_tensors.len());
        // Every intermediate tensor: errors relative to the tensor's largest magnitude (the
        // rounding differences propagate through ~20 layers, so allow 1e-4 of the range).
        for (i, (w, g)) in want_tensors.iter().zip(&got_tensors).enumerate() {
            let scale = w.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
            let worst = w
                .iter()
                .zip(g)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst <= 1e-4 * scale,
                "threads {threads}: tensor {i}: max |diff| {worst} vs range {scale}"
            );
        }
        let worst = want
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst <= 1e-5,
            "threads {threads}: output max |diff| {worst}"
        );
    }
}

#[test]
fn reference_tier_and_env_pin_keep_reference_kernels() {
    let model = unet(UNetSpec {
        fms: 4,
        size: 16,
        in_channels: 1,
        int8: false,
        seed: 1,
    });
    let reference = Interpreter::new(&model, Options::default()).unwrap();
    assert_eq!(reference.kernel_tier(), "reference");
    let best = Interpreter::new(
        &model,
        Options {
            kernels: KernelTier::Best,
            threads: 1,
        },
    )
    .unwrap();
    // Under `TFLITE_RUNTIME_KERNELS=reference` (as CI may set it) Best is pinned too.
    let pinned = std::env::var("TFLITE_RUNTIME_KERNELS")
        .map(|v| v.eq_ignore_ascii_case("reference"))
        .unwrap_or(false);
    assert_eq!(
        best.kernel_tier() == "reference",
        pinned,
        "tier {} with TFLITE_RUNTIME_KERNELS={:?}",
        best.kernel_tier(),
        std::env::var("TFLITE_RUNTIME_KERNELS").ok()
    );
}

#[test]
fn max_pool_is_bit_identical_to_reference() {
    use tflite_runtime::fast::f32_pool::max_pool_f32;
    use tflite_runtime::frame::PoolGeometry;
    use tflite_runtime::reference::pool::max_pool_f32 as reference_max_pool;
    let mut rng = Rng::new(16);
    let mut done = 0;
    while done < 40 {
        let (h, w) = (rng.range_i64(1, 12) as usize, rng.range_i64(1, 12) as usize);
        let filter = rng.range_i64(1, 3) as usize;
        let stride = rng.range_i64(1, 3) as usize;
        let padding = if rng.next_f32() < 0.5 {
            Padding::Same
        } else {
            Padding::Valid
        };
        let oh = out_size(padding, h as i64, filter as i64, stride as i64, 1);
        let ow = out_size(padding, w as i64, filter as i64, stride as i64, 1);
        if oh <= 0 || ow <= 0 {
            continue;
        }
        let pad = |input: usize, out: i64| match padding {
            Padding::Same => leading_padding(stride as i64, 1, input as i64, filter as i64, out),
            Padding::Valid => 0,
        } as usize;
        let g = PoolGeometry {
            batches: rng.range_i64(1, 2) as usize,
            in_h: h,
            in_w: w,
            channels: rng.range_i64(1, 19) as usize,
            out_h: oh as usize,
            out_w: ow as usize,
            filter_h: filter,
            filter_w: filter,
            stride_h: stride,
            stride_w: stride,
            pad_top: pad(h, oh),
            pad_left: pad(w, ow),
        };
        let mut input = rng.f32s(g.batches * h * w * g.channels, -3.0, 3.0);
        // A NaN and an infinity keep the comparison semantics honest.
        input[0] = f32::NAN;
        let last = input.len() - 1;
        input[last] = f32::INFINITY;
        let act = ACTS[done % 3];
        let n = g.batches * g.out_h * g.out_w * g.channels;
        let (mut want, mut got) = (vec![0.0f32; n], vec![1.0f32; n]);
        reference_max_pool(&g, act, &input, &mut want);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        // One thread, and output rows split over three (and more threads than rows).
        for threads in [1, 3, 40] {
            got.fill(1.0);
            max_pool_f32(&g, act, &input, &mut got, threads);
            assert_eq!(
                bits(&got),
                bits(&want),
                "{g:?} act {act:?} threads {threads}"
            );
        }
        done += 1;
    }
}
