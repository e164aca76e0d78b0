//! Image transforms: a decoded 8-bit [`Image`] in, a float CHW tensor of a fixed shape out,
//! exactly as pycls prepares its inputs.
//!
//! - [`ImageNetTransform`] (image folders): pycls's `ImageNet._prepare_im`.
//! - [`CifarTransform`]: pycls's `Cifar10._prepare_im`.
//! - [`GrayTransform`]: MNIST / Fashion-MNIST, which pycls does not have, in the same spirit.
//!
//! [`build_transform`] picks one from a data set's [`DatasetKind`], a [`Split`] and
//! [`TransformOptions`] (the pycls config keys that matter). The building blocks, with
//! pycls's rounding rules, are in [`ops`] and [`resize`]; `TRAIN.AUGMENT`'s AutoAugment and
//! RandAugment are in [`augment`] (PIL's operations in [`augment_ops`] and
//! [`augment_geometry`]). Random draws come from the
//! [`SampleRng`] the loader hands over, so a sample's augmentation depends only on
//! `(seed, epoch, sample index)`.

pub mod augment;
pub mod augment_geometry;
pub mod augment_ops;
pub mod cifar;
pub mod gray;
pub mod imagenet;
pub mod ops;
pub mod resize;

use std::fmt;
use std::sync::Arc;

pub use augment::{AugmentOp, AugmentPolicy};
pub use cifar::{CIFAR_MEAN, CIFAR_STD, CifarTransform};
pub use gray::{
    FASHION_MNIST_MEAN, FASHION_MNIST_STD, GrayAugment, GrayTransform, MNIST_MEAN, MNIST_STD,
};
pub use imagenet::{
    IMAGENET_EIG_VALS, IMAGENET_EIG_VECS, IMAGENET_MEAN, IMAGENET_STD, ImageNetTransform,
};
pub use ops::CropBox;

use crate::dataset::{DatasetKind, Image, Split};
use crate::error::{DataError, Result};
use crate::rng::SampleRng;

/// Turns one decoded image into the network's input.
///
/// Implementations are shared by the loader's worker threads, hence `Send + Sync`; they
/// hold settings only, and every random choice comes from `rng`.
pub trait Transform: Send + Sync + fmt::Debug {
    /// The output shape `[channels, height, width]`, the same for every image.
    fn output_shape(&self) -> [usize; 3];

    /// Number of floats one output holds.
    fn output_len(&self) -> usize {
        self.output_shape().iter().product()
    }

    /// Writes the transformed `image` into `out` (CHW, `output_len()` floats).
    ///
    /// # Errors
    /// A message when the image does not fit the transform (wrong channel count or size);
    /// the loader adds which sample it was.
    fn apply(
        &self,
        image: &Image,
        rng: &mut SampleRng,
        out: &mut [f32],
    ) -> std::result::Result<(), String>;
}

/// The channel order of a 3-channel output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChannelOrder {
    /// Blue, green, red: what pycls's ImageNet models are fed (it reads images with OpenCV,
    /// works in RGB and flips back to BGR at the end), so pycls's pretrained weights expect
    /// it.
    #[default]
    Bgr,
    /// Red, green, blue (torchvision's convention).
    Rgb,
}

/// A float image in HWC order, the working form of the transforms.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatImage {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Channels per pixel.
    pub channels: usize,
    /// `height * width * channels` values, HWC.
    pub data: Vec<f32>,
}

impl FloatImage {
    /// Wraps HWC values.
    ///
    /// # Panics
    /// If the length does not match.
    pub fn new(height: usize, width: usize, channels: usize, data: Vec<f32>) -> Self {
        assert_eq!(data.len(), height * width * channels, "FloatImage size");
        FloatImage {
            height,
            width,
            channels,
            data,
        }
    }

