//! The seeded generators of the datasets, from [`seeded_rng`] (the workspace's one home of
//! its random generators).

pub use seeded_rng::{Xoshiro256StarStar as Rng, mix_seed, splitmix64};
