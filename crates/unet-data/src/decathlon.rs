//! Medical Segmentation Decathlon, Task01_BrainTumour: `dataset.json` lists
//! `training[].image` (4-D H×W×D×4 NIfTI, channel 0 = FLAIR) and `training[].label` (3-D).
//!
//! Opening reads only headers (all volumes are checked up front, so structural problems are
//! reported before training starts); voxels are decoded lazily, one volume at a time, into a
//! small LRU cache. Each volume is z-scored as a whole; slices are centre-cropped (or padded) to
//! the target size, with a random offset of up to 20 % of the per-side margin and random
//! flips/rot90 when augmenting. The train/validation/test split is by volume, seeded.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use crate::augment::Augmentation;
use crate::nifti_io::{VolumeHeader, read_first_volume, read_header};
use crate::rng::{Rng, mix_seed};
use crate::{DataConfig, DataError, Slice, SliceSource, Split, check_index, z_score};

#[derive(Debug, Deserialize)]
struct DatasetJson {
    training: Vec<TrainingEntry>,
}

#[derive(Debug, Deserialize)]
struct TrainingEntry {
    image: String,
    label: String,
}

/// One image/label pair, headers checked.
#[derive(Debug, Clone)]
struct VolumePair {
    image: VolumeHeader,
    label: VolumeHeader,
    /// x, y, z.
    spatial: [usize; 3],
}

/// A decoded, z-scored FLAIR volume with its binary label.
#[derive(Debug)]
struct DecodedVolume {
    image: Vec<f32>,
    label: Vec<u8>,
    /// The z-scored value of raw intensity 0, used to pad slices smaller than the target.
    background: f32,
}

/// Assigns volume indices `0..n_volumes` to train/validation/test: a seeded shuffle, then
/// `round(n * test_fraction)` test and `round(n * validation_fraction)` validation volumes
/// (each at least one when its fraction is positive and at least three volumes exist), the rest
/// training. Each returned list is sorted.
pub fn split_volumes(
    n_volumes: usize,
    seed: u64,
    validation_fraction: f64,
    test_fraction: f64,
) -> [Vec<usize>; 3] {
    let mut order: Vec<usize> = (0..n_volumes).collect();
    Rng::new(mix_seed(&[seed, 0x5911_7000])).shuffle(&mut order);
    let count = |fraction: f64| {
        let n = libm::round(n_volumes as f64 * fraction) as usize;
        if fraction > 0.0 && n_volumes >= 3 {
            n.max(1)
        } else {
            n
        }
    };
    let n_test = count(test_fraction).min(n_volumes);
    let n_validation = count(validation_fraction).min(n_volumes - n_test);
    let mut test = order[..n_test].to_vec();
    let mut validation = order[n_test..n_test + n_validation].to_vec();
    let mut train = order[n_test + n_validation..].to_vec();
    train.sort_unstable();
    validation.sort_unstable();
    test.sort_unstable();
    [train, validation, test]
}

/// One split of a Task01 dataset.
#[derive(Debug)]
pub struct DecathlonSource {
    dataset_json: PathBuf,
    volumes: Vec<VolumePair>,
    /// (volume index, z) per slice of this split.
    slices: Vec<(usize, usize)>,
    size: usize,
    seed: u64,
    split: Split,
    augment: bool,
    epoch: AtomicU64,
    cache_capacity: usize,
    cache: Mutex<VecDeque<(usize, Arc<DecodedVolume>)>>,
}

