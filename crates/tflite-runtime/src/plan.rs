//! Arena planning: every activation tensor gets an offset in one byte arena, and tensors whose
//! lifetimes do not overlap share memory.
//!
//! Greedy by size (largest first), each placed at the lowest offset that does not collide with
//! an already-placed tensor alive at the same time — the strategy of TFLite's
//! `SimpleMemoryPlanner`/`ArenaPlanner`. Offsets are aligned to [`ARENA_ALIGNMENT`] bytes.

/// Alignment of every tensor in the arena, in bytes (a cache line; SIMD kernels rely on it).
pub const ARENA_ALIGNMENT: usize = 64;

/// One tensor to place: its byte size and the inclusive range of steps it is alive for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Caller's identifier (the tensor index).
    pub id: usize,
    /// Size in bytes.
    pub bytes: usize,
    /// First step the tensor is alive (written).
    pub first: usize,
    /// Last step the tensor is alive (read).
    pub last: usize,
}

/// The result of planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArenaPlan {
    /// `(id, offset)` of every planned tensor.
    pub offsets: Vec<(usize, usize)>,
    /// Arena size: the peak bytes of activation memory.
    pub peak_bytes: usize,
    /// What the tensors would take without any reuse (sum of aligned sizes).
    pub unshared_bytes: usize,
}

fn align_up(x: usize) -> usize {
    x.div_ceil(ARENA_ALIGNMENT).saturating_mul(ARENA_ALIGNMENT)
}

/// Plans the arena for the given lifetimes.
pub fn plan_arena(lifetimes: &[Lifetime]) -> ArenaPlan {
    let mut order: Vec<usize> = (0..lifetimes.len()).collect();
    // Largest first; ties by first use, then id, so the plan is deterministic.
    order.sort_by(|&a, &b| {
        let (la, lb) = (&lifetimes[a], &lifetimes[b]);
        lb.bytes
            .cmp(&la.bytes)
            .then(la.first.cmp(&lb.first))
            .then(la.id.cmp(&lb.id))
    });
    // (offset, aligned size, first, last) of placed tensors.
    let mut placed: Vec<(usize, usize, usize, usize)> = Vec::with_capacity(lifetimes.len());
    let mut offsets = Vec::with_capacity(lifetimes.len());
    let mut peak = 0usize;
    for &i in &order {
        let t = lifetimes[i];
        let size = align_up(t.bytes.max(1));
        let mut conflicts: Vec<(usize, usize)> = placed
            .iter()
            .filter(|p| p.2 <= t.last && t.first <= p.3)
            .map(|p| (p.0, p.0 + p.1))
            .collect();
        conflicts.sort_unstable();
        let mut offset = 0usize;
        for (start, end) in conflicts {
            if offset.saturating_add(size) <= start {
                break;
            }
            offset = offset.max(end);
        }
        placed.push((offset, size, t.first, t.last));
        offsets.push((t.id, offset));
        peak = peak.max(offset.saturating_add(size));
    }
    offsets.sort_unstable();
    ArenaPlan {
        offsets,
        peak_bytes: peak,
        unshared_bytes: lifetimes.iter().fold(0usize, |sum, t| {
            sum.saturating_add(align_up(t.bytes.max(1)))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlap(a: (usize, usize), b: (usize, usize)) -> bool {
        a.0 < b.1 && b.0 < a.1
    }

    #[test]
    fn chain_reuses_memory() {
        // a → b → c → d: only neighbours are alive together.
        let lifetimes: Vec<Lifetime> = (0..4)
            .map(|i| Lifetime {
                id: i,
                bytes: 1000,
                first: i,
                last: i + 1,
            })
            .collect();
        let plan = plan_arena(&lifetimes);
        assert_eq!(plan.peak_bytes, 2 * align_up(1000));
        assert_eq!(plan.unshared_bytes, 4 * align_up(1000));
    }

    #[test]
    fn live_tensors_never_overlap() {
        let mut lifetimes = Vec::new();
        let mut seed = 12345u64;
        for id in 0..60 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let first = (seed >> 33) as usize % 30;
            let len = (seed >> 20) as usize % 8;
            let bytes = 1 + (seed >> 40) as usize % 5000;
            lifetimes.push(Lifetime {
                id,
                bytes,
                first,
                last: first + len,
            });
        }
        let plan = plan_arena(&lifetimes);
        for a in &lifetimes {
            for b in &lifetimes {
                if a.id >= b.id || a.last < b.first || b.last < a.first {
                    continue;
                }
                let oa = plan.offsets[a.id].1;
                let ob = plan.offsets[b.id].1;
                assert!(
                    !overlap((oa, oa + a.bytes), (ob, ob + b.bytes)),
                    "{a:?} and {b:?} overlap"
                );
            }
            assert_eq!(plan.offsets[a.id].1 % ARENA_ALIGNMENT, 0);
            assert!(plan.offsets[a.id].1 + a.bytes <= plan.peak_bytes);
        }
        assert!(plan.peak_bytes <= plan.unshared_bytes);
    }
}
