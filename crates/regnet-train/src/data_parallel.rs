//! `NUM_GPUS` as exact data parallelism on one device: the arithmetic of one step of pycls's
//! multi-process training (`torch.nn.parallel.DistributedDataParallel`, one process per GPU).
//!
//! pycls gives each of its `NUM_GPUS` processes `TRAIN.BATCH_SIZE / NUM_GPUS` images; each
//! normalises with the batch statistics of its own images, and DDP averages the gradients
//! (allreduce, then a division by the number of processes) before every process takes the
//! same optimizer step. [`gradients`] does the same on one device: it splits the step's batch
//! into `replicas` equal micro-batches, runs forward and backward on each in turn, and
//! averages their gradients. Only one micro-batch's autodiff graph is alive at a time: each
//! backward pass frees its graph before the next forward pass starts.
//!
//! # BN running statistics
//!
//! The running statistics are those of micro-batch 0 alone, as rank 0 keeps them in pycls:
//! DDP is built with its default `broadcast_buffers=True`, so before every forward pass the
//! running statistics of rank 0 are copied to the other processes, and each process then
//! updates its copy from its own images. The copies of ranks above 0 are overwritten at the
//! next step and never leave their process; rank 0's copy is what pycls checkpoints, tests
//! with and starts precise BN from. Rank 0's copy is updated only by rank 0's images, so the
//! exact equivalent is to update the running statistics from micro-batch 0 and leave them
//! untouched by the others. Averaging the updates of all micro-batches would be a
//! different (if similar) estimate that no pycls run produces.
//!
//! The other micro-batches run on a copy of the model whose BN momentum is 0: their running
//! update is `running * 1 + batch * 0`, which leaves the statistics bit for bit as they were
//! (for finite batch statistics; non-finite ones make the loss non-finite, which stops
//! training anyway).
//!
//! Where several devices exist, the micro-batches could run on them at once (one model copy
//! per device, gradients summed on one); burn's CPU backend has one device, so here they run
//! one after the other.

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::Tensor;
use regnet_core::config::Config;
use regnet_nn::conv::from_tensor;
use regnet_nn::{Model, TensorF32};

use crate::loss::soft_cross_entropy;
use crate::trainer::TrainError;

/// The result of one optimizer step's forward and backward passes.
pub struct StepGrads {
    /// Gradients averaged over the micro-batches (DDP's allreduce mean).
    pub grads: GradientsParams,
    /// Mean over the micro-batches of their mean loss (pycls's `scaled_all_reduce` of the
    /// loss); with equal micro-batches, the mean loss of the whole batch.
    pub loss: f32,
    /// Logits `[n, classes]` of the whole batch, in batch order, detached, on the CPU.
    pub logits: TensorF32,
}

/// The number of pycls processes a config describes: `NUM_GPUS`, 0 counted as one (training
/// refuses 0 before it starts; evaluation alone accepts it).
pub fn replicas(cfg: &Config) -> usize {
    cfg.num_gpus.max(1)
}

