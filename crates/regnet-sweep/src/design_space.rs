//! The built-in design spaces of "Designing Network Design Spaces" (Radosavovic et al.,
//! 2020), selectable by name in `SETUP.DESIGN_SPACE`.
//!
//! AnyNetX (Section 3.1): a stem, then stages of X blocks (residual bottleneck with group
//! conv) with per-stage depth `d_i <= 16`, width `w_i <= 1024` (a multiple of 8),
//! bottleneck ratio `b_i` in {1, 2, 4} and group width `g_i` in {1, 2, 4, ..., 32}:
//!
//! | name | restriction |
//! |---|---|
//! | `AnyNetX_A` | none |
//! | `AnyNetX_B` | one bottleneck ratio `b` shared by all stages |
//! | `AnyNetX_C` | B, and one group width `g` shared by all stages |
//! | `AnyNetX_D` | C, and non-decreasing widths `w_{i+1} >= w_i` |
//! | `AnyNetX_E` | D, and non-decreasing depths `d_{i+1} >= d_i` |
//! | `RegNetX` | the quantized linear rule, `b = 1`, `12 <= d <= 28`, `wm >= 2` (pycls's `regnet_sampler` defaults) |
//! | `RegNetY` | RegNetX with squeeze-excitation (`se_r = 0.25`) |
//!
//! The paper gives the sets, not the laws within them. Here depths are uniform integers,
//! widths log-uniform multiples of 8 (the law of pycls's `regnet_sampler` for `W0`: widths
//! span two orders of magnitude, and a uniform law would put most stages above 256), and
//! `b` and `g` uniform over their sets. The restricted spaces are exact restrictions: a
//! draw that breaks the order (D, E), or whose shared group width had to shrink in one
//! stage (C, D, E, see below), is redrawn (rejection), so every allowed model keeps its
//! probability under the unrestricted law. pycls writes the bottleneck ratio as its inverse,
//! `ANYNET.BOT_MULS = 1 / b`. As pycls does for RegNets, widths and group widths are then
//! made compatible with `regnet_core::regnet::adjust_block_compatibility` (the bottleneck
//! width becomes a multiple of the group width, and the group width at most the bottleneck
//! width), so that every sampled model can be built.
//!
//! For small inputs every part is configurable in the mapping form:
//!
//! ```yaml
//! SETUP:
//!   DESIGN_SPACE:
//!     NAME: AnyNetX_E
//!     NUM_STAGES: 3            # AnyNet: stages; RegNet: sets CONSTRAINTS.REGNET.NUM_STAGES
//!     STEM_TYPE: res_stem_cifar
//!     STEM_W: 16
//!     STRIDES: [1, 2, 2]       # default: 1 then 2s after res_stem_cifar, else all 2
//!     DEPTH: [1, 8]            # per-stage depth range
//!     WIDTH: [8, 256]          # per-stage width range (multiples of 8)
//!     BOTTLENECK_RATIOS: [1, 2, 4]
//!     GROUP_WS: [1, 2, 4, 8, 16, 32]
//! ```
//!
//! and for RegNets `DEPTH`, `W0`, `WA`, `WM`, `GROUP_W`, `BOT_MUL` are the ranges of the
//! `regnet_sampler`. The input channels come from the base config (`EXT.IN_CHANNELS: 1`).

use rand::Rng;
use regnet_core::regnet::adjust_block_compatibility;
use regnet_core::spec::StemType;
use serde_json::Value as Json;
use serde_norway::{Mapping, Value};

use crate::error::Result;
use crate::random::{RandType, ScalarDist};
use crate::sampler::{Param, RegNetParams, RegNetSampler, json_f64};
use crate::yaml::{self, At};

/// The AnyNetX restrictions A to E.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AnyNetVariant {
    /// Unrestricted.
    A,
    /// Shared bottleneck ratio.
    B,
    /// B and shared group width.
    C,
    /// C and non-decreasing widths.
    D,
    /// D and non-decreasing depths.
    E,
}

