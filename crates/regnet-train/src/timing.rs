//! Timing of forward and training passes, like pycls's `benchmark.compute_time_*`: warm-up
//! iterations, then timed ones; medians are reported since these machines are shared.

use std::time::Instant;

use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor};
use regnet_core::spec::NetSpec;
use regnet_nn::Model;

use crate::loss::{smooth_one_hot, soft_cross_entropy, targets_tensor};
use crate::optimizer::{Sgd, SgdConfig};

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

/// Eval-mode forward time of `model` on random `[batch, c, size, size]` input.
pub fn time_forward(
    model: &Model,
    batch: usize,
    size: usize,
    warmup: usize,
    iters: usize,
) -> Times {
    let device = model.fc.weight.val().device();
    let c = model.spec.in_channels;
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
    times
}

/// Training-step time (forward, loss, backward, SGD update) on random data, on `device`
/// (made autodiff here).
pub fn time_train_step(
    spec: &NetSpec,
    device: &Device,
    batch: usize,
    size: usize,
    warmup: usize,
    iters: usize,
) -> Result<Times, regnet_nn::WeightsError> {
    let device = device.clone().autodiff();
    let mut model = Model::init(spec, 0, false, &device)?;
    let mut sgd = Sgd::new(SgdConfig {
        momentum: 0.9,
        dampening: 0.0,
        nesterov: true,
        weight_decay: 5e-5,
        bn_weight_decay: 5e-5,
        bias_weight_decay: 5e-5,
    });
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
        let loss = soft_cross_entropy(model.forward(x.clone()), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = sgd.step(model, grads, 0.01);
        let _ = model.fc.weight.val().into_data();
        if i >= warmup {
            times.seconds.push(t.elapsed().as_secs_f64());
        }
    }
    Ok(times)
}
