//! Criterion benchmarks live under `benches/benches/`; run them with `cargo bench -p benches`.
//! This library is empty on purpose: the crate exists only to host the bench targets.
