//! `Trainer::train_epoch`: pycls's `train_epoch`, one [`train_step`] per batch, with the
//! per-iteration bookkeeping (soft targets, EMA, meters, `train_iter` lines, progress bar,
//! stop requests) in small helpers.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use regnet_data::{Batch, Skipped, Split};
use regnet_nn::Model;
use serde_json::Value;

use super::{TrainError, Trainer, batch_tensor};
use crate::ema;
use crate::loss::{smooth_one_hot, targets_tensor};
use crate::meters::{EpochMeter, epoch_str, json_stats, peak_mem_mb, time_string, topk_errors};
use crate::mix::mix_batch;
use crate::train_step::train_step;

/// Where in the run an iteration is.
struct Iter {
    /// 0-based epoch and iteration.
    epoch: usize,
    it: usize,
    /// The epoch's learning rate.
    lr: f64,
    /// When the iteration started (its batch was being waited for).
    started: Instant,
}

impl Trainer<'_> {
    /// Trains `model` for one epoch and logs the epoch's `train_epoch` line.
    pub(super) fn train_epoch(
        &mut self,
        mut model: Model,
        epoch: usize,
    ) -> Result<Model, TrainError> {
        let t_epoch = Instant::now();
        // Everything random in the epoch derives from the seed and the epoch.
        let seed = self.cfg.rng_seed;
        self.device
            .seed(seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
        let mut mix_rng = ChaCha8Rng::seed_from_u64(seed ^ ((epoch as u64 + 1) << 32));
        let lr = self.schedule.lr(epoch);
        let max_epoch = self.summary.max_epoch;
        self.bar
            .set_prefix(format!("epoch {}/{max_epoch}", epoch + 1));
        let mut meter = EpochMeter::default();
        let loader = self.train_loader.clone();
        let skipped_before = loader.skipped().len();
        let mut logged = HashSet::new();
        for (it, batch) in loader.epoch(epoch as u64).enumerate() {
            let started = Instant::now();
            let batch = batch?;
            self.log_skipped(&batch.skipped, &mut logged);
            if batch.labels.is_empty() {
                continue;
            }
            let at = Iter {
                epoch,
                it,
                lr,
                started,
            };
            model = self.iteration(model, batch, &at, &mut mix_rng, &mut meter)?;
        }
        // A batch whose samples were all skipped never comes out of the loader: log its
        // samples from the loader's record.
        self.log_skipped(&loader.skipped()[skipped_before..], &mut logged);
        if meter.samples() == 0 {
            // Every sample was skipped as corrupt: there is no loss or error to report.
            return Err(loader.all_skipped_error(Split::Train, epoch as u64).into());
        }
        self.log_train_epoch(&meter, epoch, lr, t_epoch.elapsed().as_secs_f64());
        Ok(model)
    }

    /// One step on `batch`, then EMA, meters, log line, progress bar and stop request.
    fn iteration(
        &mut self,
        model: Model,
        mut batch: Batch,
        at: &Iter,
        mix_rng: &mut ChaCha8Rng,
        meter: &mut EpochMeter,
    ) -> Result<Model, TrainError> {
        let (n, classes) = (batch.labels.len(), self.spec.num_classes);
        let (targets, labels) = self.targets(&mut batch, mix_rng);
        let x = batch_tensor(&batch, &self.ad);
        let y = targets_tensor(targets, n, classes, &self.ad);
        let (epoch, iter) = (at.epoch + 1, at.it + 1);
        let diverged = |loss: f32| TrainError::NonFinite { epoch, iter, loss };
        let replicas = self.cfg.num_gpus;
        let step = train_step(
            model,
            &mut self.optimizer,
            (x, y),
            at.lr,
            replicas,
            |_, loss, _| {
                if loss.is_finite() {
                    Ok(())
                } else {
                    Err(diverged(loss))
                }
            },
        )?;
        if self.ema_on()
            && let Some(alpha) = ema::ema_alpha(&self.cfg, at.epoch, at.it)
        {
            ema::update(&mut self.ema, &step.model.to_state_dict(), alpha);
        }
        let errs = topk_errors(&step.logits.data, classes, &labels, &[1, 5.min(classes)]);
        let loss = step.loss as f64;
        meter.update(
            errs[0],
            errs[1],
            loss,
            n,
            at.started.elapsed().as_secs_f64(),
        );
        self.log_iter(meter, at, &errs, loss);
        self.bar.inc(1);
        self.bar.set_message(format!("loss {:.3}", step.loss));
        self.check_stop(at)?;
        Ok(step.model)
    }

    /// Label-smoothed soft targets, mixed with mixup/cutmix when on (which also mixes the
    /// images), and the labels the errors are counted against. As in pycls, where each
    /// process mixes its own images, each of the `NUM_GPUS` micro-batches is mixed on its
    /// own (one draw and permutation each).
    fn targets(&self, batch: &mut Batch, mix_rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<i64>) {
        let (classes, t) = (self.spec.num_classes, &self.cfg.train);
        let mut targets = smooth_one_hot(&batch.labels, classes, t.label_smoothing);
        if t.mixup_alpha <= 0.0 && t.cutmix_alpha <= 0.0 {
            return (targets, batch.labels.clone());
        }
        let [n, c, h, w] = batch.shape;
        // StepPlan and the loader checked that NUM_GPUS divides the batch; a short batch
        // (corrupt samples skipped) is refused by the step itself.
        let replicas = self.cfg.num_gpus.max(1);
        let m = if n.is_multiple_of(replicas) {
            n / replicas
        } else {
            n
        };
        let mut labels = Vec::with_capacity(n);
        let image_chunks = batch.images.chunks_mut(m * c * h * w);
        for (images, targets) in image_chunks.zip(targets.chunks_mut(m * classes)) {
            let shape = [m, c, h, w];
            let (mixup, cutmix) = (t.mixup_alpha, t.cutmix_alpha);
            labels.extend(mix_batch(
                mix_rng, images, shape, targets, classes, mixup, cutmix,
            ));
        }
        (targets, labels)
    }

    /// Logs each corrupt sample skipped once.
    fn log_skipped(&mut self, skipped: &[Skipped], logged: &mut HashSet<usize>) {
        for s in skipped {
            if logged.insert(s.index) {
                let line = format!("skipped corrupt sample {}: {}", s.index, s.message);
                self.log.line(&line);
            }
        }
    }

    /// pycls's `train_iter` line, every `LOG_PERIOD` iterations.
    fn log_iter(&mut self, meter: &EpochMeter, at: &Iter, errs: &[f64], loss: f64) {
        let period = self.cfg.log_period;
        if period == 0 || !(at.it + 1).is_multiple_of(period) {
            return;
        }
        let (start, max_epoch) = (self.summary.start_epoch, self.summary.max_epoch);
        let epoch_iters = self.train_loader.num_batches();
        let done = (at.epoch - start) * epoch_iters + at.it + 1;
        let eta = meter.time_avg() * (epoch_iters * (max_epoch - start) - done) as f64;
        self.log.line(&json_stats(
            "train_iter",
            &[
                ("epoch", Value::from(epoch_str(at.epoch, max_epoch))),
                (
                    "iter",
                    Value::from(format!("{}/{}", at.it + 1, epoch_iters)),
                ),
                ("time_avg", Value::from(meter.time_avg())),
                ("time_diff", Value::from(at.started.elapsed().as_secs_f64())),
                ("eta", Value::from(time_string(eta))),
                ("top1_err", Value::from(errs[0])),
                ("top5_err", Value::from(errs[1])),
                ("loss", Value::from(loss)),
                ("lr", Value::from(at.lr)),
                ("mem", Value::from(peak_mem_mb())),
            ],
        ));
    }

    /// pycls's `train_epoch` line.
    fn log_train_epoch(&mut self, meter: &EpochMeter, epoch: usize, lr: f64, seconds: f64) {
        let max_epoch = self.summary.max_epoch;
        let eta = seconds * (max_epoch - epoch - 1) as f64;
        self.log.line(&json_stats(
            "train_epoch",
            &[
                ("epoch", Value::from(epoch_str(epoch, max_epoch))),
                ("time_avg", Value::from(meter.time_avg())),
                ("time_epoch", Value::from(seconds)),
                ("eta", Value::from(time_string(eta))),
                ("top1_err", Value::from(meter.top1_err())),
                ("top5_err", Value::from(meter.top5_err())),
                ("loss", Value::from(meter.loss())),
                ("lr", Value::from(lr)),
                ("mem", Value::from(peak_mem_mb())),
            ],
        ));
    }

    /// Stops after a whole step when a stop was requested (a signal): only whole epochs
    /// are checkpointed, so the last checkpoint resumes the run.
    fn check_stop(&mut self, at: &Iter) -> Result<(), TrainError> {
        if !self.opts.stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            return Ok(());
        }
        let (epoch, iter) = (at.epoch + 1, at.it + 1);
        self.bar.abandon();
        self.log.line(&format!(
            "Stop requested at epoch {epoch}, iteration {iter}: exiting; the last checkpoint \
             resumes the run"
        ));
        Err(TrainError::Interrupted { epoch, iter })
    }
}
