//! The `nifti` fuzz target's property in the normal test suite: arbitrary and bit-flipped
//! `.nii` / `.nii.gz` bytes through the NIfTI header parser and first-volume decoder never
//! panic, and never allocate past the limit.

use std::path::Path;

use proptest::prelude::*;
use unet_data::nifti_io::{NiftiData, read_first_volume_from_bytes, write_nifti};

const LIMIT: u64 = 64 << 20;

/// Small valid volumes (3-D and 4-D, f32, u8 and i16; plain and gzip) as file bytes.
fn seeds() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let f32s: Vec<f32> = (0..4 * 3 * 2 * 2).map(|v| v as f32 * 0.25 - 3.0).collect();
    let u8s: Vec<u8> = (0..4 * 3 * 2).map(|v| (v % 3) as u8).collect();
    let i16s: Vec<i16> = (0..5 * 2).map(|v| v as i16 * 300 - 1000).collect();
    let mut out = Vec::new();
    for ext in ["nii", "nii.gz"] {
        let cases: [(&str, &[usize], NiftiData<'_>); 3] = [
            ("image", &[4, 3, 2, 2], NiftiData::F32(&f32s)),
            ("label", &[4, 3, 2], NiftiData::U8(&u8s)),
            ("int16", &[5, 2, 1], NiftiData::I16(&i16s)),
        ];
        for (name, shape, data) in cases {
            let path = dir.path().join(format!("{name}.{ext}"));
            write_nifti(&path, shape, data).unwrap();
            out.push(std::fs::read(&path).unwrap());
        }
    }
    out
}

#[test]
fn every_seed_reads() {
    for bytes in seeds() {
        let (header, values) =
            read_first_volume_from_bytes(Path::new("seed.nii"), &bytes, LIMIT).expect("reads");
        assert_eq!(values.len(), header.shape.iter().take(3).product::<usize>());
    }
}

/// Writes the seed corpus of the `nifti` fuzz target to `$FUZZ_SEED_DIR/nifti` (run with
/// `--ignored`).
#[test]
#[ignore = "writes fuzz seeds when FUZZ_SEED_DIR is set"]
fn write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("FUZZ_SEED_DIR") else {
        return;
    };
    let sub = std::path::PathBuf::from(dir).join("nifti");
    std::fs::create_dir_all(&sub).unwrap();
    for (i, bytes) in seeds().iter().enumerate() {
        std::fs::write(sub.join(format!("seed{i:02}")), bytes).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn bit_flipped_volumes_never_panic(
        pick in any::<usize>(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let corpus = seeds();
        let mut bytes = corpus[pick % corpus.len()].clone();
        // Header fields (the first 352 bytes) are where the damage matters most.
        let len = bytes.len().min(352);
        for (at, mask) in flips {
            bytes[at % len] ^= mask | 1;
        }
        if cut % 3 == 0 {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        let _ = read_first_volume_from_bytes(Path::new("flipped.nii"), &bytes, LIMIT);
    }

    #[test]
    fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = read_first_volume_from_bytes(Path::new("arbitrary.nii"), &tail, LIMIT);
        // Behind a valid header the decoder sees arbitrary voxels and extensions.
        let mut bytes = seeds()[0][..352].to_vec();
        bytes.extend_from_slice(&tail);
        let _ = read_first_volume_from_bytes(Path::new("arbitrary.nii"), &bytes, LIMIT);
    }
}
