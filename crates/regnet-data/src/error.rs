//! The one error type of the crate.
//!
//! Every error that comes from a file names that file, so a run that stops on bad data says
//! which file to look at (and for a sample inside a file, which sample).

use std::io;
use std::path::{Path, PathBuf};

/// Shorthand for `Result<T, DataError>`.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Everything that can go wrong while opening a data set, decoding a sample, transforming
/// it or loading a batch.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or directory could not be read (missing, permissions, ...).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A data file is malformed: bad magic number, truncated, inconsistent sizes, a label
    /// out of range, an unexpected pickle structure...
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An image file could not be decoded (corrupt, truncated, not an image).
    #[error("{}: cannot decode image: {message}", path.display())]
    Decode {
        /// The image file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
    /// A decoded image does not fit the transform (e.g. a 28x28 image given to the CIFAR
    /// transform, or a colour image given to the one-channel transform).
    #[error("{sample}: {message}")]
    Transform {
        /// The sample, as [`Dataset::describe`](crate::Dataset::describe) names it.
        sample: String,
        /// What does not fit.
        message: String,
    },
    /// `open_dataset` was given a name it does not know.
    #[error("unknown data set '{name}' (choices: {})", choices.join(", "))]
    UnknownDataset {
        /// The name given.
        name: String,
        /// The names that are known.
        choices: Vec<&'static str>,
    },
    /// A data set that has no default location was opened without a path.
    #[error("data set '{name}' needs a path")]
    MissingPath {
        /// The data set's name.
        name: String,
    },
    /// An option is out of range (batch size 0, test size below train size, ...).
    #[error("invalid option: {0}")]
    InvalidOption(String),
}

impl DataError {
    /// The file this error is about, if it is about one (used to log skipped samples).
    pub fn path(&self) -> Option<&Path> {
        match self {
            DataError::Io { path, .. }
            | DataError::Format { path, .. }
            | DataError::Decode { path, .. } => Some(path),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataError::Format {
            path: path.into(),
            message: message.into(),
        }
    }
}
