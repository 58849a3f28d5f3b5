//! tflite-runtime end to end: the int8 and f32 random-weight U-Net (fms=16, 128×128, IntelAI's
//! topology) through `Interpreter::invoke` with the reference kernels, one thread.
//!
//! `cargo bench -p benches --bench runtime`. The LiteRT numbers to put beside these come from
//! `cargo xtask runtime-bench`, which times all three backends in one run; the f32 group
//! (`runtime_unet_f32_fms16_128`) also times LiteRT XNNPACK (1 thread) itself, in the same run.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tflite_runtime::synth::{Rng, UNetSpec, unet};
use tflite_runtime::{Interpreter, KernelTier, Options};
use unet_bench::Engine;
use unet_bench::backends::litert::{Accelerator, LiteRtConfig, LiteRtEngine};

fn bench_unet(c: &mut Criterion) {
    let mut group = c.benchmark_group("runtime_unet_fms16_128");
    group.sample_size(10);
    for int8 in [true, false] {
        let model = unet(UNetSpec {
            fms: 16,
            size: 128,
            in_channels: 1,
            int8,
            seed: 1,
        });
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

/// f32 U-Net (fms=16, 128×128): our fast tier (packed-weight GEMM convolutions) and the
/// reference tier, one thread, beside LiteRT's default CPU path (XNNPACK, one thread, through
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
    for (name, kernels) in [
        ("tflite_runtime_best_1thread", KernelTier::Best),
        ("tflite_runtime_reference_1thread", KernelTier::Reference),
    ] {
        let mut interp = Interpreter::new(
            &model,
            Options {
                kernels,
                threads: 1,
            },
        )
        .expect("prepare U-Net");
        interp.set_input(0, &image).expect("set input");
        if kernels == KernelTier::Reference {
            group.sample_size(10);
        }
        group.bench_function(name, |b| {
            b.iter(|| {
                interp.invoke().expect("invoke");
                black_box(interp.output_data(0).expect("output").len())
            })
        });
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("unet_random_f32.tflite");
    tflite_writer::write_model_file(&model, &path).expect("write model");
    let mut litert = LiteRtEngine::new(LiteRtConfig {
        model: path,
        accelerator: Accelerator::Cpu,
        threads: 1,
        library: None,
        dispatch_dir: None,
    });
    match litert.load() {
        Ok(()) => {
            litert.set_input(&image).expect("LiteRT input");
            group.sample_size(20);
            group.bench_function("litert_xnnpack_1thread", |b| {
                b.iter(|| litert.invoke().expect("LiteRT invoke"))
            });
        }
        Err(e) => eprintln!("skipped litert_xnnpack_1thread: LiteRT unavailable: {e:?}"),
    }
    group.finish();
}

criterion_group!(benches, bench_unet, bench_unet_f32_fast);
criterion_main!(benches);