impl DecathlonSource {
    /// Opens `cfg.data_path` (a directory holding `dataset.json`, or the file itself) and selects
    /// `split`. Reads every header; decodes no voxels.
    pub fn open(cfg: &DataConfig, split: Split) -> Result<Self, DataError> {
        cfg.validate()?;
        let data_path = cfg.data_path.as_deref().ok_or(DataError::MissingDataPath)?;
        let dataset_json = if data_path.is_dir() {
            data_path.join("dataset.json")
        } else {
            data_path.to_path_buf()
        };
        if !dataset_json.is_file() {
            return Err(DataError::MissingDatasetJson { path: dataset_json });
        }
        let root = dataset_json
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let text = std::fs::read_to_string(&dataset_json).map_err(|source| DataError::Io {
            path: dataset_json.clone(),
            source,
        })?;
        let parsed: DatasetJson =
            serde_json::from_str(&text).map_err(|source| DataError::MalformedDatasetJson {
                path: dataset_json.clone(),
                source,
            })?;
        if parsed.training.is_empty() {
            return Err(DataError::NoTrainingVolumes { path: dataset_json });
        }

        // A volume listed twice would land in several splits (train and test): refuse it.
        let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for (index, entry) in parsed.training.iter().enumerate() {
            for file in [&entry.image, &entry.label] {
                let key = normalise_listed_path(file);
                if let Some(&first) = seen.get(&key) {
                    return Err(DataError::DuplicateVolume {
                        path: dataset_json.clone(),
                        file: file.clone(),
                        first,
                        second: index,
                    });
                }
                seen.insert(key, index);
            }
        }

        let mut volumes = Vec::with_capacity(parsed.training.len());
        for entry in &parsed.training {
            let image_path = root.join(&entry.image);
            let label_path = root.join(&entry.label);
            for path in [&image_path, &label_path] {
                if !path.is_file() {
                    return Err(DataError::MissingVolume {
                        path: path.clone(),
                        dataset_json: dataset_json.clone(),
                    });
                }
            }
            volumes.push(check_pair(
                read_header(&image_path)?,
                read_header(&label_path)?,
            )?);
        }

        let [train, validation, test] = split_volumes(
            volumes.len(),
            cfg.seed,
            cfg.validation_fraction,
            cfg.test_fraction,
        );
        let chosen = match split {
            Split::Train => train,
            Split::Validation => validation,
            Split::Test => test,
        };
        let mut slices: Vec<(usize, usize)> = chosen
            .iter()
            .flat_map(|&v| (0..volumes[v].spatial[2]).map(move |z| (v, z)))
            .collect();
        if let Some(cap) = cfg.slices_per_split
            && cap < slices.len()
        {
            // Evenly strided, so a cap still samples every volume of the split.
            let total = slices.len();
            slices = (0..cap).map(|k| slices[k * total / cap]).collect();
        }
        if slices.is_empty() {
            return Err(DataError::EmptySplit {
                split,
                source_name: dataset_json.display().to_string(),
                reason: if chosen.is_empty() {
                    "no volume falls into it; add volumes or change the split fractions"
                } else {
                    "the slice cap is 0"
                },
            });
        }
        tracing::info!(
            dataset = %dataset_json.display(),
            %split,
            volumes = chosen.len(),
            slices = slices.len(),
            "opened decathlon split"
        );
        Ok(Self {
            dataset_json,
            volumes,
            slices,
            size: cfg.size,
            seed: cfg.seed,
            split,
            augment: cfg.augment,
            epoch: AtomicU64::new(0),
            cache_capacity: cfg.cache_volumes.max(1),
            cache: Mutex::new(VecDeque::new()),
        })
    }

    /// Volume indices (into `dataset.json`'s `training` list) of this split, sorted.
    pub fn volume_indices(&self) -> Vec<usize> {
        let mut indices: Vec<usize> = self.slices.iter().map(|&(v, _)| v).collect();
        indices.dedup();
        indices
    }

    /// The image file of each volume of this split.
    pub fn volume_paths(&self) -> Vec<PathBuf> {
        self.volume_indices()
            .into_iter()
            .map(|v| self.volumes[v].image.path.clone())
            .collect()
    }

    fn volume(&self, index: usize) -> Result<Arc<DecodedVolume>, DataError> {
        {
            let mut cache = self
                .cache
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(pos) = cache.iter().position(|(v, _)| *v == index)
                && let Some(entry) = cache.remove(pos)
            {
                let volume = entry.1.clone();
                cache.push_front(entry);
                return Ok(volume);
            }
        }
        let pair = &self.volumes[index];
        let decoded = Arc::new(decode(pair)?);
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !cache.iter().any(|(v, _)| *v == index) {
            cache.push_front((index, decoded.clone()));
            cache.truncate(self.cache_capacity);
        }
        Ok(decoded)
    }
}

