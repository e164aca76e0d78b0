//! `regnet sweep` end to end with the real trainer: two design spaces (RegNetX and
//! AnyNetX_A), three tiny models each, one epoch on a Fashion-MNIST subset, collected and
//! analyzed into one report with the error EDFs of both.

mod common;

use std::path::Path;

use common::{fails, ok, regnet};
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

/// A small RegNetX sweep config `NAME.yaml` of `n` models at 32x32 (3 epochs) whose
/// `ANALYZE` section is `analyze`; returns the file and the sweep folder.
fn small_sweep(dir: &Path, name: &str, n: usize, analyze: &str) -> (String, std::path::PathBuf) {
    let yaml = format!(
        "NAME: {name}\nROOT_DIR: sweeps\nSETUP:\n  NUM_CONFIGS: {n}\n  RNG_SEED: 9\n  \
         DESIGN_SPACE: {{NAME: RegNetX, NUM_STAGES: 3, STEM_TYPE: res_stem_cifar, STEM_W: 16, \
         DEPTH: [6, 12], W0: [16, 64], WA: [8.0, 64.0], GROUP_W: [8, 16]}}\n  \
         BASE_CFG: {{MODEL: {{NUM_CLASSES: 10}}, OPTIM: {{MAX_EPOCH: 3}}, TRAIN: {{IM_SIZE: 32}}}}\n\
         LAUNCH:\n  MAX_RETRY: 2\n{analyze}"
    );
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).unwrap();
    (file.to_str().unwrap().into(), dir.join("sweeps").join(name))
}

/// A fake trainer, `sh fake_train.sh CFG OUT_DIR INDEX`: fails once for index 000001 and
/// always for 000002, and otherwise prints pycls `json_stats` lines for 3 epochs with
/// errors depending on the index.
fn fake_trainer(dir: &Path) -> String {
    let path = dir.join("fake_train.sh");
    std::fs::write(
        &path,
        r#"cfg="$1"; out="$2"; i="$3"
mkdir -p "$out"
n=$(cat "$out/runs" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$out/runs"
test -f "$cfg" || { echo "no config $cfg"; exit 9; }
case "$i" in
  000001) if [ "$n" -lt 2 ]; then echo "Traceback: simulated crash"; exit 3; fi ;;
  000002) echo "always fails"; exit 1 ;;
esac
k=$(echo "$i" | sed 's/^0*//'); k=${k:-0}
for e in 1 2 3; do
  echo "json_stats: {\"_type\": \"train_epoch\", \"epoch\": \"$e/3\", \"top1_err\": 6$e.5, \"loss\": 1.0, \"lr\": 0.1, \"time_epoch\": 1.0}"
  echo "json_stats: {\"_type\": \"test_epoch\", \"epoch\": \"$e/3\", \"top1_err\": 5$k.$e, \"min_top1_err\": 5$k.$e}"
done
"#,
    )
    .unwrap();
    format!("sh {} {{cfg}} {{out_dir}} {{index}}", path.display())
}

/// Every step of `regnet sweep` with a fake trainer: setup (and its refusal to overwrite),
/// dry run, launch with retries, SLURM script of what is left, collect, analyze.
#[test]
fn sweep_commands_with_a_fake_trainer() {
    let tmp = tempfile::tempdir().unwrap();
    let (f, dir) = small_sweep(tmp.path(), "cli", 4, "");
    let f = f.as_str();
    let cmd = fake_trainer(tmp.path());
    ok(&["sweep", "setup", "--sweep-cfg", f]);
    assert!(dir.join("cfgs/000003.yaml").is_file());
    assert!(fails(&["sweep", "setup", "--sweep-cfg", f]).contains("--force"));
    let json: Value = serde_json::from_str(&ok(&[
        "sweep",
        "setup",
        "--sweep-cfg",
        f,
        "--force",
        "--json",
    ]))
    .unwrap();
    assert_eq!(json["models"].as_array().unwrap().len(), 4);
    let dry = ok(&["sweep", "launch", "--sweep-cfg", f, "--dry-run"]);
    assert_eq!(dry.lines().count(), 4, "{dry}");
    assert!(!dir.join("logs").exists(), "a dry run runs nothing");
    let s = ok(&[
        "sweep",
        "launch",
        "--sweep-cfg",
        f,
        "-j",
        "2",
        "--command",
        &cmd,
        "-q",
    ]);
    assert!(s.contains("3 finished now, 1 failed now"), "{s}");
    assert!(dir.join("logs/000003/stdout.log").is_file());
    ok(&[
        "sweep",
        "launch",
        "--sweep-cfg",
        f,
        "--slurm",
        "--max-parallel",
        "3",
    ]);
    let script = std::fs::read_to_string(dir.join("slurm_array.sh")).unwrap();
    assert!(
        script.contains("#SBATCH --array=2%3"),
        "only the failed job is left:\n{script}"
    );
    // The default command is this binary's `train` subcommand.
    assert!(script.contains(" train --quiet --cfg \"${cfg}\" OUT_DIR \"${out_dir}\""));
    let c = ok(&["sweep", "collect", dir.to_str().unwrap()]);
    assert!(
        c.contains("4 models, 3 finished, 0 unfinished, 1 failed"),
        "{c}"
    );
    let out = tmp.path().join("an");
    let o = out.to_str().unwrap();
    ok(&["sweep", "analyze", f, "--out", o, "--rounds", "200"]);
    assert!(out.join("report.html").is_file() && out.join("edf.svg").is_file());
    ok(&["sweep", "analyze", dir.to_str().unwrap()]);
    assert!(dir.join("analysis/report.html").is_file());
    assert!(
        !regnet(&["sweep", "analyze"]).status.success(),
        "needs a sweep"
    );
    let e = fails(&[
        "sweep",
        "launch",
        "--sweep-cfg",
        f,
        "--command",
        "echo {out_dir}",
    ]);
    assert!(e.contains("{cfg}"), "{e}");
    assert!(fails(&["sweep", "analyze", f, "--rounds", "99999999"]).contains("--rounds"));
}

