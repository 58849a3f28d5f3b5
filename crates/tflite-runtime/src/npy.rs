//! A small `.npy` (NumPy array file, format versions 1–3) reader and writer for the dtypes the
//! runtime exchanges: `<f4`, `|i1`, `|u1`, `<i2`, `<i4`, `<i8`, little-endian and C order only.

use crate::error::RuntimeError;

/// Array data of a `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// `<f4`.
    F32(Vec<f32>),
    /// `|i1`.
    I8(Vec<i8>),
    /// `|u1` (also `|b1`).
    U8(Vec<u8>),
    /// `<i2`.
    I16(Vec<i16>),
    /// `<i4`.
    I32(Vec<i32>),
    /// `<i8`.
    I64(Vec<i64>),
}

impl NpyData {
    fn descr(&self) -> &'static str {
        match self {
            NpyData::F32(_) => "<f4",
            NpyData::I8(_) => "|i1",
            NpyData::U8(_) => "|u1",
            NpyData::I16(_) => "<i2",
            NpyData::I32(_) => "<i4",
            NpyData::I64(_) => "<i8",
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            NpyData::F32(v) => v.len(),
            NpyData::I8(v) => v.len(),
            NpyData::U8(v) => v.len(),
            NpyData::I16(v) => v.len(),
            NpyData::I32(v) => v.len(),
            NpyData::I64(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// NumPy's name of the dtype (`float32`, `int8`, ...).
    pub fn dtype_name(&self) -> &'static str {
        match self {
            NpyData::F32(_) => "float32",
            NpyData::I8(_) => "int8",
            NpyData::U8(_) => "uint8",
            NpyData::I16(_) => "int16",
            NpyData::I32(_) => "int32",
            NpyData::I64(_) => "int64",
        }
    }
}

impl From<crate::tensor::TensorData<'_>> for NpyData {
    /// An owned copy of a tensor's data, in the matching `.npy` dtype.
    fn from(data: crate::tensor::TensorData<'_>) -> Self {
        use crate::tensor::TensorData;
        match data {
            TensorData::F32(v) => NpyData::F32(v.to_vec()),
            TensorData::I8(v) => NpyData::I8(v.to_vec()),
            TensorData::U8(v) => NpyData::U8(v.to_vec()),
            TensorData::I16(v) => NpyData::I16(v.to_vec()),
            TensorData::I32(v) => NpyData::I32(v.to_vec()),
            TensorData::I64(v) => NpyData::I64(v.to_vec()),
        }
    }
}

/// A parsed `.npy` array.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Data in C order.
    pub data: NpyData,
}

fn bad(detail: impl Into<String>) -> RuntimeError {
    RuntimeError::Npy {
        detail: detail.into(),
    }
}

/// Parses the bytes of a `.npy` file.
pub fn read_npy(bytes: &[u8]) -> Result<NpyArray, RuntimeError> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy file (missing the \\x93NUMPY magic)"));
    }
    let major = bytes[6];
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad("truncated header"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(bad(format!("unsupported .npy format version {v}"))),
    };
    let header_end = start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("truncated header"))?;
    let header =
        std::str::from_utf8(&bytes[start..header_end]).map_err(|_| bad("header is not text"))?;
    let descr = dict_value(header, "descr").ok_or_else(|| bad("header has no 'descr'"))?;
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
    let fortran =
        dict_value(header, "fortran_order").ok_or_else(|| bad("header has no 'fortran_order'"))?;
    if fortran.trim() != "False" {
        return Err(bad("Fortran-order arrays are not supported"));
    }
    let shape_text = dict_value(header, "shape").ok_or_else(|| bad("header has no 'shape'"))?;
    let shape: Vec<usize> = shape_text
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| bad(format!("bad shape entry '{s}'")))
        })
        .collect::<Result<_, _>>()?;
    let n: usize = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad("shape is too large"))?;
    let body = &bytes[header_end..];
    let elem = match descr {
        "<f4" | "<i4" => 4,
        "|i1" | "|u1" | "|b1" | "<i1" | "<u1" => 1,
        "<i8" => 8,
        "<i2" => 2,
        other => {
            return Err(bad(format!(
                "dtype '{other}' is not supported (use float32, int8, uint8, int16, int32 or int64, little-endian)"
            )));
        }
    };
    let need = n
        .checked_mul(elem)
        .ok_or_else(|| bad("shape is too large"))?;
    if body.len() < need {
        return Err(bad(format!(
            "data is truncated: shape {shape:?} needs {need} bytes, the file has {}",
            body.len()
        )));
    }
    let body = &body[..need];
    let data = match descr {
        "<f4" => NpyData::F32(
            body.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        "<i4" => NpyData::I32(
            body.chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        "<i8" => NpyData::I64(
            body.chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ),
        "|i1" | "<i1" => NpyData::I8(body.iter().map(|&b| b as i8).collect()),
        "<i2" => NpyData::I16(
            body.chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect(),
        ),
        _ => NpyData::U8(body.to_vec()),
    };
    Ok(NpyArray { shape, data })
}

/// The text after `'key':` in a header dict, up to the matching top-level comma.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pos = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[pos + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?;
    let mut depth = 0i32;
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(&rest[..i]),
            _ => {}
        }
    }
    Some(rest)
}

