//! Every bad input gives a clear error naming the file and the problem, never a panic.

mod common;

use std::path::Path;

use common::*;
use unet_data::nifti_io::{NiftiData, write_nifti};
use unet_data::{DataConfig, DataError, SourceKind, Split, open_source};

fn config(dir: &Path) -> DataConfig {
    DataConfig {
        source: SourceKind::Decathlon,
        size: SIZE,
        seed: 7,
        data_path: Some(dir.to_path_buf()),
        ..DataConfig::default()
    }
}

fn open_err(dir: &Path) -> DataError {
    match open_source(&config(dir), Split::Train) {
        Ok(_) => panic!("opening {} should fail", dir.display()),
        Err(err) => err,
    }
}

/// Reads every slice of every split and returns the first error.
fn first_read_err(dir: &Path) -> DataError {
    for split in Split::ALL {
        let source = open_source(&config(dir), split).unwrap();
        for i in 0..source.len() {
            if let Err(err) = source.get(i) {
                return err;
            }
        }
    }
    panic!("reading {} should fail", dir.display());
}

fn assert_mentions(err: &DataError, needles: &[&str]) {
    let message = err.to_string();
    for needle in needles {
        assert!(
            message.contains(needle),
            "error {message:?} should mention {needle:?}"
        );
    }
}

#[test]
fn missing_dataset_json() {
    let dir = tempfile::tempdir().unwrap();
    let err = open_err(dir.path());
    assert!(
        matches!(err, DataError::MissingDatasetJson { .. }),
        "{err:?}"
    );
    assert_mentions(&err, &["dataset.json", "not found"]);
}

#[test]
fn decathlon_without_data_path() {
    let cfg = DataConfig {
        source: SourceKind::Decathlon,
        ..DataConfig::default()
    };
    let err = open_source(&cfg, Split::Train).err().unwrap();
    assert!(matches!(err, DataError::MissingDataPath), "{err:?}");
}

#[test]
fn malformed_dataset_json() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dataset.json"),
        "{\"training\": [ {\"image\": 3 ",
    )
    .unwrap();
    let err = open_err(dir.path());
    assert!(
        matches!(err, DataError::MalformedDatasetJson { .. }),
        "{err:?}"
    );
    assert_mentions(&err, &["dataset.json", "malformed", "line"]);

    // Valid JSON, but no `training[].label`.
    std::fs::write(
        dir.path().join("dataset.json"),
        r#"{"training": [{"image": "a.nii"}]}"#,
    )
    .unwrap();
    let err = open_err(dir.path());
    assert!(
        matches!(err, DataError::MalformedDatasetJson { .. }),
        "{err:?}"
    );
    assert_mentions(&err, &["dataset.json", "label"]);

    // No training volumes at all.
    write_dataset_json(dir.path(), "");
    let err = open_err(dir.path());
    assert!(
        matches!(err, DataError::NoTrainingVolumes { .. }),
        "{err:?}"
    );
    assert_mentions(&err, &["dataset.json", "no training volumes"]);
}

#[test]
fn missing_volume() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = write_dataset(dir.path(), 3, "nii.gz");
    std::fs::remove_file(&pairs[1].1).unwrap();
    let err = open_err(dir.path());
    assert!(matches!(err, DataError::MissingVolume { .. }), "{err:?}");
    assert_mentions(
        &err,
        &[
            "labelsTr/BRATS_001.nii.gz",
            "does not exist",
            "dataset.json",
        ],
    );
}