/// An AnyNetX design space.
#[derive(Clone, Debug, PartialEq)]
pub struct AnyNetSpace {
    /// Which restriction.
    pub variant: AnyNetVariant,
    /// Number of stages (the paper: 4).
    pub num_stages: usize,
    /// Per-stage depth range `[low, high]` (the paper: `[1, 16]`).
    pub depth: (usize, usize),
    /// Per-stage width range, multiples of 8 (the paper: `[8, 1024]`).
    pub width: (usize, usize),
    /// Bottleneck ratios `b` (the paper's convention; pycls's `BOT_MULS` is `1 / b`).
    pub bottleneck_ratios: Vec<usize>,
    /// Group widths.
    pub group_ws: Vec<usize>,
    /// Stride of each stage; `None`: stride 1 then 2s after the stride-1 `res_stem_cifar`
    /// stem (as pycls's CIFAR ResNets), all 2 otherwise.
    pub strides: Option<Vec<usize>>,
    /// Stem type, if the space sets it (else the base config's).
    pub stem_type: Option<StemType>,
    /// Stem width, if the space sets it.
    pub stem_w: Option<usize>,
}

/// A RegNet design space: the quantized linear rule.
#[derive(Clone, Debug, PartialEq)]
pub struct RegNetSpace {
    /// Squeeze-excitation on (RegNetY).
    pub se: bool,
    /// The parameter ranges.
    pub sampler: RegNetSampler,
    /// Number of stages allowed, if the space sets it (else `SETUP.CONSTRAINTS`).
    pub num_stages: Option<(usize, usize)>,
    /// Stem type, if the space sets it.
    pub stem_type: Option<StemType>,
    /// Stem width, if the space sets it.
    pub stem_w: Option<usize>,
}

/// A built-in design space.
// Few values exist at a time; boxing the larger variant would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum DesignSpace {
    /// AnyNetX_A to AnyNetX_E.
    AnyNet(AnyNetSpace),
    /// RegNetX or RegNetY.
    RegNet(RegNetSpace),
}

/// Widths are multiples of this.
pub const WIDTH_Q: usize = 8;

/// The names of the built-in design spaces.
pub const NAMES: &[&str] = &[
    "AnyNetX_A",
    "AnyNetX_B",
    "AnyNetX_C",
    "AnyNetX_D",
    "AnyNetX_E",
    "RegNetX",
    "RegNetY",
];

fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Default strides: stride 1 for the first stage after the stride-1 CIFAR stem (as
/// pycls's CIFAR ResNets), 2 everywhere else.
fn default_strides(stem: StemType, n: usize) -> Vec<usize> {
    (0..n)
        .map(|i| {
            if i == 0 && stem == StemType::ResStemCifar {
                1
            } else {
                2
            }
        })
        .collect()
}

/// `STEM_TYPE` and `STEM_W` of a design-space mapping.
fn read_stem(m: &Mapping, at: &At) -> Result<(Option<StemType>, Option<usize>)> {
    let stem_type = match yaml::get(m, "STEM_TYPE") {
        Some(v) => {
            let at_s = at.child("STEM_TYPE");
            let s = yaml::string(v, &at_s)?;
            Some(
                s.parse::<StemType>()
                    .map_err(|e| at_s.err(e.to_string().replace("invalid network: ", "")))?,
            )
        }
        None => None,
    };
    let stem_w = match yaml::get(m, "STEM_W") {
        Some(v) => Some(positive(v, &at.child("STEM_W"))?),
        None => None,
    };
    Ok((stem_type, stem_w))
}

/// The overrides of an AnyNet design space's mapping `m`.
fn read_anynet(a: &mut AnyNetSpace, m: &Mapping, at: &At) -> Result<()> {
    let stem = read_stem(m, at)?;
    yaml::check_keys(
        m,
        &[
            "NAME",
            "NUM_STAGES",
            "STEM_TYPE",
            "STEM_W",
            "STRIDES",
            "DEPTH",
            "WIDTH",
            "BOTTLENECK_RATIOS",
            "GROUP_WS",
        ],
        at,
    )?;
    (a.stem_type, a.stem_w) = stem;
    if let Some(v) = yaml::get(m, "NUM_STAGES") {
        a.num_stages = positive(v, &at.child("NUM_STAGES"))?;
    }
    if let Some(v) = yaml::get(m, "STRIDES") {
        let at_s = at.child("STRIDES");
        let strides = positive_list(v, &at_s)?;
        if strides.len() != a.num_stages {
            return Err(at_s.err(format!(
                "has {} entries for {} stages",
                strides.len(),
                a.num_stages
            )));
        }
        a.strides = Some(strides);
    }
    if let Some(v) = yaml::get(m, "DEPTH") {
        a.depth = positive_range(v, &at.child("DEPTH"), 1)?;
    }
    if let Some(v) = yaml::get(m, "WIDTH") {
        a.width = positive_range(v, &at.child("WIDTH"), WIDTH_Q)?;
    }
    if let Some(v) = yaml::get(m, "BOTTLENECK_RATIOS") {
        a.bottleneck_ratios = positive_list(v, &at.child("BOTTLENECK_RATIOS"))?;
    }
    if let Some(v) = yaml::get(m, "GROUP_WS") {
        a.group_ws = positive_list(v, &at.child("GROUP_WS"))?;
    }
    Ok(())
}

/// The overrides of a RegNet design space's mapping `m`.
fn read_regnet(r: &mut RegNetSpace, m: &Mapping, at: &At) -> Result<()> {
    let stem = read_stem(m, at)?;
    yaml::check_keys(
        m,
        &[
            "NAME",
            "NUM_STAGES",
            "STEM_TYPE",
            "STEM_W",
            "DEPTH",
            "W0",
            "WA",
            "WM",
            "GROUP_W",
            "BOT_MUL",
        ],
        at,
    )?;
    (r.stem_type, r.stem_w) = stem;
    if let Some(v) = yaml::get(m, "NUM_STAGES") {
        let at_n = at.child("NUM_STAGES");
        r.num_stages = Some(match v {
            Value::Sequence(_) => {
                let (lo, hi) = yaml::pair(v, &at_n)?;
                if !(lo >= 1.0 && lo <= hi && hi <= MAX_VALUE as f64) {
                    return Err(at_n.err(format!(
                        "must be [LOW, HIGH] with 1 <= LOW <= HIGH <= {MAX_VALUE}"
                    )));
                }
                (lo as usize, hi as usize)
            }
            _ => {
                let n = positive(v, &at_n)?;
                (n, n)
            }
        });
    }
    let mut ranges = r.sampler.ranges();
    for (i, key) in ["DEPTH", "W0", "WA", "WM", "GROUP_W", "BOT_MUL"]
        .iter()
        .enumerate()
    {
        if let Some(v) = yaml::get(m, key) {
            ranges[i] = yaml::pair(v, &at.child(key))?;
        }
    }
    r.sampler = RegNetSampler::new(ranges).map_err(|e| {
        let (field, msg) = e.split_once(": ").unwrap_or(("", &e));
        at.child(field).err(msg.to_string())
    })?;
    Ok(())
}

impl DesignSpace {
    /// The built-in space `name` with the paper's settings (case, `_` and `-` ignored).
    pub fn builtin(name: &str) -> Option<DesignSpace> {
        let n = normalize(name);
        let variant = match n.as_str() {
            "anynetxa" => AnyNetVariant::A,
            "anynetxb" => AnyNetVariant::B,
            "anynetxc" => AnyNetVariant::C,
            "anynetxd" => AnyNetVariant::D,
            "anynetxe" => AnyNetVariant::E,
            "regnetx" | "regnety" => {
                return Some(DesignSpace::RegNet(RegNetSpace {
                    se: n == "regnety",
                    sampler: RegNetSampler::default(),
                    num_stages: None,
                    stem_type: None,
                    stem_w: None,
                }));
            }
            _ => return None,
        };
        Some(DesignSpace::AnyNet(AnyNetSpace {
            variant,
            num_stages: 4,
            depth: (1, 16),
            width: (8, 1024),
            bottleneck_ratios: vec![1, 2, 4],
            group_ws: vec![1, 2, 4, 8, 16, 32],
            strides: None,
            stem_type: None,
            stem_w: None,
        }))
    }

    /// The name (`AnyNetX_C`, `RegNetY`).
    pub fn name(&self) -> String {
        match self {
            DesignSpace::AnyNet(a) => format!("AnyNetX_{:?}", a.variant),
            DesignSpace::RegNet(r) => if r.se { "RegNetY" } else { "RegNetX" }.to_string(),
        }
    }

    /// Reads `SETUP.DESIGN_SPACE`: a name, or a mapping with `NAME` and overrides.
    pub(crate) fn from_yaml(v: &Value, at: &At) -> Result<DesignSpace> {
        let unknown = |name: &str, at: &At| {
            let hint = regnet_core::error::closest(name, NAMES.iter().copied())
                .map(|c| format!(" (did you mean {c}?)"))
                .unwrap_or_default();
            at.err(format!(
                "unknown design space `{name}`{hint} (expected one of: {})",
                NAMES.join(", ")
            ))
        };
        if let Value::String(name) = v {
            return DesignSpace::builtin(name).ok_or_else(|| unknown(name, at));
        }
        let m = yaml::mapping(v, at)?;
        let at_name = at.child("NAME");
        let name = match yaml::get(m, "NAME") {
            Some(n) => yaml::string(n, &at_name)?,
            None => return Err(at_name.err("the design space needs a NAME")),
        };
        let mut space = DesignSpace::builtin(&name).ok_or_else(|| unknown(&name, &at_name))?;
        match &mut space {
            DesignSpace::AnyNet(a) => read_anynet(a, m, at)?,
            DesignSpace::RegNet(r) => read_regnet(r, m, at)?,
        }
        Ok(space)
    }

    /// The base-config values the space fixes (model type, block type, SE, stem, strides);
    /// `base` gives the stem where the space does not set it.
    pub fn presets(&self, base: &regnet_core::config::Config) -> Vec<Param> {
        let mut out: Vec<Param> = Vec::new();
        let s = |x: &str| Json::from(x);
        match self {
            DesignSpace::AnyNet(a) => {
                out.push(("MODEL.TYPE".into(), s("anynet")));
                out.push(("ANYNET.BLOCK_TYPE".into(), s("res_bottleneck_block")));
                out.push(("ANYNET.SE_ON".into(), Json::from(false)));
                let stem = a
                    .stem_type
                    .or_else(|| base.anynet.stem_type.parse().ok())
                    .unwrap_or(StemType::SimpleStemIn);
                let strides = a
                    .strides
                    .clone()
                    .unwrap_or_else(|| default_strides(stem, a.num_stages));
                out.push(("ANYNET.STRIDES".into(), Json::from(strides)));
                if let Some(t) = a.stem_type {
                    out.push(("ANYNET.STEM_TYPE".into(), s(t.name())));
                }
                if let Some(w) = a.stem_w {
                    out.push(("ANYNET.STEM_W".into(), Json::from(w)));
                }
            }
            DesignSpace::RegNet(r) => {
                out.push(("MODEL.TYPE".into(), s("regnet")));
                out.push(("REGNET.BLOCK_TYPE".into(), s("res_bottleneck_block")));
                out.push(("REGNET.SE_ON".into(), Json::from(r.se)));
                if let Some(t) = r.stem_type {
                    out.push(("REGNET.STEM_TYPE".into(), s(t.name())));
                }
                if let Some(w) = r.stem_w {
                    out.push(("REGNET.STEM_W".into(), Json::from(w)));
                }
            }
        }
        out
    }

    /// The config keys each draw sets.
    pub fn keys(&self) -> Vec<String> {
        match self {
            DesignSpace::AnyNet(_) => ["DEPTHS", "WIDTHS", "BOT_MULS", "GROUP_WS"]
                .iter()
                .map(|k| format!("ANYNET.{k}"))
                .collect(),
            DesignSpace::RegNet(r) => {
                crate::sampler::Sampler::RegNet(r.sampler.clone()).keys("REGNET")
            }
        }
    }

    /// Checks the space's own parameters.
    pub(crate) fn validate(&self, at: &At) -> Result<()> {
        if let DesignSpace::AnyNet(a) = self {
            if a.bottleneck_ratios.is_empty() || a.group_ws.is_empty() {
                return Err(at.err("BOTTLENECK_RATIOS and GROUP_WS need at least one value"));
            }
            if a.depth.0 > a.depth.1 || a.width.0 > a.width.1 {
                return Err(at.err("DEPTH and WIDTH ranges must have LOW <= HIGH"));
            }
        }
        Ok(())
    }

    /// One draw of the space's parameters.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<Param> {
        self.prepare().sample(rng)
    }

    /// The space with its distributions built, for many draws.
    pub fn prepare(&self) -> PreparedSpace<'_> {
        match self {
            DesignSpace::AnyNet(a) => {
                let dist = |(lo, hi): (usize, usize), rt, q: usize| {
                    ScalarDist::new(rt, lo as f64, hi as f64, q as f64, true)
                        .expect("validated range")
                };
                PreparedSpace::AnyNet {
                    space: a,
                    depth: dist(a.depth, RandType::Uniform, 1),
                    width: dist(a.width, RandType::LogUniform, WIDTH_Q),
                }
            }
            DesignSpace::RegNet(r) => PreparedSpace::RegNet(&r.sampler),
        }
    }
}

