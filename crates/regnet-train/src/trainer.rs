//! The training loop, following pycls's `train_model`: per epoch, train (learning rate from
//! the schedule, label smoothing, mixup/cutmix, the `OPTIM.OPTIMIZER` step, EMA every few
//! iterations), recompute precise BN statistics, test the model and its EMA, and write a
//! checkpoint. Logs are pycls's `json_stats` lines, to stdout and `OUT_DIR/stdout.log`; a
//! progress bar with ETA goes to the terminal.
//!
//! Runs are reproducible from `RNG_SEED`: the data order and augmentation of an epoch depend
//! only on the seed and the epoch, so a run resumed from the checkpoint of epoch `e`
//! continues exactly as the uninterrupted run would have.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use regnet_core::complexity::complexity;
use regnet_core::config::Config;
use regnet_core::network::Network;
use regnet_core::spec::NetSpec;
use regnet_data::{Batch, DataError, Loader, Split};
use regnet_nn::conv::from_tensor;
use regnet_nn::layers::BnSettings;
use regnet_nn::weights::{self, Which};
use regnet_nn::{Model, StateDict, WeightsError, device};
use serde_json::Value;

use crate::checkpoint::{self, Checkpoint};
use crate::data::{self, DataConfigError};
use crate::loss::{smooth_one_hot, soft_cross_entropy, targets_tensor};
use crate::meters::{
    EpochMeter, Logger, epoch_str, json_stats, peak_mem_mb, time_string, topk_errors,
};
use crate::mix::mix_batch;
use crate::optimizer::TrainOptimizer;
use crate::schedule::{Schedule, ScheduleError};
use crate::{ema, precise_bn};

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

fn io_err(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::Other(format!("{}: {e}", path.display()))
}

/// The model a weight file says it holds: regnet's spec metadata, or the config embedded in a
/// pycls checkpoint.
fn weights_spec(w: &weights::Weights, weights_path: &str) -> Result<NetSpec, TrainError> {
    if let Some(spec) = &w.spec {
        return Ok(spec.clone());
    }
    let Some(yaml) = &w.pycls_cfg else {
        return Err(TrainError::Other(format!(
            "{weights_path}: the file does not say which model it holds: name a zoo model or give --cfg FILE"
        )));
    };
    let mut cfg = Config::default();
    let origin = regnet_core::error::Origin::File(format!("{weights_path} (cfg)"));
    cfg.merge_yaml(yaml, origin)?;
    Ok(cfg.spec()?)
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

fn batch_tensor(b: &Batch, device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(b.images.clone(), b.shape), device)
}

fn to_dev(name: &str) -> Result<Device, TrainError> {
    device::by_name(name).map_err(|e| TrainError::Other(format!("EXT.DEVICE: {e}")))
}

