//! The geometric operations of pycls's augmentations, with PIL's arithmetic (Pillow 13):
//! `Image.transform(size, AFFINE, data, BILINEAR, fillcolor)` and `Image.rotate(angle,
//! BILINEAR, fillcolor)`, same size out as in.

use crate::dataset::Image;

/// PIL's affine warp with bilinear sampling: output pixel `(x, y)` reads the input at
/// `(a x' + b y' + c, d x' + e y' + f)` with `x' = x + 0.5`, `y' = y + 0.5` (the matrix maps
/// output to input, in pixel-corner coordinates). A point outside the input keeps `fill`;
/// inside, the four neighbours are blended in double precision (edge pixels repeated) and
/// the result truncated, as in PIL's `bilinear_filter32RGB`.
pub fn affine_bilinear(im: &Image, m: [f64; 6], fill: [u8; 3]) -> Image {
    let (h, w, c) = (im.height(), im.width(), im.channels());
    let mut out = Vec::with_capacity(h * w * c);
    let mut px = [0u8; 3];
    for y in 0..h {
        for x in 0..w {
            let (xo, yo) = (x as f64 + 0.5, y as f64 + 0.5);
            let xi = m[0] * xo + m[1] * yo + m[2];
            let yi = m[3] * xo + m[4] * yo + m[5];
            if bilinear(im, xi, yi, &mut px[..c]) {
                out.extend_from_slice(&px[..c]);
            } else {
                out.extend((0..c).map(|k| fill[k.min(2)]));
            }
        }
    }
    Image::new(h, w, c, out)
}

/// PIL's bilinear sample of `im` at `(xin, yin)` into `out`; `false` when the point lies
/// outside the image.
fn bilinear(im: &Image, xin: f64, yin: f64, out: &mut [u8]) -> bool {
    let (h, w, c) = (im.height() as i64, im.width() as i64, im.channels());
    // `!(a >= 0)` also rejects NaN, which PIL would read as inside.
    if !(xin >= 0.0 && yin >= 0.0) || xin >= w as f64 || yin >= h as f64 {
        return false;
    }
    let (xs, ys) = (xin - 0.5, yin - 0.5);
    let (x, y) = (xs.floor() as i64, ys.floor() as i64);
    let (dx, dy) = (xs - x as f64, ys - y as f64);
    let (x0, x1) = (x.clamp(0, w - 1), (x + 1).clamp(0, w - 1));
    let data = im.data();
    let at = |yy: i64, xx: i64, k: usize| f64::from(data[(yy * w + xx) as usize * c + k]);
    let lerp = |a: f64, b: f64, d: f64| a + (b - a) * d;
    for (k, o) in out.iter_mut().enumerate() {
        let row0 = y.clamp(0, h - 1);
        let v1 = lerp(at(row0, x0, k), at(row0, x1, k), dx);
        let v2 = if y + 1 < h {
            lerp(at(y + 1, x0, k), at(y + 1, x1, k), dx)
        } else {
            v1
        };
        *o = lerp(v1, v2, dy) as u8;
    }
    true
}

/// Python's `round(v, 15)`: the nearest double to `v` rounded to 15 decimals (Rust's
/// formatting is exact, as Python's `dtoa` is).
fn round15(v: f64) -> f64 {
    format!("{v:.15}").parse().unwrap_or(v)
}

/// PIL's `im.rotate(angle, resample=BILINEAR, fillcolor=fill)`: counter-clockwise by
/// `angle` degrees about the centre, same size. As in PIL, the angle is taken modulo 360,
/// 0 copies, 180 (and 90 / 270 on a square image) transpose exactly, and any other angle
/// warps through the matrix PIL builds (entries rounded to 15 decimals).
pub fn rotate(im: &Image, angle: f64, fill: [u8; 3]) -> Image {
    let angle = angle.rem_euclid(360.0);
    let (h, w) = (im.height(), im.width());
    if angle == 0.0 {
        return im.clone();
    }
    if angle == 180.0 || (h == w && (angle == 90.0 || angle == 270.0)) {
        return turn(im, angle);
    }
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let a = -(angle * (std::f64::consts::PI / 180.0));
    let mut m = [
        round15(a.cos()),
        round15(a.sin()),
        0.0,
        round15(-a.sin()),
        round15(a.cos()),
        0.0,
    ];
    // PIL moves the centre to the origin, rotates, and moves it back.
    m[2] = m[0] * -cx + m[1] * -cy + 0.0 + cx;
    m[5] = m[3] * -cx + m[4] * -cy + 0.0 + cy;
    affine_bilinear(im, m, fill)
}

/// An exact quarter or half turn counter-clockwise (`angle` 90, 180 or 270; 90 and 270
/// only on a square image).
fn turn(im: &Image, angle: f64) -> Image {
    let (h, w, c) = (im.height(), im.width(), im.channels());
    let mut out = Vec::with_capacity(h * w * c);
    for y in 0..h {
        for x in 0..w {
            let (sy, sx) = match angle as u32 {
                90 => (x, w - 1 - y),
                180 => (h - 1 - y, w - 1 - x),
                _ => (h - 1 - x, y),
            };
            out.extend((0..c).map(|k| im.get(sy, sx, k)));
        }
    }
    Image::new(h, w, c, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(h: usize, w: usize) -> Image {
        Image::new(
            h,
            w,
            3,
            (0..h * w * 3).map(|i| (i * 5 % 256) as u8).collect(),
        )
    }

    #[test]
    fn identity_matrix_and_zero_angle_copy() {
        let im = ramp(5, 7);
        let id = affine_bilinear(&im, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0], [1, 2, 3]);
        assert_eq!(id, im);
        assert_eq!(rotate(&im, 360.0, [0; 3]), im);
    }

    #[test]
    fn quarter_turns_are_exact_and_outside_is_filled() {
        let im = ramp(4, 4);
        let back = rotate(&rotate(&im, 90.0, [0; 3]), -90.0, [0; 3]);
        assert_eq!(back, im);
        assert_eq!(rotate(&rotate(&im, 180.0, [0; 3]), 180.0, [0; 3]), im);
        // Shifted a whole image to the right: every pixel reads outside.
        let gone = affine_bilinear(&im, [1.0, 0.0, -4.0, 0.0, 1.0, 0.0], [9, 8, 7]);
        assert!(gone.data().chunks(3).all(|p| p == [9, 8, 7]));
    }
}
