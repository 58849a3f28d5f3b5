//! Kernel frame: the parameter structs every kernel tier shares, and the kernel table that
//! `Interpreter::new` fills once (the selection point where faster tiers will plug in).

pub mod params;
pub mod table;

pub use params::*;
pub use table::{KernelTable, KernelTier};
