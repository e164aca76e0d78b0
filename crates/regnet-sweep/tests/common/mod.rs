//! Helpers shared by the integration tests: a small sweep, pycls-style logs, a fake
//! trainer.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A small CIFAR-size RegNet sweep config (fast to sample) named `name` with `n` configs,
/// written to `dir/<name>.yaml`; returns the file and the sweep folder.
pub fn small_sweep(dir: &Path, name: &str, n: usize, seed: u64) -> (PathBuf, PathBuf) {
    let yaml = format!(
        r#"NAME: {name}
ROOT_DIR: sweeps
SETUP:
  NUM_CONFIGS: {n}
  RNG_SEED: {seed}
  DESIGN_SPACE: {{NAME: RegNetX, NUM_STAGES: 3, STEM_TYPE: res_stem_cifar, STEM_W: 16, DEPTH: [6, 12], W0: [16, 64], WA: [8.0, 64.0], GROUP_W: [8, 16]}}
  BASE_CFG:
    MODEL: {{NUM_CLASSES: 10}}
    OPTIM: {{MAX_EPOCH: 3}}
    TRAIN: {{IM_SIZE: 32}}
LAUNCH:
  MAX_RETRY: 2
"#
    );
    let file = dir.join(format!("{}.yaml", name.replace('/', "_")));
    std::fs::write(&file, yaml).unwrap();
    (file, dir.join("sweeps").join(name))
}

/// pycls-style log text: `json_stats` lines of `(train_err, test_err)` per epoch, out of
/// `max_epoch`.
pub fn log_text(epochs: &[(f64, f64)], max_epoch: usize) -> String {
    let mut s = String::from(
        "[trainer.py: 155]: json_stats: {\"_type\": \"complexity\", \"acts\": 1, \"flops\": 2, \"params\": 3}\n",
    );
    let mut min = 100.0f64;
    for (i, (tr, te)) in epochs.iter().enumerate() {
        let e = i + 1;
        min = min.min(*te);
        s += &format!(
            "[meters.py: 177]: json_stats: {{\"_type\": \"train_epoch\", \"epoch\": \"{e}/{max_epoch}\", \"eta\": \"00:00:01\", \"loss\": 1.2345, \"lr\": 0.1000, \"mem\": 120, \"time_avg\": 0.0100, \"time_epoch\": 2.5000, \"top1_err\": {tr:.4}, \"top5_err\": 10.0000}}\n"
        );
        s += &format!(
            "[meters.py: 260]: json_stats: {{\"_type\": \"test_epoch\", \"epoch\": \"{e}/{max_epoch}\", \"mem\": 120, \"min_top1_err\": {min:.4}, \"min_top5_err\": 1.0000, \"time_avg\": 0.0050, \"time_epoch\": 0.5000, \"top1_err\": {te:.4}, \"top5_err\": 2.0000}}\n"
        );
    }
    s
}

/// Writes `text` as the job's `stdout.log`.
pub fn write_log(out_dir: &Path, text: &str) {
    std::fs::create_dir_all(out_dir).unwrap();
    std::fs::write(out_dir.join("stdout.log"), text).unwrap();
}

/// A fake trainer, `sh fake_train.sh CFG OUT_DIR INDEX`: counts its runs in
/// `OUT_DIR/runs`, fails once for index 000001 and always for 000002, and otherwise prints
/// pycls `json_stats` lines for 3 epochs with errors depending on the index.
pub fn fake_trainer(dir: &Path) -> PathBuf {
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
    path
}
