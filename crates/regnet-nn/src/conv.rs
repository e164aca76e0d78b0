//! Convolution and fully connected layers holding PyTorch-layout weights. They are our own
//! modules (not `burn::nn::Conv2d`/`Linear`) so that the conv kernel can be swapped in one
//! place and the fc keeps PyTorch's `[out, in]` layout.

use burn::module::{Module, Param};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

use crate::state_dict::TensorF32;

/// A tensor on `device` from a state-dict tensor of rank `D`.
pub fn to_tensor<const D: usize>(t: &TensorF32, device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(t.data.clone(), t.shape.clone()), device)
}

/// A state-dict tensor from a burn tensor.
pub fn from_tensor<const D: usize>(t: Tensor<D>) -> TensorF32 {
    let shape = t.dims().to_vec();
    let data = t
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("converted to f32");
    TensorF32::new(shape, data)
}

/// 2-d convolution with symmetric padding.
#[derive(Module, Debug)]
pub struct Conv {
    /// `[w_out, w_in / groups, k, k]`.
    pub weight: Param<Tensor<4>>,
    /// `[w_out]`, SE convs only.
    pub bias: Option<Param<Tensor<1>>>,
    /// Stride.
    pub stride: usize,
    /// Padding on each side.
    pub padding: usize,
    /// Groups.
    pub groups: usize,
}

impl Conv {
    /// Builds the conv from its weights.
    pub fn new(
        weight: &TensorF32,
        bias: Option<&TensorF32>,
        stride: usize,
        padding: usize,
        groups: usize,
        device: &Device,
    ) -> Self {
        Conv {
            weight: Param::from_tensor(to_tensor(weight, device)),
            bias: bias.map(|b| Param::from_tensor(to_tensor(b, device))),
            stride,
            padding,
            groups,
        }
    }

    /// Applies the convolution to `[n, c, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if crate::conv_ext::is_flex(&x.device()) {
            let y = crate::conv_ext::conv2d(
                x,
                self.weight.val(),
                self.stride,
                self.padding,
                self.groups,
            );
            return match &self.bias {
                Some(b) => {
                    let c = b.dims()[0];
                    y + b.val().reshape([1, c, 1, 1])
                }
                None => y,
            };
        }
        let options = ConvOptions::new(
            [self.stride, self.stride],
            [self.padding, self.padding],
            [1, 1],
            self.groups,
        );
        let conv = |x| {
            conv2d(
                x,
                self.weight.val(),
                self.bias.as_ref().map(|b| b.val()),
                options.clone(),
            )
        };
        match self.batch_split(&x) {
            Some(images) => Tensor::cat(x.split(images, 0).into_iter().map(conv).collect(), 0),
            None => conv(x),
        }
    }

    /// Images per slice when a training batch must be convolved in slices: on a software
    /// GPU (see [`crate::device::is_software_gpu`]) the weight gradient's loop over N·H·W
    /// positions is cut short past 65535 iterations, so each slice keeps N·H·W under
    /// [`SOFTWARE_GPU_POSITIONS`] and autodiff adds the slices' weight gradients.
    fn batch_split(&self, x: &Tensor<4>) -> Option<usize> {
        let dev = x.device();
        if !dev.is_autodiff() || !crate::device::is_software_gpu(&dev) {
            return None;
        }
        let [n, _, h, w] = x.dims();
        let k = self.weight.dims()[2];
        let out = |size: usize| (size + 2 * self.padding).saturating_sub(k) / self.stride + 1;
        let per_image = (out(h) * out(w)).max(1);
        let images = (SOFTWARE_GPU_POSITIONS / per_image).max(1);
        (n > images).then_some(images)
    }
}

/// The most output positions (N·H·W) one convolution covers in training on a software GPU.
/// Measured on lavapipe (Mesa 22.3): a 1x1 convolution's weight gradient is right over 65536
/// positions and wrong over 131072; half the first for a margin. A single image with more
/// output positions than that (over 181x181 at stride 1) is still one slice.
pub const SOFTWARE_GPU_POSITIONS: usize = 1 << 15;

/// Fully connected layer with PyTorch's `[out, in]` weight.
#[derive(Module, Debug)]
pub struct Fc {
    /// `[out, in]`.
    pub weight: Param<Tensor<2>>,
    /// `[out]`.
    pub bias: Option<Param<Tensor<1>>>,
}

impl Fc {
    /// Builds the layer from its weights.
    pub fn new(weight: &TensorF32, bias: Option<&TensorF32>, device: &Device) -> Self {
        Fc {
            weight: Param::from_tensor(to_tensor(weight, device)),
            bias: bias.map(|b| Param::from_tensor(to_tensor(b, device))),
        }
    }

    /// `x W^T + b` for `x` of shape `[n, in]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let y = x.matmul(self.weight.val().transpose());
        match &self.bias {
            Some(b) => y + b.val().unsqueeze_dim(0),
            None => y,
        }
    }
}
