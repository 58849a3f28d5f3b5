//! tflite-runtime end to end: the int8 and f32 random-weight U-Net (fms=16, 128×128, IntelAI's
//! topology) through `Interpreter::invoke` with the reference kernels, one thread.
//!
//! `cargo bench -p benches --bench runtime`. The LiteRT numbers to put beside these come from
//! `cargo xtask runtime-bench`, which times all three backends in one run.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tflite_runtime::synth::{Rng, UNetSpec, unet};
use tflite_runtime::{Interpreter, Options};

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

criterion_group!(benches, bench_unet);
criterion_main!(benches);
