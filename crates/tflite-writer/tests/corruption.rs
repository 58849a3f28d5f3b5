//! The reader on damaged input: truncated and bit-flipped valid models, thousands of times. It
//! must return an error or a model, never panic; models that still read must write and read back
//! (the same property as the cargo-fuzz target in `fuzz/`).

mod common;

use common::Rng;
use tflite_writer::*;

fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = vec![
        (
            "float_conv".to_string(),
            write_model(&common::float_conv()).unwrap(),
        ),
        (
            "int8_all_ops".to_string(),
            write_model(&common::int8_all_ops()).unwrap(),
        ),
    ];
    for name in ["tiny_unet_int8.tflite", "tiny_unet_fp32.tflite"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/tf_unet")
            .join(name);
        seeds.push((name.to_string(), std::fs::read(path).unwrap()));
    }
    seeds
}

/// Runs the property on `data`, turning a panic into a test failure that names the input.
fn check(label: &str, data: &[u8]) -> bool {
    let result = std::panic::catch_unwind(|| tflite_writer::fuzz_read_write(data));
    if result.is_err() {
        let dump = std::env::temp_dir().join(format!("tflite-writer-crash-{label}.tflite"));
        let _ = std::fs::write(&dump, data);
        panic!(
            "{label}: the reader/writer panicked; input saved to {}",
            dump.display()
        );
    }
    read_model(data).is_ok()
}

#[test]
fn truncated_models_are_errors() {
    let mut n_cases = 0;
    for (name, bytes) in seeds() {
        // Every prefix of the file up to 600 bytes, then 400 random cut points.
        let mut rng = Rng::new(0x5eed ^ bytes.len() as u64);
        let cuts: Vec<usize> = (0..bytes.len().min(600))
            .chain((0..400).map(|_| rng.below(bytes.len())))
            .collect();
        for cut in cuts {
            let ok = check(&format!("{name}-cut{cut}"), &bytes[..cut]);
            assert!(
                !ok,
                "{name}: truncated to {cut} of {} bytes still reads",
                bytes.len()
            );
            n_cases += 1;
        }
    }
    eprintln!("truncation cases: {n_cases}");
    assert!(n_cases >= 3000);
}

#[test]
fn bit_flipped_models_never_panic() {
    let mut n_cases = 0;
    let mut n_still_valid = 0;
    for (name, bytes) in seeds() {
        let mut rng = Rng::new(0xb17f ^ bytes.len() as u64);
        for case in 0..2500 {
            let mut data = bytes.clone();
            // 1 to 8 flipped bits, sometimes a whole random byte or a random u32 (offsets!).
            let n_flips = 1 + rng.below(8);
            for _ in 0..n_flips {
                let pos = rng.below(data.len());
                match rng.below(4) {
                    0 => data[pos] = rng.next_u64() as u8,
                    1 if pos + 4 <= data.len() => {
                        data[pos..pos + 4].copy_from_slice(&(rng.next_u64() as u32).to_le_bytes())
                    }
                    _ => data[pos] ^= 1 << rng.below(8),
                }
            }
            if check(&format!("{name}-flip{case}"), &data) {
                n_still_valid += 1;
            }
            n_cases += 1;
        }
    }
    eprintln!("bit-flip cases: {n_cases}, still valid after damage: {n_still_valid}");
    assert!(n_cases >= 10_000);
}

#[test]
fn random_bytes_with_a_valid_header_are_errors() {
    let mut rng = Rng::new(99);
    for case in 0..2000 {
        let len = 8 + rng.below(512);
        let mut data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        data[4..8].copy_from_slice(b"TFL3");
        // A small root offset keeps the verifier busy past the header.
        let root = (rng.below(len / 4 + 1) as u32) * 4;
        data[0..4].copy_from_slice(&root.to_le_bytes());
        check(&format!("random{case}"), &data);
    }
}