/// Serialises an array as a version-1 `.npy` file.
pub fn write_npy(array: &NpyArray) -> Vec<u8> {
    let shape = match array.shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", array.shape[0]),
        _ => format!(
            "({})",
            array
                .shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        array.data.descr()
    );
    // Pad so that the data starts on a 64-byte boundary, header ending in '\n'.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat(total.div_ceil(64) * 64 - total));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + array.data.len() * 8);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    match &array.data {
        NpyData::F32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        NpyData::I8(v) => out.extend(v.iter().map(|&x| x as u8)),
        NpyData::U8(v) => out.extend_from_slice(v),
        NpyData::I16(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        NpyData::I32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        NpyData::I64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
    }
    out
}

/// What a stack of slices holds, which decides the dtypes [`SliceStack::from_array`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceKind {
    /// Images: float32 only, every value finite.
    Images,
    /// Masks: float32 or any integer dtype (converted to f32); the 0/1 check is the caller's.
    Masks,
}

/// Single-channel 2D slices as every tool of the workspace reads them from an `.npy`: shape
/// `[H,W]` (one slice), `[N,H,W]`, `[N,H,W,1]` or `[N,1,H,W]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceStack {
    /// Rows of each slice.
    pub height: usize,
    /// Columns of each slice.
    pub width: usize,
    /// The slices, `height × width` values each.
    pub slices: Vec<Vec<f32>>,
}

impl SliceStack {
    /// The slices of `array`. `size` is the `(height, width)` the caller needs, when it knows it.
    /// The error says what is wrong, for the caller to prefix with the file's name.
    pub fn from_array(
        array: NpyArray,
        kind: SliceKind,
        size: Option<(usize, usize)>,
    ) -> Result<Self, String> {
        let shape = array.shape.clone();
        let expected = match size {
            Some((h, w)) => format!("[{h},{w}], [N,{h},{w}], [N,{h},{w},1] or [N,1,{h},{w}]"),
            None => "[H,W], [N,H,W], [N,H,W,1] or [N,1,H,W]".to_string(),
        };
        let (n, height, width) = match *shape.as_slice() {
            [h, w] => (1, h, w),
            [n, h, w] | [n, h, w, 1] | [n, 1, h, w] => (n, h, w),
            _ => {
                return Err(format!(
                    "shape {shape:?} is not a stack of one-channel slices (expected {expected})"
                ));
            }
        };
        if let Some((h, w)) = size
            && (height, width) != (h, w)
        {
            return Err(format!(
                "shape {shape:?} holds {height}x{width} slices, the model needs {h}x{w} (expected {expected})"
            ));
        }
        if n == 0 || height == 0 || width == 0 {
            return Err(format!("shape {shape:?} holds no slices"));
        }
        let values: Vec<f32> = match (array.data, kind) {
            (NpyData::F32(v), _) => v,
            (NpyData::U8(v), SliceKind::Masks) => v.into_iter().map(f32::from).collect(),
            (NpyData::I8(v), SliceKind::Masks) => v.into_iter().map(f32::from).collect(),
            (NpyData::I16(v), SliceKind::Masks) => v.into_iter().map(f32::from).collect(),
            (NpyData::I32(v), SliceKind::Masks) => v.into_iter().map(|x| x as f32).collect(),
            (NpyData::I64(v), SliceKind::Masks) => v.into_iter().map(|x| x as f32).collect(),
            (other, SliceKind::Images) => {
                return Err(format!(
                    "dtype {}; save the slices as float32",
                    other.dtype_name()
                ));
            }
        };
        let per = height * width;
        let slices: Vec<Vec<f32>> = values.chunks_exact(per).map(<[f32]>::to_vec).collect();
        if kind == SliceKind::Images
            && let Some(i) = slices.iter().position(|s| s.iter().any(|v| !v.is_finite()))
        {
            return Err(format!("slice {i} contains NaN or infinite values"));
        }
        Ok(Self {
            height,
            width,
            slices,
        })
    }

