//! `regnet sweep launch`: the local runner.
//!
//! Runs the command [`Template`] once per config, `jobs` at a time, each with its standard
//! output and error appended to `logs/NNNNNN/stdout.log` (after a `#` header line per
//! attempt, which log parsing ignores). It resumes: finished jobs (see [`crate::layout`])
//! are skipped, so an interrupted sweep is relaunched with the same command. A job whose
//! command fails (non-zero exit, or killed) is queued again until it has failed
//! `1 + max_retry` times, counted across launches; it is then marked failed and later
//! launches skip it unless told to reset failures.

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::job_lock::{self, LockOwner};
use crate::layout::{self, Attempt, JobState, JobStatus, LOG_FILE, Progress};
use crate::template::{Template, shell_quote};

/// Most jobs run at once by one launcher (each is a thread and a process).
pub const MAX_JOBS: usize = 1024;

/// Options of [`run`].
#[derive(Clone, Debug)]
pub struct LaunchOptions {
    /// The sweep folder (`ROOT_DIR/NAME`).
    pub sweep_dir: PathBuf,
    /// The sweep name (for `{name}`).
    pub name: String,
    /// The command template.
    pub command: Template,
    /// Jobs run at once.
    pub jobs: usize,
    /// Retries of a failing job.
    pub max_retry: usize,
    /// Run only these indices (all if `None`).
    pub only: Option<Vec<usize>>,
    /// Give failed jobs a fresh retry budget.
    pub reset_failed: bool,
    /// Print the commands instead of running them.
    pub dry_run: bool,
    /// Print progress to standard error.
    pub verbose: bool,
}

/// What a launch did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LaunchSummary {
    /// Configs in the sweep (after `only`).
    pub total: usize,
    /// Finished before this launch.
    pub already_finished: Vec<usize>,
    /// Finished by this launch.
    pub finished: Vec<usize>,
    /// Failed for good in this launch.
    pub failed: Vec<usize>,
    /// Failed in an earlier launch and skipped.
    pub skipped_failed: Vec<usize>,
    /// Skipped because another launcher was running them.
    pub running_elsewhere: Vec<usize>,
    /// Commands that would run (`dry_run`), one shell line each.
    pub commands: Vec<String>,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl LaunchOptions {
    /// The argv of job `index`.
    pub fn argv(&self, index: usize) -> Vec<String> {
        let cfg = layout::cfg_path(&self.sweep_dir, index);
        let out = layout::out_dir(&self.sweep_dir, index);
        self.command.argv(|v| match v {
            "cfg" => cfg.display().to_string(),
            "out_dir" => out.display().to_string(),
            "index" => crate::setup::model_name(index),
            "sweep_dir" => self.sweep_dir.display().to_string(),
            "name" => self.name.clone(),
            _ => unreachable!("templates only hold known placeholders"),
        })
    }
}

/// Runs one attempt of job `index`; returns whether it succeeded.
fn attempt(opts: &LaunchOptions, index: usize, state: &mut JobState) -> Result<bool> {
    let out = layout::out_dir(&opts.sweep_dir, index);
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let argv = opts.argv(index);
    let line = argv
        .iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let log_path = out.join(LOG_FILE);
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| Error::io(&log_path, e))?;
    let n = state.attempts.len() + 1;
    writeln!(log, "# regnet sweep launch: attempt {n}: {line}")
        .map_err(|e| Error::io(&log_path, e))?;
    state.status = JobStatus::Running;
    state.attempts.push(Attempt {
        started: now(),
        command: line.clone(),
        runner: "local".into(),
        ..Attempt::default()
    });
    state.write(&out)?;
    let start = Instant::now();
    let stderr = log.try_clone().map_err(|e| Error::io(&log_path, e))?;
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(stderr)
        .status();
    let a = state.attempts.last_mut().expect("pushed above");
    a.seconds = Some(start.elapsed().as_secs_f64());
    let ok = match status {
        Ok(st) => {
            a.exit_code = st.code();
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                a.signal = st.signal();
            }
            st.success()
        }
        Err(e) => {
            // The command could not start: note it in the log, count it as a failure.
            a.exit_code = Some(127);
            let mut log = OpenOptions::new()
                .append(true)
                .open(&log_path)
                .map_err(|e| Error::io(&log_path, e))?;
            writeln!(log, "# regnet sweep launch: cannot run `{}`: {e}", argv[0])
                .map_err(|e| Error::io(&log_path, e))?;
            false
        }
    };
    Ok(ok)
}

