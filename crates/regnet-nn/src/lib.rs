//! # regnet-nn
//!
//! The networks of regnet on [burn](https://burn.dev) 0.22: every stem, block, SE, head and
//! EfficientNet MBConv of [`regnet_core`]'s layer plan, built from that plan (never from a
//! second description of the architecture), with PyTorch-exact BatchNorm, pycls
//! initialisation, and weights in and out: pycls checkpoints, timm and torchvision state
//! dicts, and regnet's safetensors (which carry the spec, so they reload with no config).
//!
//! ```no_run
//! use regnet_nn::{Model, device};
//! let spec = regnet_core::zoo::lookup("RegNetX-200MF").unwrap().spec();
//! let model = Model::init(&spec, 0, false, &device::cpu()).unwrap();
//! let x = burn::tensor::Tensor::<4>::zeros([1, 3, 224, 224], &device::cpu());
//! let logits = model.forward(x); // [1, 1000]
//! ```

pub mod add_relu_ext;
pub mod awake;
pub mod batch_norm;
pub mod bn_ext;
pub mod conv;
pub mod conv_ext;
pub mod device;
pub mod error;
pub mod fold;
pub mod gpu_check;
pub mod init;
pub mod kernels;
pub mod layers;
pub mod model;
pub mod sgd_ext;
pub mod state_dict;
pub mod weights;

pub use error::WeightsError;
pub use model::Model;
pub use state_dict::{StateDict, TensorF32};
