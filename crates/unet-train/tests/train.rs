//! Training-loop tests on tiny models (32×32, fms 4, a few steps each).

use std::path::Path;

use burn::tensor::Device;
use unet_data::{DataConfig, SourceKind};
use unet_train::checkpoint::read_meta;
use unet_train::{
    History, ProgressMode, TrainConfig, TrainError, UNetConfig, Upsampling, load_checkpoint, train,
};

fn tiny(out_dir: &Path) -> TrainConfig {
    TrainConfig {
        model: UNetConfig {
            fms: 4,
            size: 32,
            upsampling: Upsampling::TransposedConv,
            dropout: 0.2,
        },
        data: DataConfig {
            source: SourceKind::Synthetic,
            size: 32,
            seed: 3,
            slices_per_split: Some(16),
            ..DataConfig::default()
        },
        batch_size: 4,
        epochs: 3,
        steps_per_epoch: Some(2),
        val_slices: Some(8),
        patience: 0,
        max_train_time: None,
        seed: 11,
        out_dir: out_dir.to_path_buf(),
        progress: ProgressMode::Hidden,
        command_line: vec!["test".into(), "--seed".into(), "11".into()],
        git_commit: Some("0123abc".into()),
        ..TrainConfig::default()
    }
}

/// Loss and Dice values of a history, without the timings.
fn numbers(history: &History) -> Vec<[f64; 6]> {
    history
        .epochs
        .iter()
        .map(|e| {
            [
                e.train_loss,
                e.train_dice,
                e.train_soft_dice,
                e.val_loss,
                e.val_dice,
                e.val_soft_dice,
            ]
        })
        .collect()
}

/// Equal up to JSON's float round trip (serde_json may change the last digit).
fn assert_close(a: &[[f64; 6]], b: &[[f64; 6]]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        for (u, v) in x.iter().zip(y) {
            assert!((u - v).abs() <= 1e-12 * u.abs().max(1.0), "{a:?} vs {b:?}");
        }
    }
}

#[test]
fn training_writes_every_artifact_and_is_deterministic_from_the_seed() {
    let dir_a = tempfile::tempdir().expect("tempdir");
    let dir_b = tempfile::tempdir().expect("tempdir");
    let a = train(&tiny(dir_a.path())).expect("run a");
    let b = train(&tiny(dir_b.path())).expect("run b");
    assert_eq!(a.history.epochs.len(), 3);
    assert_eq!(numbers(&a.history), numbers(&b.history));
    assert!(
        a.history
            .epochs
            .iter()
            .all(|e| e.train_loss.is_finite() && e.val_loss.is_finite())
    );
    for name in [
        "model.ckpt",
        "last.ckpt",
        "config.json",
        "history.json",
        "curves.svg",
    ] {
        assert!(dir_a.path().join(name).is_file(), "{name} missing");
    }
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir_a.path().join("config.json")).expect("read"))
            .expect("json");
    assert_eq!(config["seed"], 11);
    assert_eq!(config["model"]["fms"], 4);
    assert_eq!(config["data"]["source"], "synthetic");
    assert_eq!(config["git_commit"], "0123abc");
    assert_eq!(config["command_line"][1], "--seed");
    let history: History =
        serde_json::from_slice(&std::fs::read(dir_a.path().join("history.json")).expect("read"))
            .expect("json");
    assert_close(&numbers(&history), &numbers(&a.history));
    let svg = std::fs::read_to_string(dir_a.path().join("curves.svg")).expect("svg");
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));
    // The best checkpoint holds the best epoch.
    let meta = read_meta(&dir_a.path().join("model.ckpt")).expect("meta");
    assert_eq!(meta.best_epoch, a.best_epoch);
    let best = a
        .history
        .epochs
        .iter()
        .map(|e| e.val_loss)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(a.best_val_loss, best);
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir_a.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_resumed_run_continues_exactly_like_an_uninterrupted_one() {
    let full_dir = tempfile::tempdir().expect("tempdir");
    let split_dir = tempfile::tempdir().expect("tempdir");
    let full = train(&tiny(full_dir.path())).expect("full run");
    let first = train(&TrainConfig {
        epochs: 2,
        ..tiny(split_dir.path())
    })
    .expect("first part");
    assert_eq!(first.history.epochs.len(), 2);
    let resumed = train(&TrainConfig {
        resume: Some(split_dir.path().join("last.ckpt")),
        ..tiny(split_dir.path())
    })
    .expect("resumed part");
    assert_eq!(resumed.history.epochs.len(), 3);
    // The first two epochs come back from the checkpoint's JSON; the third is computed again.
    assert_close(&numbers(&resumed.history), &numbers(&full.history));
    assert_eq!(
        resumed.history.epochs[2].val_loss,
        full.history.epochs[2].val_loss
    );
}

