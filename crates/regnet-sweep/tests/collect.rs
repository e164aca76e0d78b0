//! Collecting hand-written logs: finished, unfinished, failed, not started, garbage lines.

mod common;

use std::path::Path;

use regnet_sweep::collect::{self, SweepResults};
use regnet_sweep::layout::{self, Attempt, JobState, JobStatus, Progress};
use regnet_sweep::setup;

/// Writes the logs and job states of the six jobs of `dir`: 0 finished (resumed), 1
/// unfinished, 2 failed, 3 finished with garbage lines, 4 not started, 5 finished without
/// stats.
fn write_jobs(dir: &Path) {
    let out = |i| layout::out_dir(dir, i);
    // 0: finished; its best test error is at epoch 2; epoch 3 was logged twice (resumed).
    let mut log0 = common::log_text(&[(60.0, 50.0), (55.0, 41.5), (50.0, 47.0)], 3);
    log0 += "json_stats: {\"_type\": \"test_epoch\", \"epoch\": \"3/3\", \"top1_err\": 42.2500, \"min_top1_err\": 41.5000}\n";
    log0 += "json_stats: {\"_type\": \"test_ema_epoch\", \"epoch\": \"3/3\", \"top1_err\": 40.0, \"min_top1_err\": 40.0}\n";
    common::write_log(&out(0), &log0);
    // 1: unfinished (1 of 3 epochs), no job state (e.g. run by hand).
    common::write_log(&out(1), &common::log_text(&[(70.0, 65.0)], 3));
    // 2: failed for good.
    common::write_log(
        &out(2),
        "Traceback (most recent call last):\nRuntimeError: CUDA out of memory\n",
    );
    JobState {
        status: JobStatus::Failed,
        attempts: (0..4)
            .map(|_| Attempt {
                started: 1.0,
                seconds: Some(2.0),
                exit_code: Some(1),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
    .write(&out(2))
    .unwrap();
    // 3: finished, with garbage among the lines.
    let mut log3 = String::from("json_stats: {this is not json\n");
    log3 += &common::log_text(&[(58.0, 48.0), (52.0, 45.0), (49.0, 44.5)], 3);
    log3 += "json_stats: {\"_type\": \"train_epoch\", \"epoch\": \"three\"}\n";
    log3 += "some other line json_stats: [1, 2]\n";
    common::write_log(&out(3), &log3);
    // 4: not started. 5: finished by its done marker, but no json_stats lines.
    common::write_log(&out(5), "done without stats\n");
    JobState {
        status: JobStatus::Finished,
        attempts: vec![Attempt {
            started: 1.0,
            seconds: Some(30.0),
            exit_code: Some(0),
            ..Default::default()
        }],
        ..Default::default()
    }
    .write(&out(5))
    .unwrap();
}

#[test]
fn collects_every_kind_of_job() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, dir) = common::small_sweep(tmp.path(), "c", 6, 5);
    let summary = setup::run(&file).unwrap();
    write_jobs(&dir);
    let r = collect::run(&dir).unwrap();
    assert_eq!(
        r,
        SweepResults::load(&dir).unwrap(),
        "sweep.json holds the results"
    );
    assert_eq!(r.name, "c");
    assert_eq!(r.design_space.as_deref(), Some("RegNetX"));
    let c = &r.counts;
    assert_eq!(
        (c.total, c.finished, c.unfinished, c.failed, c.not_started),
        (6, 3, 1, 1, 1)
    );
    assert_eq!(r.unfinished, vec!["000001"]);
    assert_eq!(r.failed, vec!["000002"]);
    assert_eq!(r.not_started, vec!["000004"]);
    check_resumed_job(&r, &summary);
    check_other_jobs(&r);

    // A sweep folder or its config file name the same sweep.
    assert_eq!(collect::resolve_sweep_dir(&file).unwrap(), dir);
    assert_eq!(collect::resolve_sweep_dir(&dir).unwrap(), dir);
    assert!(collect::resolve_sweep_dir(&tmp.path().join("nope")).is_err());
}

/// Job 0: its epochs, errors and times from the log, its config from the setup.
fn check_resumed_job(r: &SweepResults, summary: &setup::SetupSummary) {
    let m0 = &r.models[0];
    assert_eq!(m0.status, Progress::Finished);
    assert_eq!((m0.epochs.len(), m0.epochs_done, m0.max_epoch), (3, 3, 3));
    assert_eq!(m0.min_test_err, Some(41.5));
    assert_eq!(
        m0.final_test_err,
        Some(42.25),
        "the last line of a repeated epoch wins"
    );
    assert_eq!(m0.min_ema_err, Some(40.0));
    assert_eq!(m0.epochs[1].train_err, Some(55.0));
    assert_eq!(m0.epochs[2].test_ema_err, Some(40.0));
    assert_eq!(m0.train_time, Some(7.5));
    assert_eq!(m0.error(), Some(41.5));
    // Config, complexity and sampled parameters come with each model.
    assert_eq!(m0.complexity, summary.models[0].complexity);
    assert_eq!(m0.sampled, summary.models[0].sampled);
    assert_eq!(m0.stages, summary.models[0].stages);
    assert_eq!(
        m0.cfg["REGNET"]["DEPTH"],
        summary.models[0].sampled["REGNET.DEPTH"]
    );
    assert_eq!(
        m0.regnet.unwrap().depth as u64,
        m0.cfg["REGNET"]["DEPTH"].as_u64().unwrap()
    );
}

/// Jobs 1 to 5: unfinished, failed, garbage lines, not started, no stats.
fn check_other_jobs(r: &SweepResults) {
    let m1 = &r.models[1];
    assert_eq!(
        (m1.status, m1.epochs_done, m1.min_test_err),
        (Progress::Unfinished, 1, Some(65.0))
    );
    let m2 = &r.models[2];
    assert_eq!(
        (m2.status, m2.attempts, m2.last_exit_code),
        (Progress::Failed, 4, Some(1))
    );
    assert_eq!((m2.epochs.len(), m2.wall_time), (0, Some(8.0)));
    let m3 = &r.models[3];
    assert_eq!((m3.status, m3.garbage_lines), (Progress::Finished, 3));
    assert_eq!(m3.min_test_err, Some(44.5));
    assert_eq!(r.models[4].status, Progress::NotStarted);
    let m5 = &r.models[5];
    assert_eq!((m5.status, m5.min_test_err), (Progress::Finished, None));
    // Only finished models with an error are analyzed.
    assert_eq!(
        r.finished().map(|m| m.index).collect::<Vec<_>>(),
        vec![0, 3]
    );
}
