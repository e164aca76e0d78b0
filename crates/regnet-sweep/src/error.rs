//! The one error type of the sweep crate. Every message is one line and names the file and
//! the key (or the path) it is about.

use std::path::Path;

use regnet_core::error::one_line;

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
    /// Shorthand for [`Error::Config`]. Control characters in the file name, key and message
    /// (a quoted YAML key can hold a newline) are escaped, keeping the message one line.
    pub fn config(
        file: impl AsRef<Path>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Config {
            file: one_line(file.as_ref().display().to_string()),
            key: one_line(key.into()),
            message: one_line(message.into()),
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

/// Writes a file atomically ([`regnet_core::atomic_file::write_atomic`]: a reader such as
/// `collect` or another launcher sees the old file or the new one, never half of one),
/// creating its parent directories, naming the path on failure.
pub(crate) fn write(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    regnet_core::atomic_file::write_atomic(path, contents.as_ref())
        .map_err(|e| Error::io(&e.path, e.source))
}

/// A sweep folder's temporary entry older than this is abandoned even if a process with
/// its writer's pid runs here: the folder may be shared with other machines, and writes
/// take milliseconds.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes the temporary files and folders killed writers left in `dir` (best effort: a
/// file that cannot be removed is left for the next run).
pub(crate) fn remove_stale_temps(dir: &Path) {
    let _ = regnet_core::atomic_file::remove_stale(dir, STALE_AFTER);
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
