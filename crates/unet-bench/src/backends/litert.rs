//! `litert:<cpu|gpu|npu>`: LiteRT's C API ("compiled model") from `libLiteRt.so`, loaded at run
//! time with `dlopen`. The call sequence and ABI are those of LiteRT's public C headers
//! (`litert/c/*.h`), verified against ai-edge-litert 2.3.0.
//!
//! The accelerator mask is exactly the requested one: LiteRT silently falls back to the CPU
//! when the CPU bit is set beside GPU or NPU, so a GPU/NPU row never sets it and reports
//! LiteRT's own status when there is no such device.
//!
//! What the native library prints to stderr while it loads and compiles (the GPU
//! accelerator's WebGPU/Vulkan errors, a dispatch library's complaints) is captured and put
//! into the row's skip/failure reason, or into the row's details when it compiled, instead of
//! the terminal.

use std::ffi::{CString, c_char, c_int, c_void};
use std::path::{Path, PathBuf};

use tflite_writer::TensorType;

use crate::backend::{Engine, LoadError, Output};
use crate::error::BenchError;
use crate::native_stderr;

type Status = i32;
type Handle = *mut c_void;

/// LiteRT accelerators (the bit in `LiteRtHwAccelerators`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accelerator {
    /// XNNPACK on the CPU.
    Cpu,
    /// The GPU accelerator (WebGPU/OpenCL/...).
    Gpu,
    /// The NPU accelerator (vendor dispatch library).
    Npu,
}

impl Accelerator {
    /// The `LiteRtHwAccelerators` bit.
    pub fn mask(self) -> c_int {
        match self {
            Accelerator::Cpu => 1,
            Accelerator::Gpu => 2,
            Accelerator::Npu => 4,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Accelerator::Cpu => "cpu",
            Accelerator::Gpu => "gpu",
            Accelerator::Npu => "npu",
        }
    }

    /// Parses `cpu`, `gpu` or `npu`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Some(Accelerator::Cpu),
            "gpu" => Some(Accelerator::Gpu),
            "npu" => Some(Accelerator::Npu),
            _ => None,
        }
    }
}

/// The symbolic name of a `LiteRtStatus` (`LiteRtGetStatusString` is not exported).
pub fn status_name(status: Status) -> &'static str {
    match status {
        0 => "kLiteRtStatusOk",
        1 => "kLiteRtStatusErrorInvalidArgument",
        2 => "kLiteRtStatusErrorMemoryAllocationFailure",
        3 => "kLiteRtStatusErrorRuntimeFailure",
        4 => "kLiteRtStatusErrorMissingInputTensor",
        5 => "kLiteRtStatusErrorUnsupported",
        6 => "kLiteRtStatusErrorNotFound",
        7 => "kLiteRtStatusErrorTimeoutExpired",
        8 => "kLiteRtStatusErrorWrongVersion",
        9 => "kLiteRtStatusErrorUnknown",
        10 => "kLiteRtStatusErrorAlreadyExists",
        100 => "kLiteRtStatusCancelled",
        500 => "kLiteRtStatusErrorFileIO",
        501 => "kLiteRtStatusErrorInvalidFlatbuffer",
        502 => "kLiteRtStatusErrorDynamicLoading",
        503 => "kLiteRtStatusErrorSerialization",
        504 => "kLiteRtStatusErrorCompilation",
        _ => "unknown status",
    }
}

fn check(call: &'static str, status: Status) -> Result<(), BenchError> {
    if status == 0 {
        Ok(())
    } else {
        Err(BenchError::LiteRt {
            call,
            status,
            name: status_name(status),
        })
    }
}

