//! NIfTI-1 access for the decathlon source: header-only inspection (cheap, used when opening a
//! dataset) and lazy decoding of only the first 3-D volume of a file (channel 0 = FLAIR in
//! Task01), which stops decompressing a `.nii.gz` after a quarter of its data.
//!
//! Header parsing is done by the `nifti` crate; voxel decoding is ours, so that every failure
//! becomes a [`DataError`] naming the file. [`write_nifti`] writes small NIfTI-1 files for
//! tests, benches and fixtures.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use nifti::{Endianness, NiftiHeader, NiftiType};

use crate::DataError;

/// What the header of a `.nii`/`.nii.gz` file says, before any voxel is read.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeHeader {
    /// The file.
    pub path: PathBuf,
    /// `dim[1..=dim[0]]`: x, y, z (and channels for a 4-D image).
    pub shape: Vec<usize>,
    datatype: NiftiType,
    little_endian: bool,
    vox_offset: usize,
    scale: Option<(f32, f32)>,
}

impl VolumeHeader {
    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Bytes per voxel of the stored data type.
    fn bytes_per_voxel(&self) -> usize {
        element_size(self.datatype).unwrap_or(0)
    }
}

fn element_size(datatype: NiftiType) -> Option<usize> {
    Some(match datatype {
        NiftiType::Uint8 | NiftiType::Int8 => 1,
        NiftiType::Int16 | NiftiType::Uint16 => 2,
        NiftiType::Int32 | NiftiType::Uint32 | NiftiType::Float32 => 4,
        NiftiType::Int64 | NiftiType::Uint64 | NiftiType::Float64 => 8,
        _ => return None,
    })
}

fn is_gz(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.to_string_lossy().ends_with(".gz"))
}

fn open_maybe_gz(path: &Path) -> Result<Box<dyn Read>, DataError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if !(name.ends_with(".nii") || name.ends_with(".nii.gz")) {
        return Err(DataError::NotNifti {
            path: path.to_path_buf(),
        });
    }
    let file = File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = BufReader::with_capacity(1 << 16, file);
    if is_gz(path) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(reader)))
    } else {
        Ok(Box::new(reader))
    }
}

/// Environment variable that raises (or lowers) [`DEFAULT_MAX_VOLUME_BYTES`]: the most bytes one
/// first volume may take, as stored or as f32 (a plain byte count, or with a `MiB`/`GiB`
/// suffix).
pub const MAX_VOLUME_ENV: &str = "UNET_DATA_MAX_VOLUME_BYTES";

/// Default limit on the memory one first volume may take, stored or decoded to f32: 2 GiB
/// (a Task01 FLAIR volume, 240×240×155, needs 36 MB as f32).
pub const DEFAULT_MAX_VOLUME_BYTES: u64 = 2 << 30;

/// The volume-size limit in force: [`MAX_VOLUME_ENV`] when it is set to a byte count, else
/// [`DEFAULT_MAX_VOLUME_BYTES`]. An unreadable value is reported, not ignored.
pub fn max_volume_bytes() -> Result<u64, DataError> {
    let Ok(value) = std::env::var(MAX_VOLUME_ENV) else {
        return Ok(DEFAULT_MAX_VOLUME_BYTES);
    };
    let text = value.trim();
    let (digits, shift) = [("GiB", 30), ("MiB", 20), ("KiB", 10)]
        .iter()
        .find_map(|&(suffix, shift)| text.strip_suffix(suffix).map(|d| (d.trim_end(), shift)))
        .unwrap_or((text, 0u32));
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or(DataError::BadLimit {
            variable: MAX_VOLUME_ENV,
            value,
        })
}

/// Reads and checks only the header of `path`, including that its first volume fits the
/// [`max_volume_bytes`] limit (a file too short for its data is reported by
/// [`read_first_volume`]).
pub fn read_header(path: &Path) -> Result<VolumeHeader, DataError> {
    let mut reader = open_maybe_gz(path)?;
    let header = parse_header(path, &mut reader)?;
    first_volume_size(&header, max_volume_bytes()?, None)?;
    Ok(header)
}

