//! Slice sources for the 2-D U-Net.
//!
//! Every source yields [`Slice`]s: an f32 image `[H, W]` (row-major) and a binary f32 mask of
//! the same shape. Three sources exist ([`SourceKind`]):
//!
//! - **synthetic** (default, needs no files): seeded brain-like phantoms with 0–2 tumour blobs;
//!   the same seed gives the same bytes on every machine.
//! - **noise**: the seed project's dummy data (uniform images, random masks), kept for parity and
//!   to show why noise is a bad calibration set.
//! - **decathlon**: Medical Segmentation Decathlon Task01_BrainTumour (`dataset.json` + NIfTI),
//!   FLAIR channel, per-volume z-score, centre crop, seeded split by volume.
//!
//! [`open_source`] opens one split of one source. With the default `burn` feature,
//! [`SliceDataset`] and [`SegmentationBatcher`] plug a source into burn's `DataLoader`.
#![warn(missing_docs)]

mod augment;
#[cfg(feature = "burn")]
mod burn_data;
mod decathlon;
mod error;
pub mod metrics;
pub mod nifti_io;
mod noise;
pub mod preview;
pub mod rng;
pub mod stats;
mod synthetic;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

#[cfg(feature = "burn")]
pub use burn_data::{SegmentationBatch, SegmentationBatcher, SliceDataset};
pub use decathlon::{DecathlonSource, split_volumes};
pub use error::DataError;
pub use noise::NoiseSource;
pub use synthetic::{SyntheticSource, phantom};

/// Which kind of data a source produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SourceKind {
    /// Seeded brain phantoms (the default; no files needed).
    #[default]
    Synthetic,
    /// Uniform random images with random masks (the seed project's dummy data).
    Noise,
    /// Medical Segmentation Decathlon Task01_BrainTumour from `data_path`.
    Decathlon,
}

impl SourceKind {
    /// All kinds, in display order.
    pub const ALL: [SourceKind; 3] = [
        SourceKind::Synthetic,
        SourceKind::Noise,
        SourceKind::Decathlon,
    ];

