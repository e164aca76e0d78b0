//! SGD exactly as `torch.optim.SGD` (and so pycls) runs it: `d = g + wd * p`;
//! `buf = d` on the first step, then `buf = momentum * buf + (1 - dampening) * d`;
//! `d = d + momentum * buf` with Nesterov, else `d = buf`; `p -= lr * d`. With momentum,
//! one parameter's update is one operation ([`regnet_nn::sgd_ext`]: a single pass on the CPU).
//!
//! Momentum buffers are kept by pycls parameter name, so that checkpoints hold them by name
//! and resume into a freshly built model. (burn's own SGD keys its state by random parameter
//! ids and defaults to a dampening of 0.1.) Weight decay is chosen per parameter kind as in
//! pycls's `construct_optimizer`: BN parameters, then biases, then the rest ([`DecayGroups`]).
//!
//! [`TrainOptimizer`] is what `OPTIM.OPTIMIZER` names: this SGD, or Adam/AdamW
//! ([`crate::adam`]).

use std::collections::BTreeMap;

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use regnet_core::config::{Config, Optimizer};
use regnet_nn::conv::{from_tensor, to_tensor};
use regnet_nn::kernels::sgd::SgdStep;
use regnet_nn::model::{ParamMapper, Role};
use regnet_nn::sgd_ext::momentum_step;
use regnet_nn::{Model, StateDict};

use crate::adam::{Adam, AdamConfig, STATE_PREFIXES};

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
    pub fn from_config(cfg: &Config) -> Self {
        let o = &cfg.optim;
        let decay = DecayGroups::from_config(cfg);
        SgdConfig {
            momentum: o.momentum,
            dampening: o.dampening,
            nesterov: o.nesterov,
            weight_decay: decay.weight,
            bn_weight_decay: decay.bn,
            bias_weight_decay: decay.bias,
        }
    }

    fn decay(&self, role: Role) -> f64 {
        DecayGroups {
            weight: self.weight_decay,
            bn: self.bn_weight_decay,
            bias: self.bias_weight_decay,
        }
        .of(role)
    }
}

/// pycls's weight-decay groups: BN parameters get `BN.CUSTOM_WEIGHT_DECAY` when
/// `BN.USE_CUSTOM_WEIGHT_DECAY`, biases `OPTIM.BIAS_CUSTOM_WEIGHT_DECAY` when
/// `OPTIM.BIAS_USE_CUSTOM_WEIGHT_DECAY`, everything else `OPTIM.WEIGHT_DECAY`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecayGroups {
    /// Conv and fc weights.
    pub weight: f64,
    /// BN gamma and beta.
    pub bn: f64,
    /// Conv and fc biases.
    pub bias: f64,
}

impl DecayGroups {
    /// From a pycls config.
    pub fn from_config(cfg: &Config) -> Self {
        let o = &cfg.optim;
        DecayGroups {
            weight: o.weight_decay,
            bn: if cfg.bn.use_custom_weight_decay {
                cfg.bn.custom_weight_decay
            } else {
                o.weight_decay
            },
            bias: if o.bias_use_custom_weight_decay {
                o.bias_custom_weight_decay
            } else {
                o.weight_decay
            },
        }
    }

    /// The decay of a parameter of kind `role` (BN first, then biases, as pycls sorts them).
    pub fn of(&self, role: Role) -> f64 {
        match role {
            Role::BnWeight | Role::BnBias => self.bn,
            Role::Bias => self.bias,
            Role::Weight => self.weight,
        }
    }
}

/// Optimizer state in a checkpoint that does not fit the configured optimizer.
#[derive(Debug, thiserror::Error)]
#[error("optimizer state: {0}")]
pub struct OptimStateError(pub String);

/// The optimizer `OPTIM.OPTIMIZER` names.
#[derive(Clone, Debug)]
pub enum TrainOptimizer {
    /// `sgd`.
    Sgd(Sgd),
    /// `adam` or `adamw`.
    Adam(Adam),
}

impl TrainOptimizer {
    /// The optimizer of a pycls config, with its weight-decay groups.
    pub fn from_config(cfg: &Config) -> Self {
        match cfg.optim.optimizer {
            Optimizer::Sgd => TrainOptimizer::Sgd(Sgd::new(SgdConfig::from_config(cfg))),
            Optimizer::Adam | Optimizer::AdamW => {
                TrainOptimizer::Adam(Adam::new(AdamConfig::from_config(cfg)))
            }
        }
    }

    /// One update of every parameter that has a gradient, at learning rate `lr`.
    pub fn step(&mut self, model: Model, grads: GradientsParams, lr: f64) -> Model {
        match self {
            TrainOptimizer::Sgd(o) => o.step(model, grads, lr),
            TrainOptimizer::Adam(o) => o.step(model, grads, lr),
        }
    }

    /// The state to checkpoint: SGD's momentum buffers by parameter name, or Adam's
    /// `exp_avg.`, `exp_avg_sq.` and `step.` entries.
    pub fn state(&self) -> StateDict {
        match self {
            TrainOptimizer::Sgd(o) => o.buffers(),
            TrainOptimizer::Adam(o) => o.state(),
        }
    }

    /// Restores [`TrainOptimizer::state`]; state of the other optimizer is an error rather
    /// than a silent restart of the moments.
    pub fn load_state(
        &mut self,
        sd: &StateDict,
        device: &burn::tensor::Device,
    ) -> Result<(), OptimStateError> {
        match self {
            TrainOptimizer::Sgd(o) => {
                if let Some(k) = sd
                    .tensors
                    .keys()
                    .find(|k| STATE_PREFIXES.iter().any(|p| k.starts_with(p)))
                {
                    return Err(OptimStateError(format!(
                        "`{k}` is Adam state but OPTIM.OPTIMIZER is sgd"
                    )));
                }
                o.load_buffers(sd, device);
                Ok(())
            }
            TrainOptimizer::Adam(o) => o.load_state(sd, device),
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
        let w_new = if cfg.momentum != 0.0 {
            let buf = self.sgd.buffers.remove(name).map(|(_, b)| b.reshape(dims));
            let h = SgdStep {
                lr: self.lr as f32,
                wd: wd as f32,
                momentum: cfg.momentum as f32,
                keep: (1.0 - cfg.dampening) as f32,
                nesterov: cfg.nesterov,
            };
            let (w_new, buf) = momentum_step(w, grad, buf, h);
            let n = buf.shape().num_elements();
            self.sgd
                .buffers
                .insert(name.to_string(), (dims.to_vec(), buf.reshape([n])));
            w_new
        } else {
            let d = if wd != 0.0 {
                grad + w.clone().mul_scalar(wd)
            } else {
                grad
            };
            w - d.mul_scalar(self.lr)
        };
        let mut updated = Tensor::from_inner(w_new);
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}