/// Parses and checks a NIfTI-1 header from `reader`; `path` names the file in errors.
fn parse_header(path: &Path, reader: &mut dyn Read) -> Result<VolumeHeader, DataError> {
    let nifti_err = |source| DataError::Nifti {
        path: path.to_path_buf(),
        source,
    };
    let header = NiftiHeader::from_reader(reader).map_err(nifti_err)?;
    if &header.magic != b"n+1\0" {
        return Err(DataError::UnsupportedNifti {
            path: path.to_path_buf(),
            problem: "not a single-file NIfTI-1 (magic is not \"n+1\"; .hdr/.img pairs are not supported)",
            value: i64::from(u32::from_le_bytes(header.magic)),
        });
    }
    let shape: Vec<usize> = header
        .dim()
        .map_err(nifti_err)?
        .iter()
        .map(|&d| usize::from(d))
        .collect();
    let datatype = header.data_type().map_err(nifti_err)?;
    if element_size(datatype).is_none() {
        return Err(DataError::UnsupportedNifti {
            path: path.to_path_buf(),
            problem: "voxel data type (only integer and float32/float64 scalars are supported)",
            value: i64::from(header.datatype),
        });
    }
    let vox_offset = header.vox_offset;
    if !vox_offset.is_finite() || vox_offset < 348.0 {
        return Err(DataError::UnsupportedNifti {
            path: path.to_path_buf(),
            problem: "vox_offset before the end of the 348-byte header",
            value: vox_offset as i64,
        });
    }
    let slope = header.scl_slope;
    let inter = header.scl_inter;
    let scale =
        (slope.is_finite() && inter.is_finite() && slope != 0.0 && !(slope == 1.0 && inter == 0.0))
            .then_some((slope, inter));
    Ok(VolumeHeader {
        path: path.to_path_buf(),
        shape,
        datatype,
        little_endian: header.endianness == Endianness::Little,
        vox_offset: vox_offset as usize,
        scale,
    })
}

/// `(voxels, stored bytes)` of the first 3-D volume, computed with checked arithmetic and
/// refused with [`DataError::VolumeTooLarge`] when the stored or the decoded (f32) size exceeds
/// `limit`, or when `file_len` (an uncompressed file's length) cannot hold the data.
fn first_volume_size(
    header: &VolumeHeader,
    limit: u64,
    file_len: Option<u64>,
) -> Result<(usize, usize), DataError> {
    let dims: Vec<usize> = header.shape.iter().take(3).copied().collect();
    let element = header.bytes_per_voxel();
    let too_large = |needed: u64| DataError::VolumeTooLarge {
        path: header.path.clone(),
        dims: dims.clone(),
        bytes_per_voxel: element,
        needed,
        limit,
    };
    let n_voxels = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| too_large(u64::MAX))?;
    let stored = n_voxels
        .checked_mul(element as u64)
        .ok_or_else(|| too_large(u64::MAX))?;
    let decoded = n_voxels.checked_mul(4).ok_or_else(|| too_large(u64::MAX))?;
    let needed = stored.max(decoded);
    if needed > limit {
        return Err(too_large(needed));
    }
    if let Some(file_len) = file_len {
        let end = (header.vox_offset as u64).saturating_add(stored);
        if end > file_len {
            return Err(DataError::Truncated {
                path: header.path.clone(),
                expected: stored as usize,
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the file has {file_len} bytes but dims {dims:?} at offset {} need {end}",
                        header.vox_offset
                    ),
                ),
            });
        }
    }
    let (Ok(n_voxels), Ok(stored)) = (usize::try_from(n_voxels), usize::try_from(stored)) else {
        return Err(too_large(needed));
    };
    Ok((n_voxels, stored))
}

/// Decodes the first `shape[0] * shape[1] * shape[2]` voxels (the first 3-D volume: channel 0
/// of a 4-D file, or all of a 3-D file) as f32, x fastest. Rejects NaN and infinite voxels, and
/// volumes over the [`max_volume_bytes`] limit (before allocating them).
pub fn read_first_volume(header: &VolumeHeader) -> Result<Vec<f32>, DataError> {
    let path = &header.path;
    let file_len = if is_gz(path) {
        None
    } else {
        std::fs::metadata(path).ok().map(|m| m.len())
    };
    let limit = max_volume_bytes()?;
    first_volume_size(header, limit, file_len)?;
    let mut reader = open_maybe_gz(path)?;
    decode_first_volume(header, &mut reader, limit)
}

