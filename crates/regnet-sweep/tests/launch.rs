//! The local runner (concurrency, retries, resuming) and SLURM script generation.

mod common;

use std::path::Path;
use std::process::Command;

use regnet_sweep::launch::{self, LaunchOptions};
use regnet_sweep::layout::{self, JobState, JobStatus, Progress};
use regnet_sweep::slurm::{self, SlurmOptions};
use regnet_sweep::template::Template;
use regnet_sweep::{SweepConfig, setup};

fn runs(sweep_dir: &Path, i: usize) -> usize {
    std::fs::read_to_string(layout::out_dir(sweep_dir, i).join("runs"))
        .map_or(0, |s| s.trim().parse().unwrap())
}

fn options(sweep_dir: &Path, trainer: &Path, jobs: usize) -> LaunchOptions {
    LaunchOptions {
        sweep_dir: sweep_dir.to_path_buf(),
        name: "s".into(),
        command: Template::parse(&format!(
            "sh {} {{cfg}} {{out_dir}} {{index}}",
            trainer.display()
        ))
        .unwrap(),
        jobs,
        max_retry: 2,
        only: None,
        reset_failed: false,
        dry_run: false,
        verbose: false,
    }
}

#[test]
fn runs_retries_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, dir) = common::small_sweep(tmp.path(), "s", 5, 1);
    setup::run(&file).unwrap();
    let trainer = common::fake_trainer(tmp.path());
    // Job 0 finished before: its log ends with the last test epoch.
    common::write_log(
        &layout::out_dir(&dir, 0),
        &common::log_text(&[(60.0, 50.0), (55.0, 45.0), (50.0, 44.0)], 3),
    );
    let opts = options(&dir, &trainer, 2);
    let s = launch::run(&opts).unwrap();
    assert_eq!(s.total, 5);
    assert_eq!(s.already_finished, vec![0]);
    assert_eq!(s.finished, vec![1, 3, 4]);
    assert_eq!(s.failed, vec![2]);
    assert_eq!(runs(&dir, 0), 0, "finished jobs are not rerun");
    // Job 1 failed once, then finished on its retry.
    assert_eq!(runs(&dir, 1), 2);
    let st1 = JobState::read(&layout::out_dir(&dir, 1)).unwrap();
    assert_eq!(st1.status, JobStatus::Finished);
    assert_eq!(
        st1.attempts.iter().map(|a| a.exit_code).collect::<Vec<_>>(),
        vec![Some(3), Some(0)]
    );
    // Job 2 failed 1 + max_retry times.
    assert_eq!(runs(&dir, 2), 3);
    let st2 = JobState::read(&layout::out_dir(&dir, 2)).unwrap();
    assert_eq!((st2.status, st2.failures()), (JobStatus::Failed, 3));
    let log2 = std::fs::read_to_string(layout::out_dir(&dir, 2).join("stdout.log")).unwrap();
    assert_eq!(log2.matches("# regnet sweep launch: attempt").count(), 3);
    assert!(log2.contains("always fails"));
    // The logs say the jobs finished.
    let progress = launch::progress(&dir).unwrap();
    assert_eq!(
        progress.iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![
            Progress::Finished,
            Progress::Finished,
            Progress::Failed,
            Progress::Finished,
            Progress::Finished
        ]
    );

    // Relaunching runs nothing: finished jobs are done, failed ones are skipped.
    let s = launch::run(&opts).unwrap();
    assert_eq!(s.already_finished, vec![0, 1, 3, 4]);
    assert_eq!(s.skipped_failed, vec![2]);
    assert!(s.finished.is_empty() && s.failed.is_empty());
    assert_eq!((runs(&dir, 1), runs(&dir, 2), runs(&dir, 3)), (2, 3, 1));

    // Resetting failures gives job 2 a fresh budget (it fails again).
    let reset = LaunchOptions {
        reset_failed: true,
        max_retry: 0,
        ..opts.clone()
    };
    let s = launch::run(&reset).unwrap();
    assert_eq!(s.failed, vec![2]);
    assert_eq!(runs(&dir, 2), 4);
    let st2 = JobState::read(&layout::out_dir(&dir, 2)).unwrap();
    assert_eq!((st2.attempts.len(), st2.previous_attempts.len()), (1, 3));
}

