//! `cargo xtask infer MODEL --input slice.npy|slice.png [--output out.npy] [--png overlay.png]`:
//! runs one input through `tflite-runtime` and writes the result.
//!
//! - An `.npy` whose dtype matches the model input passes through unchanged.
//! - A float32 `.npy`, or a PNG (grayscale or RGB, z-scored like the training slices), is
//!   quantised with the input's scale and zero point (LiteRT's QUANTIZE arithmetic).
//! - `--output` writes the raw output tensor in the model's dtype; `--png` writes the input with
//!   the thresholded mask overlaid in red.
//! - `--kernels best` (the default) runs the fast kernels picked from the CPU's features (int8 and
//!   16x8 bit-identical to the reference tier); `--kernels reference` the reference kernels.

use anyhow::{Context, bail, ensure};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tflite_runtime::npy::{NpyArray, NpyData, read_npy, write_npy};
use tflite_runtime::{Interpreter, KernelTier, Options, TensorData, TensorInfo};
use tflite_writer::TensorType;

/// Arguments of `cargo xtask infer`.
#[derive(Debug, clap::Args)]
pub struct InferArgs {
    /// The `.tflite` model (f32 or int8, one input).
    pub model: PathBuf,
    /// Input slice: `.npy` (model dtype passes through, float32 is quantised) or `.png`.
    #[arg(long)]
    pub input: PathBuf,
    /// Write the raw output tensor, in the model's dtype, to this `.npy`.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Write the input image with the thresholded mask overlaid to this `.png`.
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// Threshold on the dequantised output for the mask.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// Kernels: `best` (fast, chosen from the CPU's features; `TFLITE_RUNTIME_KERNELS` forces a
    /// path) or `reference` (LiteRT's reference arithmetic, slow).
    #[arg(long, value_enum, default_value_t = InferKernels::Best)]
    pub kernels: InferKernels,
    /// Worker threads of the fast kernels.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
}

/// The kernel tier `cargo xtask infer` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InferKernels {
    /// The fast kernels for this CPU.
    Best,
    /// The reference kernels.
    Reference,
}

/// The model input, ready to set, and its real values for display.
struct PreparedInput {
    data: NpyData,
    display: Vec<f32>,
}

fn load_input(path: &Path, info: &TensorInfo) -> anyhow::Result<PreparedInput> {
    let n = info.num_elements();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let values = match ext.as_deref() {
        Some("npy") => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let array = read_npy(&bytes).with_context(|| format!("{}", path.display()))?;
            ensure!(
                array.data.len() == n,
                "{}: has {} elements (shape {:?}), the model input {:?} needs {n}",
                path.display(),
                array.data.len(),
                array.shape,
                info.shape
            );
            // Same element count is not enough: [256, 64] is not a 128×128 slice.
            let squeeze = |dims: &[usize]| -> Vec<usize> {
                dims.iter().copied().filter(|&d| d != 1).collect()
            };
            ensure!(
                squeeze(&array.shape) == squeeze(&info.shape),
                "{}: shape {:?} does not match the model input {:?} (give [H, W], [H, W, 1] or the input's own shape)",
                path.display(),
                array.shape,
                info.shape
            );
            if let NpyData::F32(v) = &array.data
                && let Some(i) = v.iter().position(|x| !x.is_finite())
            {
                bail!(
                    "{}: value {} at element {i} is not finite; the model needs finite inputs",
                    path.display(),
                    v[i]
                );
            }
            match (array.data, info.dtype) {
                (NpyData::I8(v), TensorType::Int8) => {
                    let (scale, zp) = info.per_tensor_quant().unwrap_or((1.0, 0));
                    let display = v.iter().map(|&q| scale * (q as i32 - zp) as f32).collect();
                    return Ok(PreparedInput {
                        data: NpyData::I8(v),
                        display,
                    });
                }
                (NpyData::F32(v), _) => v,
                (other, dtype) => bail!(
                    "{}: dtype {} cannot feed a {} model input (use {} or float32)",
                    path.display(),
                    other.dtype_name(),
                    dtype.name(),
                    if dtype == TensorType::Int8 {
                        "int8"
                    } else {
                        "float32"
                    }
                ),
            }
        }
        Some("png") => read_png_zscored(path, info)?,
        _ => bail!(
            "{}: unknown input format (expected .npy or .png)",
            path.display()
        ),
    };
    match info.dtype {
        TensorType::Float32 => Ok(PreparedInput {
            display: values.clone(),
            data: NpyData::F32(values),
        }),
        TensorType::Int8 => {
            let (scale, zero_point) = info.per_tensor_quant().with_context(|| {
                format!(
                    "the model's int8 input '{}' has no per-tensor quantization",
                    info.name
                )
            })?;
            let mut q = vec![0i8; values.len()];
            tflite_runtime::reference::quantize::quantize_f32_i8(
                scale, zero_point, &values, &mut q,
            );
            Ok(PreparedInput {
                data: NpyData::I8(q),
                display: values,
            })
        }
        other => bail!("model input type {} is not supported", other.name()),
    }
}

