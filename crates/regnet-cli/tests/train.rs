//! `regnet train` / `regnet test` end to end on a small subset of Fashion-MNIST: a run killed
//! with SIGKILL mid-epoch resumes and ends exactly where an uninterrupted run ends; a
//! diverging run stops with a clear message and leaves the last checkpoint untouched.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fails, ok};
use regnet_nn::weights::read_safetensors_tensors;

/// A tiny RegNet, 3 epochs of 1024 training images.
fn args(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = vec!["train".into(), "--quiet".into()];
    for (k, val) in [
        ("OUT_DIR", out.to_str().unwrap()),
        ("OPTIM.MAX_EPOCH", "3"),
        ("REGNET.DEPTH", "4"),
        ("REGNET.W0", "8"),
        ("REGNET.WA", "8"),
        ("REGNET.WM", "2.0"),
        ("REGNET.GROUP_W", "4"),
        ("REGNET.STEM_W", "8"),
        ("TRAIN.BATCH_SIZE", "32"),
        ("EXT.TRAIN_SUBSET", "1024"),
        ("EXT.TEST_SUBSET", "500"),
        ("BN.NUM_SAMPLES_PRECISE", "64"),
        ("OPTIM.EMA_UPDATE_PERIOD", "4"),
        ("TRAIN.LABEL_SMOOTHING", "0.1"),
        ("TRAIN.MIXUP_ALPHA", "0.2"),
        ("LOG_PERIOD", "1"),
    ] {
        v.push(k.into());
        v.push(val.into());
    }
    v
}

fn checkpoint(out: &Path, epoch: usize) -> PathBuf {
    out.join(format!("checkpoints/model_epoch_{epoch:04}.safetensors"))
}

fn test_errors(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out.join("stdout.log"))
        .unwrap()
        .lines()
        .filter(|l| {
            l.contains("\"_type\":\"test_epoch\"") || l.contains("\"_type\":\"test_ema_epoch\"")
        })
        .map(|l| {
            // Drop the timings, keep the errors.
            let v: serde_json::Value =
                serde_json::from_str(l.trim_start_matches("json_stats: ")).unwrap();
            format!(
                "{} {} {} {}",
                v["_type"], v["epoch"], v["top1_err"], v["top5_err"]
            )
        })
        .collect()
}

