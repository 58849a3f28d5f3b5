//! Arbitrary bytes through the reader (verifier + checks), and every model that reads through
//! the writer and back: no input may panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tflite_writer::fuzz_read_write(data);
});
