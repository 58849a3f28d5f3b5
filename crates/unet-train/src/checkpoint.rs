//! The checkpoint file: model weights, optimizer state and what made them, in one checksummed
//! file written atomically.
//!
//! Layout (little-endian):
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `UNETCKPT` |
//! | 4 | format version (1) |
//! | 4 + n | metadata JSON ([`CheckpointMeta`]) |
//! | 8 + n | model weights, burnpack (`ModuleRecord::into_bytes`) |
//! | 8 + n | optimizer state, burnpack (`OptimizerRecord::into_bytes`), may be empty |
//! | 8 | FNV-1a 64 of everything before it |
//!
//! Loading checks the magic, the lengths against the file size (truncation), the checksum
//! (corruption) and the model configuration (a checkpoint of another `fms`, size or upsampling)
//! before burn sees a byte, so every failure is a clear error rather than a panic.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::optim::OptimizerRecord;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, DType, Device};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::model::{UNet, UNetConfig};
use crate::training::History;
use artifact_io::write_atomic;

const MAGIC: &[u8; 8] = b"UNETCKPT";
const VERSION: u32 = 1;

/// What a checkpoint records besides the tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// The model architecture.
    pub model: UNetConfig,
    /// Epochs completed when it was written (1-based count).
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: u64,
    /// Best validation loss so far (`null` in JSON, infinity here, before any finite one).
    #[serde(with = "best_loss")]
    pub best_val_loss: f64,
    /// Epoch of the best validation loss.
    pub best_epoch: usize,
    /// Seed of the run.
    pub seed: u64,
    /// History up to `epoch`.
    pub history: History,
}

mod best_loss {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            serializer.serialize_f64(*value)
        } else {
            serializer.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::INFINITY))
    }
}

/// A decoded checkpoint.
pub struct Checkpoint {
    /// Its metadata.
    pub meta: CheckpointMeta,
    /// The model, on the device it was loaded to.
    pub model: UNet,
    /// Optimizer state, when the file has one.
    pub optimizer: Option<OptimizerRecord>,
}

/// The checksum a checkpoint ends with: FNV-1a (64-bit) of every byte before it. Public so that
/// tests and fuzzers can seal damaged payloads and reach the checks behind the checksum.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        hash ^= b as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn describe(cfg: &UNetConfig) -> String {
    let upsampling = match cfg.upsampling {
        crate::Upsampling::TransposedConv => "transposed_conv",
        crate::Upsampling::Nearest => "nearest",
    };
    format!("fms={} size={} upsampling={upsampling}", cfg.fms, cfg.size)
}

