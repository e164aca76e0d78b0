//! `Trainer::test_epoch`: pycls's `test_epoch` for the model and its EMA, and the
//! evaluation loop `regnet test` shares.

use std::time::Instant;

use burn::module::Module;
use regnet_data::{Batch, Loader, Split};
use regnet_nn::Model;
use regnet_nn::conv::from_tensor;
use serde_json::Value;

use super::{TrainError, Trainer, batch_tensor};
use crate::meters::{EpochMeter, epoch_str, json_stats, peak_mem_mb, topk_errors};

/// Top-1 error, top-5 error (percent) and seconds of one pass over the test set.
type TestStats = (f64, f64, f64);

impl Trainer<'_> {
    /// Tests the model (and its EMA when on) and logs the `test_epoch` (and
    /// `test_ema_epoch`) lines; returns the test top-1 error of both.
    pub(super) fn test_epoch(
        &mut self,
        model: &Model,
        epoch: usize,
    ) -> Result<(f64, Option<f64>), TrainError> {
        let classes = self.spec.num_classes;
        let stats = evaluate(&model.valid(), &self.test_loader, classes)?;
        self.summary.best_err = self.summary.best_err.min(stats.0);
        let line = self.test_line("test_epoch", epoch, stats, self.summary.best_err);
        self.log.line(&line);
        if !self.ema_on() {
            return Ok((stats.0, None));
        }
        let ema_model =
            Model::from_state_dict(&self.spec, &self.ema, self.bn, &self.device, "EMA")?;
        let ema_stats = evaluate(&ema_model, &self.test_loader, classes)?;
        let line = self.test_line("test_ema_epoch", epoch, ema_stats, ema_stats.0);
        self.log.line(&line);
        Ok((stats.0, Some(ema_stats.0)))
    }

    /// A `test_epoch`-style `json_stats` line.
    fn test_line(&self, kind: &str, epoch: usize, stats: TestStats, min_top1: f64) -> String {
        let (top1, top5, seconds) = stats;
        let batches = self.test_loader.num_batches().max(1) as f64;
        json_stats(
            kind,
            &[
                (
                    "epoch",
                    Value::from(epoch_str(epoch, self.summary.max_epoch)),
                ),
                ("time_avg", Value::from(seconds / batches)),
                ("time_epoch", Value::from(seconds)),
                ("top1_err", Value::from(top1)),
                ("top5_err", Value::from(top5)),
                ("min_top1_err", Value::from(min_top1)),
                ("mem", Value::from(peak_mem_mb())),
            ],
        )
    }
}

/// Top-1 and top-5 error (percent) of an eval-mode model on a test loader, and the seconds
/// it took.
pub fn evaluate(
    model: &Model,
    loader: &Loader,
    classes: usize,
) -> Result<(f64, f64, f64), TrainError> {
    let device = model.fc.weight.val().device();
    evaluate_with(loader, classes, |batch| {
        Ok(from_tensor(model.forward(batch_tensor(batch, &device))).data)
    })
}

/// Top-1 and top-5 error (percent) over one pass of `loader`, with `forward` giving each
/// batch's logits (the burn model or the compiled engine), and the seconds it took.
pub(crate) fn evaluate_with(
    loader: &Loader,
    classes: usize,
    mut forward: impl FnMut(&Batch) -> Result<Vec<f32>, TrainError>,
) -> Result<(f64, f64, f64), TrainError> {
    let t = Instant::now();
    let mut meter = EpochMeter::default();
    for batch in loader.epoch(0) {
        let batch = batch?;
        let n = batch.labels.len();
        if n == 0 {
            continue;
        }
        let logits = forward(&batch)?;
        let errs = topk_errors(&logits, classes, &batch.labels, &[1, 5.min(classes)]);
        meter.update(errs[0], errs[1], 0.0, n, 0.0);
    }
    if meter.samples() == 0 {
        // An error of 0% over no image is not a result.
        return Err(loader.all_skipped_error(Split::Test, 0).into());
    }
    Ok((
        meter.top1_err(),
        meter.top5_err(),
        t.elapsed().as_secs_f64(),
    ))
}
