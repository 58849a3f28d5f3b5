//! The bad-input suite: every subcommand fed broken files, impossible flags and hostile paths.
//!
//! Each case must end with a non-zero exit code (not a signal), a message that names the input
//! and the problem, no panic, and every artifact of an earlier run byte-for-byte unchanged. The
//! earlier run is made once, at tiny sizes (32×32, fms 4): a trained checkpoint, the quantised
//! models with their reports, and a bench report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{TINY_TRAIN, ok, with, xtask};

use tflite_runtime::npy::{NpyArray, NpyData, write_npy};

fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = xtask();
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("xtask runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir` with its bytes (the scratch `quant_checks/` of the external checks
/// excepted).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let entry = entry.expect("entry");
            let path = entry.path();
            let kind = entry.file_type().expect("file type");
            if kind.is_dir() {
                if path.file_name().is_some_and(|n| n == "quant_checks") {
                    continue;
                }
                stack.push(path);
            } else if kind.is_file() {
                files.insert(path.clone(), std::fs::read(&path).expect("read"));
            } else {
                files.insert(path.clone(), b"<not a regular file>".to_vec());
            }
        }
    }
    files
}

/// The earlier run whose artifacts every case must leave alone.
struct Fixture {
    root: tempfile::TempDir,
    scratch: tempfile::TempDir,
}

impl Fixture {
    fn out(&self) -> &Path {
        self.root.path()
    }
    fn s(&self, name: &str) -> String {
        self.scratch.path().join(name).display().to_string()
    }
    fn o(&self, name: &str) -> String {
        self.out().join(name).display().to_string()
    }
}

fn write_f32_npy(path: &Path, shape: Vec<usize>, values: Vec<f32>) {
    let array = NpyArray {
        shape,
        data: NpyData::F32(values),
    };
    std::fs::write(path, write_npy(&array)).expect("write npy");
}

/// CRC-32 (IEEE) of `bytes`, for hand-made PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG signature and IHDR claiming `width × height` 8-bit grey pixels, with no image data.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&width.to_be_bytes());
    chunk.extend_from_slice(&height.to_be_bytes());
    chunk.extend_from_slice(&[8, 0, 0, 0, 0]);
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&crc32(&chunk).to_be_bytes());
    out
}

