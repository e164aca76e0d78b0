//! `relu(a + b)`, the end of every residual block, as one burn operation: the parallel
//! kernels of [`crate::kernels::residual`] on `flex`, with their own backward pass under
//! autodiff (the gradient of both operands is `dz` where the output was positive).

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Tensor, TensorData};

use crate::conv_ext::with_f32;
use crate::kernels::residual;

/// The residual sum and its ReLU as one operation.
#[backend_extension(Flex, Autodiff)]
pub trait AddReluBackend: Backend {
    /// `relu(a + b)`, `a` and `b` of one shape.
    fn rn_add_relu(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The gradient of [`AddReluBackend::rn_add_relu`] for either operand, from its output
    /// `z` and the output's gradient `dz`.
    fn rn_add_relu_grad(z: FloatTensor<Self>, dz: FloatTensor<Self>) -> FloatTensor<Self>;
}

fn flex(data: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

impl AddReluBackend for Flex {
    fn rn_add_relu(a: FlexTensor, b: FlexTensor) -> FlexTensor {
        let shape = a.shape().to_vec();
        let z = with_f32(&a, |a| with_f32(&b, |b| residual::add_relu(a, b)));
        flex(z, shape)
    }

    fn rn_add_relu_grad(z: FlexTensor, dz: FlexTensor) -> FlexTensor {
        let shape = z.shape().to_vec();
        let d = with_f32(&z, |z| with_f32(&dz, |dz| residual::relu_grad(z, dz)));
        flex(d, shape)
    }
}

#[derive(Debug)]
struct AddReluBackward;

impl<B: AddReluBackend> Backward<B, 2> for AddReluBackward {
    /// The output.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_a, node_b] = ops.parents;
        let dz = grads.consume::<B>(&ops.node);
        let d = B::rn_add_relu_grad(ops.state, dz);
        match (node_a, node_b) {
            (Some(a), Some(b)) => {
                grads.register::<B>(a.id, d.clone());
                grads.register::<B>(b.id, d);
            }
            (Some(node), None) | (None, Some(node)) => grads.register::<B>(node.id, d),
            (None, None) => {}
        }
    }
}

impl<B: AddReluBackend, C: CheckpointStrategy> AddReluBackend for Autodiff<B, C> {
    fn rn_add_relu(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        match AddReluBackward
            .prepare::<C>([a.node(), b.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let z = B::rn_add_relu(a.into_primitive(), b.into_primitive());
                prep.finish(z.clone(), z)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::rn_add_relu(a.into_primitive(), b.into_primitive()))
            }
        }
    }

    fn rn_add_relu_grad(_z: FloatTensor<Self>, _dz: FloatTensor<Self>) -> FloatTensor<Self> {
        unimplemented!("second-order gradients of the residual ReLU are not supported")
    }
}

/// `relu(a + b)` on flex, as one operation.
pub fn add_relu(a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as AddReluBackend>::rn_add_relu(
        a.into_dispatch(),
        b.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, activation};

    use super::*;

    /// Output and both gradients equal burn's `relu(a + b)` under autodiff, bit for bit.
    #[test]
    fn matches_burns_add_and_relu() {
        let dev = Device::flex().autodiff();
        let shape = [3, 5, 7, 6];
        let a0 = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &dev);
        let b0 = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &dev);
        let r = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &dev);
        let run = |fused: bool| {
            let (a, b) = (a0.clone().require_grad(), b0.clone().require_grad());
            let z = if fused {
                add_relu(a.clone(), b.clone())
            } else {
                activation::relu(a.clone() + b.clone())
            };
            let grads = (z.clone() * r.clone()).sum().backward();
            let values = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
            let (ga, gb) = (a.grad(&grads).unwrap(), b.grad(&grads).unwrap());
            (values(z.inner()), values(ga), values(gb))
        };
        let (fused, burn) = (run(true), run(false));
        assert_eq!(fused, burn);
        assert!(fused.0.contains(&0.0) && fused.0.iter().any(|&v| v > 0.0));
    }
}
