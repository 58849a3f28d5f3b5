//! `litert:cpu` really runs here, and its int8 output is byte-identical to the Python LiteRT
//! interpreter's on the same model and the same int8 inputs; `litert:npu` and `litert:gpu`
//! report LiteRT's own status. Skipped (with the reason printed) only where ai-edge-litert is
//! not installed; CI installs it.

use std::ffi::OsStr;
use std::path::Path;

use tflite_runtime::npy::{NpyArray, NpyData, read_npy, write_npy};
use unet_bench::backend::{Engine, LoadError, Output};
use unet_bench::backends::litert::{Accelerator, LiteRtConfig, LiteRtEngine, find_library};
use unet_bench::inputs::{BenchInputs, InputSource};

const SIZE: usize = 32;

fn tiny_model(dir: &Path) -> std::path::PathBuf {
    let (int8, _) = unet_bench::cli::write_synth_models(dir, 4, SIZE, 7).expect("synth models");
    int8
}

fn engine(model: &Path, accelerator: Accelerator, threads: usize) -> LiteRtEngine {
    LiteRtEngine::new(LiteRtConfig {
        model: model.to_path_buf(),
        accelerator,
        threads,
        library: None,
        dispatch_dir: None,
    })
}

#[test]
fn litert_cpu_is_byte_identical_to_the_python_interpreter() {
    let probe = litert_oracle::probe_litert().and_then(|()| find_library(None).map(|_| ()));
    if litert_oracle::require("LiteRT (pip ai-edge-litert)", probe).is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // `UNET_BENCH_LITERT_MODEL=artifacts/unet_int8.tflite` runs the same check on a real model
    // (one `[1,H,W,1]` int8 input); by default a tiny random-weight U-Net made here.
    let (model, size) = match std::env::var_os("UNET_BENCH_LITERT_MODEL") {
        Some(path) => {
            let path = std::path::PathBuf::from(path);
            let m = tflite_writer::read_model_file(&path).expect("UNET_BENCH_LITERT_MODEL");
            let g = &m.subgraphs[0];
            let shape = &g.tensors[g.inputs[0] as usize].shape;
            (path, shape[1] as usize)
        }
        None => (tiny_model(dir.path()), SIZE),
    };
    let inputs =
        BenchInputs::load(&InputSource::Synthetic { seed: 3 }, 4, size, size).expect("inputs");

    for threads in [1, 2] {
        let mut litert = engine(&model, Accelerator::Cpu, threads);
        match litert.load() {
            Ok(()) => {}
            Err(LoadError::Unavailable(why)) => {
                panic!("litert:cpu must run here, got skipped: {why}")
            }
            Err(LoadError::Failed(e)) => panic!("litert:cpu failed: {e}"),
        }
        // The int8 inputs exactly as the engine quantises them.
        let interpreter_model = tflite_writer::read_model_file(&model).expect("model");
        let graph = &interpreter_model.subgraphs[0];
        let q = graph.tensors[graph.inputs[0] as usize]
            .quantization
            .clone()
            .expect("quantised input");
        let mut all_inputs: Vec<i8> = Vec::new();
        let mut ours: Vec<i8> = Vec::new();
        for image in &inputs.images {
            let mut x = vec![0i8; image.len()];
            tflite_runtime::reference::quantize::quantize_f32_i8(
                q.scale[0],
                q.zero_point[0] as i32,
                image,
                &mut x,
            );
            all_inputs.extend(&x);
            litert.set_input(image).expect("set_input");
            litert.invoke().expect("invoke");
            match litert.output().expect("output") {
                Output::Int8 { values, .. } => ours.extend(values),
                other => panic!("int8 model gave {other:?}"),
            }
        }
        let x_path = dir.path().join("x.npy");
        let y_path = dir.path().join("y.npy");
        let array = NpyArray {
            shape: vec![inputs.len(), size, size, 1],
            data: NpyData::I8(all_inputs),
        };
        std::fs::write(&x_path, write_npy(&array)).expect("write x.npy");
        let threads_arg = threads.to_string();
        if let Err(e) = litert_oracle::run([
            OsStr::new("batch"),
            model.as_os_str(),
            x_path.as_os_str(),
            y_path.as_os_str(),
            OsStr::new("default"),
            OsStr::new(&threads_arg),
        ]) {
            panic!("{e}");
        }
        let theirs = read_npy(&std::fs::read(&y_path).expect("y.npy")).expect("npy");
        let NpyData::I8(theirs) = theirs.data else {
            panic!("oracle output is not int8")
        };
        assert_eq!(theirs.len(), ours.len());
        let differing = theirs.iter().zip(&ours).filter(|(a, b)| a != b).count();
        assert_eq!(
            differing,
            0,
            "{threads} thread(s): {differing} of {} bytes differ from the Python interpreter",
            ours.len()
        );
        // A model whose output is constant would make the comparison vacuous.
        assert!(ours.iter().any(|&v| v != ours[0]), "output is constant");
    }
}

