//! `ANALYZE`: what the sweep report shows, with the keys and meanings of pycls's sweep
//! config (`pycls/sweep/config.py`).
//!
//! ```yaml
//! ANALYZE:
//!   METRICS: [lr, wd, regnet_wa, cfg.OPTIM.MAX_EPOCH]   # default: the sampled parameters
//!   COMPLEXITY: [flops, params, acts]                   # default: all three
//!   PLOT_METRIC_VALUES: True       # error versus each metric, with the bootstrap range
//!   PLOT_METRIC_TRENDS: True       # with several sweeps: the ranges side by side
//!   PLOT_COMPLEXITY_VALUES: True
//!   PLOT_COMPLEXITY_TRENDS: True
//!   PLOT_CURVES_BEST: 3            # training curves of the best models (per sweep)
//!   PLOT_CURVES_WORST: 2
//!   PLOT_MODELS_BEST: 3            # per-block width plots of the best models
//!   PLOT_MODELS_WORST: 2
//!   EXTRA_SWEEP_NAMES: [other]     # sweeps ROOT_DIR/other compared with this one
//!   PRE_FILTERS: {flops: [0.2, 0.4, 0.6]}   # only models of 0.2-0.6 GF
//! ```
//!
//! A metric is one of pycls's shortcuts that a config or the complexity holds (`lr`, `wd`,
//! `epochs`, `regnet_w0`, `anynet_d`, ...; see [`SHORTCUTS`]), `cfg.KEY` for any config key
//! or `complexity.flops|params|acts`. Without `METRICS` the report plots error against every
//! sampled parameter (pycls plots none), and the model counts default to 3 best and 2 worst
//! (pycls: 0), so that a sweep config without `ANALYZE` still gets a full report. pycls's
//! `PRE_FILTERS` (`{METRIC: [MIN, MED, MAX]}`) analyzes only the models in every range;
//! `SPLIT_FILTERS` ("use at your own risk") is refused when not empty.

use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use crate::error::Result;
use crate::sweep_config::SweepConfig;
use crate::yaml::{self, At};

/// How a config value becomes a metric (pycls's metric transforms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    /// The value itself.
    Identity,
    /// `log10` of the value.
    Log10,
    /// The sum of a list (total depth).
    Sum,
    /// The largest item of a list.
    Max,
}

/// A complexity measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CxKind {
    /// Multiply-adds.
    Flops,
    /// Parameters.
    Params,
    /// Activations.
    Acts,
}

impl CxKind {
    /// The name in reports (`flops`, `params`, `acts`).
    pub fn name(self) -> &'static str {
        match self {
            CxKind::Flops => "flops",
            CxKind::Params => "params",
            CxKind::Acts => "acts",
        }
    }
}

/// Where a metric's value comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricSource {
    /// A complexity measure.
    Complexity(CxKind),
    /// A config key (`OPTIM.BASE_LR`), transformed.
    Config {
        /// Dotted config key.
        key: String,
        /// Applied to the value.
        transform: Transform,
    },
}

/// One metric to plot error against.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSpec {
    /// As written in the sweep config.
    pub name: String,
    /// Its values.
    pub source: MetricSource,
}

/// pycls's metric shortcuts that regnet's results hold: name, config key, transform.
pub const SHORTCUTS: &[(&str, &str, Transform)] = &[
    ("epochs", "OPTIM.MAX_EPOCH", Transform::Identity),
    ("resolution", "TRAIN.IM_SIZE", Transform::Identity),
    ("batch_size", "TRAIN.BATCH_SIZE", Transform::Identity),
    ("regnet_depth", "REGNET.DEPTH", Transform::Identity),
    ("regnet_w0", "REGNET.W0", Transform::Identity),
    ("regnet_wa", "REGNET.WA", Transform::Identity),
    ("regnet_wm", "REGNET.WM", Transform::Identity),
    ("regnet_gw", "REGNET.GROUP_W", Transform::Identity),
    ("regnet_bm", "REGNET.BOT_MUL", Transform::Identity),
    ("anynet_d", "ANYNET.DEPTHS", Transform::Sum),
    ("anynet_w", "ANYNET.WIDTHS", Transform::Max),
    ("anynet_g", "ANYNET.GROUP_WS", Transform::Max),
    ("anynet_b", "ANYNET.BOT_MULS", Transform::Max),
    ("effnet_d", "EN.DEPTHS", Transform::Sum),
    ("effnet_w", "EN.WIDTHS", Transform::Max),
    ("lr", "OPTIM.BASE_LR", Transform::Log10),
    ("min_lr", "OPTIM.MIN_LR", Transform::Identity),
    ("wd", "OPTIM.WEIGHT_DECAY", Transform::Log10),
    ("bn_wd", "BN.CUSTOM_WEIGHT_DECAY", Transform::Log10),
    ("momentum", "OPTIM.MOMENTUM", Transform::Identity),
    ("ema_alpha", "OPTIM.EMA_ALPHA", Transform::Log10),
    ("ema_beta", "OPTIM.EMA_BETA", Transform::Log10),
];

