//! Devices: burn's pure-Rust `flex` CPU backend by default; GPUs through wgpu (WGSL shaders,
//! on Vulkan under Linux) with the `gpu` feature (and CUDA with `cuda`, for those who can build
//! it).

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
        "gpu" | "vulkan" | "wgpu" => gpu(),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        other => Err(format!(
            "unknown or unavailable device `{other}` (this build has: {})",
            available().join(", ")
        )),
    }
}

/// The wgpu device, acquired once per process: burn refuses a second initialisation, and a
/// machine without a usable adapter gets its error here, not a panic at the first tensor.
#[cfg(feature = "gpu")]
fn gpu() -> Result<Device, String> {
    GPU.get_or_init(|| {
        // On Linux, Vulkan only: wgpu would otherwise fall back to OpenGL (EGL), where burn's
        // compute kernels fail at run time instead of at start.
        let api = if cfg!(target_os = "linux") {
            burn::tensor::wgpu::WgpuBackend::Vulkan
        } else {
            burn::tensor::wgpu::WgpuBackend::Auto
        };
        let options = Device::wgpu_options().graphics_api(api);
        let (device, setup) = options.init_with_setup().map_err(|e| {
            let msg = regnet_core::error::one_line(e.to_string());
            format!("no usable GPU: wgpu found no adapter ({msg}); on Linux install a Vulkan driver (mesa-vulkan-drivers provides a software one)")
        })?;
        let info = setup.adapter.get_info();
        let software = info.device_type == burn::tensor::wgpu::wgpu::DeviceType::Cpu;
        Ok((device, format!("{} ({:?}, {})", info.name, info.backend, info.driver_info), software))
    })
    .clone()
    .map(|(device, _, _)| device)
}

/// The wgpu device once acquired: the device, its adapter in words, and whether the adapter
/// is a CPU (a software rasteriser such as Mesa's lavapipe).
#[cfg(feature = "gpu")]
static GPU: std::sync::OnceLock<Result<(Device, String, bool), String>> =
    std::sync::OnceLock::new();

/// The GPU adapter in use, in words (`None` before the first GPU tensor or without a GPU).
pub fn gpu_adapter() -> Option<String> {
    #[cfg(feature = "gpu")]
    if let Some(Ok((_, name, _))) = GPU.get() {
        return Some(name.clone());
    }
    None
}

/// Whether `device` is a wgpu device on a software adapter (Mesa's lavapipe). Its shader
/// compiler, llvmpipe, ends every shader invocation's loops after 65535 iterations in all
/// without an error, so kernels whose loops grow with the input (a convolution's weight
/// gradient loops over N·H·W) are silently wrong past that; callers split such work.
pub fn is_software_gpu(device: &Device) -> bool {
    #[cfg(feature = "gpu")]
    if let Some(Ok((gpu, _, true))) = GPU.get() {
        return gpu == device || &device.clone().inner() == gpu;
    }
    let _ = device;
    false
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
