//! Pooling in NHWC: the ResNet stem's max pool, global average pooling (head and SE), and
//! squeeze-excitation's channel gate.

use rayon::prelude::*;

use crate::epilogue::{Act, activate, exp};
use crate::simd::{SimdLevel, multiversion};

/// Max pooling with "same" padding (padded positions never win, as in PyTorch).
#[derive(Clone, Debug)]
pub(crate) struct MaxPool {
    /// Kernel size.
    pub k: usize,
    /// Stride.
    pub stride: usize,
}

impl MaxPool {
    /// Output height and width for an `h` x `w` input.
    pub fn out_hw(&self, h: usize, w: usize) -> (usize, usize) {
        let p = (self.k - 1) / 2;
        let f = |d: usize| (d + 2 * p - self.k) / self.stride + 1;
        (f(h), f(w))
    }

    /// Pools `x` (`[n, h, w, c]`) into `out`.
    pub fn run(&self, x: &[f32], [_, h, w]: [usize; 3], c: usize, out: &mut [f32]) {
        let (ho, wo) = self.out_hw(h, w);
        let (k, s, p) = (self.k, self.stride, (self.k - 1) / 2);
        let clip = |o: usize, len: usize| {
            let lo = (o * s).saturating_sub(p);
            (lo, (o * s + k - p).min(len))
        };
        out.par_chunks_mut(wo * c).enumerate().for_each(|(r, o)| {
            let (b, oy) = (r / ho, r % ho);
            let img = &x[b * h * w * c..][..h * w * c];
            let (y0, y1) = clip(oy, h);
            for (ox, px) in o.chunks_exact_mut(c).enumerate() {
                let (x0, x1) = clip(ox, w);
                px.fill(f32::NEG_INFINITY);
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        let src = &img[(iy * w + ix) * c..][..c];
                        for (d, v) in px.iter_mut().zip(src) {
                            *d = d.max(*v);
                        }
                    }
                }
            }
        });
    }
}

/// Per-sample channel means of `x` (`[n, hw, c]`) into `out` (`[n, c]`), one task per sample.
pub(crate) fn global_avg_pool(
    level: SimdLevel,
    x: &[f32],
    n: usize,
    hw: usize,
    c: usize,
    out: &mut [f32],
) {
    out[..n * c]
        .par_chunks_mut(c)
        .enumerate()
        .for_each(|(b, o)| mean_pixels(level, &x[b * hw * c..][..hw * c], o));
}

/// Channel means of one sample's pixels `x` (`[hw, c]`) into `o` (`[c]`).
#[inline(always)]
fn mean_pixels_imp(x: &[f32], o: &mut [f32]) {
    o.fill(0.0);
    for px in x.chunks_exact(o.len()) {
        for (d, v) in o.iter_mut().zip(px) {
            *d += v;
        }
    }
    let inv = 1.0 / (x.len() / o.len().max(1)) as f32;
    o.iter_mut().for_each(|v| *v *= inv);
}

multiversion!(
    /// See `mean_pixels_imp` (at batch 1 an SE block's pool runs on one thread: at the
    /// SIMD level, not the baseline's 4 lanes).
    fn mean_pixels(x: &[f32], o: &mut [f32]) => mean_pixels_imp
);

/// `a . b` with 16 partial sums, so that it vectorizes (a single running sum stays scalar:
/// the compiler may not reorder float additions); the SE gates of batch 1 ran scalar.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Squeeze-excitation: `x *= sigmoid(W2 act(W1 mean(x) + b1) + b2)` per sample and channel.
#[derive(Clone, Debug)]
pub(crate) struct SqueezeExcite {
    /// Channels.
    pub c: usize,
    /// Squeezed width.
    pub w_se: usize,
    /// `[w_se][c]`.
    pub w1: Vec<f32>,
    /// `[w_se]`.
    pub b1: Vec<f32>,
    /// `[c][w_se]`.
    pub w2: Vec<f32>,
    /// `[c]`.
    pub b2: Vec<f32>,
    /// Activation between the two convs.
    pub act: Act,
}

impl SqueezeExcite {
    /// The gates (`[n, c]`, in `gate`) of `x` (`[n, hw, c]`); `gate` must hold `n * c`.
    pub fn gates(&self, level: SimdLevel, x: &[f32], n: usize, hw: usize, gate: &mut [f32]) {
        global_avg_pool(level, x, n, hw, self.c, gate);
        for g in gate[..n * self.c].chunks_exact_mut(self.c) {
            excite(level, self, g);
        }
    }

    /// Multiplies `x` (`[n, hw, c]`) by the gates in place.
    pub fn apply(&self, level: SimdLevel, x: &mut [f32], n: usize, hw: usize, gate: &[f32]) {
        let c = self.c;
        let per = hw.div_ceil(8).max(1);
        x[..n * hw * c]
            .par_chunks_mut(c * per)
            .enumerate()
            .for_each(|(i, chunk)| {
                let first_px = i * per;
                // A chunk of `per` pixels may straddle samples of `hw`: split where the
                // sample changes.
                let mut j = 0;
                while j < chunk.len() / c {
                    let b = (first_px + j) / hw;
                    let end = ((b + 1) * hw - first_px).min(chunk.len() / c);
                    scale_pixels(level, &mut chunk[j * c..end * c], &gate[b * c..][..c]);
                    j = end;
                }
            });
    }
}

/// Multiplies every pixel of `x` (`[pixels, c]`) by `g` (`[c]`).
#[inline(always)]
fn scale_pixels_imp(x: &mut [f32], g: &[f32]) {
    for px in x.chunks_exact_mut(g.len()) {
        for (v, s) in px.iter_mut().zip(g) {
            *v *= s;
        }
    }
}

multiversion!(
    /// See `scale_pixels_imp` (the baseline's 4 lanes otherwise).
    fn scale_pixels(x: &mut [f32], g: &[f32]) => scale_pixels_imp
);

/// The two FCs of `se` on one sample's pooled features `g`, replaced by its gates.
#[inline(always)]
fn excite_imp(se: &SqueezeExcite, g: &mut [f32]) {
    let c = se.c;
    let s: Vec<f32> = (0..se.w_se)
        .map(|j| {
            let z = se.b1[j] + dot(&se.w1[j * c..][..c], g);
            activate(Some(se.act), z)
        })
        .collect();
    for (i, gi) in g.iter_mut().enumerate() {
        let z = se.b2[i] + dot(&se.w2[i * se.w_se..][..se.w_se], &s);
        *gi = 1.0 / (1.0 + exp(-z));
    }
}

multiversion!(
    /// See `excite_imp` (serial at batch 1: at the SIMD level, not the baseline's).
    fn excite(se: &SqueezeExcite, g: &mut [f32]) => excite_imp
);
