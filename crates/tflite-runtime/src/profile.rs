//! Cost and per-operator timing of a model, for benchmark reports.

use std::collections::BTreeMap;
use std::time::Instant;

use tflite_writer::{BuiltinOp, Model};

use crate::{Interpreter, RuntimeError};

/// Multiply-accumulates of the model's CONV_2D and TRANSPOSE_CONV operators (subgraph 0),
/// from the tensor shapes: a convolution does `output elements × k_h·k_w·in_c`, a transposed
/// convolution `input elements × k_h·k_w·out_c`. Operators with unknown shapes count 0.
pub fn conv_macs(model: &Model) -> u64 {
    let Some(sg) = model.subgraphs.first() else {
        return 0;
    };
    let shape = |t: i32| -> Option<Vec<u64>> {
        let tensor = sg.tensors.get(usize::try_from(t).ok()?)?;
        tensor
            .shape
            .iter()
            .map(|&d| u64::try_from(d).ok())
            .collect()
    };
    let elements = |s: &[u64]| s.iter().product::<u64>();
    sg.operators
        .iter()
        .filter_map(|op| {
            let w = shape(*op.inputs.get(1)?)?;
            if w.len() != 4 {
                return None;
            }
            let per = w[0] * w[1] * w[2] * w[3]; // out_c·k_h·k_w·in_c
            if op.op == BuiltinOp::CONV_2D {
                Some(elements(&shape(*op.outputs.first()?)?) / w[0].max(1) * per)
            } else if op.op == BuiltinOp::TRANSPOSE_CONV {
                Some(elements(&shape(*op.inputs.get(2)?)?) / w[3].max(1) * per)
            } else {
                None
            }
        })
        .sum()
}

/// Time spent in one operator type over the profiled runs.
#[derive(Debug, Clone, PartialEq)]
pub struct OpTypeTime {
    /// Operator name (e.g. `CONV_2D`).
    pub op: String,
    /// Operators of this type per invoke.
    pub count: usize,
    /// Median over the runs of the per-invoke total, in milliseconds.
    pub median_ms: f64,
}

/// Runs `interp` `runs` times (inputs must be set) and returns the time per operator type,
/// largest first, measured between the observer's calls (one `Instant` per operator).
pub fn profile_op_types(
    interp: &mut Interpreter,
    runs: usize,
) -> Result<Vec<OpTypeTime>, RuntimeError> {
    let mut per_run: Vec<BTreeMap<String, (usize, f64)>> = Vec::new();
    for _ in 0..runs.max(1) {
        let mut totals: BTreeMap<String, (usize, f64)> = BTreeMap::new();
        let mut last = Instant::now();
        interp.invoke_with_observer(&mut |obs| {
            let now = Instant::now();
            let entry = totals.entry(obs.op.name()).or_default();
            entry.0 += 1;
            entry.1 += (now - last).as_secs_f64() * 1e3;
            last = Instant::now();
        })?;
        per_run.push(totals);
    }
    let mut out: Vec<OpTypeTime> = per_run[0]
        .iter()
        .map(|(op, &(count, _))| {
            let mut v: Vec<f64> = per_run.iter().map(|r| r[op].1).collect();
            v.sort_by(f64::total_cmp);
            OpTypeTime {
                op: op.clone(),
                count,
                median_ms: v[v.len() / 2],
            }
        })
        .collect();
    out.sort_by(|a, b| b.median_ms.total_cmp(&a.median_ms));
    Ok(out)
}
