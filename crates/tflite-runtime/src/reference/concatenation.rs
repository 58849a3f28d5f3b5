//! CONCATENATION on raw bytes (f32, int8 with shared quantisation, int32): for each outer
//! index, copy each input's slab in input order.

/// `outer` is the product of the dims before the axis; `slab_bytes[i]` is input i's
/// `dims[axis] · inner · element_size`.
pub fn concatenation(outer: usize, slab_bytes: &[usize], inputs: &[&[u8]], output: &mut [u8]) {
    // Two slabs of one small size (the U-Net's decoder concatenations, 16 to 512 bytes): fixed
    // copies the compiler inlines, instead of a `memcpy` call per slab.
    if let ([a, b], [x, y]) = (slab_bytes, inputs)
        && a == b
    {
        let copied = match *a {
            16 => interleave_pairs::<16>(outer, x, y, output),
            32 => interleave_pairs::<32>(outer, x, y, output),
            64 => interleave_pairs::<64>(outer, x, y, output),
            128 => interleave_pairs::<128>(outer, x, y, output),
            256 => interleave_pairs::<256>(outer, x, y, output),
            512 => interleave_pairs::<512>(outer, x, y, output),
            _ => false,
        };
        if copied {
            return;
        }
    }
    let mut pos = 0;
    for o in 0..outer {
        for (input, &slab) in inputs.iter().zip(slab_bytes) {
            output[pos..pos + slab].copy_from_slice(&input[o * slab..(o + 1) * slab]);
            pos += slab;
        }
    }
}

/// [`concatenation`] of two inputs with slabs of `N` bytes each; `false` (nothing written)
/// when the lengths do not match `outer`.
fn interleave_pairs<const N: usize>(outer: usize, x: &[u8], y: &[u8], output: &mut [u8]) -> bool {
    if x.len() < outer * N || y.len() < outer * N || output.len() < outer * 2 * N {
        return false;
    }
    let slabs = x.chunks_exact(N).zip(y.chunks_exact(N));
    for (out, (x, y)) in output[..outer * 2 * N].chunks_exact_mut(2 * N).zip(slabs) {
        let (first, second) = out.split_at_mut(N);
        first.copy_from_slice(x);
        second.copy_from_slice(y);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slab-by-slab copy, for comparison.
    fn by_slabs(outer: usize, slab_bytes: &[usize], inputs: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for o in 0..outer {
            for (input, &slab) in inputs.iter().zip(slab_bytes) {
                out.extend_from_slice(&input[o * slab..(o + 1) * slab]);
            }
        }
        out
    }

    #[test]
    fn fixed_size_pairs_match_the_slab_copy() {
        let bytes = |n: usize, seed: u8| -> Vec<u8> {
            (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
        };
        // Every fixed size, a size without a fixed path, unequal slabs and three inputs.
        let cases: &[&[usize]] = &[
            &[16, 16],
            &[32, 32],
            &[64, 64],
            &[128, 128],
            &[256, 256],
            &[512, 512],
            &[24, 24],
            &[16, 32],
            &[16, 16, 16],
        ];
        for slabs in cases {
            let outer = 5;
            let inputs: Vec<Vec<u8>> = (0..slabs.len())
                .map(|i| bytes(outer * slabs[i], i as u8 * 77 + 1))
                .collect();
            let refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
            let mut got = vec![0u8; outer * slabs.iter().sum::<usize>()];
            concatenation(outer, slabs, &refs, &mut got);
            assert_eq!(got, by_slabs(outer, slabs, &refs), "slabs {slabs:?}");
        }
    }
}
