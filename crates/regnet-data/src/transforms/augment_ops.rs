//! The pixel operations of pycls's augmentations, with PIL's arithmetic (Pillow 13), on
//! 8-bit [`Image`]s: lookup tables (`ImageOps.autocontrast`, `equalize`, `invert`,
//! `posterize`, `Image.point`) and the `ImageEnhance` blends (colour, contrast, brightness,
//! sharpness). The geometric ones are in [`super::augment_geometry`].
//!
//! Written here rather than taken from `image`: its `contrast`, `brighten` and `filter3x3`
//! use other formulas and borders than PIL, and pycls's policies are defined by PIL's.
//! Each function states the PIL rounding it reproduces; the augmentation test compares the
//! outputs with Pillow's byte for byte.

use crate::dataset::Image;

/// A table of 256 output values, one per input value.
pub type Lut = [u8; 256];

/// A copy of `im` with every value of channel `c` mapped through `luts[c]` (PIL's `point`
/// with one table per band).
fn map_luts(im: &Image, luts: &[Lut]) -> Image {
    let c = im.channels();
    let data = im
        .data()
        .iter()
        .enumerate()
        .map(|(i, &v)| luts[i % c][usize::from(v)])
        .collect();
    Image::new(im.height(), im.width(), c, data)
}

/// A copy of `im` with every value mapped through `lut`.
pub fn map_lut(im: &Image, lut: &Lut) -> Image {
    let data = im.data().iter().map(|&v| lut[usize::from(v)]).collect();
    Image::new(im.height(), im.width(), im.channels(), data)
}

/// PIL's `im.point(f)` for a Python function `f`: `f` evaluated on 0..=255, each result
/// rounded as Python's `round` does (halves to even) and clipped to 0..=255.
pub fn point(im: &Image, f: impl Fn(u8) -> f64) -> Image {
    let lut = std::array::from_fn(|i| f(i as u8).round_ties_even().clamp(0.0, 255.0) as u8);
    map_lut(im, &lut)
}

/// The 256-bin histogram of each channel.
fn histograms(im: &Image) -> Vec<[u64; 256]> {
    let c = im.channels();
    let mut h = vec![[0u64; 256]; c];
    for (i, &v) in im.data().iter().enumerate() {
        h[i % c][usize::from(v)] += 1;
    }
    h
}

/// `ImageOps.autocontrast(im)` (no cutoff): each channel stretched so its lowest value
/// becomes 0 and its highest 255, `int(i * scale + offset)` in double precision with
/// `scale = 255 / (hi - lo)`, `offset = -lo * scale`; a channel of one value is unchanged.
pub fn autocontrast(im: &Image) -> Image {
    let luts: Vec<Lut> = histograms(im)
        .iter()
        .map(|h| {
            let lo = h.iter().position(|&n| n > 0).unwrap_or(0);
            let hi = h.iter().rposition(|&n| n > 0).unwrap_or(0);
            if hi <= lo {
                return std::array::from_fn(|i| i as u8);
            }
            let scale = 255.0 / (hi - lo) as f64;
            let offset = -(lo as f64) * scale;
            // Python's int() truncates toward zero; the clip then bounds it to 0..=255.
            std::array::from_fn(|i| ((i as f64 * scale + offset).trunc()).clamp(0.0, 255.0) as u8)
        })
        .collect();
    map_luts(im, &luts)
}

/// `ImageOps.equalize(im)`: per channel, `step = (count - count of the highest value) //
/// 255` and value `i` maps to `(step // 2 + pixels below i) // step`; a channel with one
/// value, or a step of 0, is unchanged.
pub fn equalize(im: &Image) -> Image {
    let luts: Vec<Lut> = histograms(im)
        .iter()
        .map(|h| {
            let used: Vec<u64> = h.iter().copied().filter(|&n| n > 0).collect();
            let step = match used.as_slice() {
                [] | [_] => 0,
                [.., last] => (used.iter().sum::<u64>() - last) / 255,
            };
            if step == 0 {
                return std::array::from_fn(|i| i as u8);
            }
            let mut n = step / 2;
            std::array::from_fn(|i| {
                let v = (n / step).min(255) as u8;
                n += h[i];
                v
            })
        })
        .collect();
    map_luts(im, &luts)
}

/// `ImageOps.invert(im)`: `255 - v`.
pub fn invert(im: &Image) -> Image {
    map_lut(im, &std::array::from_fn(|i| 255 - i as u8))
}

/// `ImageOps.posterize(im, bits)`: keeps the `bits` high bits of each value (1..=8).
pub fn posterize(im: &Image, bits: u32) -> Image {
    let mask = !((1u16 << (8 - bits.clamp(1, 8))) - 1) as u8;
    map_lut(im, &std::array::from_fn(|i| i as u8 & mask))
}