/// `ANALYZE`.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalyzeCfg {
    /// `METRICS`; `None`: every sampled parameter.
    pub metrics: Option<Vec<MetricSpec>>,
    /// `COMPLEXITY`.
    pub complexity: Vec<MetricSpec>,
    /// `PLOT_METRIC_VALUES`: error versus each metric.
    pub plot_metric_values: bool,
    /// `PLOT_METRIC_TRENDS`: the metrics' bootstrap ranges across sweeps (several sweeps).
    pub plot_metric_trends: bool,
    /// `PLOT_COMPLEXITY_VALUES`.
    pub plot_complexity_values: bool,
    /// `PLOT_COMPLEXITY_TRENDS`.
    pub plot_complexity_trends: bool,
    /// Training curves of the best models to show, per sweep.
    pub plot_curves_best: usize,
    /// Training curves of the worst models to show.
    pub plot_curves_worst: usize,
    /// Width plots of the best models to show.
    pub plot_models_best: usize,
    /// Width plots of the worst models to show.
    pub plot_models_worst: usize,
    /// `EXTRA_SWEEP_NAMES`: other sweeps under `ROOT_DIR` to compare.
    pub extra_sweep_names: Vec<String>,
    /// `PRE_FILTERS`: only the finished models they keep are analyzed (the error EDF is
    /// also shown before them).
    pub pre_filters: Vec<Filter>,
}

/// One `PRE_FILTERS` entry, `METRIC: [MIN, MED, MAX]` as pycls writes them (the ranges its
/// bootstrap prints): keep the models whose metric lies in `[MIN, MAX]`. Complexity is in
/// pycls's units here: flops in billions, params and acts in millions.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    /// The metric.
    pub metric: MetricSpec,
    /// Smallest value kept.
    pub low: f64,
    /// Largest value kept.
    pub high: f64,
}

impl Default for AnalyzeCfg {
    fn default() -> Self {
        AnalyzeCfg {
            metrics: None,
            complexity: [CxKind::Flops, CxKind::Params, CxKind::Acts]
                .map(|k| MetricSpec {
                    name: k.name().into(),
                    source: MetricSource::Complexity(k),
                })
                .to_vec(),
            plot_metric_values: true,
            plot_metric_trends: true,
            plot_complexity_values: true,
            plot_complexity_trends: true,
            plot_curves_best: 3,
            plot_curves_worst: 2,
            plot_models_best: 3,
            plot_models_worst: 2,
            extra_sweep_names: Vec::new(),
            pre_filters: Vec::new(),
        }
    }
}

/// The keys of `ANALYZE`.
const KEYS: &[&str] = &[
    "METRICS",
    "COMPLEXITY",
    "PLOT_METRIC_VALUES",
    "PLOT_METRIC_TRENDS",
    "PLOT_COMPLEXITY_VALUES",
    "PLOT_COMPLEXITY_TRENDS",
    "PLOT_CURVES_BEST",
    "PLOT_CURVES_WORST",
    "PLOT_MODELS_BEST",
    "PLOT_MODELS_WORST",
    "PRE_FILTERS",
    "SPLIT_FILTERS",
    "EXTRA_SWEEP_NAMES",
];

/// Most models a `PLOT_*` count may ask for (each is a figure in the report).
const MAX_PLOTS: u64 = 1000;

/// Whether `key` (`OPTIM.BASE_LR`) is a key of pycls's config.
fn is_config_key(key: &str) -> bool {
    let defaults =
        serde_json::to_value(regnet_core::config::Config::default()).expect("configs serialise");
    key.split('.')
        .try_fold(&defaults, |v, part| v.get(part))
        .is_some_and(|v| !v.is_object())
}