fn setup() -> Fixture {
    let fx = Fixture {
        root: tempfile::tempdir().expect("tempdir"),
        scratch: tempfile::tempdir().expect("tempdir"),
    };
    let train = fx.o("train");
    ok(&with(&["train", "--out", &train], &TINY_TRAIN));
    ok(&[
        "quantize",
        "--checkpoint",
        &fx.o("train/model.ckpt"),
        "--out",
        &fx.o(""),
        "--calib-samples",
        "4",
        "--eval-samples",
        "2",
        "--method",
        "minmax",
    ]);
    ok(&[
        "bench",
        "--model",
        &fx.o("unet_int8.tflite"),
        "--float-model",
        &fx.o("unet_fp32.tflite"),
        "--checkpoint",
        &fx.o("train/model.ckpt"),
        "--backends=rust-int8",
        "--runs",
        "2",
        "--warmup",
        "0",
        "--slices",
        "2",
        "--out",
        &fx.o("bench"),
    ]);

    // Inputs for the cases.
    let s = fx.scratch.path();
    std::fs::write(s.join("garbage.tflite"), b"definitely not a flatbuffer").unwrap();
    std::fs::write(s.join("garbage.ckpt"), b"not a checkpoint at all").unwrap();
    std::fs::write(s.join("garbage.npy"), b"\x93NUMPY garbage").unwrap();
    let model = std::fs::read(fx.out().join("unet_int8.tflite")).unwrap();
    std::fs::write(s.join("truncated.tflite"), &model[..model.len() / 2]).unwrap();
    let ckpt = std::fs::read(fx.out().join("train/model.ckpt")).unwrap();
    let mut flipped = ckpt.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    std::fs::write(s.join("flipped.ckpt"), &flipped).unwrap();
    let n = 32 * 32;
    let slices: Vec<f32> = (0..4 * n).map(|i| ((i % 97) as f32) / 50.0 - 1.0).collect();
    write_f32_npy(&s.join("images.npy"), vec![4, 32, 32], slices.clone());
    let mut with_nan = slices.clone();
    with_nan[5] = f32::NAN;
    write_f32_npy(&s.join("nan.npy"), vec![4, 32, 32], with_nan);
    write_f32_npy(
        &s.join("wrong_size.npy"),
        vec![4, 16, 16],
        vec![0.5; 4 * 256],
    );
    write_f32_npy(&s.join("masks255.npy"), vec![4, 32, 32], vec![255.0; 4 * n]);
    let masks01: Vec<f32> = (0..4 * n)
        .map(|i| f32::from(u8::from(i % 7 == 0)))
        .collect();
    write_f32_npy(&s.join("masks01.npy"), vec![4, 32, 32], masks01);
    let one: Vec<f32> = slices[..n].to_vec();
    write_f32_npy(&s.join("slice.npy"), vec![32, 32], one.clone());
    write_f32_npy(&s.join("slice_64x16.npy"), vec![64, 16], one.clone());
    let mut one_inf = one;
    one_inf[3] = f32::INFINITY;
    write_f32_npy(&s.join("slice_inf.npy"), vec![32, 32], one_inf);
    std::fs::write(s.join("huge.png"), png_header_only(100_000, 100_000)).unwrap();
    std::fs::write(s.join("notes.txt"), b"hello").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(s.join("notes.txt"), s.join("link.npy")).unwrap();
    // A float model with one NaN weight.
    let mut float = tflite_writer::read_model_file(&fx.out().join("unet_fp32.tflite")).unwrap();
    let sg = &float.subgraphs[0];
    let weights = sg
        .tensors
        .iter()
        .filter(|t| t.dtype == tflite_writer::TensorType::Float32 && t.buffer > 0)
        .map(|t| t.buffer as usize)
        .find(|&b| float.buffers[b].data.len() >= 4)
        .expect("a float weight buffer");
    float.buffers[weights].data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    tflite_writer::write_model_file(&float, &s.join("nan_weights.tflite")).unwrap();
    // A `vela` that runs but fails to compile.
    let bin = s.join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let vela = bin.join("vela");
    std::fs::write(
        &vela,
        "#!/bin/sh\nif [ \"$1\" = \"--version\" ]; then echo 4.4.1; exit 0; fi\necho 'vela: Error: fake compiler failure' >&2\nexit 1\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&vela, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // A Decathlon directory with a malformed dataset.json.
    let dec = s.join("decathlon");
    std::fs::create_dir_all(&dec).unwrap();
    std::fs::write(dec.join("dataset.json"), b"{\"training\": [").unwrap();
    // A plain file where a directory is expected.
    std::fs::write(s.join("a_file"), b"x").unwrap();
    fx
}

struct Case {
    name: &'static str,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    needles: Vec<&'static str>,
}

fn case(name: &'static str, args: &[&str], needles: &[&'static str]) -> Case {
    Case {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        envs: Vec::new(),
        needles: needles.to_vec(),
    }
}

