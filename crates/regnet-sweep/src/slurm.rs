//! SLURM job arrays: one array task per unfinished config, at most `max_parallel` at once
//! (`#SBATCH --array=0-31%8`), each running the command template with the task's config.
//!
//! The script appends the job's output to `logs/NNNNNN/stdout.log`, like the local runner,
//! and writes `sweep_job.json` with status `finished` when the command exits with 0, so
//! `launch`, `collect` and `analyze` see SLURM and local jobs alike. Each task takes the
//! job's lock as local launchers do ([`crate::job_lock`]), so that a task and a launcher
//! never run one job at once. Retries are left to
//! relaunching: finished tasks are left out of the next array.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::layout::{JOB_FILE, LOG_FILE};
use crate::sweep_config::SweepConfig;
use crate::template::{Template, shell_quote};

/// What goes into the script.
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    /// The sweep folder.
    pub sweep_dir: PathBuf,
    /// The sweep name (job name, `{name}`).
    pub name: String,
    /// The command template.
    pub command: Template,
    /// The array indices to run.
    pub indices: Vec<usize>,
    /// Tasks run at once (`%M`; 0: no limit).
    pub max_parallel: usize,
    /// Partition (empty: the cluster's default).
    pub partition: String,
    /// GPUs per task.
    pub num_gpus: usize,
    /// GPU type in `--gres` (empty: any).
    pub gpu_type: String,
    /// CPUs per GPU (per task without GPUs).
    pub cpus_per_gpu: usize,
    /// Memory per GPU (per task without GPUs), GB.
    pub mem_per_gpu: usize,
    /// Time limit, minutes.
    pub time_limit: usize,
    /// `--comment` (empty: none).
    pub comment: String,
}

impl SlurmOptions {
    /// Options from the sweep config's `LAUNCH` section.
    pub fn from_sweep(sweep: &SweepConfig, command: Template, indices: Vec<usize>) -> Self {
        let l = &sweep.launch;
        SlurmOptions {
            sweep_dir: sweep.sweep_dir(),
            name: sweep.name.clone(),
            command,
            indices,
            max_parallel: l.parallel_jobs,
            partition: l.partition.clone(),
            num_gpus: l.num_gpus,
            gpu_type: l.gpu_type.clone(),
            cpus_per_gpu: l.cpus_per_gpu,
            mem_per_gpu: l.mem_per_gpu,
            time_limit: l.time_limit,
            comment: l.comment.clone(),
        }
    }
}

/// `--array` value: sorted indices as ranges (`0-3,7,9-10`), then `%max_parallel`.
pub fn array_spec(indices: &[usize], max_parallel: usize) -> String {
    let mut idx = indices.to_vec();
    idx.sort_unstable();
    idx.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && idx[j + 1] == idx[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            idx[i].to_string()
        } else {
            format!("{}-{}", idx[i], idx[j])
        });
        i = j + 1;
    }
    let mut s = parts.join(",");
    if max_parallel > 0 {
        s += &format!("%{max_parallel}");
    }
    s
}

/// The job array script.
pub fn script(opts: &SlurmOptions) -> Result<String> {
    if opts.indices.is_empty() {
        return Err(Error::other("slurm: no jobs left to run"));
    }
    let dir = std::path::absolute(&opts.sweep_dir).unwrap_or(opts.sweep_dir.clone());
    Ok(sbatch_header(opts, &dir) + &task_body(opts, &dir))
}

