//! Precise BN statistics (pycls's `compute_precise_bn_stats`): after an epoch, each BN's
//! running mean and variance are replaced by the average of the batch means and (unbiased)
//! variances of the first training batches of the epoch, computed with the final weights.
//!
//! With `NUM_GPUS` processes pycls computes them per process, on that process's batches of
//! `TRAIN.BATCH_SIZE / NUM_GPUS` images, and averages the processes' results
//! (`scaled_all_reduce`): the batch size sets the statistics (the unbiased variance of 128
//! images is not that of 1024), so here too each loader batch (one optimizer step, see
//! [`crate::data`]) is split into `NUM_GPUS` micro-batches, and all micro-batches weigh
//! the same.

use burn::tensor::{Device, Tensor, TensorData};
use regnet_core::config::Config;
use regnet_core::spec::NetSpec;
use regnet_data::Loader;
use regnet_nn::layers::BnSettings;
use regnet_nn::{Model, StateDict};

use crate::data_parallel::{check_split, micro_batches, replicas};
use crate::trainer::TrainError;

/// pycls's number of precise-BN batches, counted in loader batches: each of the `NUM_GPUS`
/// processes runs `int(BN.NUM_SAMPLES_PRECISE / (TRAIN.BATCH_SIZE / NUM_GPUS) / NUM_GPUS)`
/// of its batches, together as many whole loader batches; at most `loader_batches` (an epoch).
pub fn iterations(cfg: &Config, loader_batches: usize) -> usize {
    let gpus = replicas(cfg);
    let per_process = (cfg.train.batch_size / gpus).max(1);
    (cfg.bn.num_samples_precise / per_process / gpus).min(loader_batches)
}

/// Returns `model` (on the autodiff device `ad`) with precise BN statistics from the first
/// [`iterations`] batches of `loader`'s epoch `epoch`, each split into the `NUM_GPUS`
/// per-process batches of `cfg`.
pub fn recompute_epoch(
    model: Model,
    loader: &Loader,
    epoch: usize,
    cfg: &Config,
    spec: &NetSpec,
    bn: BnSettings,
    ad: &Device,
) -> Result<Model, TrainError> {
    let iters = iterations(cfg, loader.num_batches());
    let batches = loader
        .epoch(epoch as u64)
        .take(iters)
        .map(|b| b.map(|b| (b.images, b.shape)).map_err(TrainError::from));
    recompute_from(model, batches, replicas(cfg), spec, bn, ad)
}

/// [`recompute_epoch`] from any batches `(images, [n, c, h, w])`, each split into
/// `replicas` equal micro-batches whose statistics all weigh the same.
pub fn recompute_from(
    model: Model,
    batches: impl Iterator<Item = Result<(Vec<f32>, [usize; 4]), TrainError>>,
    replicas: usize,
    spec: &NetSpec,
    bn: BnSettings,
    ad: &Device,
) -> Result<Model, TrainError> {
    // Momentum 1: each forward leaves exactly the batch's statistics in the running ones.
    let model = model.set_bn_momentum(1.0);
    let stat_names: Vec<String> = model
        .to_state_dict()
        .tensors
        .keys()
        .filter(|k| k.ends_with(".running_mean") || k.ends_with(".running_var"))
        .cloned()
        .collect();
    let mut sums = StateDict::default();
    let mut done = 0;
    for batch in batches {
        let (images, shape) = batch?;
        if shape[0] == 0 {
            continue;
        }
        check_split(shape[0], replicas)?;
        let x = Tensor::<4>::from_data(TensorData::new(images, shape), ad);
        for (start, m) in micro_batches(shape[0], replicas) {
            let _ = model.forward(x.clone().narrow(0, start, m));
            add_stats(&mut sums, &model.to_state_dict(), &stat_names);
            done += 1;
        }
    }
    if done == 0 {
        return Ok(model.set_bn_momentum(bn.momentum));
    }
    let mut sd = model.to_state_dict();
    for (name, acc) in sums.tensors {
        let avg: Vec<f32> = acc.data.iter().map(|v| v / done as f32).collect();
        sd.insert(name, regnet_nn::TensorF32::new(acc.shape, avg));
    }
    // Rebuilt with the usual momentum; the optimizer keys its buffers by name, so new
    // parameter ids do not matter.
    Ok(Model::from_state_dict(spec, &sd, bn, ad, "precise BN")?)
}

