//! One SGD-with-momentum update as a burn backend extension: the single-pass kernel of
//! [`crate::kernels::sgd`] on `flex`; other backends (GPUs) run the same update as burn
//! tensor operations ([`momentum_step_ops`]).

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, Tensor, TensorData};

use crate::conv_ext::{is_flex, with_f32};
use crate::kernels::sgd::{self, SgdStep};

/// The optimizer update a backend provides for regnet (`flex` only: other backends run
/// [`momentum_step_ops`]).
#[backend_extension(Flex)]
pub trait SgdBackend: Backend {
    /// The new parameter and momentum buffer from the parameter `w`, its gradient and the
    /// momentum buffer, as [`sgd::momentum_step`] defines them; on the `first` step there
    /// is no buffer yet and `buf` is ignored.
    fn rn_sgd_momentum(
        w: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        buf: FloatTensor<Self>,
        first: bool,
        h: SgdStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

impl SgdBackend for Flex {
    fn rn_sgd_momentum(
        mut w: FlexTensor,
        grad: FlexTensor,
        mut buf: FlexTensor,
        first: bool,
        h: SgdStep,
    ) -> (FlexTensor, FlexTensor) {
        // The parameter and its buffer are normally owned by the optimizer step alone and
        // are updated in place; shared or strided ones get new storage.
        if !first
            && whole(&w)
            && whole(&buf)
            && let (Some(ws), Some(bs)) = (w.try_storage_mut(), buf.try_storage_mut())
        {
            with_f32(&grad, |g| sgd::momentum_step_in_place(ws, g, bs, &h));
            return (w, buf);
        }
        let shape = w.shape().to_vec();
        let (w_new, b_new) = with_f32(&w, |w| {
            with_f32(&grad, |g| {
                if first {
                    sgd::momentum_step(w, g, None, &h)
                } else {
                    with_f32(&buf, |b| sgd::momentum_step(w, g, Some(b), &h))
                }
            })
        });
        (
            FlexTensor::from_data(TensorData::new(w_new, shape.clone())),
            FlexTensor::from_data(TensorData::new(b_new, shape)),
        )
    }
}

/// Whether `t` holds f32 values and its storage exactly its elements, in order.
fn whole(t: &FlexTensor) -> bool {
    t.as_slice::<f32>()
        .is_some_and(|s| std::mem::size_of_val(s) == t.bytes().len())
}

/// One update of a parameter `w` (outside the autodiff graph) from its gradient and momentum
/// buffer (`None` on the first step): `(new parameter, new buffer)`, both of the parameter's
/// shape, as [`sgd::momentum_step`] defines them. One pass on `flex`
/// ([`SgdBackend::rn_sgd_momentum`]), tensor operations elsewhere.
pub fn momentum_step<const D: usize>(
    w: Tensor<D>,
    grad: Tensor<D>,
    buf: Option<Tensor<D>>,
    h: SgdStep,
) -> (Tensor<D>, Tensor<D>) {
    // The kernel computes in f32 (regnet trains in f32); anything else keeps burn's operations.
    if !is_flex(&w.device()) || w.dtype() != DType::F32 {
        return momentum_step_ops(w, grad, buf, h);
    }
    let first = buf.is_none();
    // A stand-in on the first step, which reads no buffer.
    let buf = buf.unwrap_or_else(|| grad.clone());
    let (w, b) = <Dispatch as SgdBackend>::rn_sgd_momentum(
        w.into_dispatch(),
        grad.into_dispatch(),
        buf.into_dispatch(),
        first,
        h,
    );
    (Tensor::from_dispatch(w), Tensor::from_dispatch(b))
}

/// [`momentum_step`] as burn tensor operations, with the same scalars (burn multiplies f32
/// tensors by scalars rounded to f32).
pub fn momentum_step_ops<const D: usize>(
    w: Tensor<D>,
    grad: Tensor<D>,
    buf: Option<Tensor<D>>,
    h: SgdStep,
) -> (Tensor<D>, Tensor<D>) {
    let d = if h.wd != 0.0 {
        grad + w.clone().mul_scalar(h.wd)
    } else {
        grad
    };
    let buf = match buf {
        Some(b) => b.mul_scalar(h.momentum) + d.clone().mul_scalar(h.keep),
        None => d.clone(),
    };
    let step = if h.nesterov {
        d + buf.clone().mul_scalar(h.momentum)
    } else {
        buf.clone()
    };
    (w - step.mul_scalar(h.lr), buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device;

    /// On flex, the kernel (in place, and into new storage on the first step) gives the same
    /// bits as the update written as tensor operations (the optimizer's form before the
    /// kernel, and what other backends run), for every combination of the options.
    #[test]
    fn the_kernel_matches_the_tensor_operations() {
        let dev = device::cpu();
        let vals = |k: usize| -> Vec<f32> {
            (0..420)
                .map(|i| ((i * k % 83) as f32 - 41.0) / 37.0)
                .collect()
        };
        let t = |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, [3, 4, 5, 7]), &dev);
        for case in 0..16 {
            let (wd, nesterov, first, keep) = (
                if case & 1 == 0 { 0.0 } else { 5e-5 },
                case & 2 != 0,
                case & 4 != 0,
                if case & 8 == 0 { 1.0 } else { 0.75 },
            );
            let h = SgdStep {
                lr: 0.37,
                wd,
                momentum: 0.9,
                keep,
                nesterov,
            };
            // Fresh tensors, owned by the update alone (so updated in place after the first
            // step), and others holding the same values for the tensor operations.
            let fresh = || (t(vals(7)), t(vals(11)), (!first).then(|| t(vals(13))));
            let (w, g, buf) = fresh();
            let (w1, b1) = momentum_step(w, g, buf, h);
            let (w, g, buf) = fresh();
            let (w2, b2) = momentum_step_ops(w, g, buf, h);
            for (a, b) in [(w1, w2), (b1, b2)] {
                let (a, b) = (
                    a.into_data().try_to_vec::<f32>().unwrap(),
                    b.into_data().try_to_vec::<f32>().unwrap(),
                );
                assert!(
                    a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{h:?} first {first}"
                );
            }
        }
    }

    /// A parameter and buffer that the step owns are updated in their own storage; shared
    /// ones are left as they were.
    #[test]
    fn owned_storage_is_updated_in_place() {
        let flex = |v: f32| FlexTensor::from_data(TensorData::new(vec![v; 1000], [10, 100]));
        let ptr = |t: &FlexTensor| t.as_slice::<f32>().unwrap().as_ptr();
        let h = SgdStep {
            lr: 0.5,
            wd: 0.0,
            momentum: 0.5,
            keep: 1.0,
            nesterov: false,
        };
        let (w, buf) = (flex(1.0), flex(2.0));
        let (pw, pb) = (ptr(&w), ptr(&buf));
        let (w, buf) = <Flex as SgdBackend>::rn_sgd_momentum(w, flex(4.0), buf, false, h);
        assert_eq!((ptr(&w), ptr(&buf)), (pw, pb));
        // buf = 0.5 * 2 + 4 = 5, w = 1 - 0.5 * 5.
        assert_eq!(w.as_slice::<f32>().unwrap()[999], -1.5);
        assert_eq!(buf.as_slice::<f32>().unwrap()[0], 5.0);
        let shared = w.clone();
        let (w2, _) = <Flex as SgdBackend>::rn_sgd_momentum(w, flex(4.0), buf, false, h);
        assert_ne!(ptr(&w2), ptr(&shared));
        assert_eq!(shared.as_slice::<f32>().unwrap()[0], -1.5);
    }
}
