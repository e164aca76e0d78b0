//! Errors of the ONNX export.

use regnet_nn::WeightsError;

/// What can go wrong while exporting.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The spec does not describe a valid network.
    #[error(transparent)]
    Spec(#[from] regnet_core::error::Error),
    /// The weights do not match the network, or the file could not be written.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// The request cannot be exported (too large, inconsistent options).
    #[error("{0}")]
    Invalid(String),
}

/// Result of the export functions.
pub type Result<T, E = OnnxError> = std::result::Result<T, E>;
