//! Writes the default calibration slices (the first N of the synthetic train split, seed 42) as a
//! float32 `.npy` `[N,H,W,1]`, so that TensorFlow's converter can calibrate on the same data
//! (`benches/quantize_vs_tf/`).
//!
//! ```sh
//! cargo run --release -p unet-quantizer --example save_calib -- OUT.npy [N] [SIZE]
//! ```

use tflite_runtime::npy::{NpyArray, NpyData, write_npy};
use unet_data::{DataConfig, Split};
use unet_quantizer::dataset::from_source;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let out = args.get(1).ok_or("usage: save_calib OUT.npy [N] [SIZE]")?;
    let n: usize = args.get(2).map_or(Ok(100), |s| s.parse())?;
    let size: usize = args.get(3).map_or(Ok(128), |s| s.parse())?;
    let cfg = DataConfig {
        size,
        ..DataConfig::default()
    };
    let set = from_source(&cfg, Split::Train, n)?.images;
    let array = NpyArray {
        shape: vec![n, set.height, set.width, 1],
        data: NpyData::F32(set.images.concat()),
    };
    artifact_io::write_atomic(std::path::Path::new(out), &write_npy(&array))?;
    println!("wrote {n} slices of {} to {out}", set.description);
    Ok(())
}
