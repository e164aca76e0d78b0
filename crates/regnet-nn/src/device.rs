//! Devices: burn's pure-Rust `flex` CPU backend by default; GPUs through wgpu/Vulkan with the
//! `gpu` feature (and CUDA with `cuda`, for those who can build it).

use burn::tensor::Device;

/// The CPU device (burn `flex`).
pub fn cpu() -> Device {
    Device::flex()
}

/// A device by name: `cpu`/`flex`, `gpu`/`vulkan` (feature `gpu`), `cuda` (feature `cuda`).
pub fn by_name(name: &str) -> Result<Device, String> {
    match name.to_ascii_lowercase().as_str() {
        "cpu" | "flex" => Ok(cpu()),
        #[cfg(feature = "gpu")]
        "gpu" | "vulkan" | "wgpu" => Ok(Device::vulkan(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        other => Err(format!(
            "unknown or unavailable device `{other}` (this build has: {})",
            available().join(", ")
        )),
    }
}

/// The device named by the environment variable `REGNET_TEST_DEVICE` (default `cpu`), so
/// that the parity tests can run on a GPU: `REGNET_TEST_DEVICE=gpu cargo test --features gpu`.
pub fn from_test_env() -> Result<Device, String> {
    by_name(&std::env::var("REGNET_TEST_DEVICE").unwrap_or_else(|_| "cpu".into()))
}

/// The device names this build supports.
pub fn available() -> Vec<&'static str> {
    let mut v = vec!["cpu"];
    if cfg!(feature = "gpu") {
        v.push("gpu");
    }
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    v
}