fn cases(fx: &Fixture) -> Vec<Case> {
    let int8 = fx.o("unet_int8.tflite");
    let fp32 = fx.o("unet_fp32.tflite");
    let ckpt = fx.o("train/model.ckpt");
    let out = fx.o("");
    let bench_out = fx.o("bench");
    let train_out = fx.o("train");
    let garbage = fx.s("garbage.tflite");
    let path_env = format!(
        "{}:{}",
        fx.s("fakebin"),
        std::env::var("PATH").unwrap_or_default()
    );
    let q = |extra: &[&str]| -> Vec<String> {
        let v = [
            "quantize",
            "--checkpoint",
            &ckpt,
            "--out",
            &out,
            "--calib-samples",
            "4",
            "--eval-samples",
            "2",
            "--method",
            "minmax",
        ];
        with(&v, extra)
    };
    let b = |extra: &[&str]| -> Vec<String> {
        let v = [
            "bench",
            "--model",
            &int8,
            "--float-model",
            &fp32,
            "--checkpoint",
            &ckpt,
            "--runs",
            "2",
            "--warmup",
            "0",
            "--out",
            &bench_out,
        ];
        with(&v, extra)
    };
    let t = |extra: &[&str]| -> Vec<String> {
        let base = with(&["train", "--out", &train_out], &TINY_TRAIN);
        let base: Vec<&str> = base.iter().map(String::as_str).collect();
        with(&base, extra)
    };
    let owned = |name, args: Vec<String>, needles: &[&'static str]| Case {
        name,
        args,
        envs: Vec::new(),
        needles: needles.to_vec(),
    };
    vec![
        // Flags that used to panic or run with nonsense.
        owned(
            "train --max-minutes=inf",
            t(&["--max-minutes=inf"]),
            &["--max-minutes", "finite"],
        ),
        owned(
            "train --max-minutes=NaN",
            t(&["--max-minutes=NaN"]),
            &["--max-minutes", "finite"],
        ),
        owned(
            "train --max-minutes=-1",
            t(&["--max-minutes=-1"]),
            &["--max-minutes", "finite"],
        ),
        case(
            "pipeline --train-minutes=inf",
            &["pipeline", "--out", &out, "--train-minutes=inf"],
            &["--train-minutes", "finite"],
        ),
        case(
            "pipeline --max-secs=-1 fails before training",
            &["pipeline", "--out", &out, "--max-secs=-1"],
            &["--max-secs", "above 0"],
        ),
        owned(
            "bench --max-secs=-1",
            b(&["--max-secs=-1"]),
            &["--max-secs", "above 0"],
        ),
        owned(
            "bench --max-secs=inf",
            b(&["--max-secs=inf"]),
            &["--max-secs", "finite"],
        ),
        owned(
            "bench --max-secs=nan",
            b(&["--max-secs=nan"]),
            &["--max-secs", "finite"],
        ),
        owned(
            "train --slices 100000000000",
            t(&["--slices", "100000000000"]),
            &["--slices", "10000000"],
        ),
        owned(
            "bench --slices 100000000",
            b(&["--slices", "100000000"]),
            &["--slices", "4096"],
        ),
        owned(
            "bench --slices 0",
            b(&["--slices", "0"]),
            &["--slices", "1 to 4096"],
        ),
        owned(
            "bench --backends=",
            b(&["--backends="]),
            &["no backend given"],
        ),
        owned(
            "bench --backends=bogus",
            b(&["--backends=bogus"]),
            &["bogus"],
        ),
        owned(
            "bench where every backend fails",
            b(&[
                "--backends=rust-f32",
                "--float-model",
                &fx.s("missing.tflite"),
            ]),
            &["no backend produced a result", "missing.tflite"],
        ),
        owned(
            "train --lr nan",
            t(&["--lr", "nan", "--overwrite"]),
            &["learning rate"],
        ),
        owned(
            "train --batch-size 0",
            t(&["--batch-size", "0", "--overwrite"]),
            &["batch size"],
        ),
        owned(
            "train --size 33",
            t(&["--size", "33", "--overwrite"]),
            &["33"],
        ),
        // Runs and checkpoints.
        owned(
            "train into a used directory",
            t(&[]),
            &["already holds a training run", "model.ckpt", "--resume"],
        ),
        owned(
            "train --resume (bare) with a garbage last.ckpt",
            t(&["--resume", &fx.s("garbage.ckpt")]),
            &["garbage.ckpt", "checkpoint"],
        ),
        owned(
            "train --resume a bit-flipped checkpoint",
            t(&["--resume", &fx.s("flipped.ckpt")]),
            &["flipped.ckpt", "corrupt checkpoint"],
        ),
        case(
            "train --resume without last.ckpt",
            &[
                "train",
                "--out",
                &fx.s("empty_run"),
                "--size",
                "32",
                "--fms",
                "4",
                "--resume",
            ],
            &["last.ckpt"],
        ),
        owned(
            "train --out under a file",
            {
                let mut v = t(&[]);
                let i = v.iter().position(|a| a == "--out").unwrap();
                v[i + 1] = fx.s("a_file/train");
                v
            },
            &["a_file", "not writable"],
        ),
        owned(
            "train --data decathlon without --data-path",
            t(&["--data", "decathlon", "--overwrite"]),
            &["data"],
        ),
        owned(
            "train --data decathlon, missing directory",
            t(&[
                "--data",
                "decathlon",
                "--data-path",
                &fx.s("missing_dir"),
                "--overwrite",
            ]),
            &["missing_dir"],
        ),
        owned(
            "train --data decathlon, malformed dataset.json",
            t(&[
                "--data",
                "decathlon",
                "--data-path",
                &fx.s("decathlon"),
                "--overwrite",
            ]),
            &["dataset.json", "malformed"],
        ),
        // Quantize.
        case(
            "quantize, missing checkpoint",
            &[
                "quantize",
                "--checkpoint",
                &fx.s("missing.ckpt"),
                "--out",
                &out,
            ],
            &["missing.ckpt", "not found"],
        ),
        case(
            "quantize, garbage checkpoint",
            &[
                "quantize",
                "--checkpoint",
                &fx.s("garbage.ckpt"),
                "--out",
                &out,
            ],
            &["garbage.ckpt", "checkpoint"],
        ),
        case(
            "quantize, bit-flipped checkpoint",
            &[
                "quantize",
                "--checkpoint",
                &fx.s("flipped.ckpt"),
                "--out",
                &out,
            ],
            &["flipped.ckpt", "corrupt"],
        ),
        case(
            "quantize --model garbage",
            &["quantize", "--model", &garbage, "--out", &out],
            &["garbage.tflite"],
        ),
        case(
            "quantize --model truncated",
            &[
                "quantize",
                "--model",
                &fx.s("truncated.tflite"),
                "--out",
                &out,
            ],
            &["truncated.tflite"],
        ),
        case(
            "quantize --model already int8",
            &[
                "quantize",
                "--model",
                &int8,
                "--out",
                &out,
                "--calib-samples",
                "4",
                "--eval-samples",
                "2",
            ],
            &["float32 model is needed"],
        ),
        case(
            "quantize --model with a NaN weight",
            &[
                "quantize",
                "--model",
                &fx.s("nan_weights.tflite"),
                "--out",
                &out,
                "--calib-samples",
                "4",
                "--eval-samples",
                "2",
            ],
            &["NaN or infinite", "tensor"],
        ),
        owned(
            "quantize --calib npy without --data-path",
            q(&["--calib", "npy"]),
            &["--data-path"],
        ),
        owned(
            "quantize --calib npy, garbage file",
            q(&["--calib", "npy", "--data-path", &fx.s("garbage.npy")]),
            &["garbage.npy"],
        ),
        owned(
            "quantize --calib npy, NaN slice",
            q(&["--calib", "npy", "--data-path", &fx.s("nan.npy")]),
            &["nan.npy", "NaN"],
        ),
        owned(
            "quantize --calib npy, 16x16 slices for a 32x32 model",
            q(&["--calib", "npy", "--data-path", &fx.s("wrong_size.npy")]),
            &["calibration"],
        ),
        owned(
            "quantize --eval npy, masks of 255",
            q(&[
                "--eval",
                "npy",
                "--eval-data-path",
                &fx.s("images.npy"),
                "--eval-masks",
                &fx.s("masks255.npy"),
            ]),
            &["masks255.npy", "not 0 or 1"],
        ),
        owned(
            "quantize --eval npy, NaN images",
            q(&[
                "--eval",
                "npy",
                "--eval-data-path",
                &fx.s("nan.npy"),
                "--eval-masks",
                &fx.s("images.npy"),
            ]),
            &["nan.npy", "evaluation"],
        ),
        owned(
            "quantize --method bogus",
            q(&["--method", "bogus"]),
            &["bogus"],
        ),
        case(
            "quantize --calib-samples 0",
            &[
                "quantize",
                "--checkpoint",
                &ckpt,
                "--out",
                &out,
                "--calib-samples",
                "0",
            ],
            &["--calib-samples 0"],
        ),
        case(
            "quantize --eval-samples 0",
            &[
                "quantize",
                "--checkpoint",
                &ckpt,
                "--out",
                &out,
                "--calib-samples",
                "4",
                "--eval-samples",
                "0",
            ],
            &["--eval-samples 0"],
        ),
        owned(
            "quantize --calib-samples above the split",
            q(&["--calib-samples", "1000"]),
            &["calibration", "1000"],
        ),
        owned(
            "quantize --save-calib onto a symlink",
            q(&["--save-calib", &fx.s("link.npy")]),
            &["link.npy", "symbolic link"],
        ),
        owned(
            "quantize --save-calib onto /dev/null",
            q(&["--save-calib", "/dev/null"]),
            &["/dev/null", "not a regular file"],
        ),
        Case {
            name: "quantize --vela with a failing vela",
            args: q(&["--vela"]),
            envs: vec![("PATH".into(), path_env)],
            needles: vec!["vela", "fake compiler failure"],
        },
        // Infer.
        case(
            "infer, garbage model",
            &["infer", &garbage, "--input", &fx.s("slice.npy")],
            &["garbage.tflite"],
        ),
        case(
            "infer, missing model",
            &[
                "infer",
                &fx.s("missing.tflite"),
                "--input",
                &fx.s("slice.npy"),
            ],
            &["missing.tflite"],
        ),
        case(
            "infer, missing input",
            &["infer", &int8, "--input", &fx.s("missing.npy")],
            &["missing.npy"],
        ),
        case(
            "infer, infinite input",
            &["infer", &int8, "--input", &fx.s("slice_inf.npy")],
            &["slice_inf.npy", "not finite"],
        ),
        case(
            "infer, [64,16] for a 32x32 model",
            &["infer", &int8, "--input", &fx.s("slice_64x16.npy")],
            &["slice_64x16.npy", "shape"],
        ),
        case(
            "infer, unknown input format",
            &["infer", &int8, "--input", &fx.s("notes.txt")],
            &["notes.txt", "unknown input format"],
        ),
        case(
            "infer, PNG claiming 100000x100000",
            &["infer", &int8, "--input", &fx.s("huge.png")],
            &["huge.png"],
        ),
        case(
            "infer --output /dev/null",
            &[
                "infer",
                &int8,
                "--input",
                &fx.s("slice.npy"),
                "--output",
                "/dev/null",
            ],
            &["/dev/null", "not a regular file"],
        ),
        case(
            "infer --output onto a symlink",
            &[
                "infer",
                &int8,
                "--input",
                &fx.s("slice.npy"),
                "--output",
                &fx.s("link.npy"),
            ],
            &["link.npy", "symbolic link"],
        ),
        case(
            "infer --png into a directory",
            &[
                "infer",
                &int8,
                "--input",
                &fx.s("slice.npy"),
                "--png",
                &fx.s("fakebin"),
            ],
            &["fakebin", "directory"],
        ),
        // Inspect.
        case(
            "inspect, garbage",
            &["inspect", &garbage],
            &["garbage.tflite"],
        ),
        case(
            "inspect, truncated",
            &["inspect", &fx.s("truncated.tflite")],
            &["truncated.tflite"],
        ),
        case(
            "inspect, missing",
            &["inspect", &fx.s("missing.tflite")],
            &["missing.tflite"],
        ),
        // Bench inputs.
        owned(
            "bench --model garbage",
            b(&["--model", &garbage]),
            &["garbage.tflite"],
        ),
        owned(
            "bench --model missing",
            b(&["--model", &fx.s("missing.tflite")]),
            &["missing.tflite"],
        ),
        owned(
            "bench --inputs NaN slices",
            b(&["--inputs", &fx.s("nan.npy")]),
            &["nan.npy", "NaN"],
        ),
        owned(
            "bench --inputs 16x16 slices",
            b(&["--inputs", &fx.s("wrong_size.npy")]),
            &["wrong_size.npy", "shape"],
        ),
        owned(
            "bench --masks of 255",
            b(&[
                "--inputs",
                &fx.s("images.npy"),
                "--masks",
                &fx.s("masks255.npy"),
            ]),
            &["masks255.npy", "not 0 or 1"],
        ),
        owned(
            "bench --data decathlon, missing directory",
            b(&["--data", "decathlon", "--data-path", &fx.s("missing_dir")]),
            &["missing_dir"],
        ),
        // Data.
        case(
            "data preview --size 33",
            &["data", "preview", "--size", "33", "--out", &fx.s("preview")],
            &["33"],
        ),
        case(
            "data stats, decathlon without a dataset",
            &[
                "data",
                "stats",
                "--source",
                "decathlon",
                "--data-path",
                &fx.s("missing_dir"),
            ],
            &["missing_dir"],
        ),
        case(
            "data preview --count 0",
            &["data", "preview", "--count", "0", "--out", &fx.s("preview")],
            &["--count"],
        ),
    ]
}

