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

/// Starts `regnet` with `args` (a run into `dir`), kills it (SIGKILL) during epoch 2 and
/// checks what it left: epoch 1's checkpoint, no later one, no stray temporary files.
fn kill_during_epoch_2(args: &[String], dir: &Path) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_regnet"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let log = std::fs::read_to_string(dir.join("stdout.log")).unwrap_or_default();
        if log.contains(r#""epoch":"2/3","eta""#) && log.contains(r#""iter":"3/32""#) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "run never reached epoch 2: {}",
            args.join(" ")
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(checkpoint(dir, 1).exists(), "epoch 1 was saved");
    assert!(!checkpoint(dir, 2).exists(), "killed mid-epoch 2");
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty() || leftovers.iter().all(|n| n.starts_with('.')),
        "{leftovers:?}"
    );
}

/// Asserts that the epoch-3 checkpoints of runs `a` and `b` hold the same weights.
fn assert_same_final_weights(a: &Path, b: &Path) {
    let (ta, _) = read_safetensors_tensors(&checkpoint(a, 3)).unwrap();
    let (tb, _) = read_safetensors_tensors(&checkpoint(b, 3)).unwrap();
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
}

#[test]
fn killed_run_resumes_to_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let args_a = args(&a);
    ok(&args_a.iter().map(String::as_str).collect::<Vec<_>>());

    // Run B: killed during epoch 2, then run again: resumes at epoch 2 and ends as A did.
    let args_b = args(&b);
    kill_during_epoch_2(&args_b, &b);
    ok(&args_b.iter().map(String::as_str).collect::<Vec<_>>());
    let log_b = std::fs::read_to_string(b.join("stdout.log")).unwrap();
    assert!(log_b.contains("resuming at epoch 2"), "{log_b}");
    assert_same_final_weights(&a, &b);
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

/// The step line of `regnet train` on pycls's 8-GPU zoo recipes gives the batch per step,
/// the replicas and their batch, and the learning rates pycls computes
/// (`tools/reference/pycls_step_plan.py`). The data set is absent here, so training stops
/// after the line with a one-line data error.
#[test]
fn zoo_config_prints_pycls_step_and_learning_rate() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pycls_step_plan.json");
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    let configs = common::reference_dir().join("pycls/configs/dds_baselines");
    let tmp = tempfile::tempdir().unwrap();
    for (name, p) in want.as_object().unwrap() {
        let out_dir = tmp.path().join(name.replace('/', "_"));
        let cfg = configs.join(name);
        let args = [
            "train",
            "--cfg",
            cfg.to_str().unwrap(),
            "OUT_DIR",
            out_dir.to_str().unwrap(),
            "EXT.DATA_PATH",
            "/nonexistent/imagenet",
        ];
        let out = common::regnet(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: no ImageNet here");
        assert!(stderr.contains("/nonexistent/imagenet"), "{name}: {stderr}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let line = stdout
            .lines()
            .find(|l| l.starts_with("Step: "))
            .unwrap_or_else(|| panic!("{name}: no step line in {stdout}"));
        let int = |k: &str| p[k].as_u64().unwrap();
        let step = format!(
            "batch {} (TRAIN.BATCH_SIZE) = NUM_GPUS {} x {} images per replica",
            int("batch"),
            int("num_gpus"),
            int("replica_batch")
        );
        assert!(line.contains(&step), "{name}: {line} lacks {step}");
        let number_after = |prefix: &str| -> f64 {
            let rest =
                &line[line.find(prefix).unwrap_or_else(|| panic!("{line}")) + prefix.len()..];
            rest.split([' ', ';']).next().unwrap().parse().unwrap()
        };
        for (prefix, key) in [("learning rate ", "base_lr"), ("epoch 1 at ", "epoch1_lr")] {
            let (got, want) = (number_after(prefix), p[key].as_f64().unwrap());
            assert!(
                (got - want).abs() < 1e-9,
                "{name}: {key} {got} vs pycls {want}"
            );
        }
        let log = std::fs::read_to_string(out_dir.join("stdout.log")).unwrap();
        assert!(log.contains(line), "{name}: the log holds the line");
    }
    // pycls refuses a batch that NUM_GPUS does not split.
    let o = tmp.path().join("odd");
    let err = fails(&["train", "OUT_DIR", o.to_str().unwrap(), "NUM_GPUS", "3"]);
    assert!(
        err.contains("TRAIN.BATCH_SIZE") && err.contains("NUM_GPUS 3"),
        "{err}"
    );
}

/// The model tensors of a checkpoint (no EMA, optimizer state or BN running statistics).
fn trained_tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let (sd, _) = read_safetensors_tensors(path).unwrap();
    sd.tensors
        .into_iter()
        .filter(|(k, _)| {
            !k.starts_with("ema.")
                && !k.starts_with("momentum_buffer.")
                && !k.contains("running_")
                && !k.contains("num_batches_tracked")
        })
        .map(|(k, v)| (k, v.data))
        .collect()
}

