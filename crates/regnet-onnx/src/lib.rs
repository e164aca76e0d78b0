//! # regnet-onnx
//!
//! ONNX export of every network regnet builds (AnyNet with every stem and block, RegNetX/Y,
//! ResNet/ResNeXt, EfficientNet), written directly from [`regnet_core::network`]'s layer plan:
//! the same plan the complexity count, the burn model and the weight importers use, so there
//! is no second description of the network and no tracing.
//!
//! The graph uses opset 13 (IR version 7), which ONNX Runtime, TensorRT, OpenVINO and the
//! mobile runtimes all read. The batch dimension is symbolic; the image size is symbolic by
//! default (every pooling is global) or fixed on request. Batch norms are either kept as
//! `BatchNormalization` nodes or folded into the convolutions with
//! [`regnet_nn::fold::fold_conv_bn`]. The model's metadata carries the spec (JSON), the
//! channel order and the input normalization.
//!
//! ```no_run
//! use regnet_onnx::{ExportOptions, export::to_onnx, write_onnx};
//! let spec = regnet_core::zoo::lookup("RegNetX-200MF").unwrap().spec();
//! let net = regnet_core::network::Network::from_spec(&spec).unwrap();
//! let sd = regnet_nn::init::init_state_dict(&net, 0, false);
//! let model = to_onnx(&spec, &sd, &ExportOptions::default(), "init").unwrap();
//! write_onnx(std::path::Path::new("regnetx.onnx"), &model).unwrap();
//! ```

pub mod builder;
pub mod error;
pub mod export;
pub mod metadata;
pub mod proto;

pub use error::OnnxError;
pub use export::{BatchNorm, ExportOptions, to_onnx, write_onnx};
pub use metadata::InputConvention;
