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

/// What a trainable parameter is, for optimizers that treat kinds differently (pycls gives
/// BN parameters and biases their own weight decay).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Conv or fc weight.
    Weight,
    /// Conv or fc bias.
    Bias,
    /// BN gamma.
    BnWeight,
    /// BN beta.
    BnBias,
}

/// Visits every trainable parameter of a [`Model`] by pycls name, replacing it by what
/// `map` returns (optimizers, EMA).
pub trait ParamMapper {
    /// Maps one parameter.
    fn map<const D: usize>(
        &mut self,
        name: &str,
        role: Role,
        p: Param<Tensor<D>>,
    ) -> Param<Tensor<D>>;
}

impl ConvBn {
    fn map_params<M: ParamMapper>(mut self, m: &mut M) -> Self {
        self.conv.weight = m.map(
            &format!("{}.weight", self.conv_name),
            Role::Weight,
            self.conv.weight,
        );
        self.bn.weight = m.map(
            &format!("{}.weight", self.bn_name),
            Role::BnWeight,
            self.bn.weight,
        );
        self.bn.bias = m.map(
            &format!("{}.bias", self.bn_name),
            Role::BnBias,
            self.bn.bias,
        );
        self
    }
}

fn map_conv<M: ParamMapper>(
    mut c: crate::conv::Conv,
    prefix: &str,
    m: &mut M,
) -> crate::conv::Conv {
    c.weight = m.map(&format!("{prefix}.weight"), Role::Weight, c.weight);
    c.bias = c
        .bias
        .map(|b| m.map(&format!("{prefix}.bias"), Role::Bias, b));
    c
}

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

    /// Replaces every trainable parameter by what `m` makes of it, in module order.
    pub fn map_params<M: ParamMapper>(mut self, m: &mut M) -> Self {
        self.stem = self.stem.map_params(m);
        self.blocks = self
            .blocks
            .into_iter()
            .map(|mut b| {
                b.proj = b.proj.map(|p| p.map_params(m));
                b.convs = b.convs.into_iter().map(|c| c.map_params(m)).collect();
                b.se = b.se.map(|mut se| {
                    se.squeeze = map_conv(se.squeeze, &format!("{}.f_ex.0", se.name), m);
                    se.excite = map_conv(se.excite, &format!("{}.f_ex.2", se.name), m);
                    se
                });
                b
            })
            .collect();
        self.head_conv = self.head_conv.map(|h| h.map_params(m));
        self.fc.weight = m.map("head.fc.weight", Role::Weight, self.fc.weight);
        self.fc.bias = self.fc.bias.map(|b| m.map("head.fc.bias", Role::Bias, b));
        self
    }

    /// Sets the momentum of every BN (precise BN statistics use 1).
    pub fn set_bn_momentum(mut self, momentum: f64) -> Self {
        let set = |cb: &mut ConvBn| cb.bn.momentum = momentum;
        set(&mut self.stem);
        for b in &mut self.blocks {
            b.proj.iter_mut().for_each(set);
            b.convs.iter_mut().for_each(set);
        }
        self.head_conv.iter_mut().for_each(set);
        self
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
