//! [`Trainer::setup`]: pycls's `setup_env` (output folder, log, config dump, seed) and
//! `setup_model` (complexity log), the data, and the starting weights: the last checkpoint,
//! `TRAIN.WEIGHTS`, or pycls's initialisation.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use indicatif::ProgressBar;
use regnet_core::complexity::complexity;
use regnet_core::config::Config;
use regnet_core::network::Network;
use regnet_core::spec::NetSpec;
use regnet_data::{Dataset, Loader};
use regnet_nn::layers::BnSettings;
use regnet_nn::weights::{self, Which};
use regnet_nn::{Model, StateDict};
use serde_json::Value;

use super::test_model::local_file;
use super::{
    StepPlan, TrainError, TrainOptions, TrainSummary, Trainer, io_err, to_dev, train_spec,
};
use crate::checkpoint;
use crate::data;
use crate::meters::{Logger, json_stats};
use crate::optimizer::TrainOptimizer;
use crate::schedule::Schedule;

/// The data of a run and the config completed from it.
struct RunData {
    cfg: Config,
    spec: NetSpec,
    yaml: String,
    train_loader: Loader,
    test_loader: Loader,
}

impl<'a> Trainer<'a> {
    /// Prepares a run of `cfg`: output folder and log, the effective step, the data, the
    /// config dump, the complexity line, the device; then the starting model, which
    /// [`Trainer::run`] trains.
    pub fn setup(cfg: &Config, opts: TrainOptions<'a>) -> Result<(Self, Model), TrainError> {
        Self::setup_on(cfg, opts, |cfg| {
            Ok([data::open(cfg, true)?, data::open(cfg, false)?])
        })
    }

    /// [`Trainer::setup`] on the training and test sets `open` gives for the config
    /// (synthetic data, for instance).
    pub fn setup_on(
        cfg: &Config,
        opts: TrainOptions<'a>,
        open: impl FnOnce(&Config) -> Result<[Arc<dyn Dataset>; 2], TrainError>,
    ) -> Result<(Self, Model), TrainError> {
        let started = Instant::now();
        let out_dir = PathBuf::from(&cfg.out_dir);
        std::fs::create_dir_all(&out_dir).map_err(|e| io_err(&out_dir, e))?;
        let mut log = Logger::new(&out_dir, opts.quiet)
            .map_err(|e| io_err(&out_dir.join("stdout.log"), e))?;
        let schedule = Schedule::new(&cfg.optim)?;
        cfg.check_trainable()?;
        let step = StepPlan::new(cfg)?;
        log.line(&step.to_string());
        for stale in checkpoint::remove_stale(&out_dir)? {
            log.line(&format!("Removed stale temporary file {}", stale.display()));
        }
        let data = open_data(cfg, &out_dir, open)?;
        log_complexity(&mut log, &data.spec, data.cfg.train.im_size)?;
        let device = to_dev(&data.cfg.ext.device)?;
        let (batch, size) = (step.replica_batch, data.cfg.train.im_size);
        let what = format!("TRAIN.BATCH_SIZE {} at TRAIN.IM_SIZE {size}", step.batch);
        crate::memory::check_memory(&data.spec, [batch, size], true, &device, &what)?;
        let ad = device.clone().autodiff();
        device.seed(data.cfg.rng_seed);
        let mut trainer = Trainer {
            bn: BnSettings {
                eps: data.cfg.bn.eps,
                momentum: data.cfg.bn.mom,
            },
            optimizer: TrainOptimizer::from_config(&data.cfg),
            ema: StateDict::default(),
            summary: TrainSummary {
                out_dir: out_dir.clone(),
                start_epoch: 0,
                max_epoch: data.cfg.optim.max_epoch,
                // What a rerun of a finished run reports: the last epoch's error.
                test_err: f64::NAN,
                best_err: f64::INFINITY,
                ema_err: None,
                seconds: 0.0,
            },
            cfg: data.cfg,
            spec: data.spec,
            yaml: data.yaml,
            out_dir,
            log,
            bar: ProgressBar::hidden(),
            schedule,
            train_loader: data.train_loader,
            test_loader: data.test_loader,
            device,
            ad,
            opts,
            started,
        };
        let model = trainer.resume_or_init()?;
        Ok((trainer, model))
    }

