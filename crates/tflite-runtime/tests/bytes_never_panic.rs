//! The fuzz targets' properties in the normal test suite: arbitrary and bit-flipped model bytes
//! through the reader, `Interpreter::with_limits` and `invoke` (`fuzz_invoke`), and arbitrary
//! and bit-flipped `.npy` bytes through `read_npy`, never panic.

mod common;

use proptest::prelude::*;
use tflite_runtime::npy::{NpyArray, NpyData, read_npy, write_npy};
use tflite_runtime::synth::Rng;

/// Serialised small models of every supported operator (the corpus the mutations start from).
fn model_bytes(seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    common::all_cases_small(&mut rng)
        .into_iter()
        .filter_map(|case| tflite_writer::write_model(&case.model).ok())
        .collect()
}

fn flip(bytes: &mut [u8], flips: &[(usize, u8)]) {
    if bytes.is_empty() {
        return;
    }
    let len = bytes.len();
    for &(at, mask) in flips {
        bytes[at % len] ^= mask | 1;
    }
}

fn npy_seeds() -> Vec<Vec<u8>> {
    let arrays = [
        NpyArray {
            shape: vec![2, 3],
            data: NpyData::F32(vec![0.5, -1.0, 2.0, 3.5, f32::MAX, 0.0]),
        },
        NpyArray {
            shape: vec![1, 4, 4, 1],
            data: NpyData::I8((0..16).map(|v| v as i8 - 8).collect()),
        },
        NpyArray {
            shape: vec![],
            data: NpyData::I64(vec![-7]),
        },
        NpyArray {
            shape: vec![3],
            data: NpyData::I32(vec![1, 2, 3]),
        },
    ];
    arrays.iter().map(write_npy).collect()
}

/// Inputs on which a fuzz target once failed (`tests/fuzz_regressions/<target>-<what>`) go
/// through the same property on every test run.
#[test]
fn fuzz_regressions_pass_the_property() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/fuzz_regressions") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("regression input");
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("runtime_invoke-"))
        {
            tflite_runtime::fuzz_invoke(&bytes);
            count += 1;
        }
    }
    assert!(
        count > 0,
        "no runtime_invoke regression inputs in {}",
        dir.display()
    );
}

#[test]
fn every_seed_model_runs_through_the_property() {
    // The unmutated corpus prepares and runs (so the mutations below start from working
    // models, not from bytes the reader refuses at once).
    for bytes in model_bytes(1) {
        let model = tflite_writer::read_model(&bytes).expect("reads");
        assert!(
            tflite_runtime::Interpreter::new(&model, tflite_runtime::Options::default()).is_ok()
        );
        tflite_runtime::fuzz_invoke(&bytes);
    }
}

/// Writes the seed corpora of the `runtime_invoke` and `npy` fuzz targets to
/// `$FUZZ_SEED_DIR/{runtime_invoke,npy}` (run with `--ignored`).
#[test]
#[ignore = "writes fuzz seeds when FUZZ_SEED_DIR is set"]
fn write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("FUZZ_SEED_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    for (target, seeds) in [("runtime_invoke", model_bytes(1)), ("npy", npy_seeds())] {
        let sub = dir.join(target);
        std::fs::create_dir_all(&sub).unwrap();
        for (i, bytes) in seeds.iter().enumerate() {
            std::fs::write(sub.join(format!("seed{i:02}")), bytes).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn bit_flipped_models_never_panic(
        seed in 0u64..4,
        pick in any::<usize>(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let corpus = model_bytes(seed);
        let mut bytes = corpus[pick % corpus.len()].clone();
        flip(&mut bytes, &flips);
        tflite_runtime::fuzz_invoke(&bytes);
    }

    #[test]
    fn arbitrary_model_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        tflite_runtime::fuzz_invoke(&bytes);
    }

    #[test]
    fn bit_flipped_npy_never_panics(
        pick in any::<usize>(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let seeds = npy_seeds();
        let mut bytes = seeds[pick % seeds.len()].clone();
        flip(&mut bytes, &flips);
        bytes.truncate(cut % (bytes.len() + 1));
        let _ = read_npy(&bytes);
    }

    #[test]
    fn arbitrary_npy_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = read_npy(&tail);
        // Behind a valid magic and version, the header parser sees the arbitrary bytes.
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&tail);
        let _ = read_npy(&bytes);
    }
}
