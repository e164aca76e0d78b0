//! Errors of the compiled inference path.

use thiserror::Error;

/// What can go wrong compiling a network or running it.
#[derive(Debug, Error)]
pub enum InferError {
    /// The weights do not fit the layer plan (missing tensor, wrong size).
    #[error("weights: {0}")]
    Weights(#[from] regnet_nn::WeightsError),
    /// The input does not fit the network (shape, channels, length, size).
    #[error("input: {0}")]
    Input(String),
    /// The layer plan holds something this path cannot run.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl InferError {
    pub(crate) fn input(msg: impl Into<String>) -> Self {
        InferError::Input(msg.into())
    }
}
