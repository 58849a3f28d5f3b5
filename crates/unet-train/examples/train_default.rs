//! The default training run of `cargo xtask train` (synthetic data, 8-minute budget), without the
//! xtask: `cargo run --release -p unet-train --example train_default -- [out_dir]`.

use unet_train::{ProgressMode, TrainConfig, train};

fn main() -> Result<(), unet_train::TrainError> {
    // As `cargo xtask` does: keep freed tensors' memory for the next step.
    unet_train::allocator::retain_freed_memory();
    let out_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "artifacts/train".to_string());
    let cfg = TrainConfig {
        out_dir: out_dir.into(),
        progress: ProgressMode::Lines,
        command_line: std::env::args().collect(),
        ..TrainConfig::default()
    };
    let trained = train(&cfg)?;
    let best = trained
        .history
        .epochs
        .iter()
        .find(|e| e.epoch == trained.best_epoch);
    if let Some(best) = best {
        println!(
            "best epoch {}: val loss {:.4}, val Dice {:.3}, soft Dice {:.3}, after {:.0} s of training",
            best.epoch, best.val_loss, best.val_dice, best.val_soft_dice, best.train_seconds
        );
    }
    Ok(())
}