    /// The box `b` of `im`, each value divided by `divisor` (255 gives pycls's
    /// `astype(np.float32) / 255`, 1 the plain conversion).
    pub fn from_image_box(im: &Image, b: CropBox, divisor: f32) -> Self {
        let c = im.channels();
        let mut data = Vec::with_capacity(b.height * b.width * c);
        for y in b.y..b.y + b.height {
            let start = (y * im.width() + b.x) * c;
            let row = &im.data()[start..start + b.width * c];
            data.extend(row.iter().map(|&v| f32::from(v) / divisor));
        }
        FloatImage::new(b.height, b.width, c, data)
    }

    /// All of `im`, each value divided by `divisor`.
    pub fn from_image(im: &Image, divisor: f32) -> Self {
        let b = CropBox {
            y: 0,
            x: 0,
            height: im.height(),
            width: im.width(),
        };
        Self::from_image_box(im, b, divisor)
    }

    /// Channel `c` at row `y`, column `x`.
    pub fn get(&self, y: usize, x: usize, c: usize) -> f32 {
        self.data[(y * self.width + x) * self.channels + c]
    }

    /// The box `b`.
    pub fn crop(&self, b: CropBox) -> FloatImage {
        let c = self.channels;
        let mut data = Vec::with_capacity(b.height * b.width * c);
        for y in b.y..b.y + b.height {
            let start = (y * self.width + b.x) * c;
            data.extend_from_slice(&self.data[start..start + b.width * c]);
        }
        FloatImage::new(b.height, b.width, c, data)
    }

    /// Writes the image into `out` in CHW order; with [`ChannelOrder::Bgr`] a 3-channel
    /// image's channels are reversed.
    ///
    /// # Panics
    /// If `out` is not the image's size.
    pub fn write_chw(&self, order: ChannelOrder, out: &mut [f32]) {
        let (c, plane) = (self.channels, self.height * self.width);
        assert_eq!(out.len(), c * plane, "output size");
        for (k, dst) in out.chunks_exact_mut(plane).enumerate() {
            let src_c = if order == ChannelOrder::Bgr && c == 3 {
                2 - k
            } else {
                k
            };
            for (p, d) in dst.iter_mut().enumerate() {
                *d = self.data[p * c + src_c];
            }
        }
    }
}

/// The pycls config keys the transforms use, with pycls's defaults where pycls has one.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformOptions {
    /// `TRAIN.IM_SIZE`: the side of the network's input. `None`: 224 for image folders
    /// (pycls's default), 32 for CIFAR-10 (the only size pycls accepts), 28 for MNIST.
    pub im_size: Option<usize>,
    /// `TEST.IM_SIZE`: the short side test images of image folders are scaled to before the
    /// centre crop. `None`: 256 when the input side is 224 (pycls's default), otherwise the
    /// same 8/7 ratio, rounded.
    pub test_im_size: Option<usize>,
    /// `TRAIN.PCA_STD`: the spread of the lighting noise (pycls: 0.1); 0 turns it off.
    pub pca_std: f64,
    /// Channel order of image-folder outputs (pycls: BGR). CIFAR outputs are always RGB and
    /// MNIST outputs have one channel, as in pycls.
    pub channel_order: ChannelOrder,
    /// Whether training applies the random augmentation; `false` gives the training split
    /// the deterministic test transform (to evaluate on training images, for instance).
    pub augment: bool,
    /// `TRAIN.AUGMENT`: pycls's AutoAugment or RandAugment, applied to training images of
    /// image folders after the flip, as pycls's ImageNet transform does; `None`: off. pycls
    /// reads the key for ImageNet only (CIFAR-10 ignores it, MNIST it does not have), so a
    /// policy for training another data set is refused rather than silently dropped.
    pub augment_policy: Option<AugmentPolicy>,
}

impl Default for TransformOptions {
    fn default() -> Self {
        TransformOptions {
            im_size: None,
            test_im_size: None,
            pca_std: 0.1,
            channel_order: ChannelOrder::Bgr,
            augment: true,
            augment_policy: None,
        }
    }
}