/// The jobs to run (with whether to reset their failures), and the summary of the others.
fn scan(opts: &LaunchOptions) -> Result<(LaunchSummary, VecDeque<(usize, bool)>)> {
    let mut indices = layout::config_indices(&opts.sweep_dir)?;
    if let Some(only) = &opts.only {
        for i in only {
            if !indices.contains(i) {
                return Err(Error::other(format!(
                    "launch: the sweep has no config {}",
                    crate::setup::model_name(*i)
                )));
            }
        }
        indices.retain(|i| only.contains(i));
    }
    let mut summary = LaunchSummary {
        total: indices.len(),
        ..LaunchSummary::default()
    };
    let mut queue = VecDeque::new();
    for &i in &indices {
        let out = layout::out_dir(&opts.sweep_dir, i);
        match layout::job_progress(&out).0 {
            Progress::Finished => summary.already_finished.push(i),
            Progress::Failed if !opts.reset_failed => summary.skipped_failed.push(i),
            _ if opts.dry_run => {
                let line: Vec<String> = opts.argv(i).iter().map(|a| shell_quote(a)).collect();
                summary.commands.push(line.join(" "));
            }
            _ => queue.push_back((i, opts.reset_failed)),
        }
    }
    Ok((summary, queue))
}

/// What became of one turn of a job.
enum Turn {
    /// Ran: succeeded, or failed with or without a retry left.
    Ran { ok: bool, retry: bool },
    /// Finished by another launcher meanwhile.
    FinishedElsewhere,
    /// Failed for good in another launcher meanwhile.
    FailedElsewhere,
    /// Another launcher runs it now.
    Busy(Option<LockOwner>),
}

/// Takes job `i`'s lock, re-reads its state (another launcher may have run it since the
/// scan), and runs one attempt; the lock is released when the state is written.
fn turn(opts: &LaunchOptions, i: usize, reset: bool) -> Result<(Turn, JobState)> {
    let out = layout::out_dir(&opts.sweep_dir, i);
    let _lock = match job_lock::try_lock(&out)? {
        Ok(lock) => lock,
        Err(owner) => return Ok((Turn::Busy(owner), JobState::default())),
    };
    crate::error::remove_stale_temps(&out);
    let (progress, state, _) = layout::job_progress(&out);
    let mut state = state.unwrap_or_default();
    match progress {
        Progress::Finished => return Ok((Turn::FinishedElsewhere, state)),
        Progress::Failed if !reset => return Ok((Turn::FailedElsewhere, state)),
        _ => {}
    }
    if reset && state.failures() > 0 {
        let old = std::mem::take(&mut state.attempts);
        state.previous_attempts.extend(old);
        state.status = JobStatus::Pending;
    }
    let ok = attempt(opts, i, &mut state)?;
    let retry = !ok && state.failures() <= opts.max_retry;
    state.status = if ok {
        JobStatus::Finished
    } else if retry {
        JobStatus::Pending
    } else {
        JobStatus::Failed
    };
    state.write(&out)?;
    Ok((Turn::Ran { ok, retry }, state))
}

