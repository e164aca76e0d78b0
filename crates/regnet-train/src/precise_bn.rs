//! Precise BN statistics (pycls's `compute_precise_bn_stats`): after an epoch, each BN's
//! running mean and variance are replaced by the average, over the first
//! `NUM_SAMPLES_PRECISE / BATCH_SIZE` training batches of the epoch, of the batch mean and
//! (unbiased) variance, computed with the final weights.

use burn::tensor::{Device, Tensor, TensorData};
use regnet_core::spec::NetSpec;
use regnet_data::Loader;
use regnet_nn::layers::BnSettings;
use regnet_nn::{Model, StateDict};

use crate::trainer::TrainError;

/// Returns `model` (on the autodiff device `ad`) with precise BN statistics from `iters`
/// batches of `loader`'s epoch `epoch`.
pub fn recompute(
    model: Model,
    loader: &Loader,
    epoch: usize,
    iters: usize,
    spec: &NetSpec,
    bn: BnSettings,
    ad: &Device,
) -> Result<Model, TrainError> {
    let batches = loader
        .epoch(epoch as u64)
        .take(iters)
        .map(|b| b.map(|b| (b.images, b.shape)).map_err(TrainError::from));
    recompute_from(model, batches, spec, bn, ad)
}

/// [`recompute`] from any batches `(images, [n, c, h, w])`.
pub fn recompute_from(
    model: Model,
    batches: impl Iterator<Item = Result<(Vec<f32>, [usize; 4]), TrainError>>,
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
        let x = Tensor::<4>::from_data(TensorData::new(images, shape), ad);
        let _ = model.forward(x);
        let sd = model.to_state_dict();
        for name in &stat_names {
            let t = sd.get(name).expect("BN statistics are in the state dict");
            match sums.tensors.get_mut(name) {
                Some(acc) => acc.data.iter_mut().zip(&t.data).for_each(|(a, b)| *a += *b),
                None => sums.insert(name.clone(), t.clone()),
            }
        }
        done += 1;
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
}
