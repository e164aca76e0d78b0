//! pycls's AutoAugment and RandAugment (`pycls/datasets/augment.py`, `TRAIN.AUGMENT`).
//!
//! An op turns a magnitude in [0, 1] into a level `magnitude * (max - min) + min` from its
//! range ([`OpRange`]), negated with probability 1/2 for ops whose range says so, and
//! applies PIL's operation at that level ([`AugmentOp::apply`]). [`AugmentPolicy`] picks the
//! ops: AutoAugment one of the 25 sub-policies of [`AUTO_AUGMENT_POLICY`] (pycls's
//! "policy_v0" with magnitudes in [0, 1]), each of its two ops applied with its own
//! probability; RandAugment `n_ops` ops drawn with replacement from [`RAND_AUGMENT_OPS`],
//! each applied with probability `prob` at the one `magnitude`.
//!
//! pycls draws with Python's `random` and numpy; here every draw comes from the sample's
//! [`SampleRng`], so the same seed gives the same augmentation. The operations work on
//! 8-bit RGB ([`augment_ops`](super::augment_ops), [`augment_geometry`](super::augment_geometry))
//! and reproduce Pillow's outputs byte for byte; [`augment_float`] does pycls's
//! conversion from and back to floats around them (`transforms.augment`).

use rand::Rng;

use super::FloatImage;
use super::augment_geometry::{affine_bilinear, rotate};
use super::augment_ops::{
    autocontrast, enhance_brightness, enhance_color, enhance_contrast, enhance_sharpness, equalize,
    invert, point, posterize,
};
use crate::dataset::Image;
use crate::rng::SampleRng;

/// pycls's `POSTERIZE_MIN`: posterize keeps at least this many bits (0 in EfficientNet's
/// implementation, which can turn an image black).
pub const POSTERIZE_MIN: u32 = 1;

/// The colour of pixels that rotations, shears and translations bring in from outside
/// (pycls's `WARP_PARAMS["fillcolor"]`); sampling is bilinear.
pub const FILL_COLOR: [u8; 3] = [128, 128, 128];

/// The range of an op's level: `magnitude` 0 gives `min`, 1 gives `max`; with `negate`
/// the sign of the level is flipped with probability 1/2.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpRange {
    /// Level at magnitude 0.
    pub min: f64,
    /// Level at magnitude 1.
    pub max: f64,
    /// Whether the level's sign is random.
    pub negate: bool,
}

/// One of pycls's augmentation ops (`OP_FUNCTIONS`). The `*Inc` variants grow stronger
/// with the magnitude from the identity at 0 (RandAugment's ops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is documented by `name()` and `apply()`
pub enum AugmentOp {
    AutoContrast,
    Equalize,
    Invert,
    Rotate,
    Posterize,
    PosterizeInc,
    Solarize,
    SolarizeInc,
    SolarizeAdd,
    Color,
    Contrast,
    Brightness,
    Sharpness,
    ColorInc,
    ContrastInc,
    BrightnessInc,
    SharpnessInc,
    ShearX,
    ShearY,
    TransX,
    TransY,
}

use AugmentOp::*;

impl AugmentOp {
    /// Every op, in pycls's `OP_FUNCTIONS` order.
    pub const ALL: [AugmentOp; 21] = [
        AutoContrast,
        Equalize,
        Invert,
        Rotate,
        Posterize,
        PosterizeInc,
        Solarize,
        SolarizeInc,
        SolarizeAdd,
        Color,
        Contrast,
        Brightness,
        Sharpness,
        ColorInc,
        ContrastInc,
        BrightnessInc,
        SharpnessInc,
        ShearX,
        ShearY,
        TransX,
        TransY,
    ];