/// A design space ready to draw from (see [`DesignSpace::prepare`]).
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum PreparedSpace<'a> {
    /// An AnyNet space and its depth and width laws.
    AnyNet {
        /// The space.
        space: &'a AnyNetSpace,
        /// Per-stage depth: uniform integers.
        depth: ScalarDist,
        /// Per-stage width: log-uniform multiples of 8.
        width: ScalarDist,
    },
    /// A RegNet space.
    RegNet(&'a RegNetSampler),
}

impl PreparedSpace<'_> {
    /// One draw of the space's parameters.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<Param> {
        self.draw(rng).to_params()
    }

    /// One draw, typed: what [`PreparedSpace::sample`] gives, before it becomes config
    /// parameters.
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> SpaceDraw {
        match self {
            PreparedSpace::AnyNet {
                space,
                depth,
                width,
            } => {
                let mut out = AnyNetDraw::default();
                space.draw_into(rng, depth, width, &mut out);
                SpaceDraw::AnyNet(out)
            }
            PreparedSpace::RegNet(r) => SpaceDraw::RegNet(r.sample(rng)),
        }
    }
}

/// Every count and size of a design space is at most this: stages, depths, widths, ratios
/// and group widths stay far inside what the layer plan accepts (`regnet_core::limits`),
/// and no draw allocates more than this many stages.
const MAX_VALUE: usize = regnet_core::limits::MAX_STAGES;
/// Largest per-stage width or group width of a design space.
const MAX_SPACE_WIDTH: usize = regnet_core::limits::MAX_WIDTH;