#[test]
fn interrupted_jobs_run_again_and_dry_runs_run_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, dir) = common::small_sweep(tmp.path(), "s", 3, 2);
    setup::run(&file).unwrap();
    let trainer = common::fake_trainer(tmp.path());
    // Job 0 was running when the runner stopped: an attempt without an end, a partial log.
    let out0 = layout::out_dir(&dir, 0);
    common::write_log(&out0, &common::log_text(&[(60.0, 50.0)], 3));
    let state = JobState {
        status: JobStatus::Running,
        attempts: vec![layout::Attempt {
            started: 1.0,
            ..Default::default()
        }],
        ..Default::default()
    };
    state.write(&out0).unwrap();
    assert_eq!(layout::job_progress(&out0).0, Progress::Unfinished);

    let dry = LaunchOptions {
        dry_run: true,
        only: Some(vec![0, 2]),
        ..options(&dir, &trainer, 1)
    };
    let s = launch::run(&dry).unwrap();
    assert_eq!(s.commands.len(), 2);
    assert!(s.commands[0].contains("cfgs/000000.yaml") && s.commands[0].contains("logs/000000"));
    assert!(s.commands[1].ends_with(" 000002"));
    assert_eq!(runs(&dir, 0), 0);

    let s = launch::run(&LaunchOptions {
        only: Some(vec![0]),
        ..options(&dir, &trainer, 1)
    })
    .unwrap();
    assert_eq!(s.finished, vec![0]);
    let st = JobState::read(&out0).unwrap();
    // The interrupted attempt does not count as a failure.
    assert_eq!(
        (st.status, st.failures(), st.attempts.len()),
        (JobStatus::Finished, 0, 2)
    );
    assert!(
        launch::run(&LaunchOptions {
            only: Some(vec![7]),
            ..options(&dir, &trainer, 1)
        })
        .is_err()
    );
}

#[test]
fn commands_that_cannot_start_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, dir) = common::small_sweep(tmp.path(), "s", 1, 3);
    setup::run(&file).unwrap();
    let opts = LaunchOptions {
        command: Template::parse("/nonexistent/regnet train --cfg {cfg}").unwrap(),
        max_retry: 1,
        ..options(&dir, Path::new("unused"), 1)
    };
    let s = launch::run(&opts).unwrap();
    assert_eq!(s.failed, vec![0]);
    let log = std::fs::read_to_string(layout::out_dir(&dir, 0).join("stdout.log")).unwrap();
    assert!(log.contains("cannot run `/nonexistent/regnet`"), "{log}");
    let st = JobState::read(&layout::out_dir(&dir, 0)).unwrap();
    assert_eq!(st.failures(), 2);
}

#[test]
fn slurm_array_script() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, dir) = common::small_sweep(tmp.path(), "cifar/s", 4, 4);
    setup::run(&file).unwrap();
    let sweep = SweepConfig::load(&file).unwrap();
    let trainer = common::fake_trainer(tmp.path());
    let regnet = Template::parse("regnet train --cfg {cfg} OUT_DIR {out_dir}").unwrap();
    let opts = SlurmOptions {
        max_parallel: 2,
        ..SlurmOptions::from_sweep(&sweep, regnet, vec![0, 2, 3])
    };
    let script = slurm::script(&opts).unwrap();
    let abs = std::path::absolute(&dir).unwrap().display().to_string();
    for line in [
        "#!/bin/bash\n",
        "#SBATCH --job-name=cifar_s\n",
        "#SBATCH --array=0,2-3%2\n",
        &format!("#SBATCH --output={abs}/logs/slurm-%A_%a.out\n"),
        "#SBATCH --partition=learnfair\n",
        "#SBATCH --gres=gpu:volta:1\n",
        "#SBATCH --cpus-per-task=10\n",
        "#SBATCH --mem=60G\n",
        "#SBATCH --time=4200\n",
        "#SBATCH --signal=B:USR1@120\n",
        "#SBATCH --requeue\n",
        "index=$(printf '%06d' \"$SLURM_ARRAY_TASK_ID\")\n",
        "regnet train --cfg \"${cfg}\" OUT_DIR \"${out_dir}\" >> \"$out_dir/stdout.log\" 2>&1 &\n",
        "scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"\n",
    ] {
        assert!(script.contains(line), "missing {line:?} in\n{script}");
    }
    assert!(!script.contains("--comment"));
    let path = slurm::write(&opts).unwrap();
    assert_eq!(path, dir.join("slurm_array.sh"));
    // The script is valid bash...
    let ok = Command::new("bash").arg("-n").arg(&path).status().unwrap();
    assert!(ok.success());
    // ...and one array task, run by hand with the fake trainer, does what a job should.
    let fake = SlurmOptions {
        command: Template::parse(&format!(
            "sh {} {{cfg}} {{out_dir}} {{index}}",
            trainer.display()
        ))
        .unwrap(),
        ..opts
    };
    let path = slurm::write(&fake).unwrap();
    let st = Command::new("bash")
        .arg(&path)
        .env("SLURM_ARRAY_TASK_ID", "3")
        .env("SLURM_ARRAY_JOB_ID", "77")
        .status()
        .unwrap();
    assert!(st.success());
    let out3 = layout::out_dir(&dir, 3);
    let (progress, state, log) = layout::job_progress(&out3);
    assert_eq!(progress, Progress::Finished);
    assert_eq!(state.unwrap().attempts[0].runner, "slurm");
    assert_eq!(log.unwrap().test.len(), 3);
    assert!(
        std::fs::read_to_string(out3.join("stdout.log"))
            .unwrap()
            .contains("# regnet sweep slurm: job 77_3")
    );
    assert!(
        slurm::script(&SlurmOptions {
            indices: vec![],
            ..fake
        })
        .is_err()
    );
}

