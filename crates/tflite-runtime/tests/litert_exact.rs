//! Bit-exactness against LiteRT: every case of `common::all_cases()` runs in our interpreter and
//! in LiteRT with `OpResolverType.BUILTIN_REF` on the same inputs (exchanged as `.npy`).
//! int8 and int16 outputs must be identical; f32 outputs must agree to 1e-5 relative to the output's
//! largest magnitude. The difference from LiteRT's default path (XNNPACK, 1 thread) is printed,
//! not asserted.

mod common;

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::Path;

use common::Case;
use litert_oracle::litert;
use tflite_runtime::npy::{NpyArray, NpyData, read_npy, write_npy};
use tflite_runtime::{Interpreter, Options};

const F32_RELATIVE_TOLERANCE: f64 = 1e-5;

fn run_ours(case: &Case) -> Vec<NpyArray> {
    let mut interp = Interpreter::new(&case.model, Options::default())
        .unwrap_or_else(|e| panic!("{}: Interpreter::new failed: {e}", case.name));
    for (i, input) in case.inputs.iter().enumerate() {
        match &input.data {
            NpyData::F32(v) => interp.set_input(i, v),
            NpyData::I8(v) => interp.set_input(i, v),
            NpyData::I16(v) => interp.set_input(i, v),
            other => panic!(
                "{}: unexpected input type {}",
                case.name,
                other.dtype_name()
            ),
        }
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    }
    interp
        .invoke()
        .unwrap_or_else(|e| panic!("{}: invoke failed: {e}", case.name));
    (0..interp.num_outputs())
        .map(|k| {
            let shape = interp.output_info(k).unwrap().shape.clone();
            let data = NpyData::from(interp.output_data(k).unwrap());
            NpyArray { shape, data }
        })
        .collect()
}

/// Difference summary: (max abs diff, number of differing elements, max relative diff for f32).
struct Diff {
    max_abs: f64,
    n_diff: usize,
    relative: f64,
    len: usize,
}

fn diff(ours: &NpyArray, theirs: &NpyArray) -> Result<Diff, String> {
    if ours.shape != theirs.shape {
        return Err(format!("shape {:?} vs {:?}", ours.shape, theirs.shape));
    }
    let pairs: Vec<(f64, f64)> = match (&ours.data, &theirs.data) {
        (NpyData::F32(a), NpyData::F32(b)) => a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64, y as f64))
            .collect(),
        (NpyData::I8(a), NpyData::I8(b)) => a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64, y as f64))
            .collect(),
        (NpyData::I16(a), NpyData::I16(b)) => a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64, y as f64))
            .collect(),
        (a, b) => return Err(format!("dtype {} vs {}", a.dtype_name(), b.dtype_name())),
    };
    let max_ref = pairs.iter().map(|p| p.1.abs()).fold(0.0, f64::max);
    let mut d = Diff {
        max_abs: 0.0,
        n_diff: 0,
        relative: 0.0,
        len: pairs.len(),
    };
    for (x, y) in pairs {
        let e = (x - y).abs();
        if e > 0.0 || x.is_nan() != y.is_nan() {
            d.n_diff += 1;
        }
        d.max_abs = d.max_abs.max(e);
    }
    d.relative = if max_ref > 0.0 {
        d.max_abs / max_ref
    } else {
        d.max_abs
    };
    Ok(d)
}

