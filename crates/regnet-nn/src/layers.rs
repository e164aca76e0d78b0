//! The building blocks: conv+BN(+activation), squeeze-excitation, and a generic residual
//! block that runs whatever the layer plan lists (vanilla, basic, bottleneck, linear
//! bottleneck, MBConv).

use burn::module::{Flag, Module, Param};
use burn::tensor::activation::{relu, sigmoid, silu};
use burn::tensor::{Device, Distribution, Tensor};
use regnet_core::network::{self, ConvBn as ConvBnPlan, Op, Shortcut};
use regnet_core::spec::Activation;

use crate::batch_norm::BatchNorm2d;
use crate::conv::Conv;
use crate::error::WeightsError;
use crate::state_dict::{StateDict, TensorF32};

/// Applies `act` element-wise.
pub fn activate<const D: usize>(x: Tensor<D>, act: Activation) -> Tensor<D> {
    match act {
        Activation::Relu => relu(x),
        Activation::Silu => silu(x),
    }
}

/// BN settings shared by every layer.
#[derive(Clone, Copy, Debug)]
pub struct BnSettings {
    /// Epsilon.
    pub eps: f64,
    /// Momentum (PyTorch convention).
    pub momentum: f64,
}

impl Default for BnSettings {
    fn default() -> Self {
        BnSettings {
            eps: 1e-5,
            momentum: 0.1,
        }
    }
}

/// Where to get tensors from while building: the state dict, by pycls name.
pub(crate) struct Source<'a> {
    pub sd: &'a StateDict,
    pub device: &'a Device,
    pub bn: BnSettings,
}

impl Source<'_> {
    pub fn get(&self, name: &str) -> Result<&TensorF32, WeightsError> {
        // The state dict was checked against the plan before building; a miss is a bug.
        self.sd
            .get(name)
            .ok_or_else(|| WeightsError::Other(format!("internal: {name} missing after check")))
    }

    pub fn conv(&self, prefix: &str, c: &network::Conv2d) -> Result<Conv, WeightsError> {
        let w = self.get(&format!("{prefix}.weight"))?;
        let b = if c.bias {
            Some(self.get(&format!("{prefix}.bias"))?)
        } else {
            None
        };
        Ok(Conv::new(
            w,
            b,
            c.stride,
            c.padding(),
            c.groups,
            self.device,
        ))
    }
}

/// Conv, BN, optional activation; remembers its pycls names for saving.
#[derive(Module, Debug)]
pub struct ConvBn {
    /// The conv.
    pub conv: Conv,
    /// The BN.
    pub bn: BatchNorm2d,
    /// Activation after the BN, if any.
    #[module(skip)]
    pub act: Option<Activation>,
    /// pycls name of the conv (`s1.b1.f.a`).
    #[module(skip)]
    pub conv_name: String,
    /// pycls name of the BN (`s1.b1.f.a_bn`).
    #[module(skip)]
    pub bn_name: String,
}

impl ConvBn {
    pub(crate) fn build(
        src: &Source,
        owner: &str,
        plan: &ConvBnPlan,
        act: Activation,
    ) -> Result<Self, WeightsError> {
        let conv_name = plan.conv_path(owner);
        let bn_name = plan.bn_path(owner);
        let t = |s: &str| src.get(&format!("{bn_name}.{s}"));
        let bn = BatchNorm2d::new(
            t("weight")?,
            t("bias")?,
            t("running_mean")?,
            t("running_var")?,
            src.bn.eps,
            src.bn.momentum,
            src.device,
        );
        Ok(ConvBn {
            conv: src.conv(&conv_name, &plan.conv)?,
            bn,
            act: plan.act.then_some(act),
            conv_name,
            bn_name,
        })
    }

    /// Conv, BN, activation.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.conv.forward(x);
        match self.act {
            Some(Activation::Relu) => self.bn.forward_with_relu(y, true),
            Some(a) => activate(self.bn.forward(y), a),
            None => self.bn.forward(y),
        }
    }
}

/// Squeeze-excitation: global average pool, 1x1 conv, activation, 1x1 conv, sigmoid, gate.
#[derive(Module, Debug)]
pub struct SqueezeExcite {
    /// 1x1 conv to the squeezed width (`f_ex.0`).
    pub squeeze: Conv,
    /// 1x1 conv back (`f_ex.2`).
    pub excite: Conv,
    /// Activation between them.
    #[module(skip)]
    pub act: Activation,
    /// pycls prefix (`s1.b1.f.se`).
    #[module(skip)]
    pub name: String,
}