/// The `#SBATCH` lines: the array, resources, and the signal-then-requeue setup.
fn sbatch_header(opts: &SlurmOptions, dir: &Path) -> String {
    let job_name = opts.name.replace(['/', ' '], "_");
    let per = opts.num_gpus.max(1);
    let mut s = String::from("#!/bin/bash\n");
    let mut sb = |line: String| s.push_str(&format!("#SBATCH {line}\n"));
    sb(format!("--job-name={}", shell_quote(&job_name)));
    sb(format!(
        "--array={}",
        array_spec(&opts.indices, opts.max_parallel)
    ));
    sb(format!("--output={}/logs/slurm-%A_%a.out", dir.display()));
    if !opts.partition.is_empty() {
        sb(format!("--partition={}", opts.partition));
    }
    if opts.num_gpus > 0 {
        let gres = if opts.gpu_type.is_empty() {
            format!("gpu:{}", opts.num_gpus)
        } else {
            format!("gpu:{}:{}", opts.gpu_type, opts.num_gpus)
        };
        sb(format!("--gres={gres}"));
    }
    sb("--nodes=1".into());
    sb("--ntasks-per-node=1".into());
    sb(format!("--cpus-per-task={}", opts.cpus_per_gpu * per));
    sb(format!("--mem={}G", opts.mem_per_gpu * per));
    sb(format!("--time={}", opts.time_limit));
    // As pycls's cluster jobs do: a warning signal before the time limit, then requeue; the
    // requeued task resumes from its last checkpoint (`TRAIN.AUTO_RESUME`).
    sb(format!(
        "--signal=B:USR1@{}",
        signal_lead_s(opts.time_limit)
    ));
    sb("--requeue".into());
    sb("--open-mode=append".into());
    if !opts.comment.is_empty() {
        sb(format!("--comment={}", shell_quote(&opts.comment)));
    }
    s
}

/// The shell part run by each array task: the task's config, the command in the background
/// so that signals reach the shell, requeue on the time-limit signal, the finished marker.
fn task_body(opts: &SlurmOptions, dir: &Path) -> String {
    let dir_q = shell_quote(&dir.display().to_string());
    let cmd = opts.command.shell(|v| v.to_string());
    format!(
        r##"
# regnet sweep {name}: one array task per config.
set -u
sweep_dir={dir_q}
name={name_q}
index=$(printf '%06d' "$SLURM_ARRAY_TASK_ID")
cfg="$sweep_dir/cfgs/$index.yaml"
out_dir="$sweep_dir/logs/$index"
mkdir -p "$out_dir"
echo "# regnet sweep slurm: job ${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}} on $(hostname)" >> "$out_dir/{log}"
start=$(date +%s)
{lock_body}# The command runs in the background so that the shell can take SLURM's signals: USR1 (time
# limit near) asks regnet to stop after its step, then the task is requeued; TERM (preemption,
# scancel, scontrol requeue) is passed on. Only a run that exits 0 is marked finished.
requeue=0
trap 'requeue=1; echo "# regnet sweep slurm: time limit near, stopping and requeueing" >> "$out_dir/{log}"; kill -USR1 "$child" 2>/dev/null' USR1
trap 'kill -TERM "$child" 2>/dev/null' TERM
{cmd} >> "$out_dir/{log}" 2>&1 &
child=$!
while :; do
  wait "$child"
  status=$?
  # A status above 128 with the child alive means a trap interrupted `wait`.
  if [ "$status" -gt 128 ] && kill -0 "$child" 2>/dev/null; then continue; fi
  break
done
if [ "$requeue" -eq 1 ]; then
  scontrol requeue "${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
  exit 0
fi
if [ "$status" -eq 0 ]; then
  printf '{{"status": "finished", "attempts": [{{"started": %s, "seconds": %s, "exit_code": 0, "runner": "slurm"}}]}}\n' \
    "$start" "$(( $(date +%s) - start ))" > "$out_dir/{job}"
fi
exit "$status"
"##,
        name = opts.name,
        name_q = shell_quote(&opts.name),
        log = LOG_FILE,
        job = JOB_FILE,
        lock_body = lock_body(),
    )
}

