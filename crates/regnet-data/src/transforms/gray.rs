//! The one-channel transform for MNIST and Fashion-MNIST (pycls has no such data set; this
//! follows its CIFAR recipe).
//!
//! Steps: pixels to [0, 1]; bilinear resize (OpenCV's, as for ImageNet) when the image is not
//! `im_size` square (e.g. 28 -> 32 to use a CIFAR-sized network); for training with
//! augmentation, a random flip (if enabled), padding by `pad` black pixels on every side and a
//! random `im_size` crop; normalization `(v - mean) / std`. The output keeps one channel: the
//! network's stem takes one input channel.
//!
//! Two choices differ from the CIFAR transform, on purpose: the padding is black (0 before
//! normalization), which is the background of these images, where CIFAR's zero after
//! normalization is the mean colour of natural images; and the crop corner is drawn from
//! `0..=2*pad`, all offsets, where pycls's CIFAR code never uses the last one.

use super::ops::{horizontal_flip, normalize, uniform};
use super::resize::resize;
use super::{ChannelOrder, FloatImage, Transform};
use crate::dataset::Image;
use crate::rng::SampleRng;
use rand::Rng;

/// Mean of Fashion-MNIST's training pixels on the [0, 1] scale: the mean of all
/// 60000 x 28 x 28 values divided by 255 is 0.286040 (checked by this crate's tests against
/// the installed data set).
pub const FASHION_MNIST_MEAN: f32 = 0.2860;

/// Standard deviation of Fashion-MNIST's training pixels on the [0, 1] scale: the population
/// standard deviation over the same 47,040,000 values is 0.353024.
pub const FASHION_MNIST_STD: f32 = 0.3530;

/// Mean of MNIST's training pixels on the [0, 1] scale, computed the same way (the value
/// torchvision's MNIST example uses).
pub const MNIST_MEAN: f32 = 0.1307;

/// Standard deviation of MNIST's training pixels on the [0, 1] scale (likewise).
pub const MNIST_STD: f32 = 0.3081;

/// The training augmentation of [`GrayTransform`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrayAugment {
    /// Black pixels added on every side before the random crop.
    pub pad: usize,
    /// Whether to flip left-right with probability 0.5 (right for clothes, wrong for digits).
    pub flip: bool,
}

/// Normalization to one channel, optional resize and augmentation (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct GrayTransform {
    im_size: usize,
    mean: f32,
    std: f32,
    augment: Option<GrayAugment>,
}

impl GrayTransform {
    /// A transform to `im_size x im_size` with the given statistics (on the [0, 1] scale)
    /// and augmentation (`None`: none, as for testing).
    pub fn new(im_size: usize, mean: f32, std: f32, augment: Option<GrayAugment>) -> Self {
        GrayTransform {
            im_size,
            mean,
            std,
            augment,
        }
    }

    /// Fashion-MNIST's: its statistics; for training, 4 pixels of padding (CIFAR's) and
    /// flips.
    pub fn fashion_mnist(im_size: usize, train: bool) -> Self {
        let aug = train.then_some(GrayAugment { pad: 4, flip: true });
        Self::new(im_size, FASHION_MNIST_MEAN, FASHION_MNIST_STD, aug)
    }

    /// MNIST's: its statistics; for training, 2 pixels of padding and no flip (a mirrored
    /// digit is not the same digit).
    pub fn mnist(im_size: usize, train: bool) -> Self {
        let aug = train.then_some(GrayAugment {
            pad: 2,
            flip: false,
        });
        Self::new(im_size, MNIST_MEAN, MNIST_STD, aug)
    }
}

impl Transform for GrayTransform {
    fn output_shape(&self) -> [usize; 3] {
        [1, self.im_size, self.im_size]
    }

    fn apply(
        &self,
        image: &Image,
        rng: &mut SampleRng,
        out: &mut [f32],
    ) -> std::result::Result<(), String> {
        if image.channels() != 1 {
            return Err(format!(
                "the one-channel transform needs gray images, not {} channels",
                image.channels()
            ));
        }
        let s = self.im_size;
        let mut im = FloatImage::from_image(image, 255.0);
        if (im.height, im.width) != (s, s) {
            im = resize(&im, s, s);
        }
        if let Some(aug) = self.augment {
            if aug.flip && uniform(rng, 0.0, 1.0) < 0.5 {
                im = horizontal_flip(&im);
            }
            let dy = rng.random_range(0..=2 * aug.pad);
            let dx = rng.random_range(0..=2 * aug.pad);
            let mut shifted = vec![0.0f32; s * s];
            for (oy, row) in shifted.chunks_exact_mut(s).enumerate() {
                let y = (oy + dy).wrapping_sub(aug.pad);
                if y >= s {
                    continue;
                }
                for (ox, v) in row.iter_mut().enumerate() {
                    let x = (ox + dx).wrapping_sub(aug.pad);
                    if x < s {
                        *v = im.data[y * s + x];
                    }
                }
            }
            im.data = shifted;
        }
        for v in &mut im.data {
            *v = normalize(*v, self.mean, self.std);
        }
        im.write_chw(ChannelOrder::Rgb, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::sample_rng;

    #[test]
    fn test_transform_normalizes() {
        let im = Image::new(2, 2, 1, vec![0, 255, 51, 102]);
        let mut out = vec![0.0; 4];
        GrayTransform::fashion_mnist(2, false)
            .apply(&im, &mut sample_rng(0, 0, 0), &mut out)
            .unwrap();
        assert_eq!(out[0], (0.0 - 0.2860) / 0.3530);
        assert_eq!(out[1], (1.0 - 0.2860) / 0.3530);
        assert_eq!(out[2], (51.0 / 255.0 - 0.2860) / 0.3530);
    }

    #[test]
    fn resize_then_pad_with_black() {
        let im = Image::new(28, 28, 1, vec![255; 784]);
        let t = GrayTransform::new(32, 0.0, 1.0, Some(GrayAugment { pad: 4, flip: true }));
        let mut blacks = 0;
        for i in 0..50 {
            let mut out = vec![0.0; 1024];
            t.apply(&im, &mut sample_rng(0, 0, i), &mut out).unwrap();
            assert!(out.iter().all(|&v| v == 0.0 || v == 1.0));
            blacks += out.iter().filter(|&&v| v == 0.0).count();
        }
        assert!(blacks > 0, "some crops show the padding");
        let e = t
            .apply(
                &Image::new(1, 1, 3, vec![0; 3]),
                &mut sample_rng(0, 0, 0),
                &mut [0.0; 1024],
            )
            .unwrap_err();
        assert!(e.contains("3 channels"));
    }
}
