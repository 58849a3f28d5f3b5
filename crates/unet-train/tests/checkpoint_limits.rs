//! A checkpoint whose (checksummed) metadata asks for an absurd model is refused with an error
//! naming the file before any model is built; arbitrary and bit-flipped checkpoint bytes never
//! panic the reader.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use proptest::prelude::*;
use unet_train::checkpoint::{CheckpointMeta, decode_checkpoint, read_meta, save_checkpoint};
use unet_train::{History, TrainError, UNetConfig, Upsampling, load_checkpoint};

/// A valid checkpoint of a tiny model (fms 2, 16×16), as a file and as bytes.
fn small_checkpoint(dir: &Path) -> (PathBuf, Vec<u8>) {
    let cfg = UNetConfig {
        fms: 2,
        size: 16,
        upsampling: Upsampling::TransposedConv,
        dropout: 0.0,
    };
    let model = cfg.init(&Device::flex(), 0).expect("valid config");
    let meta = CheckpointMeta {
        model: cfg,
        epoch: 1,
        step: 1,
        best_val_loss: f64::INFINITY,
        best_epoch: 0,
        seed: 0,
        history: History::default(),
    };
    let path = dir.join("small.ckpt");
    save_checkpoint(&path, &meta, &model, None).expect("save");
    let bytes = std::fs::read(&path).expect("read");
    (path, bytes)
}

/// The checkpoint with its metadata JSON edited, lengths and checksum recomputed.
fn patch_meta(bytes: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let meta_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut meta: serde_json::Value = serde_json::from_slice(&bytes[16..16 + meta_len]).unwrap();
    edit(&mut meta);
    let meta = serde_json::to_vec(&meta).unwrap();
    let mut out = bytes[..12].to_vec();
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&bytes[16 + meta_len..bytes.len() - 8]);
    let checksum = unet_train::checkpoint::checksum(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

fn corrupt_reason(result: Result<impl Sized, TrainError>) -> String {
    match result {
        Err(err @ TrainError::CorruptCheckpoint { .. }) => err.to_string(),
        Err(other) => panic!("expected CorruptCheckpoint, got {other}"),
        Ok(_) => panic!("the checkpoint was accepted"),
    }
}

fn assert_mentions(message: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            message.contains(needle),
            "error {message:?} does not mention {needle:?}"
        );
    }
}

#[test]
fn absurd_metadata_is_refused_before_the_model_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let (good, bytes) = small_checkpoint(dir.path());
    let device = Device::flex();
    load_checkpoint(&good, &device, None).expect("the unpatched checkpoint loads");

    let cases: [(&str, serde_json::Value, &[&str]); 5] = [
        // 100000 feature maps: ~4·10¹³ parameters; building it aborted the process.
        (
            "fms",
            100000.into(),
            &["fms=100000", "above the largest supported 1024"],
        ),
        // Within the range, but the file holds the weights of fms=2 only.
        (
            "fms",
            64.into(),
            &[
                "fms=64",
                "31030593 parameters",
                "124122372 bytes",
                "holds only",
            ],
        ),
        ("fms", 0.into(), &["fms must be at least 1"]),
        (
            "size",
            1_000_000_000u64.into(),
            &["size=1000000000", "16384"],
        ),
        (
            "size",
            24.into(),
            &["size 24 is not a positive multiple of 16"],
        ),
    ];
    for (key, value, needles) in cases {
        let patched = patch_meta(&bytes, |meta| meta["model"][key] = value.clone());
        let path = dir.path().join(format!("patched_{key}_{value}.ckpt"));
        std::fs::write(&path, &patched).unwrap();
        let message = corrupt_reason(load_checkpoint(&path, &device, None));
        assert_mentions(&message, &[path.to_str().unwrap(), "metadata"]);
        assert_mentions(&message, needles);
        let message = corrupt_reason(read_meta(&path));
        assert_mentions(&message, needles);
    }
}

