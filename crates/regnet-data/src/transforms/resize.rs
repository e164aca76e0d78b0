//! Bilinear resizing exactly as OpenCV's `cv2.resize(..., interpolation=INTER_LINEAR)` does
//! it on float images (pycls resizes float32 images with it).
//!
//! OpenCV maps destination pixel `d` to source coordinate `(d + 0.5) * scale - 0.5`
//! (pixel centres aligned; `scale = 1 / (dst / src)` in double precision, then the
//! coordinate is rounded to float), interpolates between the two neighbouring pixels, and
//! has no anti-aliasing when shrinking. At the borders it differs slightly between the axes
//! and this code keeps the difference: along x a coordinate before the first or after the
//! last pixel takes that pixel with weight 1; along y the row indices are clamped but the
//! weights are kept. (OpenCV switches an exact 2x shrink to `INTER_AREA`, which gives the
//! same values as this.)

use super::FloatImage;

/// The two source indices and weights of one destination index.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tap {
    i0: usize,
    i1: usize,
    w0: f32,
    w1: f32,
}

/// The taps of every destination index; `clamp_weights` is OpenCV's x-axis rule.
fn taps(src: usize, dst: usize, clamp_weights: bool) -> Vec<Tap> {
    let scale = 1.0 / (dst as f64 / src as f64);
    let last = src as i64 - 1;
    (0..dst)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let s = f.floor();
            let mut frac = f - s;
            let mut s = s as i64;
            if clamp_weights {
                if s < 0 {
                    s = 0;
                    frac = 0.0;
                }
                if s >= last {
                    s = last;
                    frac = 0.0;
                }
            }
            Tap {
                i0: s.clamp(0, last) as usize,
                i1: (s + 1).clamp(0, last) as usize,
                w0: 1.0 - frac,
                w1: frac,
            }
        })
        .collect()
}

/// Resizes `src` to `dst_h x dst_w` and returns only the `crop_h x crop_w` window at
/// (`y0`, `x0`) of the result: the same pixels as resizing then cropping, without computing
/// the ones thrown away.
///
/// # Panics
/// If the window does not fit in `dst_h x dst_w`, or a size is 0.
pub fn resize_window(
    src: &FloatImage,
    dst_h: usize,
    dst_w: usize,
    (y0, x0, crop_h, crop_w): (usize, usize, usize, usize),
) -> FloatImage {
    assert!(dst_h > 0 && dst_w > 0 && crop_h > 0 && crop_w > 0);
    assert!(
        y0 + crop_h <= dst_h && x0 + crop_w <= dst_w,
        "window outside the image"
    );
    let c = src.channels;
    let xt = &taps(src.width, dst_w, true)[x0..x0 + crop_w];
    let yt = &taps(src.height, dst_h, false)[y0..y0 + crop_h];

    // Resize the source rows that are used along x, each once.
    let mut slot = vec![usize::MAX; src.height];
    let mut rows: Vec<Vec<f32>> = Vec::new();
    for t in yt {
        for r in [t.i0, t.i1] {
            if slot[r] == usize::MAX {
                slot[r] = rows.len();
                let s = &src.data[r * src.width * c..(r + 1) * src.width * c];
                let mut row = vec![0.0f32; crop_w * c];
                for (d, t) in row.chunks_exact_mut(c).zip(xt) {
                    let a = &s[t.i0 * c..t.i0 * c + c];
                    if t.w1 == 0.0 {
                        d.copy_from_slice(a);
                    } else {
                        let b = &s[t.i1 * c..t.i1 * c + c];
                        for k in 0..c {
                            d[k] = a[k] * t.w0 + b[k] * t.w1;
                        }
                    }
                }
                rows.push(row);
            }
        }
    }

    let mut data = Vec::with_capacity(crop_h * crop_w * c);
    for t in yt {
        let (r0, r1) = (&rows[slot[t.i0]], &rows[slot[t.i1]]);
        data.extend(r0.iter().zip(r1).map(|(&a, &b)| a * t.w0 + b * t.w1));
    }
    FloatImage::new(crop_h, crop_w, c, data)
}

/// Resizes `src` to `dst_h x dst_w` (see the module docs).
pub fn resize(src: &FloatImage, dst_h: usize, dst_w: usize) -> FloatImage {
    resize_window(src, dst_h, dst_w, (0, 0, dst_h, dst_w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: &[f32]) -> FloatImage {
        FloatImage::new(1, v.len(), 1, v.to_vec())
    }

    #[test]
    fn same_size_is_identity() {
        let im = FloatImage::new(2, 3, 1, vec![1., 2., 3., 4., 5., 6.]);
        assert_eq!(resize(&im, 2, 3), im);
    }

    #[test]
    fn upscale_by_two_uses_half_pixel_centres() {
        // x = -0.25, 0.25, 0.75, 1.25 -> clamp, 0.75*0+0.25*10, 0.25*0+0.75*10, clamp.
        assert_eq!(resize(&row(&[0., 10.]), 1, 4).data, vec![0., 2.5, 7.5, 10.]);
    }

    #[test]
    fn shrink_by_two_averages_pairs() {
        assert_eq!(resize(&row(&[0., 2., 4., 8.]), 1, 2).data, vec![1., 6.]);
    }

    #[test]
    fn shrink_by_three_has_no_antialiasing() {
        // x = 1, 4: the centre pixels of each triple, alone.
        assert_eq!(
            resize(&row(&[5., 1., 7., 3., 2., 9.]), 1, 2).data,
            vec![1., 2.]
        );
    }

    #[test]
    fn window_equals_resize_then_crop() {
        let im = FloatImage::new(5, 7, 3, (0..105).map(|v| ((v * 37) % 101) as f32).collect());
        let full = resize(&im, 9, 4);
        let win = resize_window(&im, 9, 4, (2, 1, 5, 3));
        for y in 0..5 {
            for x in 0..3 {
                for c in 0..3 {
                    assert_eq!(win.get(y, x, c), full.get(y + 2, x + 1, c));
                }
            }
        }
    }
}
