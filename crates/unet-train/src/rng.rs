//! The seeded generator of training (weight initialisation, spatial-dropout masks, batch order),
//! from [`seeded_rng`]: drawn on the host, so a run is reproducible from `--seed` whatever
//! backend executes the tensors.

pub use seeded_rng::SplitMix64;
