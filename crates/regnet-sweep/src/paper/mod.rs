//! `regnet paper`: the experiments of "Designing Network Design Spaces" reproduced small,
//! in one run and one report.
//!
//! [`run`] renders the embedded sweep configs ([`sweeps`]) with the run's settings into
//! `OUT/cfgs/`, sets each sweep up in `OUT/sweeps/` (or reuses it), launches it on the
//! local pool (or writes and submits a SLURM job array), collects every sweep found in
//! `OUT/sweeps/`, tests each claim of [`experiments::CLAIMS`] by the rule of [`verdict`],
//! and writes `OUT/report.html` ([`report`]), `OUT/outcomes.json` and `OUT/outcomes.md`
//! ([`table`]). A second run resumes: a set-up sweep is reused, finished jobs are not run
//! again (the launcher's job states and locks), and only an unchanged config may be reused.

pub mod edf_band;
pub mod experiments;
pub mod outcome;
pub mod report;
pub mod sweeps;
pub mod table;
pub mod trends;
pub mod verdict;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::collect::{self, Counts};
use crate::error::{Error, Result};
use crate::launch::{self, LaunchOptions, LaunchSummary};
use crate::layout::Progress;
use crate::setup::{SetupOptions, setup};
use crate::slurm::{self, SlurmOptions};
use crate::sweep_config::SweepConfig;
use crate::template::Template;
use outcome::{Outcome, Sweeps};
use sweeps::{PaperSweep, SWEEPS, Settings};
use verdict::Rule;

/// How the jobs run.
#[derive(Clone, Debug, PartialEq)]
pub enum Launcher {
    /// On this machine, `jobs` at a time.
    Local {
        /// Jobs at once.
        jobs: usize,
        /// The training command.
        command: Template,
    },
    /// A SLURM job array per sweep (`OUT/sweeps/NAME/slurm_array.sh`).
    Slurm {
        /// The training command.
        command: Template,
        /// Hand the scripts to `sbatch`.
        submit: bool,
    },
    /// Set up and run nothing: report on what is there.
    None,
}

/// Options of [`run`].
#[derive(Clone, Debug, PartialEq)]
pub struct PaperOptions {
    /// The output folder.
    pub out_dir: PathBuf,
    /// The sweeps to set up and run (the report covers every sweep set up in `out_dir`).
    pub only: Vec<&'static PaperSweep>,
    /// Settings applied to every sweep config.
    pub settings: Settings,
    /// How jobs run.
    pub launcher: Launcher,
    /// The verdict rule.
    pub rule: Rule,
    /// Progress lines of the launcher on stderr.
    pub verbose: bool,
}

/// Something [`run`] did, for the caller to show.
#[derive(Debug)]
pub enum Event<'a> {
    /// A sweep was set up now (`reused: false`) or found set up.
    SetUp {
        /// Sweep key.
        key: &'a str,
        /// Its models.
        models: usize,
        /// Found set up.
        reused: bool,
    },
    /// A sweep's local launch ended.
    Launched {
        /// Sweep key.
        key: &'a str,
        /// What it did.
        summary: &'a LaunchSummary,
    },
    /// A SLURM script was written (and submitted: `sbatch`'s answer).
    Slurm {
        /// Sweep key.
        key: &'a str,
        /// The script.
        script: &'a Path,
        /// Array tasks.
        tasks: usize,
        /// `sbatch`'s output.
        submitted: Option<&'a str>,
    },
}

/// What [`run`] wrote.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PaperSummary {
    /// `OUT/report.html`.
    pub report: PathBuf,
    /// Job counts of every sweep in the report.
    pub sweeps: Vec<(String, Counts)>,
    /// One outcome per claim.
    pub outcomes: Vec<Outcome>,
}

