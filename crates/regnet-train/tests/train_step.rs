//! Two SGD steps of the tiny CIFAR AnyNet in train mode against PyTorch: logits, loss,
//! gradients, momentum buffers, and the whole updated state (weights and BN running
//! statistics), within 1e-4. The steps are the trainer's own [`train_step`].

use std::path::PathBuf;

use burn::optim::GradientsParams;
use regnet_core::config::Config;
use regnet_core::spec::{AnyNet, Arch, NetSpec, Stage};
use regnet_nn::conv::{from_tensor, to_tensor};
use regnet_nn::layers::BnSettings;
use regnet_nn::{Model, StateDict, TensorF32, weights};
use regnet_train::loss::{smooth_one_hot, targets_tensor};
use regnet_train::optimizer::{SgdConfig, TrainOptimizer};
use regnet_train::train_step::train_step;

fn fixture_path() -> PathBuf {
    let dir = std::env::var("REGNET_REFERENCE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference")
        });
    dir.join("fixtures/tiny_cifar_anynet_train_step.safetensors")
}

fn labels(path: &PathBuf, name: &str) -> Vec<i64> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    t.data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn spec() -> NetSpec {
    let stage = |width, stride| Stage {
        depth: 1,
        width,
        stride,
        bot_mul: Some(1.0),
        group_w: Some(8),
    };
    NetSpec {
        in_channels: 3,
        num_classes: 10,
        activation: regnet_core::spec::Activation::Relu,
        arch: Arch::AnyNet(AnyNet {
            stem_type: "res_stem_cifar".parse().unwrap(),
            stem_w: 16,
            block_type: "res_bottleneck_block".parse().unwrap(),
            stages: vec![stage(16, 1), stage(32, 2), stage(64, 2)],
            se_r: 0.0,
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

/// The largest `|a - b|` over the pairs of `a` and `b`.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Asserts every tensor within `tol`; returns the largest difference.
fn assert_close(what: &str, got: &StateDict, want: &StateDict, tol: f32) -> f32 {
    assert_eq!(
        got.tensors.keys().collect::<Vec<_>>(),
        want.tensors.keys().collect::<Vec<_>>(),
        "{what}: names"
    );
    let mut worst = 0.0f32;
    for (name, w) in &want.tensors {
        let g = &got.tensors[name];
        assert_eq!(g.shape, w.shape, "{what} {name}");
        let d = max_abs_diff(&g.data, &w.data);
        assert!(d < tol, "{what} {name}: max |diff| {d}");
        worst = worst.max(d);
    }
    worst
}

#[test]
fn two_sgd_steps_match_pytorch() {
    two_sgd_steps(&regnet_nn::device::cpu());
}

/// The same two steps on the wgpu device (skipped without one unless `REGNET_REQUIRE_GPU`).
#[cfg(feature = "gpu")]
#[test]
fn two_sgd_steps_match_pytorch_on_the_gpu() {
    let Some(gpu) = regnet_nn::gpu_check::gpu_for_tests().unwrap() else {
        return;
    };
    let d = two_sgd_steps(&gpu);
    regnet_nn::gpu_check::gpu_report(&format!(
        "gpu vs PyTorch: two SGD steps (logits, loss, gradients, momentum, weights): max |diff| {d:.2e} (tolerance 1e-4)"
    ));
}

/// The fixture's initial state: the un-prefixed tensors that are not data.
fn initial_state(all: &StateDict) -> StateDict {
    let mut init = StateDict::default();
    for (k, v) in &all.tensors {
        let data = ["input", "logits", "loss"].contains(&k.as_str());
        let prefixed = ["grad.", "momentum_buffer.", "updated.", "step2."]
            .iter()
            .any(|p| k.starts_with(p));
        if !data && !prefixed {
            init.insert(k.clone(), v.clone());
        }
    }
    init
}

/// The fixture's optimizer, from a pycls config: SGD, momentum 0.9, Nesterov, decay 5e-5
/// on every parameter.
fn fixture_optimizer() -> TrainOptimizer {
    let mut cfg = Config::default();
    cfg.merge_overrides(&["OPTIM.WEIGHT_DECAY", "5e-5"])
        .unwrap();
    assert_eq!(
        SgdConfig::from_config(&cfg),
        SgdConfig {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: true,
            weight_decay: 5e-5,
            bn_weight_decay: 5e-5,
            bias_weight_decay: 5e-5,
        }
    );
    TrainOptimizer::from_config(&cfg)
}

/// Asserts step `step`'s logits and loss within 1e-4 of the fixture's; returns the larger
/// difference.
fn check_logits_and_loss(step: &str, logits: &TensorF32, loss: f32, all: &StateDict) -> f32 {
    let want_logits = all.get(&format!("{step}logits")).unwrap();
    let d = max_abs_diff(&logits.data, &want_logits.data);
    assert_eq!(logits.shape, want_logits.shape, "{step}logits");
    assert!(d < 1e-4, "{step}logits: max |diff| {d}");
    let want_loss = all.get(&format!("{step}loss")).unwrap().data[0];
    assert!(
        (loss - want_loss).abs() < 1e-4,
        "{step}loss {loss} vs {want_loss}"
    );
    d.max((loss - want_loss).abs())
}

/// Runs the fixture's two steps on `device`, asserting every value within 1e-4; returns the
/// largest difference.
fn two_sgd_steps(device: &burn::tensor::Device) -> f32 {
    let path = fixture_path();
    let (all, _) = weights::read_safetensors_tensors(&path).unwrap();
    let dev = device.clone().autodiff();
    let mut worst = 0.0f32;
    let init = initial_state(&all);
    let mut model =
        Model::from_state_dict(&spec(), &init, BnSettings::default(), &dev, "fixture").unwrap();
    let mut optimizer = fixture_optimizer();
    for step in ["", "step2."] {
        let x = to_tensor::<4>(all.get(&format!("{step}input")).unwrap(), &dev);
        let y = labels(&path, &format!("{step}labels"));
        let targets = targets_tensor(smooth_one_hot(&y, 10, 0.0), y.len(), 10, &dev);
        // Gradients by pycls name, as the step hands them to the optimizer.
        let mut got_grads = StateDict::default();
        let out = train_step(
            model,
            &mut optimizer,
            (x, targets),
            0.1,
            1,
            |m, _, grads| {
                m.clone().map_params(&mut Collect(grads, &mut got_grads));
                Ok(())
            },
        )
        .unwrap();
        model = out.model;
        worst = worst.max(check_logits_and_loss(step, &out.logits, out.loss, &all));
        worst = worst.max(assert_close(
            &format!("{step}grad"),
            &got_grads,
            &prefixed(&all, &format!("{step}grad.")),
            1e-4,
        ));
        worst = worst.max(assert_close(
            &format!("{step}momentum_buffer"),
            &optimizer.state(),
            &prefixed(&all, &format!("{step}momentum_buffer.")),
            1e-4,
        ));
        worst = worst.max(assert_close(
            &format!("{step}updated"),
            &model.to_state_dict(),
            &prefixed(&all, &format!("{step}updated.")),
            1e-4,
        ));
    }
    worst
}

/// Collects the gradient of every parameter by its pycls name.
struct Collect<'a>(&'a GradientsParams, &'a mut StateDict);

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
