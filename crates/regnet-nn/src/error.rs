//! Errors of weight files and state dicts.

use std::fmt;

/// A shape mismatch between a file and the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeMismatch {
    /// Tensor name.
    pub name: String,
    /// Shape the model has.
    pub expected: Vec<usize>,
    /// Shape the file has.
    pub found: Vec<usize>,
}

/// Errors reading, converting or applying weights.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file could not be read or is not in a supported format.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The file's tensors do not match the model.
    #[error("{path}: weights do not match the model: {}", mismatch_summary(.missing, .unexpected, .shapes))]
    Mismatch {
        /// The file.
        path: String,
        /// Tensors the model needs that the file lacks (name, expected shape).
        missing: Vec<(String, Vec<usize>)>,
        /// Tensors in the file the model does not have (name, shape).
        unexpected: Vec<(String, Vec<usize>)>,
        /// Tensors with the wrong shape.
        shapes: Vec<ShapeMismatch>,
    },
    /// Anything else (bad spec metadata, unsupported dtype, ...).
    #[error("{0}")]
    Other(String),
}

struct Shape<'a>(&'a [usize]);

impl fmt::Display for Shape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.0.iter().map(|d| d.to_string()).collect();
        write!(f, "[{}]", dims.join(", "))
    }
}

fn list(items: &[(String, Vec<usize>)]) -> String {
    const MAX: usize = 8;
    let mut parts: Vec<String> = items
        .iter()
        .take(MAX)
        .map(|(n, s)| format!("{n} {}", Shape(s)))
        .collect();
    if items.len() > MAX {
        parts.push(format!("... {} more", items.len() - MAX));
    }
    parts.join(", ")
}

fn mismatch_summary(
    missing: &[(String, Vec<usize>)],
    unexpected: &[(String, Vec<usize>)],
    shapes: &[ShapeMismatch],
) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("{} missing: {}", missing.len(), list(missing)));
    }
    if !unexpected.is_empty() {
        parts.push(format!(
            "{} unexpected: {}",
            unexpected.len(),
            list(unexpected)
        ));
    }
    if !shapes.is_empty() {
        let items: Vec<String> = shapes
            .iter()
            .take(8)
            .map(|m| {
                format!(
                    "{} model {} file {}",
                    m.name,
                    Shape(&m.expected),
                    Shape(&m.found)
                )
            })
            .collect();
        let more = if shapes.len() > 8 {
            format!(", ... {} more", shapes.len() - 8)
        } else {
            String::new()
        };
        parts.push(format!(
            "{} wrongly shaped: {}{more}",
            shapes.len(),
            items.join(", ")
        ));
    }
    parts.join("; ")
}
