//! regnet's batch normalisation as a burn backend extension: the kernels of
//! [`crate::kernels::batch_norm`] on `flex`, with their own backward pass under autodiff.

use burn::backend::AutodiffBackend;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Shape, Tensor, TensorData};

use crate::conv_ext::with_f32;
use crate::kernels::batch_norm::{self as kernels, BnAffine, BnGeom};

/// Batch-norm operations a backend provides for regnet.
#[backend_extension(Flex, Autodiff)]
pub trait BnBackend: Backend {
    /// Training-mode batch norm of `x [n, c, h, w]`, followed by a ReLU if `relu`: the
    /// output, and the batch statistics `[2, c]` (mean, then biased variance).
    fn rn_bn_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients `(dx, dgamma, dbeta)` of [`BnBackend::rn_bn_train`].
    #[allow(clippy::too_many_arguments)]
    fn rn_bn_train_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        eps: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// `y = x * scale[c] + shift[c]` (eval-mode batch norm with folded statistics).
    fn rn_channel_affine(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let c = scale.shape()[0];
        let shape = Shape::new([1, c, 1, 1]);
        let y = Self::float_mul(x, Self::float_reshape(scale, shape.clone()));
        Self::float_add(y, Self::float_reshape(shift, shape))
    }
}

fn geom(x: &FlexTensor) -> BnGeom {
    let s = x.shape();
    BnGeom {
        n: s[0],
        c: s[1],
        hw: s[2] * s[3],
    }
}

fn flex(data: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

impl BnBackend for Flex {
    fn rn_bn_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        eps: f64,
        relu: bool,
    ) -> (FlexTensor, FlexTensor) {
        let g = geom(&x);
        let shape = x.shape().to_vec();
        with_f32(&x, |xs| {
            let (y, mean, var) = with_f32(&gamma, |gamma| {
                with_f32(&beta, |beta| {
                    let p = BnAffine {
                        gamma,
                        beta,
                        eps,
                        relu,
                    };
                    kernels::train_forward(xs, &p, &g)
                })
            });
            let mut stats = mean;
            stats.extend(var);
            (flex(y, shape), flex(stats, vec![2, g.c]))
        })
    }

    fn rn_bn_train_grad(
        x: FlexTensor,
        dy: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        stats: FlexTensor,
        eps: f64,
        relu: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let g = geom(&x);
        let shape = x.shape().to_vec();
        let (dx, dgamma, dbeta) = with_f32(&x, |xs| {
            with_f32(&dy, |dys| {
                with_f32(&gamma, |gamma| {
                    with_f32(&beta, |beta| {
                        with_f32(&stats, |st| {
                            let p = BnAffine {
                                gamma,
                                beta,
                                eps,
                                relu,
                            };
                            kernels::backward_train((xs, dys), &p, (&st[..g.c], &st[g.c..]), &g)
                        })
                    })
                })
            })
        });
        (
            flex(dx, shape),
            flex(dgamma, vec![g.c]),
            flex(dbeta, vec![g.c]),
        )
    }

    fn rn_channel_affine(x: FlexTensor, scale: FlexTensor, shift: FlexTensor) -> FlexTensor {
        let g = geom(&x);
        let shape = x.shape().to_vec();
        let y = with_f32(&x, |xs| {
            with_f32(&scale, |a| {
                with_f32(&shift, |b| kernels::affine(xs, a, b, &g))
            })
        });
        flex(y, shape)
    }
}

#[derive(Debug)]
struct BnBackward;

impl<B: BnBackend> Backward<B, 3> for BnBackward {
    /// Input, gamma and beta nodes, the batch statistics, epsilon, the fused ReLU.
    type State = (NodeId, NodeId, NodeId, FloatTensor<B>, f64, bool);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x_id, gamma_id, beta_id, stats, eps, relu) = ops.state;
        let x: FloatTensor<B> = checkpointer.retrieve_node_output(x_id);
        let gamma: FloatTensor<B> = checkpointer.retrieve_node_output(gamma_id);
        let beta: FloatTensor<B> = checkpointer.retrieve_node_output(beta_id);
        let (dx, dgamma, dbeta) = B::rn_bn_train_grad(x, dy, gamma, beta, stats, eps, relu);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_gamma {
            grads.register::<B>(node.id, dgamma);
        }
        if let Some(node) = node_beta {
            grads.register::<B>(node.id, dbeta);
        }
    }
}

impl<B: BnBackend, C: CheckpointStrategy> BnBackend for Autodiff<B, C> {
    fn rn_bn_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        match BnBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_id = prep.checkpoint(&x);
                let gamma_id = prep.checkpoint(&gamma);
                let beta_id = prep.checkpoint(&beta);
                let (y, stats) = B::rn_bn_train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    eps,
                    relu,
                );
                let state = (x_id, gamma_id, beta_id, stats.clone(), eps, relu);
                let y = prep.finish(state, y);
                (y, <Self as AutodiffBackend>::from_inner(stats))
            }
            OpsKind::UnTracked(prep) => {
                let (y, stats) = B::rn_bn_train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    eps,
                    relu,
                );
                (prep.finish(y), <Self as AutodiffBackend>::from_inner(stats))
            }
        }
    }

    fn rn_bn_train_grad(
        _x: FloatTensor<Self>,
        _dy: FloatTensor<Self>,
        _gamma: FloatTensor<Self>,
        _beta: FloatTensor<Self>,
        _stats: FloatTensor<Self>,
        _eps: f64,
        _relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        unimplemented!("second-order gradients of batch norm are not supported")
    }
}

/// Training-mode batch norm on flex, followed by a ReLU if `relu` (one fused operation): the
/// output and the batch `(mean, biased variance)`.
pub fn bn_train(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    eps: f64,
    relu: bool,
) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    let (y, stats) = <Dispatch as BnBackend>::rn_bn_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        eps,
        relu,
    );
    let stats = Tensor::<2>::from_dispatch(stats).detach();
    let c = stats.dims()[1];
    let mean = stats.clone().slice([0..1, 0..c]).reshape([c]);
    let var = stats.slice([1..2, 0..c]).reshape([c]);
    (Tensor::from_dispatch(y), mean, var)
}

/// `x * scale[c] + shift[c]` on flex.
pub fn channel_affine(x: Tensor<4>, scale: Tensor<1>, shift: Tensor<1>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as BnBackend>::rn_channel_affine(
        x.into_dispatch(),
        scale.into_dispatch(),
        shift.into_dispatch(),
    ))
}