#[test]
fn killed_run_resumes_to_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let strs = |v: &[String]| v.iter().map(String::as_str).collect::<Vec<_>>().join(" ");
    let args_a = args(&a);
    ok(&args_a.iter().map(String::as_str).collect::<Vec<_>>());

    // Run B: killed during epoch 2.
    let args_b = args(&b);
    let mut child = Command::new(env!("CARGO_BIN_EXE_regnet"))
        .args(&args_b)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let log = std::fs::read_to_string(b.join("stdout.log")).unwrap_or_default();
        if log.contains(r#""epoch":"2/3","eta""#) && log.contains(r#""iter":"3/32""#) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "run B never reached epoch 2: {}",
            strs(&args_b)
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "run B ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(checkpoint(&b, 1).exists(), "epoch 1 was saved");
    assert!(!checkpoint(&b, 2).exists(), "killed mid-epoch 2");
    let leftovers: Vec<_> = std::fs::read_dir(b.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty() || leftovers.iter().all(|n| n.starts_with('.')),
        "{leftovers:?}"
    );

    // Run B again: resumes at epoch 2 and ends as run A did.
    ok(&args_b.iter().map(String::as_str).collect::<Vec<_>>());
    let log_b = std::fs::read_to_string(b.join("stdout.log")).unwrap();
    assert!(log_b.contains("resuming at epoch 2"), "{log_b}");
    let (ta, _) = read_safetensors_tensors(&checkpoint(&a, 3)).unwrap();
    let (tb, _) = read_safetensors_tensors(&checkpoint(&b, 3)).unwrap();
    assert_eq!(ta.tensors.len(), tb.tensors.len());
    for (name, x) in &ta.tensors {
        let y = &tb.tensors[name];
        let d = x
            .data
            .iter()
            .zip(&y.data)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max);
        assert!(d <= 1e-6, "{name} differs by {d} after resuming");
    }
    // Same test errors for the epochs both runs finished (B logs epoch 1 once, then 2 and 3).
    let (ea, eb) = (test_errors(&a), test_errors(&b));
    assert_eq!(ea, eb);

    // The checkpoint tests as its log says, and the config.yaml is a valid config.
    let out = ok(&[
        "test",
        "--weights",
        checkpoint(&a, 3).to_str().unwrap(),
        "--json",
        "EXT.TEST_SUBSET",
        "500",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let last_test = ea
        .iter()
        .rfind(|l| l.starts_with("\"test_epoch\""))
        .unwrap();
    let logged: f64 = last_test.split(' ').nth(2).unwrap().parse().unwrap();
    assert!(
        (v["top1_err"].as_f64().unwrap() - logged).abs() < 1e-3,
        "{out} vs {last_test}"
    );
    ok(&["info", "--cfg", a.join("config.yaml").to_str().unwrap()]);
    assert!(a.join("curves.svg").exists());
    // A second start of a finished run does nothing, and reports the last epoch's error
    // (it printed NaN before).
    let mut again: Vec<&str> = args_a.iter().map(String::as_str).collect();
    again.push("--json");
    let v: serde_json::Value = serde_json::from_str(&ok(&again)).unwrap();
    assert!(
        (v["test_err"].as_f64().unwrap() - logged).abs() < 1e-6,
        "{v} vs {last_test}"
    );
}

#[test]
fn diverging_run_stops_and_keeps_the_last_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut a = args(&out);
    // One good epoch.
    let pos = a.iter().position(|s| s == "OPTIM.MAX_EPOCH").unwrap();
    a[pos + 1] = "1".into();
    ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let good = std::fs::read(checkpoint(&out, 1)).unwrap();
    // Then an absurd learning rate: the loss overflows in epoch 2.
    a[pos + 1] = "3".into();
    a.extend(["OPTIM.BASE_LR".to_string(), "1e30".to_string()]);
    let err = fails(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        err.contains("training diverged") && err.contains("epoch 2"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(checkpoint(&out, 1)).unwrap(),
        good,
        "last good checkpoint untouched"
    );
    assert!(!checkpoint(&out, 2).exists());
}

#[test]
fn bad_training_configs_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let o = out.to_str().unwrap();
    let err = fails(&["train", "OUT_DIR", o, "TRAIN.DATASET", "fashion_mnst"]);
    assert!(
        err.contains("TRAIN.DATASET") && err.contains("fashion_mnst"),
        "{err}"
    );
    let err = fails(&["train", "OUT_DIR", o, "OPTIM.LR_POLICY", "cosine"]);
    assert!(err.contains("OPTIM.LR_POLICY"), "{err}");
    let err = fails(&["train", "OUT_DIR", o, "TRAIN.MIXED_PRECISION", "True"]);
    assert!(err.contains("TRAIN.MIXED_PRECISION"), "{err}");
    let err = fails(&["train", "OUT_DIR", o, "TRAIN.AUGMENT", "AutoAugment"]);
    assert!(err.contains("TRAIN.AUGMENT"), "{err}");
    let err = fails(&["train", "OUT_DIR", o, "EXT.DATA_PATH", "/nonexistent/data"]);
    assert!(err.contains("/nonexistent/data"), "{err}");
    let err = fails(&["train", "OUT_DIR", o, "MODEL.NUM_CLASSES", "5"]);
    assert!(err.contains("MODEL.NUM_CLASSES"), "{err}");
}

/// AdamW trains, checkpoints its moments and steps, and a run resumed from the epoch-1
/// checkpoint ends bit-for-bit where the uninterrupted run ended (lost moments would not).
#[test]
fn adamw_resumes_to_the_same_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("adamw");
    let mut a = args(&out);
    let pos = a.iter().position(|s| s == "OPTIM.MAX_EPOCH").unwrap();
    a[pos + 1] = "2".into();
    for (k, v) in [("OPTIM.OPTIMIZER", "adamw"), ("OPTIM.BASE_LR", "0.003")] {
        a.extend([k.to_string(), v.to_string()]);
    }
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    ok(&a);
    let (first, _) = read_safetensors_tensors(&checkpoint(&out, 2)).unwrap();
    assert!(
        first
            .tensors
            .keys()
            .any(|k| k.starts_with("momentum_buffer.exp_avg_sq.")),
        "Adam state is checkpointed"
    );
    std::fs::remove_file(checkpoint(&out, 2)).unwrap();
    ok(&a);
    let (again, _) = read_safetensors_tensors(&checkpoint(&out, 2)).unwrap();
    assert_eq!(first, again, "resumed AdamW run differs");
    // The state of one optimizer does not resume another.
    let sgd: Vec<&str> = a
        .iter()
        .map(|s| if *s == "adamw" { "sgd" } else { s })
        .collect();
    std::fs::remove_file(checkpoint(&out, 2)).unwrap();
    let err = fails(&sgd);
    assert!(err.contains("OPTIM.OPTIMIZER is sgd"), "{err}");
}
