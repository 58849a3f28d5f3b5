//! The persistent worker threads behind `threads > 1`.
//!
//! An operator of the U-Net takes 0.2–1.5 ms on one core. Starting a scoped thread per operator
//! costs ≈ 70 µs on the 2-vCPU KVM guests this was measured on, and a thread that sleeps on a
//! futex (`std::sync::Barrier`, a fresh thread's first schedule) takes tens of microseconds more
//! to wake on an idle virtual CPU: together they ate most of the second core's gain (int8 U-Net
//! 1.10× with two threads). [`run_on_threads`] instead hands the work to threads started once per
//! process, which spin on an atomic for a short while after each job (so the next operator of
//! the same invoke starts in well under a microsecond) and then sleep on a condition variable.
//!
//! One job runs at a time. A caller that finds the workers busy (two interpreters invoking on
//! two threads at once, or a call from inside a job) runs its job on scoped threads instead, so
//! the result never depends on who else is running.

use std::cell::UnsafeCell;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it sleeps.
const SPIN: Duration = Duration::from_micros(500);

/// The job of one [`run_on_threads`] call, shared with the workers by pointer.
type Job<'a> = dyn Fn(usize) + Sync + 'a;

/// The process's workers and the job they run.
struct Pool {
    /// Held by the caller whose job the workers run.
    busy: AtomicBool,
    /// `epoch << 8 | threads` of the current job; a change means a new job.
    state: AtomicU64,
    /// The current job (valid while its participants have not all finished).
    job: UnsafeCell<Option<&'static Job<'static>>>,
    /// Participants of the current job that have not finished yet.
    pending: AtomicUsize,
    /// Set when a participant's part panicked.
    panicked: AtomicBool,
    /// Workers started so far (worker `i` runs part `i + 1`).
    started: Mutex<usize>,
    /// Sleeping workers wait here for a new `state`.
    sleep: Mutex<()>,
    wake: Condvar,
}

// SAFETY: `job` is written only by the caller that holds `busy`, before it publishes the job with
// a release store of `state`, and read by workers only after they acquire that `state`; the
// caller does not return (so the job outlives every read) until `pending` is zero.
unsafe impl Sync for Pool {}

/// The most threads one job can use (the low byte of `state`).
const MAX_THREADS: usize = 255;

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        busy: AtomicBool::new(false),
        state: AtomicU64::new(0),
        job: UnsafeCell::new(None),
        pending: AtomicUsize::new(0),
        panicked: AtomicBool::new(false),
        started: Mutex::new(0),
        sleep: Mutex::new(()),
        wake: Condvar::new(),
    })
}

/// Runs `work(t)` for every `t` in `0..threads` and returns when all have finished: `t = 0` on
/// the calling thread, the others on the persistent workers (or on scoped threads when the
/// workers are busy or cannot be started). A panic in any part is re-raised here.
pub fn run_on_threads(threads: usize, work: &(dyn Fn(usize) + Sync)) {
    let threads = threads.clamp(1, MAX_THREADS);
    if threads == 1 {
        work(0);
        return;
    }
    let p = pool();
    if p.busy
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return run_scoped(threads, work);
    }
    if !p.ensure_workers(threads - 1) {
        p.busy.store(false, Ordering::Release);
        return run_scoped(threads, work);
    }
    // From here until `busy` is released this thread owns the job slot.
    // SAFETY: lifetime erasure only; `Finish` below waits until no worker can still use the
    // pointer (pending == 0) before this function returns or unwinds.
    let erased: &'static Job<'static> = unsafe { std::mem::transmute::<&Job<'_>, _>(work) };
    // SAFETY: the caller owns the slot (busy), and no worker reads it before the release store
    // of `state` below.
    unsafe { *p.job.get() = Some(erased) };
    p.panicked.store(false, Ordering::Relaxed);
    p.pending.store(threads - 1, Ordering::Relaxed);
    let epoch = (p.state.load(Ordering::Relaxed) >> 8) + 1;
    p.state
        .store(epoch << 8 | threads as u64, Ordering::Release);
    {
        // Taking the lock orders this notification after any worker's check of `state`.
        let _guard = p.sleep.lock().unwrap_or_else(|e| e.into_inner());
        p.wake.notify_all();
    }
    /// Waits for the workers' parts (also while unwinding from a panic in part 0), then frees
    /// the job slot.
    struct Finish(&'static Pool);
    impl Drop for Finish {
        fn drop(&mut self) {
            let mut spins = 0u32;
            while self.0.pending.load(Ordering::Acquire) != 0 {
                backoff(&mut spins);
            }
            self.0.busy.store(false, Ordering::Release);
        }
    }
    let finish = Finish(p);
    work(0);
    drop(finish);
    if p.panicked.load(Ordering::Acquire) {
        panic!("a worker thread panicked while running an operator");
    }
}

/// One part of a split output: its rows and their slice, behind a lock that only this part
/// takes (so it is never waited on; it only makes the slice reachable from a shared closure).
pub type RowPart<'a, T> = (Range<usize>, Mutex<&'a mut [T]>);

/// Splits `data` (rows of `row_len` elements; `data.len()` a multiple of it) into at most
/// `threads` contiguous runs of whole rows, as even as possible, for [`run_on_threads`].
pub fn split_rows<T>(data: &mut [T], row_len: usize, threads: usize) -> Vec<RowPart<'_, T>> {
    let rows = data.len().checked_div(row_len).unwrap_or(0);
    let per = rows.div_ceil(threads.max(1)).max(1);
    let mut parts = Vec::with_capacity(threads);
    let mut rest = data;
    let mut first = 0;
    while first < rows {
        let last = (first + per).min(rows);
        let (part, tail) = rest.split_at_mut((last - first) * row_len);
        rest = tail;
        parts.push((first..last, Mutex::new(part)));
        first = last;
    }
    parts
}

