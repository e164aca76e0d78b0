//! Adam and AdamW exactly as `torch.optim.Adam` and `torch.optim.AdamW` (and so pycls's
//! `OPTIM.OPTIMIZER adam|adamw`) run them, per parameter with weight decay `wd`:
//!
//! - Adam adds L2 decay to the gradient: `g = g + wd * p`;
//! - AdamW decays the weights apart from the gradient: `p = p * (1 - lr * wd)`;
//! - then `step += 1`; `m = m + (1 - beta1) * (g - m)`; `v = beta2 * v + (1 - beta2) * g * g`;
//!   `p -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)`.
//!
//! Betas come from `OPTIM.BETA1` / `OPTIM.BETA2`, eps is PyTorch's default 1e-8, and the
//! weight decay is chosen per parameter kind as pycls's `construct_optimizer` does
//! ([`DecayGroups`]). State is kept by pycls parameter name, as torch's state dict names it
//! (`exp_avg`, `exp_avg_sq`, `step`), so that checkpoints resume into a freshly built model.

use std::collections::BTreeMap;

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use regnet_core::config::{Config, Optimizer};
use regnet_nn::conv::{from_tensor, to_tensor};
use regnet_nn::model::{ParamMapper, Role};
use regnet_nn::{Model, StateDict, TensorF32};

use crate::optimizer::{DecayGroups, OptimStateError};

/// PyTorch's default `eps` of Adam and AdamW (pycls does not set it).
pub const ADAM_EPS: f64 = 1e-8;

/// The largest step count a checkpoint may hold: steps are stored as `f32`, exact up to 2^24.
const MAX_STEP: f32 = 16_777_216.0;

/// Adam / AdamW hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Decay of the first moment (`OPTIM.BETA1`).
    pub beta1: f64,
    /// Decay of the second moment (`OPTIM.BETA2`).
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// AdamW's decoupled weight decay instead of Adam's L2 term.
    pub decoupled: bool,
    /// Weight decay per parameter kind.
    pub decay: DecayGroups,
}

impl AdamConfig {
    /// From a pycls config (`OPTIM.OPTIMIZER`, `OPTIM.BETA1`, `OPTIM.BETA2`, decay keys).
    pub fn from_config(cfg: &Config) -> Self {
        AdamConfig {
            beta1: cfg.optim.beta1,
            beta2: cfg.optim.beta2,
            eps: ADAM_EPS,
            decoupled: cfg.optim.optimizer == Optimizer::AdamW,
            decay: DecayGroups::from_config(cfg),
        }
    }

    /// One update of a flattened parameter `p` with gradient `g`, decay `wd` and rate `lr`;
    /// `state` is `None` before the first step. Returns the parameter and its new state.
    pub fn update(
        &self,
        mut p: Tensor<1>,
        mut g: Tensor<1>,
        state: Option<AdamState>,
        wd: f64,
        lr: f64,
    ) -> (Tensor<1>, AdamState) {
        if wd != 0.0 {
            if self.decoupled {
                p = p.mul_scalar(1.0 - lr * wd);
            } else {
                g = g + p.clone().mul_scalar(wd);
            }
        }
        let (m, v, step) = match state {
            Some(s) => (s.exp_avg, s.exp_avg_sq, s.step + 1),
            None => (g.zeros_like(), g.zeros_like(), 1),
        };
        // torch's `exp_avg.lerp_(g, 1 - beta1)` and `exp_avg_sq.mul_(beta2).addcmul_(g, g)`.
        let m = m.clone() + (g.clone() - m).mul_scalar(1.0 - self.beta1);
        let v = v.mul_scalar(self.beta2) + (g.clone() * g).mul_scalar(1.0 - self.beta2);
        let bias1 = 1.0 - self.beta1.powf(step as f64);
        let bias2_sqrt = (1.0 - self.beta2.powf(step as f64)).sqrt();
        let denom = v.clone().sqrt().div_scalar(bias2_sqrt).add_scalar(self.eps);
        let p = p - (m.clone() / denom).mul_scalar(lr / bias1);
        let state = AdamState {
            exp_avg: m,
            exp_avg_sq: v,
            step,
        };
        (p, state)
    }
}

/// The state of one parameter, flattened.
#[derive(Clone, Debug)]
pub struct AdamState {
    /// First moment.
    pub exp_avg: Tensor<1>,
    /// Second moment.
    pub exp_avg_sq: Tensor<1>,
    /// Updates so far.
    pub step: u64,
}

