//! `regnet sweep launch --slurm` on a real SLURM cluster: a tiny sweep submitted as a job
//! array, one task requeued mid-training (as a preemption or a time limit would), and every
//! job finished exactly once with the weights of an uninterrupted run.
//!
//! The cluster tests need running SLURM daemons: `scripts/slurm-local.sh start` brings up a
//! one-node cluster on this machine, and `.ci/run` runs them with `--ignored`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{fails, ok};
use regnet_nn::weights::read_safetensors_tensors;
use serde_json::Value;

/// A sweep of `n` tiny RegNets, 3 epochs of 1024 Fashion-MNIST images each, for SLURM
/// (one CPU and 1 GB per task, partition `partition` or the cluster's default).
fn write_sweep(dir: &Path, name: &str, n: usize, partition: &str) -> String {
    let yaml = format!(
        r#"NAME: {name}
ROOT_DIR: sweeps
SETUP:
  NUM_CONFIGS: {n}
  RNG_SEED: 3
  DESIGN_SPACE: {{NAME: RegNetX, NUM_STAGES: 3, STEM_TYPE: res_stem_cifar, STEM_W: 8,
                 DEPTH: [3, 6], W0: [8, 16], WA: [4.0, 16.0], WM: [2.0, 3.0], GROUP_W: [4, 8]}}
  CONSTRAINTS:
    CX:
      FLOPS: [0.3e+6, 1.2e+6]
  BASE_CFG:
    MODEL: {{NUM_CLASSES: 10}}
    EXT: {{IN_CHANNELS: 1, TRAIN_SUBSET: 1024, TEST_SUBSET: 500}}
    BN: {{NUM_SAMPLES_PRECISE: 64}}
    OPTIM: {{BASE_LR: 0.1, MAX_EPOCH: 3, EMA_UPDATE_PERIOD: 0}}
    TRAIN: {{DATASET: fashion_mnist, BATCH_SIZE: 32, IM_SIZE: 28}}
    TEST: {{DATASET: fashion_mnist, BATCH_SIZE: 250, IM_SIZE: 28}}
    LOG_PERIOD: 1
LAUNCH:
  PARTITION: "{partition}"
  NUM_GPUS: 0
  CPUS_PER_GPU: 1
  MEM_PER_GPU: 1
  TIME_LIMIT: 30
  PARALLEL_JOBS: 1
"#
    );
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).unwrap();
    file.to_str().unwrap().to_string()
}

fn slurm_cmd(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e} (is SLURM up? scripts/slurm-local.sh start)"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Waits until `done()` or fails after `limit`, printing the queue on the way.
fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {what}; queue:\n{}",
            slurm_cmd("squeue", &[])
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "slurm test: {what} after {:.0} s",
        start.elapsed().as_secs_f64()
    );
}

fn log_of(dir: &Path, index: usize) -> String {
    std::fs::read_to_string(dir.join(format!("logs/{index:06}/stdout.log"))).unwrap_or_default()
}

