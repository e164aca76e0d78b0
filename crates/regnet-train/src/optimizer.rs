//! SGD exactly as `torch.optim.SGD` (and so pycls) runs it: `d = g + wd * p`;
//! `buf = d` on the first step, then `buf = momentum * buf + (1 - dampening) * d`;
//! `d = d + momentum * buf` with Nesterov, else `d = buf`; `p -= lr * d`.
//!
//! Momentum buffers are kept by pycls parameter name, so that checkpoints hold them by name
//! and resume into a freshly built model. (burn's own SGD keys its state by random parameter
//! ids and defaults to a dampening of 0.1.) Weight decay is chosen per parameter kind as in
//! pycls's `construct_optimizer`: BN parameters, then biases, then the rest.

use std::collections::BTreeMap;

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use regnet_nn::conv::{from_tensor, to_tensor};
use regnet_nn::model::{ParamMapper, Role};
use regnet_nn::{Model, StateDict};

/// SGD hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Momentum.
    pub momentum: f64,
    /// Dampening (PyTorch's default, and pycls's, is 0).
    pub dampening: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Weight decay of conv and fc weights.
    pub weight_decay: f64,
    /// Weight decay of BN gamma and beta.
    pub bn_weight_decay: f64,
    /// Weight decay of conv and fc biases.
    pub bias_weight_decay: f64,
}

impl SgdConfig {
    /// From a pycls config (`OPTIM.*`, `BN.USE_CUSTOM_WEIGHT_DECAY`, ...).
    pub fn from_config(cfg: &regnet_core::config::Config) -> Self {
        let o = &cfg.optim;
        SgdConfig {
            momentum: o.momentum,
            dampening: o.dampening,
            nesterov: o.nesterov,
            weight_decay: o.weight_decay,
            bn_weight_decay: if cfg.bn.use_custom_weight_decay {
                cfg.bn.custom_weight_decay
            } else {
                o.weight_decay
            },
            bias_weight_decay: if o.bias_use_custom_weight_decay {
                o.bias_custom_weight_decay
            } else {
                o.weight_decay
            },
        }
    }

    fn decay(&self, role: Role) -> f64 {
        match role {
            Role::BnWeight | Role::BnBias => self.bn_weight_decay,
            Role::Bias => self.bias_weight_decay,
            Role::Weight => self.weight_decay,
        }
    }
}

/// SGD with momentum buffers by parameter name.
#[derive(Clone, Debug)]
pub struct Sgd {
    /// Hyper-parameters.
    pub config: SgdConfig,
    /// Flattened buffers with their parameter's shape.
    buffers: BTreeMap<String, (Vec<usize>, Tensor<1>)>,
}

impl Sgd {
    /// A fresh optimizer.
    pub fn new(config: SgdConfig) -> Self {
        Sgd {
            config,
            buffers: BTreeMap::new(),
        }
    }

    /// One update of every parameter that has a gradient.
    pub fn step(&mut self, model: Model, grads: GradientsParams, lr: f64) -> Model {
        let mut step = Step {
            sgd: self,
            grads,
            lr,
        };
        model.map_params(&mut step)
    }

    /// The momentum buffers, by parameter name (for checkpoints).
    pub fn buffers(&self) -> StateDict {
        let mut sd = StateDict::default();
        for (name, (shape, b)) in &self.buffers {
            let flat = from_tensor(b.clone());
            sd.insert(
                name.clone(),
                regnet_nn::TensorF32::new(shape.clone(), flat.data),
            );
        }
        sd
    }

    /// Restores buffers saved by [`Sgd::buffers`].
    pub fn load_buffers(&mut self, sd: &StateDict, device: &burn::tensor::Device) {
        self.buffers = sd
            .tensors
            .iter()
            .map(|(n, t)| {
                let flat = regnet_nn::TensorF32::new(vec![t.numel()], t.data.clone());
                (n.clone(), (t.shape.clone(), to_tensor::<1>(&flat, device)))
            })
            .collect();
    }
}

struct Step<'a> {
    sgd: &'a mut Sgd,
    grads: GradientsParams,
    lr: f64,
}

impl ParamMapper for Step<'_> {
    fn map<const D: usize>(
        &mut self,
        name: &str,
        role: Role,
        p: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = p.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let cfg = self.sgd.config;
        let require_grad = tensor.is_require_grad();
        let w = tensor.inner();
        let dims = w.dims();
        let wd = cfg.decay(role);
        let mut d = if wd != 0.0 {
            grad + w.clone().mul_scalar(wd)
        } else {
            grad
        };
        if cfg.momentum != 0.0 {
            let buf = match self.sgd.buffers.remove(name) {
                None => d.clone(),
                Some((_, b)) => {
                    let b: Tensor<D> = b.reshape(dims);
                    b.mul_scalar(cfg.momentum) + d.clone().mul_scalar(1.0 - cfg.dampening)
                }
            };
            d = if cfg.nesterov {
                d + buf.clone().mul_scalar(cfg.momentum)
            } else {
                buf.clone()
            };
            let n = buf.shape().num_elements();
            self.sgd
                .buffers
                .insert(name.to_string(), (dims.to_vec(), buf.reshape([n])));
        }
        let mut updated = Tensor::from_inner(w - d.mul_scalar(self.lr));
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}