fn check_pair(image: VolumeHeader, label: VolumeHeader) -> Result<VolumePair, DataError> {
    if image.rank() != 4 {
        return Err(DataError::WrongRank {
            path: image.path.clone(),
            role: "image",
            expected: 4,
            found: image.rank(),
            shape: image.shape.clone(),
        });
    }
    if image.shape[3] == 0 {
        return Err(DataError::NoChannels {
            path: image.path.clone(),
            channels: 0,
        });
    }
    // Labels are 3-D; a 4-D label with a single channel is accepted too.
    let label_ok = label.rank() == 3 || (label.rank() == 4 && label.shape[3] == 1);
    if !label_ok {
        return Err(DataError::WrongRank {
            path: label.path.clone(),
            role: "label",
            expected: 3,
            found: label.rank(),
            shape: label.shape.clone(),
        });
    }
    if image.shape[..3] != label.shape[..3] {
        return Err(DataError::ShapeMismatch {
            image_shape: image.shape[..3].to_vec(),
            label_shape: label.shape[..3].to_vec(),
            image: image.path,
            label: label.path,
        });
    }
    let spatial = [image.shape[0], image.shape[1], image.shape[2]];
    Ok(VolumePair {
        image,
        label,
        spatial,
    })
}

fn decode(pair: &VolumePair) -> Result<DecodedVolume, DataError> {
    let mut image = read_first_volume(&pair.image)?;
    let raw_label = read_first_volume(&pair.label)?;
    // The z-scored value of raw 0: mean and std from the same pass as z_score.
    let (mean, std) = crate::mean_std(&image);
    let background = if std > 1e-12 {
        (-mean / std) as f32
    } else {
        0.0
    };
    z_score(&mut image);
    let label = raw_label.iter().map(|&v| u8::from(v > 0.0)).collect();
    Ok(DecodedVolume {
        image,
        label,
        background,
    })
}

impl SliceSource for DecathlonSource {
    fn len(&self) -> usize {
        self.slices.len()
    }

    fn get(&self, index: usize) -> Result<Slice, DataError> {
        check_index(index, self.slices.len())?;
        let (volume_index, z) = self.slices[index];
        let [nx, ny, _] = self.volumes[volume_index].spatial;
        let volume = self.volume(volume_index)?;
        let size = self.size;

        // Rows follow x and columns follow y (as `img[:, :, z]` in nibabel).
        let margin_rows = nx as i64 - size as i64;
        let margin_cols = ny as i64 - size as i64;
        let mut row0 = margin_rows.div_euclid(2);
        let mut col0 = margin_cols.div_euclid(2);
        let mut aug = Augmentation::default();
        if self.augment {
            let epoch = self.epoch.load(Ordering::Relaxed);
            let mut rng = Rng::new(mix_seed(&[
                self.seed,
                self.split.salt(),
                epoch,
                index as u64,
                0xDEC,
            ]));
            let jitter = |rng: &mut Rng, margin: i64| {
                let max_shift = (margin.max(0) / 2) / 5; // 20 % of the per-side margin
                rng.below(2 * max_shift as u64 + 1) as i64 - max_shift
            };
            row0 += jitter(&mut rng, margin_rows);
            col0 += jitter(&mut rng, margin_cols);
            aug = Augmentation::random(&mut rng);
        }

        let mut image = vec![volume.background; size * size];
        let mut mask = vec![0.0f32; size * size];
        let plane = nx * ny * z;
        for row in 0..size {
            let x = row0 + row as i64;
            if x < 0 || x >= nx as i64 {
                continue;
            }
            for col in 0..size {
                let y = col0 + col as i64;
                if y < 0 || y >= ny as i64 {
                    continue;
                }
                let voxel = plane + x as usize + nx * y as usize;
                image[row * size + col] = volume.image[voxel];
                mask[row * size + col] = f32::from(volume.label[voxel]);
            }
        }
        if aug != Augmentation::default() {
            image = aug.apply(&image, size);
            mask = aug.apply(&mask, size);
        }
        Ok(Slice {
            image,
            mask,
            height: size,
            width: size,
        })
    }

    fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }

    fn describe(&self) -> String {
        format!(
            "decathlon {} ({} split: {} volumes, {} slices of {}x{}{})",
            self.dataset_json.display(),
            self.split,
            self.volume_indices().len(),
            self.slices.len(),
            self.size,
            self.size,
            if self.augment { ", augmented" } else { "" }
        )
    }
}

/// A `dataset.json` path as a comparable key: `./imagesTr/a.nii.gz` and `imagesTr/a.nii.gz`
/// name the same file.
fn normalise_listed_path(path: &str) -> String {
    path.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}
