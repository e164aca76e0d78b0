//! Helpers of the compiled-path tests: random weights with non-trivial BN, the burn model's
//! eval logits, and the error metric.

#![allow(dead_code)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use regnet_core::network::{Network, ParamKind};
use regnet_core::spec::NetSpec;
use regnet_infer::{CompiledNet, SimdLevel};
use regnet_nn::conv::{from_tensor, to_tensor};
use regnet_nn::layers::BnSettings;
use regnet_nn::{Model, StateDict, TensorF32, device};

/// Every tensor of `net` drawn at random: conv weights with He scale, BN statistics and
/// affine parameters far from the identity, so that a folding mistake shows.
pub fn random_state_dict(net: &Network, seed: u64) -> StateDict {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sd = StateDict::default();
    for p in net.parameters() {
        let n = p.numel();
        let mut u =
            |lo: f32, hi: f32| -> Vec<f32> { (0..n).map(|_| rng.random_range(lo..hi)).collect() };
        let data = match p.kind {
            ParamKind::ConvWeight { .. } => {
                let fan_in = (n / p.shape[0]) as f32;
                let a = (6.0 / fan_in).sqrt();
                u(-a, a)
            }
            ParamKind::ConvBias { .. } | ParamKind::BnBias | ParamKind::FcBias => u(-0.2, 0.2),
            ParamKind::BnWeight { .. } => u(0.5, 1.5),
            ParamKind::BnRunningMean => u(-0.3, 0.3),
            ParamKind::BnRunningVar => u(0.5, 2.0),
            ParamKind::FcWeight => u(-0.1, 0.1),
        };
        sd.insert(p.name.clone(), TensorF32::new(p.shape.clone(), data));
    }
    sd
}

/// A random input `[n, c, h, w]` in [-1, 1).
pub fn random_input(shape: [usize; 4], seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..shape.iter().product::<usize>())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect()
}

/// The burn model's eval logits.
pub fn burn_logits(spec: &NetSpec, sd: &StateDict, input: &[f32], shape: [usize; 4]) -> Vec<f32> {
    let dev = device::cpu();
    let model = Model::from_state_dict(spec, sd, BnSettings::default(), &dev, "test").unwrap();
    let x = to_tensor::<4>(&TensorF32::new(shape.to_vec(), input.to_vec()), &dev);
    from_tensor(model.forward(x)).data
}

/// `max |got - want| / max |want|`: the largest error relative to the largest logit.
pub fn rel_err(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "logit counts differ");
    assert!(got.iter().all(|v| v.is_finite()), "non-finite logits");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "reference logits are all zero");
    let diff = got
        .iter()
        .zip(want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    diff / scale
}

/// Compiles `spec` with random weights and checks the compiled logits against burn's at
/// every SIMD level this CPU has, for each input shape; returns the worst relative error.
pub fn check_spec(spec: &NetSpec, shapes: &[[usize; 4]], seed: u64) -> f32 {
    let net = Network::from_spec(spec).unwrap();
    let sd = random_state_dict(&net, seed);
    let mut compiled = CompiledNet::compile(&net, &sd, 1e-5).unwrap();
    let mut worst = 0f32;
    for (i, &shape) in shapes.iter().enumerate() {
        let input = random_input(shape, seed + 1000 + i as u64);
        let want = burn_logits(spec, &sd, &input, shape);
        for level in SimdLevel::available() {
            compiled.set_level(level).unwrap();
            let got = compiled.forward(&input, shape).unwrap();
            let e = rel_err(&got, &want);
            assert!(
                e < 1e-5,
                "{spec:?}\nshape {shape:?} level {level}: relative error {e}"
            );
            worst = worst.max(e);
        }
    }
    worst
}
