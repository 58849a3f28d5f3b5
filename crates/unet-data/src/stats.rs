//! Intensity and tumour statistics over the slices of a source (for `cargo xtask data stats`).

use crate::{DataError, SliceSource};

/// Summary of a set of slices.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceStats {
    /// Slices inspected.
    pub slices: usize,
    /// Pixels inspected.
    pub pixels: usize,
    /// Mean image intensity.
    pub mean: f64,
    /// Standard deviation of the image intensity.
    pub std: f64,
    /// Minimum intensity.
    pub min: f32,
    /// Maximum intensity.
    pub max: f32,
    /// Fraction of mask pixels that are tumour (1).
    pub tumour_pixel_fraction: f64,
    /// Fraction of slices whose mask is empty.
    pub tumour_free_slice_fraction: f64,
    /// Mean intensity inside the mask (NaN when no tumour pixel was seen).
    pub tumour_mean: f64,
    /// Mean intensity outside the mask.
    pub background_mean: f64,
}

/// Statistics over the first `limit` slices of `source` (all of them when `limit` is `None`).
pub fn source_stats(
    source: &dyn SliceSource,
    limit: Option<usize>,
) -> Result<SourceStats, DataError> {
    let n = limit.map_or(source.len(), |l| l.min(source.len()));
    let (mut sum, mut sum_sq, mut pixels) = (0.0f64, 0.0f64, 0usize);
    let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
    let (mut tumour_pixels, mut tumour_sum, mut free_slices) = (0usize, 0.0f64, 0usize);
    for index in 0..n {
        let slice = source.get(index)?;
        let mut slice_tumour = 0;
        for (&value, &mask) in slice.image.iter().zip(&slice.mask) {
            let v = f64::from(value);
            sum += v;
            sum_sq += v * v;
            min = min.min(value);
            max = max.max(value);
            if mask > 0.5 {
                slice_tumour += 1;
                tumour_sum += v;
            }
        }
        pixels += slice.image.len();
        tumour_pixels += slice_tumour;
        if slice_tumour == 0 {
            free_slices += 1;
        }
    }
    let denominator = pixels.max(1) as f64;
    let mean = sum / denominator;
    let variance = (sum_sq / denominator - mean * mean).max(0.0);
    let background_pixels = pixels - tumour_pixels;
    Ok(SourceStats {
        slices: n,
        pixels,
        mean,
        std: libm::sqrt(variance),
        min,
        max,
        tumour_pixel_fraction: tumour_pixels as f64 / denominator,
        tumour_free_slice_fraction: free_slices as f64 / n.max(1) as f64,
        tumour_mean: if tumour_pixels > 0 {
            tumour_sum / tumour_pixels as f64
        } else {
            f64::NAN
        },
        background_mean: if background_pixels > 0 {
            (sum - tumour_sum) / background_pixels as f64
        } else {
            f64::NAN
        },
    })
}