/// Loss, logits and gradients of one optimizer step over `replicas` equal micro-batches of
/// images `x` `[n, c, h, w]` with soft targets `targets` `[n, classes]` (both on the autodiff
/// device of `model`): the arithmetic of pycls's DDP step with `NUM_GPUS = replicas`. BN
/// running statistics are updated from micro-batch 0 only (see the module documentation).
///
/// The loader only makes batches that `replicas` divides (the config is checked for it), but
/// skipping corrupt samples (`EXT.ON_CORRUPT skip`) can shorten one: it is then split as
/// evenly as it goes, as if those samples had been missing from some processes' batches,
/// and a batch smaller than `replicas` gives one micro-batch per image.
///
/// Fails when `replicas` is 0 or the batch is empty.
pub fn gradients(
    model: &Model,
    x: Tensor<4>,
    targets: Tensor<2>,
    replicas: usize,
) -> Result<StepGrads, TrainError> {
    let n = x.dims()[0];
    check_split(n, replicas)?;
    let parts = micro_batches(n, replicas);
    if parts.len() == 1 {
        let (grads, loss, logits) = forward_backward(model, x, targets, 1);
        return Ok(StepGrads {
            grads,
            loss,
            logits,
        });
    }
    // Micro-batches after the first leave the running statistics as micro-batch 0 set them.
    let frozen_stats = model.clone().set_bn_momentum(0.0);
    let mut acc = GradientsAccumulator::<Model>::new();
    let mut loss_sum = 0.0f64;
    let mut logits: Option<TensorF32> = None;
    for (r, &(start, m)) in parts.iter().enumerate() {
        let replica = if r == 0 { model } else { &frozen_stats };
        let xr = x.clone().narrow(0, start, m);
        let yr = targets.clone().narrow(0, start, m);
        let (grads, loss, lr) = forward_backward(replica, xr, yr, parts.len());
        acc.accumulate(model, grads);
        loss_sum += loss as f64;
        logits = Some(match logits {
            None => lr,
            Some(mut all) => {
                all.shape[0] += lr.shape[0];
                all.data.extend_from_slice(&lr.data);
                all
            }
        });
    }
    Ok(StepGrads {
        grads: acc.grads(),
        loss: (loss_sum / parts.len() as f64) as f32,
        logits: logits.expect("parts >= 2"),
    })
}

/// `(start, len)` of each micro-batch of a batch of `n` images over `replicas` processes:
/// equal parts, or as even as a batch shortened by skipped samples allows (the first
/// `n % parts` take one image more), never an empty one.
pub(crate) fn micro_batches(n: usize, replicas: usize) -> Vec<(usize, usize)> {
    let parts = replicas.min(n).max(1);
    let mut start = 0;
    (0..parts)
        .map(|r| {
            let m = n / parts + usize::from(r < n % parts);
            start += m;
            (start - m, m)
        })
        .collect()
}

/// Refuses 0 processes and an empty batch.
pub(crate) fn check_split(n: usize, replicas: usize) -> Result<(), TrainError> {
    if replicas == 0 {
        return Err(TrainError::Other(
            "NUM_GPUS: 0 is not a number of processes (use 1 or more)".into(),
        ));
    }
    if n == 0 {
        return Err(TrainError::Other(
            "an empty batch has no gradients (every sample was skipped)".into(),
        ));
    }
    Ok(())
}

/// Forward, loss and backward of one micro-batch; the gradients are those of the loss
/// divided by `replicas`, so that their sum over the micro-batches is DDP's mean. Returns
/// the gradients, the micro-batch's (undivided) mean loss and its detached logits.
fn forward_backward(
    model: &Model,
    x: Tensor<4>,
    targets: Tensor<2>,
    replicas: usize,
) -> (GradientsParams, f32, TensorF32) {
    let logits = model.forward(x);
    let loss = soft_cross_entropy(logits.clone(), targets);
    let loss_val: f32 = loss.clone().into_scalar();
    let logits_cpu = from_tensor(logits.detach());
    let loss = if replicas == 1 {
        loss
    } else {
        loss.div_scalar(replicas as f64)
    };
    let grads = GradientsParams::from_grads(on_worker(|| loss.backward()), model);
    (grads, loss_val, logits_cpu)
}

