//! CONCATENATION on raw bytes (f32, int8 with shared quantisation, int32): for each outer
//! index, copy each input's slab in input order.

/// `outer` is the product of the dims before the axis; `slab_bytes[i]` is input i's
/// `dims[axis] · inner · element_size`.
pub fn concatenation(outer: usize, slab_bytes: &[usize], inputs: &[&[u8]], output: &mut [u8]) {
    let mut pos = 0;
    for o in 0..outer {
        for (input, &slab) in inputs.iter().zip(slab_bytes) {
            output[pos..pos + slab].copy_from_slice(&input[o * slab..(o + 1) * slab]);
            pos += slab;
        }
    }
}