    /// pycls's start: the last checkpoint in `OUT_DIR` with `TRAIN.AUTO_RESUME`, else the
    /// weights `TRAIN.WEIGHTS` names, else pycls's initialisation.
    fn resume_or_init(&mut self) -> Result<Model, TrainError> {
        if self.cfg.train.auto_resume
            && let Some(path) = checkpoint::last(&self.out_dir)
        {
            return self.resume(&path);
        }
        let cfg = &self.cfg;
        let model = if cfg.train.weights.is_empty() {
            Model::init(
                &self.spec,
                cfg.rng_seed,
                cfg.bn.zero_init_final_gamma,
                &self.ad,
            )?
        } else {
            let path = local_file("TRAIN.WEIGHTS", &cfg.train.weights)?;
            let w = weights::read(Path::new(path), Which::Model)?;
            let model = Model::from_state_dict(
                &self.spec,
                &w.state,
                self.bn,
                &self.ad,
                &cfg.train.weights,
            )?;
            let line = format!("Loaded initial weights from: {}", cfg.train.weights);
            self.log.line(&line);
            model
        };
        self.ema = model.to_state_dict();
        Ok(model)
    }

    /// The model, optimizer state, EMA and errors of the checkpoint at `path`.
    fn resume(&mut self, path: &Path) -> Result<Model, TrainError> {
        let ck = checkpoint::load(path)?;
        let source = path.display().to_string();
        let model = Model::from_state_dict(&self.spec, &ck.model, self.bn, &self.ad, &source)?;
        self.optimizer
            .load_state(&ck.momentum, &self.device)
            .map_err(|e| TrainError::Other(format!("{source}: {e}")))?;
        self.summary.start_epoch = ck.epoch + 1;
        self.summary.best_err = ck.best_err;
        self.summary.test_err = ck.test_err;
        self.log.line(&format!(
            "Loaded checkpoint from: {source} (resuming at epoch {})",
            ck.epoch + 2
        ));
        self.ema = if self.ema_on() && !ck.ema.tensors.is_empty() {
            ck.ema
        } else {
            model.to_state_dict()
        };
        Ok(model)
    }
}

/// Opens both data sets, completes the config from them (input channels), dumps it to
/// `OUT_DIR/CFG_DEST`, and builds the loaders.
fn open_data(
    cfg: &Config,
    out_dir: &Path,
    open: impl FnOnce(&Config) -> Result<[Arc<dyn Dataset>; 2], TrainError>,
) -> Result<RunData, TrainError> {
    let [train_set, test_set] = open(cfg)?;
    if train_set.num_classes() > cfg.model.num_classes {
        return Err(TrainError::Other(format!(
            "MODEL.NUM_CLASSES: {} but {} has {} classes",
            cfg.model.num_classes,
            cfg.train.dataset,
            train_set.num_classes()
        )));
    }
    let (cfg, spec) = train_spec(cfg, train_set.channels())?;
    let yaml = cfg.to_yaml();
    weights::write_atomic(&out_dir.join(&cfg.cfg_dest), yaml.as_bytes())?;
    let train_loader = data::loader(&cfg, train_set, true)?;
    let test_loader = data::loader(&cfg, test_set, false)?;
    Ok(RunData {
        cfg,
        spec,
        yaml,
        train_loader,
        test_loader,
    })
}

/// pycls's `complexity` log line.
fn log_complexity(log: &mut Logger, spec: &NetSpec, im_size: usize) -> Result<(), TrainError> {
    let net = Network::from_spec(spec)?;
    let cx = complexity(&net, im_size, im_size);
    log.line(&json_stats(
        "complexity",
        &[
            ("flops", Value::from(cx.flops)),
            ("params", Value::from(cx.params)),
            ("acts", Value::from(cx.acts)),
        ],
    ));
    Ok(())
}
