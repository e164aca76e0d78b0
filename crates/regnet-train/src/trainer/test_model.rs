//! `regnet test`, pycls's `test_model`: the weights `TEST.WEIGHTS` names (or a shortcut
//! that wins over it) on the config's test split.

use std::path::Path;

use regnet_core::config::Config;
use regnet_core::spec::NetSpec;
use regnet_nn::Model;
use regnet_nn::layers::BnSettings;
use regnet_nn::weights::{self, Which};
use serde_json::Value;

use super::{TrainError, evaluate, to_dev, train_spec};
use crate::data;
use crate::meters::{Logger, json_stats, peak_mem_mb};

/// What `regnet test` reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TestSummary {
    /// Top-1 error, percent.
    pub top1_err: f64,
    /// Top-5 error, percent.
    pub top5_err: f64,
    /// Test images.
    pub images: usize,
    /// Seconds.
    pub seconds: f64,
}

/// The weights to test: `shortcut` (`regnet test --weights`) when given, else
/// `TEST.WEIGHTS`, as pycls's `test_model` reads it.
pub fn test_weights<'a>(cfg: &'a Config, shortcut: Option<&'a str>) -> Result<&'a str, TrainError> {
    match shortcut {
        Some(path) => Ok(path),
        None if !cfg.test.weights.is_empty() => local_file("TEST.WEIGHTS", &cfg.test.weights),
        None => Err(TrainError::Other(
            "TEST.WEIGHTS: empty: name the weights to test (TEST.WEIGHTS FILE, or --weights FILE)"
                .into(),
        )),
    }
}

/// `path` from the weights key `key`, refused when it is a URL: pycls downloads those into
/// `DOWNLOAD_CACHE`, regnet reads local files only.
pub(crate) fn local_file<'a>(key: &str, path: &'a str) -> Result<&'a str, TrainError> {
    if path.contains("://") {
        return Err(TrainError::Other(format!(
            "{key}: `{path}` is a URL: regnet does not download weights (pycls caches them in \
             DOWNLOAD_CACHE); download the file and give its path"
        )));
    }
    Ok(path)
}

/// The model a weight file says it holds: regnet's spec metadata, or the config embedded in a
/// pycls checkpoint.
fn weights_spec(w: &weights::Weights, weights_path: &str) -> Result<NetSpec, TrainError> {
    if let Some(spec) = &w.spec {
        return Ok(spec.clone());
    }
    let Some(yaml) = &w.pycls_cfg else {
        return Err(TrainError::Other(format!(
            "{weights_path}: the file does not say which model it holds: name a zoo model or give --cfg FILE"
        )));
    };
    let mut cfg = Config::default();
    let origin = regnet_core::error::Origin::File(format!("{weights_path} (cfg)"));
    cfg.merge_yaml(yaml, origin)?;
    Ok(cfg.spec()?)
}

/// Tests `weights` (any supported format) on the config's test set.
pub fn test(
    cfg: &Config,
    weights_path: &str,
    which: Which,
    quiet: bool,
) -> Result<TestSummary, TrainError> {
    let test_set = data::open(cfg, false)?;
    let w = weights::read(Path::new(weights_path), which)?;
    // The model: from the config when it names one, else from the weights file.
    let spec = if cfg.model.ty.is_empty() {
        weights_spec(&w, weights_path)?
    } else {
        train_spec(cfg, test_set.channels())?.1
    };
    if spec.in_channels != test_set.channels() {
        return Err(TrainError::Other(format!(
            "{weights_path}: the model takes {} input channels but {} has {}",
            spec.in_channels,
            cfg.test.dataset,
            test_set.channels()
        )));
    }
    let dev = to_dev(&cfg.ext.device)?;
    let bn = BnSettings {
        eps: cfg.bn.eps,
        momentum: cfg.bn.mom,
    };
    let model = Model::from_state_dict(&spec, &w.state, bn, &dev, weights_path)?;
    let loader = data::loader(cfg, test_set, false)?;
    // On the CPU the compiled engine runs the forward (the burn model above checked the
    // weights, with its error messages).
    let (top1, top5, seconds) = if cfg.ext.device.eq_ignore_ascii_case("cpu") {
        crate::compiled_eval::evaluate_compiled(&spec, &w.state, cfg.bn.eps, &loader, weights_path)?
    } else {
        evaluate(&model, &loader, spec.num_classes)?
    };
    let mut log = Logger::stdout_only(quiet);
    log.line(&json_stats(
        "test_epoch",
        &[
            ("epoch", Value::from("1/1")),
            ("top1_err", Value::from(top1)),
            ("top5_err", Value::from(top5)),
            ("time_epoch", Value::from(seconds)),
            ("mem", Value::from(peak_mem_mb())),
        ],
    ));
    Ok(TestSummary {
        top1_err: top1,
        top5_err: top5,
        images: loader.num_samples(),
        seconds,
    })
}
