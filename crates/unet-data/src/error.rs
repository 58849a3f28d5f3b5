//! The crate's one error type. Every variant that concerns a file names it.

use std::path::PathBuf;

use crate::Split;

/// Everything that can go wrong while opening or reading a slice source.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// `slices_per_split` is above the limit.
    #[error("{count} slices per split is above the limit of {max}")]
    BadSliceCount {
        /// The count asked for.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Writing an artifact failed (the error names the file; the old file is unchanged).
    #[error(transparent)]
    Write(#[from] artifact_io::WriteError),
    /// The requested slice size is not a positive multiple of 16 (the U-Net pools four times).
    #[error(
        "size {size} is not a positive multiple of 16 (the U-Net halves the resolution four times)"
    )]
    BadSize {
        /// The rejected size.
        size: usize,
    },
    /// The split fractions are not in `[0, 1)` or leave nothing for training.
    #[error(
        "split fractions validation={validation} test={test} are invalid: each must be in [0, 1) and their sum below 1"
    )]
    BadSplitFractions {
        /// Validation fraction.
        validation: f64,
        /// Test fraction.
        test: f64,
    },
    /// The decathlon source was asked for without a data path.
    #[error(
        "the decathlon source needs a data path (the Task01_BrainTumour directory holding dataset.json)"
    )]
    MissingDataPath,
    /// `dataset.json` does not exist.
    #[error(
        "{path}: dataset.json not found (expected the Medical Segmentation Decathlon Task01 layout)"
    )]
    MissingDatasetJson {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `dataset.json` is not valid JSON or lacks `training[].image` / `training[].label`.
    #[error("{path}: malformed dataset.json: {source}")]
    MalformedDatasetJson {
        /// The file.
        path: PathBuf,
        /// The parse error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// `dataset.json` lists no training volumes.
    #[error("{path}: dataset.json lists no training volumes")]
    NoTrainingVolumes {
        /// The file.
        path: PathBuf,
    },
    /// `dataset.json` lists the same file in two training entries.
    #[error(
        "{path}: `{file}` is listed twice (training entries {first} and {second}); a repeated volume would land in several splits"
    )]
    DuplicateVolume {
        /// The `dataset.json`.
        path: PathBuf,
        /// The repeated file, as listed.
        file: String,
        /// Index of the first entry listing it.
        first: usize,
        /// Index of the repeat.
        second: usize,
    },
    /// A volume listed in `dataset.json` does not exist.
    #[error("{path}: volume listed in {dataset_json} does not exist")]
    MissingVolume {
        /// The missing volume.
        path: PathBuf,
        /// The dataset.json that lists it.
        dataset_json: PathBuf,
    },
    /// A volume is not a `.nii` or `.nii.gz` file.
    #[error("{path}: not a .nii or .nii.gz file")]
    NotNifti {
        /// The file.
        path: PathBuf,
    },
    /// The NIfTI header could not be parsed.
    #[error("{path}: bad NIfTI header: {source}")]
    Nifti {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: nifti::NiftiError,
    },
    /// The header parsed but describes something this loader cannot use.
    #[error("{path}: unsupported NIfTI: {problem}")]
    UnsupportedNifti {
        /// The file.
        path: PathBuf,
        /// What is unsupported (data type, header-only pair, ...).
        problem: &'static str,
        /// The offending header value.
        value: i64,
    },
    /// A volume has the wrong number of dimensions (for example a 3-D image where 4-D is expected).
    #[error("{path}: expected a {expected}-D {role} volume, found {found}-D with shape {shape:?}")]
    WrongRank {
        /// The file.
        path: PathBuf,
        /// "image" or "label".
        role: &'static str,
        /// The rank this loader needs.
        expected: usize,
        /// The rank in the header.
        found: usize,
        /// The full shape from the header.
        shape: Vec<usize>,
    },
    /// The image has no FLAIR channel to take (its 4th dimension is 0).
    #[error("{path}: image has {channels} channels, need at least 1")]
    NoChannels {
        /// The file.
        path: PathBuf,
        /// The channel count.
        channels: usize,
    },
    /// Image and label spatial shapes differ.
    #[error(
        "image/label shape mismatch: {image} is {image_shape:?} but {label} is {label_shape:?}"
    )]
    ShapeMismatch {
        /// The image volume.
        image: PathBuf,
        /// Its spatial shape (H, W, D).
        image_shape: Vec<usize>,
        /// The label volume.
        label: PathBuf,
        /// Its spatial shape.
        label_shape: Vec<usize>,
    },
    /// A voxel is NaN or infinite.
    #[error("{path}: non-finite voxel {value} at (x={x}, y={y}, z={z})")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The value (NaN or ±inf).
        value: f32,
        /// Voxel x.
        x: usize,
        /// Voxel y.
        y: usize,
        /// Voxel z.
        z: usize,
    },
    /// The file ends before the voxel data the header promises.
    #[error(
        "{path}: truncated volume: header promises {expected} bytes of voxel data for channel 0, {source}"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes expected.
        expected: usize,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
    /// The header's dimensions ask for more memory than the limit allows (checked before any
    /// voxel is allocated).
    #[error(
        "{path}: volume too large: dims {dims:?} × {bytes_per_voxel} bytes per voxel need {needed} bytes (as stored or as f32), over the limit of {limit} bytes (set {env}=BYTES to raise it)",
        env = crate::nifti_io::MAX_VOLUME_ENV
    )]
    VolumeTooLarge {
        /// The file.
        path: PathBuf,
        /// The first volume's dimensions from the header.
        dims: Vec<usize>,
        /// Bytes per stored voxel.
        bytes_per_voxel: usize,
        /// Bytes needed (saturated at `u64::MAX` when the product overflows).
        needed: u64,
        /// The limit in force.
        limit: u64,
    },
    /// A limit variable holds something that is not a byte count.
    #[error("{variable}={value:?} is not a byte count (expected e.g. 4294967296, 4096MiB or 4GiB)")]
    BadLimit {
        /// The environment variable.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// A split holds no slices.
    #[error("{split} split of the {source_name} source is empty ({reason})")]
    EmptySplit {
        /// Which split.
        split: Split,
        /// Which source ("synthetic", "noise", a dataset.json path, ...).
        source_name: String,
        /// Why it is empty.
        reason: &'static str,
    },
    /// A slice index past the end.
    #[error("slice index {index} out of range for a source of {len} slices")]
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// The source length.
        len: usize,
    },
}
