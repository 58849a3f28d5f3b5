//! Where the model's work runs: on a thread of rayon's global pool.
//!
//! Every convolution, pooling and copy of the Flex backend is a rayon parallel loop, about a
//! hundred per training step and per inference. Started from a thread outside the pool, each
//! loop is queued on the pool while the caller blocks, and the caller is woken when the loop is
//! done: two cross-thread wake-ups per loop on a 2-vCPU machine where three threads then share
//! two CPUs. Started from a pool thread, a loop splits with the other worker (fork-join) and
//! the starting thread works on its own share at once. [`on_pool_thread`] moves a whole
//! training run, benchmark or inference there. `--example infer_loop` (batch-1 inference, 300
//! runs, three alternations on the Sapphire Rapids VM): median 15.0 / 15.1 / 16.5 ms from the
//! main thread against 13.8 / 13.1 / 15.3 ms on a pool thread.

/// Runs `f` on a thread of rayon's global pool (the calling thread waits), so that the
/// parallel loops inside it fork and join from a worker (see the module documentation).
pub fn on_pool_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    // `rayon::scope` runs its body on a pool thread when called from outside the pool, and
    // in place when already on one.
    rayon::scope(|_| f())
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_on_a_pool_thread_and_returns_the_value() {
        assert!(rayon::current_thread_index().is_none());
        let (index, value) = super::on_pool_thread(|| (rayon::current_thread_index(), 42));
        assert!(index.is_some());
        assert_eq!(value, 42);
    }
}
