//! Kernel frame: the parameter structs every kernel (reference or fast) takes. The choice of
//! kernels lives in [`crate::kernels`].

pub mod params;

pub use params::*;
