//! What the exported model expects of its input, and the model metadata (`metadata_props`)
//! that records it with the spec, so that a deployment needs nothing but the `.onnx` file.

use regnet_core::spec::NetSpec;
use regnet_nn::weights::ChannelOrder;

use crate::error::{OnnxError, Result};
use crate::proto::StringStringEntryProto;

/// Metadata key of the spec (JSON), as in regnet's safetensors.
pub const META_SPEC: &str = regnet_nn::weights::META_SPEC;
/// Metadata key of the channel order (`rgb`, `bgr`; absent meaning for one channel).
pub const META_CHANNELS: &str = regnet_nn::weights::META_CHANNELS;
/// Metadata key of the per-channel mean (JSON array, on the `pixel_max` scale).
pub const META_MEAN: &str = "mean";
/// Metadata key of the per-channel standard deviation (JSON array).
pub const META_STD: &str = "std";
/// Metadata key of the largest pixel value the mean and std refer to (`1` or `255`).
pub const META_PIXEL_MAX: &str = "pixel_max";
/// Metadata key of the input layout (`NCHW`).
pub const META_LAYOUT: &str = "layout";
/// Metadata key saying whether batch norms are kept (`kept`) or folded (`folded`).
pub const META_BN: &str = "batch_norm";
/// Metadata key of the image size: a number, or `any` when height and width are symbolic.
pub const META_IMAGE_SIZE: &str = "image_size";

/// The preprocessing the model was trained with: `x = (pixel - mean) / std` per channel, in
/// `channel_order`, with pixels on the `[0, pixel_max]` scale.
#[derive(Clone, Debug, PartialEq)]
pub struct InputConvention {
    /// Channel order of the stem's input.
    pub channel_order: ChannelOrder,
    /// Per-channel mean.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation.
    pub std: Vec<f32>,
    /// The pixel scale `mean` and `std` refer to: 1 (pixels in [0, 1]) or 255.
    pub pixel_max: f32,
}

impl InputConvention {
    /// pycls's ImageNet normalization, RGB, on the [0, 1] scale.
    pub fn imagenet() -> Self {
        InputConvention {
            channel_order: ChannelOrder::Rgb,
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
            pixel_max: 1.0,
        }
    }

    /// Checks that there is one mean and one positive std per input channel.
    pub fn check(&self, in_channels: usize) -> Result<()> {
        if self.mean.len() != in_channels || self.std.len() != in_channels {
            return Err(OnnxError::Invalid(format!(
                "normalization has {} means and {} stds for {in_channels} input channels",
                self.mean.len(),
                self.std.len()
            )));
        }
        if let Some(s) = self.std.iter().find(|s| !(**s > 0.0 && s.is_finite())) {
            return Err(OnnxError::Invalid(format!(
                "normalization std {s} must be positive"
            )));
        }
        Ok(())
    }
}

impl Default for InputConvention {
    fn default() -> Self {
        Self::imagenet()
    }
}

/// The metadata entries of an exported model.
pub fn metadata_props(
    spec: &NetSpec,
    input: &InputConvention,
    folded: bool,
    image_size: Option<usize>,
) -> Vec<StringStringEntryProto> {
    let list = |v: &[f32]| {
        let items: Vec<String> = v.iter().map(|x| format!("{x}")).collect();
        format!("[{}]", items.join(", "))
    };
    let entries = [
        (META_SPEC, spec.to_json()),
        (META_CHANNELS, input.channel_order.name().to_string()),
        (META_MEAN, list(&input.mean)),
        (META_STD, list(&input.std)),
        (META_PIXEL_MAX, format!("{}", input.pixel_max)),
        (META_LAYOUT, "NCHW".to_string()),
        (META_BN, if folded { "folded" } else { "kept" }.to_string()),
        (
            META_IMAGE_SIZE,
            image_size.map_or("any".to_string(), |s| s.to_string()),
        ),
    ];
    entries
        .into_iter()
        .map(|(k, v)| StringStringEntryProto {
            key: Some(k.to_string()),
            value: Some(v),
        })
        .collect()
}
