//! The building blocks of pycls's transforms (`pycls/datasets/transforms.py`), each with
//! pycls's rounding, and the random draws they make (numpy's `uniform`, `randint` and
//! `normal`, on a [`SampleRng`]).
//!
//! Crop geometry is kept apart from pixels ([`CropBox`]) so that a crop can be taken from
//! the 8-bit image before it is converted to float: the values are the same, the work is
//! smaller.

use rand::Rng;

use super::FloatImage;
use super::resize::resize_window;
use crate::rng::SampleRng;

/// A rectangle inside an image: top-left corner and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    /// Top row.
    pub y: usize,
    /// Left column.
    pub x: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

/// numpy's `np.random.uniform(lo, hi)`: `lo + (hi - lo) * u` with `u` uniform in [0, 1).
pub fn uniform(rng: &mut SampleRng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// numpy's `np.random.randint(lo, hi)`: uniform in `lo..hi`, `hi` excluded.
///
/// # Panics
/// If `hi <= lo`.
pub fn randint(rng: &mut SampleRng, lo: usize, hi: usize) -> usize {
    rng.random_range(lo..hi)
}

/// numpy's `np.random.normal(0, std)`, by the Box-Muller transform.
pub fn normal(rng: &mut SampleRng, std: f64) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // in (0, 1]: ln is finite
    let u2 = rng.random::<f64>();
    std * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Python 3's `round(x)`: to the nearest integer, halves to even (`round(2.5) == 2`).
pub fn round_half_even(x: f64) -> f64 {
    x.round_ties_even()
}

/// The size pycls's `scale_and_center_crop` resizes an `h x w` image to, as `(h, w)`: the
/// short side becomes `size` and the long side `int(long / short * size)` (truncated, in
/// double precision); a short side already equal to `size` leaves the image as it is. (When
/// `w < h`, `w` is the short side; otherwise `h` is, ties included.)
pub fn scale_size(h: usize, w: usize, size: usize) -> (usize, usize) {
    if w < h && w != size {
        ((h as f64 / w as f64 * size as f64) as usize, size)
    } else if h <= w && h != size {
        (size, (w as f64 / h as f64 * size as f64) as usize)
    } else {
        (h, w)
    }
}

/// The centred `crop x crop` box of an `h x w` image, pycls's way: offsets
/// `ceil((side - crop) / 2)`, so an odd margin puts the extra pixel on the top / left side.
///
/// # Panics
/// If `crop` exceeds a side.
pub fn center_crop_box(h: usize, w: usize, crop: usize) -> CropBox {
    assert!(
        crop <= h && crop <= w,
        "centre crop {crop} of a {h}x{w} image"
    );
    CropBox {
        y: (h - crop).div_ceil(2),
        x: (w - crop).div_ceil(2),
        height: crop,
        width: crop,
    }
}

/// pycls's `scale_and_center_crop(im, scale_size, crop_size)`: resize (bilinear) so the
/// short side is `scale` ([`scale_size`]), then take the centred `crop x crop` box
/// ([`center_crop_box`]).
///
/// # Panics
/// If `crop > scale`.
pub fn scale_and_center_crop(im: &FloatImage, scale: usize, crop: usize) -> FloatImage {
    let (h, w) = scale_size(im.height, im.width, scale);
    let b = center_crop_box(h, w, crop);
    if (h, w) == (im.height, im.width) {
        return im.crop(b);
    }
    resize_window(im, h, w, (b.y, b.x, b.height, b.width))
}

/// The box of pycls's `random_sized_crop` (Inception-style) of an `h x w` image, or `None`
/// when all `max_iter` attempts fail (pycls then falls back to
/// `scale_and_center_crop(im, size, size)`).
///
/// Each attempt draws, in pycls's order: an area `uniform(area_frac, 1) * h * w`, an aspect
/// ratio `uniform(3/4, 4/3)`, sides `w = round(sqrt(area * ratio))` and
/// `h = round(sqrt(area / ratio))` (Python's `round`, halves to even), and a coin
/// `uniform() < 0.5` that swaps them; the box fits if `h <= H` and `w <= W`, and then its
/// corner is `randint(0, H - h)` (0 when the sides are equal), likewise for x. numpy's
/// `randint` excludes its upper bound, so a box narrower than the image never touches the
/// right (bottom) edge: pycls's behaviour, kept. A side that rounds to 0 (only in images of
/// a few pixels, where pycls would crash) counts as a failed attempt.
pub fn random_sized_crop_box(
    h: usize,
    w: usize,
    area_frac: f64,
    max_iter: usize,
    rng: &mut SampleRng,
) -> Option<CropBox> {
    let area = (h * w) as f64;
    for _ in 0..max_iter {
        let target_area = uniform(rng, area_frac, 1.0) * area;
        let aspect_ratio = uniform(rng, 3.0 / 4.0, 4.0 / 3.0);
        let mut w_crop = round_half_even((target_area * aspect_ratio).sqrt()) as usize;
        let mut h_crop = round_half_even((target_area / aspect_ratio).sqrt()) as usize;
        if uniform(rng, 0.0, 1.0) < 0.5 {
            std::mem::swap(&mut w_crop, &mut h_crop);
        }
        if h_crop <= h && w_crop <= w && h_crop > 0 && w_crop > 0 {
            let y = if h_crop == h {
                0
            } else {
                randint(rng, 0, h - h_crop)
            };
            let x = if w_crop == w {
                0
            } else {
                randint(rng, 0, w - w_crop)
            };
            return Some(CropBox {
                y,
                x,
                height: h_crop,
                width: w_crop,
            });
        }
    }
    None
}

/// Mirrors an image left to right (pycls's `im[:, ::-1, :]`).
pub fn horizontal_flip(im: &FloatImage) -> FloatImage {
    let c = im.channels;
    let mut data = Vec::with_capacity(im.data.len());
    for y in 0..im.height {
        let row = &im.data[y * im.width * c..(y + 1) * im.width * c];
        for x in (0..im.width).rev() {
            data.extend_from_slice(&row[x * c..(x + 1) * c]);
        }
    }
    FloatImage::new(im.height, im.width, c, data)
}

/// The per-channel shift of pycls's `lighting` (AlexNet-style PCA noise) for the draws
/// `alpha`: `shift[i] = sum_j eig_vecs[i][j] * alpha[j] * eig_vals[j]`, added to channel `i`.
/// pycls draws `alpha` as 3 values of `normal(0, alpha_std)`.
pub fn lighting_shift(alpha: [f64; 3], eig_vals: [f64; 3], eig_vecs: [[f64; 3]; 3]) -> [f64; 3] {
    std::array::from_fn(|i| {
        (0..3)
            .map(|j| eig_vecs[i][j] * alpha[j] * eig_vals[j])
            .sum()
    })
}

/// pycls's `color_norm` of one value: `(v - mean) / std`, in single precision as numpy does
/// it on a float32 image.
pub fn normalize(v: f32, mean: f32, std: f32) -> f32 {
    (v - mean) / std
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::sample_rng;

    #[test]
    fn scale_size_truncates_the_long_side() {
        // 375 x 500 (h x w): 500 / 375 * 256 = 341.33 -> 341.
        assert_eq!(scale_size(375, 500, 256), (256, 341));
        // Portrait: 333 / 250 * 256 = 340.99 -> 340 (truncated, not rounded).
        assert_eq!(scale_size(333, 250, 256), (340, 256));
        // Square: h <= w branch.
        assert_eq!(scale_size(300, 300, 256), (256, 256));
        // Short side already right: unchanged.
        assert_eq!(scale_size(256, 999, 256), (256, 999));
        assert_eq!(scale_size(999, 256, 256), (999, 256));
    }

    #[test]
    fn center_crop_rounds_the_offset_up() {
        // ceil((341 - 224) / 2) = ceil(58.5) = 59; ceil((256 - 224) / 2) = 16.
        assert_eq!(
            center_crop_box(256, 341, 224),
            CropBox {
                y: 16,
                x: 59,
                height: 224,
                width: 224
            }
        );
        assert_eq!(center_crop_box(5, 4, 4).y, 1);
    }

    #[test]
    fn round_is_half_to_even() {
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
        assert_eq!(round_half_even(2.4999), 2.0);
    }

    #[test]
    fn random_sized_crop_fits_and_never_touches_the_far_edge() {
        let mut rng = sample_rng(0, 0, 0);
        for _ in 0..2000 {
            let b = random_sized_crop_box(40, 30, 0.08, 10, &mut rng).unwrap();
            assert!(b.height <= 40 && b.width <= 30);
            assert!(b.y + b.height < 40 || (b.y == 0 && b.height == 40));
            assert!(b.x + b.width < 30 || (b.x == 0 && b.width == 30));
            let frac = (b.height * b.width) as f64 / 1200.0;
            assert!(frac > 0.05 && frac < 1.1, "{frac}");
        }
    }

    #[test]
    fn random_sized_crop_gives_up_on_thin_images() {
        // A 1 x 1000 image: the smallest box (0.08 * 1000 = 80 pixels) has sides >= 7.
        let mut rng = sample_rng(0, 0, 0);
        assert_eq!(random_sized_crop_box(1, 1000, 0.08, 10, &mut rng), None);
    }

    #[test]
    fn lighting_matches_the_formula() {
        let vecs = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]];
        let s = lighting_shift([1.0, 0.5, -1.0], [0.1, 0.2, 0.3], vecs);
        // row i: v[i][0]*0.1 + v[i][1]*0.1 - v[i][2]*0.3
        let expect = [0.1 + 0.2 - 0.9, 0.4 + 0.5 - 1.8, 0.7 + 0.8 - 2.7];
        for i in 0..3 {
            assert!((s[i] - expect[i]).abs() < 1e-12, "{s:?}");
        }
    }

    #[test]
    fn normal_has_the_right_spread() {
        let mut rng = sample_rng(5, 0, 0);
        let v: Vec<f64> = (0..20000).map(|_| normal(&mut rng, 0.1)).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.003, "{mean}");
        assert!((var.sqrt() - 0.1).abs() < 0.003, "{var}");
    }

    #[test]
    fn flip_reverses_columns() {
        let im = FloatImage::new(1, 3, 2, vec![1., 2., 3., 4., 5., 6.]);
        assert_eq!(horizontal_flip(&im).data, vec![5., 6., 3., 4., 1., 2.]);
    }
}