/// `TRAIN.WEIGHTS` initialises training (pycls: when there is no checkpoint to resume):
/// at a learning rate of 0 the trained weights are exactly the initial ones.
#[test]
fn train_weights_initialise_training() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    let one_epoch = |out: &Path| {
        let mut v = args(out);
        let pos = v.iter().position(|s| s == "OPTIM.MAX_EPOCH").unwrap();
        v[pos + 1] = "1".into();
        v
    };
    ok(&one_epoch(&a).iter().map(String::as_str).collect::<Vec<_>>());
    let start = checkpoint(&a, 1);
    let frozen = |out: &Path, weights: Option<&Path>| {
        let mut v = one_epoch(out);
        v.extend(["OPTIM.BASE_LR".into(), "0".into()]);
        if let Some(w) = weights {
            v.extend(["TRAIN.WEIGHTS".into(), w.to_str().unwrap().into()]);
        }
        v
    };
    ok(&frozen(&b, Some(&start))
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    let log = std::fs::read_to_string(b.join("stdout.log")).unwrap();
    assert!(
        log.contains(&format!("Loaded initial weights from: {}", start.display())),
        "{log}"
    );
    assert_eq!(trained_tensors(&checkpoint(&b, 1)), trained_tensors(&start));
    // Without TRAIN.WEIGHTS the same run keeps pycls's initialisation instead.
    ok(&frozen(&c, None)
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert_ne!(trained_tensors(&checkpoint(&c, 1)), trained_tensors(&start));
    // A missing file is a one-line error naming it.
    let d = tmp.path().join("d");
    let missing = tmp.path().join("missing.safetensors");
    let v = frozen(&d, Some(&missing));
    let err = fails(&v.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
    let url = Path::new("https://dl.fbaipublicfiles.com/pycls/x.pyth");
    let err = fails(
        &frozen(&d, Some(url))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        err.contains("TRAIN.WEIGHTS") && err.contains("is a URL"),
        "{err}"
    );

    test_weights_as_in_pycls(&a, &start);
}

/// `regnet test --cfg F` tests `TEST.WEIGHTS`; `--weights` is a shortcut that wins over it;
/// with neither, a one-line error names the key.
fn test_weights_as_in_pycls(run: &Path, weights: &Path) {
    let cfg = run.join("config.yaml");
    let (cfg, weights) = (cfg.to_str().unwrap(), weights.to_str().unwrap());
    let err = fails(&["test", "--cfg", cfg]);
    assert!(err.contains("TEST.WEIGHTS"), "{err}");
    let top1 = |out: String| -> f64 {
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["top1_err"].as_f64().unwrap()
    };
    let by_key = top1(ok(&[
        "test",
        "--cfg",
        cfg,
        "--json",
        "TEST.WEIGHTS",
        weights,
    ]));
    let by_flag = top1(ok(&["test", "--cfg", cfg, "--json", "--weights", weights]));
    assert_eq!(by_key, by_flag);
    let logged = test_errors(run);
    let logged: f64 = logged[0].split(' ').nth(2).unwrap().parse().unwrap();
    assert!(
        (by_key - logged).abs() < 1e-3,
        "{by_key} vs logged {logged}"
    );
    // --weights wins over a TEST.WEIGHTS that does not exist.
    let both = [
        "test",
        "--cfg",
        cfg,
        "--json",
        "TEST.WEIGHTS",
        "/nonexistent.pyth",
    ];
    let mut with_flag = both.to_vec();
    with_flag.extend(["--weights", weights]);
    assert_eq!(top1(ok(&with_flag)), by_key);
    let err = fails(&both);
    assert!(err.contains("/nonexistent.pyth"), "{err}");
    // pycls downloads URLs; regnet says it does not.
    let url = "https://dl.fbaipublicfiles.com/pycls/dds_baselines/x.pyth";
    let err = fails(&["test", "--cfg", cfg, "TEST.WEIGHTS", url]);
    assert!(
        err.contains("TEST.WEIGHTS") && err.contains("is a URL"),
        "{err}"
    );
}