fn write_file(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn load_npy(path: &Path) -> NpyArray {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    read_npy(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `cases` through both runtimes and checks them; returns the XNNPACK report.
fn check_cases(cases: &[Case], dir: &Path) -> String {
    let mut manifest = Vec::new();
    let mut ours = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let model_path = dir.join(format!("case{i}.tflite"));
        tflite_writer::write_model_file(&case.model, &model_path)
            .unwrap_or_else(|e| panic!("{}: write_model failed: {e}", case.name));
        let mut inputs = Vec::new();
        for (k, input) in case.inputs.iter().enumerate() {
            let p = dir.join(format!("case{i}.in{k}.npy"));
            write_file(&p, &write_npy(input));
            inputs.push(p.to_string_lossy().into_owned());
        }
        manifest.push(serde_json::json!({
            "name": case.name,
            "model": model_path.to_string_lossy(),
            "inputs": inputs,
            "out_prefix": dir.join(format!("case{i}")).to_string_lossy(),
        }));
        ours.push(run_ours(case));
    }
    let manifest_path = dir.join("manifest.json");
    write_file(
        &manifest_path,
        serde_json::to_string(&manifest).unwrap().as_bytes(),
    );
    if let Err(e) = litert_oracle::run([OsStr::new("run"), manifest_path.as_os_str()]) {
        panic!("{e}");
    }

    let mut failures = Vec::new();
    let mut report = String::new();
    let mut n_xnn_identical = 0;
    for (i, case) in cases.iter().enumerate() {
        for (k, our) in ours[i].iter().enumerate() {
            let reference = load_npy(&dir.join(format!("case{i}.ref.{k}.npy")));
            match diff(our, &reference) {
                Err(e) => failures.push(format!("{}: output {k}: {e}", case.name)),
                Ok(d) => {
                    let is_float = matches!(our.data, NpyData::F32(_));
                    let ok = if is_float {
                        d.relative <= F32_RELATIVE_TOLERANCE
                    } else {
                        d.n_diff == 0
                    };
                    if !ok {
                        failures.push(format!(
                            "{}: output {k}: {} of {} elements differ, max |diff| {} (relative {:.3e})",
                            case.name, d.n_diff, d.len, d.max_abs, d.relative
                        ));
                    }
                }
            }
            let err_path = dir.join(format!("case{i}.xnn.err"));
            if err_path.exists() {
                let msg = std::fs::read_to_string(&err_path).unwrap_or_default();
                let _ = writeln!(report, "  {:<60} default path failed: {msg}", case.name);
                continue;
            }
            let xnn = load_npy(&dir.join(format!("case{i}.xnn.{k}.npy")));
            if let Ok(d) = diff(our, &xnn) {
                if d.n_diff == 0 {
                    n_xnn_identical += 1;
                } else if matches!(our.data, NpyData::F32(_)) {
                    let _ = writeln!(
                        report,
                        "  {:<60} {} of {} differ, max relative {:.2e}",
                        case.name, d.n_diff, d.len, d.relative
                    );
                } else {
                    let _ = writeln!(
                        report,
                        "  {:<60} {} of {} differ, max {} LSB",
                        case.name, d.n_diff, d.len, d.max_abs
                    );
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from LiteRT BUILTIN_REF:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    format!(
        "vs LiteRT default (XNNPACK, 1 thread): {n_xnn_identical} outputs identical; differences:\n{report}"
    )
}

#[test]
fn bit_exact_with_litert_builtin_ref() {
    if litert().is_err() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cases = common::all_cases();
    let report = check_cases(&cases, dir.path());
    eprintln!(
        "{} cases identical to LiteRT BUILTIN_REF (int8 and int16 0 LSB, f32 ≤ {F32_RELATIVE_TOLERANCE:e} relative)",
        cases.len()
    );
    eprintln!("{report}");
}

/// The TensorFlow-made fixture of the tflite-writer issue, when it is in `fixtures/`.
#[test]
fn tensorflow_fixture_matches_litert() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let mut found = Vec::new();
    let mut dirs = vec![fixtures.clone()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "tflite") {
                found.push(path);
            }
        }
    }
    found.sort();
    if found.is_empty() {
        eprintln!(
            "skipped: no .tflite fixture in {} (the TensorFlow-made model has not landed)",
            fixtures.display()
        );
        return;
    }
    if litert().is_err() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = tflite_runtime::synth::Rng::new(7);
    let mut cases = Vec::new();
    for path in found {
        let model = tflite_writer::read_model_file(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let interp = Interpreter::new(&model, Options::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut inputs = Vec::new();
        for i in 0..interp.num_inputs() {
            let info = interp.input_info(i).unwrap();
            let n = info.num_elements();
            let data = match info.dtype {
                tflite_writer::TensorType::Int8 => NpyData::I8(rng.i8s(n, -128, 127)),
                tflite_writer::TensorType::Int16 => NpyData::I16(
                    (0..n)
                        .map(|_| rng.range_i64(-32768, 32767) as i16)
                        .collect(),
                ),
                tflite_writer::TensorType::Float32 => NpyData::F32(rng.f32s(n, -2.0, 2.0)),
                other => panic!("{}: input type {}", path.display(), other.name()),
            };
            inputs.push(NpyArray {
                shape: info.shape.clone(),
                data,
            });
        }
        cases.push(Case {
            name: path.file_name().unwrap().to_string_lossy().into_owned(),
            model,
            inputs,
        });
    }
    let report = check_cases(&cases, dir.path());
    eprintln!("{} fixture model(s) match LiteRT BUILTIN_REF", cases.len());
    eprintln!("{report}");
}