/// Adds the statistics `names` of `sd` to `sums`.
fn add_stats(sums: &mut StateDict, sd: &StateDict, names: &[String]) {
    for name in names {
        let t = sd.get(name).expect("BN statistics are in the state dict");
        match sums.tensors.get_mut(name) {
            Some(acc) => acc.data.iter_mut().zip(&t.data).for_each(|(a, b)| *a += *b),
            None => sums.insert(name.clone(), t.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regnet_core::spec::{Activation, AnyNet, Arch, Stage};
    use regnet_nn::TensorF32;

    /// A net whose stem conv passes its single input channel through, so that the stem
    /// BN sees the input itself.
    fn identity_stem_model(ad: &Device) -> (NetSpec, Model) {
        let spec = NetSpec {
            in_channels: 1,
            num_classes: 2,
            activation: Activation::Relu,
            arch: Arch::AnyNet(AnyNet {
                stem_type: "res_stem_cifar".parse().unwrap(),
                stem_w: 1,
                block_type: "vanilla_block".parse().unwrap(),
                stages: vec![Stage {
                    depth: 1,
                    width: 2,
                    stride: 1,
                    bot_mul: None,
                    group_w: None,
                }],
                se_r: 0.0,
                head_w: 0,
                stride_1x1: false,
            }),
        };
        let model = Model::init(&spec, 0, false, ad).unwrap();
        let mut sd = model.to_state_dict();
        let mut w = vec![0.0; 9];
        w[4] = 1.0;
        sd.insert("stem.conv.weight", TensorF32::new(vec![1, 1, 3, 3], w));
        (
            spec.clone(),
            Model::from_state_dict(&spec, &sd, BnSettings::default(), ad, "test").unwrap(),
        )
    }

    #[test]
    fn stem_statistics_are_averages_of_batch_statistics() {
        let ad = Device::flex().autodiff();
        let (spec, model) = identity_stem_model(&ad);
        // Two batches of two 2x2 images: values chosen for easy sums.
        let b1 = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let b2 = vec![0.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0];
        let batches = vec![Ok((b1, [2, 1, 2, 2])), Ok((b2, [2, 1, 2, 2]))];
        let model = recompute_from(
            model,
            batches.into_iter(),
            1,
            &spec,
            BnSettings::default(),
            &ad,
        )
        .unwrap();
        let sd = model.to_state_dict();
        // Batch 1: mean 4.5, unbiased variance 42/7 = 6. Batch 2: mean 1, variance 8/7.
        let mean = sd.get("stem.bn.running_mean").unwrap().data[0];
        let var = sd.get("stem.bn.running_var").unwrap().data[0];
        assert!((mean - 2.75).abs() < 1e-6, "{mean}");
        assert!((var - (6.0 + 8.0 / 7.0) / 2.0).abs() < 1e-5, "{var}");
        // The momentum is restored: one more training forward moves the stats by 10%.
        let x = Tensor::<4>::from_data(TensorData::new(vec![10.0f32; 8], [2, 1, 2, 2]), &ad);
        let _ = model.forward(x);
        let mean2 = model
            .to_state_dict()
            .get("stem.bn.running_mean")
            .unwrap()
            .data[0];
        assert!((mean2 - (0.9 * 2.75 + 0.1 * 10.0)).abs() < 1e-5, "{mean2}");
    }

    #[test]
    fn each_process_batch_gives_its_own_statistics() {
        let ad = Device::flex().autodiff();
        let (spec, model) = identity_stem_model(&ad);
        // One batch of two images, split between two processes: image 1 (1..4) has mean 2.5
        // and unbiased variance 5/3, image 2 (5..8) mean 6.5 and the same variance. Unsplit,
        // the variance would be 6.
        let b = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let batches = vec![Ok((b, [2, 1, 2, 2]))];
        let model = recompute_from(
            model,
            batches.into_iter(),
            2,
            &spec,
            BnSettings::default(),
            &ad,
        )
        .unwrap();
        let sd = model.to_state_dict();
        let mean = sd.get("stem.bn.running_mean").unwrap().data[0];
        let var = sd.get("stem.bn.running_var").unwrap().data[0];
        assert!((mean - 4.5).abs() < 1e-6, "{mean}");
        assert!((var - 5.0 / 3.0).abs() < 1e-5, "{var}");
    }

    #[test]
    fn iterations_follow_pycls() {
        let mut cfg = Config::default();
        cfg.bn.num_samples_precise = 8192;
        cfg.train.batch_size = 1024;
        cfg.num_gpus = 8;
        // Per process: int(8192 / 128 / 8) = 8 batches of 128, i.e. 8 steps of 1024.
        assert_eq!(iterations(&cfg, 1000), 8);
        assert_eq!(iterations(&cfg, 5), 5, "at most an epoch");
        cfg.num_gpus = 1;
        cfg.train.batch_size = 100;
        assert_eq!(iterations(&cfg, 1000), 81);
        cfg.num_gpus = 0;
        assert_eq!(
            iterations(&cfg, 1000),
            81,
            "NUM_GPUS 0 counts as one process"
        );
    }
}
