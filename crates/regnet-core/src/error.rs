//! The one error type of the design-space core.

use std::fmt;

/// Where a configuration value came from, so that errors can name it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Origin {
    /// A YAML file.
    File(String),
    /// `KEY VALUE` pairs given on the command line.
    CommandLine,
    /// Values built in code (zoo entries, samplers).
    #[default]
    Builtin,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{path}"),
            Origin::CommandLine => write!(f, "command line"),
            Origin::Builtin => write!(f, "built-in config"),
        }
    }
}

/// Errors of the design-space core. Every message is one line and names the offending
/// file, key or value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A network description that cannot be built (bad widths, depths, groups, ...).
    #[error("invalid network: {0}")]
    Spec(String),
    /// A configuration key with a bad value, an unknown key, or a YAML syntax error.
    #[error("{origin}: {key}: {message}")]
    Config {
        /// File or command line.
        origin: Origin,
        /// Dotted key (`REGNET.DEPTH`), or `<yaml>` for syntax errors.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A model name that is not in the zoo.
    #[error("unknown model `{name}`{hint}")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// A "did you mean" suggestion, possibly empty.
        hint: String,
    },
    /// File system errors, with the path. The I/O error is part of the message, not a
    /// `source()`, so that printing the error chain does not repeat it.
    #[error("{path}: {error}")]
    Io {
        /// Path that failed.
        path: String,
        /// Underlying error.
        error: std::io::Error,
    },
}

/// Result alias for the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::Spec`].
    pub fn spec(msg: impl Into<String>) -> Self {
        Error::Spec(one_line(msg.into()))
    }

    /// Shorthand for [`Error::Config`]. Control characters in the key and message (a key
    /// read from a broken file can hold a newline) are escaped, keeping the message one line.
    pub fn config(origin: &Origin, key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            origin: origin.clone(),
            key: one_line(key.into()),
            message: one_line(message.into()),
        }
    }
}

/// `s` with control characters escaped (`\n`), so that it prints on one line.
pub fn one_line(s: String) -> String {
    if !s.chars().any(char::is_control) {
        return s;
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The candidate closest to `name` by edit distance, if it is close enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_only() {
        let keys = ["DEPTH", "W0", "WA", "WM", "GROUP_W"];
        assert_eq!(closest("DEPHT", keys), Some("DEPTH"));
        assert_eq!(closest("GROUPW", keys), Some("GROUP_W"));
        assert_eq!(closest("SOMETHING_ELSE", keys), None);
    }
}
