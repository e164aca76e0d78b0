//! pycls's training log format: lines tagged `json_stats: ` followed by one JSON object with
//! a `_type` (pycls `core/logging.py`).
//!
//! The types pycls writes are `cfg` (the full config), `complexity` (`flops`, `params`,
//! `acts`), `train_iter` and `test_iter` (every `LOG_PERIOD` iterations), and `train_epoch`,
//! `test_epoch` and `test_ema_epoch` (once an epoch). Epoch stats carry `"epoch": "e/E"`
//! (1-based, out of `OPTIM.MAX_EPOCH`), errors in percent (`top1_err`, `top5_err`, and for
//! tests `min_top1_err`), `loss`, `lr` (train), `time_avg`, `time_epoch` (seconds) and `mem`
//! (MB). The tag may follow any prefix (`[trainer.py: 123]: json_stats: {...}`).
//!
//! Parsing is lenient: lines without the tag are ignored, and tagged lines that are not
//! JSON objects, or whose `epoch` is not `e/E`, are counted as garbage and skipped (pycls
//! would stop). When an epoch appears twice (a run resumed from a checkpoint repeats the
//! interrupted epoch), the last line wins.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::error::Result;

/// The tag pycls puts before each stats object.
pub const TAG: &str = "json_stats: ";

/// The stats of one epoch of one phase.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based epoch.
    pub epoch: usize,
    /// Epochs in the run (`OPTIM.MAX_EPOCH`).
    pub max_epoch: usize,
    /// Top-1 error, percent.
    pub top1_err: Option<f64>,
    /// Top-5 error, percent.
    pub top5_err: Option<f64>,
    /// Best top-1 error so far (tests), percent.
    pub min_top1_err: Option<f64>,
    /// Loss (training).
    pub loss: Option<f64>,
    /// Learning rate (training).
    pub lr: Option<f64>,
    /// Seconds for the epoch.
    pub time_epoch: Option<f64>,
    /// Peak memory, MB.
    pub mem: Option<f64>,
}

/// Everything a log says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogData {
    /// The `cfg` line, if any.
    pub cfg: Option<Json>,
    /// The `complexity` line, if any.
    pub complexity: Option<Json>,
    /// `train_epoch` lines by epoch.
    pub train: BTreeMap<usize, EpochStats>,
    /// `test_epoch` lines by epoch.
    pub test: BTreeMap<usize, EpochStats>,
    /// `test_ema_epoch` lines by epoch.
    pub test_ema: BTreeMap<usize, EpochStats>,
    /// Iteration lines (`train_iter`, `test_iter`).
    pub iter_lines: usize,
    /// Tagged lines that could not be read.
    pub garbage_lines: usize,
    /// The first unreadable tagged line (trimmed), for reports.
    pub first_garbage: Option<String>,
}

/// Parses `"e/E"`.
pub fn parse_epoch(s: &str) -> Option<(usize, usize)> {
    let (e, m) = s.split_once('/')?;
    let (e, m) = (e.trim().parse().ok()?, m.trim().parse().ok()?);
    (e >= 1 && m >= 1).then_some((e, m))
}

fn num(o: &serde_json::Map<String, Json>, key: &str) -> Option<f64> {
    match o.get(key)? {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl LogData {
    /// Parses log text.
    pub fn parse(text: &str) -> LogData {
        let mut d = LogData::default();
        for line in text.lines() {
            let Some(pos) = line.find(TAG) else { continue };
            let body = line[pos + TAG.len()..].trim();
            if !d.parse_stats(body) {
                d.garbage_lines += 1;
                d.first_garbage
                    .get_or_insert_with(|| line.trim().chars().take(200).collect());
            }
        }
        d
    }

    /// Reads and parses the log at `path`.
    pub fn read(path: &Path) -> Result<LogData> {
        Ok(LogData::parse(&crate::error::read(path)?))
    }

    /// One stats object; false if it cannot be read.
    fn parse_stats(&mut self, body: &str) -> bool {
        let Ok(Json::Object(mut o)) = serde_json::from_str::<Json>(body) else {
            return false;
        };
        let Some(Json::String(ty)) = o.remove("_type") else {
            // pycls skips objects without a type.
            return true;
        };
        let table = match ty.as_str() {
            "cfg" => {
                self.cfg = Some(Json::Object(o));
                return true;
            }
            "complexity" => {
                self.complexity = Some(Json::Object(o));
                return true;
            }
            "train_iter" | "test_iter" | "test_ema_iter" => {
                self.iter_lines += 1;
                return true;
            }
            "train_epoch" => &mut self.train,
            "test_epoch" => &mut self.test,
            "test_ema_epoch" => &mut self.test_ema,
            // Other types (timings, future additions) are not needed here.
            _ => return true,
        };
        let Some((epoch, max_epoch)) = o.get("epoch").and_then(Json::as_str).and_then(parse_epoch)
        else {
            return false;
        };
        table.insert(
            epoch,
            EpochStats {
                epoch,
                max_epoch,
                top1_err: num(&o, "top1_err"),
                top5_err: num(&o, "top5_err"),
                min_top1_err: num(&o, "min_top1_err"),
                loss: num(&o, "loss"),
                lr: num(&o, "lr"),
                time_epoch: num(&o, "time_epoch"),
                mem: num(&o, "mem"),
            },
        );
        true
    }

    /// `OPTIM.MAX_EPOCH` as the log says it (the last epoch line's `E`).
    pub fn max_epoch(&self) -> Option<usize> {
        [&self.test, &self.train, &self.test_ema]
            .iter()
            .filter_map(|t| t.values().next_back().map(|s| s.max_epoch))
            .max()
    }

    /// Whether training finished: a `test_epoch` line for epoch `E/E`.
    pub fn is_finished(&self) -> bool {
        self.test.values().any(|s| s.epoch == s.max_epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_parse_strictly() {
        assert_eq!(parse_epoch("3/10"), Some((3, 10)));
        assert_eq!(parse_epoch(" 1 / 1 "), Some((1, 1)));
        assert_eq!(parse_epoch("0/10"), None);
        assert_eq!(parse_epoch("3"), None);
        assert_eq!(parse_epoch("a/b"), None);
    }

    #[test]
    fn lines_and_types() {
        let text = r#"[trainer.py: 100]: json_stats: {"_type": "complexity", "acts": 1, "flops": 2, "params": 3}
unrelated line
json_stats: {"_type": "train_epoch", "epoch": "1/2", "top1_err": 50.0, "loss": 1.5, "lr": 0.1}
json_stats: {"_type": "test_epoch", "epoch": "1/2", "top1_err": 40.0, "min_top1_err": 40.0}
json_stats: {"_type": "test_epoch", "epoch": "2/2", "top1_err": 45.5, "min_top1_err": 40.0}
json_stats: {"_type": "test_epoch", "epoch": "2/2", "top1_err": 35.5, "min_top1_err": 35.5}
json_stats: {"_type": "test_epoch", "epoch": "x", "top1_err": 1}
json_stats: {not json
json_stats: {"no_type": 1}
"#;
        let d = LogData::parse(text);
        assert_eq!(d.complexity.clone().unwrap()["flops"], 2);
        assert_eq!(d.train[&1].loss, Some(1.5));
        assert_eq!(d.test.len(), 2);
        // A repeated epoch: the last line wins.
        assert_eq!(d.test[&2].top1_err, Some(35.5));
        assert_eq!(d.garbage_lines, 2);
        assert!(d.first_garbage.clone().unwrap().contains("\"x\""));
        assert!(d.is_finished());
        assert_eq!(d.max_epoch(), Some(2));
    }
}
