//! Eval-mode logits against PyTorch's on the shared fixtures (pycls, timm and torchvision
//! key names), within 1e-4 of the float64 logits.

mod common;

use common::{fixture, max_abs_diff};
use regnet_nn::conv::{from_tensor, to_tensor};
use regnet_nn::layers::BnSettings;
use regnet_nn::weights::Layout;
use regnet_nn::{Model, device};

fn eval_logits(name: &str) -> (f32, Layout) {
    eval_logits_on(name, &device::cpu())
}

fn eval_logits_on(name: &str, dev: &burn::tensor::Device) -> (f32, Layout) {
    let dev = dev.clone();
    let fx = fixture(name);
    let spec = fx.spec();
    let model =
        Model::from_state_dict(&spec, &fx.weights(""), BnSettings::default(), &dev, name).unwrap();
    let x = to_tensor::<4>(fx.get("input"), &dev);
    let got = from_tensor(model.forward(x));
    let want = fx.get("logits_f64");
    assert_eq!(got.shape, want.shape);
    (max_abs_diff(&got.data, &want.data), fx.layout())
}

/// Every fixture on the wgpu device (skipped without one unless `REGNET_REQUIRE_GPU` is set).
#[cfg(feature = "gpu")]
#[test]
fn every_fixture_on_the_gpu() {
    let Some(gpu) = regnet_nn::gpu_check::gpu_for_tests().unwrap() else {
        return;
    };
    for name in [
        "regnetx_200mf.safetensors",
        "regnety_200mf.safetensors",
        "tiny_cifar_anynet.safetensors",
        "regnetx_200mf_timm.safetensors",
        "regnetx_200mf_torchvision.safetensors",
    ] {
        let (d, _) = eval_logits_on(name, &gpu);
        regnet_nn::gpu_check::gpu_report(&format!(
            "gpu vs PyTorch float64: eval logits of {name}: max |diff| {d:.2e} (tolerance 1e-4)"
        ));
        assert!(d < 1e-4, "{name} on the GPU: max |diff| {d}");
    }
}

#[test]
fn regnetx_200mf_pycls_keys() {
    let (d, layout) = eval_logits("regnetx_200mf.safetensors");
    assert_eq!(layout, Layout::Pycls);
    assert!(d < 1e-4, "max |diff| {d}");
}

#[test]
fn regnety_200mf() {
    let (d, _) = eval_logits("regnety_200mf.safetensors");
    assert!(d < 1e-4, "max |diff| {d}");
}

#[test]
fn tiny_cifar_anynet() {
    let (d, _) = eval_logits("tiny_cifar_anynet.safetensors");
    assert!(d < 1e-4, "max |diff| {d}");
}

#[test]
fn regnetx_200mf_timm_keys() {
    let (d, layout) = eval_logits("regnetx_200mf_timm.safetensors");
    assert_eq!(layout, Layout::Timm);
    assert!(d < 1e-4, "max |diff| {d}");
}

#[test]
fn regnetx_200mf_torchvision_keys() {
    let (d, layout) = eval_logits("regnetx_200mf_torchvision.safetensors");
    assert_eq!(layout, Layout::Torchvision);
    assert!(d < 1e-4, "max |diff| {d}");
}

#[test]
fn fixture_spec_is_the_zoo_model() {
    let spec = fixture("regnety_200mf.safetensors").spec();
    let zoo = regnet_core::zoo::lookup("RegNetY-200MF").unwrap().spec();
    assert_eq!(spec.anynet().unwrap(), zoo.anynet().unwrap());
}

#[test]
fn state_dict_round_trips_through_the_model() {
    let fx = fixture("regnety_200mf.safetensors");
    let sd = fx.weights("");
    let model = Model::from_state_dict(&fx.spec(), &sd, BnSettings::default(), &device::cpu(), "x")
        .unwrap();
    assert_eq!(model.to_state_dict(), sd);
}
