//! Tiny Task01-style fixtures written by the tests themselves.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use unet_data::nifti_io::{NiftiData, write_nifti};

/// Fixture volume geometry: margins of 20 and 16 pixels around a 32-pixel crop, so the
/// augmentation jitter (20 % of the per-side margin) is ±2 rows and ±1 column.
pub const NX: usize = 52;
pub const NY: usize = 48;
pub const NZ: usize = 5;
pub const CHANNELS: usize = 4;
pub const SIZE: usize = 32;

/// Channel-0 intensity of voxel (x, y, z) of volume `v`: all distinct, so a pixel identifies
/// its voxel.
pub fn flair(v: usize, x: usize, y: usize, z: usize) -> f32 {
    (1 + x + NX * y + NX * NY * z + 7 * v) as f32
}

/// Raw label: 0, 1, 2 and 4 like BraTS (anything > 0 is tumour).
pub fn raw_label(x: usize, y: usize, z: usize) -> u8 {
    match (x + 2 * y + z) % 7 {
        0 => 2,
        1 => 4,
        2 => 1,
        _ => 0,
    }
}

pub fn image_data(v: usize, shape: [usize; 3], channels: usize) -> Vec<f32> {
    let [nx, ny, nz] = shape;
    let mut data = Vec::with_capacity(nx * ny * nz * channels);
    for c in 0..channels {
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    data.push(if c == 0 {
                        flair(v, x, y, z)
                    } else {
                        -1000.0 * c as f32
                    });
                }
            }
        }
    }
    data
}

pub fn label_data(shape: [usize; 3]) -> Vec<u8> {
    let [nx, ny, nz] = shape;
    let mut data = Vec::with_capacity(nx * ny * nz);
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                data.push(raw_label(x, y, z));
            }
        }
    }
    data
}

/// Writes `n_volumes` image/label pairs plus dataset.json into `dir`; `ext` is "nii" or "nii.gz".
pub fn write_dataset(dir: &Path, n_volumes: usize, ext: &str) -> Vec<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir.join("imagesTr")).unwrap();
    std::fs::create_dir_all(dir.join("labelsTr")).unwrap();
    let shape = [NX, NY, NZ];
    let mut pairs = Vec::new();
    let mut entries = Vec::new();
    for v in 0..n_volumes {
        let image = dir.join(format!("imagesTr/BRATS_{v:03}.{ext}"));
        let label = dir.join(format!("labelsTr/BRATS_{v:03}.{ext}"));
        write_nifti(
            &image,
            &[NX, NY, NZ, CHANNELS],
            NiftiData::F32(&image_data(v, shape, CHANNELS)),
        )
        .unwrap();
        write_nifti(&label, &[NX, NY, NZ], NiftiData::U8(&label_data(shape))).unwrap();
        entries.push(format!(
            r#"{{"image": "./imagesTr/BRATS_{v:03}.{ext}", "label": "./labelsTr/BRATS_{v:03}.{ext}"}}"#
        ));
        pairs.push((image, label));
    }
    write_dataset_json(dir, &entries.join(",\n"));
    pairs
}

pub fn write_dataset_json(dir: &Path, entries: &str) {
    let json = format!(
        r#"{{"name": "BRATS", "modality": {{"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"}},
  "numTraining": 0, "training": [{entries}], "test": []}}"#
    );
    std::fs::write(dir.join("dataset.json"), json).unwrap();
}

/// Channel 0 of volume `v`, z-scored over the whole volume (independent re-implementation).
pub fn z_scored_volume(v: usize) -> Vec<f64> {
    let raw: Vec<f64> = image_data(v, [NX, NY, NZ], 1)
        .iter()
        .map(|&x| f64::from(x))
        .collect();
    let n = raw.len() as f64;
    let mean = raw.iter().sum::<f64>() / n;
    let std = (raw.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
    raw.iter().map(|x| (x - mean) / std).collect()
}

/// The un-augmented crop of slice z of volume `v` with its top-left at (row0, col0), rows = x.
pub fn expected_crop(v: usize, z: usize, row0: i64, col0: i64) -> (Vec<f64>, Vec<f32>) {
    let volume = z_scored_volume(v);
    let mut image = vec![f64::NAN; SIZE * SIZE];
    let mut mask = vec![0.0; SIZE * SIZE];
    for r in 0..SIZE {
        for c in 0..SIZE {
            let (x, y) = (row0 + r as i64, col0 + c as i64);
            assert!(x >= 0 && y >= 0 && (x as usize) < NX && (y as usize) < NY);
            let (x, y) = (x as usize, y as usize);
            image[r * SIZE + c] = volume[x + NX * y + NX * NY * z];
            mask[r * SIZE + c] = if raw_label(x, y, z) > 0 { 1.0 } else { 0.0 };
        }
    }
    (image, mask)
}

/// The 8 symmetries of the square applied to a `SIZE`×`SIZE` buffer (independent of the crate).
pub fn dihedral<T: Copy>(data: &[T], k: usize) -> Vec<T> {
    let last = SIZE - 1;
    let mut out = data.to_vec();
    for r in 0..SIZE {
        for c in 0..SIZE {
            let (sr, sc) = match k {
                0 => (r, c),
                1 => (c, last - r),
                2 => (last - r, last - c),
                3 => (last - c, r),
                4 => (r, last - c),
                5 => (last - r, c),
                6 => (c, r),
                _ => (last - c, last - r),
            };
            out[r * SIZE + c] = data[sr * SIZE + sc];
        }
    }
    out
}