#[repr(C)]
#[derive(Clone, Copy)]
struct LiteRtAny {
    ty: i32,
    value: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct EnvOption {
    tag: i32,
    value: LiteRtAny,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Layout {
    bits: u32,
    dims: [i32; 8],
    strides: [u32; 8],
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct RankedTensorType {
    element_type: i32,
    layout: Layout,
}

const ANY_INT: i32 = 2;
const ANY_STRING: i32 = 8;
const ENV_DISPATCH_LIBRARY_DIR: i32 = 1;
const ENV_RUNTIME_LIBRARY_DIR: i32 = 22;
const ENV_MIN_LOGGER_SEVERITY: i32 = 25;
const ELEMENT_F32: i32 = 1;
const ELEMENT_I8: i32 = 9;
const ELEMENT_I16: i32 = 7;

/// Bytes per element of the model's input/output type.
fn element_bytes(dtype: TensorType) -> usize {
    match dtype {
        TensorType::Int8 => 1,
        TensorType::Int16 => 2,
        _ => 4,
    }
}
const LOCK_READ: i32 = 0;
const LOCK_WRITE: i32 = 1;

type Dtor = unsafe extern "C" fn(*mut c_void);

/// Function pointers into `libLiteRt.so`, kept valid by the `Library` stored beside them.
struct Api {
    create_environment: unsafe extern "C" fn(c_int, *const EnvOption, *mut Handle) -> Status,
    destroy_environment: unsafe extern "C" fn(Handle),
    create_model_from_file: unsafe extern "C" fn(Handle, *const c_char, *mut Handle) -> Status,
    destroy_model: unsafe extern "C" fn(Handle),
    create_options: unsafe extern "C" fn(*mut Handle) -> Status,
    destroy_options: unsafe extern "C" fn(Handle),
    set_accelerators: unsafe extern "C" fn(Handle, c_int) -> Status,
    create_opaque_options:
        unsafe extern "C" fn(*const c_char, *mut c_void, Option<Dtor>, *mut Handle) -> Status,
    add_opaque_options: unsafe extern "C" fn(Handle, Handle) -> Status,
    create_compiled_model: unsafe extern "C" fn(Handle, Handle, Handle, *mut Handle) -> Status,
    destroy_compiled_model: unsafe extern "C" fn(Handle),
    input_layout: unsafe extern "C" fn(Handle, usize, usize, *mut Layout) -> Status,
    output_layouts: unsafe extern "C" fn(Handle, usize, usize, *mut Layout, bool) -> Status,
    input_requirements: unsafe extern "C" fn(Handle, usize, usize, *mut Handle) -> Status,
    output_requirements: unsafe extern "C" fn(Handle, usize, usize, *mut Handle) -> Status,
    requirements_size: unsafe extern "C" fn(Handle, *mut usize) -> Status,
    create_managed_buffer:
        unsafe extern "C" fn(Handle, *const RankedTensorType, Handle, *mut Handle) -> Status,
    destroy_buffer: unsafe extern "C" fn(Handle),
    lock_buffer: unsafe extern "C" fn(Handle, *mut *mut c_void, i32) -> Status,
    unlock_buffer: unsafe extern "C" fn(Handle) -> Status,
    run_compiled_model:
        unsafe extern "C" fn(Handle, usize, usize, *mut Handle, usize, *mut Handle) -> Status,
    /// The profiler entry points (`litert_profiler.h`), absent from older libraries.
    profiler: Option<ProfilerApi>,
    _library: libloading::Library,
}

/// LiteRT's profiler C API.
struct ProfilerApi {
    compiled_model_profiler: unsafe extern "C" fn(Handle, *mut Handle) -> Status,
    start: unsafe extern "C" fn(Handle) -> Status,
    stop: unsafe extern "C" fn(Handle) -> Status,
    num_events: unsafe extern "C" fn(Handle, *mut c_int) -> Status,
    events: unsafe extern "C" fn(Handle, c_int, *mut ProfiledEventData) -> Status,
}

/// `ProfiledEventData` of `litert_profiler_event.h` (104 bytes on 64-bit targets).
#[repr(C)]
#[derive(Clone, Copy)]
struct ProfiledEventData {
    tag: *const c_char,
    event_type: i32,
    start_timestamp_us: u64,
    elapsed_time_us: u64,
    begin_mem_usage: [usize; 3],
    end_mem_usage: [usize; 3],
    event_metadata1: u64,
    event_metadata2: u64,
    event_source: i32,
}

/// `OPERATOR_INVOKE_EVENT`: a TFLite built-in kernel; metadata 1 is the operator's index.
const EVENT_OPERATOR_INVOKE: i32 = 2;
/// `DELEGATE_PROFILED_OPERATOR_INVOKE_EVENT`: one operator inside a delegate (XNNPACK's own
/// operators; metadata 1 is its index within the delegated partition, not the model's).
const EVENT_DELEGATE_PROFILED_OPERATOR: i32 = 8;

impl Api {
    fn load(path: &Path) -> Result<Self, BenchError> {
        let dyn_err = |source| BenchError::DynamicLoad {
            path: path.to_path_buf(),
            source,
        };
        // SAFETY: loading libLiteRt.so runs its initialisers, which only register LiteRT's own
        // accelerators; we trust the library the user (or the pip package) provides.
        let library = unsafe { libloading::Library::new(path) }.map_err(dyn_err)?;
        macro_rules! sym {
            ($name:literal) => {
                // SAFETY: the type on the left of each assignment is the C prototype of the
                // symbol in LiteRT's public headers (litert_*.h, unchanged since 2.1.6); the
                // pointer stays valid because `_library` lives as long as `Api`.
                *unsafe { library.get(concat!($name, "\0").as_bytes()) }.map_err(dyn_err)?
            };
        }
        Ok(Self {
            create_environment: sym!("LiteRtCreateEnvironment"),
            destroy_environment: sym!("LiteRtDestroyEnvironment"),
            create_model_from_file: sym!("LiteRtCreateModelFromFile"),
            destroy_model: sym!("LiteRtDestroyModel"),
            create_options: sym!("LiteRtCreateOptions"),
            destroy_options: sym!("LiteRtDestroyOptions"),
            set_accelerators: sym!("LiteRtSetOptionsHardwareAccelerators"),
            create_opaque_options: sym!("LiteRtCreateOpaqueOptions"),
            add_opaque_options: sym!("LiteRtAddOpaqueOptions"),
            create_compiled_model: sym!("LiteRtCreateCompiledModel"),
            destroy_compiled_model: sym!("LiteRtDestroyCompiledModel"),
            input_layout: sym!("LiteRtGetCompiledModelInputTensorLayout"),
            output_layouts: sym!("LiteRtGetCompiledModelOutputTensorLayouts"),
            input_requirements: sym!("LiteRtGetCompiledModelInputBufferRequirements"),
            output_requirements: sym!("LiteRtGetCompiledModelOutputBufferRequirements"),
            requirements_size: sym!("LiteRtGetTensorBufferRequirementsBufferSize"),
            create_managed_buffer: sym!("LiteRtCreateManagedTensorBufferFromRequirements"),
            destroy_buffer: sym!("LiteRtDestroyTensorBuffer"),
            lock_buffer: sym!("LiteRtLockTensorBuffer"),
            unlock_buffer: sym!("LiteRtUnlockTensorBuffer"),
            run_compiled_model: sym!("LiteRtRunCompiledModel"),
            profiler: ProfilerApi::load(&library),
            _library: library,
        })
    }
}

impl ProfilerApi {
    fn load(library: &libloading::Library) -> Option<Self> {
        macro_rules! opt_sym {
            ($name:literal) => {
                // SAFETY: as in `Api::load`: the prototypes of `litert_profiler.h` and
                // `litert_compiled_model.h`; `Api` keeps the library loaded.
                *unsafe { library.get(concat!($name, "\0").as_bytes()) }.ok()?
            };
        }
        Some(Self {
            compiled_model_profiler: opt_sym!("LiteRtCompiledModelGetProfiler"),
            start: opt_sym!("LiteRtStartProfiler"),
            stop: opt_sym!("LiteRtStopProfiler"),
            num_events: opt_sym!("LiteRtGetNumProfilerEvents"),
            events: opt_sym!("LiteRtGetProfilerEvents"),
        })
    }
}

/// One operator event of LiteRT's profiler, as [`map_profile`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileEvent {
    /// TFLite built-in kernel (`true`: `index` is the model's operator index) or an operator
    /// inside XNNPACK (`false`: `tag` names XNNPACK's operator).
    pub builtin: bool,
    /// The event's tag: the builtin's name or XNNPACK's operator (`Convolution (NHWC, QC8) IGEMM`).
    pub tag: String,
    /// Metadata 1: the model's operator index for builtins, XNNPACK's own index otherwise.
    pub index: u64,
    /// Microseconds.
    pub elapsed_us: f64,
}

/// Whether XNNPACK's operator `tag` can implement a TFLite operator of type `op`.
fn xnnpack_implements(tag: &str, op: &str) -> bool {
    let kinds: &[(&str, &[&str])] = &[
        ("Convolution", &["CONV_2D", "DEPTHWISE_CONV_2D"]),
        ("Fully Connected", &["CONV_2D", "FULLY_CONNECTED"]),
        ("Deconvolution", &["TRANSPOSE_CONV"]),
        ("Max Pooling", &["MAX_POOL_2D"]),
        ("Average Pooling", &["AVERAGE_POOL_2D"]),
        ("Copy", &["CONCATENATION", "RESHAPE"]),
        ("Concatenate", &["CONCATENATION"]),
        ("Sigmoid", &["LOGISTIC"]),
        ("Resize", &["RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR"]),
        ("Convert", &["QUANTIZE", "DEQUANTIZE"]),
        ("Add", &["ADD"]),
        ("Multiply", &["MUL"]),
        ("Subtract", &["SUB"]),
        ("Clamp", &["RELU", "RELU6", "RELU_N1_TO_1"]),
        ("Tanh", &["TANH"]),
        ("Softmax", &["SOFTMAX"]),
    ];
    kinds
        .iter()
        .any(|(prefix, ops)| tag.starts_with(prefix) && ops.contains(&op))
}

/// Turns `runs` invokes' worth of profiler events into one time per model operator.
///
/// Builtin events carry the operator's index. XNNPACK's events carry only its own per-partition
/// index, so they are aligned in order with the model's operators that no builtin event covers,
/// matching XNNPACK's operator kind to the TFLite operator type (`Deconvolution` ↔
/// `TRANSPOSE_CONV`, …); an operator XNNPACK split into several of its own operators gets their
/// sum. When the events cannot be aligned that way the reason is returned instead of a guess.
pub fn map_profile(
    events: &[ProfileEvent],
    runs: usize,
    layers: &[crate::layers::ModelLayer],
) -> Result<Vec<crate::layers::LayerTime>, String> {
    let runs = runs.max(1);
    if events.is_empty() || !events.len().is_multiple_of(runs) {
        return Err(format!(
            "{} operator events for {runs} runs: not the same events in every run",
            events.len()
        ));
    }
    let per_run = events.len() / runs;
    let first = &events[..per_run];
    for r in 1..runs {
        let other = &events[r * per_run..(r + 1) * per_run];
        if first
            .iter()
            .zip(other)
            .any(|(a, b)| a.builtin != b.builtin || a.tag != b.tag || a.index != b.index)
        {
            return Err(format!("run {r} produced other events than run 0"));
        }
    }
    // Which model operator each event of one run belongs to.
    let builtin: std::collections::BTreeSet<usize> = first
        .iter()
        .filter(|e| e.builtin)
        .filter_map(|e| usize::try_from(e.index).ok())
        .collect();
    if let Some(bad) = builtin.iter().find(|&&i| i >= layers.len()) {
        return Err(format!(
            "a builtin event names operator {bad}, the model has {}",
            layers.len()
        ));
    }
    let delegated: Vec<usize> = (0..layers.len()).filter(|i| !builtin.contains(i)).collect();
    let mut owner: Vec<usize> = Vec::with_capacity(per_run);
    let mut next = 0usize; // position in `delegated`
    for (k, e) in first.iter().enumerate() {
        if e.builtin {
            owner.push(e.index as usize);
            continue;
        }
        // The same model operator as the previous XNNPACK event, when the next operator
        // cannot take this one (an operator XNNPACK split in several).
        let previous = owner
            .last()
            .copied()
            .filter(|_| k > 0 && !first[k - 1].builtin);
        let mut found = None;
        while next < delegated.len() {
            let op = &layers[delegated[next]].op;
            if xnnpack_implements(&e.tag, op) {
                found = Some(delegated[next]);
                next += 1;
                break;
            }
            if let Some(p) = previous
                && xnnpack_implements(&e.tag, &layers[p].op)
            {
                found = Some(p);
                break;
            }
            next += 1; // an operator XNNPACK ran without an event of its own
        }
        match found.or(previous.filter(|&p| xnnpack_implements(&e.tag, &layers[p].op))) {
            Some(i) => owner.push(i),
            None => {
                return Err(format!(
                    "XNNPACK operator {:?} (its #{}) matches no remaining operator of the model",
                    e.tag, e.index
                ));
            }
        }
    }
    let mut us: Vec<f64> = vec![0.0; layers.len()];
    let mut seen: Vec<bool> = vec![false; layers.len()];
    for (k, e) in events.iter().enumerate() {
        let i = owner[k % per_run];
        us[i] += e.elapsed_us;
        seen[i] = true;
    }
    Ok(layers
        .iter()
        .enumerate()
        .filter(|(i, _)| seen[*i])
        .map(|(i, l)| crate::layers::LayerTime {
            index: Some(l.index),
            output: l.output.clone(),
            op: l.op.clone(),
            ms: us[i] / runs as f64 / 1e3,
        })
        .collect())
}

/// Finds `libLiteRt.so`: the explicit path, then `$LITERT_LIB`, then the installed pip
/// `ai-edge-litert` package (asked through `python3`).
pub fn find_library(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(format!("--litert-lib {} is not a file", p.display()))
        };
    }
    if let Some(p) = std::env::var_os("LITERT_LIB").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("$LITERT_LIB={} is not a file", p.display()))
        };
    }
    let out = std::process::Command::new("python3")
        .args(["-c", "import ai_edge_litert, os; print(os.path.dirname(ai_edge_litert.__file__))"])
        .output()
        .map_err(|e| format!("libLiteRt.so not found: no --litert-lib or $LITERT_LIB, and python3 could not run ({e})"))?;
    if !out.status.success() {
        return Err("libLiteRt.so not found: no --litert-lib or $LITERT_LIB, and `python3 -c 'import ai_edge_litert'` failed (pip install ai-edge-litert)".into());
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    find_in_dir(&dir, 3).ok_or_else(|| {
        format!(
            "no libLiteRt.so under the ai-edge-litert package at {}",
            dir.display()
        )
    })
}

