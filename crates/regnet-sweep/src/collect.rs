//! `regnet sweep collect`: every job's log and config in one results file,
//! `SWEEP/sweep.json` (pycls's `tools/sweep_collect.py`).
//!
//! Each model's entry has its config, sampled parameters, stages and complexity (from its
//! config file, counted by `regnet_core`), its per-epoch train and test errors (from the
//! `json_stats` lines of `logs/NNNNNN/stdout.log`), the final and minimum test error, the
//! training time, and where it stands (finished, unfinished, failed, not started). The
//! error used by the analysis is the minimum test top-1 error over epochs (pycls's
//! `error_tst`; with EMA lines, `min_ema_err` holds pycls's `error`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::constraints::{Cx, config_complexity};
use crate::error::{Error, Result};
use crate::layout::{self, Progress};
use crate::sampler::RegNetParams;
use crate::setup::{SamplerInfo, Stages, load_summary, model_name};
use crate::sweep_config::SweepConfig;

/// One epoch of one model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochResult {
    /// 1-based epoch.
    pub epoch: usize,
    /// Training top-1 error, percent.
    pub train_err: Option<f64>,
    /// Training loss.
    pub train_loss: Option<f64>,
    /// Learning rate.
    pub lr: Option<f64>,
    /// Test top-1 error, percent.
    pub test_err: Option<f64>,
    /// Test top-1 error of the EMA model, percent.
    pub test_ema_err: Option<f64>,
    /// Training seconds of the epoch.
    pub time_epoch: Option<f64>,
}

/// One model of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelResult {
    /// Index in the sweep.
    pub index: usize,
    /// Six-digit name.
    pub name: String,
    /// Config file, relative to the sweep folder.
    pub cfg_file: String,
    /// Output folder, relative to the sweep folder.
    pub out_dir: String,
    /// Where the job stands.
    pub status: Progress,
    /// The sampled parameters (from `setup.json`).
    pub sampled: serde_json::Map<String, Json>,
    /// `MODEL.TYPE`.
    pub model_type: String,
    /// Complexity at `TRAIN.IM_SIZE`.
    pub complexity: Cx,
    /// Stages.
    pub stages: Stages,
    /// RegNet parameters, for RegNets.
    pub regnet: Option<RegNetParams>,
    /// `TRAIN.IM_SIZE`.
    pub im_size: usize,
    /// Epochs in the run (`OPTIM.MAX_EPOCH`).
    pub max_epoch: usize,
    /// Epochs with a test error.
    pub epochs_done: usize,
    /// Per-epoch errors.
    pub epochs: Vec<EpochResult>,
    /// Test error of the last epoch, percent.
    pub final_test_err: Option<f64>,
    /// Minimum test error over epochs, percent: the error analyzed.
    pub min_test_err: Option<f64>,
    /// Minimum EMA test error, percent.
    pub min_ema_err: Option<f64>,
    /// Sum of the training epochs' times, seconds.
    pub train_time: Option<f64>,
    /// Wall-clock seconds of the job's attempts.
    pub wall_time: Option<f64>,
    /// Attempts of the job.
    pub attempts: usize,
    /// Exit code of the last attempt.
    pub last_exit_code: Option<i32>,
    /// Unreadable `json_stats` lines in the log.
    pub garbage_lines: usize,
    /// The full config (as JSON).
    pub cfg: Json,
}

impl ModelResult {
    /// The error analyzed: minimum test top-1 error, percent.
    pub fn error(&self) -> Option<f64> {
        self.min_test_err
    }

    /// Per-block widths.
    pub fn block_widths(&self) -> Vec<usize> {
        self.stages.block_widths()
    }
}

/// Counts of a sweep's jobs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Models.
    pub total: usize,
    /// Finished.
    pub finished: usize,
    /// Started, not finished.
    pub unfinished: usize,
    /// Failed.
    pub failed: usize,
    /// Never started.
    pub not_started: usize,
}

/// The collected results of a sweep: `sweep.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepResults {
    /// Sweep name.
    pub name: String,
    /// Sweep folder.
    pub sweep_dir: String,
    /// Design space, if built in.
    pub design_space: Option<String>,
    /// The samplers (from `setup.json`).
    pub samplers: Vec<SamplerInfo>,
    /// Job counts.
    pub counts: Counts,
    /// Unfinished jobs' names.
    pub unfinished: Vec<String>,
    /// Failed jobs' names.
    pub failed: Vec<String>,
    /// Jobs never started.
    pub not_started: Vec<String>,
    /// One entry per model, by index.
    pub models: Vec<ModelResult>,
}

impl SweepResults {
    /// The finished models with an error.
    pub fn finished(&self) -> impl Iterator<Item = &ModelResult> {
        self.models
            .iter()
            .filter(|m| m.status == Progress::Finished && m.error().is_some())
    }

    /// Reads `SWEEP/sweep.json`.
    pub fn load(sweep_dir: &Path) -> Result<SweepResults> {
        crate::error::read_json(&sweep_dir.join("sweep.json"))
    }
}