#[test]
fn early_stopping_ends_the_run_after_patience_epochs_without_improvement() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A learning rate of 1e-30 leaves the weights unchanged, so the validation loss never
    // improves after the first epoch.
    let cfg = TrainConfig {
        epochs: 10,
        patience: 2,
        learning_rate: 1e-30,
        ..tiny(dir.path())
    };
    let trained = train(&cfg).expect("run");
    assert_eq!(
        trained.history.epochs.len(),
        3,
        "{:?}",
        trained.history.stop_reason
    );
    assert!(trained.history.stop_reason.contains("early stopping"));
    assert_eq!(trained.best_epoch, 1);
}

#[test]
fn non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    // An absurd learning rate blows the weights up after the first update.
    let cfg = TrainConfig {
        epochs: 6,
        steps_per_epoch: Some(1),
        learning_rate: 1e30,
        ..tiny(dir.path())
    };
    match train(&cfg) {
        Err(TrainError::NonFiniteLoss {
            step,
            epoch,
            last_good,
            ..
        }) => {
            assert!(step >= 2, "the first step starts from sane weights");
            assert_eq!(epoch as u64, step, "one step per epoch");
            let last_good = last_good.expect("an epoch completed before the failure");
            let meta = read_meta(&last_good).expect("the last good checkpoint still loads");
            assert_eq!(meta.epoch, epoch - 1);
            let message = TrainError::NonFiniteLoss {
                step,
                epoch,
                batch: 1,
                loss: f32::NAN,
                last_good: Some(last_good),
            }
            .to_string();
            assert!(message.contains(&format!("step {step}")), "{message}");
        }
        Ok(_) => panic!("training with lr 1e30 should not finish"),
        Err(other) => panic!("unexpected error: {other}"),
    }
}

#[test]
fn an_output_directory_that_cannot_be_created_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let cfg = tiny(&file.join("train"));
    match train(&cfg) {
        Err(err @ TrainError::OutputNotWritable { .. }) => {
            assert!(err.to_string().contains("not-a-dir"), "{err}");
        }
        other => panic!("expected OutputNotWritable, got {:?}", other.err()),
    }
}

#[test]
fn bad_checkpoints_are_refused_with_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = TrainConfig {
        epochs: 1,
        ..tiny(dir.path())
    };
    train(&cfg).expect("run");
    let good = dir.path().join("model.ckpt");
    let device = Device::flex();

    // A different fms.
    let other = UNetConfig {
        fms: 8,
        ..cfg.model.clone()
    };
    match load_checkpoint(&good, &device, Some(&other)) {
        Err(err @ TrainError::CheckpointMismatch { .. }) => {
            let text = err.to_string();
            assert!(text.contains("fms=4") && text.contains("fms=8"), "{text}");
        }
        other => panic!("expected CheckpointMismatch, got {:?}", other.err()),
    }
    // A different size.
    let other = UNetConfig {
        size: 64,
        ..cfg.model.clone()
    };
    assert!(matches!(
        load_checkpoint(&good, &device, Some(&other)),
        Err(TrainError::CheckpointMismatch { .. })
    ));
    // Resuming with a different fms goes through the same check.
    let resume = TrainConfig {
        model: UNetConfig {
            fms: 8,
            ..cfg.model.clone()
        },
        resume: Some(good.clone()),
        ..tiny(dir.path())
    };
    assert!(matches!(
        train(&resume),
        Err(TrainError::CheckpointMismatch { .. })
    ));

    let bytes = std::fs::read(&good).expect("read");
    // Truncated.
    let truncated = dir.path().join("truncated.ckpt");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    match load_checkpoint(&truncated, &device, None) {
        Err(err @ TrainError::TruncatedCheckpoint { .. }) => {
            assert!(err.to_string().contains("truncated.ckpt"), "{err}");
        }
        other => panic!("expected TruncatedCheckpoint, got {:?}", other.err()),
    }
    // One flipped byte in the weights.
    let mut corrupt = bytes.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0x40;
    let corrupt_path = dir.path().join("corrupt.ckpt");
    std::fs::write(&corrupt_path, &corrupt).expect("write");
    match load_checkpoint(&corrupt_path, &device, None) {
        Err(err @ TrainError::CorruptCheckpoint { .. }) => {
            assert!(err.to_string().contains("checksum"), "{err}");
        }
        other => panic!("expected CorruptCheckpoint, got {:?}", other.err()),
    }
    // Not a checkpoint at all.
    let junk = dir.path().join("junk.ckpt");
    std::fs::write(&junk, b"hello, this is not a checkpoint").expect("write");
    assert!(matches!(
        load_checkpoint(&junk, &device, None),
        Err(TrainError::CorruptCheckpoint { .. })
    ));
    // Missing.
    assert!(matches!(
        load_checkpoint(&dir.path().join("missing.ckpt"), &device, None),
        Err(TrainError::Io { .. })
    ));
    // The good one loads and reproduces the configuration.
    let loaded = load_checkpoint(&good, &device, Some(&cfg.model)).expect("good checkpoint");
    assert_eq!(loaded.model.config(), cfg.model);
}

