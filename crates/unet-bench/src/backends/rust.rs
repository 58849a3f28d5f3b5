//! `rust-int8` and `rust-f32`: our own `tflite-runtime`.

use std::path::PathBuf;

use tflite_runtime::reference::quantize::QuantInt;
use tflite_runtime::{Element, Interpreter, KernelTier, Options, TensorInfo};
use tflite_writer::TensorType;

use crate::backend::{Engine, LoadError, Output};
use crate::error::BenchError;
use crate::layers::{LayerProfile, LayerTime};

/// tflite-runtime on one model file.
pub struct RustEngine {
    model_path: PathBuf,
    want: TensorType,
    interpreter: Option<Interpreter>,
    input: Option<TensorInfo>,
    output: Option<TensorInfo>,
    quantized: Vec<i8>,
    quantized16: Vec<i16>,
    threads: usize,
}

impl RustEngine {
    /// An engine for `model_path`, which must have `want` input: Float32, or Int8 for quantised
    /// models (int8, and the int16 IO of 16x8 and mixed models), running on `threads` threads.
    pub fn new(model_path: PathBuf, want: TensorType, threads: usize) -> Self {
        Self {
            model_path,
            want,
            threads: threads.max(1),
            interpreter: None,
            input: None,
            output: None,
            quantized: Vec::new(),
            quantized16: Vec::new(),
        }
    }

    fn interpreter(&mut self) -> Result<&mut Interpreter, BenchError> {
        self.interpreter
            .as_mut()
            .ok_or_else(|| BenchError::tool("tflite-runtime", "model not loaded"))
    }
}

/// Quantises `image` into `buffer` (LiteRT's reference QUANTIZE) and sets it as input 0.
fn set_quantized<T: QuantInt + Element>(
    interpreter: &mut Interpreter,
    buffer: &mut [T],
    (scale, zero_point): (f32, i32),
    image: &[f32],
) -> Result<(), BenchError> {
    tflite_runtime::reference::quantize::quantize_f32(scale, zero_point, image, buffer);
    Ok(interpreter.set_input(0, buffer)?)
}

impl Engine for RustEngine {
    fn device(&self) -> String {
        let tier = self
            .interpreter
            .as_ref()
            .map(Interpreter::kernel_tier)
            .unwrap_or("best");
        let threads = self.threads;
        let plural = if threads == 1 { "" } else { "s" };
        format!("cpu (tflite-runtime, {tier} kernels, {threads} thread{plural})")
    }

    fn load(&mut self) -> Result<(), LoadError> {
        if !self.model_path.exists() {
            return Err(LoadError::Unavailable(format!(
                "{} does not exist",
                self.model_path.display()
            )));
        }
        let model = tflite_writer::read_model_file(&self.model_path).map_err(|source| {
            BenchError::Model {
                path: self.model_path.clone(),
                source,
            }
        })?;
        let interpreter = Interpreter::new(
            &model,
            Options {
                kernels: KernelTier::Best,
                threads: self.threads,
            },
        )
        .map_err(BenchError::from)?;
        let input = interpreter.input_info(0).map_err(BenchError::from)?.clone();
        let output = interpreter
            .output_info(0)
            .map_err(BenchError::from)?
            .clone();
        let quantised = |t: TensorType| matches!(t, TensorType::Int8 | TensorType::Int16);
        if input.dtype != self.want && !(self.want == TensorType::Int8 && quantised(input.dtype)) {
            return Err(LoadError::Unavailable(format!(
                "{} has a {:?} input, this backend runs {:?} models",
                self.model_path.display(),
                input.dtype,
                self.want
            )));
        }
        if quantised(input.dtype)
            && (input.per_tensor_quant().is_none() || output.per_tensor_quant().is_none())
        {
            return Err(LoadError::Failed(BenchError::UnsupportedModel {
                path: self.model_path.clone(),
                problem: "quantised input/output without per-tensor quantisation".into(),
            }));
        }
        self.quantized = vec![0; input.num_elements()];
        self.quantized16 = vec![0; input.num_elements()];
        self.input = Some(input);
        self.output = Some(output);
        self.interpreter = Some(interpreter);
        Ok(())
    }

    fn set_input(&mut self, image: &[f32]) -> Result<(), BenchError> {
        let input = self
            .input
            .clone()
            .ok_or_else(|| BenchError::tool("tflite-runtime", "model not loaded"))?;
        if image.len() != input.num_elements() {
            return Err(BenchError::UnsupportedModel {
                path: self.model_path.clone(),
                problem: format!(
                    "input holds {} values, the slice has {}",
                    input.num_elements(),
                    image.len()
                ),
            });
        }
        let interpreter = self
            .interpreter
            .as_mut()
            .ok_or_else(|| BenchError::tool("tflite-runtime", "model not loaded"))?;
        match (input.per_tensor_quant(), input.dtype) {
            (Some(q), TensorType::Int8) => {
                set_quantized(interpreter, &mut self.quantized, q, image)
            }
            (Some(q), TensorType::Int16) => {
                set_quantized(interpreter, &mut self.quantized16, q, image)
            }
            _ => Ok(interpreter.set_input(0, image)?),
        }
    }

    fn invoke(&mut self) -> Result<(), BenchError> {
        Ok(self.interpreter()?.invoke()?)
    }

    fn output(&mut self) -> Result<Output, BenchError> {
        let info = self
            .output
            .clone()
            .ok_or_else(|| BenchError::tool("tflite-runtime", "model not loaded"))?;
        let interpreter = self.interpreter()?;
        Ok(match (info.dtype, info.per_tensor_quant()) {
            (TensorType::Int8, Some((scale, zero_point))) => Output::Int8 {
                values: interpreter.output::<i8>(0)?.to_vec(),
                scale,
                zero_point,
            },
            (TensorType::Int16, Some((scale, zero_point))) => Output::Int16 {
                values: interpreter.output::<i16>(0)?.to_vec(),
                scale,
                zero_point,
            },
            _ => Output::F32(interpreter.output::<f32>(0)?.to_vec()),
        })
    }

    fn op_placement(&self) -> Option<String> {
        self.interpreter.as_ref().map(|i| {
            format!(
                "{} ops on CPU ({} folded at load)",
                i.num_executed_ops(),
                i.num_folded_ops()
            )
        })
    }

    fn threads(&self) -> Option<usize> {
        Some(self.threads)
    }

    fn layer_profile(&mut self, runs: usize) -> LayerProfile {
        let Some(interpreter) = self.interpreter.as_mut() else {
            return LayerProfile::Unavailable {
                why: "model not loaded".into(),
            };
        };
        match tflite_runtime::profile::profile_ops(interpreter, runs) {
            Ok(ops) => LayerProfile::Measured {
                source: "tflite-runtime per-operator observer: median over the runs of the time between consecutive operators".into(),
                runs: runs.max(1),
                layers: ops
                    .into_iter()
                    .map(|o| LayerTime {
                        index: Some(o.index),
                        output: o.output,
                        op: o.op,
                        ms: o.median_ms,
                    })
                    .collect(),
            },
            Err(e) => LayerProfile::Unavailable {
                why: format!("profiling failed: {e}"),
            },
        }
    }
}