/// The shell part that takes the job's lock ([`crate::job_lock`]: the same file, format and
/// staleness rules), so that a SLURM task and a local launcher never run one job at once.
/// A lock left by an earlier run of this same array task (killed, then requeued, maybe on
/// another node) is taken over; a job held by a live launcher, or finished since the array
/// was written, is not run again. The lock is removed when the task exits.
fn lock_body() -> String {
    format!(
        r##"# The job's lock, as `regnet sweep launch` takes it.
lock="$out_dir/{lock}"
host=$(cat /proc/sys/kernel/hostname 2>/dev/null || hostname)
task="${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
take_lock() {{
  ( set -o noclobber
    printf '{{"pid":%s,"host":"%s","since":%s,"slurm_task":"%s"}}\n' "$$" "$host" "$start" "$task" > "$lock" ) 2>/dev/null
}}
field() {{ sed -n "s/.*\"$1\": *\"\{{0,1\}}\([^\",}}]*\).*/\1/p" "$lock" 2>/dev/null | head -n 1; }}
if ! take_lock; then
  seen=$(cat "$lock" 2>/dev/null)
  owner_pid=$(field pid); owner_host=$(field host); owner_task=$(field slurm_task)
  stale=0
  if [ -z "$seen" ]; then
    [ -n "$(find "$lock" -mmin +1 2>/dev/null)" ] && stale=1
  elif [ "$owner_task" = "$task" ]; then
    stale=1
  elif [ "$owner_host" = "$host" ] && [ -n "$owner_pid" ] && [ ! -d "/proc/$owner_pid" ]; then
    stale=1
  fi
  if [ "$stale" -eq 1 ]; then
    # Only one process wins the rename; a lock that changed meanwhile is put back.
    mine="$out_dir/.{lock}.stale.regnet-tmp.$$"
    if mv "$lock" "$mine" 2>/dev/null; then
      [ "$(cat "$mine" 2>/dev/null)" = "$seen" ] || ln "$mine" "$lock" 2>/dev/null
      rm -f "$mine"
    fi
  fi
  if [ "$stale" -eq 0 ] || ! take_lock; then
    echo "# regnet sweep slurm: job $index is running in another launcher (${{owner_host:-?}} pid ${{owner_pid:-?}}); not run again" >> "$out_dir/{log}"
    exit 0
  fi
fi
trap 'rm -f "$lock"' EXIT
if grep -q '"status": *"finished"' "$out_dir/{job}" 2>/dev/null; then
  echo "# regnet sweep slurm: job $index finished in another launcher; not run again" >> "$out_dir/{log}"
  exit 0
fi
"##,
        lock = crate::job_lock::LOCK_FILE,
        log = LOG_FILE,
        job = JOB_FILE,
    )
}

/// Seconds before the time limit at which SLURM sends USR1: two minutes, or a quarter of
/// very short limits, so that the current step finishes before the limit.
pub fn signal_lead_s(time_limit_min: usize) -> usize {
    (time_limit_min * 60 / 4).clamp(10, 120)
}

/// Writes the script to `SWEEP/slurm_array.sh`.
pub fn write(opts: &SlurmOptions) -> Result<PathBuf> {
    let path = opts.sweep_dir.join("slurm_array.sh");
    // SLURM opens `--output` in `logs/` before the script runs, and fails the task (no log,
    // signal 53) when the folder does not exist.
    let logs = opts.sweep_dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| Error::other(format!("{}: {e}", logs.display())))?;
    crate::error::write(&path, script(opts)?)?;
    Ok(path)
}

/// Submits a script with `sbatch`; returns its output (the job id line).
pub fn submit(script: &Path) -> Result<String> {
    let out = Command::new("sbatch").arg(script).output().map_err(|e| {
        Error::other(format!(
            "cannot run sbatch ({e}): is SLURM installed and on PATH? (scripts/slurm-local.sh \
                 starts a one-node cluster here)"
        ))
    })?;
    if !out.status.success() {
        // sbatch explains itself over several lines; the error stays on one.
        let why: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(|l| l.trim().trim_start_matches("sbatch: ").to_string())
            .filter(|l| !l.is_empty())
            .collect();
        return Err(Error::other(format!(
            "sbatch {}: {}",
            script.display(),
            why.join("; ")
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_ranges() {
        assert_eq!(array_spec(&[0, 1, 2, 3], 2), "0-3%2");
        assert_eq!(array_spec(&[9, 0, 1, 5, 7, 8], 0), "0-1,5,7-9");
        assert_eq!(array_spec(&[4], 8), "4%8");
    }
}
