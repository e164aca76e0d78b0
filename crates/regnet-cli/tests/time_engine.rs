//! `regnet time --forward-only`: the compiled engine by default on the CPU, burn on
//! request, the SIMD level forced by `REGNET_SIMD` and reported in the JSON.

mod common;

use std::process::Command;

use common::fails;
use serde_json::Value;

const ARGS: &[&str] = &[
    "time",
    "RegNetX-200MF",
    "--forward-only",
    "--batch",
    "1",
    "--im-size",
    "32",
    "--warmup",
    "0",
    "--iters",
    "1",
    "--json",
];

fn time_json(extra: &[&str], simd: Option<&str>) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regnet"));
    cmd.args(ARGS).args(extra);
    match simd {
        Some(s) => cmd.env("REGNET_SIMD", s),
        None => cmd.env_remove("REGNET_SIMD"),
    };
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn compiled_by_default_with_the_detected_level() {
    let v = time_json(&[], None);
    assert_eq!(v["engine"], "compiled");
    let level = regnet_infer::SimdLevel::detect().to_string();
    assert_eq!(v["simd_level"], level.as_str());
    assert!(v["test_fw_time"].as_f64().unwrap() > 0.0);
}

#[test]
fn portable_level_forced_by_the_environment() {
    let v = time_json(&[], Some("portable"));
    assert_eq!(v["simd_level"], "portable");
}

#[test]
fn burn_engine_on_request() {
    let v = time_json(&["--engine", "burn"], None);
    assert_eq!(v["engine"], "burn");
}

#[test]
fn bad_engine_and_level_are_one_line_errors() {
    let mut args = ARGS.to_vec();
    args.extend(["--engine", "onnx"]);
    assert!(fails(&args).contains("onnx"));
    let out = Command::new(env!("CARGO_BIN_EXE_regnet"))
        .args(ARGS)
        .env("REGNET_SIMD", "sse9")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("REGNET_SIMD") && err.contains("sse9"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

/// The training step times the optimizer `OPTIM.OPTIMIZER` names, and says which.
#[test]
fn train_step_times_the_configured_optimizer() {
    let timed = |extra: &[&str]| {
        // Batch 2: a training step needs two images for BN's batch variance.
        let mut args = vec![
            "time",
            "RegNetX-200MF",
            "--batch",
            "2",
            "--im-size",
            "32",
            "--warmup",
            "0",
            "--iters",
            "1",
            "--json",
        ];
        args.extend(extra);
        let out = common::ok(&args);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert!(v["train_step_time"].as_f64().unwrap() > 0.0, "{v}");
        v["train_optimizer"].as_str().unwrap().to_string()
    };
    assert_eq!(timed(&[]), "sgd");
    assert_eq!(timed(&["OPTIM.OPTIMIZER", "adamw"]), "adamw");
    assert_eq!(timed(&["OPTIM.OPTIMIZER", "adam"]), "adam");
}

#[test]
fn per_layer_times_on_request() {
    let v = time_json(&["--layers"], None);
    let layers = v["layers"].as_array().expect("a layers array");
    let stem = layers
        .iter()
        .find(|l| l["layer"] == "conv 3x3 3->32 /2 at 32x32")
        .expect("the stem conv");
    // Batch 1, one timed iteration: the stem ran once, 16 x 16 x 32 outputs of 27 MACs.
    assert_eq!(stem["calls"], 1);
    assert_eq!(stem["macs"], 16 * 16 * 32 * 27);
    assert!(layers.iter().all(|l| l["seconds"].as_f64().unwrap() > 0.0));
    assert!(v.get("layers").is_some() && time_json(&[], None).get("layers").is_none());
    let mut args = ARGS.to_vec();
    args.extend(["--layers", "--engine", "burn"]);
    assert!(fails(&args).contains("--layers"));
}

/// Sizes and counts from flags are bounded before anything is allocated from them: a zero or
/// an over-limit value, and a batch whose activations the compiled engine or the machine
/// cannot hold, are one-line errors, not an abort or a silent batch of 1.
#[test]
fn sizes_beyond_the_limits_are_refused() {
    let with = |flags: &[&str]| {
        let mut args = vec!["time", "RegNetX-200MF"];
        args.extend(flags);
        fails(&args)
    };
    let cases: [(&[&str], &str); 7] = [
        (&["--batch", "0"], "--batch 0: must be at least 1"),
        (&["--im-size", "0"], "--im-size 0: must be at least 1"),
        (&["--batch", "100000"], "--batch 100000 is above the limit"),
        (
            &["--im-size", "9999999"],
            "--im-size 9999999 is above the limit",
        ),
        (&["--iters", "10000000000"], "--warmup/--iters:"),
        (
            &["--forward-only", "--batch", "64", "--im-size", "4096"],
            "batch 64 at 4096x4096 needs activations of",
        ),
        (
            &[
                "--forward-only",
                "--engine",
                "burn",
                "--batch",
                "1024",
                "--im-size",
                "8192",
            ],
            "byte limit",
        ),
    ];
    for (flags, want) in cases {
        let err = with(flags);
        assert!(
            err.contains(want) && err.trim().lines().count() == 1,
            "{flags:?}: {err}"
        );
    }
}
