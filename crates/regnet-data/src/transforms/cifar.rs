//! pycls's CIFAR-10 transform (`Cifar10._prepare_im` in `pycls/datasets/cifar10.py`).
//!
//! The 0-255 pixel values are normalized per channel with pycls's constants (which are on
//! the 0-255 scale); for training the image is then flipped with probability 0.5, padded by
//! 4 zeros on every side and cropped back to 32x32 at a random corner. The padding is added
//! after normalization, so it is the mean colour, not black. The corner is
//! `randint(0, 8)` in each direction, i.e. 0..=7 (numpy excludes the upper bound), so the
//! crop never starts at offset 8; kept as in pycls. Output channels are RGB, the order of
//! the CIFAR planes, as pycls feeds them.

use super::Transform;
use super::ops::{normalize, randint, uniform};
use crate::dataset::Image;
use crate::rng::SampleRng;

/// pycls's CIFAR-10 per-channel mean, RGB, on the 0-255 scale.
pub const CIFAR_MEAN: [f32; 3] = [125.3, 123.0, 113.9];

/// pycls's CIFAR-10 per-channel standard deviation, RGB, on the 0-255 scale.
pub const CIFAR_STD: [f32; 3] = [63.0, 62.1, 66.7];

/// The zero padding of the training crop.
const PAD: usize = 4;
/// The image side.
const SIZE: usize = 32;

/// pycls's CIFAR-10 transform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CifarTransform {
    train: bool,
}

impl CifarTransform {
    /// The training transform (`train`: normalize, flip, pad-and-crop) or the test one
    /// (normalize only).
    pub fn new(train: bool) -> Self {
        CifarTransform { train }
    }
}

impl Transform for CifarTransform {
    fn output_shape(&self) -> [usize; 3] {
        [3, SIZE, SIZE]
    }

    fn apply(
        &self,
        image: &Image,
        rng: &mut SampleRng,
        out: &mut [f32],
    ) -> std::result::Result<(), String> {
        if (image.height(), image.width(), image.channels()) != (SIZE, SIZE, 3) {
            return Err(format!(
                "the CIFAR transform needs 32x32 RGB images, not {}x{}x{}",
                image.height(),
                image.width(),
                image.channels()
            ));
        }
        // pycls's draws, in its order: the flip coin, then the crop corner.
        let (flip, dy, dx) = if self.train {
            let flip = uniform(rng, 0.0, 1.0) < 0.5;
            let dy = randint(rng, 0, 2 * PAD);
            let dx = randint(rng, 0, 2 * PAD);
            (flip, dy, dx)
        } else {
            (false, PAD, PAD)
        };
        let plane = SIZE * SIZE;
        for c in 0..3 {
            for oy in 0..SIZE {
                for ox in 0..SIZE {
                    // Position in the (flipped) image, before padding.
                    let (y, x) = ((oy + dy).wrapping_sub(PAD), (ox + dx).wrapping_sub(PAD));
                    out[c * plane + oy * SIZE + ox] = if y < SIZE && x < SIZE {
                        let x = if flip { SIZE - 1 - x } else { x };
                        normalize(f32::from(image.get(y, x, c)), CIFAR_MEAN[c], CIFAR_STD[c])
                    } else {
                        0.0
                    };
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::sample_rng;

    fn image() -> Image {
        Image::new(32, 32, 3, (0..3072).map(|i| (i % 251) as u8).collect())
    }

    #[test]
    fn test_transform_is_normalization_only() {
        let mut out = vec![0.0; 3072];
        CifarTransform::new(false)
            .apply(&image(), &mut sample_rng(0, 0, 0), &mut out)
            .unwrap();
        // Pixel (1, 2), green: HWC index (32 + 2) * 3 + 1 = 103.
        assert_eq!(out[1024 + 32 + 2], (103.0 - 123.0) / 62.1);
        assert_eq!(out[0], (0.0 - 125.3) / 63.0);
    }

    #[test]
    fn train_crops_use_offsets_0_to_7_and_pad_with_zero() {
        let im = image();
        let mut seen = [[false; 8]; 8];
        for i in 0..1000 {
            let mut out = vec![0.0; 3072];
            CifarTransform::new(true)
                .apply(&im, &mut sample_rng(0, 0, i), &mut out)
                .unwrap();
            // Normalized pixels are never exactly 0 (the means are not integers): zeros are
            // the padding. Offset d leaves 4 - d zero rows on top, or d - 4 at the bottom.
            let zeros = |f: &dyn Fn(usize) -> usize, rev: bool| {
                let mut n = 0;
                while n < 32 && out[f(if rev { 31 - n } else { n })] == 0.0 {
                    n += 1;
                }
                n
            };
            let (top, bottom) = (
                zeros(&|y| y * 32 + 16, false),
                zeros(&|y| y * 32 + 16, true),
            );
            let (left, right) = (
                zeros(&|x| 16 * 32 + x, false),
                zeros(&|x| 16 * 32 + x, true),
            );
            let dy = if top > 0 { 4 - top } else { 4 + bottom };
            let dx = if left > 0 { 4 - left } else { 4 + right };
            assert!(dy < 8 && dx < 8, "offset ({dy}, {dx})");
            seen[dy][dx] = true;
        }
        assert!(
            seen.iter().flatten().all(|&s| s),
            "every offset in 0..8 appears"
        );
    }
}
