//! Output SQNR of a float model whose convolution weights are rounded to int8 per output
//! channel (activations left in f32): the ceiling any int8-weight precision (int8, 16x8) can
//! reach on that model. With a quantised model of the same graph as a second argument (e.g. an
//! int16x8 model, whose graph is not equalised), its int8 weights (e.g. GPTQ's) are used
//! instead of round-to-nearest.
//!
//! ```sh
//! cargo run --release -p unet-quantizer --example weight_ceiling -- FLOAT.tflite [QUANTISED.tflite]
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
        let buffer = sg.tensors[w].buffer as usize;
        let n_out = sg.tensors[w].shape[0] as usize;
        let data = &mut rounded.buffers[buffer].data;
        let mut values: Vec<f32> = data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let per = values.len() / n_out;
        if let Some(q) = &quantised {
            let qsg = &q.subgraphs[0];
            let qop = qsg.operators.get(op_index).ok_or("the graphs differ")?;
            let qw = qop.inputs[1] as usize;
            let scales = qsg.tensors[qw]
                .quantization
                .as_ref()
                .ok_or("unquantised weights")?
                .scale
                .clone();
            let qdata = q.tensor_data(0, qw).ok_or("no weight data")?;
            for (i, v) in values.iter_mut().enumerate() {
                *v = f32::from(qdata[i] as i8) * scales[i / per];
            }
            *data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            continue;
        }
        for chunk in values.chunks_mut(per) {
            let scale = chunk.iter().fold(0.0f32, |m, &v| m.max(v.abs())) / 127.0;
            if scale > 0.0 {
                for v in chunk {
                    *v = (*v / scale).round() * scale;
                }
            }
        }
        *data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    }
    let out = float_outputs(&rounded, &eval, 2)?;
    let (mut s, mut n) = (0.0f64, 0.0f64);
    for (a, b) in reference.iter().zip(&out) {
        for (&x, &y) in a.iter().zip(b) {
            s += f64::from(x) * f64::from(x);
            n += f64::from(x - y) * f64::from(x - y);
        }
    }
    println!(
        "int8 weights only ({}), f32 activations: output SQNR {:?} dB on {} slices",
        args.get(2)
            .map_or("per channel, round to nearest".to_string(), |p| format!(
                "those of {p}"
            )),
        sqnr_db(s, n),
        eval.images.images.len()
    );
    Ok(())
}