/// The transform pycls uses for data sets of `kind` in split `split` (see each transform's
/// docs), or its MNIST counterpart.
///
/// # Errors
/// [`DataError::InvalidOption`] for sizes pycls rejects: CIFAR-10 at a size other than 32, a
/// test scale below the crop, a size of 0; and for an augmentation policy out of range or
/// given for training a data set other than an image folder.
pub fn build_transform(
    kind: DatasetKind,
    split: Split,
    opts: &TransformOptions,
) -> Result<Arc<dyn Transform>> {
    let train = split == Split::Train && opts.augment;
    if opts.im_size == Some(0) || opts.test_im_size == Some(0) {
        return Err(DataError::InvalidOption("image size 0".into()));
    }
    if let Some(policy) = opts.augment_policy.filter(|_| train) {
        policy.check().map_err(DataError::InvalidOption)?;
        if kind != DatasetKind::ImageFolder {
            return Err(DataError::InvalidOption(format!(
                "TRAIN.AUGMENT is not applied to {:?} data (pycls applies it to ImageNet-style \
                 image folders only); leave it empty",
                kind
            )));
        }
    }
    Ok(match kind {
        DatasetKind::ImageFolder => {
            let size = opts.im_size.unwrap_or(224);
            let test_size = opts
                .test_im_size
                .unwrap_or_else(|| (size as f64 * 8.0 / 7.0).round() as usize);
            let t = if train {
                ImageNetTransform::train(size, opts.pca_std, opts.channel_order)
                    .with_augment(opts.augment_policy)
            } else {
                ImageNetTransform::test(size, test_size, opts.channel_order)?
            };
            Arc::new(t)
        }
        DatasetKind::Cifar10 => {
            if let Some(s) = opts.im_size.filter(|&s| s != 32) {
                return Err(DataError::InvalidOption(format!(
                    "CIFAR-10 images are 32x32, TRAIN.IM_SIZE {s} is not supported (as in pycls)"
                )));
            }
            Arc::new(CifarTransform::new(train))
        }
        DatasetKind::Mnist | DatasetKind::FashionMnist => {
            let size = opts.im_size.unwrap_or(28);
            let t = if kind == DatasetKind::Mnist {
                GrayTransform::mnist(size, train)
            } else {
                GrayTransform::fashion_mnist(size, train)
            };
            Arc::new(t)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chw_output_in_both_orders() {
        // One pixel row of two RGB pixels.
        let im = FloatImage::new(1, 2, 3, vec![1., 2., 3., 4., 5., 6.]);
        let mut out = [0.0; 6];
        im.write_chw(ChannelOrder::Rgb, &mut out);
        assert_eq!(out, [1., 4., 2., 5., 3., 6.]);
        im.write_chw(ChannelOrder::Bgr, &mut out);
        assert_eq!(out, [3., 6., 2., 5., 1., 4.]);
    }

    #[test]
    fn build_picks_sizes_and_rejects_bad_ones() {
        let o = TransformOptions::default();
        let t = build_transform(DatasetKind::ImageFolder, Split::Test, &o).unwrap();
        assert_eq!(t.output_shape(), [3, 224, 224]);
        let t = build_transform(DatasetKind::FashionMnist, Split::Train, &o).unwrap();
        assert_eq!(t.output_shape(), [1, 28, 28]);
        let t = build_transform(DatasetKind::Cifar10, Split::Train, &o).unwrap();
        assert_eq!(t.output_shape(), [3, 32, 32]);
        let bad = TransformOptions {
            im_size: Some(64),
            ..o.clone()
        };
        assert!(build_transform(DatasetKind::Cifar10, Split::Train, &bad).is_err());
        let bad = TransformOptions {
            test_im_size: Some(200),
            ..o
        };
        let e = build_transform(DatasetKind::ImageFolder, Split::Test, &bad).unwrap_err();
        assert!(e.to_string().contains("200"), "{e}");
    }
}
