//! Samplers of `SETUP.SAMPLERS`, with pycls's sweep semantics (`sweep/samplers.py`).
//!
//! Each sampler is keyed by a config key (`OPTIM.BASE_LR`) or, for composite samplers, a
//! config section (`REGNET`), and produces `KEY VALUE` parameters:
//!
//! - `value_sampler`: one of `VALUES`, uniformly;
//! - `float_sampler` / `int_sampler`: a [`ScalarDist`] (`RAND_TYPE` over `RANGE`, quantized
//!   to `QUANTIZE`; defaults `uniform`, `[0, 0]`, `1e-5` for floats and `1` for ints);
//! - `list_sampler`: `LENGTH` items, each drawn independently by `ITEM_SAMPLER`;
//! - `regnet_sampler` (key `REGNET` only): `REGNET.{DEPTH, W0, WA, WM, GROUP_W, BOT_MUL}`,
//!   see [`RegNetSampler`].

use rand::Rng;
use serde_json::Value as Json;
use serde_norway::Value;

use crate::error::Result;
use crate::random::{RandType, ScalarDist, fmt_num};
use crate::yaml::{self, At};

/// One sampled parameter: a dotted config key and its value.
pub type Param = (String, Json);

/// A sampler of `SETUP.SAMPLERS`.
// A handful per sweep; boxing the larger variants would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Sampler {
    /// `value_sampler`: uniform over a list of values.
    Value(Vec<Json>),
    /// `float_sampler` or `int_sampler`.
    Scalar(ScalarDist),
    /// `list_sampler`: `length` independent draws of `item`.
    List {
        /// Number of items.
        length: usize,
        /// Sampler of each item.
        item: Box<Sampler>,
    },
    /// `regnet_sampler`: the RegNet parameters.
    RegNet(RegNetSampler),
}

/// The six RegNet parameters a [`RegNetSampler`] draws.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RegNetParams {
    /// Depth `d`.
    pub depth: usize,
    /// Initial width `w0`.
    pub w0: usize,
    /// Slope `wa`.
    pub wa: f64,
    /// Quantization `wm`.
    pub wm: f64,
    /// Group width `g`.
    pub group_w: usize,
    /// Bottleneck multiplier `b` (pycls `BOT_MUL`, the inverse of the paper's ratio).
    pub bot_mul: f64,
}

/// pycls's `regnet_sampler`: each parameter's distribution and quantum are fixed, only the
/// ranges are configurable.
///
/// | key | range (pycls default) | rand type | quantum |
/// |---|---|---|---|
/// | `DEPTH` | `[12, 28]` | `uniform` | 1 |
/// | `W0` | `[8, 256]` | `log_uniform` | 8 |
/// | `WA` | `[8.0, 256.0]` | `log_uniform` | 0.1 |
/// | `WM` | `[2.0, 3.0]` | `log_uniform` | 0.001 |
/// | `GROUP_W` | `[8, 128]` | `power2_or_log_uniform` | 8 |
/// | `BOT_MUL` | `[1.0, 1.0]` | `power2_uniform` | 1/128 |
///
/// The defaults are the paper's restricted RegNet design space (b = 1, 12 <= d <= 28,
/// wm >= 2), which pycls says gives good models up to 16GF.
#[derive(Clone, Debug, PartialEq)]
pub struct RegNetSampler {
    /// `DEPTH`.
    pub depth: ScalarDist,
    /// `W0`.
    pub w0: ScalarDist,
    /// `WA`.
    pub wa: ScalarDist,
    /// `WM`.
    pub wm: ScalarDist,
    /// `GROUP_W`.
    pub group_w: ScalarDist,
    /// `BOT_MUL`.
    pub bot_mul: ScalarDist,
}

