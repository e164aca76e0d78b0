//! Adam and AdamW against PyTorch: two steps on fixed parameters and gradients, with
//! pycls's weight-decay groups and a learning-rate change between the steps
//! (`tests/data/adam_reference.json`, written by `tools/reference/adam_reference.py`).

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};
use regnet_core::config::{Config, Optimizer};
use regnet_nn::model::Role;
use regnet_train::adam::{ADAM_EPS, Adam, AdamConfig, AdamState};
use regnet_train::optimizer::{DecayGroups, TrainOptimizer};
use serde_json::Value;

type Named = BTreeMap<String, Vec<f32>>;

fn reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/adam_reference.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn named(v: &Value) -> Named {
    serde_json::from_value(v.clone()).unwrap()
}

fn role(name: &str) -> Role {
    match name {
        "weight" => Role::Weight,
        "bn_weight" => Role::BnWeight,
        "bias" => Role::Bias,
        other => panic!("role {other}"),
    }
}

fn tensor(v: &[f32], device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
}

fn values(t: &Tensor<1>) -> Vec<f32> {
    t.clone()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-6, "{what}[{i}]: {g} vs PyTorch {w}");
    }
}

/// The decay groups of a config with every pycls custom-decay key set, so that each of the
/// three parameter kinds gets the decay the reference used for it.
fn decay_groups(params: &Value) -> DecayGroups {
    let wd = |n: &str| params[n]["weight_decay"].as_f64().unwrap();
    let mut cfg = Config::default();
    cfg.optim.weight_decay = wd("s1.b1.f.a.weight");
    cfg.bn.use_custom_weight_decay = true;
    cfg.bn.custom_weight_decay = wd("s1.b1.f.a_bn.weight");
    cfg.optim.bias_use_custom_weight_decay = true;
    cfg.optim.bias_custom_weight_decay = wd("head.fc.bias");
    DecayGroups::from_config(&cfg)
}

fn check(kind: Optimizer) {
    let r = reference();
    let key = kind.name();
    let mut cfg = Config::default();
    cfg.optim.optimizer = kind;
    cfg.optim.beta1 = r["beta1"].as_f64().unwrap();
    cfg.optim.beta2 = r["beta2"].as_f64().unwrap();
    let adam = AdamConfig {
        decay: decay_groups(&r["params"]),
        ..AdamConfig::from_config(&cfg)
    };
    assert_eq!(adam.eps, r["eps"].as_f64().unwrap());
    assert_eq!(adam.decoupled, kind == Optimizer::AdamW);
    let device = Device::default();
    let mut params: BTreeMap<String, Tensor<1>> = named(&r["init"])
        .iter()
        .map(|(n, v)| (n.clone(), tensor(v, &device)))
        .collect();
    let mut state: BTreeMap<String, AdamState> = BTreeMap::new();
    for (step, lr) in r["lrs"].as_array().unwrap().iter().enumerate() {
        let grads = named(&r["grads"][step]);
        let want = &r[key][step];
        for (name, p) in params.iter_mut() {
            let wd = adam
                .decay
                .of(role(r["params"][name]["role"].as_str().unwrap()));
            let g = tensor(&grads[name], &device);
            let (np, s) = adam.update(p.clone(), g, state.remove(name), wd, lr.as_f64().unwrap());
            let at = |what: &str| format!("{key} step {} {what} {name}", step + 1);
            assert_close(&at("param"), &values(&np), &named(&want["params"])[name]);
            assert_close(
                &at("exp_avg"),
                &values(&s.exp_avg),
                &named(&want["exp_avg"])[name],
            );
            let v = &named(&want["exp_avg_sq"])[name];
            assert_close(&at("exp_avg_sq"), &values(&s.exp_avg_sq), v);
            assert_eq!(s.step, step as u64 + 1);
            *p = np;
            state.insert(name.clone(), s);
        }
    }
}

#[test]
fn adam_matches_pytorch() {
    check(Optimizer::Adam);
}

#[test]
fn adamw_matches_pytorch() {
    check(Optimizer::AdamW);
}

#[test]
fn config_picks_the_optimizer_and_pycls_defaults() {
    let mut cfg = Config::default();
    assert!(matches!(
        TrainOptimizer::from_config(&cfg),
        TrainOptimizer::Sgd(_)
    ));
    cfg.merge_overrides(&[
        "OPTIM.OPTIMIZER",
        "adamw",
        "BN.USE_CUSTOM_WEIGHT_DECAY",
        "True",
    ])
    .unwrap();
    let TrainOptimizer::Adam(a) = TrainOptimizer::from_config(&cfg) else {
        panic!("adamw builds Adam");
    };
    assert!(a.config.decoupled);
    assert_eq!(
        (a.config.beta1, a.config.beta2, a.config.eps),
        (0.9, 0.999, ADAM_EPS)
    );
    assert_eq!(a.config.decay.of(Role::BnBias), 0.0);
    assert_eq!(a.config.decay.of(Role::Weight), 5e-4);
    let e = cfg
        .merge_overrides(&["OPTIM.OPTIMIZER", "rmsprop"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("OPTIM.OPTIMIZER") && e.contains("`adamw`"),
        "{e}"
    );
}

#[test]
fn state_round_trips_and_refuses_sgd_buffers() {
    let device = Device::default();
    let cfg = AdamConfig::from_config(&Config::default());
    let (_, s) = cfg.update(
        tensor(&[1.0, 2.0], &device),
        tensor(&[0.5, -0.5], &device),
        None,
        0.0,
        0.1,
    );
    let mut adam = Adam::new(cfg);
    let mut sd = regnet_nn::StateDict::default();
    for (prefix, t) in [("exp_avg.", &s.exp_avg), ("exp_avg_sq.", &s.exp_avg_sq)] {
        sd.insert(
            format!("{prefix}w"),
            regnet_nn::TensorF32::new(vec![2], values(t)),
        );
    }
    sd.insert("step.w", regnet_nn::TensorF32::new(vec![1], vec![1.0]));
    adam.load_state(&sd, &device).unwrap();
    assert_eq!(adam.state(), sd);
    let mut sgd = regnet_nn::StateDict::default();
    sgd.insert("w", regnet_nn::TensorF32::new(vec![2], vec![0.0, 0.0]));
    let e = adam.load_state(&sgd, &device).unwrap_err().to_string();
    assert!(e.contains("`w` is not Adam state"), "{e}");
    let mut opt = TrainOptimizer::from_config(&Config::default());
    let e = opt.load_state(&sd, &device).unwrap_err().to_string();
    assert!(e.contains("OPTIM.OPTIMIZER is sgd"), "{e}");
}