/// Trains the model `cfg` describes, resuming from the last checkpoint in `OUT_DIR` when
/// `TRAIN.AUTO_RESUME` is set.
pub fn train(cfg: &Config, mut opts: TrainOptions) -> Result<TrainSummary, TrainError> {
    let started = Instant::now();
    let out_dir = PathBuf::from(&cfg.out_dir);
    std::fs::create_dir_all(&out_dir).map_err(|e| io_err(&out_dir, e))?;
    let mut log =
        Logger::new(&out_dir, opts.quiet).map_err(|e| io_err(&out_dir.join("stdout.log"), e))?;
    let schedule = Schedule::new(&cfg.optim)?;
    cfg.check_trainable()?;
    for stale in checkpoint::remove_stale(&out_dir)? {
        log.line(&format!("Removed stale temporary file {}", stale.display()));
    }

    let train_set = data::open(cfg, true)?;
    let test_set = data::open(cfg, false)?;
    if train_set.num_classes() > cfg.model.num_classes {
        return Err(TrainError::Other(format!(
            "MODEL.NUM_CLASSES: {} but {} has {} classes",
            cfg.model.num_classes,
            cfg.train.dataset,
            train_set.num_classes()
        )));
    }
    let (cfg, spec) = train_spec(cfg, train_set.channels())?;
    let cfg = &cfg;
    let yaml = cfg.to_yaml();
    weights::write_atomic(&out_dir.join(&cfg.cfg_dest), yaml.as_bytes())?;
    let train_loader = data::loader(cfg, train_set, true)?;
    let test_loader = data::loader(cfg, test_set, false)?;
    let net = Network::from_spec(&spec)?;
    let cx = complexity(&net, cfg.train.im_size, cfg.train.im_size);
    log.line(&json_stats(
        "complexity",
        &[
            ("flops", Value::from(cx.flops)),
            ("params", Value::from(cx.params)),
            ("acts", Value::from(cx.acts)),
        ],
    ));

    let inner = to_dev(&cfg.ext.device)?;
    let ad = inner.clone().autodiff();
    inner.seed(cfg.rng_seed);
    let bn = BnSettings {
        eps: cfg.bn.eps,
        momentum: cfg.bn.mom,
    };
    let classes = spec.num_classes;
    let channel_order = cfg.ext.channel_order;
    let ema_on = cfg.optim.ema_update_period > 0;

    // Start: resume, initial weights, or pycls initialisation.
    let mut optimizer = TrainOptimizer::from_config(cfg);
    let mut start_epoch = 0;
    let mut best_err = f64::INFINITY;
    // Test error of the last finished epoch: what a rerun of a finished run reports.
    let mut last_test_err = f64::NAN;
    let last = if cfg.train.auto_resume {
        checkpoint::last(&out_dir)
    } else {
        None
    };
    let (mut model, mut ema_sd) = if let Some(path) = last {
        let ck = checkpoint::load(&path)?;
        let source = path.display().to_string();
        let model = Model::from_state_dict(&spec, &ck.model, bn, &ad, &source)?;
        optimizer
            .load_state(&ck.momentum, &inner)
            .map_err(|e| TrainError::Other(format!("{source}: {e}")))?;
        start_epoch = ck.epoch + 1;
        best_err = ck.best_err;
        last_test_err = ck.test_err;
        log.line(&format!(
            "Loaded checkpoint from: {source} (resuming at epoch {})",
            start_epoch + 1
        ));
        let ema_sd = if ema_on && !ck.ema.tensors.is_empty() {
            ck.ema
        } else {
            model.to_state_dict()
        };
        (model, ema_sd)
    } else {
        let model = if cfg.train.weights.is_empty() {
            Model::init(&spec, cfg.rng_seed, cfg.bn.zero_init_final_gamma, &ad)?
        } else {
            let w = weights::read(Path::new(&cfg.train.weights), Which::Model)?;
            Model::from_state_dict(&spec, &w.state, bn, &ad, &cfg.train.weights)?
        };
        let sd = model.to_state_dict();
        (model, sd)
    };

    let max_epoch = cfg.optim.max_epoch;
    let mut summary = TrainSummary {
        out_dir: out_dir.clone(),
        start_epoch,
        max_epoch,
        test_err: last_test_err,
        best_err,
        ema_err: None,
        seconds: 0.0,
    };
    if start_epoch >= max_epoch {
        log.line(&format!(
            "Training already finished: {max_epoch} of {max_epoch} epochs in {}",
            out_dir.display()
        ));
        return Ok(summary);
    }
    let epoch_iters = train_loader.num_batches();
    let total_iters = epoch_iters * (max_epoch - start_epoch);
    let bar = if opts.quiet || total_iters == 0 {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(total_iters as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} it, {per_sec}, ETA {eta} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar
    };
    let mut epoch_times = Vec::new();

    for epoch in start_epoch..max_epoch {
        let t_epoch = Instant::now();
        // Everything random in the epoch derives from the seed and the epoch.
        inner.seed(
            cfg.rng_seed
                .wrapping_mul(1_000_003)
                .wrapping_add(epoch as u64),
        );
        let mut mix_rng = ChaCha8Rng::seed_from_u64(cfg.rng_seed ^ ((epoch as u64 + 1) << 32));
        let lr = schedule.lr(epoch);
        bar.set_prefix(format!("epoch {}/{max_epoch}", epoch + 1));
        let mut meter = EpochMeter::default();
        let skipped_before = train_loader.skipped().len();
        let mut logged = std::collections::HashSet::new();
        for (it, batch) in train_loader.epoch(epoch as u64).enumerate() {
            let t_iter = Instant::now();
            let mut batch = batch?;
            for s in &batch.skipped {
                log.line(&format!(
                    "skipped corrupt sample {}: {}",
                    s.index, s.message
                ));
                logged.insert(s.index);
            }
            let n = batch.labels.len();
            if n == 0 {
                continue;
            }
            let mut targets = smooth_one_hot(&batch.labels, classes, cfg.train.label_smoothing);
            let labels = if cfg.train.mixup_alpha > 0.0 || cfg.train.cutmix_alpha > 0.0 {
                let shape = batch.shape;
                mix_batch(
                    &mut mix_rng,
                    &mut batch.images,
                    shape,
                    &mut targets,
                    classes,
                    cfg.train.mixup_alpha,
                    cfg.train.cutmix_alpha,
                )
            } else {
                batch.labels.clone()
            };
            let x = batch_tensor(&batch, &ad);
            let y = targets_tensor(targets, n, classes, &ad);
            let logits = model.forward(x);
            let loss = soft_cross_entropy(logits.clone(), y);
            let loss_val: f32 = loss.clone().into_scalar();
            if !loss_val.is_finite() {
                bar.abandon();
                return Err(TrainError::NonFinite {
                    epoch: epoch + 1,
                    iter: it + 1,
                    loss: loss_val,
                });
            }
            let logits_cpu = from_tensor(logits.detach());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(model, grads, lr);
            if ema_on && let Some(alpha) = ema::ema_alpha(cfg, epoch, it) {
                ema::update(&mut ema_sd, &model.to_state_dict(), alpha);
            }
            let errs = topk_errors(&logits_cpu.data, classes, &labels, &[1, 5.min(classes)]);
            meter.update(
                errs[0],
                errs[1],
                loss_val as f64,
                n,
                t_iter.elapsed().as_secs_f64(),
            );
            if cfg.log_period > 0 && (it + 1) % cfg.log_period == 0 {
                let done = (epoch - start_epoch) * epoch_iters + it + 1;
                let eta = meter.time_avg() * (total_iters - done) as f64;
                log.line(&json_stats(
                    "train_iter",
                    &[
                        ("epoch", Value::from(epoch_str(epoch, max_epoch))),
                        ("iter", Value::from(format!("{}/{}", it + 1, epoch_iters))),
                        ("time_avg", Value::from(meter.time_avg())),
                        ("time_diff", Value::from(t_iter.elapsed().as_secs_f64())),
                        ("eta", Value::from(time_string(eta))),
                        ("top1_err", Value::from(errs[0])),
                        ("top5_err", Value::from(errs[1])),
                        ("loss", Value::from(loss_val as f64)),
                        ("lr", Value::from(lr)),
                        ("mem", Value::from(peak_mem_mb())),
                    ],
                ));
            }
            bar.inc(1);
            bar.set_message(format!("loss {loss_val:.3}"));
            if opts.stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                bar.abandon();
                log.line(&format!(
                    "Stop requested at epoch {}, iteration {}: exiting; the last checkpoint \
                     resumes the run",
                    epoch + 1,
                    it + 1
                ));
                return Err(TrainError::Interrupted {
                    epoch: epoch + 1,
                    iter: it + 1,
                });
            }
        }
        // A batch whose samples were all skipped never comes out of the loader: log its
        // samples from the loader's record.
        for s in &train_loader.skipped()[skipped_before..] {
            if logged.insert(s.index) {
                log.line(&format!(
                    "skipped corrupt sample {}: {}",
                    s.index, s.message
                ));
            }
        }
        if meter.samples() == 0 {
            // Every sample was skipped as corrupt: there is no loss or error to report.
            bar.abandon();
            return Err(train_loader
                .all_skipped_error(Split::Train, epoch as u64)
                .into());
        }
        let train_time = t_epoch.elapsed().as_secs_f64();
        log.line(&json_stats(
            "train_epoch",
            &[
                ("epoch", Value::from(epoch_str(epoch, max_epoch))),
                ("time_avg", Value::from(meter.time_avg())),
                ("time_epoch", Value::from(train_time)),
                (
                    "eta",
                    Value::from(time_string(train_time * (max_epoch - epoch - 1) as f64)),
                ),
                ("top1_err", Value::from(meter.top1_err())),
                ("top5_err", Value::from(meter.top5_err())),
                ("loss", Value::from(meter.loss())),
                ("lr", Value::from(lr)),
                ("mem", Value::from(peak_mem_mb())),
            ],
        ));

        if cfg.bn.use_precise_stats {
            let iters = (cfg.bn.num_samples_precise
                / (cfg.train.batch_size / cfg.num_gpus.max(1)).max(1))
            .min(epoch_iters);
            model = precise_bn::recompute(model, &train_loader, epoch, iters, &spec, bn, &ad)?;
            if ema_on {
                let ema_model = Model::from_state_dict(&spec, &ema_sd, bn, &ad, "EMA")?;
                ema_sd =
                    precise_bn::recompute(ema_model, &train_loader, epoch, iters, &spec, bn, &ad)?
                        .to_state_dict();
            }
        }

        let (test_err, test_top5, test_time) = evaluate(&model.valid(), &test_loader, classes)?;
        best_err = best_err.min(test_err);
        log.line(&test_line(
            "test_epoch",
            epoch,
            max_epoch,
            test_err,
            test_top5,
            test_time,
            best_err,
            &test_loader,
        ));
        let mut ema_err = None;
        if ema_on {
            let ema_model = Model::from_state_dict(&spec, &ema_sd, bn, &inner, "EMA")?;
            let (e1, e5, t) = evaluate(&ema_model, &test_loader, classes)?;
            log.line(&test_line(
                "test_ema_epoch",
                epoch,
                max_epoch,
                e1,
                e5,
                t,
                e1,
                &test_loader,
            ));
            ema_err = Some(e1);
        }

        let ck = Checkpoint {
            epoch,
            model: model.to_state_dict(),
            ema: if ema_on {
                ema_sd.clone()
            } else {
                StateDict::default()
            },
            momentum: optimizer.state(),
            best_err,
            test_err,
        };
        let path = checkpoint::save(
            &out_dir,
            &ck,
            &spec,
            &yaml,
            channel_order,
            test_err <= best_err,
        )?;
        log.line(&format!("Wrote checkpoint to: {}", path.display()));
        epoch_times.push(t_epoch.elapsed().as_secs_f64());
        summary.test_err = test_err;
        summary.best_err = best_err;
        summary.ema_err = ema_err;
        if let Some(f) = opts.on_epoch.as_mut() {
            f(&out_dir, epoch);
        }
    }
    bar.finish_and_clear();
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
fn test_line(
    kind: &str,
    epoch: usize,
    max_epoch: usize,
    top1: f64,
    top5: f64,
    seconds: f64,
    min_top1: f64,
    loader: &Loader,
) -> String {
    json_stats(
        kind,
        &[
            ("epoch", Value::from(epoch_str(epoch, max_epoch))),
            (
                "time_avg",
                Value::from(seconds / loader.num_batches().max(1) as f64),
            ),
            ("time_epoch", Value::from(seconds)),
            ("top1_err", Value::from(top1)),
            ("top5_err", Value::from(top5)),
            ("min_top1_err", Value::from(min_top1)),
            ("mem", Value::from(peak_mem_mb())),
        ],
    )
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

/// What `regnet test` reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TestSummary {
    /// Top-1 error, percent.
    pub top1_err: f64,
    /// Top-5 error, percent.
    pub top5_err: f64,
    /// Test images.
    pub images: usize,
    /// Seconds.
    pub seconds: f64,
}

