//! The bit-exactness check: the quantised model (int8, 16x8 or mixed) on LiteRT's reference kernels (`BUILTIN_REF`, run
//! through `python3` and `ai_edge_litert`) against `tflite-runtime`, on the same int8 inputs.

use std::ffi::OsStr;
use std::path::Path;

use serde::Serialize;
use tflite_runtime::npy::{NpyArray, NpyData, read_npy, write_npy};
use tflite_runtime::{Interpreter, Options, TensorData};
use tflite_writer::Model;

use crate::error::QuantError;
use crate::verify::QuantInput;

/// `Ok(())` when `python3` can import LiteRT, else the reason it cannot.
pub fn available() -> Result<(), String> {
    litert_oracle::probe_litert()
}

/// Result of comparing both runtimes.
#[derive(Debug, Clone, Serialize)]
pub struct BitExactness {
    /// Samples compared.
    pub samples: usize,
    /// Output values compared.
    pub values: usize,
    /// Values that differ.
    pub mismatches: usize,
    /// Largest absolute difference in LSB.
    pub max_abs_diff: i32,
}

impl BitExactness {
    /// True when every value matched.
    pub fn is_exact(&self) -> bool {
        self.mismatches == 0
    }
}

/// Runs `model` (written at `model_path`) on `inputs` (one per sample, the model input's type)
/// with LiteRT `BUILTIN_REF` and with our reference kernels, in `work_dir`, and compares the
/// outputs.
pub fn compare(
    model: &Model,
    model_path: &Path,
    inputs: &[QuantInput],
    work_dir: &Path,
) -> Result<BitExactness, QuantError> {
    let tool = |detail: String| QuantError::Tool {
        tool: "LiteRT",
        detail,
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| QuantError::Io { path, source }
    };
    let mut ours: Vec<i64> = Vec::new();
    let mut interpreter = Interpreter::new(model, Options::default())
        .map_err(QuantError::runtime("quantised model"))?;
    for x in inputs {
        x.set(&mut interpreter, 0)
            .map_err(QuantError::runtime("quantised input"))?;
        interpreter
            .invoke()
            .map_err(QuantError::runtime("quantised run"))?;
        match interpreter
            .output_data(0)
            .map_err(QuantError::runtime("quantised output"))?
        {
            TensorData::I8(v) => ours.extend(v.iter().map(|&q| i64::from(q))),
            TensorData::I16(v) => ours.extend(v.iter().map(|&q| i64::from(q))),
            _ => {
                return Err(QuantError::UnsupportedModel(
                    "the model output is neither INT8 nor INT16".into(),
                ));
            }
        }
    }
    std::fs::create_dir_all(work_dir).map_err(io(work_dir))?;
    let in_path = work_dir.join("litert_inputs.npy");
    let out_path = work_dir.join("litert_outputs.npy");
    let per = inputs.first().map_or(0, QuantInput::len);
    let array = NpyArray {
        shape: vec![inputs.len(), per],
        data: QuantInput::batch_npy(inputs)?,
    };
    std::fs::write(&in_path, write_npy(&array)).map_err(io(&in_path))?;
    litert_oracle::run([
        OsStr::new("batch"),
        model_path.as_os_str(),
        in_path.as_os_str(),
        out_path.as_os_str(),
        OsStr::new("ref"),
        OsStr::new("1"),
    ])
    .map_err(tool)?;
    let bytes = std::fs::read(&out_path).map_err(io(&out_path))?;
    let theirs = read_npy(&bytes).map_err(|e| tool(format!("{}: {e}", out_path.display())))?;
    let theirs: Vec<i64> = match theirs.data {
        NpyData::I8(v) => v.iter().map(|&q| i64::from(q)).collect(),
        NpyData::I16(v) => v.iter().map(|&q| i64::from(q)).collect(),
        _ => {
            return Err(tool(format!(
                "{}: expected int8 or int16 outputs",
                out_path.display()
            )));
        }
    };
    if ours.len() != theirs.len() {
        return Err(tool(format!(
            "output sizes differ: ours {} values, LiteRT {}",
            ours.len(),
            theirs.len()
        )));
    }
    let mut result = BitExactness {
        samples: inputs.len(),
        values: ours.len(),
        mismatches: 0,
        max_abs_diff: 0,
    };
    for (&a, &b) in ours.iter().zip(&theirs) {
        if a != b {
            result.mismatches += 1;
            result.max_abs_diff = result.max_abs_diff.max((a - b).unsigned_abs() as i32);
        }
    }
    Ok(result)
}
