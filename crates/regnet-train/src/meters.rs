//! Errors and logs as pycls computes and writes them: top-k errors in percent per
//! mini-batch, epoch averages weighted by batch size, and `json_stats: {...}` lines (sorted
//! keys, floats to 4 significant decimals) that sweep tools read.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use serde_json::{Map, Value};

/// Top-k errors (percent) of `logits [n, classes]` against `labels`, for each k.
pub fn topk_errors(logits: &[f32], classes: usize, labels: &[i64], ks: &[usize]) -> Vec<f64> {
    let n = labels.len();
    let mut wrong = vec![0usize; ks.len()];
    for (i, &label) in labels.iter().enumerate() {
        let row = &logits[i * classes..(i + 1) * classes];
        let target = row[label as usize];
        // Rank of the label: how many classes score higher (ties count against it, as a
        // stable top-k would put earlier classes first).
        let higher = row
            .iter()
            .enumerate()
            .filter(|&(k, &v)| v > target || (v == target && k < label as usize))
            .count();
        for (j, &k) in ks.iter().enumerate() {
            if higher >= k.min(classes) {
                wrong[j] += 1;
            }
        }
    }
    wrong
        .iter()
        .map(|&w| 100.0 * w as f64 / n.max(1) as f64)
        .collect()
}

/// Accumulates an epoch's statistics.
#[derive(Clone, Debug, Default)]
pub struct EpochMeter {
    samples: usize,
    top1_wrong: f64,
    top5_wrong: f64,
    loss_total: f64,
    /// Seconds per iteration, summed.
    pub time_total: f64,
    /// Iterations.
    pub iters: usize,
}

impl EpochMeter {
    /// Adds one mini-batch (errors in percent, mean loss).
    pub fn update(&mut self, top1: f64, top5: f64, loss: f64, batch: usize, seconds: f64) {
        self.samples += batch;
        self.top1_wrong += top1 * batch as f64 / 100.0;
        self.top5_wrong += top5 * batch as f64 / 100.0;
        self.loss_total += loss * batch as f64;
        self.time_total += seconds;
        self.iters += 1;
    }

    /// Top-1 error of the epoch, percent.
    pub fn top1_err(&self) -> f64 {
        100.0 * self.top1_wrong / self.samples.max(1) as f64
    }

    /// Top-5 error of the epoch, percent.
    pub fn top5_err(&self) -> f64 {
        100.0 * self.top5_wrong / self.samples.max(1) as f64
    }

    /// Mean loss of the epoch.
    pub fn loss(&self) -> f64 {
        self.loss_total / self.samples.max(1) as f64
    }

    /// Mean seconds per iteration.
    pub fn time_avg(&self) -> f64 {
        self.time_total / self.iters.max(1) as f64
    }

    /// Samples seen.
    pub fn samples(&self) -> usize {
        self.samples
    }
}

/// Peak memory of this process in MB, the `mem` of pycls's `json_stats` lines. pycls reports
/// the GPU's peak allocation; on the CPU the peak resident set size (`VmHWM`) is the
/// equivalent. 0 where the OS does not say (not Linux).
pub fn peak_mem_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb.div_ceil(1024))
}

/// `"e/E"`, 1-based.
pub fn epoch_str(epoch: usize, max_epoch: usize) -> String {
    format!("{}/{}", epoch + 1, max_epoch)
}

/// pycls's `time_string`: `"d,hh:mm:ss"`.
pub fn time_string(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    let (days, rem) = (s / 86400, s % 86400);
    format!(
        "{},{:02}:{:02}:{:02}",
        days,
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn round4(v: f64) -> Value {
    // pycls writes floats with 4 decimals (float_to_decimal(prec=4)).
    if !v.is_finite() {
        return Value::String(v.to_string());
    }
    let r = (v * 1e4).round() / 1e4;
    serde_json::Number::from_f64(r)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// A `json_stats:` line of type `kind` from `(key, value)` pairs (floats rounded).
pub fn json_stats(kind: &str, fields: &[(&str, Value)]) -> String {
    let mut map = Map::new();
    for (k, v) in fields {
        let v = match v {
            Value::Number(n) if n.is_f64() => round4(n.as_f64().unwrap_or(f64::NAN)),
            other => other.clone(),
        };
        map.insert((*k).to_string(), v);
    }
    map.insert("_type".into(), Value::String(kind.into()));
    // serde_json's Map is sorted by key, as pycls's sort_keys=True.
    format!("json_stats: {}", Value::Object(map))
}

/// Writes log lines to stdout and appends them to `OUT_DIR/stdout.log`.
pub struct Logger {
    file: Option<File>,
    quiet: bool,
}

impl Logger {
    /// A logger appending to `dir/stdout.log`.
    pub fn new(dir: &Path, quiet: bool) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("stdout.log"))?;
        Ok(Logger {
            file: Some(file),
            quiet,
        })
    }

    /// A logger that only prints (no file).
    pub fn stdout_only(quiet: bool) -> Self {
        Logger { file: None, quiet }
    }

    /// Logs one line.
    pub fn line(&mut self, line: &str) {
        if !self.quiet {
            println!("{line}");
        }
        if let Some(f) = &mut self.file {
            // A full disk must not stop training; the line still went to stdout.
            let _ = writeln!(f, "{line}");
            let _ = f.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topk_by_hand() {
        let logits = [0.1, 0.7, 0.2, 0.9, 0.05, 0.05, 0.3, 0.3, 0.4];
        // Sample 0: label 1 is top-1. Sample 1: label 2 is last (rank 2). Sample 2: label 0
        // ties with class 1 and loses to class 2: rank 1.
        let e = topk_errors(&logits, 3, &[1, 2, 0], &[1, 2, 3]);
        assert!((e[0] - 200.0 / 3.0).abs() < 1e-9);
        assert!((e[1] - 100.0 / 3.0).abs() < 1e-9);
        assert_eq!(e[2], 0.0);
    }

    #[test]
    fn meter_weights_by_batch() {
        let mut m = EpochMeter::default();
        m.update(50.0, 10.0, 2.0, 2, 0.1);
        m.update(0.0, 0.0, 1.0, 6, 0.3);
        assert!((m.top1_err() - 12.5).abs() < 1e-12);
        assert!((m.loss() - 1.25).abs() < 1e-12);
        assert!((m.time_avg() - 0.2).abs() < 1e-12);
    }

    #[test]
    fn json_line_format() {
        let line = json_stats(
            "train_epoch",
            &[
                ("epoch", Value::from("1/10")),
                ("loss", Value::from(0.123456)),
                ("mem", Value::from(0)),
            ],
        );
        assert_eq!(
            line,
            r#"json_stats: {"_type":"train_epoch","epoch":"1/10","loss":0.1235,"mem":0}"#
        );
        assert_eq!(time_string(3725.0), "0,01:02:05");
    }

    #[test]
    fn peak_memory_grows_with_a_large_allocation() {
        let before = peak_mem_mb();
        let v = vec![1u8; 64 << 20];
        std::hint::black_box(&v);
        let after = peak_mem_mb();
        if cfg!(target_os = "linux") {
            assert!(before > 0, "VmHWM read");
            // The peak includes the 64 MB just written (other tests may have peaked higher).
            assert!(after >= 64 && after >= before, "{before} MB -> {after} MB");
        }
    }
}
