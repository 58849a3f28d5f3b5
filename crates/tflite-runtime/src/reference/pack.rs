//! PACK: stack equally-shaped inputs along a new axis (raw bytes).

/// `outer` is the product of the dims before the new axis; `inner_bytes` the byte size of the
/// rest of one input per outer index.
pub fn pack(outer: usize, inner_bytes: usize, inputs: &[&[u8]], output: &mut [u8]) {
    let mut pos = 0;
    for o in 0..outer {
        for input in inputs {
            output[pos..pos + inner_bytes]
                .copy_from_slice(&input[o * inner_bytes..(o + 1) * inner_bytes]);
            pos += inner_bytes;
        }
    }
}
