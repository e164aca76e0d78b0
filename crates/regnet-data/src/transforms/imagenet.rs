//! pycls's ImageNet transform (`ImageNet._prepare_im` in `pycls/datasets/imagenet.py`).
//!
//! pycls reads a BGR image with OpenCV, reverses it to RGB, scales it to [0, 1], applies the
//! transforms below with RGB constants, and reverses it back to BGR for the network. Here
//! images are decoded as RGB, the same transforms run, and [`ChannelOrder`] picks the final
//! order (BGR by default, like pycls).
//!
//! - Train: [`random_sized_crop_box`] (area 8%-100%, ratio 3/4-4/3, 10 attempts, else
//!   `scale_and_center_crop(im, size, size)`) resized to `size x size`; horizontal flip with
//!   probability 0.5; the `TRAIN.AUGMENT` policy if any ([`augment_float`]: to 8 bits, PIL's
//!   ops, back to floats); lighting noise `normal(0, pca_std)` along ImageNet's RGB
//!   principal components; colour normalization.
//! - Test: [`scale_and_center_crop`] (short side to `TEST.IM_SIZE`, centre crop
//!   `TRAIN.IM_SIZE`); colour normalization.

use super::augment::{AugmentPolicy, augment_float};
use super::ops::{
    horizontal_flip, lighting_shift, normal, normalize, random_sized_crop_box,
    scale_and_center_crop, uniform,
};
use super::resize::resize;
use super::{ChannelOrder, FloatImage, Transform};
use crate::dataset::Image;
use crate::error::{DataError, Result};
use crate::rng::SampleRng;

/// ImageNet's per-channel mean, RGB, on the [0, 1] scale (pycls's `_MEAN`, from
/// fb.resnet.torch).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];

/// ImageNet's per-channel standard deviation, RGB, on the [0, 1] scale (pycls's `_STD`).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Eigenvalues of ImageNet's RGB covariance (pycls's `_EIG_VALS`).
pub const IMAGENET_EIG_VALS: [f64; 3] = [0.2175, 0.0188, 0.0045];

/// Eigenvectors of ImageNet's RGB covariance, one per column (pycls's `_EIG_VECS`).
pub const IMAGENET_EIG_VECS: [[f64; 3]; 3] = [
    [-0.5675, 0.7192, 0.4009],
    [-0.5808, -0.0045, -0.8140],
    [-0.5836, -0.6948, 0.4203],
];

/// Smallest area fraction of pycls's random-sized crop.
const AREA_FRAC: f64 = 0.08;
/// Attempts of pycls's random-sized crop before its fallback.
const MAX_ITER: usize = 10;

/// pycls's ImageNet transform, for training or for testing.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageNetTransform {
    im_size: usize,
    /// `Some(TEST.IM_SIZE)` for testing, `None` for training.
    test_im_size: Option<usize>,
    pca_std: f64,
    order: ChannelOrder,
    /// `TRAIN.AUGMENT` (training only).
    augment: Option<AugmentPolicy>,
}

impl ImageNetTransform {
    /// The training transform: `im_size` is `TRAIN.IM_SIZE`, `pca_std` is `TRAIN.PCA_STD`.
    pub fn train(im_size: usize, pca_std: f64, order: ChannelOrder) -> Self {
        ImageNetTransform {
            im_size,
            test_im_size: None,
            pca_std,
            order,
            augment: None,
        }
    }

    /// The training transform with `TRAIN.AUGMENT`'s policy applied after the flip, where
    /// pycls applies it.
    pub fn with_augment(self, augment: Option<AugmentPolicy>) -> Self {
        ImageNetTransform { augment, ..self }
    }

