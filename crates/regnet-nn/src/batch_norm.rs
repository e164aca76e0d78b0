//! BatchNorm with PyTorch's semantics: normalise with the biased batch variance in training,
//! update the running variance with the *unbiased* one (burn's own BatchNorm uses the biased
//! one), momentum 0.1 in PyTorch's convention, eps 1e-5.

use burn::module::{Flag, Module, Param, RunningState};
use burn::tensor::activation;
use burn::tensor::module::batch_norm;
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
        self.forward_with_relu(x, false)
    }

    /// Normalises `x`, then applies a ReLU if `relu`: one fused operation when training on
    /// flex (the backward recomputes the ReLU's mask from `x`, so no pass over the output
    /// and no saved mask). In training also updates the running statistics.
    pub fn forward_with_relu(&self, x: Tensor<4>, relu: bool) -> Tensor<4> {
        let flex = crate::conv_ext::is_flex(&x.device());
        if !self.is_training(&x) {
            let y = self.eval(x, flex);
            return if relu { activation::relu(y) } else { y };
        }
        let [n, _, h, w] = x.dims();
        let count = (n * h * w) as f64;
        let (output, mean, variance) = if flex {
            crate::bn_ext::bn_train(x, self.weight.val(), self.bias.val(), self.eps, relu)
        } else {
            let (y, mean, var) = bn_train_by_axes(x, self.weight.val(), self.bias.val(), self.eps);
            (if relu { activation::relu(y) } else { y }, mean, var)
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

    /// Eval mode: normalise with the running statistics.
    fn eval(&self, x: Tensor<4>, flex: bool) -> Tensor<4> {
        if flex {
            // Fold the statistics into one scale and shift per channel: one pass.
            let inv = (self.running_var.value().add_scalar(self.eps))
                .sqrt()
                .recip();
            let scale = self.weight.val() * inv;
            let shift = self.bias.val() - self.running_mean.value() * scale.clone();
            return crate::bn_ext::channel_affine(x, scale, shift);
        }
        batch_norm(
            x,
            self.weight.val(),
            self.bias.val(),
            self.running_mean.value(),
            self.running_var.value(),
            self.eps,
        )
    }
}

/// Training-mode batch norm built from one reduction per axis: the output and the batch
/// `(mean, biased variance)`, for devices other than `flex`.
///
/// Why not burn's `batch_norm_train`: it reduces each channel over a single N·H·W-long axis,
/// so one shader invocation loops over up to N·H·W elements, and Mesa's software Vulkan
/// device (llvmpipe) ends a shader's loops silently after 65535 iterations: batch 128 at
/// 28x28 came out wrong there. Here every reduction, forward and backward, is `max(n, h, w)`
/// long: the forward reduces W, H and N one after another, and the per-channel tensors are
/// expanded to the full shape before they meet `x`, because burn's autodiff reduces a
/// *broadcast* operand's gradient with one `sum_dims` over all broadcast axes, which the GPU
/// backend merges back into one N·H·W-long reduction; `expand`'s backward reduces one axis at
/// a time.
pub fn bn_train_by_axes(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    eps: f64,
) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    let full = x.dims();
    let c = full[1];
    // Equal counts per slice, so the mean of means is the mean over (n, h, w).
    let mean_nhw = |t: Tensor<4>| t.mean_dim(3).mean_dim(2).mean_dim(0);
    let mean = mean_nhw(x.clone());
    let centered = x - mean.clone().expand(full);
    let var = mean_nhw(centered.clone().powi_scalar(2));
    let scale = gamma.reshape([1, c, 1, 1]) / var.clone().add_scalar(eps).sqrt();
    let y = centered * scale.expand(full) + beta.reshape([1, c, 1, 1]).expand(full);
    (y, mean.reshape([c]).detach(), var.reshape([c]).detach())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{i}: {x} vs {y}");
        }
    }

    /// The per-axis path gives flex's fused kernel's output, statistics and gradients.
    #[test]
    fn per_axis_batch_norm_matches_the_fused_kernel() {
        let ad = Device::flex().autodiff();
        let shape = [5, 3, 7, 4];
        let x0 = Tensor::<4>::random(shape, Distribution::Normal(0.5, 2.0), &ad);
        let r = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &ad);
        let gamma0 = Tensor::<1>::from_data(TensorData::from([0.5f32, -1.5, 2.0]), &ad);
        let beta0 = Tensor::<1>::from_data(TensorData::from([0.1f32, 0.0, -0.3]), &ad);
        let run = |fused: bool| {
            let x = x0.clone().detach().require_grad();
            let (gamma, beta) = (gamma0.clone().require_grad(), beta0.clone().require_grad());
            let (y, mean, var) = if fused {
                crate::bn_ext::bn_train(x.clone(), gamma.clone(), beta.clone(), 1e-5, false)
            } else {
                bn_train_by_axes(x.clone(), gamma.clone(), beta.clone(), 1e-5)
            };
            let grads = (y.clone() * r.clone()).sum().backward();
            let gx = x.grad(&grads).unwrap();
            let gg = values(gamma.grad(&grads).unwrap());
            let gb = values(beta.grad(&grads).unwrap());
            let stats: Vec<f32> = values(mean).into_iter().chain(values(var)).collect();
            (values(y), stats, values(gx), gg, gb)
        };
        let (fused, axes) = (run(true), run(false));
        close(&axes.0, &fused.0, 1e-5);
        close(&axes.1, &fused.1, 1e-5);
        close(&axes.2, &fused.2, 1e-4);
        close(&axes.3, &fused.3, 1e-4);
        close(&axes.4, &fused.4, 1e-4);
        // The variance is the biased one (divided by n*h*w).
        let xs = values(x0);
        let c0: Vec<f64> = (0..5)
            .flat_map(|n| xs[n * 84..n * 84 + 28].iter().map(|&v| v as f64))
            .collect();
        let m = c0.iter().sum::<f64>() / 140.0;
        let v = c0.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 140.0;
        assert!((axes.1[0] as f64 - m).abs() < 1e-5 && (axes.1[3] as f64 - v).abs() < 1e-4 * v);
    }
}
