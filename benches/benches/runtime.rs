//! tflite-runtime end to end: the int8 and f32 random-weight U-Net (fms=16, 128×128, IntelAI's
//! topology) through `Interpreter::invoke`, one thread.
//!
//! `cargo bench -p benches --bench runtime` measures, in one run on the same machine:
//! - `runtime_unet_fms16_128/int8-vs-litert`: the int8 U-Net with our best kernels
//!   (`KernelTier::Best`, fast int8 path chosen from the CPU's features) and with LiteRT's
//!   default CPU path (XNNPACK, 1 thread, through `unet-bench`'s dlopen C-API backend), side by
//!   side; LiteRT is skipped with a message when `libLiteRt.so` cannot be found;
//! - `runtime_unet_f32_fms16_128`: the f32 U-Net with our best kernels (packed-weight GEMM
//!   convolutions, `fast::f32_conv`) beside LiteRT XNNPACK f32 (1 thread), same run;
//! - `runtime_unet_fms16_128/{int8,f32}`: the reference kernels (`KernelTier::Reference`).
//!
//! `cargo xtask runtime-bench` prints the same comparison with the ratio, GOPS and a per-op
//! profile.

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tflite_runtime::synth::{Rng, UNetSpec, unet};
use tflite_runtime::{Interpreter, KernelTier, Options};
use unet_bench::Engine;
use unet_bench::backends::litert::{Accelerator, LiteRtConfig, LiteRtEngine};

fn spec(int8: bool) -> UNetSpec {
    UNetSpec {
        fms: 16,
        size: 128,
        in_channels: 1,
        int8,
        seed: 1,
    }
}

/// Our best kernels against LiteRT XNNPACK on the int8 U-Net, one thread each.
fn bench_int8_vs_litert(c: &mut Criterion) {
    let model = unet(spec(true));
    let image = Rng::new(2).f32s(128 * 128, -2.0, 2.0);
    let mut group = c.benchmark_group("runtime_unet_fms16_128/int8-vs-litert");
    group.sample_size(30);

    let mut ours = Interpreter::new(
        &model,
        Options {
            kernels: KernelTier::Best,
            threads: 1,
        },
    )
    .expect("prepare U-Net");
    let info = ours.input_info(0).expect("input").clone();
    let (scale, zp) = info.per_tensor_quant().expect("int8 input quantisation");
    let mut q = vec![0i8; image.len()];
    tflite_runtime::reference::quantize::quantize_f32_i8(scale, zp, &image, &mut q);
    ours.set_input(0, &q).expect("set input");
    eprintln!("tflite-runtime kernels: {}", ours.kernel_tier());
    group.bench_function(format!("tflite-runtime-{}", ours.kernel_tier()), |b| {
        b.iter(|| {
            ours.invoke().expect("invoke");
            black_box(ours.output::<i8>(0).expect("output")[0])
        })
    });

    bench_litert_xnnpack(
        &mut group,
        &model,
        "unet_random_int8.tflite",
        &image,
        "litert-xnnpack-1thread",
    );
    group.finish();
}

/// Adds LiteRT's default CPU path (XNNPACK, 1 thread, `unet-bench`'s dlopen backend) on `model`
/// to `group` as `id`, or prints why it is skipped when `libLiteRt.so` cannot be loaded.
fn bench_litert_xnnpack(
    group: &mut BenchmarkGroup<'_, WallTime>,
    model: &tflite_writer::Model,
    file_name: &str,
    image: &[f32],
    id: &str,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(file_name);
    tflite_writer::write_model_file(model, &path).expect("write model");
    let mut litert = LiteRtEngine::new(LiteRtConfig {
        model: path,
        accelerator: Accelerator::Cpu,
        threads: 1,
        library: None,
        dispatch_dir: None,
    });
    match litert.load() {
        Ok(()) => {
            litert.set_input(image).expect("LiteRT input");
            group.bench_function(id, |b| b.iter(|| litert.invoke().expect("LiteRT invoke")));
        }
        Err(e) => eprintln!("skipped {id}: LiteRT unavailable: {e:?}"),
    }
}

/// The reference kernels (int8 and f32).
fn bench_reference(c: &mut Criterion) {
    let mut group = c.benchmark_group("runtime_unet_fms16_128");
    group.sample_size(10);
    for int8 in [true, false] {
        let model = unet(spec(int8));
        let mut interp = Interpreter::new(&model, Options::default()).expect("prepare U-Net");
        let mut rng = Rng::new(2);
        if int8 {
            interp
                .set_input(0, &rng.i8s(128 * 128, -128, 127))
                .expect("set input");
        } else {
            interp
                .set_input(0, &rng.f32s(128 * 128, -2.0, 2.0))
                .expect("set input");
        }
        eprintln!(
            "{}: arena peak {} bytes (no reuse: {}), scratch {} bytes, kernels {}",
            if int8 { "int8" } else { "f32" },
            interp.memory().arena_bytes,
            interp.memory().unshared_bytes,
            interp.memory().scratch_bytes,
            interp.kernel_tier()
        );
        group.bench_function(if int8 { "int8" } else { "f32" }, |b| {
            b.iter(|| {
                interp.invoke().expect("invoke");
                black_box(interp.output_data(0).expect("output").len())
            })
        });
    }
    group.finish();
}

/// f32 U-Net (fms=16, 128×128): our fast tier (packed-weight GEMM convolutions), one thread,
/// beside LiteRT's default CPU path (XNNPACK, one thread, through
/// unet-bench's dlopen backend) in the same run on the same model file.
fn bench_unet_f32_fast(c: &mut Criterion) {
    let model = unet(UNetSpec {
        fms: 16,
        size: 128,
        in_channels: 1,
        int8: false,
        seed: 1,
    });
    let image = Rng::new(2).f32s(128 * 128, -2.0, 2.0);
    let mut group = c.benchmark_group("runtime_unet_f32_fms16_128");
    group.sample_size(20);
    // (The f32 reference tier is timed in `bench_reference`.)
    let mut interp = Interpreter::new(
        &model,
        Options {
            kernels: KernelTier::Best,
            threads: 1,
        },
    )
    .expect("prepare U-Net");
    interp.set_input(0, &image).expect("set input");
    group.bench_function("tflite_runtime_best_1thread", |b| {
        b.iter(|| {
            interp.invoke().expect("invoke");
            black_box(interp.output_data(0).expect("output").len())
        })
    });
    bench_litert_xnnpack(
        &mut group,
        &model,
        "unet_random_f32.tflite",
        &image,
        "litert_xnnpack_1thread",
    );
    group.finish();
}

criterion_group!(
    benches,
    bench_int8_vs_litert,
    bench_unet_f32_fast,
    bench_reference
);
criterion_main!(benches);