/// Whether a task's log shows it a few steps into its second epoch (after the first
/// epoch's checkpoint).
fn in_second_epoch(log: &str) -> bool {
    log.contains(r#""epoch":"2/3","eta""#) && log.contains(r#""iter":"3/32""#)
}

fn checkpoint(out: &Path, epoch: usize) -> PathBuf {
    out.join(format!("checkpoints/model_epoch_{epoch:04}.safetensors"))
}

#[test]
#[ignore = "needs a SLURM cluster: scripts/slurm-local.sh start, then --ignored"]
fn sweep_on_slurm_requeued_mid_training_finishes_each_job_once() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_sweep(tmp.path(), "slurm_tiny", 2, "");
    let dir = tmp.path().join("sweeps/slurm_tiny");
    ok(&["sweep", "setup", "--sweep-cfg", &file]);
    let out = ok(&[
        "sweep",
        "launch",
        "--sweep-cfg",
        &file,
        "--slurm",
        "--submit",
    ]);
    eprintln!("slurm test: {}", out.trim());
    let job = out
        .lines()
        .find_map(|l| l.strip_prefix("Submitted batch job "))
        .unwrap_or_else(|| panic!("no job id in {out}"))
        .trim()
        .to_string();
    let script = std::fs::read_to_string(dir.join("slurm_array.sh")).unwrap();
    assert!(script.contains("#SBATCH --requeue") && script.contains("--signal=B:USR1@"));

    // Task 0 is preempted in its second epoch, after the first epoch's checkpoint.
    wait_for("task 0 in epoch 2", Duration::from_secs(600), || {
        in_second_epoch(&log_of(&dir, 0))
    });
    slurm_cmd("scontrol", &["requeue", &format!("{job}_0")]);
    eprintln!("slurm test: scontrol requeue {job}_0");
    // Task 1 gets the time-limit warning that `--signal=B:USR1@...` sends to the batch
    // shell: it stops the trainer after its step and requeues itself.
    wait_for("task 1 in epoch 2", Duration::from_secs(600), || {
        in_second_epoch(&log_of(&dir, 1))
    });
    slurm_cmd(
        "scancel",
        &["--batch", "--signal=USR1", &format!("{job}_1")],
    );
    eprintln!("slurm test: scancel --batch --signal=USR1 {job}_1");
    wait_for(
        "the job array to leave the queue",
        Duration::from_secs(900),
        || slurm_cmd("squeue", &["-h", "-j", &job]).trim().is_empty(),
    );

    ok(&["sweep", "collect", &file]);
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(results["counts"]["finished"], 2, "{results}");
    for i in 0..2 {
        let log = log_of(&dir, i);
        assert_stopped_and_resumed(i, &log);
        // Each epoch was trained to its end once.
        assert_eq!(
            log.matches("\"_type\":\"test_epoch\"").count(),
            3,
            "job {i}: {log}"
        );
    }
    assert!(log_of(&dir, 1).contains("time limit near, stopping and requeueing"));

    // Each requeued job ends with the weights of an uninterrupted run of its config.
    for i in 0..2 {
        let d = max_weight_diff_to_uninterrupted(&dir, i, &tmp.path().join(format!("ref{i}")));
        eprintln!("slurm test: task {i}: requeued vs uninterrupted weights, max |diff| {d:e}");
        assert!(d <= 1e-6, "requeued task {i} differs by {d}");
    }
}

/// Trains config `i` of the sweep without interruption into `out` and returns the largest
/// difference between its final weights and the sweep job's.
fn max_weight_diff_to_uninterrupted(dir: &Path, i: usize, out: &Path) -> f32 {
    let cfg = dir.join(format!("cfgs/{i:06}.yaml"));
    let cfg = cfg.to_str().unwrap();
    ok(&[
        "train",
        "--quiet",
        "--cfg",
        cfg,
        "OUT_DIR",
        out.to_str().unwrap(),
    ]);
    let (a, _) = read_safetensors_tensors(&checkpoint(out, 3)).unwrap();
    let job = dir.join(format!("logs/{i:06}"));
    let (b, _) = read_safetensors_tensors(&checkpoint(&job, 3)).unwrap();
    assert_eq!(a.tensors.len(), b.tensors.len());
    let mut max_diff = 0.0f32;
    for (name, x) in &a.tensors {
        for (p, q) in x.data.iter().zip(&b.tensors[name].data) {
            max_diff = max_diff.max((p - q).abs());
        }
    }
    max_diff
}

/// Task `i` ran twice, stopped after a step on the signal, and resumed in the epoch it
/// stopped in.
fn assert_stopped_and_resumed(i: usize, log: &str) {
    let starts = log.matches("# regnet sweep slurm: job").count();
    let stop = log
        .lines()
        .find(|l| l.starts_with("Stop requested at epoch "))
        .unwrap_or_else(|| panic!("task {i} never stopped: {log}"));
    eprintln!("slurm test: task {i}: {starts} starts; {stop}");
    assert_eq!(starts, 2, "task {i}: {log}");
    let epoch: usize = stop["Stop requested at epoch ".len()..]
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        log.contains(&format!("resuming at epoch {epoch}")),
        "task {i}: {log}"
    );
}

#[test]
#[ignore = "needs a SLURM cluster: scripts/slurm-local.sh start, then --ignored"]
fn unknown_partition_is_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_sweep(tmp.path(), "slurm_bad_partition", 1, "no_such_partition");
    ok(&["sweep", "setup", "--sweep-cfg", &file]);
    let err = fails(&[
        "sweep",
        "launch",
        "--sweep-cfg",
        &file,
        "--slurm",
        "--submit",
    ]);
    assert!(err.contains("sbatch") && err.contains("partition"), "{err}");
}

#[test]
fn missing_sbatch_is_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_sweep(tmp.path(), "slurm_no_sbatch", 1, "");
    ok(&["sweep", "setup", "--sweep-cfg", &file]);
    let out = Command::new(env!("CARGO_BIN_EXE_regnet"))
        .args([
            "sweep",
            "launch",
            "--sweep-cfg",
            &file,
            "--slurm",
            "--submit",
        ])
        .env("PATH", tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("cannot run sbatch"), "{err}");
}
