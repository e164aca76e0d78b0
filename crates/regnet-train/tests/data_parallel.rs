//! `NUM_GPUS 2` against PyTorch's DistributedDataParallel (2 processes, gloo, a pycls AnyNet;
//! `tools/reference/ddp_reference.py`): two SGD steps on fixed global batches of 8 images
//! reproduce the loss, logits, averaged gradients, weights and rank 0's BN running statistics
//! within 1e-4. The same steps without micro-batches (`replicas` 1) miss by far more, so the
//! test proves that the micro-batching is what matches.

use std::path::PathBuf;

use burn::optim::GradientsParams;
use regnet_core::spec::{Activation, AnyNet, Arch, NetSpec, Stage};
use regnet_nn::conv::{from_tensor, to_tensor};
use regnet_nn::layers::BnSettings;
use regnet_nn::{Model, StateDict, TensorF32, weights};
use regnet_train::data_parallel::gradients;
use regnet_train::loss::{smooth_one_hot, targets_tensor};
use regnet_train::optimizer::{Sgd, SgdConfig};

const TOL: f32 = 1e-4;
const CLASSES: usize = 5;
const STEPS: [&str; 2] = ["", "step2."];

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ddp_two_steps.safetensors")
}

fn labels(name: &str) -> Vec<i64> {
    let bytes = std::fs::read(fixture_path()).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensor(name)
        .unwrap()
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// The script's model: res_stem_cifar 8, two bottleneck stages, SE 0.25, 5 classes.
fn spec() -> NetSpec {
    let stage = |width, stride, group_w| Stage {
        depth: 1,
        width,
        stride,
        bot_mul: Some(1.0),
        group_w: Some(group_w),
    };
    NetSpec {
        in_channels: 3,
        num_classes: CLASSES,
        activation: Activation::Relu,
        arch: Arch::AnyNet(AnyNet {
            stem_type: "res_stem_cifar".parse().unwrap(),
            stem_w: 8,
            block_type: "res_bottleneck_block".parse().unwrap(),
            stages: vec![stage(8, 1, 4), stage(16, 2, 8)],
            se_r: 0.25,
            head_w: 0,
            stride_1x1: false,
        }),
    }
}

fn prefixed(all: &StateDict, prefix: &str) -> StateDict {
    let mut sd = StateDict::default();
    for (k, v) in &all.tensors {
        if let Some(rest) = k.strip_prefix(prefix) {
            sd.insert(rest, v.clone());
        }
    }
    sd
}

fn max_diff(a: &TensorF32, b: &TensorF32) -> f32 {
    assert_eq!(a.shape, b.shape);
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The largest difference over all tensors (names must agree), with the name where it is.
fn worst(got: &StateDict, want: &StateDict) -> (f32, String) {
    assert_eq!(
        got.tensors.keys().collect::<Vec<_>>(),
        want.tensors.keys().collect::<Vec<_>>()
    );
    want.tensors
        .iter()
        .map(|(name, w)| (max_diff(&got.tensors[name], w), name.clone()))
        .fold((0.0, String::new()), |a, b| if b.0 > a.0 { b } else { a })
}

/// Gradients by pycls name.
fn named_grads(model: Model, grads: &GradientsParams) -> (Model, StateDict) {
    struct Collect<'a>(&'a GradientsParams, StateDict);
    impl regnet_nn::model::ParamMapper for Collect<'_> {
        fn map<const D: usize>(
            &mut self,
            name: &str,
            _: regnet_nn::model::Role,
            p: burn::module::Param<burn::tensor::Tensor<D>>,
        ) -> burn::module::Param<burn::tensor::Tensor<D>> {
            if let Some(g) = self.0.get::<D>(p.id) {
                self.1.insert(name, from_tensor(g));
            }
            p
        }
    }
    let mut c = Collect(grads, StateDict::default());
    let model = model.map_params(&mut c);
    (model, c.1)
}

/// What one step produced, as differences from the fixture.
#[derive(Debug, Default)]
struct StepDiffs {
    loss: f32,
    logits: f32,
    grads: (f32, String),
    updated: (f32, String),
}