/// Parses one metric name at `at`.
fn metric(name: &str, at: &At) -> Result<MetricSpec> {
    let cx = |n: &str| {
        [CxKind::Flops, CxKind::Params, CxKind::Acts]
            .into_iter()
            .find(|k| k.name() == n)
    };
    let source = if let Some(k) = cx(name).or(name.strip_prefix("complexity.").and_then(cx)) {
        MetricSource::Complexity(k)
    } else if let Some(&(_, key, transform)) =
        SHORTCUTS.iter().find(|s| s.0 == name && is_config_key(s.1))
    {
        MetricSource::Config {
            key: key.into(),
            transform,
        }
    } else if let Some(key) = name.strip_prefix("cfg.").filter(|k| is_config_key(k)) {
        MetricSource::Config {
            key: key.into(),
            transform: Transform::Identity,
        }
    } else {
        let names: Vec<&str> = SHORTCUTS.iter().map(|s| s.0).collect();
        return Err(at.err(format!(
            "`{name}` is not a metric regnet's results hold: use flops, params, acts, \
             cfg.KEY for a config key, or one of {}",
            names.join(", ")
        )));
    };
    Ok(MetricSpec {
        name: name.into(),
        source,
    })
}

/// A list of metric names at `at`.
fn metrics(v: &Value, at: &At) -> Result<Vec<MetricSpec>> {
    let items = yaml::list(v, at)?;
    if items.len() > regnet_core::limits::MAX_LIST {
        return Err(at.err(format!(
            "has {} items, more than the limit of {}",
            items.len(),
            regnet_core::limits::MAX_LIST
        )));
    }
    items
        .iter()
        .map(|item| metric(&yaml::string(item, at)?, at))
        .collect()
}

/// `PRE_FILTERS`: a mapping of metric names to `[MIN, MED, MAX]`.
fn filters(v: &Value, at: &At) -> Result<Vec<Filter>> {
    let m = match v {
        Value::Null => return Ok(Vec::new()),
        v => yaml::mapping(v, at)?,
    };
    let mut out = Vec::new();
    for (k, range) in m.iter().take(regnet_core::limits::MAX_LIST + 1) {
        let name = yaml::key_str(k).ok_or_else(|| at.err("keys must be metric names"))?;
        let at_k = at.child(name);
        let items = yaml::list(range, &at_k)?;
        let nums = items
            .iter()
            .map(|x| yaml::number(x, &at_k))
            .collect::<Result<Vec<f64>>>()?;
        let [low, _, high] = nums[..] else {
            return Err(at_k.err("must be [MIN, MED, MAX] (as pycls's bootstrap prints)"));
        };
        if low > high {
            return Err(at_k.err(format!("MIN {low} is above MAX {high}")));
        }
        let metric = metric(name, &at_k)?;
        out.push(Filter { metric, low, high });
    }
    if out.len() > regnet_core::limits::MAX_LIST {
        return Err(at.err("has more filters than the list limit"));
    }
    Ok(out)
}

fn boolean(v: &Value, at: &At) -> Result<bool> {
    v.as_bool()
        .ok_or_else(|| at.err(format!("must be True or False, got {}", yaml::show(v))))
}

/// Reads the flags and counts of `m` into `cfg`.
fn read_plots(m: &Mapping, at: &At, cfg: &mut AnalyzeCfg) -> Result<()> {
    for (key, slot) in [
        ("PLOT_METRIC_VALUES", &mut cfg.plot_metric_values),
        ("PLOT_METRIC_TRENDS", &mut cfg.plot_metric_trends),
        ("PLOT_COMPLEXITY_VALUES", &mut cfg.plot_complexity_values),
        ("PLOT_COMPLEXITY_TRENDS", &mut cfg.plot_complexity_trends),
    ] {
        if let Some(v) = yaml::get(m, key) {
            *slot = boolean(v, &at.child(key))?;
        }
    }
    for (key, slot) in [
        ("PLOT_CURVES_BEST", &mut cfg.plot_curves_best),
        ("PLOT_CURVES_WORST", &mut cfg.plot_curves_worst),
        ("PLOT_MODELS_BEST", &mut cfg.plot_models_best),
        ("PLOT_MODELS_WORST", &mut cfg.plot_models_worst),
    ] {
        if let Some(v) = yaml::get(m, key) {
            let n = yaml::uint(v, &at.child(key))?;
            if n > MAX_PLOTS {
                return Err(at
                    .child(key)
                    .err(format!("{n} is above the limit of {MAX_PLOTS}")));
            }
            *slot = n as usize;
        }
    }
    Ok(())
}