/// A positive integer at most `max`.
fn positive_at_most(v: &Value, at: &At, max: usize) -> Result<usize> {
    let n = yaml::uint(v, at)?;
    if n == 0 {
        return Err(at.err("must be positive"));
    }
    if n > max as u64 {
        return Err(at.err(format!("{n} is above the limit of {max}")));
    }
    Ok(n as usize)
}

/// A count (stages, ...): positive and at most [`MAX_VALUE`].
fn positive(v: &Value, at: &At) -> Result<usize> {
    positive_at_most(v, at, MAX_VALUE)
}

/// A list of at most [`MAX_VALUE`] positive values, each at most [`MAX_SPACE_WIDTH`].
fn positive_list(v: &Value, at: &At) -> Result<Vec<usize>> {
    let items = yaml::list(v, at)?;
    if items.len() > MAX_VALUE {
        return Err(at.err(format!(
            "has {} entries, above the limit of {MAX_VALUE}",
            items.len()
        )));
    }
    items
        .iter()
        .map(|x| positive_at_most(x, at, MAX_SPACE_WIDTH))
        .collect()
}

fn positive_range(v: &Value, at: &At, multiple: usize) -> Result<(usize, usize)> {
    let (lo, hi) = yaml::pair(v, at)?;
    let ok = |x: f64| {
        x >= 1.0
            && x <= MAX_SPACE_WIDTH as f64
            && x.fract() == 0.0
            && (x as usize).is_multiple_of(multiple)
    };
    if !(ok(lo) && ok(hi) && lo <= hi) {
        return Err(at.err(format!(
            "must be [LOW, HIGH] with 0 < LOW <= HIGH <= {MAX_SPACE_WIDTH}, multiples of {multiple}"
        )));
    }
    Ok((lo as usize, hi as usize))
}

fn non_decreasing(xs: &[usize]) -> bool {
    xs.windows(2).all(|w| w[0] <= w[1])
}

