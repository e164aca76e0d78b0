//! The whole network: stem, blocks, head, built from the layer plan of a [`NetSpec`].

use burn::module::{Flag, Module, Param};
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Distribution, Tensor};
use regnet_core::network::Network;
use regnet_core::spec::NetSpec;

use crate::conv::{Fc, from_tensor};
use crate::error::WeightsError;
use crate::init::init_state_dict;
use crate::layers::{Block, BnSettings, ConvBn, Source};
use crate::state_dict::StateDict;

/// A network built from a spec.
#[derive(Module, Debug)]
pub struct Model {
    /// Stem conv, BN, activation.
    pub stem: ConvBn,
    /// Stem max-pool `(kernel, stride)` (ResNet stem).
    pub pool: Option<[usize; 2]>,
    /// Body blocks, in order.
    pub blocks: Vec<Block>,
    /// Optional head conv.
    pub head_conv: Option<ConvBn>,
    /// Classifier.
    pub fc: Fc,
    /// Dropout before the classifier (training only).
    pub dropout: f64,
    /// Training behaviour (dropout) on.
    pub training: Param<Flag>,
    /// The spec the model was built from.
    #[module(skip)]
    pub spec: NetSpec,
}

impl Model {
    /// Builds the model from a state dict with pycls's names, which must match the spec's
    /// tensors exactly (`source` names the file in errors).
    pub fn from_state_dict(
        spec: &NetSpec,
        sd: &StateDict,
        bn: BnSettings,
        device: &Device,
        source: &str,
    ) -> Result<Model, WeightsError> {
        let net = Network::from_spec(spec).map_err(|e| WeightsError::Other(e.to_string()))?;
        sd.check(&net, source)?;
        let src = Source { sd, device, bn };
        let act = net.activation;
        let blocks = net
            .blocks
            .iter()
            .map(|b| Block::build(&src, b, act, net.dc_ratio))
            .collect::<Result<Vec<_>, _>>()?;
        let head_conv = match &net.head.conv {
            Some(cb) => Some(ConvBn::build(&src, "head", cb, act)?),
            None => None,
        };
        let fc = &net.head.fc;
        let fc_bias = if fc.bias {
            Some(src.get(&format!("{}.bias", fc.key))?)
        } else {
            None
        };
        Ok(Model {
            stem: ConvBn::build(&src, "stem", &net.stem.conv, act)?,
            pool: net.stem.pool.as_ref().map(|p| [p.k, p.stride]),
            blocks,
            head_conv,
            fc: Fc::new(src.get(&format!("{}.weight", fc.key))?, fc_bias, device),
            dropout: net.head.dropout,
            training: Param::from_bool(true),
            spec: spec.clone(),
        })
    }

    /// A model with pycls's initialisation, seeded.
    pub fn init(
        spec: &NetSpec,
        seed: u64,
        zero_init_final_gamma: bool,
        device: &Device,
    ) -> Result<Model, WeightsError> {
        let net = Network::from_spec(spec).map_err(|e| WeightsError::Other(e.to_string()))?;
        let sd = init_state_dict(&net, seed, zero_init_final_gamma);
        Model::from_state_dict(spec, &sd, BnSettings::default(), device, "initialisation")
    }

    /// Logits `[n, classes]` for images `[n, c, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem.forward(x);
        if let Some([k, s]) = self.pool {
            let p = (k - 1) / 2;
            let options = MaxPoolOptions {
                kernel_size: [k, k],
                stride: [s, s],
                padding: [(p, p), (p, p)],
                dilation: [1, 1],
                ceil_mode: false,
            };
            x = max_pool2d(x, options);
        }
        for b in &self.blocks {
            x = b.forward(x);
        }
        if let Some(h) = &self.head_conv {
            x = h.forward(x);
        }
        let x: Tensor<2> = x.mean_dims(&[2, 3]).flatten(1, 3);
        let x = self.apply_dropout(x);
        self.fc.forward(x)
    }

    fn apply_dropout(&self, x: Tensor<2>) -> Tensor<2> {
        if self.dropout <= 0.0 || !(x.device().is_autodiff() && self.training.is_enabled()) {
            return x;
        }
        let keep = 1.0 - self.dropout;
        let mask = Tensor::<2>::random(x.dims(), Distribution::Bernoulli(keep), &x.device());
        (x * mask).div_scalar(keep)
    }

    /// The weights and BN statistics as a state dict with pycls's names.
    pub fn to_state_dict(&self) -> StateDict {
        let mut sd = StateDict::default();
        let conv_bn = |sd: &mut StateDict, cb: &ConvBn| {
            sd.insert(
                format!("{}.weight", cb.conv_name),
                from_tensor(cb.conv.weight.val()),
            );
            if let Some(b) = &cb.conv.bias {
                sd.insert(format!("{}.bias", cb.conv_name), from_tensor(b.val()));
            }
            let bn = &cb.bn;
            sd.insert(
                format!("{}.weight", cb.bn_name),
                from_tensor(bn.weight.val()),
            );
            sd.insert(format!("{}.bias", cb.bn_name), from_tensor(bn.bias.val()));
            sd.insert(
                format!("{}.running_mean", cb.bn_name),
                from_tensor(bn.running_mean.value_sync()),
            );
            sd.insert(
                format!("{}.running_var", cb.bn_name),
                from_tensor(bn.running_var.value_sync()),
            );
        };
        conv_bn(&mut sd, &self.stem);
        for b in &self.blocks {
            if let Some(p) = &b.proj {
                conv_bn(&mut sd, p);
            }
            for c in &b.convs {
                conv_bn(&mut sd, c);
            }
            if let Some(se) = &b.se {
                for (suffix, conv) in [("f_ex.0", &se.squeeze), ("f_ex.2", &se.excite)] {
                    sd.insert(
                        format!("{}.{suffix}.weight", se.name),
                        from_tensor(conv.weight.val()),
                    );
                    if let Some(bias) = &conv.bias {
                        sd.insert(
                            format!("{}.{suffix}.bias", se.name),
                            from_tensor(bias.val()),
                        );
                    }
                }
            }
        }
        if let Some(h) = &self.head_conv {
            conv_bn(&mut sd, h);
        }
        sd.insert("head.fc.weight", from_tensor(self.fc.weight.val()));
        if let Some(b) = &self.fc.bias {
            sd.insert("head.fc.bias", from_tensor(b.val()));
        }
        sd
    }
}