#[test]
fn bad_inputs_fail_cleanly_and_leave_earlier_artifacts_alone() {
    let fx = setup();
    let before = snapshot(fx.out());
    assert!(before.keys().any(|p| p.ends_with("train/model.ckpt")));
    assert!(before.keys().any(|p| p.ends_with("unet_int8.tflite")));
    assert!(before.keys().any(|p| p.ends_with("quant_report.json")));
    assert!(before.keys().any(|p| p.ends_with("bench/report.json")));
    let cases = cases(&fx);
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let envs: Vec<(&str, &str)> = case
            .envs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let out = run(&args, &envs);
        let all = text(&out);
        let mut problems = Vec::new();
        match out.status.code() {
            None => problems.push(format!("killed by a signal ({:?})", out.status)),
            Some(0) => problems.push("exit code 0".to_string()),
            Some(_) => {}
        }
        if all.contains("panicked") {
            problems.push("panicked".into());
        }
        for needle in &case.needles {
            if !all.contains(needle) {
                problems.push(format!("message lacks {needle:?}"));
            }
        }
        let after = snapshot(fx.out());
        if after != before {
            let changed: Vec<_> = after
                .keys()
                .chain(before.keys())
                .filter(|p| after.get(*p) != before.get(*p))
                .map(|p| p.strip_prefix(fx.out()).unwrap_or(p).display().to_string())
                .collect();
            problems.push(format!("artifacts changed: {changed:?}"));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n    args: {:?}\n    output: {}",
                case.name,
                problems.join("; "),
                case.args,
                all.trim()
                    .lines()
                    .take(6)
                    .collect::<Vec<_>>()
                    .join("\n      ")
            ));
        }
    }
    // The artifacts still load.
    tflite_writer::read_model_file(&fx.out().join("unet_int8.tflite")).expect("int8 model loads");
    let device = unet_train::BackendKind::Flex.device().expect("flex");
    unet_train::load_model(&fx.out().join("train/model.ckpt"), &device).expect("checkpoint loads");
    assert!(
        failures.is_empty(),
        "{} of {} bad-input cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