/// Bytes of every file in `dir` (not recursive), by name.
fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

#[test]
fn a_fresh_run_into_a_used_directory_is_refused_unless_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = TrainConfig {
        epochs: 1,
        ..tiny(dir.path())
    };
    train(&cfg).expect("first run");
    let before = snapshot(dir.path());
    assert!(before.contains_key("model.ckpt"));
    let err = match train(&TrainConfig {
        seed: 12,
        ..cfg.clone()
    }) {
        Err(err) => err,
        Ok(_) => panic!("a second fresh run must not replace the first one's checkpoints"),
    };
    assert!(matches!(err, TrainError::RunDirInUse { .. }), "{err:?}");
    let message = err.to_string();
    for needle in ["model.ckpt", "--resume", "--overwrite"] {
        assert!(message.contains(needle), "{message}");
    }
    assert_eq!(
        snapshot(dir.path()),
        before,
        "nothing in the run directory changed"
    );

    let again = train(&TrainConfig {
        seed: 12,
        overwrite: true,
        ..cfg
    })
    .expect("--overwrite starts over");
    assert_eq!(again.best_epoch, 1);
    assert_ne!(snapshot(dir.path())["model.ckpt"], before["model.ckpt"]);
}

#[test]
fn a_run_that_fails_before_its_first_checkpoint_leaves_config_and_checkpoints_as_they_were() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = TrainConfig {
        epochs: 1,
        ..tiny(dir.path())
    };
    train(&cfg).expect("first run");
    let before = snapshot(dir.path());
    // Diverges at the second step of the first epoch: no checkpoint of the new run exists.
    let failing = TrainConfig {
        epochs: 2,
        steps_per_epoch: Some(2),
        learning_rate: 1e30,
        seed: 99,
        overwrite: true,
        ..cfg
    };
    match train(&failing) {
        Err(TrainError::NonFiniteLoss { epoch: 1, .. }) => {}
        other => panic!("expected a NaN loss in epoch 1, got {:?}", other.err()),
    }
    let after = snapshot(dir.path());
    assert_eq!(
        after["config.json"], before["config.json"],
        "config.json still describes model.ckpt"
    );
    assert_eq!(after["model.ckpt"], before["model.ckpt"]);
    assert_eq!(after, before, "no file changed, none left behind");
}

#[test]
fn resuming_into_another_directory_keeps_the_best_model_when_no_epoch_improves() {
    let first_dir = tempfile::tempdir().expect("tempdir");
    let next_dir = tempfile::tempdir().expect("tempdir");
    let cfg = TrainConfig {
        epochs: 2,
        ..tiny(first_dir.path())
    };
    let first = train(&cfg).expect("first run");
    // A learning rate this small leaves the weights as they were: the resumed epoch cannot
    // beat the best validation loss.
    let resumed = train(&TrainConfig {
        epochs: 3,
        learning_rate: 1e-30,
        resume: Some(first_dir.path().join("last.ckpt")),
        out_dir: next_dir.path().to_path_buf(),
        ..cfg.clone()
    })
    .expect("a resumed run whose epochs do not improve still ends with a best model");
    assert_eq!(resumed.best_epoch, first.best_epoch);
    let best = next_dir.path().join("model.ckpt");
    assert_eq!(
        std::fs::read(&best).expect("model.ckpt in the new directory"),
        std::fs::read(first_dir.path().join("model.ckpt")).expect("the first run's best"),
    );
    load_checkpoint(&best, &Device::flex(), Some(&cfg.model)).expect("loads");
    assert!(next_dir.path().join("config.json").is_file());
}
