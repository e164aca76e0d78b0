//! One training step, the body of pycls's `train_epoch` loop: forward, loss and backward
//! over `NUM_GPUS` micro-batches ([`crate::data_parallel::gradients`]), then one update by the
//! configured optimizer. The trainer, `regnet time` and the PyTorch parity test all run
//! this one function, so that what is timed and what is tested is what trains.

use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use regnet_nn::{Model, TensorF32};

use crate::data_parallel::{StepGrads, gradients};
use crate::optimizer::TrainOptimizer;
use crate::trainer::TrainError;

/// What one step gives back.
pub struct Step {
    /// The updated model.
    pub model: Model,
    /// The step's mean loss (over all micro-batches), before the update.
    pub loss: f32,
    /// Logits `[n, classes]` of the batch before the update, detached, on the CPU.
    pub logits: TensorF32,
}

/// One optimizer step of `model` on images `x` `[n, c, h, w]` with soft targets `targets`
/// `[n, classes]` (both on the model's autodiff device), at learning rate `lr`, over
/// `replicas` micro-batches (`NUM_GPUS`).
///
/// `check` sees the model, the loss and the gradients before the optimizer uses them: the
/// trainer stops there on a non-finite loss (the weights are then left unchanged), the
/// parity test compares the gradients with PyTorch's.
pub fn train_step(
    model: Model,
    optimizer: &mut TrainOptimizer,
    (x, targets): (Tensor<4>, Tensor<2>),
    lr: f64,
    replicas: usize,
    check: impl FnOnce(&Model, f32, &GradientsParams) -> Result<(), TrainError>,
) -> Result<Step, TrainError> {
    let StepGrads {
        grads,
        loss,
        logits,
    } = if regnet_nn::conv_ext::is_flex(&x.device()) {
        regnet_nn::awake::with_workers_awake(|| gradients(&model, x, targets, replicas))?
    } else {
        // On a GPU the CPU workers have little to do, and the data loader needs the cores.
        gradients(&model, x, targets, replicas)?
    };
    check(&model, loss, &grads)?;
    let model = optimizer.step(model, grads, lr);
    Ok(Step {
        model,
        loss,
        logits,
    })
}