    /// The test transform: scale the short side to `test_im_size` (`TEST.IM_SIZE`), crop
    /// the centre `im_size` (`TRAIN.IM_SIZE`).
    ///
    /// # Errors
    /// If `test_im_size < im_size` (the crop would not fit).
    pub fn test(im_size: usize, test_im_size: usize, order: ChannelOrder) -> Result<Self> {
        if test_im_size < im_size {
            return Err(DataError::InvalidOption(format!(
                "TEST.IM_SIZE {test_im_size} is smaller than the crop TRAIN.IM_SIZE {im_size}"
            )));
        }
        Ok(ImageNetTransform {
            im_size,
            test_im_size: Some(test_im_size),
            pca_std: 0.0,
            order,
            augment: None,
        })
    }

    /// The cropped and resized image in [0, 1], RGB, before flip, lighting and normalization.
    fn geometry(&self, image: &Image, rng: &mut SampleRng) -> FloatImage {
        let size = self.im_size;
        match self.test_im_size {
            Some(test) => scale_and_center_crop(&FloatImage::from_image(image, 255.0), test, size),
            None => {
                match random_sized_crop_box(image.height(), image.width(), AREA_FRAC, MAX_ITER, rng)
                {
                    Some(b) => resize(&FloatImage::from_image_box(image, b, 255.0), size, size),
                    None => {
                        scale_and_center_crop(&FloatImage::from_image(image, 255.0), size, size)
                    }
                }
            }
        }
    }
}

impl Transform for ImageNetTransform {
    fn output_shape(&self) -> [usize; 3] {
        [3, self.im_size, self.im_size]
    }

    fn apply(
        &self,
        image: &Image,
        rng: &mut SampleRng,
        out: &mut [f32],
    ) -> std::result::Result<(), String> {
        let rgb;
        let image = if image.channels() == 3 {
            image
        } else {
            rgb = image.clone().into_rgb();
            &rgb
        };
        let mut im = self.geometry(image, rng);
        let mut shift = [0.0f32; 3];
        if self.test_im_size.is_none() {
            if uniform(rng, 0.0, 1.0) < 0.5 {
                im = horizontal_flip(&im);
            }
            if let Some(policy) = &self.augment {
                im = augment_float(&im, policy, rng);
            }
            let alpha = std::array::from_fn(|_| normal(rng, self.pca_std));
            let s = lighting_shift(alpha, IMAGENET_EIG_VALS, IMAGENET_EIG_VECS);
            shift = s.map(|v| v as f32);
        }
        for px in im.data.chunks_exact_mut(3) {
            for c in 0..3 {
                px[c] = normalize(px[c] + shift[c], IMAGENET_MEAN[c], IMAGENET_STD[c]);
            }
        }
        im.write_chw(self.order, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::sample_rng;

    #[test]
    fn test_transform_normalizes_and_orders_channels() {
        // A constant 256x300 image needs no resize along y and a crop of the centre 224.
        let im = Image::new(256, 300, 3, [10u8, 128, 250].repeat(256 * 300));
        let mut rng = sample_rng(0, 0, 0);
        let mut out = vec![0.0; 3 * 224 * 224];
        let t = ImageNetTransform::test(224, 256, ChannelOrder::Bgr).unwrap();
        t.apply(&im, &mut rng, &mut out).unwrap();
        let expect = |v: u8, c: usize| (f32::from(v) / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        let plane = 224 * 224;
        assert_eq!(out[0], expect(250, 2)); // B first
        assert_eq!(out[plane + 5], expect(128, 1));
        assert_eq!(out[2 * plane + 7], expect(10, 0));
        let t = ImageNetTransform::test(224, 256, ChannelOrder::Rgb).unwrap();
        t.apply(&im, &mut rng, &mut out).unwrap();
        assert_eq!(out[0], expect(10, 0));
    }

    #[test]
    fn train_transform_is_a_function_of_the_rng() {
        let data: Vec<u8> = (0..40 * 50 * 3).map(|i| (i * 7 % 256) as u8).collect();
        let im = Image::new(40, 50, 3, data);
        let t = ImageNetTransform::train(16, 0.1, ChannelOrder::Bgr);
        let run = |i| {
            let mut out = vec![0.0; 3 * 16 * 16];
            t.apply(&im, &mut sample_rng(1, 2, i), &mut out).unwrap();
            out
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }
}
