//! The one error type of the crate.
//!
//! Every error that comes from a file names that file, so a run that stops on bad data says
//! which file to look at (and for a sample inside a file, which sample).
//!
//! Messages are one line and say everything themselves: no variant exposes an inner error as
//! its `source()`, because a printer that walks the chain (`anyhow`'s `{:#}`) would then print
//! the inner message a second time ("X: msg: msg"). File names are shown with control
//! characters escaped, so a hostile file name cannot break a message (or a log) into lines.

use std::io;
use std::path::{Path, PathBuf};

use crate::dataset::Split;

/// Shorthand for `Result<T, DataError>`.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Everything that can go wrong while opening a data set, decoding a sample, transforming
/// it or loading a batch.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or directory could not be read (missing, permissions, ...).
    #[error("{}: {error}", show_path(path))]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error (part of the message, not a `source()`).
        error: io::Error,
    },
    /// A data file is malformed: bad magic number, truncated, inconsistent sizes, a label
    /// out of range, an unexpected pickle structure, a size over a limit...
    #[error("{}: {message}", show_path(path))]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An image file could not be decoded (corrupt, truncated, not an image).
    #[error("{}: cannot decode image: {message}", show_path(path))]
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
    /// A split that would train or test on no image at all: it has none, it is smaller than
    /// one batch when the last partial batch is dropped, or every image was skipped as corrupt.
    #[error("the {split} split at {dataset} {problem}")]
    EmptySplit {
        /// Which split.
        split: Split,
        /// Where its images are ([`Dataset::source`](crate::Dataset::source)).
        dataset: String,
        /// What leaves it empty, from "has no images" on.
        problem: String,
    },
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

    pub(crate) fn io(path: impl Into<PathBuf>, error: io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            error,
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataError::Format {
            path: path.into(),
            message: one_line(&message.into()),
        }
    }

    pub(crate) fn empty_split(split: Split, dataset: String, problem: impl Into<String>) -> Self {
        DataError::EmptySplit {
            split,
            dataset,
            problem: problem.into(),
        }
    }
}

/// A path for a one-line message: as `Path::display` shows it, with control characters
/// (newlines, escapes) written as Rust escapes.
pub fn show_path(path: &Path) -> String {
    one_line(&path.display().to_string())
}

/// `text` with its control characters written as Rust escapes (`\n`, `\u{1b}`), so that text
/// from a file or a decoder stays on one line.
pub fn one_line(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_name_the_file_once_and_have_no_source() {
        let e = DataError::io(
            "/d/x\nidx",
            io::Error::new(io::ErrorKind::NotFound, "not found"),
        );
        assert_eq!(e.to_string(), "/d/x\\nidx: not found");
        assert!(std::error::Error::source(&e).is_none());
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(one_line("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(one_line("plain é"), "plain é");
        let e = DataError::format(Path::new("a\nb"), "bad");
        assert_eq!(e.to_string(), "a\\nb: bad");
    }
}