/// Tests `weights` (any supported format) on the config's test set.
pub fn test(
    cfg: &Config,
    weights_path: &str,
    which: Which,
    quiet: bool,
) -> Result<TestSummary, TrainError> {
    let test_set = data::open(cfg, false)?;
    let w = weights::read(Path::new(weights_path), which)?;
    // The model: from the config when it names one, else from the weights file.
    let spec = if cfg.model.ty.is_empty() {
        weights_spec(&w, weights_path)?
    } else {
        train_spec(cfg, test_set.channels())?.1
    };
    if spec.in_channels != test_set.channels() {
        return Err(TrainError::Other(format!(
            "{weights_path}: the model takes {} input channels but {} has {}",
            spec.in_channels,
            cfg.test.dataset,
            test_set.channels()
        )));
    }
    let dev = to_dev(&cfg.ext.device)?;
    let bn = BnSettings {
        eps: cfg.bn.eps,
        momentum: cfg.bn.mom,
    };
    let model = Model::from_state_dict(&spec, &w.state, bn, &dev, weights_path)?;
    let loader = data::loader(cfg, test_set, false)?;
    // On the CPU the compiled engine runs the forward (the burn model above checked the
    // weights, with its error messages).
    let (top1, top5, seconds) = if cfg.ext.device.eq_ignore_ascii_case("cpu") {
        crate::compiled_eval::evaluate_compiled(&spec, &w.state, cfg.bn.eps, &loader, weights_path)?
    } else {
        evaluate(&model, &loader, spec.num_classes)?
    };
    let mut log = Logger::stdout_only(quiet);
    log.line(&json_stats(
        "test_epoch",
        &[
            ("epoch", Value::from("1/1")),
            ("top1_err", Value::from(top1)),
            ("top5_err", Value::from(top5)),
            ("time_epoch", Value::from(seconds)),
            ("mem", Value::from(peak_mem_mb())),
        ],
    ));
    Ok(TestSummary {
        top1_err: top1,
        top5_err: top5,
        images: loader.num_samples(),
        seconds,
    })
}