fn collect_model(
    sweep_dir: &Path,
    index: usize,
    sampled: Option<&serde_json::Map<String, Json>>,
) -> Result<ModelResult> {
    let name = model_name(index);
    let cfg_path = layout::cfg_path(sweep_dir, index);
    let cfg = regnet_core::config::Config::load(&cfg_path.display().to_string())?;
    let complexity = config_complexity(&cfg)?;
    let stages = Stages::of(&cfg)?;
    let out = layout::out_dir(sweep_dir, index);
    let (status, state, log) = layout::job_progress(&out);
    let log = log.unwrap_or_default();
    let mut epochs: Vec<EpochResult> = Vec::new();
    let all: std::collections::BTreeSet<usize> = log
        .train
        .keys()
        .chain(log.test.keys())
        .chain(log.test_ema.keys())
        .copied()
        .collect();
    for e in all {
        let tr = log.train.get(&e);
        epochs.push(EpochResult {
            epoch: e,
            train_err: tr.and_then(|s| s.top1_err),
            train_loss: tr.and_then(|s| s.loss),
            lr: tr.and_then(|s| s.lr),
            test_err: log.test.get(&e).and_then(|s| s.top1_err),
            test_ema_err: log.test_ema.get(&e).and_then(|s| s.top1_err),
            time_epoch: tr.and_then(|s| s.time_epoch),
        });
    }
    let test: Vec<f64> = epochs.iter().filter_map(|e| e.test_err).collect();
    let ema: Vec<f64> = epochs.iter().filter_map(|e| e.test_ema_err).collect();
    let min = |xs: &[f64]| xs.iter().copied().reduce(f64::min);
    let times: Vec<f64> = epochs.iter().filter_map(|e| e.time_epoch).collect();
    let attempts = state.as_ref().map_or(0, |s| s.attempts.len());
    let wall: Vec<f64> = state
        .iter()
        .flat_map(|s| s.attempts.iter().filter_map(|a| a.seconds))
        .collect();
    let regnet = (cfg.model.ty == "regnet").then_some(RegNetParams {
        depth: cfg.regnet.depth,
        w0: cfg.regnet.w0,
        wa: cfg.regnet.wa,
        wm: cfg.regnet.wm,
        group_w: cfg.regnet.group_w,
        bot_mul: cfg.regnet.bot_mul,
    });
    Ok(ModelResult {
        index,
        cfg_file: format!("cfgs/{name}.yaml"),
        out_dir: format!("logs/{name}"),
        name,
        status,
        sampled: sampled.cloned().unwrap_or_default(),
        model_type: cfg.model.ty.clone(),
        complexity,
        stages,
        regnet,
        im_size: cfg.im_size(),
        max_epoch: log.max_epoch().unwrap_or(cfg.optim.max_epoch),
        epochs_done: test.len(),
        final_test_err: test.last().copied(),
        min_test_err: min(&test),
        min_ema_err: min(&ema),
        train_time: (!times.is_empty()).then(|| times.iter().sum()),
        wall_time: (!wall.is_empty()).then(|| wall.iter().sum()),
        attempts,
        last_exit_code: state
            .as_ref()
            .and_then(|s| s.attempts.last())
            .and_then(|a| a.exit_code),
        garbage_lines: log.garbage_lines,
        epochs,
        cfg: serde_json::to_value(&cfg).expect("configs serialise"),
    })
}

/// Collects the sweep in `sweep_dir` into `sweep_dir/sweep.json`.
pub fn run(sweep_dir: impl AsRef<Path>) -> Result<SweepResults> {
    let dir = sweep_dir.as_ref();
    let results = collect(dir)?;
    crate::error::write_json(&dir.join("sweep.json"), &results)?;
    Ok(results)
}

/// Collects the sweep in `sweep_dir` without writing anything.
pub fn collect(dir: &Path) -> Result<SweepResults> {
    let summary = load_summary(dir).ok();
    let indices = layout::config_indices(dir)?;
    if indices.is_empty() {
        return Err(Error::other(format!(
            "{}: the sweep has no configs",
            dir.join("cfgs").display()
        )));
    }
    let mut models = Vec::with_capacity(indices.len());
    for i in indices {
        let sampled = summary
            .as_ref()
            .and_then(|s| s.models.iter().find(|m| m.index == i))
            .map(|m| &m.sampled);
        models.push(collect_model(dir, i, sampled)?);
    }
    let mut counts = Counts {
        total: models.len(),
        ..Counts::default()
    };
    let (mut unfinished, mut failed, mut not_started) = (Vec::new(), Vec::new(), Vec::new());
    for m in &models {
        match m.status {
            Progress::Finished => counts.finished += 1,
            Progress::Unfinished => {
                counts.unfinished += 1;
                unfinished.push(m.name.clone());
            }
            Progress::Failed => {
                counts.failed += 1;
                failed.push(m.name.clone());
            }
            Progress::NotStarted => {
                counts.not_started += 1;
                not_started.push(m.name.clone());
            }
        }
    }
    let name = summary.as_ref().map_or_else(
        || {
            dir.file_name()
                .map_or("sweep".into(), |n| n.to_string_lossy().into_owned())
        },
        |s| s.name.clone(),
    );
    Ok(SweepResults {
        name,
        sweep_dir: dir.display().to_string(),
        design_space: summary.as_ref().and_then(|s| s.design_space.clone()),
        samplers: summary.map(|s| s.samplers).unwrap_or_default(),
        counts,
        unfinished,
        failed,
        not_started,
        models,
    })
}

/// The sweep folder named by `path`: a sweep config file (its `ROOT_DIR/NAME`), or the
/// folder itself.
pub fn resolve_sweep_dir(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        Ok(SweepConfig::load(path)?.sweep_dir())
    } else if path.is_dir() {
        Ok(path.to_path_buf())
    } else {
        Err(Error::other(format!(
            "{}: not a sweep config file or sweep folder",
            path.display()
        )))
    }
}
