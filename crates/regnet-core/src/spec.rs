//! The network spec: one plain description of a network, from which both the complexity
//! count ([`crate::complexity`]) and the built model (crate `regnet-nn`) are derived through
//! the layer plan of [`crate::network`].
//!
//! A spec is design-space level: stem, stages (depth, width, stride, bottleneck multiplier,
//! group width), head. RegNets keep their generating parameters (`w0`, `wa`, `wm`, `depth`,
//! ...) and are turned into stages by [`crate::regnet`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::regnet::RegNet;

/// Stem types of AnyNet (pycls names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StemType {
    /// 3x3 conv, stride 2, BN, activation (RegNet's stem).
    SimpleStemIn,
    /// 7x7 conv, stride 2, BN, activation, 3x3 max-pool stride 2 (ResNet's stem).
    ResStemIn,
    /// 3x3 conv, stride 1, BN, activation (CIFAR ResNets).
    ResStemCifar,
}

/// Block types of AnyNet (pycls names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockType {
    /// `[3x3 conv, BN, act] x 2`, no residual.
    VanillaBlock,
    /// `x + f(x)`, f = 3x3 conv, BN, act, 3x3 conv, BN; then act.
    ResBasicBlock,
    /// The X block: `x + f(x)`, f = 1x1, 3x3 grouped [+ SE, the Y block], 1x1; then act.
    ResBottleneckBlock,
    /// Bottleneck with no activation after the sum, and a skip only where shapes match.
    ResBottleneckLinearBlock,
}

/// Activation functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `x * sigmoid(x)` (also called swish).
    Silu,
}

macro_rules! named_enum {
    ($ty:ident, $what:literal, { $($name:literal $(| $alias:literal)* => $var:ident),* $(,)? }) => {
        impl $ty {
            /// All pycls names of this kind.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// The pycls name.
            pub fn name(self) -> &'static str {
                match self { $($ty::$var => $name),* }
            }
        }
        impl FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s.to_ascii_lowercase().as_str() {
                    $($name $(| $alias)* => Ok($ty::$var),)*
                    _ => Err(Error::spec(format!(
                        "unknown {} `{}` (expected one of: {})", $what, s, Self::NAMES.join(", ")
                    ))),
                }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

named_enum!(StemType, "stem type", {
    "simple_stem_in" => SimpleStemIn,
    "res_stem_in" => ResStemIn,
    "res_stem_cifar" => ResStemCifar,
});
named_enum!(BlockType, "block type", {
    "vanilla_block" => VanillaBlock,
    "res_basic_block" => ResBasicBlock,
    "res_bottleneck_block" => ResBottleneckBlock,
    "res_bottleneck_linear_block" => ResBottleneckLinearBlock,
});
named_enum!(Activation, "activation", {
    "relu" => Relu,
    "silu" | "swish" => Silu,
});

impl BlockType {
    /// Whether the block has a bottleneck (and so uses `bot_mul`, `group_w` and SE).
    pub fn is_bottleneck(self) -> bool {
        matches!(
            self,
            BlockType::ResBottleneckBlock | BlockType::ResBottleneckLinearBlock
        )
    }
}

/// One AnyNet stage: `depth` blocks of output width `width`; the first has stride `stride`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// Number of blocks `d`.
    pub depth: usize,
    /// Output width `w` of every block.
    pub width: usize,
    /// Stride of the first block.
    pub stride: usize,
    /// Bottleneck multiplier `b` (bottleneck width = round(w * b)); bottleneck blocks only.
    pub bot_mul: Option<f64>,
    /// Group width `g` of the 3x3 conv; bottleneck blocks only.
    pub group_w: Option<usize>,
}

/// An AnyNet: stem, stages of one block type, head.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnyNet {
    /// Stem type.
    pub stem_type: StemType,
    /// Stem output width.
    pub stem_w: usize,
    /// Block type of every stage.
    pub block_type: BlockType,
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// Squeeze-excitation ratio on the block's input width; 0 disables SE (bottlenecks only).
    pub se_r: f64,
    /// Width of the optional 1x1 conv in the head; 0 omits it.
    pub head_w: usize,
    /// Put the stride of a bottleneck on its first 1x1 conv (pycls's MSRA-style `resnet`
    /// model with `RESNET.STRIDE_1X1`) instead of on the 3x3 conv.
    #[serde(default)]
    pub stride_1x1: bool,
}

/// One EfficientNet stage of MBConv blocks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EffStage {
    /// Number of blocks.
    pub depth: usize,
    /// Output width.
    pub width: usize,
    /// Stride of the first block.
    pub stride: usize,
    /// Expansion ratio of the inverted bottleneck.
    pub exp_ratio: f64,
    /// Depthwise kernel size (odd).
    pub kernel: usize,
}

/// An EfficientNet: 3x3 stem, MBConv stages with SE, 1x1 head conv, fc.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EffNet {
    /// Stem width.
    pub stem_w: usize,
    /// The stages.
    pub stages: Vec<EffStage>,
    /// SE ratio, on the block's input width.
    pub se_r: f64,
    /// Head conv width.
    pub head_w: usize,
    /// Dropout before the fc (training only).
    #[serde(default)]
    pub dropout_ratio: f64,
    /// Drop-connect ratio on the residual branches (training only).
    #[serde(default)]
    pub dc_ratio: f64,
}

/// The architecture family and its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Arch {
    /// Any AnyNet (ResNet and ResNeXt are AnyNets with `res_stem_in`).
    AnyNet(AnyNet),
    /// A RegNet, kept as its generating parameters.
    RegNet(RegNet),
    /// An EfficientNet.
    EffNet(EffNet),
}

/// A complete network description.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetSpec {
    /// Input channels (3 for RGB, 1 for MNIST-style data).
    pub in_channels: usize,
    /// Number of classes of the fc layer.
    pub num_classes: usize,
    /// Activation of every block, stem and head.
    pub activation: Activation,
    /// The architecture.
    pub arch: Arch,
}

impl NetSpec {
    /// The AnyNet this spec describes (RegNets are expanded; `None` for EfficientNets).
    pub fn anynet(&self) -> Result<Option<AnyNet>> {
        match &self.arch {
            Arch::AnyNet(a) => Ok(Some(a.clone())),
            Arch::RegNet(r) => Ok(Some(r.anynet()?)),
            Arch::EffNet(_) => Ok(None),
        }
    }

    /// Checks every constraint of the spec, with an error naming the offending value.
    pub fn validate(&self) -> Result<()> {
        crate::network::Network::from_spec(self).map(|_| ())
    }

    /// The spec as JSON (stored in safetensors metadata so that weights reload without config).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("specs always serialise")
    }

    /// Reads a spec written by [`NetSpec::to_json`].
    pub fn from_json(s: &str) -> Result<Self> {
        let spec: NetSpec =
            serde_json::from_str(s).map_err(|e| Error::spec(format!("bad spec JSON: {e}")))?;
        spec.validate()?;
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_errors_list_choices() {
        for name in StemType::NAMES {
            assert_eq!(name.parse::<StemType>().unwrap().name(), *name);
        }
        for name in BlockType::NAMES {
            assert_eq!(name.parse::<BlockType>().unwrap().name(), *name);
        }
        assert_eq!("swish".parse::<Activation>().unwrap(), Activation::Silu);
        let err = "res_stem".parse::<StemType>().unwrap_err().to_string();
        assert!(
            err.contains("res_stem") && err.contains("res_stem_cifar"),
            "{err}"
        );
    }
}
