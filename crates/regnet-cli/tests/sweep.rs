//! `regnet sweep` end to end with the real trainer: two design spaces (RegNetX and
//! AnyNetX_A), three tiny models each, one epoch on a Fashion-MNIST subset, collected and
//! analyzed into one report with the error EDFs of both.

mod common;

use std::path::Path;

use common::ok;
use serde_json::Value;

/// A sweep config of `space` (3 models of 0.3-1.2 MF at 28x28) trained by `regnet train`.
fn write_sweep(dir: &Path, name: &str, space: &str) -> String {
    let space = match space {
        "RegNetX" => "{NAME: RegNetX, NUM_STAGES: 3, STEM_TYPE: res_stem_cifar, STEM_W: 8, \
                      DEPTH: [3, 6], W0: [8, 16], WA: [4.0, 16.0], WM: [2.0, 3.0], GROUP_W: [4, 8]}"
            .to_string(),
        _ => "{NAME: AnyNetX_A, NUM_STAGES: 3, STEM_TYPE: res_stem_cifar, STEM_W: 8, \
              DEPTH: [1, 2], WIDTH: [8, 48]}"
            .to_string(),
    };
    let yaml = format!(
        r#"NAME: {name}
ROOT_DIR: sweeps
SETUP:
  NUM_CONFIGS: 3
  RNG_SEED: 7
  DESIGN_SPACE: {space}
  CONSTRAINTS:
    CX:
      FLOPS: [0.3e+6, 1.2e+6]
  BASE_CFG:
    MODEL: {{NUM_CLASSES: 10}}
    EXT: {{IN_CHANNELS: 1, TRAIN_SUBSET: 1024, TEST_SUBSET: 500}}
    BN: {{NUM_SAMPLES_PRECISE: 64}}
    OPTIM: {{BASE_LR: 0.1, MAX_EPOCH: 1, EMA_UPDATE_PERIOD: 0}}
    TRAIN: {{DATASET: fashion_mnist, BATCH_SIZE: 64, IM_SIZE: 28}}
    TEST: {{DATASET: fashion_mnist, BATCH_SIZE: 250, IM_SIZE: 28}}
LAUNCH:
  MAX_RETRY: 0
"#
    );
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).unwrap();
    file.to_str().unwrap().to_string()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn two_design_spaces_trained_collected_and_compared() {
    let tmp = tempfile::tempdir().unwrap();
    let sweeps = [
        ("regnetx", write_sweep(tmp.path(), "regnetx", "RegNetX")),
        (
            "anynetx_a",
            write_sweep(tmp.path(), "anynetx_a", "AnyNetX_A"),
        ),
    ];
    for (name, file) in &sweeps {
        ok(&["sweep", "setup", "--sweep-cfg", file]);
        let dir = tmp.path().join("sweeps").join(name);
        // Every written config is a `regnet train` input whose complexity `regnet info`
        // counts as the sampler did.
        let setup = read_json(&dir.join("setup.json"));
        let models = setup["models"].as_array().unwrap();
        assert_eq!(models.len(), 3, "{name}");
        for m in models {
            let cfg = dir.join(m["cfg"].as_str().unwrap());
            let info: Value =
                serde_json::from_str(&ok(&["info", "--cfg", cfg.to_str().unwrap(), "--json"]))
                    .unwrap();
            for k in ["flops", "params", "acts"] {
                assert_eq!(info[k], m["complexity"][k], "{name} {k}");
            }
            let flops = info["flops"].as_u64().unwrap();
            assert!((300_000..=1_200_000).contains(&flops), "{flops}");
        }
        ok(&["sweep", "launch", "--sweep-cfg", file, "-j", "2", "-q"]);
        ok(&["sweep", "collect", file]);
        let results = read_json(&dir.join("sweep.json"));
        assert_eq!(results["counts"]["finished"], 3, "{name}: {results}");
        for m in results["models"].as_array().unwrap() {
            let err = m["final_test_err"].as_f64().unwrap();
            // One epoch on 1024 images: well under chance (90% error), above zero.
            assert!(err > 0.0 && err < 80.0, "{name} {}: {err}", m["name"]);
            assert_eq!(m["epochs_done"], 1);
        }
        // Each log line once: the trainer writes the log the launcher appends to.
        let log = dir.join("logs/000000/stdout.log");
        let before = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            before.matches("\"_type\":\"test_epoch\"").count(),
            1,
            "{before}"
        );
        // A second launch finds nothing left to do and trains nothing again.
        ok(&["sweep", "launch", "--sweep-cfg", file, "-q"]);
        assert_eq!(std::fs::read_to_string(&log).unwrap(), before);
    }
    let out = tmp.path().join("report");
    ok(&[
        "sweep",
        "analyze",
        &sweeps[0].1,
        &sweeps[1].1,
        "--out",
        out.to_str().unwrap(),
        "--rounds",
        "100",
    ]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let edf = std::fs::read_to_string(out.join("edf.svg")).unwrap();
    assert!(
        edf.contains("regnetx: n=3 min=") && edf.contains("anynetx_a: n=3 min="),
        "both sweeps in the EDF legend"
    );
    assert!(
        html.contains(edf[edf.find("<svg").unwrap()..].trim()),
        "EDF inline"
    );
    assert!(html.contains("2 Error EDF") && html.contains("5 Best and worst models"));
    assert!(out.join("edf_normalized.svg").is_file());
}

