//! burn integration: a [`Dataset`] of [`Slice`]s and a [`Batcher`] that stacks them into
//! `[B, 1, H, W]` tensors, so training can use burn's `DataLoader`.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Tensor, TensorData};

use crate::{DataConfig, DataError, Slice, SliceSource, Split, open_source};

/// A [`SliceSource`] as a burn [`Dataset`]. Errors surface as [`DatasetError`] wrapping the
/// [`DataError`].
#[derive(Clone)]
pub struct SliceDataset {
    source: Arc<dyn SliceSource>,
}

impl std::fmt::Debug for SliceDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SliceDataset")
            .field("source", &self.source.describe())
            .finish()
    }
}

impl SliceDataset {
    /// Wraps an opened source.
    pub fn new(source: Box<dyn SliceSource>) -> Self {
        Self {
            source: Arc::from(source),
        }
    }

    /// Opens `split` of the source described by `cfg` ([`open_source`]).
    pub fn open(cfg: &DataConfig, split: Split) -> Result<Self, DataError> {
        Ok(Self::new(open_source(cfg, split)?))
    }

    /// The wrapped source.
    pub fn source(&self) -> &dyn SliceSource {
        self.source.as_ref()
    }

    /// Selects the augmentation stream for `epoch` (see [`SliceSource::set_epoch`]). Clones share
    /// the source, so a `DataLoader` built from a clone sees the change.
    pub fn set_epoch(&self, epoch: u64) {
        self.source.set_epoch(epoch);
    }
}

impl Dataset<Slice> for SliceDataset {
    fn get(&self, index: usize) -> Result<Slice, DatasetError> {
        self.source.get(index).map_err(DatasetError::new)
    }

    fn len(&self) -> usize {
        self.source.len()
    }
}

/// Stacks slices into a [`SegmentationBatch`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SegmentationBatcher;

/// A batch of images and masks, both `[B, 1, H, W]` f32 (NCHW, as burn's conv layers expect).
#[derive(Debug, Clone)]
pub struct SegmentationBatch {
    /// Images, `[B, 1, H, W]`.
    pub images: Tensor<4>,
    /// Binary masks (0.0 / 1.0), `[B, 1, H, W]`.
    pub masks: Tensor<4>,
}

impl SegmentationBatcher {
    /// Creates the batcher.
    pub fn new() -> Self {
        Self
    }
}

impl Batcher<Slice, SegmentationBatch> for SegmentationBatcher {
    /// All slices of one source share H and W; a slice of another shape would be a bug in the
    /// source, so it is checked only in debug builds.
    fn batch(&self, items: Vec<Slice>, device: &Device) -> SegmentationBatch {
        let batch = items.len();
        let (height, width) = items.first().map_or((0, 0), |s| (s.height, s.width));
        let mut images = Vec::with_capacity(batch * height * width);
        let mut masks = Vec::with_capacity(batch * height * width);
        for slice in &items {
            debug_assert_eq!((slice.height, slice.width), (height, width));
            images.extend_from_slice(&slice.image);
            masks.extend_from_slice(&slice.mask);
        }
        let shape = [batch, 1, height, width];
        SegmentationBatch {
            images: Tensor::from_data(TensorData::new(images, shape), device),
            masks: Tensor::from_data(TensorData::new(masks, shape), device),
        }
    }
}