#[test]
fn three_d_image_where_four_d_expected() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = write_dataset(dir.path(), 3, "nii");
    let data = image_data(0, [NX, NY, NZ], 1);
    write_nifti(&pairs[2].0, &[NX, NY, NZ], NiftiData::F32(&data)).unwrap();
    let err = open_err(dir.path());
    assert!(
        matches!(
            err,
            DataError::WrongRank {
                expected: 4,
                found: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_mentions(
        &err,
        &["imagesTr/BRATS_002.nii", "expected a 4-D image", "3-D"],
    );
}

#[test]
fn image_label_shape_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = write_dataset(dir.path(), 3, "nii.gz");
    let label = label_data([NX, NY - 1, NZ]);
    write_nifti(&pairs[0].1, &[NX, NY - 1, NZ], NiftiData::U8(&label)).unwrap();
    let err = open_err(dir.path());
    assert!(matches!(err, DataError::ShapeMismatch { .. }), "{err:?}");
    assert_mentions(
        &err,
        &[
            "BRATS_000.nii.gz",
            "shape mismatch",
            "[52, 48, 5]",
            "[52, 47, 5]",
        ],
    );
}

fn write_with_bad_voxel(value: f32) -> (tempfile::TempDir, DataError) {
    let dir = tempfile::tempdir().unwrap();
    let pairs = write_dataset(dir.path(), 3, "nii.gz");
    let mut data = image_data(1, [NX, NY, NZ], CHANNELS);
    let (x, y, z) = (3, 4, 2);
    data[x + NX * (y + NY * z)] = value;
    write_nifti(&pairs[1].0, &[NX, NY, NZ, CHANNELS], NiftiData::F32(&data)).unwrap();
    let err = first_read_err(dir.path());
    (dir, err)
}

#[test]
fn nan_voxel() {
    let (_dir, err) = write_with_bad_voxel(f32::NAN);
    assert!(
        matches!(
            err,
            DataError::NonFinite {
                x: 3,
                y: 4,
                z: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert_mentions(
        &err,
        &[
            "imagesTr/BRATS_001.nii.gz",
            "non-finite voxel NaN",
            "x=3, y=4, z=2",
        ],
    );
}

#[test]
fn infinite_voxel() {
    let (_dir, err) = write_with_bad_voxel(f32::NEG_INFINITY);
    assert!(matches!(err, DataError::NonFinite { .. }), "{err:?}");
    assert_mentions(
        &err,
        &["imagesTr/BRATS_001.nii.gz", "non-finite voxel -inf"],
    );
}

#[test]
fn size_not_a_multiple_of_16() {
    for kind in SourceKind::ALL {
        for size in [0, 100, 8] {
            let cfg = DataConfig {
                source: kind,
                size,
                ..DataConfig::default()
            };
            let err = open_source(&cfg, Split::Train).err().unwrap();
            assert!(
                matches!(err, DataError::BadSize { .. }),
                "{kind} {size}: {err:?}"
            );
            assert_mentions(&err, &[&format!("size {size}"), "multiple of 16"]);
        }
    }
}

#[test]
fn empty_split() {
    // Two volumes: 7.5 % of 2 rounds to zero validation volumes.
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), 2, "nii");
    let err = open_source(&config(dir.path()), Split::Validation)
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            DataError::EmptySplit {
                split: Split::Validation,
                ..
            }
        ),
        "{err:?}"
    );
    assert_mentions(&err, &["validation split", "dataset.json", "empty"]);

    // A generated source configured with zero slices.
    let cfg = DataConfig {
        slices_per_split: Some(0),
        ..DataConfig::default()
    };
    let err = open_source(&cfg, Split::Test).err().unwrap();
    assert!(
        matches!(
            err,
            DataError::EmptySplit {
                split: Split::Test,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn truncated_and_garbage_volumes() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = write_dataset(dir.path(), 3, "nii");
    // Cut the image of volume 0 in the middle of channel 0: the header is fine, the data is not.
    let bytes = std::fs::read(&pairs[0].0).unwrap();
    std::fs::write(&pairs[0].0, &bytes[..352 + 1000]).unwrap();
    let err = first_read_err(dir.path());
    assert!(matches!(err, DataError::Truncated { .. }), "{err:?}");
    assert_mentions(&err, &["imagesTr/BRATS_000.nii", "truncated"]);

    // Not NIfTI at all.
    std::fs::write(&pairs[0].0, b"definitely not a nifti header").unwrap();
    let err = open_err(dir.path());
    assert!(matches!(err, DataError::Nifti { .. }), "{err:?}");
    assert_mentions(&err, &["imagesTr/BRATS_000.nii", "NIfTI"]);
}

#[test]
fn index_past_the_end_is_an_error() {
    let source = open_source(
        &DataConfig {
            slices_per_split: Some(3),
            ..DataConfig::default()
        },
        Split::Train,
    )
    .unwrap();
    let err = source.get(3).err().unwrap();
    assert!(
        matches!(err, DataError::IndexOutOfRange { index: 3, len: 3 }),
        "{err:?}"
    );
}

#[test]
fn a_volume_listed_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), 3, "nii");
    // The same image once more, spelled without the leading `./`.
    let entries: Vec<String> = (0..3)
        .map(|v| {
            format!(
                r#"{{"image": "./imagesTr/BRATS_{v:03}.nii", "label": "./labelsTr/BRATS_{v:03}.nii"}}"#
            )
        })
        .chain([
            r#"{"image": "imagesTr/BRATS_001.nii", "label": "./labelsTr/BRATS_001.nii"}"#.into(),
        ])
        .collect();
    write_dataset_json(dir.path(), &entries.join(",\n"));
    let err = open_err(dir.path());
    assert!(
        matches!(
            err,
            DataError::DuplicateVolume {
                first: 1,
                second: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_mentions(
        &err,
        &["dataset.json", "BRATS_001.nii", "listed twice", "splits"],
    );
}

/// A small valid `.nii` whose header is then patched to claim `dims` (dim[1..=3], and 4
/// channels): the data stays a few bytes long.
fn nifti_claiming(path: &Path, dims: [i16; 3]) {
    write_nifti(path, &[2, 2, 2, 1], NiftiData::F32(&[0.5; 8])).unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    bytes[40..42].copy_from_slice(&4i16.to_le_bytes()); // dim[0]: rank 4
    for (i, d) in dims.iter().enumerate() {
        bytes[42 + 2 * i..44 + 2 * i].copy_from_slice(&d.to_le_bytes());
    }
    bytes[48..50].copy_from_slice(&4i16.to_le_bytes()); // dim[4]: channels
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn huge_nifti_dims_are_refused_before_allocation() {
    use unet_data::nifti_io::{read_first_volume, read_first_volume_from_bytes, read_header};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.nii");
    nifti_claiming(&path, [32767, 32767, 32767]);
    // 32767³ float32 voxels: 140 TB. Refused when the header is read...
    let err = read_header(&path).unwrap_err();
    assert!(matches!(err, DataError::VolumeTooLarge { .. }), "{err:?}");
    assert_mentions(
        &err,
        &[
            "huge.nii",
            "volume too large",
            "dims [32767, 32767, 32767]",
            "4 bytes per voxel",
            "140724603846652 bytes",
            "UNET_DATA_MAX_VOLUME_BYTES",
        ],
    );
    // ... and by the bytes-level reader (the fuzz target's entry).
    let bytes = std::fs::read(&path).unwrap();
    let err = read_first_volume_from_bytes(&path, &bytes, 1 << 30).unwrap_err();
    assert!(matches!(err, DataError::VolumeTooLarge { .. }), "{err:?}");

    // Under the limit but far beyond the file: refused as truncated from the file length,
    // before the 64 MB buffer is allocated.
    nifti_claiming(&path, [4096, 4096, 1]);
    let header = read_header(&path).unwrap();
    let err = read_first_volume(&header).unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }), "{err:?}");
    assert_mentions(&err, &["huge.nii", "truncated", "dims [4096, 4096, 1]"]);

    // The same header gzip-compressed: no length to compare with; the data ends early.
    let gz = dir.path().join("huge.nii.gz");
    let plain = std::fs::read(&path).unwrap();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &plain).unwrap();
    std::fs::write(&gz, encoder.finish().unwrap()).unwrap();
    let header = read_header(&gz).unwrap();
    let err = read_first_volume(&header).unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }), "{err:?}");
    assert_mentions(&err, &["huge.nii.gz", "truncated"]);
}