/// PIL's `Image.blend(a, b, alpha)`: `a + alpha * (b - a)` with `alpha` as a C `float` and
/// the sum in single precision, truncated to 8 bits (clipped first when `alpha` is outside
/// [0, 1]). `alpha` 0 gives `a`, 1 gives `b`.
pub fn blend(a: &Image, b: &Image, alpha: f64) -> Image {
    let alpha = alpha as f32;
    if alpha == 0.0 {
        return a.clone();
    }
    if alpha == 1.0 {
        return b.clone();
    }
    let data = a
        .data()
        .iter()
        .zip(b.data())
        .map(|(&x, &y)| {
            let t = f32::from(x) + alpha * (i32::from(y) - i32::from(x)) as f32;
            // `as` truncates toward zero and saturates: PIL's clip then cast.
            t as u8
        })
        .collect();
    Image::new(a.height(), a.width(), a.channels(), data)
}

/// PIL's RGB to L conversion (ITU-R 601-2 in 16-bit fixed point, rounded); a gray image is
/// returned as is.
pub fn luminance(im: &Image) -> Vec<u8> {
    if im.channels() == 1 {
        return im.data().to_vec();
    }
    im.data()
        .chunks_exact(3)
        .map(|p| {
            let l = u32::from(p[0]) * 19595 + u32::from(p[1]) * 38470 + u32::from(p[2]) * 7471;
            ((l + 0x8000) >> 16) as u8
        })
        .collect()
}

/// An image of `im`'s size whose every channel holds `gray[pixel]` (PIL's L to RGB).
fn from_gray(im: &Image, gray: impl Fn(usize) -> u8) -> Image {
    let c = im.channels();
    let data = (0..im.height() * im.width())
        .flat_map(|p| std::iter::repeat_n(gray(p), c))
        .collect();
    Image::new(im.height(), im.width(), c, data)
}

/// `ImageEnhance.Color(im).enhance(factor)`: blend with the image's gray version.
pub fn enhance_color(im: &Image, factor: f64) -> Image {
    let l = luminance(im);
    blend(&from_gray(im, |p| l[p]), im, factor)
}

/// `ImageEnhance.Contrast(im).enhance(factor)`: blend with a flat image of the gray
/// version's mean, `int(mean + 0.5)`.
pub fn enhance_contrast(im: &Image, factor: f64) -> Image {
    let l = luminance(im);
    let sum: u64 = l.iter().map(|&v| u64::from(v)).sum();
    let mean = (sum as f64 / l.len() as f64 + 0.5) as u8;
    blend(&from_gray(im, |_| mean), im, factor)
}

/// `ImageEnhance.Brightness(im).enhance(factor)`: blend with black.
pub fn enhance_brightness(im: &Image, factor: f64) -> Image {
    blend(&from_gray(im, |_| 0), im, factor)
}

/// `ImageEnhance.Sharpness(im).enhance(factor)`: blend with [`smooth`].
pub fn enhance_sharpness(im: &Image, factor: f64) -> Image {
    blend(&smooth(im), im, factor)
}

/// PIL's `ImageFilter.SMOOTH`: the 3x3 kernel `[1 1 1; 1 5 1; 1 1 1] / 13` in single
/// precision, rows summed bottom to top as PIL's `ImagingFilter3x3` does, `+ 0.5` and
/// truncated; the one-pixel border is copied, and an image under 3x3 is returned as is.
pub fn smooth(im: &Image) -> Image {
    let (h, w, c) = (im.height(), im.width(), im.channels());
    if h < 3 || w < 3 {
        return im.clone();
    }
    let (edge, centre) = (1.0f32 / 13.0, 5.0f32 / 13.0);
    let src = im.data();
    let at = |y: usize, x: usize, k: usize| f32::from(src[(y * w + x) * c + k]);
    let mut out = src.to_vec();
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            for k in 0..c {
                let row = |yy: usize, mid: f32| {
                    at(yy, x - 1, k) * edge + at(yy, x, k) * mid + at(yy, x + 1, k) * edge
                };
                let mut ss = 0.5f32;
                ss += row(y + 1, edge);
                ss += row(y, centre);
                ss += row(y - 1, edge);
                out[(y * w + x) * c + k] = ss.clamp(0.0, 255.0) as u8;
            }
        }
    }
    Image::new(h, w, c, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(data: Vec<u8>, w: usize) -> Image {
        Image::new(data.len() / (3 * w), w, 3, data)
    }

    #[test]
    fn luts_follow_pil() {
        let im = img(vec![10, 100, 200, 30, 100, 250], 2);
        assert_eq!(invert(&im).data(), &[245, 155, 55, 225, 155, 5]);
        assert_eq!(posterize(&im, 2).data(), &[0, 64, 192, 0, 64, 192]);
        // R spans 10..30 and becomes 0..255; G has one value and stays.
        assert_eq!(autocontrast(&im).data(), &[0, 100, 0, 255, 100, 255]);
        assert_eq!(point(&im, |i| f64::from(i) + 0.5).data()[0], 10); // 10.5 -> 10
    }

    #[test]
    fn blend_truncates_and_clips() {
        let a = img(vec![0, 100, 255], 1);
        let b = img(vec![255, 101, 0], 1);
        assert_eq!(blend(&a, &b, 0.5).data(), &[127, 100, 127]);
        assert_eq!(blend(&a, &b, 2.0).data(), &[255, 102, 0]);
        assert_eq!(blend(&a, &b, 0.0), a);
    }
}