    /// pycls's name of the op.
    pub fn name(self) -> &'static str {
        match self {
            AutoContrast => "auto_contrast",
            Equalize => "equalize",
            Invert => "invert",
            Rotate => "rotate",
            Posterize => "posterize",
            PosterizeInc => "posterize_inc",
            Solarize => "solarize",
            SolarizeInc => "solarize_inc",
            SolarizeAdd => "solarize_add",
            Color => "color",
            Contrast => "contrast",
            Brightness => "brightness",
            Sharpness => "sharpness",
            ColorInc => "color_inc",
            ContrastInc => "contrast_inc",
            BrightnessInc => "brightness_inc",
            SharpnessInc => "sharpness_inc",
            ShearX => "shear_x",
            ShearY => "shear_y",
            TransX => "trans_x",
            TransY => "trans_y",
        }
    }

    /// pycls's `OP_RANGES` entry of the op.
    pub fn range(self) -> OpRange {
        let (min, max, negate) = match self {
            AutoContrast | Equalize | Invert => (0.0, 1.0, false),
            Rotate => (0.0, 30.0, true),
            Posterize | PosterizeInc => (0.0, 4.0, false),
            Solarize | SolarizeInc => (0.0, 256.0, false),
            SolarizeAdd => (0.0, 110.0, false),
            Color | Contrast | Brightness | Sharpness => (0.1, 1.9, false),
            ColorInc | ContrastInc | BrightnessInc | SharpnessInc => (0.0, 0.9, true),
            ShearX | ShearY => (0.0, 0.3, true),
            TransX | TransY => (0.0, 0.45, true),
        };
        OpRange { min, max, negate }
    }

    /// The level at `magnitude` before any sign flip: `magnitude * (max - min) + min`.
    pub fn level(self, magnitude: f64) -> f64 {
        let r = self.range();
        magnitude * (r.max - r.min) + r.min
    }

    /// pycls's `OP_FUNCTIONS[op](im, v)`: the op at level `v` (signed), on an 8-bit image.
    pub fn apply(self, im: &Image, v: f64) -> Image {
        let fill = FILL_COLOR;
        let (w, h) = (im.width() as f64, im.height() as f64);
        // Python's int() truncates toward zero, as `as i64` does.
        let bits = |b: i64| posterize(im, b.max(i64::from(POSTERIZE_MIN)).min(8) as u32);
        match self {
            AutoContrast => autocontrast(im),
            Equalize => equalize(im),
            Invert => invert(im),
            Rotate => rotate(im, v, fill),
            Posterize => bits(v as i64),
            PosterizeInc => bits(4 - v as i64),
            Solarize => point(im, |i| solarize(i, (i as i64) < v as i64)),
            SolarizeInc => point(im, |i| solarize(i, f64::from(i) < 256.0 - v)),
            SolarizeAdd => point(im, |i| {
                let i = f64::from(i);
                if i < 128.0 { (v + i).min(255.0) } else { i }
            }),
            Color => enhance_color(im, v),
            Contrast => enhance_contrast(im, v),
            Brightness => enhance_brightness(im, v),
            Sharpness => enhance_sharpness(im, v),
            ColorInc => enhance_color(im, 1.0 + v),
            ContrastInc => enhance_contrast(im, 1.0 + v),
            BrightnessInc => enhance_brightness(im, 1.0 + v),
            SharpnessInc => enhance_sharpness(im, 1.0 + v),
            ShearX => affine_bilinear(im, [1.0, v, 0.0, 0.0, 1.0, 0.0], fill),
            ShearY => affine_bilinear(im, [1.0, 0.0, 0.0, v, 1.0, 0.0], fill),
            TransX => affine_bilinear(im, [1.0, 0.0, v * w, 0.0, 1.0, 0.0], fill),
            TransY => affine_bilinear(im, [1.0, 0.0, 0.0, 0.0, 1.0, v * h], fill),
        }
    }
}

/// `i` kept when `keep`, else `255 - i`.
fn solarize(i: u8, keep: bool) -> f64 {
    f64::from(if keep { i } else { 255 - i })
}

/// One op of a sub-policy: `(op, probability, magnitude)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyOp {
    /// The op.
    pub op: AugmentOp,
    /// The probability that it is applied.
    pub prob: f64,
    /// Its magnitude, in [0, 1].
    pub magnitude: f64,
}

const fn p(op: AugmentOp, prob: f64, magnitude: f64) -> PolicyOp {
    PolicyOp {
        op,
        prob,
        magnitude,
    }
}

/// pycls's `AUTOAUG_POLICY`: AutoAugment's ImageNet "policy_v0", magnitudes in [0, 1].
pub const AUTO_AUGMENT_POLICY: [[PolicyOp; 2]; 25] = [
    [p(Equalize, 0.8, 0.1), p(ShearY, 0.8, 0.4)],
    [p(Color, 0.4, 0.9), p(Equalize, 0.6, 0.3)],
    [p(Color, 0.4, 0.1), p(Rotate, 0.6, 0.8)],
    [p(Solarize, 0.8, 0.3), p(Equalize, 0.4, 0.7)],
    [p(Solarize, 0.4, 0.2), p(Solarize, 0.6, 0.2)],
    [p(Color, 0.2, 0.0), p(Equalize, 0.8, 0.8)],
    [p(Equalize, 0.4, 0.8), p(SolarizeAdd, 0.8, 0.3)],
    [p(ShearX, 0.2, 0.9), p(Rotate, 0.6, 0.8)],
    [p(Color, 0.6, 0.1), p(Equalize, 1.0, 0.2)],
    [p(Invert, 0.4, 0.9), p(Rotate, 0.6, 0.0)],
    [p(Equalize, 1.0, 0.9), p(ShearY, 0.6, 0.3)],
    [p(Color, 0.4, 0.7), p(Equalize, 0.6, 0.0)],
    [p(Posterize, 0.4, 0.6), p(AutoContrast, 0.4, 0.7)],
    [p(Solarize, 0.6, 0.8), p(Color, 0.6, 0.9)],
    [p(Solarize, 0.2, 0.4), p(Rotate, 0.8, 0.9)],
    [p(Rotate, 1.0, 0.7), p(TransY, 0.8, 0.9)],
    [p(ShearX, 0.0, 0.0), p(Solarize, 0.8, 0.4)],
    [p(ShearY, 0.8, 0.0), p(Color, 0.6, 0.4)],
    [p(Color, 1.0, 0.0), p(Rotate, 0.6, 0.2)],
    [p(Equalize, 0.8, 0.4), p(Equalize, 0.0, 0.8)],
    [p(Equalize, 1.0, 0.4), p(AutoContrast, 0.6, 0.2)],
    [p(ShearY, 0.4, 0.7), p(SolarizeAdd, 0.6, 0.7)],
    [p(Posterize, 0.8, 0.2), p(Solarize, 0.6, 1.0)],
    [p(Solarize, 0.6, 0.8), p(Equalize, 0.6, 0.1)],
    [p(Color, 0.8, 0.6), p(Rotate, 0.4, 0.5)],
];

