//! A PNG contact sheet of slices with their masks overlaid, because people check data by
//! looking at it.

use std::io;
use std::path::Path;

use crate::{DataError, Slice};

/// An 8-bit RGB image.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbImage {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `width * height * 3` bytes, row-major RGB.
    pub pixels: Vec<u8>,
}

const GAP: usize = 4;
const GAP_SHADE: u8 = 40;

/// Lays `slices` out in a grid of `columns` tiles, each pair of tiles side by side: the plain
/// image (left) and the image with the mask tinted red and outlined in yellow (right). Each
/// image is windowed to its 1st–99th intensity percentile.
pub fn render_grid(slices: &[Slice], columns: usize) -> RgbImage {
    let columns = columns.max(1);
    let tile_h = slices.iter().map(|s| s.height).max().unwrap_or(0);
    let tile_w = slices.iter().map(|s| s.width).max().unwrap_or(0);
    let rows = slices.len().div_ceil(columns);
    let width = columns * (2 * tile_w + GAP) + GAP;
    let height = rows * (tile_h + GAP) + GAP;
    let mut pixels = vec![GAP_SHADE; width * height * 3];
    for (i, slice) in slices.iter().enumerate() {
        let top = GAP + (i / columns) * (tile_h + GAP);
        let left = GAP + (i % columns) * (2 * tile_w + GAP);
        draw_tile(&mut pixels, width, top, left, slice);
    }
    RgbImage {
        width,
        height,
        pixels,
    }
}

fn percentile(sorted: &[f32], q: f64) -> f32 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = ((sorted.len() - 1) as f64 * q) as usize;
    sorted[pos]
}

/// The 1st–99th percentile intensity window of `image` (finite values only).
fn window(image: &[f32]) -> (f32, f32) {
    let mut sorted: Vec<f32> = image.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f32::total_cmp);
    let low = percentile(&sorted, 0.01);
    let high = percentile(&sorted, 0.99).max(low + 1e-6);
    (low, high)
}

/// The plain grey and the overlaid colour of pixel `(r, c)`: inside the mask tinted red, on its
/// edge yellow.
fn pixel_colours(
    image: &[f32],
    mask: &[f32],
    (h, w): (usize, usize),
    (r, c): (usize, usize),
    (low, high): (f32, f32),
) -> ([u8; 3], [u8; 3]) {
    let is_tumour = |r: usize, c: usize| mask[r * w + c] > 0.5;
    let v = ((image[r * w + c] - low) / (high - low)).clamp(0.0, 1.0);
    let grey = (v * 255.0 + 0.5) as u8;
    let plain = [grey, grey, grey];
    if !is_tumour(r, c) {
        return (plain, plain);
    }
    let edge = r == 0
        || c == 0
        || r + 1 == h
        || c + 1 == w
        || !is_tumour(r - 1, c)
        || !is_tumour(r + 1, c)
        || !is_tumour(r, c - 1)
        || !is_tumour(r, c + 1);
    let overlay = if edge {
        [255, 230, 0]
    } else {
        let g = f32::from(grey);
        [
            (0.45 * g + 0.55 * 255.0) as u8,
            (0.45 * g) as u8,
            (0.45 * g) as u8,
        ]
    };
    (plain, overlay)
}

fn draw_tile(pixels: &mut [u8], stride: usize, top: usize, left: usize, slice: &Slice) {
    let (h, w) = (slice.height, slice.width);
    let range = window(&slice.image);
    for r in 0..h {
        for c in 0..w {
            let (plain, overlay) = pixel_colours(&slice.image, &slice.mask, (h, w), (r, c), range);
            let put = |pixels: &mut [u8], col: usize, rgb: [u8; 3]| {
                let at = ((top + r) * stride + col) * 3;
                pixels[at..at + 3].copy_from_slice(&rgb);
            };
            put(pixels, left + c, plain);
            put(pixels, left + w + c, overlay);
        }
    }
}

/// One `height × width` image with `mask` (values > 0.5 are inside) overlaid as in the right
/// tiles of [`render_grid`]: the same window, tint and outline.
///
/// # Panics
///
/// When `image` or `mask` does not hold `height × width` values (callers check the shapes first).
pub fn render_overlay(image: &[f32], mask: &[f32], height: usize, width: usize) -> RgbImage {
    assert_eq!(image.len(), height * width, "image is not {height}x{width}");
    assert_eq!(mask.len(), height * width, "mask is not {height}x{width}");
    let range = window(image);
    let mut pixels = Vec::with_capacity(height * width * 3);
    for r in 0..height {
        for c in 0..width {
            let (_, overlay) = pixel_colours(image, mask, (height, width), (r, c), range);
            pixels.extend_from_slice(&overlay);
        }
    }
    RgbImage {
        width,
        height,
        pixels,
    }
}

/// Writes `image` as an 8-bit RGB PNG. The file appears atomically (temporary file + rename).
pub fn write_png(path: &Path, image: &RgbImage) -> Result<(), DataError> {
    Ok(artifact_io::write_atomic_with(path, |file| {
        let mut encoder = png::Encoder::new(file, image.width as u32, image.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(io::Error::other)?;
        writer
            .write_image_data(&image.pixels)
            .map_err(io::Error::other)?;
        writer.finish().map_err(io::Error::other)
    })?)
}
