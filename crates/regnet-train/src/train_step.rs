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
    check: impl FnOnce(&Model, f32, &GradientsParams) -> Result<(), TrainError> + Send,
) -> Result<Step, TrainError> {
    on_worker(|| {
        let StepGrads {
            grads,
            loss,
            logits,
        } = gradients(&model, x, targets, replicas)?;
        check(&model, loss, &grads)?;
        let model = optimizer.step(model, grads, lr);
        Ok(Step {
            model,
            loss,
            logits,
        })
    })
}

/// Runs `f` on a thread of rayon's pool (at once if this is one). The CPU kernels' parallel
/// loops, started from a worker, run on it and wake one other thread; started from outside
/// the pool, each of the step's hundreds of loops parks the caller and wakes two. On the
/// project's 2-core machine a training step took 7-9 % less time this way (`regnet time`,
/// 4 rounds alternating, default model and RegNetX-400MF CIFAR).
fn on_worker<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        rayon::scope(|_| f())
    }
}
