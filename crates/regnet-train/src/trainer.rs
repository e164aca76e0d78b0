//! The training loop in the shape of pycls's `core/trainer.py`: [`Trainer::setup`] (pycls's
//! `setup_env` and `setup_model`: output folder, log, config dump, data, model; then resume
//! from the last checkpoint, start from `TRAIN.WEIGHTS`, or initialise), and per epoch
//! `train_epoch` (learning rate from the schedule, label smoothing, mixup/cutmix,
//! one [`train_step`] per batch, EMA every few iterations), precise BN statistics,
//! `test_epoch` (the model and its EMA) and a checkpoint. Logs are pycls's
//! `json_stats` lines, to stdout and `OUT_DIR/stdout.log`; a progress bar with ETA goes to
//! the terminal.
//!
//! Runs are reproducible from `RNG_SEED`: the data order and augmentation of an epoch depend
//! only on the seed and the epoch, so a run resumed from the checkpoint of epoch `e`
//! continues exactly as the uninterrupted run would have.
//!
//! [`train_step`]: crate::train_step::train_step

mod setup;
mod step_plan;
mod test_epoch;
mod test_model;
#[cfg(test)]
mod tests;
mod train_epoch;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use regnet_core::config::Config;
use regnet_core::spec::NetSpec;
use regnet_data::{Batch, DataError, Loader};
use regnet_nn::layers::BnSettings;
use regnet_nn::{Model, StateDict, WeightsError, device};

use crate::checkpoint::{self, Checkpoint};
use crate::data::DataConfigError;
use crate::meters::Logger;
use crate::optimizer::TrainOptimizer;
use crate::precise_bn;
use crate::schedule::{Schedule, ScheduleError};

pub use step_plan::StepPlan;
pub use test_epoch::evaluate;
pub(crate) use test_epoch::evaluate_with;
pub use test_model::{TestSummary, test, test_weights};

/// Why training stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A bad config value.
    #[error(transparent)]
    Config(#[from] regnet_core::Error),
    /// A data set that cannot be opened or a bad data option.
    // `transparent`, not "{0}": with "{0}" the inner error is both the message and its
    // `source()`, and a printer of the chain repeats it ("X: msg: X: msg").
    #[error(transparent)]
    DataConfig(#[from] DataConfigError),
    /// A sample that cannot be read (with `EXT.ON_CORRUPT fail`), or a split that gave no
    /// image (every one skipped as corrupt).
    #[error(transparent)]
    Data(#[from] DataError),
    /// Weights that cannot be read or do not fit.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// A bad learning-rate schedule.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// The loss became NaN or infinite; the last checkpoint is left as it was.
    #[error(
        "loss is {loss} at epoch {epoch}, iteration {iter}: training diverged (try a lower \
         OPTIM.BASE_LR or more OPTIM.WARMUP_EPOCHS); the checkpoint of the last good epoch is untouched"
    )]
    NonFinite {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based iteration.
        iter: usize,
        /// The loss.
        loss: f32,
    },
    /// A stop was requested (SIGUSR1/SIGTERM from a cluster scheduler): training stopped
    /// after a whole step; a rerun resumes from the last epoch checkpoint, which is untouched.
    #[error(
        "stopped by request at epoch {epoch}, iteration {iter}; a rerun resumes from the \
         checkpoint of the last finished epoch"
    )]
    Interrupted {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based iteration.
        iter: usize,
    },
    /// Anything else, with its context.
    #[error("{0}")]
    Other(String),
}

pub(crate) fn io_err(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::Other(format!("{}: {e}", path.display()))
}

/// What a finished (or already complete) run reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainSummary {
    /// Output directory.
    pub out_dir: PathBuf,
    /// Epoch training started at (0 unless resumed).
    pub start_epoch: usize,
    /// Epochs in the run.
    pub max_epoch: usize,
    /// Test top-1 error of the last epoch (percent).
    pub test_err: f64,
    /// Lowest test top-1 error (percent).
    pub best_err: f64,
    /// Test top-1 error of the EMA weights in the last epoch, if EMA is on.
    pub ema_err: Option<f64>,
    /// Seconds this invocation trained for.
    pub seconds: f64,
}

/// A callback run after each epoch with the output folder and the epoch number.
pub type EpochHook = dyn FnMut(&Path, usize);

/// Options that are not part of the config.
#[derive(Default)]
pub struct TrainOptions<'a> {
    /// No progress bar and no stdout lines (the log file is still written).
    pub quiet: bool,
    /// Called after each epoch's checkpoint (plots, for instance).
    pub on_epoch: Option<&'a mut EpochHook>,
    /// Set from outside (a signal handler) to stop after the current step. Only whole epochs
    /// are checkpointed, because the data order and the random state are seeded per epoch:
    /// resuming at an epoch boundary gives bit-identical weights to an uninterrupted run.
    pub stop: Option<&'a AtomicBool>,
}

/// The spec to train, with the input channels taken from the data set unless the config
/// sets them.
pub fn train_spec(cfg: &Config, channels: usize) -> Result<(Config, NetSpec), TrainError> {
    let mut cfg = cfg.clone();
    if cfg.ext.in_channels == 0 {
        cfg.ext.in_channels = channels;
    } else if cfg.ext.in_channels != channels {
        return Err(TrainError::Other(format!(
            "EXT.IN_CHANNELS: {} but the data set has {channels} channels",
            cfg.ext.in_channels
        )));
    }
    let spec = cfg.spec()?;
    Ok((cfg, spec))
}