fn find_in_dir(dir: &Path, depth: usize) -> Option<PathBuf> {
    let direct = dir.join("libLiteRt.so");
    if direct.is_file() {
        return Some(direct);
    }
    if depth == 0 {
        return None;
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    entries
        .into_iter()
        .filter(|p| p.is_dir())
        .find_map(|p| find_in_dir(&p, depth - 1))
}

/// The ai-edge-litert version, read from the `*.dist-info` next to the package holding `lib`.
pub fn package_version(lib: &Path) -> Option<String> {
    let site = lib.parent()?.parent()?;
    std::fs::read_dir(site)
        .ok()?
        .filter_map(Result::ok)
        .find_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("ai_edge_litert-")
                .and_then(|rest| rest.strip_suffix(".dist-info"))
                .map(str::to_string)
        })
}

/// Settings of a LiteRT row.
#[derive(Debug, Clone)]
pub struct LiteRtConfig {
    /// The `.tflite` model.
    pub model: PathBuf,
    /// Which accelerator (exactly this bit is requested).
    pub accelerator: Accelerator,
    /// XNNPACK threads (CPU only).
    pub threads: usize,
    /// `--litert-lib`.
    pub library: Option<PathBuf>,
    /// `--litert-dispatch-dir`: the vendor's NPU dispatch libraries.
    pub dispatch_dir: Option<PathBuf>,
}

