//! The bit-exactness check: the int8 model on LiteRT's reference kernels (`BUILTIN_REF`, run
//! through `python3` and `ai_edge_litert`) against `tflite-runtime`, on the same int8 inputs.

use std::ffi::OsStr;
use std::path::Path;

use serde::Serialize;
use tflite_runtime::npy::{NpyArray, NpyData, read_npy, write_npy};
use tflite_runtime::{Interpreter, Options};
use tflite_writer::Model;

use crate::error::QuantError;

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

/// Runs `model` (written at `model_path`) on `inputs` (int8, one `Vec` per sample) with LiteRT
/// `BUILTIN_REF` and with our reference kernels, in `work_dir`, and compares the outputs.
pub fn compare(
    model: &Model,
    model_path: &Path,
    inputs: &[Vec<i8>],
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
    let mut ours = Vec::new();
    let mut interpreter =
        Interpreter::new(model, Options::default()).map_err(QuantError::runtime("int8 model"))?;
    for x in inputs {
        interpreter
            .set_input(0, x)
            .map_err(QuantError::runtime("int8 input"))?;
        interpreter
            .invoke()
            .map_err(QuantError::runtime("int8 run"))?;
        ours.push(
            interpreter
                .output::<i8>(0)
                .map_err(QuantError::runtime("int8 output"))?
                .to_vec(),
        );
    }
    std::fs::create_dir_all(work_dir).map_err(io(work_dir))?;
    let in_path = work_dir.join("litert_inputs.npy");
    let out_path = work_dir.join("litert_outputs.npy");
    let per = inputs.first().map_or(0, Vec::len);
    let array = NpyArray {
        shape: vec![inputs.len(), per],
        data: NpyData::I8(inputs.concat()),
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
    let NpyData::I8(theirs) = theirs.data else {
        return Err(tool(format!(
            "{}: expected int8 outputs",
            out_path.display()
        )));
    };
    let ours = ours.concat();
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
            result.max_abs_diff = result.max_abs_diff.max((i32::from(a) - i32::from(b)).abs());
        }
    }
    Ok(result)
}
