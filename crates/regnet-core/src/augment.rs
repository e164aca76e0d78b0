//! `TRAIN.AUGMENT`, typed: pycls's augmentation policy string, parsed once when the config
//! loads.
//!
//! pycls's `make_augment` splits the string on `_`: the first part is `AutoAugment` or
//! `RandAugment`, each further part a letter and a number, `N` (ops per image, truncated to
//! an integer), `M` (magnitude) or `P` (probability of each op), the last one winning when
//! a letter repeats. Strings pycls would accept and then fail on at the first image are
//! refused here with the reason: parameters after `AutoAugment` (its function takes none),
//! a RandAugment without `M` (a required argument), a magnitude outside [0, 1] (asserted by
//! `apply_op`), a negative or non-finite `N`, a NaN `P`. `N` is at most [`MAX_AUGMENT_OPS`].
//! The value dumps as `AutoAugment` or `RandAugment_N<n>_M<m>[_P<p>]` (`P` left out at 1),
//! and as `''` when empty, as pycls writes its default.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::limits::MAX_AUGMENT_OPS;

/// The forms `TRAIN.AUGMENT` takes, for error messages.
const FORMS: &str = "`AutoAugment`, `RandAugment_N<ops>_M<magnitude in [0, 1]>` \
                     with an optional `_P<probability>`, or empty";

/// A `TRAIN.AUGMENT` value.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Augment {
    /// Empty: no augmentation policy.
    #[default]
    None,
    /// pycls's AutoAugment ImageNet policy.
    AutoAugment,
    /// pycls's RandAugment.
    RandAugment {
        /// Ops drawn per image (`N`, default 2).
        n_ops: usize,
        /// Magnitude of every op, in [0, 1] (`M`, required).
        magnitude: f64,
        /// Probability of each op (`P`, default 1; 1 or more: always).
        prob: f64,
    },
}

impl FromStr for Augment {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Ok(Augment::None);
        }
        // Escaped: a value with a newline must not break the one-line error.
        let bad = |why: String| format!("`{}`: {why}; expected {FORMS}", text.escape_debug());
        let mut parts = text.split('_');
        let name = parts.next().unwrap_or_default();
        let (mut n, mut m, mut p) = (2.0, None, 1.0);
        let mut any = false;
        for part in parts {
            let mut chars = part.chars();
            let letter = chars.next();
            let value: f64 = chars.as_str().trim().parse().map_err(|_| {
                bad(format!(
                    "`{part}` is not a letter N, M or P followed by a number"
                ))
            })?;
            match letter {
                Some('N') => n = value,
                Some('M') => m = Some(value),
                Some('P') => p = value,
                _ => return Err(bad(format!("`{part}` does not start with N, M or P"))),
            }
            any = true;
        }
        match name {
            "AutoAugment" if any => Err(bad("AutoAugment takes no parameters".into())),
            "AutoAugment" => Ok(Augment::AutoAugment),
            "RandAugment" => rand_augment(n, m, p).map_err(bad),
            _ => Err(bad(format!("unknown policy `{name}`"))),
        }
    }
}

/// RandAugment's parameters, checked.
fn rand_augment(n: f64, m: Option<f64>, prob: f64) -> Result<Augment, String> {
    let magnitude = m.ok_or("RandAugment needs a magnitude M")?;
    if !(0.0..=1.0).contains(&magnitude) {
        return Err(format!("magnitude {magnitude} is not in [0, 1]"));
    }
    // pycls takes int(N); a negative count or NaN fails there.
    let n_ops = n.trunc();
    if !(0.0..=MAX_AUGMENT_OPS as f64).contains(&n_ops) {
        return Err(format!(
            "N {n} is not a count of ops from 0 to {MAX_AUGMENT_OPS}"
        ));
    }
    if prob.is_nan() {
        return Err("probability P is NaN".into());
    }
    Ok(Augment::RandAugment {
        n_ops: n_ops as usize,
        magnitude,
        prob,
    })
}

impl fmt::Display for Augment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Augment::None => Ok(()),
            Augment::AutoAugment => f.write_str("AutoAugment"),
            Augment::RandAugment {
                n_ops,
                magnitude,
                prob,
            } => {
                write!(f, "RandAugment_N{n_ops}_M{magnitude}")?;
                if prob != 1.0 {
                    write!(f, "_P{prob}")?;
                }
                Ok(())
            }
        }
    }
}

impl Serialize for Augment {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Augment {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(PolicyVisitor)
    }
}

/// Reads a policy string; anything else (a number, a list) is an error listing the forms.
struct PolicyVisitor;

impl serde::de::Visitor<'_> for PolicyVisitor {
    type Value = Augment;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an augmentation policy: {FORMS}")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Augment, E> {
        text.parse().map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pycls_forms_parse_and_dump() {
        let r = |n_ops, magnitude, prob| Augment::RandAugment {
            n_ops,
            magnitude,
            prob,
        };
        for (text, want, dump) in [
            ("", Augment::None, ""),
            ("AutoAugment", Augment::AutoAugment, "AutoAugment"),
            ("RandAugment_N2_M0.5", r(2, 0.5, 1.0), "RandAugment_N2_M0.5"),
            ("RandAugment_M0.5", r(2, 0.5, 1.0), "RandAugment_N2_M0.5"),
            (
                "RandAugment_M0.3_N3_P0.5",
                r(3, 0.3, 0.5),
                "RandAugment_N3_M0.3_P0.5",
            ),
            (
                "RandAugment_N2.7_M1_M0.2",
                r(2, 0.2, 1.0),
                "RandAugment_N2_M0.2",
            ),
            ("RandAugment_N0_M0", r(0, 0.0, 1.0), "RandAugment_N0_M0"),
        ] {
            let a: Augment = text.parse().unwrap();
            assert_eq!(a, want, "{text}");
            assert_eq!(a.to_string(), dump);
            assert_eq!(dump.parse::<Augment>().unwrap(), a);
        }
    }

    #[test]
    fn strings_pycls_fails_on_are_refused() {
        for (text, why) in [
            ("autoaugment", "unknown policy"),
            ("AutoAugment_N2", "no parameters"),
            ("RandAugment", "needs a magnitude"),
            ("RandAugment_N2", "needs a magnitude"),
            ("RandAugment_M1.5", "not in [0, 1]"),
            ("RandAugment_N-1_M0.5", "count of ops"),
            ("RandAugment_N1000_M0.5", "count of ops"),
            ("RandAugment_Nnan_M0.5", "count of ops"),
            ("RandAugment_M0.5_Pnan", "NaN"),
            ("RandAugment_X2_M0.5", "does not start with N, M or P"),
            ("RandAugment__M0.5", "not a letter"),
            ("RandAugment_Mhalf", "not a letter"),
        ] {
            let e = text.parse::<Augment>().unwrap_err();
            assert!(e.contains(why) && e.contains(FORMS), "{text}: {e}");
        }
    }
}
