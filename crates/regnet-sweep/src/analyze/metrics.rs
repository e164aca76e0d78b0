//! The values error is plotted against: complexity measures (`ANALYZE.COMPLEXITY`) and
//! metrics (`ANALYZE.METRICS`, by default every sampled parameter).

use serde_json::Value as Json;

use super::format::{scale, slug};
use crate::analyze_cfg::{CxKind, MetricSource, MetricSpec, Transform};
use crate::collect::{ModelResult, SweepResults};

/// A value to plot against error, one per finished model.
pub(super) struct Metric {
    pub label: String,
    pub slug: String,
    pub log: bool,
    pub values: Vec<f64>,
}

/// The metrics of one group, and the requested ones that cannot be plotted, with why.
#[derive(Default)]
pub(super) struct Metrics {
    pub plotted: Vec<Metric>,
    pub skipped: Vec<String>,
}

impl Metrics {
    /// Adds `values` under `label`; a metric that does not vary, or has a value missing or
    /// not finite, cannot be plotted (`name` says which was asked for).
    fn push(&mut self, name: &str, label: String, values: Option<Vec<f64>>) {
        let Some(values) = values.filter(|v| v.iter().all(|x| x.is_finite())) else {
            self.skipped
                .push(format!("{name}: not a finite number for every model"));
            return;
        };
        let mut distinct = values.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        if distinct.len() < 2 {
            self.skipped
                .push(format!("{name}: the same for every model"));
            return;
        }
        let (lo, hi) = (distinct[0], distinct[distinct.len() - 1]);
        self.plotted.push(Metric {
            slug: slug(&label),
            log: lo > 0.0 && hi / lo >= 8.0,
            label,
            values,
        });
    }
}

fn cx_value(m: &ModelResult, k: CxKind) -> u64 {
    match k {
        CxKind::Flops => m.complexity.flops,
        CxKind::Params => m.complexity.params,
        CxKind::Acts => m.complexity.acts,
    }
}

/// The config value at the dotted `key`, as a number.
fn config_value(cfg: &Json, key: &str, t: Transform) -> Option<f64> {
    let v = key.split('.').try_fold(cfg, |v, part| v.get(part))?;
    number(v, t)
}

/// A value as a number: lists of numbers are summed (`Sum`) or reduced to their largest
/// item (`Max`).
fn number(v: &Json, t: Transform) -> Option<f64> {
    let items = || v.as_array().map(|a| a.iter().filter_map(Json::as_f64));
    match t {
        Transform::Identity => v.as_f64(),
        Transform::Log10 => v.as_f64().map(f64::log10),
        Transform::Sum => Some(items()?.sum()),
        Transform::Max => items()?.reduce(f64::max),
    }
}

/// The value of `spec` for `m` in pycls's units (flops in billions, params and acts in
/// millions), as `ANALYZE.PRE_FILTERS` ranges are written.
pub(super) fn pycls_value(m: &ModelResult, spec: &MetricSpec) -> Option<f64> {
    match &spec.source {
        MetricSource::Complexity(k) => {
            let unit = if *k == CxKind::Flops { 1e9 } else { 1e6 };
            Some(cx_value(m, *k) as f64 / unit)
        }
        MetricSource::Config { key, transform } => config_value(&m.cfg, key, *transform),
    }
}

/// The label of a config metric.
fn config_label(key: &str, t: Transform) -> String {
    match t {
        Transform::Identity => key.to_string(),
        Transform::Log10 => format!("log10({key})"),
        Transform::Sum => format!("sum of {key}"),
        Transform::Max => format!("max of {key}"),
    }
}

/// The metrics `specs` of `models`.
pub(super) fn of_specs(models: &[&ModelResult], specs: &[MetricSpec]) -> Metrics {
    let mut out = Metrics::default();
    for spec in specs {
        match &spec.source {
            MetricSource::Complexity(k) => {
                let raw: Vec<f64> = models.iter().map(|m| cx_value(m, *k) as f64).collect();
                let (s, unit) = scale(raw.iter().copied().fold(0.0, f64::max));
                let label = format!("{} ({unit})", k.name());
                out.push(&spec.name, label, Some(raw.iter().map(|v| v / s).collect()));
            }
            MetricSource::Config { key, transform } => {
                let values = (models.iter())
                    .map(|m| config_value(&m.cfg, key, *transform))
                    .collect();
                out.push(&spec.name, config_label(key, *transform), values);
            }
        }
    }
    out
}

/// The sampled parameters of `models`, in sampler order (or sorted, without
/// `setup.json`). Lists (AnyNet stages) become their total (depths) or largest item
/// (pycls's `anynet_d`, `anynet_w`, ...); parameters that are neither are left out.
pub(super) fn sampled(sweep: &SweepResults, models: &[&ModelResult]) -> Metrics {
    let mut keys: Vec<String> = sweep.samplers.iter().flat_map(|s| s.keys.clone()).collect();
    if keys.is_empty() {
        keys = models
            .iter()
            .flat_map(|m| m.sampled.keys().cloned())
            .collect();
        keys.sort();
        keys.dedup();
    }
    let mut out = Metrics::default();
    for key in keys {
        let vals: Vec<Option<&Json>> = models.iter().map(|m| m.sampled.get(&key)).collect();
        let is_list = |v: &Option<&Json>| {
            v.and_then(Json::as_array)
                .is_some_and(|a| !a.is_empty() && a.iter().all(Json::is_number))
        };
        let t = if vals.iter().all(|v| v.and_then(Json::as_f64).is_some()) {
            Transform::Identity
        } else if vals.iter().all(is_list) && key.ends_with("DEPTHS") {
            Transform::Sum
        } else if vals.iter().all(is_list) {
            Transform::Max
        } else {
            continue;
        };
        let values = (vals.iter())
            .map(|v| number(v.expect("checked"), t))
            .collect::<Option<Vec<f64>>>();
        let mut m = Metrics::default();
        m.push(&key, config_label(&key, t), values);
        // Sampled parameters that do not vary are left out quietly, as before.
        out.plotted.append(&mut m.plotted);
    }
    out
}
