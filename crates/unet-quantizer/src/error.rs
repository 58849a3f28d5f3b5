//! The quantizer's error type.

use std::path::PathBuf;

/// Everything that can go wrong while quantising, calibrating, verifying or reporting.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    /// Writing an artifact failed (the error names the file; the old file is unchanged).
    #[error(transparent)]
    Write(#[from] artifact_io::WriteError),
    /// The float model uses an operator (or an operator option) we cannot quantise to int8.
    #[error("cannot quantise operator {op_index} ({op}): {reason}")]
    Unquantisable {
        /// Position of the operator in the model.
        op_index: usize,
        /// The operator's name (e.g. `DEPTHWISE_CONV_2D`).
        op: String,
        /// Why.
        reason: String,
    },
    /// The float model is not a single-input, single-output float32 image model we can handle.
    #[error("unsupported float model: {0}")]
    UnsupportedModel(String),
    /// A constant tensor of the float model holds NaN or infinite values.
    #[error(
        "tensor `{tensor}` of the float model holds {count} NaN or infinite value(s) out of {len}; \
         the model cannot be quantised (did its training diverge?)"
    )]
    NonFiniteWeights {
        /// The tensor's name.
        tensor: String,
        /// Non-finite values.
        count: usize,
        /// Values in the tensor.
        len: usize,
    },
    /// The calibration or evaluation data does not fit the model or is empty.
    #[error("bad {what} data: {detail}")]
    BadData {
        /// `calibration` or `evaluation`.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A `.npy` file could not be used.
    #[error("{}: {detail}", path.display())]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The calibration data failed the distribution check and `strict` was set.
    #[error("calibration data rejected (--strict): {0}")]
    CalibrationRejected(String),
    /// The interpreter refused or failed on a model.
    #[error("runtime ({context}): {source}")]
    Runtime {
        /// Which model or step.
        context: String,
        /// The cause (boxed: runtime errors are large).
        source: Box<tflite_runtime::RuntimeError>,
    },
    /// The writer refused the produced model.
    #[error("writing the model: {0}")]
    Writer(Box<tflite_writer::Error>),
    /// A slice source failed.
    #[error("data source: {0}")]
    Data(Box<unet_data::DataError>),
    /// An external tool (Vela, LiteRT via python3) failed or is missing.
    #[error("{tool}: {detail}")]
    Tool {
        /// The tool.
        tool: &'static str,
        /// What happened.
        detail: String,
    },
    /// A report could not be serialised.
    #[error("report serialisation: {0}")]
    Json(#[from] serde_json::Error),
}

impl QuantError {
    pub(crate) fn runtime(
        context: impl Into<String>,
    ) -> impl FnOnce(tflite_runtime::RuntimeError) -> Self {
        let context = context.into();
        move |source| QuantError::Runtime {
            context,
            source: Box::new(source),
        }
    }
}

impl From<tflite_writer::Error> for QuantError {
    fn from(e: tflite_writer::Error) -> Self {
        QuantError::Writer(Box::new(e))
    }
}

impl From<unet_data::DataError> for QuantError {
    fn from(e: unet_data::DataError) -> Self {
        QuantError::Data(Box::new(e))
    }
}