/// Reads an 8- or 16-bit grayscale/RGB PNG of the model's H×W and z-scores its intensities.
/// The size in the PNG header is checked against the model input before any pixel buffer is
/// allocated, so a header claiming 100000×100000 is an error, not an abort.
fn read_png_zscored(path: &Path, info: &TensorInfo) -> anyhow::Result<Vec<f32>> {
    let (mh, mw) = match info.shape.as_slice() {
        [1, h, w, 1] | [h, w] | [1, h, w] => (*h, *w),
        other => bail!("a PNG can only feed a [1, H, W, 1] input, the model's is {other:?}"),
    };
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .with_context(|| format!("{}: not a readable PNG", path.display()))?;
    let (w, h) = {
        let header = reader.info();
        (header.width as usize, header.height as usize)
    };
    ensure!(
        (h, w) == (mh, mw),
        "{}: image is {w}×{h}, the model expects {mw}×{mh}",
        path.display()
    );
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let frame = reader
        .next_frame(&mut buf)
        .with_context(|| format!("{}: cannot decode the PNG", path.display()))?;
    let channels = match frame.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => bail!("{}: unsupported PNG colour type {other:?}", path.display()),
    };
    let bytes = &buf[..frame.buffer_size()];
    let mut values: Vec<f32> = bytes
        .chunks_exact(channels)
        .map(|px| {
            if channels >= 3 {
                (px[0] as f32 + px[1] as f32 + px[2] as f32) / 3.0
            } else {
                px[0] as f32
            }
        })
        .collect();
    unet_data::z_score(&mut values);
    Ok(values)
}

