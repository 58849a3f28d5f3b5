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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Runs `f` on a thread of rayon's global pool (the calling thread waits), so that the
/// parallel loops inside it fork and join from a worker, while the pool's other workers stay
/// awake for it ([`AwakeWorkers`]; see the module documentation).
pub fn on_pool_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    // `rayon::scope` runs its body on a pool thread when called from outside the pool, and
    // in place when already on one.
    rayon::scope(|_| {
        let _awake = AwakeWorkers::start();
        f()
    })
}

/// While alive, every worker of the current rayon pool (the global one when started from
/// outside any) but the thread that started it runs a loop that takes pending pool work
/// (`rayon::yield_now`) and otherwise spins, instead of going to sleep. An idle rayon worker
/// sleeps after about 32 unsuccessful looks for work (tens of microseconds), and the next
/// parallel loop must then wake it through the kernel; on the 2-vCPU KVM guests measured here
/// its CPU has halted by then and takes tens of microseconds more to come back, a hundred-odd
/// times per training step. Keras's thread pools spin between operations in the same way. A
/// spinning worker yields its CPU every 64 idle looks, so other threads on that CPU still run.
/// Dropping it stops the loops.
///
/// A worker takes its loop (a broadcast job) before it steals anything else, so the loop never
/// runs on top of a piece of the starter's own work that it would then wait on forever.
#[must_use = "the workers stop spinning when this is dropped"]
pub struct AwakeWorkers {
    stop: Arc<AtomicBool>,
    looping: Arc<AtomicUsize>,
}

impl AwakeWorkers {
    /// Starts the loops on the pool's other workers.
    pub fn start() -> AwakeWorkers {
        let stop = Arc::new(AtomicBool::new(false));
        let looping = Arc::new(AtomicUsize::new(0));
        let starter = rayon::current_thread_index();
        let (flag, count) = (Arc::clone(&stop), Arc::clone(&looping));
        rayon::spawn_broadcast(move |ctx| {
            // The starting thread gets its copy when it next looks for work (say, waiting in
            // a join); it must not loop there, beneath the code that would stop it.
            if Some(ctx.index()) == starter {
                return;
            }
            count.fetch_add(1, Ordering::Relaxed);
            let mut idle = 0u32;
            while !flag.load(Ordering::Relaxed) {
                match rayon::yield_now() {
                    Some(rayon::Yield::Executed) => idle = 0,
                    _ => {
                        idle = idle.wrapping_add(1);
                        if idle.is_multiple_of(64) {
                            std::thread::yield_now();
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                }
            }
            count.fetch_sub(1, Ordering::Relaxed);
        });
        AwakeWorkers { stop, looping }
    }

    /// How many workers are in their loop now (they enter it shortly after [`Self::start`],
    /// once each finishes what it was running, and leave it shortly after the drop).
    pub fn looping_workers(&self) -> usize {
        self.looping.load(Ordering::Relaxed)
    }
}

impl Drop for AwakeWorkers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
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

    /// Waits up to ten seconds for `done`.
    fn eventually(what: &str, done: impl Fn() -> bool) {
        let start = std::time::Instant::now();
        while !done() {
            assert!(
                start.elapsed().as_secs() < 10,
                "timed out waiting until {what}"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn the_other_workers_loop_while_alive_take_the_work_and_stop_when_dropped() {
        use rayon::prelude::*;
        // A private pool, so that tests running beside this one on the global pool do not
        // occupy its workers.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("a 3-thread pool");
        pool.install(|| {
            let awake = super::AwakeWorkers::start();
            eventually("both other workers loop", || awake.looping_workers() == 2);
            let looping = std::sync::Arc::clone(&awake.looping);
            // Parallel work started here still runs, on the looping workers too.
            let workers: std::collections::BTreeSet<usize> = (0..3000)
                .into_par_iter()
                .map(|_| {
                    std::thread::sleep(std::time::Duration::from_micros(20));
                    rayon::current_thread_index().unwrap_or(usize::MAX)
                })
                .collect();
            assert!(workers.len() > 1, "only {workers:?} ran the loop's parts");
            let sum: u64 = (0..100_000u64).into_par_iter().sum();
            assert_eq!(sum, 99_999 * 100_000 / 2);
            drop(awake);
            eventually("the loops stop", || {
                looping.load(std::sync::atomic::Ordering::Relaxed) == 0
            });
        });
    }
}