/// Two pycls SGD steps with `replicas` micro-batches per step.
fn run(replicas: usize) -> Vec<StepDiffs> {
    let (all, _) = weights::read_safetensors_tensors(&fixture_path()).unwrap();
    let dev = regnet_nn::device::cpu().autodiff();
    let mut init = StateDict::default();
    for (k, v) in &all.tensors {
        let data = ["input", "logits", "loss"].contains(&k.as_str());
        let prefixed = ["grad.", "updated.", "step2."]
            .iter()
            .any(|p| k.starts_with(p));
        if !data && !prefixed {
            init.insert(k.clone(), v.clone());
        }
    }
    let mut model =
        Model::from_state_dict(&spec(), &init, BnSettings::default(), &dev, "fixture").unwrap();
    let mut sgd = Sgd::new(SgdConfig {
        momentum: 0.9,
        dampening: 0.0,
        nesterov: true,
        weight_decay: 5e-4,
        bn_weight_decay: 5e-4,
        bias_weight_decay: 5e-4,
    });
    let mut out = Vec::new();
    for step in STEPS {
        let x = to_tensor::<4>(all.get(&format!("{step}input")).unwrap(), &dev);
        let y = labels(&format!("{step}labels"));
        let targets = targets_tensor(smooth_one_hot(&y, CLASSES, 0.0), y.len(), CLASSES, &dev);
        let got = gradients(&model, x, targets, replicas).unwrap();
        let mut d = StepDiffs {
            loss: (got.loss - all.get(&format!("{step}loss")).unwrap().data[0]).abs(),
            logits: max_diff(&got.logits, all.get(&format!("{step}logits")).unwrap()),
            ..StepDiffs::default()
        };
        if step.is_empty() {
            let (m, g) = named_grads(model, &got.grads);
            model = m;
            d.grads = worst(&g, &prefixed(&all, "grad."));
        }
        model = sgd.step(model, got.grads, 0.1);
        d.updated = worst(
            &model.to_state_dict(),
            &prefixed(&all, &format!("{step}updated.")),
        );
        out.push(d);
    }
    out
}

#[test]
fn two_replicas_match_pytorch_ddp() {
    for (step, d) in STEPS.iter().zip(run(2)) {
        assert!(d.loss < TOL, "{step}loss: {d:?}");
        assert!(d.logits < TOL, "{step}logits: {d:?}");
        assert!(d.grads.0 < TOL, "{step}grad: {d:?}");
        assert!(d.updated.0 < TOL, "{step}updated: {d:?}");
    }
}

#[test]
fn one_replica_does_not_match_pytorch_ddp() {
    // One batch of 8 normalises with other statistics than two of 4: the loss, the weights
    // and the BN running statistics all move by more than the tolerance.
    let d = run(1);
    for step in &d {
        assert!(step.loss > TOL && step.logits > TOL, "{d:?}");
        assert!(step.updated.0 > 10.0 * TOL, "{d:?}");
    }
    assert!(d[0].grads.0 > 10.0 * TOL, "{d:?}");
}

#[test]
fn running_statistics_are_rank_zeros() {
    // The fixture itself shows how PyTorch keeps them: after step 1 the stem BN's running
    // mean is rank 0's update (from images 0..4), not the update from all 8 images, which is
    // also the mean of both ranks' updates (equal halves). The stem conv is not yet updated
    // when step 1's forward pass runs, so its batch means follow from the input alone.
    let (all, _) = weights::read_safetensors_tensors(&fixture_path()).unwrap();
    let init = &all.get("stem.bn.running_mean").unwrap().data;
    let want = &all.get("updated.stem.bn.running_mean").unwrap().data;
    let x = all.get("input").unwrap();
    let w = all.get("stem.conv.weight").unwrap();
    let momentum = 0.1f32;
    let miss = |batch_mean: Vec<f32>| {
        init.iter()
            .zip(&batch_mean)
            .zip(want)
            .map(|((r, b), w)| ((1.0 - momentum) * r + momentum * b - w).abs())
            .fold(0.0, f32::max)
    };
    let rank0 = miss(stem_batch_mean(x, w, 0, 4));
    let both = miss(stem_batch_mean(x, w, 0, 8));
    assert!(rank0 < TOL, "rank 0's update misses by {rank0}");
    assert!(
        both > 10.0 * TOL,
        "the update from all images misses by only {both}"
    );
}

/// Per-channel mean of the stem conv (3x3, stride 1, padding 1) over images `lo..lo + n`.
fn stem_batch_mean(x: &TensorF32, w: &TensorF32, lo: usize, n: usize) -> Vec<f32> {
    let [_, c_in, h, wd] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let c_out = w.shape[0];
    let mut sums = vec![0.0f64; c_out];
    for img in lo..lo + n {
        for (co, sum) in sums.iter_mut().enumerate() {
            for i in 0..h {
                for j in 0..wd {
                    let mut acc = 0.0f64;
                    for ci in 0..c_in {
                        for ki in 0..3 {
                            for kj in 0..3 {
                                let (ii, jj) = (i + ki, j + kj);
                                if ii < 1 || jj < 1 || ii > h || jj > wd {
                                    continue;
                                }
                                let xv = x.data[((img * c_in + ci) * h + ii - 1) * wd + jj - 1];
                                let wv = w.data[((co * c_in + ci) * 3 + ki) * 3 + kj];
                                acc += (xv * wv) as f64;
                            }
                        }
                    }
                    *sum += acc;
                }
            }
        }
    }
    sums.iter()
        .map(|s| (s / (n * h * wd) as f64) as f32)
        .collect()
}
