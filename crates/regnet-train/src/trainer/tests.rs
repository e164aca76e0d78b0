//! The trainer on synthetic in-memory data (no files): a run writes its logs and
//! checkpoints, resumes from an epoch checkpoint to the same weights, and stops cleanly on a
//! stop request and on a diverging loss.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use regnet_core::config::Config;
use regnet_data::{Dataset, DatasetKind, InMemoryDataset};
use regnet_nn::weights::read_safetensors_tensors;

use super::{TrainError, TrainOptions, TrainSummary, Trainer};
use crate::checkpoint;

const CLASSES: usize = 4;
const SIZE: usize = 12;

/// `n` gray images whose class is where a bright square sits.
fn squares(n: usize, seed: usize) -> Arc<dyn Dataset> {
    let mut pixels = vec![0u8; n * SIZE * SIZE];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = (i * 7 + seed) % CLASSES;
        let (y0, x0) = ((class / 2) * 6 + 1, (class % 2) * 6 + 1);
        for y in y0..y0 + 4 {
            for x in x0..x0 + 4 {
                pixels[i * SIZE * SIZE + y * SIZE + x] = 200 + ((i + y + x) % 50) as u8;
            }
        }
        labels.push(class as u16);
    }
    let names = (0..CLASSES).map(|c| c.to_string()).collect();
    let ds = InMemoryDataset::new(
        DatasetKind::Mnist,
        SIZE,
        SIZE,
        1,
        pixels,
        labels,
        names,
        "squares",
    );
    Arc::new(ds.unwrap())
}

fn config(out: &Path, extra: &[&str]) -> Config {
    let mut cfg = Config::default();
    let out = out.to_str().unwrap();
    #[rustfmt::skip]
    let o = [
        "MODEL.TYPE", "regnet", "MODEL.NUM_CLASSES", "4", "REGNET.STEM_TYPE", "res_stem_cifar",
        "REGNET.DEPTH", "2", "REGNET.W0", "8", "REGNET.WA", "8", "REGNET.WM", "2.0",
        "REGNET.GROUP_W", "4", "REGNET.STEM_W", "8", "TRAIN.IM_SIZE", "12", "TEST.IM_SIZE", "12",
        "TRAIN.BATCH_SIZE", "16", "TEST.BATCH_SIZE", "32", "OPTIM.MAX_EPOCH", "2",
        "BN.NUM_SAMPLES_PRECISE", "32", "OPTIM.EMA_UPDATE_PERIOD", "2", "LOG_PERIOD", "1",
        "EXT.GRAY_AUGMENT", "False", "OUT_DIR", out,
    ];
    cfg.merge_overrides(&o).unwrap();
    cfg.merge_overrides(extra).unwrap();
    cfg
}

fn train(cfg: &Config, stop: Option<&AtomicBool>) -> Result<TrainSummary, TrainError> {
    let opts = TrainOptions {
        quiet: true,
        on_epoch: None,
        stop,
    };
    let (trainer, model) = Trainer::setup_on(cfg, opts, |_| Ok([squares(64, 0), squares(40, 1)]))?;
    trainer.run(model)
}

fn count(log: &str, kind: &str) -> usize {
    log.matches(&format!("\"_type\":\"{kind}\"")).count()
}

#[test]
fn a_run_logs_checkpoints_and_resumes_to_the_same_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &[]);
    let s = train(&cfg, None).unwrap();
    assert_eq!((s.start_epoch, s.max_epoch), (0, 2));
    assert!(
        (0.0..=100.0).contains(&s.test_err) && s.best_err <= s.test_err,
        "{s:?}"
    );
    assert!(s.ema_err.is_some());
    let log = std::fs::read_to_string(tmp.path().join("stdout.log")).unwrap();
    // 64 images in batches of 16: 4 iterations per epoch.
    let counts =
        ["train_iter", "train_epoch", "test_epoch", "test_ema_epoch"].map(|k| count(&log, k));
    assert_eq!(counts, [8, 2, 2, 2], "{log}");
    assert!(
        log.starts_with("Step: batch 16 (TRAIN.BATCH_SIZE) = NUM_GPUS 1 x 16"),
        "{log}"
    );
    let last = checkpoint::path(tmp.path(), 1); // 0-based epoch
    let (first, _) = read_safetensors_tensors(&last).unwrap();

    // Resumed from epoch 1, the run ends with the same weights, EMA and optimizer state.
    std::fs::remove_file(&last).unwrap();
    let s2 = train(&cfg, None).unwrap();
    assert_eq!(s2.start_epoch, 1);
    assert_eq!(s2.test_err, s.test_err);
    assert_eq!(read_safetensors_tensors(&last).unwrap().0, first);
    // A finished run reports its last error and trains nothing.
    let s3 = train(&cfg, None).unwrap();
    assert_eq!((s3.start_epoch, s3.test_err), (2, s.test_err));
}

#[test]
fn a_stop_request_ends_the_run_after_a_whole_step() {
    let tmp = tempfile::tempdir().unwrap();
    let stop = AtomicBool::new(true);
    let e = train(&config(tmp.path(), &[]), Some(&stop)).unwrap_err();
    assert!(
        matches!(e, TrainError::Interrupted { epoch: 1, iter: 1 }),
        "{e}"
    );
    assert!(checkpoint::last(tmp.path()).is_none());
    let log = std::fs::read_to_string(tmp.path().join("stdout.log")).unwrap();
    assert!(
        log.contains("Stop requested at epoch 1, iteration 1"),
        "{log}"
    );
}

#[test]
fn a_diverging_loss_stops_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let e = train(&config(tmp.path(), &["OPTIM.BASE_LR", "1e30"]), None).unwrap_err();
    assert!(matches!(e, TrainError::NonFinite { epoch: 1, .. }), "{e}");
    assert!(e.to_string().contains("training diverged"), "{e}");
    assert!(checkpoint::last(tmp.path()).is_none());
}