/// Runs `cargo xtask infer`.
pub fn run(args: &InferArgs) -> anyhow::Result<()> {
    for path in [&args.output, &args.png].into_iter().flatten() {
        artifact_io::check_replaceable(path)?;
    }
    let model = tflite_writer::read_model_file(&args.model)
        .with_context(|| format!("reading model {}", args.model.display()))?;
    let options = Options {
        kernels: match args.kernels {
            InferKernels::Best => KernelTier::Best,
            InferKernels::Reference => KernelTier::Reference,
        },
        threads: usize::from(args.threads),
    };
    let mut interp = Interpreter::new(&model, options).with_context(|| {
        format!(
            "{}: the runtime cannot run this model",
            args.model.display()
        )
    })?;
    ensure!(
        interp.num_inputs() == 1 && interp.num_outputs() >= 1,
        "{}: expected one input and at least one output, found {} and {}",
        args.model.display(),
        interp.num_inputs(),
        interp.num_outputs()
    );
    let in_info = interp.input_info(0)?.clone();
    let input = load_input(&args.input, &in_info)?;
    match &input.data {
        NpyData::I8(v) => interp.set_input(0, v)?,
        NpyData::F32(v) => interp.set_input(0, v)?,
        _ => bail!("unreachable input type"),
    }
    let start = Instant::now();
    interp.invoke()?;
    let elapsed = start.elapsed();
    let out_info = interp.output_info(0)?.clone();
    let out = interp.output_data(0)?;
    let real: Vec<f32> = out.to_f32_vec(match out {
        TensorData::F32(_) => None,
        _ => out_info.per_tensor_quant(),
    });
    let mask: Vec<bool> = real.iter().map(|&v| v > args.threshold).collect();
    let n_mask = mask.iter().filter(|&&m| m).count();
    println!(
        "{}: input {} {:?} {} → output '{}' {:?} {} in {:.1} ms (kernels: {}, {} thread(s), arena {} KiB)",
        args.model.display(),
        args.input.display(),
        in_info.shape,
        in_info.dtype.name(),
        out_info.name,
        out_info.shape,
        out_info.dtype.name(),
        elapsed.as_secs_f64() * 1e3,
        interp.kernel_tier(),
        interp.threads(),
        interp.memory().arena_bytes / 1024
    );
    println!(
        "mask (output > {}): {n_mask} of {} pixels ({:.2}%)",
        args.threshold,
        mask.len(),
        100.0 * n_mask as f64 / mask.len().max(1) as f64
    );
    if let Some(path) = &args.output {
        let data = NpyData::from(out);
        let array = NpyArray {
            shape: out_info.shape.clone(),
            data,
        };
        artifact_io::write_atomic(path, &write_npy(&array))?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.png {
        let (h, w) = match out_info.shape.as_slice() {
            [1, h, w, 1] => (*h, *w),
            other => bail!("--png needs a [1, H, W, 1] output, the model's is {other:?}"),
        };
        ensure!(
            h * w == input.display.len(),
            "--png: the output is {h}×{w} but the input has {} pixels",
            input.display.len()
        );
        let mask: Vec<f32> = mask.iter().map(|&m| f32::from(u8::from(m))).collect();
        let overlay = unet_data::preview::render_overlay(&input.display, &mask, h, w);
        unet_data::preview::write_png(path, &overlay)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod png_input_tests {
    use super::read_png_zscored;
    use tflite_runtime::TensorInfo;
    use tflite_writer::TensorType;

    fn input(h: usize, w: usize) -> TensorInfo {
        TensorInfo {
            index: 0,
            name: "x".into(),
            shape: vec![1, h, w, 1],
            dtype: TensorType::Float32,
            quantization: None,
        }
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
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

    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }

    /// An 8-bit grayscale PNG whose header says `w`×`h`, followed by a few bytes of image data:
    /// enough for `read_info`, far from the pixels the header promises.
    fn png_claiming(w: u32, h: u32) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // depth 8, grayscale, deflate, no interlace
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &[0x78, 0x01, 0x01, 0x02, 0x00]);
        chunk(&mut out, b"IEND", &[]);
        out
    }

    fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("xtask-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).expect("write");
        path
    }

    #[test]
    fn huge_png_header_is_refused_before_decoding() {
        let path = temp_file("huge.png", &png_claiming(100_000, 100_000));
        let result = read_png_zscored(&path, &input(128, 128));
        let _ = std::fs::remove_file(&path);
        let message = format!("{:#}", result.expect_err("refused"));
        assert!(
            message.contains("huge.png")
                && message.contains("image is 100000×100000")
                && message.contains("the model expects 128×128"),
            "{message}"
        );
    }

    #[test]
    fn png_of_the_model_size_reads() {
        let mut bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut bytes, 4, 2);
            encoder.set_color(png::ColorType::Grayscale);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().expect("header");
            writer
                .write_image_data(&[0, 10, 20, 30, 40, 50, 60, 70])
                .expect("data");
        }
        let path = temp_file("ok.png", &bytes);
        let result = read_png_zscored(&path, &input(2, 4));
        let _ = std::fs::remove_file(&path);
        let values = result.expect("reads");
        assert_eq!(values.len(), 8);
        assert!(values[0] < values[7]);
    }
}