/// One draw of an AnyNet space: the per-stage values of pycls's `ANYNET` keys.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnyNetDraw {
    /// `ANYNET.DEPTHS`.
    pub depths: Vec<usize>,
    /// `ANYNET.WIDTHS` (after block compatibility).
    pub widths: Vec<usize>,
    /// `ANYNET.BOT_MULS` (`1 / b`).
    pub bot_muls: Vec<f64>,
    /// `ANYNET.GROUP_WS` (after block compatibility).
    pub group_ws: Vec<usize>,
}

impl AnyNetDraw {
    /// The draw as `ANYNET.*` parameters.
    pub fn to_params(&self) -> Vec<Param> {
        vec![
            ("ANYNET.DEPTHS".into(), Json::from(self.depths.clone())),
            ("ANYNET.WIDTHS".into(), Json::from(self.widths.clone())),
            (
                "ANYNET.BOT_MULS".into(),
                Json::Array(self.bot_muls.iter().copied().map(json_f64).collect()),
            ),
            ("ANYNET.GROUP_WS".into(), Json::from(self.group_ws.clone())),
        ]
    }
}

/// One draw of a design space, typed (see [`PreparedSpace::draw`]).
#[derive(Clone, Debug, PartialEq)]
pub enum SpaceDraw {
    /// An AnyNet's per-stage values.
    AnyNet(AnyNetDraw),
    /// A RegNet's parameters.
    RegNet(RegNetParams),
}

impl SpaceDraw {
    /// The draw as config parameters.
    pub fn to_params(&self) -> Vec<Param> {
        match self {
            SpaceDraw::AnyNet(a) => a.to_params(),
            SpaceDraw::RegNet(r) => r.to_params(),
        }
    }
}

/// `n` draws of `d` into `out`, redrawn until non-decreasing when `sorted`. Once a draw
/// breaks the order the rest of the attempt is only consumed from the stream, not computed
/// (the stream, and so every sweep, is the same as when each value was computed).
fn draw_stages<R: Rng + ?Sized>(
    rng: &mut R,
    d: &ScalarDist,
    n: usize,
    sorted: bool,
    out: &mut Vec<usize>,
) {
    loop {
        out.clear();
        let mut ok = true;
        for _ in 0..n {
            if !ok {
                d.skip(rng);
                continue;
            }
            let x = d.sample(rng) as usize;
            ok = !sorted || out.last().is_none_or(|&last| last <= x);
            out.push(x);
        }
        if ok {
            return;
        }
    }
}

/// `n` picks from `set` (one shared pick repeated when `shared`) into `out`.
fn pick<R: Rng + ?Sized>(rng: &mut R, set: &[usize], n: usize, shared: bool, out: &mut Vec<usize>) {
    out.clear();
    if shared {
        let x = set[rng.random_range(0..set.len())];
        out.extend(std::iter::repeat_n(x, n));
    } else {
        out.extend((0..n).map(|_| set[rng.random_range(0..set.len())]));
    }
}

impl AnyNetSpace {
    /// One draw into `out` (its buffers reused).
    fn draw_into<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        depth: &ScalarDist,
        width: &ScalarDist,
        out: &mut AnyNetDraw,
    ) {
        let n = self.num_stages;
        let v = self.variant;
        let mut bs = Vec::with_capacity(n);
        loop {
            draw_stages(rng, depth, n, v >= AnyNetVariant::E, &mut out.depths);
            draw_stages(rng, width, n, v >= AnyNetVariant::D, &mut out.widths);
            pick(
                rng,
                &self.bottleneck_ratios,
                n,
                v >= AnyNetVariant::B,
                &mut bs,
            );
            pick(
                rng,
                &self.group_ws,
                n,
                v >= AnyNetVariant::C,
                &mut out.group_ws,
            );
            out.bot_muls.clear();
            out.bot_muls.extend(bs.iter().map(|&b| 1.0 / b as f64));
            let (ws, gs) = adjust_block_compatibility(&out.widths, &out.bot_muls, &out.group_ws)
                .expect("positive widths, ratios and group widths");
            (out.widths, out.group_ws) = (ws, gs);
            // Compatibility can move widths and shrink group widths; keep the C, D and E
            // restrictions exact by drawing again.
            let gs = &out.group_ws;
            if v >= AnyNetVariant::C && gs.iter().any(|&g| g != gs[0]) {
                continue;
            }
            if v >= AnyNetVariant::D && !non_decreasing(&out.widths) {
                continue;
            }
            return;
        }
    }
}
