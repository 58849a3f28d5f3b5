//! unet-data: synthetic phantom generation (slices/s) and decoding one BraTS-sized
//! 240×240×155×4 `.nii.gz` volume, which the bench writes itself into a temporary directory.
//!
//! `cargo bench -p benches --bench data`

use std::hint::black_box;
use std::io::Read;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use unet_data::nifti_io::{NiftiData, read_first_volume, read_header, write_nifti};
use unet_data::{DataConfig, SourceKind, Split, open_source, phantom};

fn synthetic(c: &mut Criterion) {
    let mut group = c.benchmark_group("synthetic");
    group.throughput(Throughput::Elements(1));
    for size in [128usize, 256] {
        let mut seed = 0u64;
        group.bench_function(format!("phantom_{size}x{size}"), |b| {
            b.iter(|| {
                seed += 1;
                black_box(phantom(black_box(seed), size))
            })
        });
    }
    let cfg = DataConfig {
        source: SourceKind::Synthetic,
        augment: true,
        ..DataConfig::default()
    };
    let source = open_source(&cfg, Split::Train).expect("synthetic source");
    let mut index = 0usize;
    group.bench_function("source_get_128_augmented", |b| {
        b.iter(|| {
            index = (index + 1) % source.len();
            black_box(source.get(index).expect("slice"))
        })
    });
    group.finish();
}

/// A BraTS-like volume: each z is a 240×240 phantom turned into non-negative integer-valued
/// intensities (zero background, like the Decathlon float32 volumes); channels 1–3 are scaled
/// copies.
fn brats_like_volume() -> Vec<f32> {
    const N: usize = 240;
    const DEPTH: usize = 155;
    let mut channel0 = Vec::with_capacity(N * N * DEPTH);
    for z in 0..DEPTH {
        let slice = phantom(z as u64, N);
        // Slices are row-major [row][col]; NIfTI wants x fastest: use rows as x.
        for y in 0..N {
            for x in 0..N {
                let v = slice.image[x * N + y];
                channel0.push((v * 150.0 + 300.0).max(0.0).round());
            }
        }
    }
    let mut data = Vec::with_capacity(channel0.len() * 4);
    for channel in 0..4 {
        data.extend(
            channel0
                .iter()
                .map(|v| (v * (1.0 + 0.2 * channel as f32)).round()),
        );
    }
    data
}

fn decode(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("BRATS_bench.nii.gz");
    write_nifti(
        &path,
        &[240, 240, 155, 4],
        NiftiData::F32(&brats_like_volume()),
    )
    .expect("write volume");
    let compressed = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "bench volume: 240x240x155x4 float32, {:.1} MB gzip",
        compressed as f64 / 1e6
    );

    let mut group = c.benchmark_group("decathlon_decode");
    group.sample_size(10);
    group.bench_function("header_only", |b| {
        b.iter(|| black_box(read_header(&path).expect("header")))
    });
    group.bench_function("flair_channel_240x240x155x4_nii_gz", |b| {
        b.iter(|| {
            let header = read_header(&path).expect("header");
            black_box(read_first_volume(&header).expect("decode"))
        })
    });
    group.bench_function("gunzip_all_4_channels_240x240x155x4", |b| {
        b.iter(|| {
            let file = std::fs::File::open(&path).expect("open");
            let mut decoder = flate2_reader(file);
            let mut sink = Vec::with_capacity(240 * 240 * 155 * 16 + 352);
            decoder.read_to_end(&mut sink).expect("gunzip");
            black_box(sink.len())
        })
    });
    group.finish();
}

fn flate2_reader(file: std::fs::File) -> impl Read {
    unet_data::nifti_io::gzip_reader(std::io::BufReader::new(file))
}

criterion_group!(benches, synthetic, decode);
criterion_main!(benches);