/// Adam or AdamW with state by parameter name.
#[derive(Clone, Debug)]
pub struct Adam {
    /// Hyper-parameters.
    pub config: AdamConfig,
    /// State with the parameter's shape.
    state: BTreeMap<String, (Vec<usize>, AdamState)>,
}

/// The prefixes of the state-dict names of [`Adam::state`], as torch names the state.
pub const STATE_PREFIXES: [&str; 3] = ["exp_avg.", "exp_avg_sq.", "step."];

impl Adam {
    /// A fresh optimizer.
    pub fn new(config: AdamConfig) -> Self {
        Adam {
            config,
            state: BTreeMap::new(),
        }
    }

    /// One update of every parameter that has a gradient.
    pub fn step(&mut self, model: Model, grads: GradientsParams, lr: f64) -> Model {
        let mut step = Step {
            adam: self,
            grads,
            lr,
        };
        model.map_params(&mut step)
    }

    /// The state as `exp_avg.<param>`, `exp_avg_sq.<param>` and `step.<param>` (a
    /// one-element tensor), for checkpoints.
    pub fn state(&self) -> StateDict {
        let mut sd = StateDict::default();
        for (name, (shape, s)) in &self.state {
            for (prefix, t) in [("exp_avg.", &s.exp_avg), ("exp_avg_sq.", &s.exp_avg_sq)] {
                let flat = from_tensor(t.clone());
                sd.insert(
                    format!("{prefix}{name}"),
                    TensorF32::new(shape.clone(), flat.data),
                );
            }
            let step = TensorF32::new(vec![1], vec![s.step as f32]);
            sd.insert(format!("step.{name}"), step);
        }
        sd
    }

    /// Restores the state saved by [`Adam::state`]; anything else (SGD momentum buffers, a
    /// moment without its partner, a step that is not a whole number) is an error.
    pub fn load_state(&mut self, sd: &StateDict, device: &Device) -> Result<(), OptimStateError> {
        let err = |m: String| OptimStateError(m);
        if sd.tensors.is_empty() {
            return Err(err(
                "the checkpoint holds no Adam state (was it written with OPTIM.OPTIMIZER sgd?)"
                    .into(),
            ));
        }
        let mut state = BTreeMap::new();
        for (key, steps) in &sd.tensors {
            let Some(name) = key.strip_prefix("step.") else {
                if !STATE_PREFIXES.iter().any(|p| key.starts_with(p)) {
                    return Err(err(format!(
                        "`{key}` is not Adam state (was the checkpoint written with \
                         OPTIM.OPTIMIZER sgd?)"
                    )));
                }
                continue;
            };
            let step = match steps.data.as_slice() {
                [s] if *s >= 1.0 && s.fract() == 0.0 && *s <= MAX_STEP => *s as u64,
                _ => return Err(err(format!("`{key}` is not a step count"))),
            };
            let moment = |prefix: &str| {
                sd.get(&format!("{prefix}{name}"))
                    .ok_or_else(|| err(format!("`{key}` has no `{prefix}{name}`")))
            };
            let (m, v) = (moment("exp_avg.")?, moment("exp_avg_sq.")?);
            if m.shape != v.shape {
                return Err(err(format!("the moments of `{name}` differ in shape")));
            }
            let flat = |t: &TensorF32| {
                to_tensor::<1>(&TensorF32::new(vec![t.numel()], t.data.clone()), device)
            };
            let s = AdamState {
                exp_avg: flat(m),
                exp_avg_sq: flat(v),
                step,
            };
            state.insert(name.to_string(), (m.shape.clone(), s));
        }
        if state.len() * STATE_PREFIXES.len() != sd.tensors.len() {
            return Err(err("a moment has no `step.` entry".into()));
        }
        self.state = state;
        Ok(())
    }
}

struct Step<'a> {
    adam: &'a mut Adam,
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
        let cfg = self.adam.config;
        let require_grad = tensor.is_require_grad();
        let w = tensor.inner();
        let dims = w.dims();
        let n = w.shape().num_elements();
        let state = self.adam.state.remove(name).map(|(_, s)| s);
        let (w, s) = cfg.update(
            w.reshape([n]),
            grad.reshape([n]),
            state,
            cfg.decay.of(role),
            self.lr,
        );
        self.adam.state.insert(name.to_string(), (dims.to_vec(), s));
        let mut updated = Tensor::from_inner(w.reshape(dims));
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}