/// A slow fake trainer that records each invocation (`OUT_DIR/invocations`, one line per
/// run) and overlaps with other launchers by sleeping, then finishes its one epoch.
fn recording_trainer(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("recording_train.sh");
    std::fs::write(
        &path,
        r#"out="$2"
mkdir -p "$out"
echo "$$" >> "$out/invocations"
sleep 0.2
echo "json_stats: {\"_type\": \"test_epoch\", \"epoch\": \"1/1\", \"top1_err\": 50.0, \"min_top1_err\": 50.0}"
"#,
    )
    .unwrap();
    path
}

fn invocations(sweep_dir: &Path, i: usize) -> usize {
    std::fs::read_to_string(layout::out_dir(sweep_dir, i).join("invocations"))
        .map_or(0, |s| s.lines().count())
}

#[test]
fn concurrent_launches_train_each_job_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, dir) = common::small_sweep(tmp.path(), "c", 8, 4);
    setup::run(&file).unwrap();
    let opts = options(&dir, &recording_trainer(tmp.path()), 2);
    // Three launchers on the same sweep at once, as three terminals (or machines) would.
    let summaries: Vec<launch::LaunchSummary> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(|| launch::run(&opts))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    for i in 0..8 {
        assert_eq!(invocations(&dir, i), 1, "job {i} ran once");
        let out = layout::out_dir(&dir, i);
        let st = JobState::read(&out).unwrap();
        assert_eq!(
            (st.status, st.attempts.len()),
            (JobStatus::Finished, 1),
            "job {i}"
        );
        let log = std::fs::read_to_string(out.join("stdout.log")).unwrap();
        assert_eq!(
            log.matches("# regnet sweep launch: attempt").count(),
            1,
            "job {i}"
        );
        assert!(
            !out.join(regnet_sweep::job_lock::LOCK_FILE).exists(),
            "job {i}'s lock released"
        );
    }
    // Every job was finished by exactly one launcher; the others skipped or found it done.
    let mut finished: Vec<usize> = summaries.iter().flat_map(|s| s.finished.clone()).collect();
    finished.sort_unstable();
    assert_eq!(finished, (0..8).collect::<Vec<_>>());
    for s in &summaries {
        let seen = s.finished.len() + s.already_finished.len() + s.running_elsewhere.len();
        assert_eq!(seen, 8, "{s:?}");
    }
    // A later launch finds everything done.
    let again = launch::run(&opts).unwrap();
    assert_eq!(again.already_finished.len(), 8);
}

#[test]
fn jobs_locked_elsewhere_are_skipped_and_dead_locks_recovered() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, dir) = common::small_sweep(tmp.path(), "l", 3, 4);
    setup::run(&file).unwrap();
    let lock = |i: usize, pid: u32, host: &str| {
        let out = layout::out_dir(&dir, i);
        std::fs::create_dir_all(&out).unwrap();
        let owner = regnet_sweep::job_lock::LockOwner {
            pid,
            host: host.into(),
            since: 0.0,
        };
        let text = serde_json::to_string(&owner).unwrap();
        std::fs::write(out.join(regnet_sweep::job_lock::LOCK_FILE), text).unwrap();
    };
    // Job 0: held by a launcher on another machine. Job 1: left by a dead launcher here
    // (a pid above the kernel's maximum), with a temporary file of a killed write.
    lock(0, 1, "another-host");
    lock(1, 4_194_305, &regnet_sweep::job_lock::hostname());
    let tmp_file = layout::out_dir(&dir, 1).join(".sweep_job.json.tmp4194305");
    std::fs::write(&tmp_file, "{\"status\": \"runn").unwrap();
    let s = launch::run(&options(&dir, &recording_trainer(tmp.path()), 2)).unwrap();
    assert_eq!(s.running_elsewhere, vec![0]);
    assert_eq!(s.finished, vec![1, 2]);
    assert_eq!(invocations(&dir, 0), 0);
    assert!(
        !tmp_file.exists(),
        "the killed write's temporary file is removed"
    );
}