/// One line of progress for a turn.
fn progress_line(opts: &LaunchOptions, turn: &Turn, state: &JobState) -> String {
    let a = state.attempts.last();
    let secs = a.and_then(|a| a.seconds).unwrap_or(0.0);
    let code = a.and_then(|a| a.exit_code);
    let failures = state.failures();
    match turn {
        Turn::Ran { ok: true, .. } => format!("finished in {secs:.1} s"),
        Turn::Ran { retry, .. } => {
            let how = code.map_or("was killed".into(), |c| format!("exited with {c}"));
            if *retry {
                format!("{how}; retry {failures} of {}", opts.max_retry)
            } else {
                format!("{how}; failed {failures} times, giving up")
            }
        }
        Turn::FinishedElsewhere => "was finished by another launcher".into(),
        Turn::FailedElsewhere => "failed in another launcher".into(),
        Turn::Busy(owner) => match owner {
            Some(o) => format!(
                "runs in another launcher (pid {} on {}); skipped",
                o.pid, o.host
            ),
            None => "is locked by another launcher; skipped".into(),
        },
    }
}

/// Checks a count of jobs run at once: 1 to [`MAX_JOBS`].
pub fn check_jobs(jobs: usize) -> Result<()> {
    if jobs == 0 {
        return Err(Error::other("launch: --jobs must be at least 1"));
    }
    if jobs > MAX_JOBS {
        return Err(Error::other(format!(
            "launch: --jobs {jobs} is above the limit of {MAX_JOBS} jobs at once"
        )));
    }
    Ok(())
}

/// Runs the sweep's jobs. Each attempt holds the job's lock ([`crate::job_lock`]): jobs
/// that another launcher runs are skipped (listed in `running_elsewhere`), and a job
/// finished meanwhile is not run again.
pub fn run(opts: &LaunchOptions) -> Result<LaunchSummary> {
    check_jobs(opts.jobs)?;
    let (summary, queue) = scan(opts)?;
    if opts.dry_run || queue.is_empty() {
        return Ok(summary);
    }
    crate::error::remove_stale_temps(&opts.sweep_dir);
    let todo = queue.len();
    let queue = Mutex::new(queue);
    let done = Mutex::new((summary, 0usize));
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let worker = || {
        loop {
            // A statement of its own: the queue is unlocked before the job runs.
            let Some((i, reset)) = queue.lock().expect("no panics").pop_front() else {
                return;
            };
            let (turn, state) = match turn(opts, i, reset) {
                Ok(t) => t,
                Err(e) => {
                    first_error.lock().expect("no panics").get_or_insert(e);
                    return;
                }
            };
            let mut d = done.lock().expect("no panics");
            let (list, last) = match &turn {
                Turn::Ran { ok: true, .. } => (Some(&mut d.0.finished), true),
                Turn::Ran { retry: true, .. } => (None, false),
                Turn::Ran { .. } => (Some(&mut d.0.failed), true),
                Turn::FinishedElsewhere => (Some(&mut d.0.already_finished), true),
                Turn::FailedElsewhere => (Some(&mut d.0.skipped_failed), true),
                Turn::Busy(_) => (Some(&mut d.0.running_elsewhere), true),
            };
            if let Some(list) = list {
                list.push(i);
            }
            d.1 += usize::from(last);
            if opts.verbose {
                let name = crate::setup::model_name(i);
                eprintln!(
                    "[{}/{todo}] {name} {}",
                    d.1,
                    progress_line(opts, &turn, &state)
                );
            }
            drop(d);
            if !last {
                queue.lock().expect("no panics").push_back((i, false));
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.min(todo) {
            s.spawn(worker);
        }
    });
    if let Some(e) = first_error.into_inner().expect("no panics") {
        return Err(e);
    }
    let (mut summary, _) = done.into_inner().expect("no panics");
    for list in [
        &mut summary.finished,
        &mut summary.failed,
        &mut summary.already_finished,
        &mut summary.skipped_failed,
        &mut summary.running_elsewhere,
    ] {
        list.sort_unstable();
    }
    Ok(summary)
}

/// The sweep folder's finished and unfinished jobs, without running anything.
pub fn progress(sweep_dir: &Path) -> Result<Vec<(usize, Progress)>> {
    Ok(layout::config_indices(sweep_dir)?
        .into_iter()
        .map(|i| (i, layout::job_progress(&layout::out_dir(sweep_dir, i)).0))
        .collect())
}
