//! `SETUP.CONSTRAINTS`: which sampled configs are kept, as pycls's `check_*_constraints`.
//!
//! - `CX.{FLOPS, PARAMS, ACTS}: [LOW, HIGH]` bound the complexity (flops are
//!   multiply-adds) counted by `regnet_core::complexity` at `TRAIN.IM_SIZE`. As in pycls,
//!   `[0, 0]` disables a bound, and a 0 on one side leaves that side open.
//! - `REGNET.NUM_STAGES: [LOW, HIGH]` (default `[4, 4]`) applies to `MODEL.TYPE: regnet`
//!   only: the number of stages must be in the range, and every stage the quantization
//!   allows must be present (pycls rejects `num_stages != max_stages`, i.e. RegNets whose
//!   widths skip a quantization level).
//! - Configs whose network cannot be built (a group width above the bottleneck width, ...)
//!   are rejected too; pycls would stop with an exception.

use regnet_core::complexity::try_complexity;
use regnet_core::config::Config;

use regnet_core::regnet::{generate_widths, generate_widths_tv};
use serde::{Deserialize, Serialize};

/// A pycls `[LOW, HIGH]` bound, where 0 leaves a side open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Bound {
    /// Lower bound (0: none).
    pub low: f64,
    /// Upper bound (0: none).
    pub high: f64,
}

impl Bound {
    /// Whether the bound constrains anything.
    pub fn is_set(&self) -> bool {
        self.low != 0.0 || self.high != 0.0
    }

    /// Whether `x` satisfies the bound.
    pub fn contains(&self, x: f64) -> bool {
        (self.low == 0.0 || x >= self.low) && (self.high == 0.0 || x <= self.high)
    }
}

/// The constraints of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Constraints {
    /// `CX.FLOPS`.
    pub flops: Bound,
    /// `CX.PARAMS`.
    pub params: Bound,
    /// `CX.ACTS`.
    pub acts: Bound,
    /// `REGNET.NUM_STAGES` (RegNets only).
    pub num_stages: (usize, usize),
}

impl Default for Constraints {
    fn default() -> Self {
        Constraints {
            flops: Bound::default(),
            params: Bound::default(),
            acts: Bound::default(),
            num_stages: (4, 4),
        }
    }
}

/// Complexity totals (flops = multiply-adds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cx {
    /// Multiply-adds.
    pub flops: u64,
    /// Parameters.
    pub params: u64,
    /// Activations.
    pub acts: u64,
}

impl From<regnet_core::complexity::Complexity> for Cx {
    fn from(c: regnet_core::complexity::Complexity) -> Self {
        Cx {
            flops: c.flops,
            params: c.params,
            acts: c.acts,
        }
    }
}

/// Why a candidate was rejected.
#[derive(Clone, Debug, PartialEq)]
pub enum Rejection {
    /// The network cannot be built; the message says why.
    Invalid(String),
    /// A RegNet with a number of stages outside the range, or that skips a level.
    RegNetStages,
    /// Flops out of range.
    Flops,
    /// Parameters out of range.
    Params,
    /// Activations out of range.
    Acts,
}

/// The complexity of a valid, accepted candidate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Accepted {
    /// Complexity at `TRAIN.IM_SIZE`.
    pub cx: Cx,
}

/// The complexity of the network of `cfg` at `TRAIN.IM_SIZE`; an error when a count does
/// not fit in 64 bits (a candidate so large is invalid, never a saturated count that a
/// bound without an upper side would accept).
pub fn config_complexity(cfg: &Config) -> regnet_core::Result<Cx> {
    let (_, net) = cfg.network()?;
    let s = cfg.im_size();
    Ok(try_complexity(&net, s, s)?.into())
}

impl Constraints {
    /// Checks `cfg` (RegNet stages first, as pycls, then complexity).
    pub fn check(&self, cfg: &Config) -> Result<Accepted, Rejection> {
        if cfg.model.ty == "regnet" {
            let r = &cfg.regnet;
            let widths = if cfg.ext.rounding == "torchvision" {
                generate_widths_tv
            } else {
                generate_widths
            };
            let w = widths(r.wa, r.w0, r.wm, r.depth)
                .map_err(|e| Rejection::Invalid(format!("REGNET: {e}")))?;
            let (lo, hi) = self.num_stages;
            if w.num_stages != w.total_stages || !(lo..=hi).contains(&w.num_stages) {
                return Err(Rejection::RegNetStages);
            }
        }
        let cx = config_complexity(cfg).map_err(|e| Rejection::Invalid(e.to_string()))?;
        self.check_cx(cx)
    }

    /// Checks a complexity against the `CX` bounds.
    pub fn check_cx(&self, cx: Cx) -> Result<Accepted, Rejection> {
        if !self.flops.contains(cx.flops as f64) {
            return Err(Rejection::Flops);
        }
        if !self.params.contains(cx.params as f64) {
            return Err(Rejection::Params);
        }
        if !self.acts.contains(cx.acts as f64) {
            return Err(Rejection::Acts);
        }
        Ok(Accepted { cx })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_sides_are_open() {
        let b = Bound {
            low: 0.0,
            high: 10.0,
        };
        assert!(b.is_set() && b.contains(0.0) && b.contains(10.0) && !b.contains(10.5));
        let b = Bound {
            low: 5.0,
            high: 0.0,
        };
        assert!(b.contains(1e12) && !b.contains(4.0));
        assert!(!Bound::default().is_set() && Bound::default().contains(7.0));
    }

    #[test]
    fn regnet_stage_rule() {
        let mut cfg = regnet_core::zoo::lookup("RegNetX-200MF").unwrap().config();
        let c = Constraints::default();
        let ok = c.check(&cfg).unwrap();
        assert_eq!(ok.cx.params, 2_684_792);
        // Three stages are out of [4, 4].
        cfg.regnet.depth = 6;
        assert_eq!(c.check(&cfg), Err(Rejection::RegNetStages));
        let c3 = Constraints {
            num_stages: (3, 3),
            ..Constraints::default()
        };
        assert!(c3.check(&cfg).is_ok());
    }

    #[test]
    fn complexity_overflow_is_invalid_not_saturated() {
        // Within every size limit, but its flops do not fit in 64 bits.
        let mut cfg = regnet_core::zoo::lookup("RegNetX-200MF").unwrap().config();
        cfg.merge_overrides(&[
            "MODEL.TYPE",
            "anynet",
            "ANYNET.DEPTHS",
            "[2000]",
            "ANYNET.WIDTHS",
            "[65536]",
            "ANYNET.STRIDES",
            "[1]",
            "ANYNET.BOT_MULS",
            "[1.0]",
            "ANYNET.GROUP_WS",
            "[65536]",
            "TRAIN.IM_SIZE",
            "4096",
        ])
        .unwrap();
        let e = config_complexity(&cfg).unwrap_err().to_string();
        assert!(e.contains("64-bit"), "{e}");
        // A bound open above would have accepted a saturated count.
        let c = Constraints {
            flops: Bound {
                low: 1.0,
                high: 0.0,
            },
            ..Constraints::default()
        };
        match c.check(&cfg) {
            Err(Rejection::Invalid(msg)) => assert!(msg.contains("64-bit"), "{msg}"),
            other => panic!("not rejected as invalid: {other:?}"),
        }
    }
}