/// Reads `ANALYZE` (the mapping `v` at `at`).
pub(crate) fn read(v: &Value, at: &At) -> Result<AnalyzeCfg> {
    let m = yaml::mapping(v, at)?;
    yaml::check_keys(m, KEYS, at)?;
    let mut cfg = AnalyzeCfg::default();
    if let Some(v) = yaml::get(m, "METRICS") {
        cfg.metrics = Some(metrics(v, &at.child("METRICS"))?);
    }
    if let Some(v) = yaml::get(m, "COMPLEXITY") {
        cfg.complexity = metrics(v, &at.child("COMPLEXITY"))?;
    }
    read_plots(m, at, &mut cfg)?;
    if let Some(v) = yaml::get(m, "PRE_FILTERS") {
        cfg.pre_filters = filters(v, &at.child("PRE_FILTERS"))?;
    }
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::Mapping(m) => m.is_empty(),
        _ => false,
    };
    if yaml::get(m, "SPLIT_FILTERS").is_some_and(|v| !empty(v)) {
        return Err(at.child("SPLIT_FILTERS").err(
            "is not supported by regnet (pycls's undocumented sweep splitting); remove it or \
             leave it empty",
        ));
    }
    if let Some(v) = yaml::get(m, "EXTRA_SWEEP_NAMES") {
        let at = at.child("EXTRA_SWEEP_NAMES");
        for item in yaml::list(v, &at)?
            .iter()
            .take(regnet_core::limits::MAX_LIST + 1)
        {
            let name = yaml::string(item, &at)?;
            crate::sweep_config::check_name(&name, &at)?;
            cfg.extra_sweep_names.push(name);
        }
        if cfg.extra_sweep_names.len() > regnet_core::limits::MAX_LIST {
            return Err(at.err("has more names than the list limit"));
        }
    }
    Ok(cfg)
}

/// The `ANALYZE` and `NAME` of the sweep config text `text` (read from `path`, for
/// messages), ignoring every other key: for a sweep folder's copy `sweep_cfg.yaml`, whose
/// relative paths may no longer resolve.
fn from_sweep_yaml(text: &str, path: &Path) -> Result<(AnalyzeCfg, Option<String>)> {
    let root = At::root(path);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    regnet_core::limits::check_yaml_nesting(text).map_err(|e| root.err(e))?;
    let tree: Value =
        serde_norway::from_str(text).map_err(|e| root.err(e.to_string().replace('\n', " ")))?;
    let top = tree.as_mapping();
    let name = top
        .and_then(|m| yaml::get(m, "NAME"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let cfg = match top.and_then(|m| yaml::get(m, "ANALYZE")) {
        Some(v) => read(v, &root.child("ANALYZE"))?,
        None => AnalyzeCfg::default(),
    };
    Ok((cfg, name))
}

/// The `ANALYZE` of the sweep folder `dir` (its copy `sweep_cfg.yaml`; defaults without
/// one) and its extra sweeps' folders: `ROOT_DIR/EXTRA`, with `ROOT_DIR` the folder
/// `NAME` is in.
fn of_folder(dir: &Path) -> Result<(AnalyzeCfg, Vec<PathBuf>)> {
    let file = dir.join("sweep_cfg.yaml");
    if !file.is_file() {
        return Ok((AnalyzeCfg::default(), Vec::new()));
    }
    let text = crate::error::read(&file)?;
    let (cfg, name) = from_sweep_yaml(&text, &file)?;
    let depth = name.map_or(1, |n| Path::new(&n).components().count());
    let root = dir.ancestors().nth(depth).unwrap_or(dir);
    let extra = cfg.extra_sweep_names.iter().map(|n| root.join(n)).collect();
    Ok((cfg, extra))
}

/// The sweep folders to analyze and the `ANALYZE` options, from the sweep configs or sweep
/// folders `paths` (as `regnet sweep analyze` takes them): the options and the
/// `EXTRA_SWEEP_NAMES` of the first, as pycls's `sweep_analyze.py` takes its one sweep
/// config's; every other path is a sweep compared with it.
pub fn resolve(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, AnalyzeCfg)> {
    let Some(first) = paths.first() else {
        return Err(crate::Error::other("analyze: no sweep given"));
    };
    let (cfg, mut dirs) = if first.is_file() {
        let sweep = SweepConfig::load(first)?;
        (sweep.analyze.clone(), sweep.analysis_dirs())
    } else {
        let dir = crate::collect::resolve_sweep_dir(first)?;
        let (cfg, extra) = of_folder(&dir)?;
        (cfg, std::iter::once(dir).chain(extra).collect())
    };
    for p in &paths[1..] {
        dirs.push(crate::collect::resolve_sweep_dir(p)?);
    }
    Ok((dirs, cfg))
}
