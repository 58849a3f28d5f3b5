//! Decathlon Task01 source on tiny NIfTI fixtures (.nii and .nii.gz) written by the tests.

mod common;

use common::*;
use unet_data::{
    DataConfig, DecathlonSource, SliceSource, SourceKind, Split, open_source, split_volumes,
};

fn config(dir: &std::path::Path) -> DataConfig {
    DataConfig {
        source: SourceKind::Decathlon,
        size: SIZE,
        seed: 7,
        data_path: Some(dir.to_path_buf()),
        ..DataConfig::default()
    }
}

fn volume_of(path: &std::path::Path) -> usize {
    let name = path.file_name().unwrap().to_string_lossy();
    name["BRATS_".len().."BRATS_".len() + 3].parse().unwrap()
}

fn check_unaugmented(ext: &str) {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), 6, ext);
    let source = DecathlonSource::open(&config(dir.path()), Split::Train).unwrap();
    let volumes: Vec<usize> = source.volume_paths().iter().map(|p| volume_of(p)).collect();
    assert_eq!(source.len(), volumes.len() * NZ);
    let (row0, col0) = (((NX - SIZE) / 2) as i64, ((NY - SIZE) / 2) as i64);
    for (i, &v) in volumes.iter().enumerate() {
        for z in 0..NZ {
            let slice = source.get(i * NZ + z).unwrap();
            assert_eq!((slice.height, slice.width), (SIZE, SIZE));
            let (image, mask) = expected_crop(v, z, row0, col0);
            for (got, want) in slice.image.iter().zip(&image) {
                assert!(
                    (f64::from(*got) - want).abs() < 1e-5,
                    "{ext}: volume {v} z {z}: {got} vs {want}"
                );
            }
            assert_eq!(
                slice.mask, mask,
                "{ext}: volume {v} z {z}: label > 0 must become 1"
            );
        }
    }
}

#[test]
fn reads_flair_channel_zscored_centre_crop_nii() {
    check_unaugmented("nii");
}

#[test]
fn reads_flair_channel_zscored_centre_crop_nii_gz() {
    check_unaugmented("nii.gz");
}

#[test]
fn nii_and_nii_gz_give_identical_slices() {
    let plain = tempfile::tempdir().unwrap();
    let gz = tempfile::tempdir().unwrap();
    write_dataset(plain.path(), 4, "nii");
    write_dataset(gz.path(), 4, "nii.gz");
    for split in Split::ALL {
        let a = open_source(&config(plain.path()), split).unwrap();
        let b = open_source(&config(gz.path()), split).unwrap();
        assert_eq!(a.len(), b.len());
        for i in 0..a.len() {
            assert_eq!(a.get(i).unwrap(), b.get(i).unwrap());
        }
    }
}

#[test]
fn split_by_volume_is_seeded_disjoint_and_85_7_5_7_5() {
    let [train, validation, test] = split_volumes(484, 42, 0.075, 0.075);
    assert_eq!((train.len(), validation.len(), test.len()), (412, 36, 36));
    let mut all: Vec<usize> = train
        .iter()
        .chain(&validation)
        .chain(&test)
        .copied()
        .collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..484).collect::<Vec<_>>(),
        "every volume in exactly one split"
    );
    assert_eq!(
        split_volumes(484, 42, 0.075, 0.075),
        [train.clone(), validation.clone(), test.clone()]
    );
    let other = split_volumes(484, 43, 0.075, 0.075);
    assert_ne!(other[2], test, "another seed gives another split");
}

#[test]
fn split_is_reproducible_through_the_source() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), 8, "nii.gz");
    let paths = |seed| {
        Split::ALL.map(|split| {
            let cfg = DataConfig {
                seed,
                ..config(dir.path())
            };
            DecathlonSource::open(&cfg, split).unwrap().volume_paths()
        })
    };
    let first = paths(7);
    assert_eq!(first, paths(7));
    let total: usize = first.iter().map(Vec::len).sum();
    assert_eq!(total, 8);
    assert_eq!(
        (first[1].len(), first[2].len()),
        (1, 1),
        "small sets keep one validation and one test volume"
    );
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        assert!(
            first[a].iter().all(|p| !first[b].contains(p)),
            "splits share no volume"
        );
    }
}

#[test]
fn slice_cap_strides_over_volumes() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), 8, "nii");
    let full = DecathlonSource::open(&config(dir.path()), Split::Train).unwrap();
    let capped = DecathlonSource::open(
        &DataConfig {
            slices_per_split: Some(6),
            ..config(dir.path())
        },
        Split::Train,
    )
    .unwrap();
    assert_eq!(capped.len(), 6);
    assert_eq!(
        capped.volume_indices().len(),
        full.volume_indices().len().min(6)
    );
}

/// With augmentation, each slice must equal one of the 8 square symmetries of a crop whose
/// offset is within 20 % of the per-side margin, and the mask must have had the same symmetry
/// and offset (checked against an independent re-implementation).
#[test]
fn augmentation_keeps_image_and_mask_aligned() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), 4, "nii.gz");
    let cfg = DataConfig {
        augment: true,
        ..config(dir.path())
    };
    let source = DecathlonSource::open(&cfg, Split::Train).unwrap();
    let volumes: Vec<usize> = source.volume_paths().iter().map(|p| volume_of(p)).collect();
    let (centre_row, centre_col) = (((NX - SIZE) / 2) as i64, ((NY - SIZE) / 2) as i64);
    let (max_dr, max_dc) = (centre_row / 5, centre_col / 5);
    let mut transforms_seen = std::collections::BTreeSet::new();
    let mut offsets_seen = std::collections::BTreeSet::new();
    for epoch in 0..4 {
        source.set_epoch(epoch);
        for (i, &v) in volumes.iter().enumerate() {
            for z in 0..NZ {
                let slice = source.get(i * NZ + z).unwrap();
                let mut found = None;
                'search: for dr in -max_dr..=max_dr {
                    for dc in -max_dc..=max_dc {
                        let (image, mask) = expected_crop(v, z, centre_row + dr, centre_col + dc);
                        for k in 0..8 {
                            let image_k = dihedral(&image, k);
                            let matches = slice
                                .image
                                .iter()
                                .zip(&image_k)
                                .all(|(g, w)| (f64::from(*g) - w).abs() < 1e-5);
                            if matches {
                                assert_eq!(
                                    slice.mask,
                                    dihedral(&mask, k),
                                    "mask not aligned with image"
                                );
                                found = Some((dr, dc, k));
                                break 'search;
                            }
                        }
                    }
                }
                let (dr, dc, k) =
                    found.expect("augmented slice is no allowed crop/flip/rotation of the volume");
                transforms_seen.insert(k);
                offsets_seen.insert((dr, dc));
            }
        }
    }
    assert!(
        transforms_seen.len() >= 6,
        "augmentation should use most symmetries: {transforms_seen:?}"
    );
    assert!(
        offsets_seen.len() >= 4,
        "augmentation should jitter the crop: {offsets_seen:?}"
    );
}

#[test]
fn volumes_smaller_than_the_target_are_padded() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), 3, "nii");
    let cfg = DataConfig {
        size: 64,
        ..config(dir.path())
    };
    let source = open_source(&cfg, Split::Train).unwrap();
    let slice = source.get(0).unwrap();
    assert_eq!(slice.image.len(), 64 * 64);
    // Row 0 lies outside the 52-row volume (6 rows of padding above): constant padding value.
    assert!(slice.image[..64].windows(2).all(|w| w[0] == w[1]));
    assert!(slice.mask[..64].iter().all(|&m| m == 0.0));
}