#[test]
fn job_counts_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, dir) = common::small_sweep(tmp.path(), "j", 1, 4);
    setup::run(&file).unwrap();
    let opts = options(&dir, &recording_trainer(tmp.path()), 1_000_000);
    let e = launch::run(&opts).unwrap_err().to_string();
    assert!(
        e.contains("--jobs 1000000 is above the limit of 1024"),
        "{e}"
    );
    assert_eq!(invocations(&dir, 0), 0);
}

/// A SLURM array task takes the job's lock as a local launcher does: it leaves a job held
/// by a live launcher (or another array task) alone, takes over a dead launcher's lock and
/// one left by an earlier run of the same task on another node, holds the lock while it
/// runs (a local launcher sees the job busy), and does not run a finished job again.
#[test]
fn slurm_tasks_take_the_job_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, dir) = common::small_sweep(tmp.path(), "locks", 4, 6);
    setup::run(&file).unwrap();
    let sweep = SweepConfig::load(&file).unwrap();
    // The recording trainer, slow enough for a launcher to look while it runs.
    let trainer = tmp.path().join("slow_train.sh");
    let text = std::fs::read_to_string(recording_trainer(tmp.path())).unwrap();
    std::fs::write(&trainer, text.replace("sleep 0.2", "sleep 1.5")).unwrap();
    let command = Template::parse(&format!("sh {} {{cfg}} {{out_dir}}", trainer.display()));
    let opts = SlurmOptions::from_sweep(&sweep, command.unwrap(), vec![0, 1, 2, 3]);
    let script = slurm::write(&opts).unwrap();
    let task = |i: usize, job: &str| {
        Command::new("bash")
            .arg(&script)
            .env("SLURM_ARRAY_TASK_ID", i.to_string())
            .env("SLURM_ARRAY_JOB_ID", job)
            .spawn()
            .unwrap()
    };
    let run = |i: usize, job: &str| assert!(task(i, job).wait().unwrap().success());
    let host = regnet_sweep::job_lock::hostname();
    let lock = |i: usize, text: String| {
        let out = layout::out_dir(&dir, i);
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join(regnet_sweep::job_lock::LOCK_FILE), text).unwrap();
    };
    let log = |i: usize| std::fs::read_to_string(layout::out_dir(&dir, i).join("stdout.log"));
    // Job 0: held by this (live) process, as a local launcher would hold it.
    let me = format!(
        "{{\"pid\":{},\"host\":\"{host}\",\"since\":1.0}}",
        std::process::id()
    );
    lock(0, me.clone());
    run(0, "77");
    assert_eq!(invocations(&dir, 0), 0, "a held job is not run");
    assert!(log(0).unwrap().contains("running in another launcher"));
    let lock0 = layout::out_dir(&dir, 0).join(regnet_sweep::job_lock::LOCK_FILE);
    assert_eq!(
        std::fs::read_to_string(&lock0).unwrap(),
        me,
        "the holder's lock stays"
    );
    // Job 1: left by a dead launcher here (a pid above the kernel's maximum): taken over.
    lock(
        1,
        format!("{{\"pid\":4194305,\"host\":\"{host}\",\"since\":1.0}}"),
    );
    run(1, "77");
    assert_eq!(invocations(&dir, 1), 1);
    // Job 2: another node's task of another array is left alone; an earlier run of this
    // very task (killed, requeued here) is taken over.
    let remote =
        |t: &str| format!("{{\"pid\":1,\"host\":\"n7\",\"since\":1.0,\"slurm_task\":\"{t}\"}}");
    lock(2, remote("76_2"));
    run(2, "77");
    assert_eq!(invocations(&dir, 2), 0);
    lock(2, remote("77_2"));
    run(2, "77");
    assert_eq!(invocations(&dir, 2), 1);
    // Job 3: while the task runs, a local launcher finds the job busy.
    let out3 = layout::out_dir(&dir, 3);
    let mut child = task(3, "77");
    let t0 = std::time::Instant::now();
    while invocations(&dir, 3) == 0 && t0.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let held = regnet_sweep::job_lock::try_lock(&out3).unwrap();
    let owner = held
        .expect_err("the task holds the lock")
        .expect("readable owner");
    assert_eq!(owner.host, host);
    assert!(child.wait().unwrap().success());
    for i in 1..4 {
        let out = layout::out_dir(&dir, i);
        assert_eq!(layout::job_progress(&out).0, Progress::Finished, "job {i}");
        assert!(
            !out.join(regnet_sweep::job_lock::LOCK_FILE).exists(),
            "job {i} released"
        );
    }
    // A finished job is not run again by a later task.
    run(3, "78");
    assert_eq!(invocations(&dir, 3), 1);
    assert!(log(3).unwrap().contains("finished in another launcher"));
}
