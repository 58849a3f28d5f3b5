//! The seed project's dummy data: uniform `[0, 1)` images and per-pixel random binary masks.
//! Kept as it was (not z-scored) so the old pipeline can be reproduced, and so the quantizer can
//! show why noise is a bad calibration set.

use crate::rng::{Rng, mix_seed};
use crate::{DataConfig, DataError, Slice, SliceSource, Split, check_index};

/// Uniform-noise images with Bernoulli(0.5) masks.
#[derive(Debug)]
pub struct NoiseSource {
    size: usize,
    seed: u64,
    split: Split,
    len: usize,
}

impl NoiseSource {
    /// The `split` of the noise source described by `cfg` (size must already be valid).
    pub fn new(cfg: &DataConfig, split: Split) -> Self {
        Self {
            size: cfg.size,
            seed: cfg.seed,
            split,
            len: cfg.generated_len(split),
        }
    }
}

impl SliceSource for NoiseSource {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize) -> Result<Slice, DataError> {
        check_index(index, self.len)?;
        let mut rng = Rng::new(mix_seed(&[
            self.seed,
            self.split.salt(),
            index as u64,
            0x004e_015e,
        ]));
        let n = self.size * self.size;
        let image = (0..n).map(|_| rng.next_f32()).collect();
        let mask = (0..n)
            .map(|_| if rng.chance(0.5) { 1.0 } else { 0.0 })
            .collect();
        Ok(Slice {
            image,
            mask,
            height: self.size,
            width: self.size,
        })
    }

    fn describe(&self) -> String {
        format!(
            "uniform noise ({} slices of {}x{}, seed {}, {} split)",
            self.len, self.size, self.size, self.seed, self.split
        )
    }
}