    /// Reads `path` and returns its slices; errors name the file.
    pub fn read(
        path: &std::path::Path,
        kind: SliceKind,
        size: Option<(usize, usize)>,
    ) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let array = read_npy(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_array(array, kind, size).map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_dtypes() {
        let arrays = [
            NpyArray {
                shape: vec![2, 3],
                data: NpyData::F32(vec![0.5, -1.0, 2.25, 3.0, 1e-7, -0.0]),
            },
            NpyArray {
                shape: vec![4],
                data: NpyData::I8(vec![-128, -1, 0, 127]),
            },
            NpyArray {
                shape: vec![],
                data: NpyData::I32(vec![42]),
            },
            NpyArray {
                shape: vec![1, 2],
                data: NpyData::I64(vec![i64::MIN, 7]),
            },
            NpyArray {
                shape: vec![3, 1],
                data: NpyData::U8(vec![0, 200, 255]),
            },
            NpyArray {
                shape: vec![5],
                data: NpyData::I16(vec![i16::MIN, -1, 0, 1, i16::MAX]),
            },
        ];
        for a in arrays {
            let bytes = write_npy(&a);
            assert_eq!(
                (10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize) % 64,
                0
            );
            assert_eq!(read_npy(&bytes).unwrap(), a);
        }
    }

    #[test]
    fn rejects_bad_files() {
        assert!(read_npy(b"hello").is_err());
        let mut bytes = write_npy(&NpyArray {
            shape: vec![8],
            data: NpyData::F32(vec![0.0; 8]),
        });
        bytes.truncate(bytes.len() - 4);
        let err = read_npy(&bytes).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        let text = String::from_utf8_lossy(&write_npy(&NpyArray {
            shape: vec![1],
            data: NpyData::F32(vec![0.0]),
        }))
        .replace("<f4", ">f8");
        assert!(read_npy(text.as_bytes()).is_err());
    }

    #[test]
    fn slice_stacks_accept_the_four_layouts_and_refuse_the_rest() {
        let array = |shape: Vec<usize>, data: NpyData| NpyArray { shape, data };
        let f = |n: usize| NpyData::F32((0..n).map(|i| i as f32).collect());
        for shape in [vec![2, 3, 4], vec![2, 3, 4, 1], vec![2, 1, 3, 4]] {
            let s = SliceStack::from_array(
                array(shape.clone(), f(24)),
                SliceKind::Images,
                Some((3, 4)),
            )
            .unwrap_or_else(|e| panic!("{shape:?}: {e}"));
            assert_eq!((s.slices.len(), s.height, s.width), (2, 3, 4));
            assert_eq!(s.slices[1][0], 12.0);
        }
        let one =
            SliceStack::from_array(array(vec![3, 4], f(12)), SliceKind::Images, None).unwrap();
        assert_eq!(one.slices.len(), 1);
        let wrong =
            SliceStack::from_array(array(vec![2, 4, 3], f(24)), SliceKind::Images, Some((3, 4)));
        assert!(wrong.unwrap_err().contains("the model needs 3x4"));
        let rank = SliceStack::from_array(array(vec![2, 2, 3, 2], f(24)), SliceKind::Images, None);
        assert!(rank.unwrap_err().contains("one-channel"));
        let empty = SliceStack::from_array(array(vec![0, 3, 4], f(0)), SliceKind::Images, None);
        assert!(empty.unwrap_err().contains("no slices"));
        let ints = array(vec![1, 2, 2], NpyData::U8(vec![0, 1, 1, 0]));
        assert!(
            SliceStack::from_array(ints.clone(), SliceKind::Images, None)
                .unwrap_err()
                .contains("uint8")
        );
        assert_eq!(
            SliceStack::from_array(ints, SliceKind::Masks, None)
                .unwrap()
                .slices[0],
            vec![0.0, 1.0, 1.0, 0.0]
        );
        let nan = array(vec![1, 1, 2], NpyData::F32(vec![0.0, f32::NAN]));
        assert!(
            SliceStack::from_array(nan, SliceKind::Images, None)
                .unwrap_err()
                .contains("NaN")
        );
    }
}
