//! BatchNorm with PyTorch's semantics: normalise with the biased batch variance in training,
//! update the running variance with the *unbiased* one (burn's own BatchNorm uses the biased
//! one), momentum 0.1 in PyTorch's convention, eps 1e-5.

use burn::module::{Flag, Module, Param, RunningState};
use burn::tensor::module::{batch_norm, batch_norm_train};
use burn::tensor::{Device, Tensor};

use crate::conv::to_tensor;
use crate::state_dict::TensorF32;

/// 2-d batch normalisation over `[n, c, h, w]`.
#[derive(Module, Debug)]
pub struct BatchNorm2d {
    /// Gamma (PyTorch `weight`).
    pub weight: Param<Tensor<1>>,
    /// Beta (PyTorch `bias`).
    pub bias: Param<Tensor<1>>,
    /// Running mean.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running variance (unbiased estimates).
    pub running_var: RunningState<Tensor<1>>,
    /// Training behaviour on (turned off by `valid()`).
    pub training: Param<Flag>,
    /// Epsilon.
    pub eps: f64,
    /// Momentum (PyTorch convention: weight of the new batch).
    pub momentum: f64,
}

impl BatchNorm2d {
    /// Builds the layer from its four tensors.
    pub fn new(
        weight: &TensorF32,
        bias: &TensorF32,
        mean: &TensorF32,
        var: &TensorF32,
        eps: f64,
        momentum: f64,
        device: &Device,
    ) -> Self {
        BatchNorm2d {
            weight: Param::from_tensor(to_tensor(weight, device)),
            bias: Param::from_tensor(to_tensor(bias, device)),
            running_mean: RunningState::new(to_tensor(mean, device)),
            running_var: RunningState::new(to_tensor(var, device)),
            training: Param::from_bool(true),
            eps,
            momentum,
        }
    }

    /// Whether this call normalises with batch statistics.
    pub fn is_training(&self, x: &Tensor<4>) -> bool {
        x.device().is_autodiff() && self.training.is_enabled()
    }

    /// Normalises `x`; in training also updates the running statistics.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let flex = crate::conv_ext::is_flex(&x.device());
        if !self.is_training(&x) {
            if flex {
                // Fold the statistics into one scale and shift per channel: one pass.
                let inv = (self.running_var.value().add_scalar(self.eps))
                    .sqrt()
                    .recip();
                let scale = self.weight.val() * inv;
                let shift = self.bias.val() - self.running_mean.value() * scale.clone();
                return crate::bn_ext::channel_affine(x, scale, shift);
            }
            return batch_norm(
                x,
                self.weight.val(),
                self.bias.val(),
                self.running_mean.value(),
                self.running_var.value(),
                self.eps,
            );
        }
        let [n, _, h, w] = x.dims();
        let count = (n * h * w) as f64;
        let (output, mean, variance) = if flex {
            crate::bn_ext::bn_train(x, self.weight.val(), self.bias.val(), self.eps)
        } else {
            let out = batch_norm_train(x, self.weight.val(), self.bias.val(), self.eps);
            (out.output, out.mean, out.variance)
        };
        // PyTorch updates the running variance with the unbiased batch variance.
        let unbiased = variance.mul_scalar(count / (count - 1.0).max(1.0));
        let m = self.momentum;
        let mean = self.running_mean.value_sync().mul_scalar(1.0 - m) + mean.mul_scalar(m);
        let var = self.running_var.value_sync().mul_scalar(1.0 - m) + unbiased.mul_scalar(m);
        self.running_mean.update(mean.detach());
        self.running_var.update(var.detach());
        output
    }
}