/// Runs `f` on a thread of rayon's pool (at once if this is one). The CPU kernels' parallel
/// loops, started from a worker, run on it and wake one other thread; started from outside
/// the pool, each of the backward pass's hundreds of loops parks the caller and wakes two.
/// Measured on the project's 2-core machine, 4 rounds alternating, `regnet time` (ms per
/// step, backward on a worker / on the caller): default model 38-43 / 42-57, RegNetX-400MF
/// CIFAR 87-108 / 93-119.
///
/// Only the backward pass moves: burn keeps a module's running state (BN's running
/// statistics) per thread and averages the threads' values, so a forward pass that ran on
/// whichever worker took it corrupted the running statistics (test errors 80-88 % instead
/// of 67-75 % in the sweep test's models); the test
/// `running_statistics_do_not_depend_on_the_threads` guards it.
fn on_worker<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        rayon::scope(|_| f())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};
    use regnet_core::spec::{Activation, AnyNet, Arch, NetSpec, Stage};
    use regnet_nn::StateDict;
    use regnet_nn::layers::BnSettings;

    use crate::loss::{smooth_one_hot, targets_tensor};

    fn spec() -> NetSpec {
        NetSpec {
            in_channels: 1,
            num_classes: 3,
            activation: Activation::Relu,
            arch: Arch::AnyNet(AnyNet {
                stem_type: "res_stem_cifar".parse().unwrap(),
                stem_w: 4,
                block_type: "res_basic_block".parse().unwrap(),
                stages: vec![Stage {
                    depth: 1,
                    width: 4,
                    stride: 2,
                    bot_mul: None,
                    group_w: None,
                }],
                se_r: 0.0,
                head_w: 0,
                stride_1x1: false,
            }),
        }
    }

    fn batch(n: usize, ad: &Device) -> (Tensor<4>, Tensor<2>) {
        let images: Vec<f32> = (0..n * 16).map(|i| ((i * 37 % 23) as f32).sin()).collect();
        let labels: Vec<i64> = (0..n as i64).map(|i| i % 3).collect();
        (
            Tensor::from_data(TensorData::new(images, [n, 1, 4, 4]), ad),
            targets_tensor(smooth_one_hot(&labels, 3, 0.0), n, 3, ad),
        )
    }

    fn stats(sd: &StateDict) -> Vec<(String, Vec<f32>)> {
        sd.tensors
            .iter()
            .filter(|(k, _)| k.contains("running"))
            .map(|(k, v)| (k.clone(), v.data.clone()))
            .collect()
    }

    #[test]
    fn running_statistics_are_micro_batch_zeros_bit_for_bit() {
        let ad = Device::flex().autodiff();
        let init = Model::init(&spec(), 3, false, &ad).unwrap().to_state_dict();
        let fresh = || Model::from_state_dict(&spec(), &init, BnSettings::default(), &ad, "t");
        let (x, y) = batch(6, &ad);
        let model = fresh().unwrap();
        let step = gradients(&model, x.clone(), y, 3).unwrap();
        assert_eq!(step.logits.shape, vec![6, 3]);
        let alone = fresh().unwrap();
        let logits0 = from_tensor(alone.forward(x.narrow(0, 0, 2)));
        assert_eq!(&step.logits.data[..6], &logits0.data[..]);
        let got = stats(&model.to_state_dict());
        assert_eq!(got, stats(&alone.to_state_dict()));
        // ... and they moved: micro-batch 0 did update them.
        assert_ne!(got, stats(&init));
    }

    #[test]
    fn short_batches_split_as_evenly_as_they_go() {
        assert_eq!(micro_batches(8, 2), vec![(0, 4), (4, 4)]);
        assert_eq!(micro_batches(7, 2), vec![(0, 4), (4, 3)]);
        assert_eq!(micro_batches(6, 4), vec![(0, 2), (2, 2), (4, 1), (5, 1)]);
        assert_eq!(micro_batches(2, 4), vec![(0, 1), (1, 1)]);
        assert_eq!(micro_batches(5, 1), vec![(0, 5)]);
        // A batch shortened by skipped samples still gives a step: the mean of the parts'
        // mean losses, logits for every image.
        let ad = Device::flex().autodiff();
        let model = Model::init(&spec(), 3, false, &ad).unwrap();
        let (x, y) = batch(5, &ad);
        let step = gradients(&model, x, y, 2).unwrap();
        assert_eq!(step.logits.shape, vec![5, 3]);
        assert!(step.loss.is_finite());
    }

    #[test]
    fn zero_replicas_and_empty_batches_are_one_line_errors() {
        let ad = Device::flex().autodiff();
        let model = Model::init(&spec(), 3, false, &ad).unwrap();
        let (x, y) = batch(6, &ad);
        let e = gradients(&model, x, y, 0).err().unwrap();
        assert!(e.to_string().starts_with("NUM_GPUS: 0"), "{e}");
        assert!(!e.to_string().contains('\n'));
        let (x, y) = batch(0, &ad);
        assert!(gradients(&model, x, y, 2).is_err());
    }
}