/// Two `regnet sweep launch` processes on one sweep (as two terminals or machines would
/// start them): every job is trained exactly once, by one of them.
#[test]
fn two_concurrent_launch_processes_train_each_job_once() {
    let tmp = tempfile::tempdir().unwrap();
    // A fake trainer that records each invocation and runs long enough to overlap.
    let trainer = tmp.path().join("train.sh");
    std::fs::write(
        &trainer,
        "mkdir -p \"$2\"; echo $$ >> \"$2/invocations\"; sleep 0.3\n\
         echo 'json_stats: {\"_type\": \"test_epoch\", \"epoch\": \"1/1\", \"top1_err\": 50.0}'\n",
    )
    .unwrap();
    let yaml = format!(
        "NAME: twice\nROOT_DIR: sweeps\nSETUP:\n  NUM_CONFIGS: 6\n  RNG_SEED: 2\n  \
         DESIGN_SPACE: {{NAME: RegNetX, NUM_STAGES: 3, STEM_TYPE: res_stem_cifar}}\n  \
         BASE_CFG: {{MODEL: {{NUM_CLASSES: 10}}, TRAIN: {{IM_SIZE: 32}}}}\n\
         LAUNCH:\n  MAX_RETRY: 0\n  COMMAND: \"sh {} {{cfg}} {{out_dir}}\"\n",
        trainer.display()
    );
    let file = tmp.path().join("twice.yaml");
    std::fs::write(&file, yaml).unwrap();
    let file = file.to_str().unwrap();
    ok(&["sweep", "setup", "--sweep-cfg", file]);
    let launch = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_regnet"))
            .args(["sweep", "launch", "--sweep-cfg", file, "-j", "2", "-q"])
            .output()
            .expect("regnet runs")
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(launch);
        let b = s.spawn(launch);
        (a.join().unwrap(), b.join().unwrap())
    });
    for out in [&a, &b] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let logs = tmp.path().join("sweeps/twice/logs");
    let mut pids = std::collections::BTreeSet::new();
    for i in 0..6 {
        let runs = std::fs::read_to_string(logs.join(format!("{i:06}/invocations"))).unwrap();
        assert_eq!(runs.lines().count(), 1, "job {i} ran once: {runs:?}");
        pids.insert(runs.trim().to_string());
        assert!(!logs.join(format!("{i:06}/sweep_job.lock")).exists());
    }
    assert_eq!(pids.len(), 6, "each run is its own trainer process");
}
