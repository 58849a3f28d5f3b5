//! Bytes through unet-train's checkpoint decoder. An input that does not start with the
//! checkpoint magic is sealed first (the magic prepended, the FNV-1a checksum appended), so the
//! fuzzer reaches the metadata checks and burn's record decoding behind the checksum; one that
//! does is decoded as it is. No input may panic or abort.
#![no_main]

use std::path::Path;

use burn::tensor::Device;

const MAGIC: &[u8; 8] = b"UNETCKPT";

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let device = Device::flex();
    let path = Path::new("fuzz.ckpt");
    if data.starts_with(MAGIC) {
        let _ = unet_train::checkpoint::decode_checkpoint(path, data, &device, None);
    } else {
        let mut sealed = MAGIC.to_vec();
        sealed.extend_from_slice(data);
        let checksum = unet_train::checkpoint::checksum(&sealed);
        sealed.extend_from_slice(&checksum.to_le_bytes());
        let _ = unet_train::checkpoint::decode_checkpoint(path, &sealed, &device, None);
    }
});