struct Session {
    env: Handle,
    model: Handle,
    compiled: Handle,
    input: Handle,
    output: Handle,
    input_bytes: usize,
    output_bytes: usize,
}

/// LiteRT's compiled-model API on one accelerator.
pub struct LiteRtEngine {
    cfg: LiteRtConfig,
    api: Option<Api>,
    session: Option<Session>,
    library_path: Option<PathBuf>,
    dtype: TensorType,
    out_dtype: TensorType,
    input_quant: Option<(f32, i32)>,
    output_quant: Option<(f32, i32)>,
    n_input: usize,
    n_output: usize,
    staging: Vec<u8>,
    /// What the library wrote to stderr while it loaded and compiled (one line, see
    /// [`native_stderr::summarize`]).
    native_log: Option<String>,
    /// Compile with LiteRT's profiler on (only the separate engine of
    /// [`Engine::layer_profile`]: profiling must not touch the timed runs).
    profiling: bool,
}

impl LiteRtEngine {
    /// A LiteRT engine (nothing is loaded until [`Engine::load`]).
    pub fn new(cfg: LiteRtConfig) -> Self {
        Self {
            cfg,
            api: None,
            session: None,
            library_path: None,
            dtype: TensorType::Int8,
            out_dtype: TensorType::Int8,
            input_quant: None,
            output_quant: None,
            n_input: 0,
            n_output: 0,
            staging: Vec::new(),
            native_log: None,
            profiling: false,
        }
    }

    /// Runs `runs` invokes on a second compiled model with LiteRT's profiler on and maps its
    /// operator events to the model's operators.
    fn profiled_layers(&mut self, runs: usize) -> Result<Vec<crate::layers::LayerTime>, String> {
        let mut twin = LiteRtEngine::new(self.cfg.clone());
        twin.profiling = true;
        match twin.load() {
            Ok(()) => {}
            Err(LoadError::Unavailable(why)) => return Err(why),
            Err(LoadError::Failed(e)) => return Err(e.to_string()),
        }
        twin.staging = self.staging.clone();
        twin.write_staging().map_err(|e| e.to_string())?;
        let layers = crate::layers::model_layers(&self.cfg.model).map_err(|e| e.to_string())?;
        let (api, s) = twin.parts().map_err(|e| e.to_string())?;
        let profiler_api = api
            .profiler
            .as_ref()
            .ok_or("this libLiteRt.so has no profiler API (LiteRtCompiledModelGetProfiler)")?;
        let mut profiler: Handle = std::ptr::null_mut();
        // SAFETY: the compiled model is live; the profiler it returns is owned by it (never
        // destroyed here) and used only while `twin` lives.
        check("LiteRtCompiledModelGetProfiler", unsafe {
            (profiler_api.compiled_model_profiler)(s.compiled, &mut profiler)
        })
        .map_err(|e| e.to_string())?;
        if profiler.is_null() {
            return Err("LiteRT returned no profiler although profiling was requested".into());
        }
        // One untimed run first, so that one-off work is not in the profile.
        twin.invoke().map_err(|e| e.to_string())?;
        let (api, _) = twin.parts().map_err(|e| e.to_string())?;
        let profiler_api = api.profiler.as_ref().ok_or("no profiler API")?;
        // SAFETY: `profiler` is live (see above).
        check("LiteRtStartProfiler", unsafe {
            (profiler_api.start)(profiler)
        })
        .map_err(|e| e.to_string())?;
        for _ in 0..runs {
            twin.invoke().map_err(|e| e.to_string())?;
        }
        let (api, _) = twin.parts().map_err(|e| e.to_string())?;
        let profiler_api = api.profiler.as_ref().ok_or("no profiler API")?;
        let mut count: c_int = 0;
        // SAFETY: `profiler` is live; `events` has room for `count` entries, as the call needs.
        let raw: Vec<ProfiledEventData> = unsafe {
            check("LiteRtStopProfiler", (profiler_api.stop)(profiler))
                .and_then(|()| {
                    check(
                        "LiteRtGetNumProfilerEvents",
                        (profiler_api.num_events)(profiler, &mut count),
                    )
                })
                .map_err(|e| e.to_string())?;
            if count <= 0 {
                return Err("LiteRT's profiler recorded no events".into());
            }
            let mut events: Vec<ProfiledEventData> = vec![
                ProfiledEventData {
                    tag: std::ptr::null(),
                    event_type: 0,
                    start_timestamp_us: 0,
                    elapsed_time_us: 0,
                    begin_mem_usage: [0; 3],
                    end_mem_usage: [0; 3],
                    event_metadata1: 0,
                    event_metadata2: 0,
                    event_source: 0,
                };
                count as usize
            ];
            check(
                "LiteRtGetProfilerEvents",
                (profiler_api.events)(profiler, count, events.as_mut_ptr()),
            )
            .map_err(|e| e.to_string())?;
            events
        };
        let events: Vec<ProfileEvent> = raw
            .iter()
            .filter(|e| {
                matches!(
                    e.event_type,
                    EVENT_OPERATOR_INVOKE | EVENT_DELEGATE_PROFILED_OPERATOR
                )
            })
            .map(|e| ProfileEvent {
                builtin: e.event_type == EVENT_OPERATOR_INVOKE,
                tag: if e.tag.is_null() {
                    String::new()
                } else {
                    // SAFETY: a non-null tag is a NUL-terminated string owned by the profiler,
                    // which lives as long as `twin`.
                    unsafe { std::ffi::CStr::from_ptr(e.tag) }
                        .to_string_lossy()
                        .into_owned()
                },
                index: e.event_metadata1,
                elapsed_us: e.elapsed_time_us as f64,
            })
            .collect();
        map_profile(&events, runs, &layers)
    }