/// Parses a whole `.nii` (or, when `bytes` start with the gzip magic, `.nii.gz`) file held in
/// memory and decodes its first volume, with the same checks and errors as [`read_header`] and
/// [`read_first_volume`]; `name` stands for the file in errors. The entry point of the `nifti`
/// fuzz target.
pub fn read_first_volume_from_bytes(
    name: &Path,
    bytes: &[u8],
    limit: u64,
) -> Result<(VolumeHeader, Vec<f32>), DataError> {
    let gz = bytes.starts_with(&[0x1f, 0x8b]);
    let open = || -> Box<dyn Read + '_> {
        if gz {
            Box::new(gzip_reader(bytes))
        } else {
            Box::new(bytes)
        }
    };
    let header = parse_header(name, &mut open())?;
    let file_len = (!gz).then_some(bytes.len() as u64);
    first_volume_size(&header, limit, file_len)?;
    let values = decode_first_volume(&header, &mut open(), limit)?;
    Ok((header, values))
}

/// Skips to the voxel data in `reader` (opened at the start of the file) and decodes the first
/// volume. The data buffer grows as bytes arrive, so a short file fails as truncated without
/// first allocating what its header promises.
fn decode_first_volume(
    header: &VolumeHeader,
    reader: &mut dyn Read,
    limit: u64,
) -> Result<Vec<f32>, DataError> {
    let path = &header.path;
    let (n_voxels, n_bytes) = first_volume_size(header, limit, None)?;
    let truncated = |source| DataError::Truncated {
        path: path.clone(),
        expected: n_bytes,
        source,
    };
    // Skip header and extensions.
    let skipped = io::copy(
        &mut Read::take(&mut *reader, header.vox_offset as u64),
        &mut io::sink(),
    )
    .map_err(|source| DataError::Io {
        path: path.clone(),
        source,
    })?;
    if skipped < header.vox_offset as u64 {
        return Err(truncated(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "file ends inside the header",
        )));
    }
    let mut raw = Vec::with_capacity(n_bytes.min(1 << 24));
    Read::take(&mut *reader, n_bytes as u64)
        .read_to_end(&mut raw)
        .map_err(truncated)?;
    if raw.len() < n_bytes {
        return Err(truncated(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the voxel data ends after {} bytes", raw.len()),
        )));
    }

    let mut values = Vec::with_capacity(n_voxels);
    let le = header.little_endian;
    macro_rules! decode {
        ($ty:ty, $n:expr) => {
            values.extend(raw.chunks_exact($n).map(|chunk| {
                let bytes: [u8; $n] = chunk.try_into().unwrap_or([0; $n]);
                (if le {
                    <$ty>::from_le_bytes(bytes)
                } else {
                    <$ty>::from_be_bytes(bytes)
                }) as f32
            }))
        };
    }
    match header.datatype {
        NiftiType::Uint8 => values.extend(raw.iter().map(|&b| f32::from(b))),
        NiftiType::Int8 => values.extend(raw.iter().map(|&b| f32::from(b as i8))),
        NiftiType::Int16 => decode!(i16, 2),
        NiftiType::Uint16 => decode!(u16, 2),
        NiftiType::Int32 => decode!(i32, 4),
        NiftiType::Uint32 => decode!(u32, 4),
        NiftiType::Float32 => decode!(f32, 4),
        NiftiType::Int64 => decode!(i64, 8),
        NiftiType::Uint64 => decode!(u64, 8),
        NiftiType::Float64 => decode!(f64, 8),
        _ => {
            return Err(DataError::UnsupportedNifti {
                path: path.clone(),
                problem: "voxel data type",
                value: header.datatype as i64,
            });
        }
    }
    if let Some((slope, inter)) = header.scale {
        for v in &mut values {
            *v = *v * slope + inter;
        }
    }
    if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
        let (nx, ny) = (
            header.shape.first().copied().unwrap_or(1).max(1),
            header.shape.get(1).copied().unwrap_or(1).max(1),
        );
        return Err(DataError::NonFinite {
            path: path.clone(),
            value: values[bad],
            x: bad % nx,
            y: (bad / nx) % ny,
            z: bad / (nx * ny),
        });
    }
    Ok(values)
}

