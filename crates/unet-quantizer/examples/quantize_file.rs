//! Quantises a float `.tflite` with the library alone (no burn, no xtask), as `cargo xtask quantize
//! --model` does with its defaults: 100 synthetic calibration slices, `auto` on 32 validation
//! slices, verification on 32 test slices, LiteRT and Vela checks when available.
//!
//! ```sh
//! cargo run --release -p unet-quantizer --example quantize_file -- FLOAT.tflite OUT_DIR
//! ```

use std::path::PathBuf;
use std::time::Instant;

use unet_data::{DataConfig, Split};
use unet_quantizer::dataset::from_source;
use unet_quantizer::verify::QuantInput;
use unet_quantizer::{Method, QuantConfig, litert, quantize, vela};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let args: Vec<String> = std::env::args().collect();
    let (Some(model), Some(out)) = (args.get(1), args.get(2)) else {
        return Err("usage: quantize_file FLOAT.tflite OUT_DIR".into());
    };
    let out = PathBuf::from(out);
    let float = tflite_writer::read_model_file(std::path::Path::new(model))?;
    let graph = unet_quantizer::prepare_float(&float)?;
    let cfg = DataConfig {
        size: graph.height,
        ..DataConfig::default()
    };
    let calib = from_source(&cfg, Split::Train, 100)?.images;
    let evaluation = from_source(&cfg, Split::Test, 32)?;
    let config = QuantConfig {
        method: Method::Auto,
        evaluation: Some(evaluation.clone()),
        ..QuantConfig::default()
    };
    let (int8, mut report) = quantize(&float, &calib, &config)?;
    report.command_line = args.clone();
    std::fs::create_dir_all(&out)?;
    let int8_path = out.join("unet_int8.tflite");
    tflite_writer::write_model_file(&int8, &int8_path)?;
    let whole = start.elapsed().as_secs_f64();
    report
        .timings_s
        .insert("total (before optional checks)".into(), whole);
    if litert::available().is_ok() {
        let rt = tflite_runtime::Interpreter::new(&int8, tflite_runtime::Options::default())?;
        let info = rt.input_info(0)?.clone();
        let inputs = evaluation
            .images
            .images
            .iter()
            .map(|x| QuantInput::for_tensor(x, &info))
            .collect::<Result<Vec<_>, _>>()?;
        let r = litert::compare(&int8, &int8_path, &inputs, &out.join("checks"))?;
        report.litert_bit_exact = Some(format!(
            "{} slices, {} values, {} mismatches (max |diff| {} LSB)",
            r.samples, r.values, r.mismatches, r.max_abs_diff
        ));
    }
    if vela::available().is_ok() {
        for accelerator in vela::ACCELERATORS {
            report.vela.push(vela::compile(
                &int8_path,
                accelerator,
                &out.join("checks").join(accelerator),
            )?);
        }
    }
    report.write(&out)?;
    println!("{}", report.summary());
    println!("LiteRT: {:?}", report.litert_bit_exact);
    for v in &report.vela {
        println!(
            "vela {}: cpu {} npu {} est {:?} ms",
            v.accelerator, v.cpu_ops, v.npu_ops, v.inference_ms
        );
    }
    println!("timings: {:?}", report.timings_s);
    println!("quantize wall time (load, data, quantize, verify, write): {whole:.2} s");
    Ok(())
}
