//! Arbitrary bytes through the reader, `Interpreter::with_limits` (64 MiB memory limit) on the
//! reference and the best kernels, inputs made from the same bytes, and `invoke`: no input may
//! panic or abort.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tflite_runtime::fuzz_invoke(data);
});
