//! Reading sweep YAML with errors that name the file and the dotted key.
//!
//! Sweep configs are read as a YAML tree and checked by hand (rather than by serde
//! derive) because `SETUP.SAMPLERS` is keyed by arbitrary config keys and samplers are
//! typed by their `TYPE` field, and every error must name the full key.

use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use crate::error::{Error, Result};

/// Where a YAML value is: the file and its dotted key.
#[derive(Clone, Debug)]
pub(crate) struct At {
    pub file: PathBuf,
    pub key: String,
}

impl At {
    pub fn root(file: &Path) -> At {
        At {
            file: file.to_path_buf(),
            key: String::new(),
        }
    }

    /// The location of `child` under this one.
    pub fn child(&self, child: &str) -> At {
        At {
            file: self.file.clone(),
            key: if self.key.is_empty() {
                child.to_string()
            } else {
                format!("{}.{child}", self.key)
            },
        }
    }

    /// An error at this location.
    pub fn err(&self, message: impl Into<String>) -> Error {
        let key = if self.key.is_empty() {
            "<yaml>"
        } else {
            &self.key
        };
        Error::config(&self.file, key, message)
    }
}

/// A YAML key as a string.
pub(crate) fn key_str(k: &Value) -> Option<&str> {
    k.as_str()
}

/// The mapping at `at`, or an error.
pub(crate) fn mapping<'a>(v: &'a Value, at: &At) -> Result<&'a Mapping> {
    match v {
        Value::Mapping(m) => Ok(m),
        _ => Err(at.err("must be a mapping of keys")),
    }
}

/// Checks that every key of `m` is in `known`, suggesting the closest one otherwise.
pub(crate) fn check_keys(m: &Mapping, known: &[&str], at: &At) -> Result<()> {
    for k in m.keys() {
        let Some(name) = key_str(k) else {
            return Err(at.err(format!("key {k:?} is not a string")));
        };
        if !known.contains(&name) {
            let hint = regnet_core::error::closest(name, known.iter().copied())
                .map(|c| format!(" (did you mean {}?)", at.child(c).key))
                .unwrap_or_default();
            return Err(at.child(name).err(format!("unknown key{hint}")));
        }
    }
    Ok(())
}

/// A number, also from a string that reads as one (as yacs decodes `5e-5`).
pub(crate) fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|x| x.is_finite())
}

/// A number at `at`.
pub(crate) fn number(v: &Value, at: &At) -> Result<f64> {
    as_f64(v).ok_or_else(|| at.err(format!("must be a number, got {}", show(v))))
}

/// A non-negative integer at `at`.
pub(crate) fn uint(v: &Value, at: &At) -> Result<u64> {
    let x = number(v, at)?;
    if x < 0.0 || x.fract() != 0.0 || x > 2f64.powi(53) {
        return Err(at.err(format!("must be a non-negative integer, got {}", show(v))));
    }
    Ok(x as u64)
}

/// A string at `at`.
pub(crate) fn string(v: &Value, at: &At) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(at.err(format!("must be a string, got {}", show(v)))),
    }
}

/// A list at `at`.
pub(crate) fn list<'a>(v: &'a Value, at: &At) -> Result<&'a [Value]> {
    match v {
        Value::Sequence(s) => Ok(s),
        _ => Err(at.err(format!("must be a list, got {}", show(v)))),
    }
}

/// A `[LOW, HIGH]` pair of numbers at `at`.
pub(crate) fn pair(v: &Value, at: &At) -> Result<(f64, f64)> {
    let items = list(v, at)?;
    if items.len() != 2 {
        return Err(at.err(format!(
            "must be a [LOW, HIGH] pair, got {} values",
            items.len()
        )));
    }
    Ok((number(&items[0], at)?, number(&items[1], at)?))
}

/// A short rendering of a value for error messages.
pub(crate) fn show(v: &Value) -> String {
    match v {
        Value::Null => "nothing".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Sequence(_) => "a list".into(),
        other => serde_norway::to_string(other)
            .map(|s| format!("`{}`", s.trim_end()))
            .unwrap_or_else(|_| "a value".into()),
    }
}

/// A YAML value as JSON (the representation of sampled values).
pub(crate) fn to_json(v: &Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// The value under `key` of `m`, if any.
pub(crate) fn get<'a>(m: &'a Mapping, key: &str) -> Option<&'a Value> {
    m.get(Value::String(key.to_string()))
}
