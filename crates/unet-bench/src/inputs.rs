//! The fixed input slices every backend sees: synthetic held-out phantoms by default, a user's
//! `.npy` files, or Decathlon test slices.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tflite_runtime::npy::{SliceKind, SliceStack, read_npy};
use unet_data::{DataConfig, SourceKind, Split, open_source};

use crate::error::BenchError;

/// Where the slices come from.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSource {
    /// Seeded synthetic phantoms of the held-out (test) split, at the model's input size.
    Synthetic {
        /// Seed of the phantoms.
        seed: u64,
    },
    /// `x.npy` (`[N,H,W]`, `[N,H,W,1]`, `[N,1,H,W]` or `[H,W]`, float32), optional masks of the
    /// same layout.
    Npy {
        /// Images.
        images: PathBuf,
        /// Ground-truth masks.
        masks: Option<PathBuf>,
    },
    /// Medical Segmentation Decathlon Task01, test split.
    Decathlon {
        /// The Task01_BrainTumour directory.
        path: PathBuf,
        /// Split seed.
        seed: u64,
    },
}

/// The slices, each `height·width` f32 values (row-major), with optional ground truth.
#[derive(Debug, Clone, Serialize)]
pub struct BenchInputs {
    /// Images (z-scored like the training data).
    #[serde(skip)]
    pub images: Vec<Vec<f32>>,
    /// Ground-truth masks (0/1), one per image, when known.
    #[serde(skip)]
    pub masks: Option<Vec<Vec<f32>>>,
    /// Slice height.
    pub height: usize,
    /// Slice width.
    pub width: usize,
    /// What they are, for the report.
    pub description: String,
}

impl BenchInputs {
    /// Number of slices.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// True when there are no slices (loading never returns that).
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Loads `count` slices of `height × width` from `source`.
    pub fn load(
        source: &InputSource,
        count: usize,
        height: usize,
        width: usize,
    ) -> Result<Self, BenchError> {
        let count = count.max(1);
        match source {
            InputSource::Synthetic { seed } => {
                from_slice_source(SourceKind::Synthetic, None, *seed, count, height, width)
            }
            InputSource::Decathlon { path, seed } => from_slice_source(
                SourceKind::Decathlon,
                Some(path.clone()),
                *seed,
                count,
                height,
                width,
            ),
            InputSource::Npy { images, masks } => {
                let image_slices = read_slices(images, SliceKind::Images, height, width)?;
                let mask_slices = match masks {
                    Some(path) => {
                        let m = read_slices(path, SliceKind::Masks, height, width)?;
                        if m.len() != image_slices.len() {
                            return Err(BenchError::BadInput {
                                path: path.clone(),
                                problem: format!(
                                    "{} masks for {} images",
                                    m.len(),
                                    image_slices.len()
                                ),
                            });
                        }
                        for (i, mask) in m.iter().enumerate() {
                            unet_data::metrics::check_mask(mask).map_err(|e| {
                                BenchError::BadInput {
                                    path: path.clone(),
                                    problem: format!("slice {i}: {e}"),
                                }
                            })?;
                        }
                        Some(m.into_iter().take(count).collect())
                    }
                    None => None,
                };
                let n = image_slices.len().min(count);
                Ok(BenchInputs {
                    images: image_slices.into_iter().take(count).collect(),
                    masks: mask_slices,
                    height,
                    width,
                    description: format!("{n} slices from {}", images.display()),
                })
            }
        }
    }
}

fn from_slice_source(
    kind: SourceKind,
    data_path: Option<PathBuf>,
    seed: u64,
    count: usize,
    height: usize,
    width: usize,
) -> Result<BenchInputs, BenchError> {
    if height != width {
        return Err(BenchError::BadInput {
            path: PathBuf::from(kind.name()),
            problem: format!(
                "the {kind} source makes square slices, the model wants {height}x{width}"
            ),
        });
    }
    let cfg = DataConfig {
        source: kind,
        size: height,
        seed,
        data_path,
        slices_per_split: if kind == SourceKind::Decathlon {
            None
        } else {
            Some(count)
        },
        ..DataConfig::default()
    };
    let source = open_source(&cfg, Split::Test)?;
    let n = source.len().min(count);
    // Evenly spaced through the split, so Decathlon slices are not all from one volume.
    let stride = (source.len() / n).max(1);
    let mut images = Vec::with_capacity(n);
    let mut masks = Vec::with_capacity(n);
    for i in 0..n {
        let slice = source.get(i * stride)?;
        images.push(slice.image);
        masks.push(slice.mask);
    }
    Ok(BenchInputs {
        images,
        masks: Some(masks),
        height,
        width,
        description: format!(
            "{n} held-out slices of {} ({height}x{width}, seed {seed})",
            source.describe()
        ),
    })
}

/// Reads `height × width` slices from an `.npy` (the layouts of [`SliceStack`]).
fn read_slices(
    path: &Path,
    kind: SliceKind,
    height: usize,
    width: usize,
) -> Result<Vec<Vec<f32>>, BenchError> {
    let bytes = std::fs::read(path).map_err(|e| BenchError::io(path, e))?;
    let bad = |problem: String| BenchError::BadInput {
        path: path.to_path_buf(),
        problem,
    };
    let array = read_npy(&bytes).map_err(|e| bad(e.to_string()))?;
    let stack = SliceStack::from_array(array, kind, Some((height, width))).map_err(bad)?;
    if kind == SliceKind::Images && stack.slices.iter().all(|s| s.iter().all(|&v| v == 0.0)) {
        return Err(bad(
            "every slice is all zeros; benchmark on real slices".into()
        ));
    }
    Ok(stack.slices)
}
