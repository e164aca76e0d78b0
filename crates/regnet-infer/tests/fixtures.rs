//! The shared reference fixtures (pycls, timm and torchvision key names): compiled logits
//! within 1e-4 (max absolute difference) of PyTorch's float64 logits, at every SIMD level.

#[path = "../../regnet-nn/tests/common/mod.rs"]
mod reference;

use reference::{fixture, max_abs_diff};
use regnet_core::network::Network;
use regnet_infer::{CompiledNet, SimdLevel};

fn check(name: &str) {
    let fx = fixture(name);
    let net = Network::from_spec(&fx.spec()).unwrap();
    let mut compiled = CompiledNet::compile(&net, &fx.weights(""), 1e-5).unwrap();
    let input = fx.get("input");
    let want = fx.get("logits_f64");
    let s = &input.shape;
    for level in SimdLevel::available() {
        compiled.set_level(level).unwrap();
        let got = compiled
            .forward(&input.data, [s[0], s[1], s[2], s[3]])
            .unwrap();
        let d = max_abs_diff(&got, &want.data);
        assert!(d < 1e-4, "{name} at {level}: max |diff| {d}");
        eprintln!("{name} at {level}: max |diff| {d:e}");
    }
}

#[test]
fn regnetx_200mf() {
    check("regnetx_200mf.safetensors");
}

#[test]
fn regnety_200mf() {
    check("regnety_200mf.safetensors");
}

#[test]
fn tiny_cifar_anynet() {
    check("tiny_cifar_anynet.safetensors");
}

#[test]
fn timm_keys() {
    check("regnetx_200mf_timm.safetensors");
}

#[test]
fn torchvision_keys() {
    check("regnetx_200mf_torchvision.safetensors");
}
