//! Unfolding (im2col) and folding back (col2im) of one group of a chunk of samples.
//!
//! RegNet's grouped convolutions run on small feature maps (28x28 down to 4x4 on the
//! 28-pixel default): an output row is 4-14 values long, so copying row by row (with the
//! padding filled around each copy) spends its time in loop and call overhead. For those
//! shapes, and for strides above 1, every kernel tap gathers its whole output plane through a
//! precomputed table of input offsets instead, reading the padding from zero slots.

use super::conv::{ConvGeom, col2im_rows, im2col_rows};

/// Output width from which row copies beat the gather in im2col at stride 1 (measured with
/// `examples/kernel_bench.rs`: at 7x7 the gather unfolds 20% faster, at 14x14 rows win by
/// 35%).
pub(super) const IM2COL_MIN_ROW: usize = 12;
/// The same for col2im, whose scattered additions cost more than im2col's reads: at 7x7
/// rows fold 30% faster, at 4x4 the gather does.
pub(super) const COL2IM_MIN_ROW: usize = 6;

/// How one convolution unfolds its input: by rows, or through a table of tap offsets.
pub(super) struct Unfold {
    /// For tap `t = kh * k + kw` and output pixel `q`, `taps[t * pixels + q]` is the offset
    /// read inside the input plane, or `h * w + q` (a zero slot of its own) where it reads
    /// padding: distinct slots keep col2im's additions independent of one another.
    taps: Option<Vec<u32>>,
}

impl Unfold {
    /// Chooses the method for `g`, gathering at strides above 1 and output widths below
    /// `min_row`, and builds its table.
    pub(super) fn new(g: &ConvGeom, min_row: usize) -> Self {
        let hw = g.h * g.w;
        let gather = (g.ow() < min_row || g.s > 1) && u32::try_from(hw + g.oh() * g.ow()).is_ok();
        Self {
            taps: gather.then(|| tap_offsets(g)),
        }
    }

    /// Unfolds samples `[n0, n0+nc)` of group `gi` of `x` into `col[K][nc * P]`.
    pub(super) fn im2col(
        &self,
        x: &[f32],
        g: &ConvGeom,
        gi: usize,
        (n0, nc): (usize, usize),
        col: &mut [f32],
    ) {
        let Some(taps) = &self.taps else {
            return im2col_rows(x, g, gi, n0, nc, col);
        };
        let (hw, pix, kk, cig) = (g.h * g.w, g.oh() * g.ow(), g.k * g.k, g.cig());
        let row_len = nc * pix;
        let mut buf = vec![0.0f32; hw + pix];
        for j in 0..nc {
            for c in 0..cig {
                let ch = gi * cig + c;
                buf[..hw].copy_from_slice(&x[((n0 + j) * g.ci + ch) * hw..][..hw]);
                for t in 0..kk {
                    let dst = &mut col[(c * kk + t) * row_len + j * pix..][..pix];
                    for (d, &o) in dst.iter_mut().zip(&taps[t * pix..(t + 1) * pix]) {
                        *d = buf[o as usize];
                    }
                }
            }
        }
    }

    /// Adds `col[K][nc * P]` back into group `gi` of `dx`, which holds the `nc` samples of
    /// the chunk.
    pub(super) fn col2im(&self, col: &[f32], g: &ConvGeom, gi: usize, nc: usize, dx: &mut [f32]) {
        let Some(taps) = &self.taps else {
            return col2im_rows(col, g, gi, nc, dx);
        };
        let (hw, pix, kk, cig) = (g.h * g.w, g.oh() * g.ow(), g.k * g.k, g.cig());
        let row_len = nc * pix;
        let mut buf = vec![0.0f32; hw + pix];
        for j in 0..nc {
            for c in 0..cig {
                buf.fill(0.0);
                for t in 0..kk {
                    let src = &col[(c * kk + t) * row_len + j * pix..][..pix];
                    for (s, &o) in src.iter().zip(&taps[t * pix..(t + 1) * pix]) {
                        buf[o as usize] += *s;
                    }
                }
                let plane = &mut dx[(j * g.ci + gi * cig + c) * hw..][..hw];
                for (d, b) in plane.iter_mut().zip(&buf) {
                    *d += *b;
                }
            }
        }
    }
}

/// The table of [`Unfold::taps`].
fn tap_offsets(g: &ConvGeom) -> Vec<u32> {
    let (oh, ow, hw) = (g.oh(), g.ow(), g.h * g.w);
    let mut taps = Vec::with_capacity(g.k * g.k * oh * ow);
    let pad_slot = |y: usize, x: usize| hw + y * ow + x;
    for kh in 0..g.k {
        for kw in 0..g.k {
            for y in 0..oh {
                for x in 0..ow {
                    let iy = (y * g.s + kh).checked_sub(g.p).filter(|&v| v < g.h);
                    let ix = (x * g.s + kw).checked_sub(g.p).filter(|&v| v < g.w);
                    let off = match (iy, ix) {
                        (Some(iy), Some(ix)) => iy * g.w + ix,
                        _ => pad_slot(y, x),
                    };
                    // In range: the caller checked that h * w + pixels fits in u32.
                    taps.push(off as u32);
                }
            }
        }
    }
    taps
}