#[test]
fn litert_npu_and_gpu_report_litert_status_without_cpu_fallback() {
    let probe = find_library(None);
    if litert_oracle::require("libLiteRt.so (pip ai-edge-litert)", probe).is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let model = tiny_model(dir.path());
    for (accelerator, status) in [(Accelerator::Npu, "504"), (Accelerator::Gpu, "status 3")] {
        let mut e = engine(&model, accelerator, 1);
        match e.load() {
            Err(LoadError::Unavailable(why)) => {
                assert!(why.contains(status), "{}: {why}", accelerator.name());
            }
            Ok(()) => eprintln!(
                "note: {} compiled on this machine (a real device is present)",
                accelerator.name()
            ),
            Err(LoadError::Failed(err)) => panic!("{}: {err}", accelerator.name()),
        }
    }
}

/// A `libLiteRt.so` this machine cannot load (here: not a shared object at all; on a board,
/// the host's x86 library) skips the row with the loader's reason instead of failing it.
#[test]
fn a_library_this_machine_cannot_load_skips_the_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let library = dir.path().join("libLiteRt.so");
    std::fs::write(&library, b"not a shared object").expect("write");
    let mut litert = LiteRtEngine::new(LiteRtConfig {
        model: tiny_model(dir.path()),
        accelerator: Accelerator::Cpu,
        threads: 1,
        library: Some(library),
        dispatch_dir: None,
    });
    match litert.load() {
        Err(LoadError::Unavailable(why)) => {
            assert!(
                why.contains("cannot load") && why.contains("libLiteRt.so"),
                "{why}"
            );
        }
        Err(LoadError::Failed(e)) => panic!("expected a skip, got a failure: {e}"),
        Ok(()) => panic!("a text file loaded as libLiteRt.so"),
    }
}

/// LiteRT's profiler (enabled on a second compiled model) gives a time for every operator of
/// our int8 U-Net, each matched to the model's operator by order and kind, and the per-layer
/// times add up to about one invoke.
#[test]
fn litert_cpu_profiles_every_operator() {
    let probe = litert_oracle::probe_litert().and_then(|()| find_library(None).map(|_| ()));
    if litert_oracle::require("LiteRT (pip ai-edge-litert)", probe).is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let model = tiny_model(dir.path());
    let layers = unet_bench::layers::model_layers(&model).expect("layers");
    let inputs =
        BenchInputs::load(&InputSource::Synthetic { seed: 3 }, 1, SIZE, SIZE).expect("inputs");
    let mut litert = engine(&model, Accelerator::Cpu, 1);
    litert
        .load()
        .unwrap_or_else(|_| panic!("litert:cpu must load"));
    litert.set_input(&inputs.images[0]).expect("input");
    litert.invoke().expect("invoke");
    match litert.layer_profile(5) {
        unet_bench::layers::LayerProfile::Measured {
            layers: times,
            runs,
            ..
        } => {
            assert_eq!(runs, 5);
            assert_eq!(times.len(), layers.len(), "{times:?}");
            for (t, l) in times.iter().zip(&layers) {
                assert_eq!(
                    (t.index, &t.output, &t.op),
                    (Some(l.index), &l.output, &l.op)
                );
                assert!(t.ms >= 0.0 && t.ms.is_finite(), "{t:?}");
            }
            let total: f64 = times.iter().map(|t| t.ms).sum();
            assert!(total > 0.0, "{times:?}");
        }
        other => panic!("no LiteRT profile: {other:?}"),
    }
    // The profiled twin did not disturb the timed engine.
    litert.set_input(&inputs.images[0]).expect("input");
    litert.invoke().expect("invoke after profiling");
}
