//! The one error type of the sweep crate. Every message is one line and names the file and
//! the key (or the path) it is about.

use std::path::Path;

/// Errors of sweep setup, launch, collection and analysis.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A sweep config key with a bad value, an unknown key, or a YAML syntax error.
    #[error("{file}: {key}: {message}")]
    Config {
        /// The sweep config file.
        file: String,
        /// Dotted key (`SETUP.SAMPLERS.OPTIM.BASE_LR`), or `<yaml>` for syntax errors.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// An error of the design-space core (a model config, a network that cannot be built).
    #[error(transparent)]
    Core(#[from] regnet_core::Error),
    /// File system errors, with the path.
    #[error("{path}: {source}")]
    Io {
        /// Path that failed.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Anything else (bad launch options, an empty sweep, ...).
    #[error("{0}")]
    Other(String),
}

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::Config`].
    pub fn config(
        file: impl AsRef<Path>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Config {
            file: file.as_ref().display().to_string(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// Shorthand for [`Error::Other`].
    pub fn other(message: impl Into<String>) -> Self {
        Error::Other(message.into())
    }
}

/// Reads a file to a string, naming the path on failure.
pub(crate) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// Reads a text file of at most `max` bytes, naming the path on failure.
pub(crate) fn read_limited(path: &Path, max: u64) -> Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > max {
        return Err(Error::other(format!(
            "{}: the file is larger than the limit of {max} bytes",
            path.display()
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| Error::other(format!("{}: not UTF-8 text", path.display())))
}

/// Writes a file atomically ([`crate::atomic::write`]), creating its parent directories,
/// naming the path on failure.
pub(crate) fn write(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    crate::atomic::write(path, contents.as_ref())
}

/// Writes JSON, pretty-printed.
pub(crate) fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("sweep data always serialises");
    write(path, text + "\n")
}

/// Reads JSON written by [`write_json`], naming the path on failure.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = read(path)?;
    serde_json::from_str(&text)
        .map_err(|e| Error::other(format!("{}: bad JSON: {e}", path.display())))
}
