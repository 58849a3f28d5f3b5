//! Cost and per-operator timing of a model, for benchmark reports.

use std::collections::BTreeMap;
use std::time::Instant;

use tflite_writer::{BuiltinOp, Model};

use crate::{Interpreter, RuntimeError};

/// Multiply-accumulates of the model's CONV_2D and TRANSPOSE_CONV operators (subgraph 0),
/// from the tensor shapes: the sum of [`op_macs`].
pub fn conv_macs(model: &Model) -> u64 {
    op_macs(model).iter().sum()
}

/// Multiply-accumulates of every operator of subgraph 0, by operator index, from the tensor
/// shapes: a CONV_2D does `output elements × k_h·k_w·in_c`, a TRANSPOSE_CONV `input elements ×
/// k_h·k_w·out_c`; every other operator, and one with unknown shapes, counts 0.
pub fn op_macs(model: &Model) -> Vec<u64> {
    let Some(sg) = model.subgraphs.first() else {
        return Vec::new();
    };
    let shape = |t: i32| -> Option<Vec<u64>> {
        let tensor = sg.tensors.get(usize::try_from(t).ok()?)?;
        tensor
            .shape
            .iter()
            .map(|&d| u64::try_from(d).ok())
            .collect()
    };
    let elements = |s: &[u64]| s.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
    let macs = |op: &tflite_writer::Operator| -> Option<u64> {
        let w = shape(*op.inputs.get(1)?)?;
        if w.len() != 4 {
            return None;
        }
        let per = elements(&w)?; // out_c·k_h·k_w·in_c
        if op.op == BuiltinOp::CONV_2D {
            (elements(&shape(*op.outputs.first()?)?)? / w[0].max(1)).checked_mul(per)
        } else if op.op == BuiltinOp::TRANSPOSE_CONV {
            (elements(&shape(*op.inputs.get(2)?)?)? / w[3].max(1)).checked_mul(per)
        } else {
            None
        }
    };
    sg.operators
        .iter()
        .map(|op| macs(op).unwrap_or(0))
        .collect()
}

/// Time spent in one operator of the model, by its index in subgraph 0.
#[derive(Debug, Clone, PartialEq)]
pub struct OpTime {
    /// Operator index in subgraph 0 (the model's order).
    pub index: usize,
    /// Operator name (e.g. `CONV_2D`).
    pub op: String,
    /// Name of the tensor it writes (how other tools, Vela among them, name the layer).
    pub output: String,
    /// Median over the runs, in milliseconds.
    pub median_ms: f64,
}

/// Runs `interp` `runs` times (inputs must be set) and returns the median time of every
/// executed operator, in execution order, measured between the observer's calls (one
/// `Instant` per operator). Operators folded at load are not executed and not listed.
pub fn profile_ops(interp: &mut Interpreter, runs: usize) -> Result<Vec<OpTime>, RuntimeError> {
    let mut ops: Vec<(usize, String, String)> = Vec::new();
    let mut samples: Vec<Vec<f64>> = Vec::new();
    for run in 0..runs.max(1) {
        let mut j = 0usize;
        let mut last = Instant::now();
        interp.invoke_with_observer(&mut |obs| {
            let now = Instant::now();
            if run == 0 {
                ops.push((obs.op_index, obs.op.name(), obs.tensor.name.clone()));
                samples.push(Vec::with_capacity(runs.max(1)));
            }
            if let Some(s) = samples.get_mut(j) {
                s.push((now - last).as_secs_f64() * 1e3);
            }
            j += 1;
            last = Instant::now();
        })?;
    }
    Ok(ops
        .into_iter()
        .zip(samples)
        .map(|((index, op, output), mut v)| {
            v.sort_by(f64::total_cmp);
            OpTime {
                index,
                op,
                output,
                median_ms: v.get(v.len() / 2).copied().unwrap_or(0.0),
            }
        })
        .collect())
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
