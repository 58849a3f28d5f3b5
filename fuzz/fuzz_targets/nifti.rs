//! Arbitrary bytes (plain, or gzip when they start with its magic) through unet-data's NIfTI-1
//! header parser and first-volume decoder, with a 64 MiB volume limit: no input may panic or
//! abort.
#![no_main]

use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = unet_data::nifti_io::read_first_volume_from_bytes(
        Path::new("fuzz.nii"),
        data,
        64 << 20,
    );
});