/// Runs `work(rows, slice)` on every part of [`split_rows`]`(data, row_len, threads)`, one part
/// per thread.
pub fn for_row_parts<T: Send>(
    data: &mut [T],
    row_len: usize,
    threads: usize,
    work: impl Fn(Range<usize>, &mut [T]) + Sync,
) {
    let parts = split_rows(data, row_len, threads);
    if parts.is_empty() {
        return;
    }
    run_on_threads(parts.len(), &|t| {
        let (rows, part) = &parts[t];
        let mut part = part.lock().unwrap_or_else(|e| e.into_inner());
        work(rows.clone(), &mut part);
    });
}

/// One step of a wait loop: a pause instruction for the first [`PAUSES`] steps, then a yield
/// to the OS scheduler, so a waiting thread that shares a CPU with the one it waits for (the
/// OS may wake a worker on its waker's CPU) lets it run instead of spinning until a timer tick.
fn backoff(spins: &mut u32) {
    *spins = spins.saturating_add(1);
    if *spins < PAUSES {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// Pause instructions before a waiting thread starts yielding (a few microseconds).
const PAUSES: u32 = 256;

/// The fallback: one scoped thread per part besides the caller's.
fn run_scoped(threads: usize, work: &(dyn Fn(usize) + Sync)) {
    std::thread::scope(|s| {
        for t in 1..threads {
            s.spawn(move || work(t));
        }
        work(0);
    });
}

impl Pool {
    /// Starts workers until there are at least `n`; false if the OS refused a thread. Called
    /// only by the holder of `busy`, before it publishes its job.
    fn ensure_workers(&'static self, n: usize) -> bool {
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        while *started < n {
            let index = *started + 1;
            // The job about to be published is new to this worker even if the thread first
            // runs after it is published: it starts from the state before the job.
            let seen = self.state.load(Ordering::Acquire);
            let spawned = std::thread::Builder::new()
                .name(format!("tflite-runtime-{index}"))
                .spawn(move || self.worker(index, seen));
            if spawned.is_err() {
                return false;
            }
            *started += 1;
        }
        true
    }

    /// Worker `index` (part `index` of every job with more than `index` threads).
    fn worker(&self, index: usize, mut seen: u64) {
        loop {
            let state = self.wait_for_change(seen);
            seen = state;
            let threads = (state & 0xff) as usize;
            if index >= threads {
                continue;
            }
            // SAFETY: `state` was published (release) after the job pointer was written, and
            // the caller keeps the job alive until this part decrements `pending`.
            let job = unsafe { *self.job.get() };
            let ran = catch_unwind(AssertUnwindSafe(|| {
                if let Some(job) = job {
                    job(index)
                }
            }));
            if ran.is_err() {
                self.panicked.store(true, Ordering::Release);
            }
            self.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Spins for [`SPIN`], then sleeps, until `state` differs from `seen`; returns it.
    fn wait_for_change(&self, seen: u64) -> u64 {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            let state = self.state.load(Ordering::Acquire);
            if state != seen {
                return state;
            }
            backoff(&mut spins);
            if spins.is_multiple_of(64) && start.elapsed() > SPIN {
                break;
            }
        }
        let mut guard = self.sleep.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let state = self.state.load(Ordering::Acquire);
            if state != seen {
                return state;
            }
            guard = self.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once_for_every_thread_count() {
        for threads in [1, 2, 3, 5, 2, 1, 4] {
            for _ in 0..200 {
                let counts: Vec<AtomicUsize> = (0..threads).map(|_| AtomicUsize::new(0)).collect();
                run_on_threads(threads, &|t| {
                    counts[t].fetch_add(1, Ordering::Relaxed);
                });
                for (t, c) in counts.iter().enumerate() {
                    assert_eq!(c.load(Ordering::Relaxed), 1, "part {t} of {threads}");
                }
            }
        }
    }

    #[test]
    fn concurrent_and_nested_callers_fall_back_and_still_run_every_part() {
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..100 {
                        run_on_threads(3, &|_| {
                            // A nested call finds the workers busy and uses scoped threads.
                            run_on_threads(2, &|_| {
                                total.fetch_add(1, Ordering::Relaxed);
                            });
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 3 * 100 * 3 * 2);
    }

    #[test]
    fn row_parts_cover_every_row_once() {
        for (rows, row_len, threads) in [(0, 3, 2), (1, 3, 4), (7, 2, 3), (8, 5, 2), (5, 1, 8)] {
            let mut data = vec![0u32; rows * row_len];
            for_row_parts(&mut data, row_len, threads, |range, part| {
                assert_eq!(part.len(), range.len() * row_len);
                for (i, v) in part.iter_mut().enumerate() {
                    *v += (range.start * row_len + i) as u32 + 1;
                }
            });
            let want: Vec<u32> = (1..=(rows * row_len) as u32).collect();
            assert_eq!(data, want, "{rows} rows of {row_len}, {threads} threads");
            assert!(split_rows(&mut data, row_len, threads).len() <= threads.max(1));
        }
    }

    #[test]
    fn a_panicking_part_is_reported_to_the_caller_and_the_workers_recover() {
        for bad in [0, 1] {
            let result = catch_unwind(|| {
                run_on_threads(2, &|t| {
                    if t == bad {
                        panic!("part {t} fails on purpose");
                    }
                })
            });
            assert!(result.is_err(), "panic in part {bad} was lost");
        }
        let done = AtomicUsize::new(0);
        run_on_threads(2, &|_| {
            done.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(done.load(Ordering::Relaxed), 2);
    }
}