/// Writes a checkpoint of `model` (and optionally the optimizer) to `path`, atomically.
pub fn save_checkpoint(
    path: &Path,
    meta: &CheckpointMeta,
    model: &UNet,
    optimizer: Option<&ModuleOptimizer>,
) -> Result<(), TrainError> {
    let record_err = |e: burn::store::RecordError| TrainError::Record {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let meta_json = serde_json::to_vec(meta).map_err(|source| TrainError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    let model_bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(record_err)?;
    let optim_bytes = match optimizer {
        Some(optim) => Some(optim.to_record().into_bytes().map_err(record_err)?),
        None => None,
    };
    let optim_slice: &[u8] = optim_bytes.as_deref().unwrap_or(&[]);
    let mut out = Vec::with_capacity(32 + meta_json.len() + model_bytes.len() + optim_slice.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(meta_json.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta_json);
    out.extend_from_slice(&(model_bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(&model_bytes);
    out.extend_from_slice(&(optim_slice.len() as u64).to_le_bytes());
    out.extend_from_slice(optim_slice);
    let checksum = checksum(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    Ok(write_atomic(path, &out)?)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], TrainError> {
        let end = (self.pos as u64).saturating_add(n);
        // The last 8 bytes are the checksum, so the payload must end before them.
        if end.saturating_add(8) > self.bytes.len() as u64 {
            return Err(TrainError::TruncatedCheckpoint {
                path: self.path.to_path_buf(),
                needed: end.saturating_add(8),
                actual: self.bytes.len() as u64,
            });
        }
        let slice = &self.bytes[self.pos..end as usize];
        self.pos = end as usize;
        Ok(slice)
    }

    fn u32(&mut self) -> Result<u32, TrainError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, TrainError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

/// Reads only the metadata of the checkpoint at `path` (after the integrity checks).
pub fn read_meta(path: &Path) -> Result<CheckpointMeta, TrainError> {
    let bytes = std::fs::read(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (meta, model_bytes, _) = parse(path, &bytes)?;
    check_meta(path, &meta, model_bytes.len())?;
    Ok(meta)
}

type Parsed<'a> = (CheckpointMeta, &'a [u8], &'a [u8]);

fn parse<'a>(path: &'a Path, bytes: &'a [u8]) -> Result<Parsed<'a>, TrainError> {
    let corrupt = |reason: String| TrainError::CorruptCheckpoint {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt(format!(
            "it does not start with the checkpoint magic {:?} (not a unet-train checkpoint)",
            String::from_utf8_lossy(MAGIC)
        )));
    }
    let mut cursor = Cursor {
        bytes,
        pos: MAGIC.len(),
        path,
    };
    let version = cursor.u32()?;
    if version != VERSION {
        return Err(corrupt(format!(
            "format version {version}, this build reads version {VERSION}"
        )));
    }
    let meta_len = cursor.u32()? as u64;
    let meta_bytes = cursor.take(meta_len)?;
    let model_len = cursor.u64()?;
    let model_bytes = cursor.take(model_len)?;
    let optim_len = cursor.u64()?;
    let optim_bytes = cursor.take(optim_len)?;
    let payload_end = cursor.pos;
    if bytes.len() != payload_end + 8 {
        return Err(corrupt(format!(
            "{} bytes follow the declared contents (expected an 8-byte checksum)",
            bytes.len() - payload_end
        )));
    }
    let mut stored = [0u8; 8];
    stored.copy_from_slice(&bytes[payload_end..]);
    let stored = u64::from_le_bytes(stored);
    let computed = checksum(&bytes[..payload_end]);
    if stored != computed {
        return Err(corrupt(format!(
            "checksum mismatch (stored {stored:016x}, computed {computed:016x}): the file was modified or damaged"
        )));
    }
    let meta: CheckpointMeta =
        serde_json::from_slice(meta_bytes).map_err(|e| corrupt(format!("metadata: {e}")))?;
    Ok((meta, model_bytes, optim_bytes))
}

/// Largest `fms` a checkpoint may declare (IntelAI uses 16 or 32; 1024 means about 8·10⁹
/// parameters, far beyond what the file's weights could hold anyway).
pub const MAX_FMS: usize = 1024;

/// Largest input `size` a checkpoint may declare.
pub const MAX_SIZE: usize = 16384;

/// Checks the metadata of a checkpoint before any model is built from it: a valid
/// configuration within [`MAX_FMS`] and [`MAX_SIZE`], whose parameters (4 bytes each as f32)
/// fit in the `model_len` bytes of weights the file actually holds.
fn check_meta(path: &Path, meta: &CheckpointMeta, model_len: usize) -> Result<(), TrainError> {
    let corrupt = |reason: String| TrainError::CorruptCheckpoint {
        path: path.to_path_buf(),
        reason,
    };
    let cfg = &meta.model;
    if cfg.fms > MAX_FMS {
        return Err(corrupt(format!(
            "metadata: fms={} is above the largest supported {MAX_FMS}",
            cfg.fms
        )));
    }
    if cfg.size > MAX_SIZE {
        return Err(corrupt(format!(
            "metadata: size={} is above the largest supported {MAX_SIZE}",
            cfg.size
        )));
    }
    cfg.validate()
        .map_err(|e| corrupt(format!("metadata: {e}")))?;
    let params = cfg.parameter_count().unwrap_or(u64::MAX);
    let needed = params.saturating_mul(4);
    if needed > model_len as u64 {
        return Err(corrupt(format!(
            "metadata: {} has {params} parameters ({needed} bytes as f32) but the file holds only {model_len} bytes of weights",
            describe(cfg)
        )));
    }
    Ok(())
}

/// Loads the checkpoint at `path` onto `device`. With `expected`, a checkpoint of a different
/// architecture (fms, size or upsampling) is refused with [`TrainError::CheckpointMismatch`].
pub fn load_checkpoint(
    path: &Path,
    device: &Device,
    expected: Option<&UNetConfig>,
) -> Result<Checkpoint, TrainError> {
    let bytes = std::fs::read(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_checkpoint(path, &bytes, device, expected)
}

/// [`load_checkpoint`] on the bytes of a checkpoint file already in memory; `path` names it in
/// errors. Every check of the file (magic, lengths, checksum, metadata) runs before burn sees
/// a byte. The entry point of the `checkpoint` fuzz target.
pub fn decode_checkpoint(
    path: &Path,
    bytes: &[u8],
    device: &Device,
    expected: Option<&UNetConfig>,
) -> Result<Checkpoint, TrainError> {
    let (meta, model_bytes, optim_bytes) = parse(path, bytes)?;
    check_meta(path, &meta, model_bytes.len())?;
    if let Some(expected) = expected {
        let same = meta.model.fms == expected.fms
            && meta.model.size == expected.size
            && meta.model.upsampling == expected.upsampling;
        if !same {
            return Err(TrainError::CheckpointMismatch {
                path: path.to_path_buf(),
                found: describe(&meta.model),
                expected: describe(expected),
            });
        }
    }
    let record_err = |e: burn::store::RecordError| TrainError::Record {
        path: PathBuf::from(path),
        message: e.to_string(),
    };
    check_record_tensors(path, model_bytes)?;
    let skeleton = meta.model.init(device, 0)?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(model_bytes.to_vec()))
        .map_err(record_err)?;
    let model = skeleton.try_load_record(record).map_err(record_err)?;
    let optimizer = if optim_bytes.is_empty() {
        None
    } else {
        Some(
            OptimizerRecord::from_bytes(Bytes::from_bytes_vec(optim_bytes.to_vec()))
                .map_err(record_err)?,
        )
    };
    Ok(Checkpoint {
        meta,
        model,
        optimizer,
    })
}

/// Every tensor of the model record must be float32 and hold the bytes its shape says, as this
/// crate writes them: burn panics when a float parameter is loaded from another dtype (found by
/// the `checkpoint` fuzz target: a resealed record whose tensor claims `I32`).
fn check_record_tensors(path: &Path, model_bytes: &[u8]) -> Result<(), TrainError> {
    let bad = |message: String| TrainError::Record {
        path: path.to_path_buf(),
        message,
    };
    let reader = burn_pack::Reader::from_bytes(Bytes::from_bytes_vec(model_bytes.to_vec()))
        .map_err(|e| bad(e.to_string()))?;
    for tensor in reader.into_tensors().map_err(|e| bad(e.to_string()))? {
        let (name, dtype, shape, _, bytes) = tensor.into_parts().map_err(|e| bad(e.to_string()))?;
        if dtype != DType::F32 {
            return Err(bad(format!(
                "tensor {name} is {dtype:?}; the model's parameters are float32"
            )));
        }
        let expected = shape
            .num_elements()
            .checked_mul(4)
            .ok_or_else(|| bad(format!("tensor {name}: shape {shape:?} overflows")))?;
        if bytes.len() != expected {
            return Err(bad(format!(
                "tensor {name}: {} bytes for shape {shape:?} ({expected} expected)",
                bytes.len()
            )));
        }
    }
    Ok(())
}

/// Loads just the model of the checkpoint at `path` (for export and inference).
pub fn load_model(path: &Path, device: &Device) -> Result<(UNet, UNetConfig), TrainError> {
    let checkpoint = load_checkpoint(path, device, None)?;
    Ok((checkpoint.model, checkpoint.meta.model))
}
