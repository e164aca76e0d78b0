//! Soft-target cross-entropy (pycls's `SoftCrossEntropyLoss`): mean over the batch of
//! `-sum(y * log_softmax(x))`, which with one-hot `y` is PyTorch's cross-entropy. Label
//! smoothing, mixup and cutmix produce the soft targets.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};

/// One-hot targets `[n, classes]` with label smoothing `eps`: `eps / classes` everywhere and
/// `1 - eps + eps / classes` on the label (pycls's `smooth_one_hot_labels`).
pub fn smooth_one_hot(labels: &[i64], classes: usize, eps: f64) -> Vec<f32> {
    let neg = (eps / classes as f64) as f32;
    let pos = (1.0 - eps + eps / classes as f64) as f32;
    let mut y = vec![neg; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        y[i * classes + l as usize] = pos;
    }
    y
}

/// Mean soft cross-entropy of logits `[n, c]` against targets `[n, c]`.
pub fn soft_cross_entropy(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let n = logits.dims()[0] as f64;
    (targets * log_softmax(logits, 1)).sum().neg().div_scalar(n)
}

/// Soft targets as a tensor on the logits' device.
pub fn targets_tensor(
    y: Vec<f32>,
    n: usize,
    classes: usize,
    device: &burn::tensor::Device,
) -> Tensor<2> {
    Tensor::from_data(TensorData::new(y, [n, classes]), device)
}

/// Labels as an integer tensor.
pub fn labels_tensor(labels: &[i64], device: &burn::tensor::Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(labels.to_vec(), [labels.len()]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_by_hand() {
        let y = smooth_one_hot(&[2, 0], 4, 0.1);
        assert_eq!(
            y,
            vec![0.025, 0.025, 0.925, 0.025, 0.925, 0.025, 0.025, 0.025]
        );
        let y = smooth_one_hot(&[1], 3, 0.0);
        assert_eq!(y, vec![0.0, 1.0, 0.0]);
    }

    #[test]
    fn cross_entropy_by_hand() {
        let dev = burn::tensor::Device::flex();
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0], [2, 3]),
            &dev,
        );
        let y = targets_tensor(smooth_one_hot(&[2, 1], 3, 0.0), 2, 3, &dev);
        let loss: f32 = soft_cross_entropy(logits, y).into_scalar();
        // -log softmax: sample 0: log(e + e^2 + e^3) - 3; sample 1: log 3.
        let e = std::f64::consts::E;
        let want = ((e + e * e + e * e * e).ln() - 3.0 + 3f64.ln()) / 2.0;
        assert!((loss as f64 - want).abs() < 1e-6, "{loss} {want}");
    }
}