/// The sweeps named in `names` (keys or short names, see [`sweeps::SWEEPS`]).
pub fn select(names: &[String]) -> Result<Vec<&'static PaperSweep>> {
    let mut out: Vec<&'static PaperSweep> = Vec::new();
    for n in names {
        let s = sweeps::find(n.trim()).ok_or_else(|| {
            let all: Vec<&str> = SWEEPS.iter().map(|s| s.short).collect();
            Error::other(format!(
                "unknown paper sweep `{n}` (expected one of: {})",
                all.join(", ")
            ))
        })?;
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

/// The folder of the sweeps under `out_dir`.
pub fn sweeps_dir(out_dir: &Path) -> PathBuf {
    out_dir.join("sweeps")
}

/// Renders `sweep` into `OUT/cfgs/KEY.yaml` and sets it up, or reuses its existing setup
/// when that was made from the same config. Returns the config and whether it was reused.
fn prepare(sweep: &PaperSweep, opts: &PaperOptions) -> Result<(SweepConfig, bool)> {
    let cfg_path = opts
        .out_dir
        .join("cfgs")
        .join(format!("{}.yaml", sweep.key));
    // Relative to the config's folder, so that the output folder can move.
    let text = sweeps::render(sweep, &opts.settings, Path::new("../sweeps"))?;
    let dir = sweeps_dir(&opts.out_dir).join(sweep.key);
    if dir.join("setup.json").is_file() {
        let used = dir.join("sweep_cfg.yaml");
        let old = std::fs::read_to_string(&used).map_err(|e| Error::io(&used, e))?;
        if old != text {
            return Err(Error::other(format!(
                "{}: this sweep was set up with other settings (models, epochs or data \
                 options); rerun with those, or use another --out",
                used.display()
            )));
        }
        return Ok((SweepConfig::from_yaml(&text, &cfg_path)?, true));
    }
    // Written before it is checked, so that an error names a file the user can read.
    crate::error::write(&cfg_path, &text)?;
    let cfg = SweepConfig::from_yaml(&text, &cfg_path)?;
    // Configs without setup.json are an interrupted setup: sample again unless a job ran.
    let force = !dir.join("logs").exists();
    setup(&cfg, &SetupOptions { force })?;
    Ok((cfg, false))
}

fn launch_one(cfg: &SweepConfig, opts: &PaperOptions, on: &mut dyn FnMut(Event)) -> Result<()> {
    let dir = cfg.sweep_dir();
    match &opts.launcher {
        Launcher::None => {}
        Launcher::Local { jobs, command } => {
            let s = launch::run(&LaunchOptions {
                sweep_dir: dir,
                name: cfg.name.clone(),
                command: command.clone(),
                jobs: (*jobs).max(1),
                max_retry: cfg.launch.max_retry,
                only: None,
                reset_failed: false,
                dry_run: false,
                verbose: opts.verbose,
            })?;
            on(Event::Launched {
                key: &cfg.name,
                summary: &s,
            });
        }
        Launcher::Slurm { command, submit } => {
            let todo: Vec<usize> = launch::progress(&dir)?
                .into_iter()
                .filter(|(_, p)| *p != Progress::Finished)
                .map(|(i, _)| i)
                .collect();
            if todo.is_empty() {
                return Ok(());
            }
            let so = SlurmOptions::from_sweep(cfg, command.clone(), todo);
            let script = slurm::write(&so)?;
            let answer = if *submit {
                Some(slurm::submit(&script)?)
            } else {
                None
            };
            on(Event::Slurm {
                key: &cfg.name,
                script: &script,
                tasks: so.indices.len(),
                submitted: answer.as_deref(),
            });
        }
    }
    Ok(())
}

/// Collects every paper sweep set up under `out_dir`.
pub fn collect_all(out_dir: &Path) -> Result<Sweeps> {
    let root = sweeps_dir(out_dir);
    let mut out = Sweeps::new();
    for s in SWEEPS {
        let dir = root.join(s.key);
        if dir.join("setup.json").is_file() {
            out.insert(s.key.to_string(), collect::run(&dir)?);
        }
    }
    Ok(out)
}

/// Runs the selected sweeps and writes the report; see the module documentation.
pub fn run(opts: &PaperOptions, on: &mut dyn FnMut(Event)) -> Result<PaperSummary> {
    if matches!(opts.launcher, Launcher::None) {
        return write_report(opts);
    }
    // Set everything up first: a bad setting fails before hours of training, and before
    // anything is written.
    if let Launcher::Local { jobs, .. } = &opts.launcher {
        crate::launch::check_jobs(*jobs)?;
    }
    let mut cfgs = Vec::new();
    for s in &opts.only {
        let (cfg, reused) = prepare(s, opts)?;
        let models = crate::setup::load_summary(&cfg.sweep_dir())?.models.len();
        on(Event::SetUp {
            key: s.key,
            models,
            reused,
        });
        cfgs.push(cfg);
    }
    for cfg in &cfgs {
        launch_one(cfg, opts, on)?;
    }
    write_report(opts)
}

/// Collects the sweeps in `opts.out_dir`, tests the claims and writes the report.
pub fn write_report(opts: &PaperOptions) -> Result<PaperSummary> {
    let sweeps = collect_all(&opts.out_dir)?;
    let outcomes: Vec<Outcome> = experiments::CLAIMS
        .iter()
        .map(|c| outcome::evaluate(c, &sweeps, &opts.rule))
        .collect();
    let path = opts.out_dir.join("report.html");
    report::write(
        &path,
        &report::ReportInput {
            sweeps: &sweeps,
            outcomes: &outcomes,
            rule: &opts.rule,
        },
    )?;
    let summary = PaperSummary {
        report: path,
        sweeps: sweeps
            .iter()
            .map(|(k, s)| (k.clone(), s.counts.clone()))
            .collect(),
        outcomes,
    };
    crate::error::write_json(&opts.out_dir.join("outcomes.json"), &summary)?;
    crate::error::write(
        &opts.out_dir.join("outcomes.md"),
        table::markdown(&summary.outcomes),
    )?;
    Ok(summary)
}