    /// Copies `staging` into the input buffer.
    fn write_staging(&mut self) -> Result<(), BenchError> {
        let staging = std::mem::take(&mut self.staging);
        let (api, s) = self.parts()?;
        let mut ptr: *mut c_void = std::ptr::null_mut();
        // SAFETY: the buffer is locked for writing, holds at least `staging.len()` bytes
        // (checked against the requirements at load), and is unlocked before any run.
        let result = unsafe {
            check(
                "LiteRtLockTensorBuffer",
                (api.lock_buffer)(s.input, &mut ptr, LOCK_WRITE),
            )
            .and_then(|()| {
                if !ptr.is_null() {
                    std::ptr::copy_nonoverlapping(staging.as_ptr(), ptr as *mut u8, staging.len());
                }
                check("LiteRtUnlockTensorBuffer", (api.unlock_buffer)(s.input))
            })
        };
        self.staging = staging;
        result
    }

    fn parts(&mut self) -> Result<(&Api, &Session), BenchError> {
        match (&self.api, &self.session) {
            (Some(api), Some(session)) => Ok((api, session)),
            _ => Err(BenchError::tool("litert", "model not compiled")),
        }
    }

    /// Creates environment, model, options and compiled model. On error everything created so
    /// far is destroyed again.
    fn open(&mut self, lib_dir: Option<&Path>) -> Result<Session, BenchError> {
        let api = self
            .api
            .as_ref()
            .ok_or_else(|| BenchError::tool("litert", "library not loaded"))?;
        let mut strings: Vec<CString> = Vec::new();
        let mut env_options = vec![EnvOption {
            tag: ENV_MIN_LOGGER_SEVERITY,
            value: LiteRtAny {
                ty: ANY_INT,
                value: 3,
            },
        }];
        let mut add_dir = |tag: i32, dir: &Path| -> Result<(), BenchError> {
            let c = CString::new(dir.to_string_lossy().as_bytes()).map_err(|_| {
                BenchError::tool("litert", format!("{} contains a NUL byte", dir.display()))
            })?;
            env_options.push(EnvOption {
                tag,
                value: LiteRtAny {
                    ty: ANY_STRING,
                    value: c.as_ptr() as u64,
                },
            });
            strings.push(c);
            Ok(())
        };
        if let Some(dir) = &self.cfg.dispatch_dir {
            add_dir(ENV_DISPATCH_LIBRARY_DIR, dir)?;
        }
        if self.cfg.accelerator == Accelerator::Gpu
            && let Some(dir) = lib_dir
        {
            // The GPU accelerator library ships next to libLiteRt.so but is not on the default
            // search path.
            add_dir(ENV_RUNTIME_LIBRARY_DIR, dir)?;
        }
        let model_c = CString::new(self.cfg.model.to_string_lossy().as_bytes())
            .map_err(|_| BenchError::tool("litert", "model path contains a NUL byte"))?;

        let mut s = Session {
            env: std::ptr::null_mut(),
            model: std::ptr::null_mut(),
            compiled: std::ptr::null_mut(),
            input: std::ptr::null_mut(),
            output: std::ptr::null_mut(),
            input_bytes: 0,
            output_bytes: 0,
        };
        let result = (|| -> Result<(), BenchError> {
            // SAFETY (whole block): every call follows the prototypes declared in `Api`; the
            // option strings in `strings` and `model_c` outlive the calls that read them; out
            // pointers point at live locals; handles are only used after a zero status.
            unsafe {
                check(
                    "LiteRtCreateEnvironment",
                    (api.create_environment)(
                        env_options.len() as c_int,
                        env_options.as_ptr(),
                        &mut s.env,
                    ),
                )?;
                check(
                    "LiteRtCreateModelFromFile",
                    (api.create_model_from_file)(s.env, model_c.as_ptr(), &mut s.model),
                )?;
                let mut options: Handle = std::ptr::null_mut();
                check("LiteRtCreateOptions", (api.create_options)(&mut options))?;
                let compiled = (|| -> Result<(), BenchError> {
                    check(
                        "LiteRtSetOptionsHardwareAccelerators",
                        (api.set_accelerators)(options, self.cfg.accelerator.mask()),
                    )?;
                    if self.cfg.accelerator == Accelerator::Cpu {
                        let toml = format!("num_threads = {}\n", self.cfg.threads.max(1));
                        add_toml_option(api, options, c"xnnpack", &toml)?;
                    }
                    if self.profiling {
                        // The runtime options (litert_runtime_options.h) are an opaque option
                        // whose payload is TOML; their builder is not exported, so the option
                        // is made here the same way as XNNPACK's.
                        add_toml_option(
                            api,
                            options,
                            c"runtime_options_string",
                            "enable_profiling = true\n",
                        )?;
                    }
                    check(
                        "LiteRtCreateCompiledModel",
                        (api.create_compiled_model)(s.env, s.model, options, &mut s.compiled),
                    )
                })();
                (api.destroy_options)(options);
                compiled?;

                let mut in_layout = Layout::default();
                check(
                    "LiteRtGetCompiledModelInputTensorLayout",
                    (api.input_layout)(s.compiled, 0, 0, &mut in_layout),
                )?;
                let mut out_layout = Layout::default();
                check(
                    "LiteRtGetCompiledModelOutputTensorLayouts",
                    (api.output_layouts)(s.compiled, 0, 1, &mut out_layout, true),
                )?;
                let element_of = |dtype: TensorType| match dtype {
                    TensorType::Int8 => ELEMENT_I8,
                    TensorType::Int16 => ELEMENT_I16,
                    _ => ELEMENT_F32,
                };
                let element = element_of(self.dtype);
                let mut reqs: Handle = std::ptr::null_mut();
                check(
                    "LiteRtGetCompiledModelInputBufferRequirements",
                    (api.input_requirements)(s.compiled, 0, 0, &mut reqs),
                )?;
                check(
                    "LiteRtGetTensorBufferRequirementsBufferSize",
                    (api.requirements_size)(reqs, &mut s.input_bytes),
                )?;
                let ty = RankedTensorType {
                    element_type: element,
                    layout: in_layout,
                };
                check(
                    "LiteRtCreateManagedTensorBufferFromRequirements",
                    (api.create_managed_buffer)(s.env, &ty, reqs, &mut s.input),
                )?;
                let mut reqs: Handle = std::ptr::null_mut();
                check(
                    "LiteRtGetCompiledModelOutputBufferRequirements",
                    (api.output_requirements)(s.compiled, 0, 0, &mut reqs),
                )?;
                check(
                    "LiteRtGetTensorBufferRequirementsBufferSize",
                    (api.requirements_size)(reqs, &mut s.output_bytes),
                )?;
                let ty = RankedTensorType {
                    element_type: element_of(self.out_dtype),
                    layout: out_layout,
                };
                check(
                    "LiteRtCreateManagedTensorBufferFromRequirements",
                    (api.create_managed_buffer)(s.env, &ty, reqs, &mut s.output),
                )?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(s),
            Err(e) => {
                destroy_session(api, &s);
                Err(e)
            }
        }
    }

    /// Loads `lib` and compiles the model on the configured accelerator (the part of
    /// [`Engine::load`] during which LiteRT may print to stderr).
    fn load_library_and_compile(&mut self, lib: PathBuf) -> Result<(), LoadError> {
        self.api = Some(match Api::load(&lib) {
            Ok(api) => api,
            // A library this machine cannot load (another architecture, missing dependencies,
            // a LiteRT without the compiled-model API) is not a LiteRT failure: skip the row.
            Err(e @ BenchError::DynamicLoad { .. }) => {
                return Err(LoadError::Unavailable(format!(
                    "{e} (pass --litert-lib with a LiteRT build for this machine)"
                )));
            }
            Err(e) => return Err(LoadError::Failed(e)),
        });
        let lib_dir = lib.parent().map(Path::to_path_buf);
        self.library_path = Some(lib);
        match self.open(lib_dir.as_deref()) {
            Ok(session) => {
                if session.input_bytes < self.n_input * element_bytes(self.dtype)
                    || session.output_bytes < self.n_output * element_bytes(self.out_dtype)
                {
                    let api = self
                        .api
                        .as_ref()
                        .ok_or_else(|| BenchError::tool("litert", "library not loaded"))?;
                    destroy_session(api, &session);
                    return Err(LoadError::Failed(BenchError::tool(
                        "litert",
                        "buffer requirements smaller than the tensors",
                    )));
                }
                self.session = Some(session);
                Ok(())
            }
            Err(BenchError::LiteRt {
                call: "LiteRtCreateCompiledModel",
                status,
                name,
            }) if self.cfg.accelerator != Accelerator::Cpu => {
                let why = match (self.cfg.accelerator, status) {
                    (Accelerator::Npu, 504) => "no NPU dispatch/compiler for this model",
                    (Accelerator::Gpu, 3) => "no GPU adapter",
                    (Accelerator::Npu, _) => "the NPU accelerator could not compile the model",
                    _ => "the GPU accelerator could not compile the model",
                };
                Err(LoadError::Unavailable(format!(
                    "{why} (LiteRtCreateCompiledModel status {status}, {name})"
                )))
            }
            Err(e) => Err(LoadError::Failed(e)),
        }
    }
}

/// Adds an opaque option `id` whose payload is the TOML text `toml` to `options`.
///
/// # Safety
/// `options` is a live `LiteRtOptions` of `api`'s library.
unsafe fn add_toml_option(
    api: &Api,
    options: Handle,
    id: &std::ffi::CStr,
    toml: &str,
) -> Result<(), BenchError> {
    let toml = CString::new(toml)
        .map_err(|_| BenchError::tool("litert", format!("option {id:?} contains a NUL byte")))?;
    let payload = toml.into_raw() as *mut c_void;
    let mut opaque: Handle = std::ptr::null_mut();
    // SAFETY: `id` and `payload` are NUL-terminated strings; LiteRT owns `payload` (freed by
    // `free_cstring`) once the call succeeds, and we free it ourselves when it fails.
    unsafe {
        let status =
            (api.create_opaque_options)(id.as_ptr(), payload, Some(free_cstring), &mut opaque);
        if status != 0 {
            free_cstring(payload);
        }
        check("LiteRtCreateOpaqueOptions", status)?;
        // Ownership of `opaque` (and its payload) moves to `options`.
        check(
            "LiteRtAddOpaqueOptions",
            (api.add_opaque_options)(options, opaque),
        )
    }
}

/// Destructor LiteRT calls for the opaque-options payload (a `CString` we leaked).
unsafe extern "C" fn free_cstring(p: *mut c_void) {
    if !p.is_null() {
        // SAFETY: `p` came from `CString::into_raw` in `open`, and LiteRT calls this once.
        drop(unsafe { CString::from_raw(p as *mut c_char) });
    }
}

fn destroy_session(api: &Api, s: &Session) {
    // SAFETY: each handle is either null (never created) or was created by this library and
    // is destroyed once, in the order the doc prescribes: buffers, compiled model, model
    // (kept alive until now: destroying it earlier crashes the first run), environment.
    unsafe {
        if !s.input.is_null() {
            (api.destroy_buffer)(s.input);
        }
        if !s.output.is_null() {
            (api.destroy_buffer)(s.output);
        }
        if !s.compiled.is_null() {
            (api.destroy_compiled_model)(s.compiled);
        }
        if !s.model.is_null() {
            (api.destroy_model)(s.model);
        }
        if !s.env.is_null() {
            (api.destroy_environment)(s.env);
        }
    }
}

impl Drop for LiteRtEngine {
    fn drop(&mut self) {
        if let (Some(api), Some(session)) = (&self.api, self.session.take()) {
            destroy_session(api, &session);
        }
    }
}

impl Engine for LiteRtEngine {
    fn device(&self) -> String {
        match self.cfg.accelerator {
            Accelerator::Cpu => format!(
                "cpu (LiteRT XNNPACK, {} thread{})",
                self.cfg.threads,
                if self.cfg.threads == 1 { "" } else { "s" }
            ),
            Accelerator::Gpu => "gpu (LiteRT GPU accelerator, no CPU fallback)".into(),
            Accelerator::Npu => match &self.cfg.dispatch_dir {
                Some(d) => format!("npu (LiteRT, dispatch {}, no CPU fallback)", d.display()),
                None => "npu (LiteRT, no CPU fallback)".into(),
            },
        }
    }

    fn load(&mut self) -> Result<(), LoadError> {
        let lib = find_library(self.cfg.library.as_deref()).map_err(LoadError::Unavailable)?;
        if !self.cfg.model.exists() {
            return Err(LoadError::Unavailable(format!(
                "{} does not exist",
                self.cfg.model.display()
            )));
        }
        let model = tflite_writer::read_model_file(&self.cfg.model).map_err(|source| {
            BenchError::Model {
                path: self.cfg.model.clone(),
                source,
            }
        })?;
        let graph = model
            .subgraphs
            .first()
            .ok_or_else(|| BenchError::UnsupportedModel {
                path: self.cfg.model.clone(),
                problem: "no subgraph".into(),
            })?;
        let tensor = |list: &[i32]| {
            list.first()
                .and_then(|&i| graph.tensors.get(usize::try_from(i).ok()?))
                .cloned()
        };
        let (Some(input), Some(output)) = (tensor(&graph.inputs), tensor(&graph.outputs)) else {
            return Err(LoadError::Failed(BenchError::UnsupportedModel {
                path: self.cfg.model.clone(),
                problem: "the model needs one input and one output".into(),
            }));
        };
        let per_tensor = |q: &Option<tflite_writer::Quantization>| {
            q.as_ref()
                .filter(|q| q.scale.len() == 1 && q.zero_point.len() == 1)
                .map(|q| (q.scale[0], q.zero_point[0] as i32))
        };
        self.dtype = input.dtype;
        self.out_dtype = output.dtype;
        let float = |t: TensorType| t == TensorType::Float32;
        let supported = |t: TensorType| {
            matches!(
                t,
                TensorType::Int8 | TensorType::Int16 | TensorType::Float32
            )
        };
        if !supported(input.dtype)
            || !supported(output.dtype)
            || float(input.dtype) != float(output.dtype)
        {
            return Err(LoadError::Failed(BenchError::UnsupportedModel {
                path: self.cfg.model.clone(),
                problem: format!(
                    "input {:?} / output {:?}: only int8/int16 or float32 models",
                    input.dtype, output.dtype
                ),
            }));
        }
        self.input_quant = per_tensor(&input.quantization);
        self.output_quant = per_tensor(&output.quantization);
        let elements = |shape: &[i32]| shape.iter().map(|&d| d.max(1) as usize).product::<usize>();
        self.n_input = elements(&input.shape);
        self.n_output = elements(&output.shape);

        // The GPU/NPU accelerators print their own errors (WebGPU, Vulkan, dispatch) straight
        // to fd 2: they go into the row instead of the terminal.
        let (result, printed) = native_stderr::capture(|| self.load_library_and_compile(lib));
        self.native_log = native_stderr::summarize(&printed);
        let Some(log) = &self.native_log else {
            return result;
        };
        match result {
            Ok(()) => {
                tracing::debug!(backend = %self.cfg.accelerator.name(), "LiteRT printed: {log}");
                Ok(())
            }
            Err(LoadError::Unavailable(why)) => Err(LoadError::Unavailable(format!(
                "{why}; LiteRT printed: {log}"
            ))),
            Err(LoadError::Failed(e)) => Err(LoadError::Failed(BenchError::tool(
                "litert",
                format!("{e}; LiteRT printed: {log}"),
            ))),
        }
    }

    fn set_input(&mut self, image: &[f32]) -> Result<(), BenchError> {
        if image.len() != self.n_input {
            return Err(BenchError::UnsupportedModel {
                path: self.cfg.model.clone(),
                problem: format!(
                    "input holds {} values, the slice has {}",
                    self.n_input,
                    image.len()
                ),
            });
        }
        let mut staging = std::mem::take(&mut self.staging);
        staging.clear();
        match (self.dtype, self.input_quant) {
            (TensorType::Int8, Some((scale, zero_point))) => {
                let mut q = vec![0i8; image.len()];
                tflite_runtime::reference::quantize::quantize_f32_i8(
                    scale, zero_point, image, &mut q,
                );
                staging.extend(q.iter().map(|&v| v as u8));
            }
            (TensorType::Int16, Some((scale, zero_point))) => {
                let mut q = vec![0i16; image.len()];
                tflite_runtime::reference::quantize::quantize_f32_i16(
                    scale, zero_point, image, &mut q,
                );
                staging.extend(q.iter().flat_map(|v| v.to_le_bytes()));
            }
            _ => staging.extend(image.iter().flat_map(|v| v.to_le_bytes())),
        }
        self.staging = staging;
        self.write_staging()
    }

    fn invoke(&mut self) -> Result<(), BenchError> {
        let (api, s) = self.parts()?;
        let mut ins = [s.input];
        let mut outs = [s.output];
        // SAFETY: compiled model and buffers are live and unlocked; the arrays outlive the call.
        check("LiteRtRunCompiledModel", unsafe {
            (api.run_compiled_model)(s.compiled, 0, 1, ins.as_mut_ptr(), 1, outs.as_mut_ptr())
        })
    }

    fn output(&mut self) -> Result<Output, BenchError> {
        let elem = element_bytes(self.out_dtype);
        let n = self.n_output;
        let (api, s) = self.parts()?;
        let mut bytes = vec![0u8; n * elem];
        let mut ptr: *mut c_void = std::ptr::null_mut();
        // SAFETY: the output buffer is locked for reading and holds at least `n·elem` bytes.
        unsafe {
            check(
                "LiteRtLockTensorBuffer",
                (api.lock_buffer)(s.output, &mut ptr, LOCK_READ),
            )?;
            if !ptr.is_null() {
                std::ptr::copy_nonoverlapping(ptr as *const u8, bytes.as_mut_ptr(), bytes.len());
            }
            check("LiteRtUnlockTensorBuffer", (api.unlock_buffer)(s.output))?;
        }
        Ok(match (self.out_dtype, self.output_quant) {
            (TensorType::Int8, Some((scale, zero_point))) => Output::Int8 {
                values: bytes.into_iter().map(|b| b as i8).collect(),
                scale,
                zero_point,
            },
            (TensorType::Int16, Some((scale, zero_point))) => Output::Int16 {
                values: bytes
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect(),
                scale,
                zero_point,
            },
            _ => Output::F32(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
        })
    }

    fn op_placement(&self) -> Option<String> {
        Some(match self.cfg.accelerator {
            Accelerator::Cpu => "LiteRT CPU (XNNPACK, rest built-in kernels)".into(),
            Accelerator::Gpu => "LiteRT GPU only (CPU bit not set)".into(),
            Accelerator::Npu => "LiteRT NPU only (CPU bit not set)".into(),
        })
    }

    fn threads(&self) -> Option<usize> {
        (self.cfg.accelerator == Accelerator::Cpu).then_some(self.cfg.threads.max(1))
    }

    fn layer_profile(&mut self, runs: usize) -> crate::layers::LayerProfile {
        use crate::layers::LayerProfile;
        if self.cfg.accelerator != Accelerator::Cpu {
            return LayerProfile::Unavailable {
                why: "LiteRT's profiler reports operators of the CPU path (XNNPACK and builtins) only".into(),
            };
        }
        // (The twin's `load` captures what LiteRT prints while it compiles.)
        match self.profiled_layers(runs) {
            Ok(layers) => LayerProfile::Measured {
                source: "LiteRT profiler (runtime option enable_profiling) on a second compiled model: mean µs per run of each builtin or XNNPACK operator event, XNNPACK operators aligned to the model's by order and kind".into(),
                runs: runs.max(1),
                layers,
            },
            Err(why) => LayerProfile::Unavailable { why },
        }
    }

    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "library": self.library_path.as_ref().map(|p| p.display().to_string()),
            "ai_edge_litert_version": self.library_path.as_deref().and_then(package_version),
            "accelerator_mask": self.cfg.accelerator.mask(),
            "dispatch_dir": self.cfg.dispatch_dir.as_ref().map(|p| p.display().to_string()),
            "native_stderr": self.native_log,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::ModelLayer;

    fn layer(index: usize, op: &str) -> ModelLayer {
        ModelLayer {
            index,
            op: op.into(),
            output: format!("t{index}"),
            output_shape: vec![1],
            macs: 0,
            in_channels: None,
            inputs: Vec::new(),
        }
    }

    fn xnn(tag: &str, index: u64, us: u32) -> ProfileEvent {
        ProfileEvent {
            builtin: false,
            tag: tag.into(),
            index,
            elapsed_us: f64::from(us),
        }
    }

    fn builtin(op: &str, index: u64, us: u32) -> ProfileEvent {
        ProfileEvent {
            builtin: true,
            tag: op.into(),
            index,
            elapsed_us: f64::from(us),
        }
    }

    #[test]
    fn xnnpack_events_align_with_the_model_by_order_and_kind() {
        let layers = [
            layer(0, "CONV_2D"),
            layer(1, "MAX_POOL_2D"),
            layer(2, "SHAPE"),
            layer(3, "TRANSPOSE_CONV"),
            layer(4, "CONCATENATION"),
            layer(5, "CONV_2D"),
            layer(6, "LOGISTIC"),
        ];
        // Two runs; SHAPE runs as a builtin between two XNNPACK partitions; the concatenation
        // is two XNNPACK copies; the head convolution is XNNPACK's fully connected operator.
        let run = |k: u32| {
            vec![
                xnn("Convolution (NHWC, QC8) IGEMM", 0, 100 + k),
                xnn("Max Pooling (NHWC, S8)", 1, 10),
                builtin("SHAPE", 2, 1),
                xnn("Deconvolution (NC, QS8, QC8W) Subconv2D", 0, 40),
                xnn("Copy (NC, X8)", 1, 3),
                xnn("Copy (NC, X8)", 2, 5),
                xnn("Fully Connected (NC, QS8) GEMM", 3, 20),
                xnn("Sigmoid (NC)", 4, 2),
            ]
        };
        let events: Vec<ProfileEvent> = run(0).into_iter().chain(run(2)).collect();
        let times = map_profile(&events, 2, &layers).expect("aligned");
        let got: Vec<(usize, f64)> = times
            .iter()
            .map(|t| (t.index.expect("index"), t.ms))
            .collect();
        assert_eq!(
            got,
            [
                (0, 0.101),
                (1, 0.010),
                (2, 0.001),
                (3, 0.040),
                (4, 0.008),
                (5, 0.020),
                (6, 0.002)
            ]
        );
    }

    #[test]
    fn events_that_do_not_fit_the_model_are_refused() {
        let layers = [layer(0, "CONV_2D"), layer(1, "LOGISTIC")];
        let bad_kind = [
            xnn("Convolution", 0, 1),
            xnn("Max Pooling (NHWC, S8)", 1, 1),
        ];
        let e = map_profile(&bad_kind, 1, &layers).expect_err("no pooling in the model");
        assert!(e.contains("Max Pooling"), "{e}");
        let uneven = [
            xnn("Convolution", 0, 1),
            xnn("Sigmoid (NC)", 1, 1),
            xnn("Convolution", 0, 1),
        ];
        let e = map_profile(&uneven, 2, &layers).expect_err("3 events, 2 runs");
        assert!(e.contains("3 operator events for 2 runs"), "{e}");
        let differ = [xnn("Convolution", 0, 1), xnn("Sigmoid (NC)", 0, 1)];
        assert!(map_profile(&differ, 2, &layers).is_err());
        let beyond = [builtin("SHAPE", 7, 1)];
        assert!(
            map_profile(&beyond, 1, &layers)
                .expect_err("index 7")
                .contains("operator 7")
        );
        assert!(map_profile(&[], 1, &layers).is_err());
    }
}