/// pycls's `RANDAUG_OPS`: RandAugment's ops, the "increasing" variants.
pub const RAND_AUGMENT_OPS: [AugmentOp; 15] = [
    AutoContrast,
    Equalize,
    Invert,
    Rotate,
    PosterizeInc,
    SolarizeInc,
    SolarizeAdd,
    ColorInc,
    ContrastInc,
    BrightnessInc,
    SharpnessInc,
    ShearX,
    ShearY,
    TransX,
    TransY,
];

/// pycls's `apply_op`: with probability `prob` (always when `prob >= 1`), `op` at the level
/// of `magnitude`, its sign flipped on a fair coin when the op's range allows.
pub fn apply_op(im: Image, op: AugmentOp, prob: f64, magnitude: f64, rng: &mut SampleRng) -> Image {
    if prob < 1.0 && rng.random::<f64>() > prob {
        return im;
    }
    let mut v = op.level(magnitude);
    if op.range().negate && rng.random::<f64>() > 0.5 {
        v = -v;
    }
    op.apply(&im, v)
}

/// A `TRAIN.AUGMENT` policy: pycls's `AutoAugment` or `RandAugment_N<n>_M<m>_P<p>`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AugmentPolicy {
    /// One random sub-policy of [`AUTO_AUGMENT_POLICY`].
    AutoAugment,
    /// `n_ops` random ops of [`RAND_AUGMENT_OPS`], each applied with probability `prob`
    /// at `magnitude` (in [0, 1]).
    RandAugment {
        /// Ops per image (pycls's `N`).
        n_ops: usize,
        /// Magnitude of every op, in [0, 1] (pycls's `M`).
        magnitude: f64,
        /// Probability of each op (pycls's `P`; 1 by default).
        prob: f64,
    },
}

impl AugmentPolicy {
    /// Checks the parameters as pycls's `apply_op` asserts them.
    ///
    /// # Errors
    /// A message when a RandAugment magnitude is outside [0, 1] or the probability is NaN.
    pub fn check(&self) -> Result<(), String> {
        match *self {
            AugmentPolicy::RandAugment { magnitude, .. } if !(0.0..=1.0).contains(&magnitude) => {
                Err(format!(
                    "RandAugment magnitude {magnitude} is not in [0, 1]"
                ))
            }
            AugmentPolicy::RandAugment { prob, .. } if prob.is_nan() => {
                Err("RandAugment probability is NaN".into())
            }
            _ => Ok(()),
        }
    }

    /// The augmented image (pycls's `auto_augment` / `rand_augment`).
    pub fn apply(&self, mut im: Image, rng: &mut SampleRng) -> Image {
        match *self {
            AugmentPolicy::AutoAugment => {
                let sub = &AUTO_AUGMENT_POLICY[rng.random_range(0..AUTO_AUGMENT_POLICY.len())];
                for o in sub {
                    im = apply_op(im, o.op, o.prob, o.magnitude, rng);
                }
            }
            AugmentPolicy::RandAugment {
                n_ops,
                magnitude,
                prob,
            } => {
                for _ in 0..n_ops {
                    let op = RAND_AUGMENT_OPS[rng.random_range(0..RAND_AUGMENT_OPS.len())];
                    im = apply_op(im, op, prob, magnitude, rng);
                }
            }
        }
        im
    }
}

/// pycls's `transforms.augment` on an RGB float image in [0, 1]: to 8 bits by
/// `(im * 255).astype(np.uint8)` (single precision, truncated), the policy, and back by
/// `/ 255`.
pub fn augment_float(im: &FloatImage, policy: &AugmentPolicy, rng: &mut SampleRng) -> FloatImage {
    let bytes = im.data.iter().map(|&v| (v * 255.0) as u8).collect();
    let out = policy.apply(Image::new(im.height, im.width, im.channels, bytes), rng);
    let data = out.data().iter().map(|&v| f32::from(v) / 255.0).collect();
    FloatImage::new(im.height, im.width, im.channels, data)
}