/// `ANALYZE` keys drive the report, read from the sweep config or the sweep folder's copy.
#[test]
fn analyze_keys_drive_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let analyze = "ANALYZE:\n  METRICS: [regnet_wa, lr]\n  COMPLEXITY: [flops]\n  \
                   PLOT_CURVES_BEST: 1\n  PLOT_CURVES_WORST: 0\n  PLOT_MODELS_BEST: 0\n  \
                   PLOT_MODELS_WORST: 1\n";
    let (f, dir) = small_sweep(tmp.path(), "keys", 5, analyze);
    ok(&["sweep", "setup", "--sweep-cfg", &f]);
    let cmd = fake_trainer(tmp.path());
    ok(&[
        "sweep",
        "launch",
        "--sweep-cfg",
        &f,
        "--command",
        &cmd,
        "-q",
    ]);
    for (input, out) in [(f.clone(), "a"), (dir.display().to_string(), "b")] {
        let out = tmp.path().join(out);
        let json = ok(&[
            "sweep",
            "analyze",
            &input,
            "--out",
            out.to_str().unwrap(),
            "--json",
        ]);
        let s: Value = serde_json::from_str(&json).unwrap();
        let files: Vec<String> = (s["svg_files"].as_array().unwrap().iter())
            .map(|p| p.as_str().unwrap().rsplit('/').next().unwrap().to_string())
            .collect();
        let has = |p: &str| files.iter().any(|f| f.starts_with(p));
        assert!(
            has("keys_error_vs_flops") && has("keys_error_vs_regnet_wa"),
            "{files:?}"
        );
        assert!(
            !has("keys_error_vs_params") && !has("keys_error_vs_regnet_w0"),
            "{files:?}"
        );
        assert!(
            has("keys_curves_best_1_") && !has("keys_curves_best_2_"),
            "{files:?}"
        );
        assert!(
            !has("keys_widths_best_") && has("keys_widths_worst_1_"),
            "{files:?}"
        );
        let html = std::fs::read_to_string(out.join("report.html")).unwrap();
        // lr is the same for every model: said, not plotted.
        assert!(html.contains("lr: the same for every model"), "lr note");
    }
    // The flags override the keys.
    let out = tmp.path().join("c");
    let json = ok(&[
        "sweep",
        "analyze",
        &f,
        "--out",
        out.to_str().unwrap(),
        "--best",
        "2",
        "--json",
    ]);
    assert!(json.contains("keys_widths_best_2_"), "{json}");
    // A metric regnet's results do not hold is refused, naming the key.
    let (bad, _) = small_sweep(tmp.path(), "bad", 2, "ANALYZE:\n  METRICS: [memory]\n");
    let e = fails(&["sweep", "analyze", &bad]);
    assert!(e.contains("ANALYZE.METRICS") && e.contains("memory"), "{e}");
}

/// `regnet fit` on widths, on stages, on a zoo model and on overrides; bad input fails.
#[test]
fn fit_command() {
    let s = ok(&[
        "fit",
        "--widths",
        "24,56,152,152,152,152,368,368,368,368,368,368,368",
    ]);
    assert!(s.contains("e_fit"), "{s}");
    let j: Value = serde_json::from_str(&ok(&[
        "fit",
        "--depths",
        "3,4,6,3",
        "--stage-widths",
        "256,512,1024,2048",
        "--json",
    ]))
    .unwrap();
    assert_eq!(j["depth"], 16);
    let s = ok(&["fit", "RegNetX-200MF"]);
    assert!(
        s.contains("config   w0 = 24, wa = 36.44, wm = 2.49, d = 13"),
        "{s}"
    );
    ok(&[
        "fit",
        "MODEL.TYPE",
        "regnet",
        "REGNET.DEPTH",
        "14",
        "--wm-max",
        "2.6",
    ]);
    assert!(fails(&["fit"]).contains("nothing to fit"));
    fails(&["fit", "--widths", "8,0"]);
    assert!(
        !regnet(&["fit", "--depths", "1,2"]).status.success(),
        "--depths needs --stage-widths"
    );
}