impl SqueezeExcite {
    /// Gates the channels of `x`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let s = x.clone().mean_dims(&[2, 3]);
        let s = activate(self.squeeze.forward(s), self.act);
        let gate = sigmoid(self.excite.forward(s));
        x * gate
    }
}

/// One block of the body, as the layer plan describes it.
#[derive(Module, Debug)]
pub struct Block {
    /// Projection shortcut (strided 1x1 conv + BN).
    pub proj: Option<ConvBn>,
    /// The branch's convs, in order.
    pub convs: Vec<ConvBn>,
    /// Squeeze-excitation, applied after `se_after` convs.
    pub se: Option<SqueezeExcite>,
    /// Number of convs before the SE.
    pub se_after: usize,
    /// Identity shortcut.
    pub identity: bool,
    /// Activation after the sum.
    #[module(skip)]
    pub act_after_sum: Option<Activation>,
    /// Drop-connect ratio of the branch in training (EfficientNet).
    pub drop_connect: f64,
    /// Training behaviour (drop-connect) on.
    pub training: Param<Flag>,
}

impl Block {
    pub(crate) fn build(
        src: &Source,
        plan: &network::Block,
        act: Activation,
        dc_ratio: f64,
    ) -> Result<Self, WeightsError> {
        let mut convs = Vec::new();
        let mut se = None;
        let mut se_after = 0;
        for op in &plan.ops {
            match op {
                Op::ConvBn(cb) => convs.push(ConvBn::build(src, &plan.key, cb, act)?),
                Op::Se(s) => {
                    let name = format!("{}.{}", plan.key, s.key);
                    let [(sq_name, squeeze), (ex_name, excite)] = s.convs(&plan.key);
                    se_after = convs.len();
                    se = Some(SqueezeExcite {
                        squeeze: src.conv(&sq_name, &squeeze)?,
                        excite: src.conv(&ex_name, &excite)?,
                        act,
                        name,
                    });
                }
            }
        }
        let (proj, identity) = match &plan.shortcut {
            Shortcut::None => (None, false),
            Shortcut::Identity => (None, true),
            Shortcut::Projection(p) => (Some(ConvBn::build(src, &plan.key, p, act)?), false),
        };
        Ok(Block {
            proj,
            convs,
            se,
            se_after,
            identity,
            act_after_sum: plan.act_after_sum.then_some(act),
            drop_connect: if plan.drop_connect { dc_ratio } else { 0.0 },
            training: Param::from_bool(true),
        })
    }

    /// Runs the block.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut y = x.clone();
        for (i, c) in self.convs.iter().enumerate() {
            if i == self.se_after
                && let Some(se) = &self.se
            {
                y = se.forward(y);
            }
            y = c.forward(y);
        }
        if self.se_after == self.convs.len()
            && let Some(se) = &self.se
        {
            y = se.forward(y);
        }
        let (a, b) = if let Some(p) = &self.proj {
            (p.forward(x), y)
        } else if self.identity {
            (x, self.drop_connect(y))
        } else {
            return match self.act_after_sum {
                Some(act) => activate(y, act),
                None => y,
            };
        };
        match self.act_after_sum {
            // One parallel pass on the CPU instead of burn's two serial ones (`regnet time`,
            // rounds alternating: default model 30.5 vs 31.2 ms per step, faster in 5 of 6;
            // RegNetX-400MF CIFAR 71.8 vs 73.6 ms, 4 of 4).
            Some(Activation::Relu) if crate::conv_ext::is_flex(&a.device()) => {
                crate::add_relu_ext::add_relu(a, b)
            }
            Some(act) => activate(a + b, act),
            None => a + b,
        }
    }

    /// pycls's drop-connect: zero whole samples of the branch with probability `ratio` and
    /// rescale the rest, in training only.
    fn drop_connect(&self, y: Tensor<4>) -> Tensor<4> {
        if self.drop_connect <= 0.0 || !(y.device().is_autodiff() && self.training.is_enabled()) {
            return y;
        }
        let keep = 1.0 - self.drop_connect;
        let n = y.dims()[0];
        let mask = Tensor::<4>::random([n, 1, 1, 1], Distribution::Bernoulli(keep), &y.device());
        y.div_scalar(keep) * mask
    }
}
