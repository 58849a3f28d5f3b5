//! Writes the models the writer tests build (`tests/common/mod.rs`) to a directory, e.g. to look
//! at them with `cargo xtask inspect` or to seed the fuzzer:
//!
//! ```sh
//! cargo run -p tflite-writer --example write_test_models -- /tmp/models
//! cargo xtask inspect /tmp/models/int8_all_ops.tflite
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: write_test_models DIR")?,
    );
    std::fs::create_dir_all(&dir)?;
    for (name, model) in [
        ("float_conv", common::float_conv()),
        ("int8_all_ops", common::int8_all_ops()),
    ] {
        let path = dir.join(format!("{name}.tflite"));
        tflite_writer::write_model_file(&model, &path)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
