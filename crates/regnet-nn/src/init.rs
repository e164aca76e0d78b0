//! pycls initialisation, as a state dict: conv weights N(0, sqrt(2 / (k*k*w_out))) (not
//! divided by groups), BN gamma 1 (0 for final BNs with `zero_init_final_gamma`), beta 0,
//! running mean 0 and variance 1, fc N(0, 0.01) with bias 0, SE conv biases as PyTorch
//! initialises them. Seeded and reproducible (ChaCha), though not PyTorch's random stream.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use regnet_core::network::{Network, ParamKind};

use crate::state_dict::{StateDict, TensorF32};

/// Initial weights for `net`, from `seed`.
pub fn init_state_dict(net: &Network, seed: u64, zero_init_final_gamma: bool) -> StateDict {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sd = StateDict::default();
    for p in net.parameters() {
        let n = p.numel();
        let data: Vec<f32> = match p.kind {
            ParamKind::ConvWeight { fan_out } => {
                let normal = Normal::new(0.0, (2.0 / fan_out as f64).sqrt()).expect("positive std");
                (0..n).map(|_| normal.sample(&mut rng) as f32).collect()
            }
            ParamKind::ConvBias { fan_in } => {
                let bound = 1.0 / (fan_in as f64).sqrt();
                (0..n)
                    .map(|_| rng.random_range(-bound..bound) as f32)
                    .collect()
            }
            ParamKind::BnWeight { final_bn } => {
                vec![
                    if final_bn && zero_init_final_gamma {
                        0.0
                    } else {
                        1.0
                    };
                    n
                ]
            }
            ParamKind::BnBias | ParamKind::BnRunningMean | ParamKind::FcBias => vec![0.0; n],
            ParamKind::BnRunningVar => vec![1.0; n],
            ParamKind::FcWeight => {
                let normal = Normal::new(0.0, 0.01).expect("positive std");
                (0..n).map(|_| normal.sample(&mut rng) as f32).collect()
            }
        };
        sd.insert(p.name, TensorF32::new(p.shape, data));
    }
    sd
}

#[cfg(test)]
mod tests {
    use super::*;
    use regnet_core::zoo;

    #[test]
    fn pycls_init_statistics() {
        let spec = zoo::lookup("RegNetX-200MF").unwrap().spec();
        let net = Network::from_spec(&spec).unwrap();
        let a = init_state_dict(&net, 7, true);
        assert_eq!(a, init_state_dict(&net, 7, true), "seeded");
        assert_ne!(a, init_state_dict(&net, 8, true));
        // s3.b1.f.b: 3x3 grouped conv, w_out 152: std sqrt(2 / (9 * 152)), not / groups.
        let w = &a.get("s3.b1.f.b.weight").unwrap().data;
        let var = w.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / w.len() as f64;
        let want = 2.0 / (9.0 * 152.0);
        assert!((var / want - 1.0).abs() < 0.1, "var {var} want {want}");
        assert!(
            a.get("s3.b1.f.c_bn.weight")
                .unwrap()
                .data
                .iter()
                .all(|&g| g == 0.0)
        );
        assert!(
            a.get("s3.b1.f.a_bn.weight")
                .unwrap()
                .data
                .iter()
                .all(|&g| g == 1.0)
        );
        assert!(
            a.get("s3.b1.f.a_bn.running_var")
                .unwrap()
                .data
                .iter()
                .all(|&g| g == 1.0)
        );
        let fc = &a.get("head.fc.weight").unwrap().data;
        let sd = (fc.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / fc.len() as f64).sqrt();
        assert!((sd - 0.01).abs() < 0.001, "{sd}");
    }
}
