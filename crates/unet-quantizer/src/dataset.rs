//! Calibration and evaluation sets: loading (slice sources, `.npy`), shape checks, statistics,
//! and the check that guards against calibrating on noise.

use std::path::Path;

use serde::Serialize;
use tflite_runtime::npy::{SliceKind, SliceStack, read_npy};
use unet_data::{DataConfig, Split, open_source};

use crate::error::QuantError;

/// Images for calibration (or any image-only set): each `height·width` values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    /// Where the images came from (for reports).
    pub description: String,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// The images.
    pub images: Vec<Vec<f32>>,
}

/// Images with ground-truth masks (for the held-out evaluation).
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSet {
    /// The images.
    pub images: ImageSet,
    /// Binary masks, one per image, same size.
    pub masks: Vec<Vec<f32>>,
}

/// Takes `count` slices of one split of a slice source (the first `count`; the sources are
/// deterministic by seed). Errors if the source has fewer.
///
/// Errors name the set by its split: `calibration` (train), `selection` (validation) or
/// `evaluation` (test).
pub fn from_source(cfg: &DataConfig, split: Split, count: usize) -> Result<EvalSet, QuantError> {
    let what = match split {
        Split::Train => "calibration",
        Split::Validation => "selection",
        Split::Test => "evaluation",
    };
    if count == 0 {
        return Err(QuantError::BadData {
            what,
            detail: "0 samples requested; at least 1 is needed".into(),
        });
    }
    let source = open_source(cfg, split)?;
    if source.len() < count {
        return Err(QuantError::BadData {
            what,
            detail: format!(
                "{count} samples requested but the {split} split of {} has only {}",
                source.describe(),
                source.len()
            ),
        });
    }
    // Slices are independent (`get` is deterministic per index): read them on every core.
    let threads = crate::calibrate::default_threads().min(count);
    let per = count.div_ceil(threads);
    let source = source.as_ref();
    let parts: Vec<Result<Vec<unet_data::Slice>, unet_data::DataError>> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..count)
                .step_by(per)
                .map(|first| {
                    scope.spawn(move || {
                        (first..(first + per).min(count))
                            .map(|i| source.get(i))
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
    let mut images = Vec::with_capacity(count);
    let mut masks = Vec::with_capacity(count);
    let (mut height, mut width) = (0, 0);
    for part in parts {
        for slice in part? {
            (height, width) = (slice.height, slice.width);
            images.push(slice.image);
            masks.push(slice.mask);
        }
    }
    Ok(EvalSet {
        images: ImageSet {
            description: format!(
                "{} ({split} split, first {count} slices)",
                source.describe()
            ),
            height,
            width,
            images,
        },
        masks,
    })
}

/// The slices of the `.npy` at `path` (layouts of [`SliceStack`]), errors naming the file.
fn read_stack(
    path: &Path,
    kind: SliceKind,
    size: Option<(usize, usize)>,
) -> Result<SliceStack, QuantError> {
    let npy_err = |detail: String| QuantError::Npy {
        path: path.to_path_buf(),
        detail,
    };
    let bytes = std::fs::read(path).map_err(|source| QuantError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let array = read_npy(&bytes).map_err(|e| npy_err(e.to_string()))?;
    SliceStack::from_array(array, kind, size).map_err(npy_err)
}

/// Reads float32 slices from a `.npy` (`[H,W]`, `[N,H,W]`, `[N,H,W,1]` or `[N,1,H,W]`; at most
/// `limit` slices).
pub fn images_from_npy(path: &Path, limit: Option<usize>) -> Result<ImageSet, QuantError> {
    let stack = read_stack(path, SliceKind::Images, None)?;
    let n = stack.slices.len();
    if let Some(l) = limit
        && l > n
    {
        return Err(QuantError::Npy {
            path: path.to_path_buf(),
            detail: format!("{l} samples requested but the file holds only {n} slices"),
        });
    }
    let take = limit.map_or(n, |l| l.min(n));
    let (h, w) = (stack.height, stack.width);
    let mut images = stack.slices;
    images.truncate(take);
    Ok(ImageSet {
        description: format!("{} ({take} of {n} slices, {h}x{w})", path.display()),
        height: h,
        width: w,
        images,
    })
}

/// Reads 0/1 masks for `images` from a `.npy` (the layouts of [`images_from_npy`]; float32 or
/// an integer dtype).
pub fn masks_from_npy(path: &Path, images: &ImageSet) -> Result<Vec<Vec<f32>>, QuantError> {
    let npy_err = |detail: String| QuantError::Npy {
        path: path.to_path_buf(),
        detail,
    };
    let stack = read_stack(path, SliceKind::Masks, Some((images.height, images.width)))?;
    if stack.slices.len() < images.images.len() {
        return Err(npy_err(format!(
            "{} masks for {} images",
            stack.slices.len(),
            images.images.len()
        )));
    }
    let mut masks = stack.slices;
    masks.truncate(images.images.len());
    for (i, mask) in masks.iter().enumerate() {
        unet_data::metrics::check_mask(mask).map_err(|e| npy_err(format!("slice {i}: {e}")))?;
    }
    Ok(masks)
}

/// Checks that every image has `expected` values (the model input's `H·W·C`).
pub fn check_fits(
    set: &ImageSet,
    what: &'static str,
    expected: usize,
    model_shape: &str,
) -> Result<(), QuantError> {
    if set.images.is_empty() {
        return Err(QuantError::BadData {
            what,
            detail: format!("{}: no slices", set.description),
        });
    }
    for (i, image) in set.images.iter().enumerate() {
        if image.len() != expected {
            return Err(QuantError::BadData {
                what,
                detail: format!(
                    "{}: slice {i} has {} values ({}x{}), but the model input {model_shape} needs {expected}; \
                     use slices of the size the model was trained at",
                    set.description,
                    image.len(),
                    set.height,
                    set.width
                ),
            });
        }
        if image.iter().any(|v| !v.is_finite()) {
            return Err(QuantError::BadData {
                what,
                detail: format!(
                    "{}: slice {i} contains NaN or infinite values",
                    set.description
                ),
            });
        }
    }
    Ok(())
}

/// Intensity statistics of a set of images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DataStats {
    /// Slices.
    pub samples: usize,
    /// Mean intensity.
    pub mean: f64,
    /// Standard deviation of the intensity.
    pub std: f64,
    /// 0.1st percentile.
    pub p001: f32,
    /// 99.9th percentile.
    pub p999: f32,
    /// Correlation of horizontally and vertically neighbouring pixels. Images of anatomy are
    /// smooth (close to 1); independent noise is close to 0.
    pub neighbour_correlation: f64,
}

/// Statistics of `set`.
pub fn data_stats(set: &ImageSet) -> DataStats {
    let (h, w) = (set.height, set.width);
    let (mut sum, mut sum_sq, mut n) = (0.0f64, 0.0f64, 0usize);
    for image in &set.images {
        for &v in image {
            sum += f64::from(v);
            sum_sq += f64::from(v) * f64::from(v);
        }
        n += image.len();
    }
    let n_f = n.max(1) as f64;
    let mean = sum / n_f;
    let var = (sum_sq / n_f - mean * mean).max(0.0);
    // Neighbour correlation about the global mean.
    let (mut cov, mut pairs) = (0.0f64, 0usize);
    for image in &set.images {
        if image.len() != h * w {
            continue;
        }
        for y in 0..h {
            for x in 0..w {
                let a = f64::from(image[y * w + x]) - mean;
                if x + 1 < w {
                    cov += a * (f64::from(image[y * w + x + 1]) - mean);
                    pairs += 1;
                }
                if y + 1 < h {
                    cov += a * (f64::from(image[(y + 1) * w + x]) - mean);
                    pairs += 1;
                }
            }
        }
    }
    let neighbour_correlation = if var > 0.0 && pairs > 0 {
        cov / pairs as f64 / var
    } else {
        0.0
    };
    // Percentiles from a sorted sample (every 7th value keeps this cheap).
    let mut sample: Vec<f32> = set
        .images
        .iter()
        .flat_map(|i| i.iter().step_by(7).copied())
        .collect();
    sample.sort_by(f32::total_cmp);
    let pick = |f: f64| -> f32 {
        if sample.is_empty() {
            0.0
        } else {
            sample[((sample.len() - 1) as f64 * f).round() as usize]
        }
    };
    DataStats {
        samples: set.images.len(),
        mean,
        std: var.sqrt(),
        p001: pick(0.001),
        p999: pick(0.999),
        neighbour_correlation,
    }
}

/// Neighbour correlation below which a calibration set counts as noise-like.
pub const NOISE_CORRELATION: f64 = 0.3;

/// Problems of a calibration set, each a sentence that says what it will do to accuracy.
/// `reference` describes in-distribution data (the held-out set or the training source).
pub fn check_calibration(calib: &DataStats, reference: Option<&DataStats>) -> Vec<String> {
    let mut problems = Vec::new();
    let consequence = "activation ranges will be fitted to the wrong data: real slices then saturate or lose \
                       resolution in int8, and Dice can collapse (calibrating this U-Net on np.random.rand noise \
                       gave int8 Dice 0.07 against 0.68 in fp32)";
    if calib.neighbour_correlation < NOISE_CORRELATION {
        let reference_corr = reference.map_or(String::new(), |r| {
            format!(", in-distribution data {:.2}", r.neighbour_correlation)
        });
        problems.push(format!(
            "the calibration data looks like noise (neighbouring-pixel correlation {:.2}{reference_corr}; \
             anatomy images are smooth, typically > 0.5): {consequence}",
            calib.neighbour_correlation
        ));
    }
    if let Some(r) = reference {
        let spread = r.std.max(1e-6);
        let mean_shift = (calib.mean - r.mean).abs() / spread;
        let std_ratio = calib.std / spread;
        let range_ratio =
            f64::from(calib.p999 - calib.p001) / f64::from((r.p999 - r.p001).max(1e-6));
        if mean_shift > 0.5
            || !(0.5..=2.0).contains(&std_ratio)
            || !(0.5..=2.0).contains(&range_ratio)
        {
            problems.push(format!(
                "the calibration data is far from the in-distribution statistics (mean {:.3} vs {:.3}, std {:.3} vs \
                 {:.3}, 0.1–99.9 % range [{:.2}, {:.2}] vs [{:.2}, {:.2}]): {consequence}",
                calib.mean, r.mean, calib.std, r.std, calib.p001, calib.p999, r.p001, r.p999
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(images: Vec<Vec<f32>>, h: usize, w: usize) -> ImageSet {
        ImageSet {
            description: "test".into(),
            height: h,
            width: w,
            images,
        }
    }

    #[test]
    fn smooth_images_pass_and_noise_is_flagged() {
        let (h, w) = (32, 32);
        let smooth: Vec<Vec<f32>> = (0..4)
            .map(|k| {
                (0..h * w)
                    .map(|i| ((i / w) as f32 / 5.0 + k as f32).sin() + ((i % w) as f32 / 7.0).cos())
                    .collect()
            })
            .collect();
        let mut state = 12345u64;
        let noise: Vec<Vec<f32>> = (0..4)
            .map(|_| {
                (0..h * w)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        (state >> 40) as f32 / (1u64 << 24) as f32
                    })
                    .collect()
            })
            .collect();
        let s = data_stats(&set(smooth, h, w));
        let n = data_stats(&set(noise, h, w));
        assert!(s.neighbour_correlation > 0.8, "{}", s.neighbour_correlation);
        assert!(
            n.neighbour_correlation.abs() < 0.1,
            "{}",
            n.neighbour_correlation
        );
        assert!(check_calibration(&s, Some(&s)).is_empty());
        let problems = check_calibration(&n, Some(&s));
        assert!(
            problems.iter().any(|p| p.contains("looks like noise")),
            "{problems:?}"
        );
    }
}