/// Writes the seed corpus of the `checkpoint` fuzz target to `$FUZZ_SEED_DIR/checkpoint` (run
/// with `--ignored`): the checkpoint of a fms=1 model without its magic and checksum (the
/// target seals it), and the whole file.
#[test]
#[ignore = "writes fuzz seeds when FUZZ_SEED_DIR is set"]
fn write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("FUZZ_SEED_DIR") else {
        return;
    };
    let sub = PathBuf::from(dir).join("checkpoint");
    std::fs::create_dir_all(&sub).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = UNetConfig {
        fms: 1,
        size: 16,
        upsampling: Upsampling::Nearest,
        dropout: 0.0,
    };
    let model = cfg.init(&Device::flex(), 0).unwrap();
    let meta = CheckpointMeta {
        model: cfg,
        epoch: 1,
        step: 1,
        best_val_loss: 0.5,
        best_epoch: 1,
        seed: 0,
        history: History::default(),
    };
    let path = tmp.path().join("seed.ckpt");
    save_checkpoint(&path, &meta, &model, None).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(sub.join("seed00"), &bytes[8..bytes.len() - 8]).unwrap();
    std::fs::write(sub.join("seed01"), &bytes).unwrap();
}

/// One random corruption: flipped bits, a truncation, or a patched metadata value (with the
/// checksum recomputed, so the checks after it are reached).
fn mutate(bytes: &[u8], choice: u8, at: usize, value: u64) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match choice % 4 {
        0 => {
            let i = at % out.len();
            out[i] ^= (value as u8) | 1;
        }
        1 => out.truncate(at % out.len()),
        2 => {
            // Flip a byte of the payload and reseal it: burn sees damaged weights.
            let payload = out.len() - 8;
            let i = at % payload;
            out[i] ^= (value as u8) | 1;
            out.truncate(payload);
            let checksum = unet_train::checkpoint::checksum(&out);
            out.extend_from_slice(&checksum.to_le_bytes());
        }
        _ => {
            let keys = ["fms", "size", "dropout", "upsampling"];
            let key = keys[at % keys.len()];
            out = patch_meta(bytes, |meta| meta["model"][key] = value.into());
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn damaged_checkpoints_never_panic(choice in any::<u8>(), at in any::<usize>(), value in any::<u64>()) {
        let dir = tempfile::tempdir().unwrap();
        let (path, bytes) = small_checkpoint(dir.path());
        let damaged = mutate(&bytes, choice, at, value);
        let _ = decode_checkpoint(&path, &damaged, &Device::flex(), None);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_checkpoint(Path::new("arbitrary.ckpt"), &bytes, &Device::flex(), None);
        let mut sealed = b"UNETCKPT".to_vec();
        sealed.extend_from_slice(&bytes);
        let checksum = unet_train::checkpoint::checksum(&sealed);
        sealed.extend_from_slice(&checksum.to_le_bytes());
        let _ = decode_checkpoint(Path::new("sealed.ckpt"), &sealed, &Device::flex(), None);
    }
}

/// Inputs on which the `checkpoint` fuzz target once failed (`tests/fuzz_regressions/`), fed the
/// way the target feeds them (sealed with the magic and checksum unless they carry the magic):
/// each must be a clear error. The first is a record whose tensor claims `I32`, on which burn
/// panicked ("Expected float dtype, got I32").
#[test]
fn fuzz_regressions_are_clear_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/fuzz_regressions") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("regression input");
        let bytes = if data.starts_with(b"UNETCKPT") {
            data
        } else {
            let mut sealed = b"UNETCKPT".to_vec();
            sealed.extend_from_slice(&data);
            let checksum = unet_train::checkpoint::checksum(&sealed);
            sealed.extend_from_slice(&checksum.to_le_bytes());
            sealed
        };
        let err = decode_checkpoint(&path, &bytes, &Device::flex(), None)
            .err()
            .unwrap_or_else(|| panic!("{} decoded", path.display()));
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        count += 1;
    }
    assert!(count > 0, "no regression inputs in {}", dir.display());
}
