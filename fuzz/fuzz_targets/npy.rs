//! Arbitrary bytes through tflite-runtime's `.npy` reader; an array that reads is written and
//! must read back with the same shape and length. No input may panic.
#![no_main]

use tflite_runtime::npy::{read_npy, write_npy};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(array) = read_npy(data) else {
        return;
    };
    let reread = read_npy(&write_npy(&array)).expect("a written .npy reads back");
    assert_eq!(reread.shape, array.shape);
    assert_eq!(reread.data.len(), array.data.len());
});
