//! Output SQNR of a float model whose convolution weights are rounded to int8 per output
//! channel (activations left in f32): the ceiling any int8-weight precision (int8, 16x8) can
//! reach on that model. With a quantised model of the same graph as a second argument (e.g. an
//! int16x8 model, whose graph is not equalised), its int8 weights (e.g. GPTQ's) are used
//! instead of round-to-nearest.
//!
//! `--gptq` instead rounds with [`unet_quantizer::gptq`] on the calibration slices, and
//! `--per-layer` rounds one layer at a time (to nearest) to show which layers limit the output.
//!
//! ```sh
//! cargo run --release -p unet-quantizer --example weight_ceiling -- FLOAT.tflite [QUANTISED.tflite | --gptq | --per-layer]
//! ```

use tflite_writer::BuiltinOp;
use unet_data::{DataConfig, Split};
use unet_quantizer::dataset::from_source;
use unet_quantizer::verify::{float_outputs, sqnr_db};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        return Err("usage: weight_ceiling FLOAT.tflite".into());
    };
    let float = tflite_writer::read_model_file(std::path::Path::new(path))?;
    let graph = unet_quantizer::prepare_float(&float)?;
    let cfg = DataConfig {
        size: graph.height,
        ..DataConfig::default()
    };
    let eval = from_source(&cfg, Split::Test, 32)?;
    let reference = float_outputs(&graph.model, &eval, 2)?;
    if args.get(2).map(String::as_str) == Some("--gptq") {
        let calib = from_source(&cfg, Split::Train, unet_quantizer::gptq::GPTQ_SLICES)?;
        let t = std::time::Instant::now();
        let rounded = unet_quantizer::gptq::round_weights(&graph, &calib.images.images, 2)?;
        let secs = t.elapsed().as_secs_f64();
        let mut model = graph.model.clone();
        let sg = &graph.model.subgraphs[0];
        for (op_index, q) in &rounded {
            let w = sg.operators[*op_index].inputs[1] as usize;
            // GPTQ keeps round-to-nearest's scales, `max|w_c| / 127`.
            let (values, per) = weights_of(&model, w);
            let scales: Vec<f32> = values
                .chunks(per.max(1))
                .map(|c| c.iter().fold(0.0f32, |m, &v| m.max(v.abs())) / 127.0)
                .collect();
            set_dequantized(&mut model, w, q, &scales);
        }
        let out = float_outputs(&model, &eval, 2)?;
        println!(
            "int8 weights only (GPTQ, {secs:.1} s), f32 activations: output SQNR {:?} dB on {} slices",
            sqnr_of(&reference, &out),
            eval.images.images.len()
        );
        return Ok(());
    }
    if args.get(2).map(String::as_str) == Some("--per-layer") {
        let sg = &graph.model.subgraphs[0];
        for (op_index, op) in sg.operators.iter().enumerate() {
            if !matches!(op.op, BuiltinOp::CONV_2D | BuiltinOp::TRANSPOSE_CONV) {
                continue;
            }
            let mut one = graph.model.clone();
            let w = op.inputs[1] as usize;
            let shape = sg.tensors[w].shape.clone();
            round_to_nearest(&mut one, w);
            let out = float_outputs(&one, &eval, 2)?;
            println!(
                "op {op_index:>2} {:?} {shape:?}: only its weights rounded: {:.2} dB",
                op.op,
                sqnr_of(&reference, &out).unwrap_or(f64::INFINITY)
            );
        }
        return Ok(());
    }
    let quantised = match args.get(2) {
        Some(p) => Some(tflite_writer::read_model_file(std::path::Path::new(p))?),
        None => None,
    };
    let mut rounded = graph.model.clone();
    let sg = &graph.model.subgraphs[0];
    for (op_index, op) in sg.operators.iter().enumerate() {
        if !matches!(op.op, BuiltinOp::CONV_2D | BuiltinOp::TRANSPOSE_CONV) {
            continue;
        }
        let w = op.inputs[1] as usize;
        let Some(q) = &quantised else {
            round_to_nearest(&mut rounded, w);
            continue;
        };
        let qsg = &q.subgraphs[0];
        let qop = qsg.operators.get(op_index).ok_or("the graphs differ")?;
        let qw = qop.inputs[1] as usize;
        let scales = qsg.tensors[qw]
            .quantization
            .as_ref()
            .ok_or("unquantised weights")?
            .scale
            .clone();
        let qdata: Vec<i8> = q
            .tensor_data(0, qw)
            .ok_or("no weight data")?
            .iter()
            .map(|&b| b as i8)
            .collect();
        set_dequantized(&mut rounded, w, &qdata, &scales);
    }
    let out = float_outputs(&rounded, &eval, 2)?;
    println!(
        "int8 weights only ({}), f32 activations: output SQNR {:?} dB on {} slices",
        args.get(2)
            .map_or("per channel, round to nearest".to_string(), |p| format!(
                "those of {p}"
            )),
        sqnr_of(&reference, &out),
        eval.images.images.len()
    );
    Ok(())
}

/// Output SQNR of `out` against `reference` over all slices.
fn sqnr_of(reference: &[Vec<f32>], out: &[Vec<f32>]) -> Option<f64> {
    let (mut s, mut n) = (0.0f64, 0.0f64);
    for (a, b) in reference.iter().zip(out) {
        for (&x, &y) in a.iter().zip(b) {
            s += f64::from(x) * f64::from(x);
            n += f64::from(x - y) * f64::from(x - y);
        }
    }
    sqnr_db(s, n)
}

/// The float values of weight tensor `w` and the number of values per output channel.
fn weights_of(model: &tflite_writer::Model, w: usize) -> (Vec<f32>, usize) {
    let t = &model.subgraphs[0].tensors[w];
    let values: Vec<f32> = model.buffers[t.buffer as usize]
        .data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let per = values.len() / t.shape[0].max(1) as usize;
    (values, per)
}

/// Replaces weight tensor `w`'s values.
fn set_weights(model: &mut tflite_writer::Model, w: usize, values: &[f32]) {
    let buffer = model.subgraphs[0].tensors[w].buffer as usize;
    model.buffers[buffer].data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
}

/// Replaces weight tensor `w`'s values by `q · scale` of their output channel.
fn set_dequantized(model: &mut tflite_writer::Model, w: usize, q: &[i8], scales: &[f32]) {
    let per = q.len() / scales.len().max(1);
    let values: Vec<f32> = q
        .iter()
        .enumerate()
        .map(|(i, &v)| f32::from(v) * scales[i / per.max(1)])
        .collect();
    set_weights(model, w, &values);
}

/// Rounds the float weight tensor `w` of `model` to int8 per output channel, in place.
fn round_to_nearest(model: &mut tflite_writer::Model, w: usize) {
    let (mut values, per) = weights_of(model, w);
    for chunk in values.chunks_mut(per.max(1)) {
        let scale = chunk.iter().fold(0.0f32, |m, &v| m.max(v.abs())) / 127.0;
        if scale > 0.0 {
            for v in chunk {
                *v = (*v / scale).round() * scale;
            }
        }
    }
    set_weights(model, w, &values);
}
