//! The files of a sweep folder, and the state of its jobs.
//!
//! ```text
//! ROOT_DIR/NAME/
//!   sweep_cfg.yaml        copy of the sweep config          (setup)
//!   setup.json            what was sampled                  (setup)
//!   cfgs/000000.yaml ...  one pycls config per model        (setup)
//!   logs/000000/          each job's OUT_DIR                (launch)
//!     stdout.log          the job's output, json_stats lines (appended across attempts)
//!     sweep_job.json      the job's state: the done marker   (launch, slurm)
//!   slurm_array.sh        SLURM job array script            (launch --slurm)
//!   sweep.json            collected results                 (collect)
//!   analysis/             report.html and the SVG plots     (analyze)
//! ```
//!
//! A job is finished when its log has a `test_epoch` line for epoch `E/E`, or its
//! `sweep_job.json` says `finished` (written when its command exits with status 0).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::logs::LogData;

/// The log file in each job's output folder (pycls's `stdout.log`).
pub const LOG_FILE: &str = "stdout.log";
/// The job state file in each job's output folder.
pub const JOB_FILE: &str = "sweep_job.json";

/// `SWEEP/cfgs/000003.yaml`.
pub fn cfg_path(sweep_dir: &Path, index: usize) -> PathBuf {
    sweep_dir
        .join("cfgs")
        .join(format!("{}.yaml", crate::setup::model_name(index)))
}

/// `SWEEP/logs/000003`.
pub fn out_dir(sweep_dir: &Path, index: usize) -> PathBuf {
    sweep_dir.join("logs").join(crate::setup::model_name(index))
}

/// The indices of the configs in `SWEEP/cfgs`, sorted.
pub fn config_indices(sweep_dir: &Path) -> Result<Vec<usize>> {
    let dir = sweep_dir.join("cfgs");
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        Error::other(format!(
            "{}: {e} (run `regnet sweep setup` first)",
            dir.display()
        ))
    })?;
    let mut out: Vec<usize> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".yaml")?;
            (stem.len() == 6).then(|| stem.parse().ok()).flatten()
        })
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// A job's state as the runner last wrote it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Not run yet.
    #[default]
    Pending,
    /// Running (or the runner was interrupted while it ran).
    Running,
    /// Its command exited with status 0.
    Finished,
    /// It failed more often than retries allow.
    Failed,
}

/// One run of a job's command.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// Start, seconds since the Unix epoch.
    #[serde(default)]
    pub started: f64,
    /// Duration in seconds (none while running).
    #[serde(default)]
    pub seconds: Option<f64>,
    /// Exit status (none if killed by a signal or still running).
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Signal that killed it, if any.
    #[serde(default)]
    pub signal: Option<i32>,
    /// The command line.
    #[serde(default)]
    pub command: String,
    /// `local` or `slurm`.
    #[serde(default)]
    pub runner: String,
}

impl Attempt {
    /// Whether the attempt ended and failed.
    pub fn failed(&self) -> bool {
        self.seconds.is_some() && self.exit_code != Some(0)
    }
}

/// The content of `sweep_job.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    /// Status.
    pub status: JobStatus,
    /// Attempts counted against the retry limit.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// Attempts before the failures were reset (`--reset-failed`).
    #[serde(default)]
    pub previous_attempts: Vec<Attempt>,
}

impl JobState {
    /// Reads a job's state; `None` if there is none (or it is unreadable).
    pub fn read(out_dir: &Path) -> Option<JobState> {
        let text = std::fs::read_to_string(out_dir.join(JOB_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes a job's state.
    pub fn write(&self, out_dir: &Path) -> Result<()> {
        crate::error::write_json(&out_dir.join(JOB_FILE), self)
    }

    /// Failed attempts so far.
    pub fn failures(&self) -> usize {
        self.attempts.iter().filter(|a| a.failed()).count()
    }
}

/// Where a job stands, from its log and state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    /// Training finished.
    Finished,
    /// Failed more often than retries allow.
    Failed,
    /// Started and not finished: running, interrupted, or failed with retries left.
    Unfinished,
    /// Never started.
    NotStarted,
}

/// A job's progress, state and log.
pub fn job_progress(out_dir: &Path) -> (Progress, Option<JobState>, Option<LogData>) {
    let state = JobState::read(out_dir);
    let log_path = out_dir.join(LOG_FILE);
    let log = log_path
        .is_file()
        .then(|| LogData::read(&log_path).ok())
        .flatten();
    let progress = if log.as_ref().is_some_and(LogData::is_finished)
        || state
            .as_ref()
            .is_some_and(|s| s.status == JobStatus::Finished)
    {
        Progress::Finished
    } else if state
        .as_ref()
        .is_some_and(|s| s.status == JobStatus::Failed)
    {
        Progress::Failed
    } else if log.is_some() || state.as_ref().is_some_and(|s| !s.attempts.is_empty()) {
        Progress::Unfinished
    } else {
        Progress::NotStarted
    };
    (progress, state, log)
}
