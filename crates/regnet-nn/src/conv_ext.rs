//! regnet's convolution as a burn backend extension: the kernels of
//! [`crate::kernels::conv`] on the `flex` CPU backend, with their own backward pass under
//! autodiff. Other backends (GPUs) keep burn's `conv2d`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Device, Tensor, TensorData};

use crate::kernels::conv::{self, ConvGeom};

/// Convolution operations a backend provides for regnet.
#[backend_extension(Flex, Autodiff)]
pub trait ConvBackend: Backend {
    /// `y = conv(x, w)` with square kernels, symmetric padding and groups.
    fn rn_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        stride: usize,
        padding: usize,
        groups: usize,
    ) -> FloatTensor<Self>;

    /// Gradient of the input, of spatial size `h x w`.
    #[allow(clippy::too_many_arguments)]
    fn rn_conv2d_grad_x(
        dy: FloatTensor<Self>,
        w: FloatTensor<Self>,
        h: usize,
        width: usize,
        stride: usize,
        padding: usize,
        groups: usize,
    ) -> FloatTensor<Self>;

    /// Gradient of the weights, of kernel size `k`.
    fn rn_conv2d_grad_w(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        k: usize,
        stride: usize,
        padding: usize,
        groups: usize,
    ) -> FloatTensor<Self>;
}

/// Runs `f` on the tensor's elements as a contiguous f32 slice, copying only when the
/// tensor is a strided view or not f32.
pub(crate) fn with_f32<R>(t: &FlexTensor, f: impl FnOnce(&[f32]) -> R) -> R {
    if let Some(s) = t.as_slice::<f32>() {
        return f(s);
    }
    let data = t.to_contiguous().into_data().convert::<f32>();
    f(data.as_slice::<f32>().expect("f32 after conversion"))
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.shape();
    [s[0], s[1], s[2], s[3]]
}

fn flex(data: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

impl ConvBackend for Flex {
    fn rn_conv2d(
        x: FlexTensor,
        w: FlexTensor,
        stride: usize,
        padding: usize,
        groups: usize,
    ) -> FlexTensor {
        let [n, ci, h, wd] = dims4(&x);
        let [co, _, k, _] = dims4(&w);
        let g = ConvGeom {
            n,
            ci,
            co,
            h,
            w: wd,
            k,
            s: stride,
            p: padding,
            g: groups,
        };
        let y = with_f32(&x, |x| with_f32(&w, |w| conv::forward(x, w, &g)));
        flex(y, [n, co, g.oh(), g.ow()])
    }

    fn rn_conv2d_grad_x(
        dy: FlexTensor,
        w: FlexTensor,
        h: usize,
        width: usize,
        stride: usize,
        padding: usize,
        groups: usize,
    ) -> FlexTensor {
        let [n, co, _, _] = dims4(&dy);
        let [_, cig, k, _] = dims4(&w);
        let ci = cig * groups;
        let g = ConvGeom {
            n,
            ci,
            co,
            h,
            w: width,
            k,
            s: stride,
            p: padding,
            g: groups,
        };
        let dx = with_f32(&dy, |dy| with_f32(&w, |w| conv::backward_data(dy, w, &g)));
        flex(dx, [n, ci, h, width])
    }

    fn rn_conv2d_grad_w(
        x: FlexTensor,
        dy: FlexTensor,
        k: usize,
        stride: usize,
        padding: usize,
        groups: usize,
    ) -> FlexTensor {
        let [n, ci, h, wd] = dims4(&x);
        let [_, co, _, _] = dims4(&dy);
        let g = ConvGeom {
            n,
            ci,
            co,
            h,
            w: wd,
            k,
            s: stride,
            p: padding,
            g: groups,
        };
        let dw = with_f32(&x, |x| with_f32(&dy, |dy| conv::backward_weight(x, dy, &g)));
        flex(dw, [co, ci / groups, k, k])
    }
}

#[derive(Debug)]
struct ConvBackward;

impl<B: ConvBackend> Backward<B, 2> for ConvBackward {
    /// Input and weight nodes, input height and width, stride, padding, groups.
    type State = (NodeId, NodeId, [usize; 5]);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x_id, w_id, [h, wd, s, p, g]) = ops.state;
        let x: FloatTensor<B> = checkpointer.retrieve_node_output(x_id);
        let w: FloatTensor<B> = checkpointer.retrieve_node_output(w_id);
        let k = w.shape()[2];
        if let Some(node) = node_w {
            grads.register::<B>(node.id, B::rn_conv2d_grad_w(x, dy.clone(), k, s, p, g));
        }
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::rn_conv2d_grad_x(dy, w, h, wd, s, p, g));
        }
    }
}

impl<B: ConvBackend, C: CheckpointStrategy> ConvBackend for Autodiff<B, C> {
    fn rn_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        stride: usize,
        padding: usize,
        groups: usize,
    ) -> FloatTensor<Self> {
        let shape = x.shape();
        let (h, wd) = (shape[2], shape[3]);
        match ConvBackward
            .prepare::<C>([x.node(), w.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_id = prep.checkpoint(&x);
                let w_id = prep.checkpoint(&w);
                let y = B::rn_conv2d(
                    x.into_primitive(),
                    w.into_primitive(),
                    stride,
                    padding,
                    groups,
                );
                prep.finish((x_id, w_id, [h, wd, stride, padding, groups]), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::rn_conv2d(
                x.into_primitive(),
                w.into_primitive(),
                stride,
                padding,
                groups,
            )),
        }
    }

    fn rn_conv2d_grad_x(
        _dy: FloatTensor<Self>,
        _w: FloatTensor<Self>,
        _h: usize,
        _width: usize,
        _stride: usize,
        _padding: usize,
        _groups: usize,
    ) -> FloatTensor<Self> {
        unimplemented!("second-order gradients of convolutions are not supported")
    }

    fn rn_conv2d_grad_w(
        _x: FloatTensor<Self>,
        _dy: FloatTensor<Self>,
        _k: usize,
        _stride: usize,
        _padding: usize,
        _groups: usize,
    ) -> FloatTensor<Self> {
        unimplemented!("second-order gradients of convolutions are not supported")
    }
}

/// Whether tensors on `device` run on burn's `flex` CPU backend (with or without autodiff).
pub fn is_flex(device: &Device) -> bool {
    device.clone().inner() == Device::flex()
}

/// regnet's convolution of `x [n, ci, h, w]` with `w [co, ci/groups, k, k]` on flex.
pub fn conv2d(
    x: Tensor<4>,
    w: Tensor<4>,
    stride: usize,
    padding: usize,
    groups: usize,
) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as ConvBackend>::rn_conv2d(
        x.into_dispatch(),
        w.into_dispatch(),
        stride,
        padding,
        groups,
    ))
}
