//! burn integration: `SliceDataset` through burn's `DataLoader` with `SegmentationBatcher`.

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use unet_data::{DataConfig, SegmentationBatcher, SliceDataset, Split};

#[test]
fn dataloader_yields_nchw_batches_equal_to_the_slices() {
    let cfg = DataConfig {
        size: 32,
        slices_per_split: Some(10),
        ..DataConfig::default()
    };
    let dataset = SliceDataset::open(&cfg, Split::Train).unwrap();
    assert_eq!(Dataset::len(&dataset), 10);
    let device = Device::default();
    let loader = DataLoaderBuilder::new(SegmentationBatcher)
        .batch_size(4)
        .set_device(device)
        .build(dataset.clone());
    let mut seen = 0;
    for batch in loader.iter() {
        let batch = batch.unwrap();
        let dims = batch.images.dims();
        assert_eq!(dims[1..], [1, 32, 32]);
        assert_eq!(batch.masks.dims(), dims);
        let images: Vec<f32> = batch.images.into_data().try_to_vec::<f32>().unwrap();
        let masks: Vec<f32> = batch.masks.into_data().try_to_vec::<f32>().unwrap();
        for b in 0..dims[0] {
            let slice = dataset.source().get(seen + b).unwrap();
            assert_eq!(images[b * 1024..(b + 1) * 1024], slice.image[..]);
            assert_eq!(masks[b * 1024..(b + 1) * 1024], slice.mask[..]);
        }
        seen += dims[0];
    }
    assert_eq!(seen, 10);
}

#[test]
fn dataset_errors_are_wrapped_not_panics() {
    let cfg = DataConfig {
        size: 16,
        slices_per_split: Some(2),
        ..DataConfig::default()
    };
    let dataset = SliceDataset::open(&cfg, Split::Test).unwrap();
    let err = Dataset::get(&dataset, 5).err().unwrap();
    assert!(err.to_string().contains("out of range"), "{err}");
}