pub(crate) fn batch_tensor(b: &Batch, device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(b.images.clone(), b.shape), device)
}

pub(crate) fn to_dev(name: &str) -> Result<Device, TrainError> {
    device::by_name(name).map_err(|e| TrainError::Other(format!("EXT.DEVICE: {e}")))
}

/// Trains the model `cfg` describes, resuming from the last checkpoint in `OUT_DIR` when
/// `TRAIN.AUTO_RESUME` is set.
pub fn train(cfg: &Config, opts: TrainOptions) -> Result<TrainSummary, TrainError> {
    let (trainer, model) = Trainer::setup(cfg, opts)?;
    trainer.run(model)
}

/// A training run: what [`Trainer::setup`] prepares once, and the state carried from epoch
/// to epoch (the model itself is passed by value, as each optimizer step consumes it).
pub struct Trainer<'a> {
    /// The config, with the input channels taken from the data set.
    cfg: Config,
    spec: NetSpec,
    /// The config as dumped to `OUT_DIR`, also stored in every checkpoint.
    yaml: String,
    out_dir: PathBuf,
    log: Logger,
    bar: ProgressBar,
    schedule: Schedule,
    train_loader: Loader,
    test_loader: Loader,
    /// The device, and its autodiff version the model trains on.
    device: Device,
    ad: Device,
    bn: BnSettings,
    optimizer: TrainOptimizer,
    /// The EMA weights (the model's own while EMA is off).
    ema: StateDict,
    /// Epochs, best and last errors so far: what the run reports.
    summary: TrainSummary,
    opts: TrainOptions<'a>,
    started: Instant,
}

impl Trainer<'_> {
    /// Trains from the epoch [`Trainer::setup`] left off at to `OPTIM.MAX_EPOCH`.
    pub fn run(mut self, mut model: Model) -> Result<TrainSummary, TrainError> {
        let (start, max_epoch) = (self.summary.start_epoch, self.summary.max_epoch);
        if start >= max_epoch {
            self.log.line(&format!(
                "Training already finished: {max_epoch} of {max_epoch} epochs in {}",
                self.out_dir.display()
            ));
            return Ok(self.summary);
        }
        self.bar = self.progress_bar();
        for epoch in start..max_epoch {
            model = match self.epoch(model, epoch) {
                Ok(model) => model,
                Err(e) => {
                    self.bar.abandon();
                    return Err(e);
                }
            };
        }
        self.bar.finish_and_clear();
        self.summary.seconds = self.started.elapsed().as_secs_f64();
        Ok(self.summary)
    }

    /// One epoch of pycls's `train_model` loop: train, precise BN, test, checkpoint.
    fn epoch(&mut self, model: Model, epoch: usize) -> Result<Model, TrainError> {
        let model = self.train_epoch(model, epoch)?;
        let model = self.precise_bn(model, epoch)?;
        let (test_err, ema_err) = self.test_epoch(&model, epoch)?;
        self.checkpoint(&model, epoch, test_err)?;
        self.summary.test_err = test_err;
        self.summary.ema_err = ema_err;
        if let Some(f) = self.opts.on_epoch.as_mut() {
            f(&self.out_dir, epoch);
        }
        Ok(model)
    }

    fn ema_on(&self) -> bool {
        self.cfg.optim.ema_update_period > 0
    }

    /// Hidden when quiet or when there is nothing to train.
    fn progress_bar(&self) -> ProgressBar {
        let epochs = self.summary.max_epoch - self.summary.start_epoch;
        let total_iters = self.train_loader.num_batches() * epochs;
        if self.opts.quiet || total_iters == 0 {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total_iters as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} it, {per_sec}, ETA {eta} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar
    }

    /// Precise BN statistics of the model and of its EMA (pycls's
    /// `compute_precise_bn_stats`), when `BN.USE_PRECISE_STATS` is set.
    fn precise_bn(&mut self, model: Model, epoch: usize) -> Result<Model, TrainError> {
        let cfg = &self.cfg;
        if !cfg.bn.use_precise_stats {
            return Ok(model);
        }
        let (loader, spec, bn, ad) = (&self.train_loader, &self.spec, self.bn, &self.ad);
        let model = precise_bn::recompute_epoch(model, loader, epoch, cfg, spec, bn, ad)?;
        if self.ema_on() {
            let ema_model = Model::from_state_dict(spec, &self.ema, bn, ad, "EMA")?;
            self.ema = precise_bn::recompute_epoch(ema_model, loader, epoch, cfg, spec, bn, ad)?
                .to_state_dict();
        }
        Ok(model)
    }

    /// Writes the epoch's checkpoint (and `best.safetensors` when it is the best so far).
    fn checkpoint(&mut self, model: &Model, epoch: usize, test_err: f64) -> Result<(), TrainError> {
        let best_err = self.summary.best_err;
        let ck = Checkpoint {
            epoch,
            model: model.to_state_dict(),
            ema: if self.ema_on() {
                self.ema.clone()
            } else {
                StateDict::default()
            },
            momentum: self.optimizer.state(),
            best_err,
            test_err,
        };
        let order = self.cfg.ext.channel_order;
        let is_best = test_err <= best_err;
        let path = checkpoint::save(&self.out_dir, &ck, &self.spec, &self.yaml, order, is_best)?;
        self.log
            .line(&format!("Wrote checkpoint to: {}", path.display()));
        Ok(())
    }
}