/// Voxel data for [`write_nifti`].
#[derive(Debug, Clone, Copy)]
pub enum NiftiData<'a> {
    /// float32 voxels (datatype 16).
    F32(&'a [f32]),
    /// uint8 voxels (datatype 2), as Task01 labels.
    U8(&'a [u8]),
    /// int16 voxels (datatype 4).
    I16(&'a [i16]),
}

/// Writes a little-endian single-file NIfTI-1 (`.nii`, or gzip-compressed when the name ends in
/// `.gz`), x fastest. The file appears atomically (temporary file + rename).
pub fn write_nifti(path: &Path, shape: &[usize], data: NiftiData<'_>) -> io::Result<()> {
    let n_voxels: usize = shape.iter().product();
    let (datatype, bitpix, len) = match data {
        NiftiData::F32(v) => (16i16, 32i16, v.len()),
        NiftiData::U8(v) => (2, 8, v.len()),
        NiftiData::I16(v) => (4, 16, v.len()),
    };
    if shape.is_empty()
        || shape.len() > 7
        || len != n_voxels
        || shape.iter().any(|&d| d == 0 || d > 32767)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("shape {shape:?} does not fit {len} voxels in a NIfTI-1 file"),
        ));
    }
    let mut header = vec![0u8; 352];
    let put_i16 =
        |h: &mut Vec<u8>, at: usize, v: i16| h[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put_f32 =
        |h: &mut Vec<u8>, at: usize, v: f32| h[at..at + 4].copy_from_slice(&v.to_le_bytes());
    header[0..4].copy_from_slice(&348i32.to_le_bytes());
    header[38] = b'r';
    put_i16(&mut header, 40, shape.len() as i16);
    for (i, &d) in shape.iter().enumerate() {
        put_i16(&mut header, 42 + 2 * i, d as i16);
    }
    for i in shape.len() + 1..8 {
        put_i16(&mut header, 40 + 2 * i, 1);
    }
    put_i16(&mut header, 70, datatype);
    put_i16(&mut header, 72, bitpix);
    for i in 0..8 {
        put_f32(&mut header, 76 + 4 * i, 1.0);
    }
    put_f32(&mut header, 108, 352.0); // vox_offset
    put_f32(&mut header, 112, 1.0); // scl_slope
    header[123] = 2 | 8; // mm, s
    header[344..348].copy_from_slice(b"n+1\0");

    let gz = is_gz(path);
    artifact_io::write_atomic_with(path, |file| {
        if gz {
            let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
            write_body(&mut encoder, &header, data)?;
            encoder.finish()?.flush()
        } else {
            write_body(file, &header, data)
        }
    })
    .map_err(io::Error::from)
}

fn write_body<W: Write + ?Sized>(
    out: &mut W,
    header: &[u8],
    data: NiftiData<'_>,
) -> io::Result<()> {
    out.write_all(header)?;
    let mut buf = Vec::with_capacity(1 << 16);
    match data {
        NiftiData::F32(values) => {
            for chunk in values.chunks(1 << 14) {
                buf.clear();
                chunk
                    .iter()
                    .for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
                out.write_all(&buf)?;
            }
        }
        NiftiData::U8(values) => out.write_all(values)?,
        NiftiData::I16(values) => {
            for chunk in values.chunks(1 << 14) {
                buf.clear();
                chunk
                    .iter()
                    .for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
                out.write_all(&buf)?;
            }
        }
    }
    Ok(())
}

/// A gzip decoder over `reader` (multi-member aware), as used for `.nii.gz` files.
pub fn gzip_reader<R: Read>(reader: R) -> impl Read {
    flate2::read::MultiGzDecoder::new(reader)
}
