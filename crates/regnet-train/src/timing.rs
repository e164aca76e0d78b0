//! Timing of forward and training passes, like pycls's `benchmark.compute_time_*`: warm-up
//! iterations, then timed ones; medians are reported since these machines are shared.

use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};
use regnet_core::config::Config;
use regnet_core::spec::NetSpec;
use regnet_nn::Model;

use crate::loss::{smooth_one_hot, targets_tensor};
use crate::memory;
use crate::optimizer::TrainOptimizer;
use crate::train_step::train_step;
use crate::trainer::TrainError;

/// Per-iteration times in seconds.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Times {
    /// Every timed iteration.
    pub seconds: Vec<f64>,
}

impl Times {
    /// Median.
    pub fn median(&self) -> f64 {
        let mut s = self.seconds.clone();
        s.sort_by(f64::total_cmp);
        if s.is_empty() {
            return f64::NAN;
        }
        let n = s.len();
        if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        }
    }

    /// Mean.
    pub fn mean(&self) -> f64 {
        self.seconds.iter().sum::<f64>() / self.seconds.len() as f64
    }
}

fn sync(device: &Device) {
    // GPU backends run asynchronously; reading a value back waits for the queue.
    let _ = Tensor::<1>::zeros([1], device).into_data();
}

/// Eval-mode forward time of `model` on random `[batch, c, size, size]` input; sizes the
/// machine cannot hold are refused first (see [`crate::memory`]).
pub fn time_forward(
    model: &Model,
    batch: usize,
    size: usize,
    warmup: usize,
    iters: usize,
) -> Result<Times, TrainError> {
    let device = model.fc.weight.val().device();
    let c = model.spec.in_channels;
    check_run(&model.spec, [batch, size, warmup, iters], false, &device)?;
    let x = Tensor::<4>::random(
        [batch, c, size, size],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let mut times = Times::default();
    for i in 0..warmup + iters {
        let t = Instant::now();
        let y = model.forward(x.clone());
        let _ = y.into_data();
        sync(&device);
        if i >= warmup {
            times.seconds.push(t.elapsed().as_secs_f64());
        }
    }
    Ok(times)
}

/// The checks of [`crate::memory`] for a timing run.
fn check_run(
    spec: &NetSpec,
    [batch, size, warmup, iters]: [usize; 4],
    training: bool,
    device: &Device,
) -> Result<(), TrainError> {
    memory::check_input(batch, spec.in_channels, size)?;
    memory::check_iters(warmup, iters)?;
    let what = format!("batch {batch} at {size}x{size}");
    memory::check_memory(spec, [batch, size], training, device, &what)
}

/// Training-step time of [`train_step`] (forward, loss, backward, and an update by the
/// optimizer `OPTIM.OPTIMIZER` names, with its config) on random data, on `device` (made
/// autodiff here). As pycls's `compute_time_train`, this is one replica's step: `batch` is
/// the per-GPU batch, in one micro-batch.
pub fn time_train_step(
    cfg: &Config,
    spec: &NetSpec,
    device: &Device,
    [batch, size]: [usize; 2],
    warmup: usize,
    iters: usize,
) -> Result<Times, TrainError> {
    check_run(spec, [batch, size, warmup, iters], true, device)?;
    let device = device.clone().autodiff();
    let mut model = Model::init(spec, 0, false, &device)?;
    let mut optimizer = TrainOptimizer::from_config(cfg);
    let c = spec.in_channels;
    let x = Tensor::<4>::random(
        [batch, c, size, size],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let labels: Vec<i64> = (0..batch as i64)
        .map(|i| i % spec.num_classes as i64)
        .collect();
    let y = targets_tensor(
        smooth_one_hot(&labels, spec.num_classes, 0.0),
        batch,
        spec.num_classes,
        &device,
    );
    let mut times = Times::default();
    for i in 0..warmup + iters {
        let t = Instant::now();
        // The rate does not change the work; a small one keeps the weights finite.
        let step = train_step(
            model,
            &mut optimizer,
            (x.clone(), y.clone()),
            0.01,
            1,
            |_, _, _| Ok(()),
        )?;
        model = step.model;
        let _ = model.fc.weight.val().into_data();
        if i >= warmup {
            times.seconds.push(t.elapsed().as_secs_f64());
        }
    }
    Ok(times)
}