/// A `regnet_sampler` field: name, distribution, quantum, integer type, pycls default range.
type RegNetField = (&'static str, RandType, f64, bool, (f64, f64));

/// The fields of `regnet_sampler`, in pycls's order.
const REGNET_FIELDS: [RegNetField; 6] = [
    ("DEPTH", RandType::Uniform, 1.0, true, (12.0, 28.0)),
    ("W0", RandType::LogUniform, 8.0, true, (8.0, 256.0)),
    ("WA", RandType::LogUniform, 0.1, false, (8.0, 256.0)),
    ("WM", RandType::LogUniform, 0.001, false, (2.0, 3.0)),
    (
        "GROUP_W",
        RandType::Power2OrLogUniform,
        8.0,
        true,
        (8.0, 128.0),
    ),
    (
        "BOT_MUL",
        RandType::Power2Uniform,
        1.0 / 128.0,
        false,
        (1.0, 1.0),
    ),
];

impl Default for RegNetSampler {
    fn default() -> Self {
        let ranges = REGNET_FIELDS.map(|f| f.4);
        RegNetSampler::new(ranges).expect("pycls's defaults are valid")
    }
}

impl RegNetSampler {
    /// A sampler with the given `[low, high]` ranges, in the order DEPTH, W0, WA, WM,
    /// GROUP_W, BOT_MUL.
    pub fn new(ranges: [(f64, f64); 6]) -> Result<Self, String> {
        let mut dists = Vec::with_capacity(6);
        for ((name, rt, q, int, _), (lo, hi)) in REGNET_FIELDS.iter().zip(ranges) {
            let d = ScalarDist::new(*rt, lo, hi, *q, *int).map_err(|e| format!("{name}: {e}"))?;
            dists.push(d);
        }
        let mut it = dists.into_iter();
        let mut next = || it.next().expect("six fields");
        Ok(RegNetSampler {
            depth: next(),
            w0: next(),
            wa: next(),
            wm: next(),
            group_w: next(),
            bot_mul: next(),
        })
    }

    /// The ranges, in the order of [`RegNetSampler::new`].
    pub fn ranges(&self) -> [(f64, f64); 6] {
        self.dists().map(|d| (d.low, d.high))
    }

    fn dists(&self) -> [&ScalarDist; 6] {
        [
            &self.depth,
            &self.w0,
            &self.wa,
            &self.wm,
            &self.group_w,
            &self.bot_mul,
        ]
    }

    /// One draw, in pycls's order (depth, w0, wa, wm, group width, bottleneck multiplier).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> RegNetParams {
        RegNetParams {
            depth: self.depth.sample(rng) as usize,
            w0: self.w0.sample(rng) as usize,
            wa: self.wa.sample(rng),
            wm: self.wm.sample(rng),
            group_w: self.group_w.sample(rng) as usize,
            bot_mul: self.bot_mul.sample(rng),
        }
    }

    /// Reads a `regnet_sampler` mapping (its `TYPE` already checked).
    fn from_yaml(m: &serde_norway::Mapping, at: &At) -> Result<Self> {
        let mut ranges = REGNET_FIELDS.map(|f| f.4);
        for (i, (name, ..)) in REGNET_FIELDS.iter().enumerate() {
            if let Some(v) = yaml::get(m, name) {
                ranges[i] = yaml::pair(v, &at.child(name))?;
            }
        }
        RegNetSampler::new(ranges).map_err(|e| {
            let (field, msg) = e.split_once(": ").unwrap_or(("", &e));
            at.child(field).err(format!("regnet_sampler: {msg}"))
        })
    }

    /// One line per parameter.
    pub fn describe(&self) -> String {
        REGNET_FIELDS
            .iter()
            .zip(self.dists())
            .map(|((name, ..), d)| format!("{name}: {}", d.describe()))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl RegNetParams {
    /// The parameters as `REGNET.*` config keys.
    pub fn to_params(&self) -> Vec<Param> {
        vec![
            ("REGNET.DEPTH".into(), Json::from(self.depth)),
            ("REGNET.W0".into(), Json::from(self.w0)),
            ("REGNET.WA".into(), json_f64(self.wa)),
            ("REGNET.WM".into(), json_f64(self.wm)),
            ("REGNET.GROUP_W".into(), Json::from(self.group_w)),
            ("REGNET.BOT_MUL".into(), json_f64(self.bot_mul)),
        ]
    }
}

/// A finite float as JSON.
pub(crate) fn json_f64(x: f64) -> Json {
    serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number)
}

/// Sampler template keys, as pycls's `SAMPLERS` templates define them.
const VALUE_KEYS: &[&str] = &["TYPE", "VALUES"];
const SCALAR_KEYS: &[&str] = &["TYPE", "RAND_TYPE", "RANGE", "QUANTIZE"];
const LIST_KEYS: &[&str] = &["TYPE", "LENGTH", "ITEM_SAMPLER"];
const REGNET_KEYS: &[&str] = &["TYPE", "DEPTH", "W0", "WA", "WM", "GROUP_W", "BOT_MUL"];

/// The sampler types.
pub const SAMPLER_TYPES: &[&str] = &[
    "value_sampler",
    "float_sampler",
    "int_sampler",
    "list_sampler",
    "regnet_sampler",
];

impl Sampler {
    /// Reads the sampler for config key `param` at `at` (`SETUP.SAMPLERS.<param>`).
    pub(crate) fn from_yaml(param: &str, v: &Value, at: &At) -> Result<Sampler> {
        let m = yaml::mapping(v, at)?;
        let ty = match yaml::get(m, "TYPE") {
            Some(t) => yaml::string(t, &at.child("TYPE"))?.to_ascii_lowercase(),
            None => {
                return Err(at.err(format!(
                    "sampler has no TYPE (one of: {})",
                    SAMPLER_TYPES.join(", ")
                )));
            }
        };
        match ty.as_str() {
            "value_sampler" => {
                yaml::check_keys(m, VALUE_KEYS, at)?;
                let at_v = at.child("VALUES");
                let values = match yaml::get(m, "VALUES") {
                    Some(v) => yaml::list(v, &at_v)?,
                    None => &[],
                };
                if values.is_empty() {
                    return Err(at_v.err("value_sampler needs at least one value"));
                }
                Ok(Sampler::Value(values.iter().map(yaml::to_json).collect()))
            }
            "float_sampler" | "int_sampler" => {
                yaml::check_keys(m, SCALAR_KEYS, at)?;
                let int = ty == "int_sampler";
                let rand_type = match yaml::get(m, "RAND_TYPE") {
                    Some(v) => {
                        let at_r = at.child("RAND_TYPE");
                        yaml::string(v, &at_r)?
                            .parse::<RandType>()
                            .map_err(|e| at_r.err(e))?
                    }
                    None => RandType::Uniform,
                };
                let (low, high) = match yaml::get(m, "RANGE") {
                    Some(v) => yaml::pair(v, &at.child("RANGE"))?,
                    None => (0.0, 0.0),
                };
                let q = match yaml::get(m, "QUANTIZE") {
                    Some(v) => yaml::number(v, &at.child("QUANTIZE"))?,
                    None if int => 1.0,
                    None => 1e-5,
                };
                ScalarDist::new(rand_type, low, high, q, int)
                    .map(Sampler::Scalar)
                    .map_err(|e| at.err(format!("{ty}: {e}")))
            }
            "list_sampler" => Sampler::list_from_yaml(param, m, at),
            "regnet_sampler" => {
                yaml::check_keys(m, REGNET_KEYS, at)?;
                if param != "REGNET" {
                    return Err(at.err(format!(
                        "regnet_sampler can only be used for REGNET, not {param}"
                    )));
                }
                Ok(Sampler::RegNet(RegNetSampler::from_yaml(m, at)?))
            }
            other => Err(at.child("TYPE").err(format!(
                "unknown sampler type `{other}` (expected one of: {})",
                SAMPLER_TYPES.join(", ")
            ))),
        }
    }

    /// Reads a `list_sampler` mapping (its `TYPE` already checked).
    fn list_from_yaml(param: &str, m: &serde_norway::Mapping, at: &At) -> Result<Sampler> {
        yaml::check_keys(m, LIST_KEYS, at)?;
        let at_l = at.child("LENGTH");
        let length = match yaml::get(m, "LENGTH") {
            Some(v) => yaml::uint(v, &at_l)?,
            None => 0,
        };
        let max = regnet_core::limits::MAX_LIST;
        if length > max as u64 {
            return Err(at_l.err(format!("{length} is above the limit of {max}")));
        }
        let length = length as usize;
        let at_i = at.child("ITEM_SAMPLER");
        let Some(item) = yaml::get(m, "ITEM_SAMPLER") else {
            return Err(at_i.err("list_sampler needs an ITEM_SAMPLER"));
        };
        let item = Sampler::from_yaml(param, item, &at_i)?;
        if matches!(item, Sampler::RegNet(_)) {
            return Err(at_i.err("regnet_sampler cannot be a list item"));
        }
        // Nested lists multiply: bound the values of one draw, not each level.
        let values = length.saturating_mul(item.values_per_draw());
        if values > max {
            return Err(at_l.err(format!(
                "{length} items of {} values each is above the limit of {max} values",
                item.values_per_draw()
            )));
        }
        Ok(Sampler::List {
            length,
            item: Box::new(item),
        })
    }

    /// Draws one value (composite samplers: see [`Sampler::sample_into`]).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Json {
        match self {
            Sampler::Value(values) => values[rng.random_range(0..values.len())].clone(),
            Sampler::Scalar(d) => {
                let x = d.sample(rng);
                if d.int {
                    Json::from(x as i64)
                } else {
                    json_f64(x)
                }
            }
            Sampler::List { length, item } => {
                Json::Array((0..*length).map(|_| item.sample(rng)).collect())
            }
            Sampler::RegNet(r) => {
                let p = r.sample(rng);
                serde_json::to_value(p).expect("plain struct")
            }
        }
    }

    /// Draws the parameters of this sampler for key `param` and appends them to `out`.
    /// Composite samplers (`regnet_sampler`) give several keys, the others one.
    pub fn sample_into<R: Rng + ?Sized>(&self, param: &str, rng: &mut R, out: &mut Vec<Param>) {
        match self {
            Sampler::RegNet(r) => out.extend(r.sample(rng).to_params()),
            other => out.push((param.to_string(), other.sample(rng))),
        }
    }

    /// How many scalar values one draw holds (nested lists multiply).
    fn values_per_draw(&self) -> usize {
        match self {
            Sampler::List { length, item } => length.saturating_mul(item.values_per_draw()),
            Sampler::RegNet(_) => REGNET_FIELDS.len(),
            _ => 1,
        }
    }

    /// The config keys this sampler sets when keyed by `param`.
    pub fn keys(&self, param: &str) -> Vec<String> {
        match self {
            Sampler::RegNet(_) => REGNET_FIELDS
                .iter()
                .map(|f| format!("REGNET.{}", f.0))
                .collect(),
            _ => vec![param.to_string()],
        }
    }

    /// Whether the sampled values are best shown on a log axis.
    pub fn is_log(&self) -> bool {
        match self {
            Sampler::Scalar(d) => d.rand_type.is_log(),
            Sampler::List { item, .. } => item.is_log(),
            _ => false,
        }
    }

    /// A one-line description.
    pub fn describe(&self) -> String {
        match self {
            Sampler::Value(values) => format!(
                "value_sampler {}",
                serde_json::to_string(values).expect("JSON")
            ),
            Sampler::Scalar(d) => format!(
                "{} {}",
                if d.int {
                    "int_sampler"
                } else {
                    "float_sampler"
                },
                d.describe()
            ),
            Sampler::List { length, item } => {
                format!("list_sampler {length} x ({})", item.describe())
            }
            Sampler::RegNet(r) => format!("regnet_sampler {}", r.describe()),
        }
    }
}

/// Formats a value for a parameter key string (pycls: `"{} {}".format(k, v)`).
pub fn fmt_value(v: &Json) -> String {
    match v {
        Json::Number(n) => match n.as_f64() {
            Some(x) if !n.is_f64() => fmt_num(x, true),
            _ => n.to_string(),
        },
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The parameters as one `KEY VALUE KEY VALUE ...` string: the identity of a sampled config
/// (used for deduplication, and written to `DESC` as pycls does).
pub fn params_key(params: &[Param]) -> String {
    let mut s = String::new();
    for (k, v) in params {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(k);
        s.push(' ');
        s.push_str(&fmt_value(v));
    }
    s
}