    /// The lower-case name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Synthetic => "synthetic",
            SourceKind::Noise => "noise",
            SourceKind::Decathlon => "decathlon",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error of [`SourceKind::from_str`] and [`Split::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?}, expected one of: {expected}")]
pub struct ParseNameError {
    what: &'static str,
    given: String,
    expected: &'static str,
}

impl FromStr for SourceKind {
    type Err = ParseNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SourceKind::ALL
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseNameError {
                what: "source",
                given: s.to_string(),
                expected: "synthetic, noise, decathlon",
            })
    }
}

/// A data split. Decathlon splits by volume; synthetic and noise use disjoint seed streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// Training data.
    Train,
    /// Validation data (model selection, early stopping).
    Validation,
    /// Held-out test data.
    Test,
}

impl Split {
    /// All splits.
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }

    fn salt(self) -> u64 {
        match self {
            Split::Train => 0x7472_6169_6e00_0001,
            Split::Validation => 0x7661_6c69_6400_0002,
            Split::Test => 0x7465_7374_0000_0003,
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = ParseNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Split::ALL
            .into_iter()
            .find(|split| split.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseNameError {
                what: "split",
                given: s.to_string(),
                expected: "train, validation, test",
            })
    }
}

/// Default number of synthetic/noise slices in the training split.
pub const DEFAULT_TRAIN_SLICES: usize = 2048;
/// Default number of synthetic/noise slices in the validation and test splits.
pub const DEFAULT_EVAL_SLICES: usize = 256;

/// How to build a source.
#[derive(Debug, Clone, PartialEq)]
pub struct DataConfig {
    /// Which data.
    pub source: SourceKind,
    /// Slice height and width (H = W); a positive multiple of 16. Default 128.
    pub size: usize,
    /// Seed of everything random: phantoms, noise, split, augmentation.
    pub seed: u64,
    /// The Task01_BrainTumour directory (holding `dataset.json`); decathlon only.
    pub data_path: Option<PathBuf>,
    /// Random flips and rot90 (all sources but noise), plus a random crop offset of up to 20 %
    /// of the margin (decathlon). Identical on image and mask.
    pub augment: bool,
    /// Synthetic/noise: the number of slices in each split (default 2048 train, 256 validation
    /// and test). Decathlon: a cap on the slices of each split (evenly strided), `None` = all.
    pub slices_per_split: Option<usize>,
    /// Decathlon: fraction of volumes in the validation split (default 0.075).
    pub validation_fraction: f64,
    /// Decathlon: fraction of volumes in the test split (default 0.075).
    pub test_fraction: f64,
    /// Decathlon: how many decoded volumes to keep in memory (LRU). Default 8.
    pub cache_volumes: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            source: SourceKind::Synthetic,
            size: 128,
            seed: 42,
            data_path: None,
            augment: false,
            slices_per_split: None,
            validation_fraction: 0.075,
            test_fraction: 0.075,
            cache_volumes: 8,
        }
    }
}

/// The most slices per split a [`DataConfig`] may ask for (`slices_per_split`; 0 is an empty
/// split, refused when the source opens): the loaders
/// keep an index per slice, so a larger count would only exhaust memory.
pub const MAX_SLICES_PER_SPLIT: usize = 10_000_000;

impl DataConfig {
    /// Checks the fields that do not need the file system.
    pub fn validate(&self) -> Result<(), DataError> {
        if let Some(n) = self.slices_per_split
            && n > MAX_SLICES_PER_SPLIT
        {
            return Err(DataError::BadSliceCount {
                count: n,
                max: MAX_SLICES_PER_SPLIT,
            });
        }
        if self.size == 0 || !self.size.is_multiple_of(16) {
            return Err(DataError::BadSize { size: self.size });
        }
        let fraction_ok = |f: f64| f.is_finite() && (0.0..1.0).contains(&f);
        if !fraction_ok(self.validation_fraction)
            || !fraction_ok(self.test_fraction)
            || self.validation_fraction + self.test_fraction >= 1.0
        {
            return Err(DataError::BadSplitFractions {
                validation: self.validation_fraction,
                test: self.test_fraction,
            });
        }
        Ok(())
    }

    /// The number of synthetic/noise slices in `split`.
    pub fn generated_len(&self, split: Split) -> usize {
        self.slices_per_split.unwrap_or(match split {
            Split::Train => DEFAULT_TRAIN_SLICES,
            Split::Validation | Split::Test => DEFAULT_EVAL_SLICES,
        })
    }
}

/// One 2-D training example.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    /// `[height * width]`, row-major. Z-scored for synthetic and decathlon; uniform `[0, 1)` for
    /// noise (the seed project's dummy data, kept as it was).
    pub image: Vec<f32>,
    /// `[height * width]`, row-major, every value 0.0 or 1.0.
    pub mask: Vec<f32>,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl Slice {
    /// Number of mask pixels equal to 1.
    pub fn tumour_pixels(&self) -> usize {
        self.mask.iter().filter(|&&m| m > 0.5).count()
    }
}

/// A random-access collection of slices. `get` is deterministic for a given index (and epoch).
pub trait SliceSource: Send + Sync {
    /// Number of slices.
    fn len(&self) -> usize;

    /// `true` when there are no slices (opening never returns an empty source).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slice at `index` (`index < len()`, else [`DataError::IndexOutOfRange`]).
    fn get(&self, index: usize) -> Result<Slice, DataError>;

    /// Selects the augmentation stream: with `augment` on, slice `i` of epoch `e` gets its own
    /// flips/rotation/crop, reproducible from (seed, e, i). Ignored without augmentation.
    fn set_epoch(&self, _epoch: u64) {}

    /// A short description for logs and reports.
    fn describe(&self) -> String;
}

/// Opens one split of the configured source. Errors name the offending file and the problem;
/// an empty split is an error.
pub fn open_source(cfg: &DataConfig, split: Split) -> Result<Box<dyn SliceSource>, DataError> {
    cfg.validate()?;
    let source: Box<dyn SliceSource> = match cfg.source {
        SourceKind::Synthetic => Box::new(SyntheticSource::new(cfg, split)),
        SourceKind::Noise => Box::new(NoiseSource::new(cfg, split)),
        SourceKind::Decathlon => Box::new(DecathlonSource::open(cfg, split)?),
    };
    if source.is_empty() {
        return Err(DataError::EmptySplit {
            split,
            source_name: cfg.source.name().to_string(),
            reason: "it was configured with 0 slices",
        });
    }
    tracing::debug!(source = %source.describe(), %split, len = source.len(), "opened slice source");
    Ok(source)
}

/// Population mean and standard deviation of `values`, accumulated in f64 in a fixed order
/// (NaN for an empty slice).
pub fn mean_std(values: &[f32]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| {
            let d = f64::from(v) - mean;
            d * d
        })
        .sum::<f64>()
        / n;
    (mean, libm::sqrt(var))
}

/// Z-scores `values` in place (population mean and standard deviation, accumulated in f64 in a
/// fixed order so the result is the same everywhere). A constant input becomes all zeros.
pub fn z_score(values: &mut [f32]) {
    if values.is_empty() {
        return;
    }
    let (mean, std) = mean_std(values);
    let inv = if std > 1e-12 { 1.0 / std } else { 0.0 };
    for v in values.iter_mut() {
        *v = ((f64::from(*v) - mean) * inv) as f32;
    }
}

fn check_index(index: usize, len: usize) -> Result<(), DataError> {
    if index >= len {
        Err(DataError::IndexOutOfRange { index, len })
    } else {
        Ok(())
    }
}
