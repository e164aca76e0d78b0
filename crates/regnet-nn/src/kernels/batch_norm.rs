//! Batch normalisation kernels on f32 NCHW slices, per channel in parallel. burn's batch
//! norm goes through generic reductions and broadcasts that copy the activations several
//! times.
//!
//! The statistics run channel by channel over all samples' planes at once, on the output
//! the convolution has just written; the gradient sums, on activations saved long before,
//! read the samples in memory order ([`per_channel`]). Both keep f32 partial sums in
//! [`LANES`] accumulators flushed into f64 every few thousand values. The elementwise loops
//! run sample by sample and skip zeroing their outputs. All are compiled for AVX2 and
//! AVX-512 too and picked at run time. Planes of at most 16 pixels run position by position
//! instead ([`super::bn_small`]).

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::bn_small;
use super::fill::filled;
use super::simd::{LANES, multiversioned, reduce};

/// Shape `[n, c, hw]` of a batch-norm input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BnGeom {
    /// Batch.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Pixels per channel (`h * w`).
    pub hw: usize,
}

impl BnGeom {
    fn plane(&self, n: usize, c: usize) -> std::ops::Range<usize> {
        let start = (n * self.c + c) * self.hw;
        start..start + self.hw
    }
}

/// Values summed in f32 lanes before the lanes are added into the f64 totals.
pub(super) const FLUSH: usize = 4096;

/// Values per task of the reductions. The chunking depends on the shape only, never on
/// the thread count, so that the sums come out the same on every machine.
const TASK_VALUES: usize = 1 << 16;

/// Sums `f` (`K` sums at once) over a plane's values paired with `y`'s: f32 lanes inside
/// runs of [`FLUSH`] values, f64 across runs.
#[inline(always)]
fn plane_sums<const K: usize>(x: &[f32], y: &[f32], f: impl Fn(f32, f32) -> [f32; K]) -> [f64; K] {
    let mut total = [0.0f64; K];
    for (xr, yr) in x.chunks(FLUSH).zip(y.chunks(FLUSH)) {
        let (mut acc, mut tail) = ([[0.0f32; LANES]; K], [0.0f32; K]);
        let (mut xc, mut yc) = (xr.chunks_exact(LANES), yr.chunks_exact(LANES));
        for (xs, ys) in (&mut xc).zip(&mut yc) {
            for l in 0..LANES {
                let v = f(xs[l], ys[l]);
                for k in 0..K {
                    acc[k][l] += v[k];
                }
            }
        }
        for (xv, yv) in xc.remainder().iter().zip(yc.remainder()) {
            let v = f(*xv, *yv);
            for k in 0..K {
                tail[k] += v[k];
            }
        }
        for k in 0..K {
            total[k] += reduce(acc[k], tail[k]) as f64;
        }
    }
    total
}

/// Adds per-channel sums of `f(x, y, m[c])` (`m[c]` any per-channel values) over whole samples (`c` planes of `hw` values
/// each) into `acc`. `f` must stay small: it is inlined into each SIMD copy.
#[inline(always)]
fn add_sample_sums<const K: usize, P: Copy>(
    x: &[f32],
    y: &[f32],
    (hw, m): (usize, &[P]),
    acc: &mut [[f64; K]],
    f: impl Fn(f32, f32, P) -> [f32; K],
) {
    let per = acc.len() * hw;
    for (xn, yn) in x.chunks_exact(per).zip(y.chunks_exact(per)) {
        let planes = xn.chunks_exact(hw).zip(yn.chunks_exact(hw));
        for ((xp, yp), (a, &mc)) in planes.zip(acc.iter_mut().zip(m)) {
            let v = plane_sums(xp, yp, |xv, yv| f(xv, yv, mc));
            for k in 0..K {
                a[k] += v[k];
            }
        }
    }
}

/// The planes of channel `c`: `n` slices of `hw` values, `c * hw` apart.
#[derive(Clone, Copy)]
struct Channel<'a> {
    data: &'a [f32],
    g: BnGeom,
    c: usize,
}

impl<'a> Channel<'a> {
    #[inline(always)]
    fn plane(&self, n: usize) -> &'a [f32] {
        &self.data[self.g.plane(n, self.c)]
    }
}

/// Sums `f` over the channel's values, pairing them with `y`'s (`f(x, y)`): f32 lanes
/// inside runs of about [`FLUSH`] values, f64 across runs.
#[inline(always)]
fn channel_sum(x: Channel, y: Channel, f: impl Fn(f32, f32) -> f32) -> f64 {
    let (mut total, mut acc, mut tail, mut since) = (0.0f64, [0.0f32; LANES], 0.0f32, 0);
    for n in 0..x.g.n {
        let (xp, yp) = (x.plane(n), y.plane(n));
        let (mut xc, mut yc) = (xp.chunks_exact(LANES), yp.chunks_exact(LANES));
        for (xs, ys) in (&mut xc).zip(&mut yc) {
            for l in 0..LANES {
                acc[l] += f(xs[l], ys[l]);
            }
        }
        for (xv, yv) in xc.remainder().iter().zip(yc.remainder()) {
            tail += f(*xv, *yv);
        }
        since += xp.len();
        if since >= FLUSH || n + 1 == x.g.n {
            total += reduce(acc, tail) as f64;
            (acc, tail, since) = ([0.0; LANES], 0.0, 0);
        }
    }
    total
}

multiversioned! {
    /// Mean and biased variance of one channel (two passes: the deviations are summed
    /// around the mean, not derived from the sum of squares).
    fn channel_moments(x: Channel) -> (f64, f64) {
        let count = (x.g.n * x.g.hw) as f64;
        let mean = channel_sum(x, x, |v, _| v) / count;
        let m = mean as f32;
        let m2 = channel_sum(x, x, |v, _| (v - m) * (v - m));
        // The f32 mean's rounding error, removed exactly: sum (v - m)^2 = M2 + N (m - mean)^2.
        (mean, (m2 / count - (m as f64 - mean).powi(2)).max(0.0))
    }
}

/// Per-channel `[sum d, sum d * (x - m)]` over whole samples, in one pass, into `acc`, where
/// `mab[c] = [m, a, b]` and `d = dy`, or with `RELU`, `d = dy` where `x * a + b > 0` (the
/// forward's output was positive), else 0.
fn sample_grad_sums<const RELU: bool>(
    x: &[f32],
    dy: &[f32],
    hw: usize,
    mab: &[[f32; 3]],
    acc: &mut [[f64; 2]],
) {
    #[cfg(target_arch = "x86_64")]
    if super::simd::level() >= super::simd::Level::Avx2 {
        // SAFETY: the CPU has AVX2 (`level`); the kernel reads only inside the slices.
        return unsafe { super::bn_avx2::grad_sums::<RELU>(x, dy, hw, mab, acc) };
    }
    if RELU {
        grad_sums_relu_generic(x, dy, hw, mab, acc)
    } else {
        grad_sums_generic(x, dy, hw, mab, acc)
    }
}

multiversioned! {
    /// [`sample_grad_sums`] without the ReLU, in portable code.
    fn grad_sums_generic(x: &[f32], dy: &[f32], hw: usize, mab: &[[f32; 3]], acc: &mut [[f64; 2]]) {
        add_sample_sums(x, dy, (hw, mab), acc, |v, d, [m, _, _]| [d, d * (v - m)])
    }
}

multiversioned! {
    /// [`sample_grad_sums`] behind the ReLU, in portable code.
    fn grad_sums_relu_generic(x: &[f32], dy: &[f32], hw: usize, mab: &[[f32; 3]], acc: &mut [[f64; 2]]) {
        add_sample_sums(x, dy, (hw, mab), acc, |v, d, [m, a, b]| {
            let d = relu_grad(v, d, a, b);
            [d, d * (v - m)]
        })
    }
}

/// PyTorch's ReLU: `max(v, 0)`, except that NaN stays NaN (`f32::max` would turn it into 0 and
/// hide a diverged step from the trainer's non-finite-loss check).
#[inline(always)]
pub(crate) fn relu(v: f32) -> f32 {
    if v < 0.0 { 0.0 } else { v }
}

/// The gradient through `relu(x * a + b)`'s ReLU: `dy` where the output was positive, else 0.
#[inline(always)]
pub(super) fn relu_grad(x: f32, dy: f32, a: f32, b: f32) -> f32 {
    if x * a + b > 0.0 { dy } else { 0.0 }
}

/// Per-channel reductions over every sample: `chunk(x samples, y samples, acc)` folds
/// whole samples into `acc` (one value per channel, starting at `T::default()`), and
/// `merge` joins the tasks' results. The samples are read in memory order (whole samples
/// per task, results merged in task order): walking one channel across samples jumps
/// `c * hw` values per plane, which defeats the prefetcher on the small planes of RegNet's
/// later stages. The tasks depend on the shape only, so results do not depend on threads.
fn per_channel<T: Copy + Default + Send>(
    (x, y): (&[f32], &[f32]),
    g: &BnGeom,
    chunk: impl Fn(&[f32], &[f32], &mut [T]) + Sync,
    merge: impl Fn(T, T) -> T,
) -> Vec<T> {
    let per = (g.c * g.hw).max(1);
    let samples = (TASK_VALUES / per).clamp(1, g.n.max(1));
    let partials: Vec<Vec<T>> = x
        .par_chunks(samples * per)
        .zip(y.par_chunks(samples * per))
        .map(|(xs, ys)| {
            let mut acc = vec![T::default(); g.c];
            chunk(xs, ys, &mut acc);
            acc
        })
        .collect();
    let mut total = vec![T::default(); g.c];
    for p in &partials {
        for (t, v) in total.iter_mut().zip(p) {
            *t = merge(*t, *v);
        }
    }
    total
}

/// `out = x * a[c] + b[c]` for one sample (`c` planes of `hw`), then the ReLU if `RELU`.
#[inline(always)]
fn affine_planes<const RELU: bool>(
    out: &mut [MaybeUninit<f32>],
    x: &[f32],
    (a, b): (&[f32], &[f32]),
    hw: usize,
) {
    for (c, (o, v)) in out.chunks_exact_mut(hw).zip(x.chunks_exact(hw)).enumerate() {
        let (a, b) = (a[c], b[c]);
        for (o, v) in o.iter_mut().zip(v) {
            let y = *v * a + b;
            o.write(if RELU { relu(y) } else { y });
        }
    }
}

multiversioned! {
    /// `out = x * a[c] + b[c]` for one sample (`c` planes of `hw`).
    fn sample_affine(out: &mut [MaybeUninit<f32>], x: &[f32], a: &[f32], b: &[f32], hw: usize) {
        affine_planes::<false>(out, x, (a, b), hw)
    }
}

multiversioned! {
    /// `out = relu(x * a[c] + b[c])` for one sample.
    fn sample_affine_relu(out: &mut [MaybeUninit<f32>], x: &[f32], a: &[f32], b: &[f32], hw: usize) {
        affine_planes::<true>(out, x, (a, b), hw)
    }
}

multiversioned! {
    /// `out = k * dy + q * (x - m) + r` per channel of one sample: the input gradient.
    fn sample_dx(out: &mut [MaybeUninit<f32>], x: &[f32], dy: &[f32], coefs: &[[f32; 6]], hw: usize) {
        let planes = out.chunks_exact_mut(hw).zip(x.chunks_exact(hw)).zip(dy.chunks_exact(hw));
        for (((o, xp), dp), &[k, q, m, r, _, _]) in planes.zip(coefs) {
            for ((o, xv), dv) in o.iter_mut().zip(xp).zip(dp) {
                o.write(k * *dv + q * (*xv - m) + r);
            }
        }
    }
}

multiversioned! {
    /// [`sample_dx`] behind a ReLU (`dy` masked by [`relu_grad`] with the coefficients' `a, b`).
    fn sample_dx_relu(out: &mut [MaybeUninit<f32>], x: &[f32], dy: &[f32], coefs: &[[f32; 6]], hw: usize) {
        let planes = out.chunks_exact_mut(hw).zip(x.chunks_exact(hw)).zip(dy.chunks_exact(hw));
        for (((o, xp), dp), &[k, q, m, r, a, b]) in planes.zip(coefs) {
            for ((o, xv), dv) in o.iter_mut().zip(xp).zip(dp) {
                o.write(k * relu_grad(*xv, *dv, a, b) + q * (*xv - m) + r);
            }
        }
    }
}

/// Per-channel mean and biased variance. Channel by channel across the samples: here (on
/// the output the convolution just wrote, still in cache) that beat reading in memory
/// order, which pays a horizontal sum per plane.
pub fn stats(x: &[f32], g: &BnGeom) -> (Vec<f32>, Vec<f32>) {
    if g.hw <= bn_small::MAX_HW {
        return bn_small::stats(x, g);
    }
    (0..g.c)
        .into_par_iter()
        .map(|c| {
            let (mean, var) = channel_moments(Channel { data: x, g: *g, c });
            (mean as f32, var as f32)
        })
        .unzip()
}

/// `y = x * scale[c] + shift[c]`.
pub fn affine(x: &[f32], scale: &[f32], shift: &[f32], g: &BnGeom) -> Vec<f32> {
    affine_act(x, (scale, shift), false, g)
}

/// `y = x * scale[c] + shift[c]`, then the ReLU if `relu`.
fn affine_act(x: &[f32], (scale, shift): (&[f32], &[f32]), relu: bool, g: &BnGeom) -> Vec<f32> {
    if g.hw <= bn_small::MAX_HW {
        return bn_small::affine(x, (scale, shift), relu, g);
    }
    let per = (g.c * g.hw).max(1);
    let kernel = if relu {
        sample_affine_relu
    } else {
        sample_affine
    };
    filled(x.len(), per, |i, out| {
        kernel(out, &x[i * per..][..out.len()], scale, shift, g.hw.max(1))
    })
}

/// A training-mode batch norm's parameters, and whether a ReLU follows it (fused into the
/// same passes: the backward recomputes where the output was positive from `x`).
#[derive(Clone, Copy, Debug)]
pub struct BnAffine<'a> {
    /// Gamma, per channel.
    pub gamma: &'a [f32],
    /// Beta, per channel.
    pub beta: &'a [f32],
    /// Epsilon.
    pub eps: f64,
    /// A ReLU on the output.
    pub relu: bool,
}

impl BnAffine<'_> {
    /// `(scale, shift)` of channel `c` with these batch statistics: `y = x * scale + shift`.
    pub(super) fn scale_shift(&self, c: usize, mean: f32, var: f32) -> (f32, f32) {
        let inv = 1.0 / (var as f64 + self.eps).sqrt();
        let a = self.gamma[c] as f64 * inv;
        (a as f32, (self.beta[c] as f64 - mean as f64 * a) as f32)
    }

    /// For channel `c`, from `(sum dy, sum dy * (x - mean))` (`dy` after the ReLU's mask):
    /// the input gradient's coefficients `[k, q, mean, r, a, b]`
    /// (`dx = k * dy + q * (x - mean) + r`; `a, b` the forward's scale and shift, for the
    /// mask) and `(dbeta, dgamma)`.
    pub(super) fn dx_coefs(
        &self,
        c: usize,
        (mean, var): (f32, f32),
        count: f64,
        (sum_dy, sum_dyx): (f64, f64),
    ) -> ([f32; 6], (f64, f64)) {
        // dbeta = sum dy, dgamma = sum dy * xhat = inv * sum dy * (x - mean);
        // dx = gamma * inv / N * (N * dy - dbeta - xhat * dgamma)
        //    = k * dy + q * (x - mean) + r, k = gamma * inv, q = -k * inv * dgamma / N,
        //      r = -k * dbeta / N.
        let inv = 1.0 / (var as f64 + self.eps).sqrt();
        let (db, dg) = (sum_dy, sum_dyx * inv);
        let k = self.gamma[c] as f64 * inv;
        let q = -k * inv * dg / count;
        let (a, b) = self.scale_shift(c, mean, var);
        let coefs = [k as f32, q as f32, mean, (-k * db / count) as f32, a, b];
        (coefs, (db, dg))
    }
}

/// Training-mode output: normalise with the batch statistics.
pub fn forward_train(
    x: &[f32],
    p: &BnAffine,
    (mean, var): (&[f32], &[f32]),
    g: &BnGeom,
) -> Vec<f32> {
    let (scale, shift): (Vec<f32>, Vec<f32>) =
        (0..g.c).map(|c| p.scale_shift(c, mean[c], var[c])).unzip();
    affine_act(x, (&scale, &shift), p.relu, g)
}

/// Training-mode batch norm (and ReLU): the output, the batch mean and the biased batch
/// variance.
pub fn train_forward(x: &[f32], p: &BnAffine, g: &BnGeom) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    if g.hw <= bn_small::MAX_HW {
        return bn_small::forward_train(x, p, g);
    }
    let (mean, var) = stats(x, g);
    let y = forward_train(x, p, (&mean, &var), g);
    (y, mean, var)
}

/// Gradients `(dx, dgamma, dbeta)` of training-mode batch norm (and ReLU), from the input
/// `x`, the output's gradient `dy` and the batch statistics.
pub fn backward_train(
    (x, dy): (&[f32], &[f32]),
    p: &BnAffine,
    (mean, var): (&[f32], &[f32]),
    g: &BnGeom,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    if g.hw <= bn_small::MAX_HW {
        return bn_small::backward_train((x, dy), p, (mean, var), g);
    }
    let count = (g.n * g.hw) as f64;
    let hw = g.hw.max(1);
    // Per channel: the mean, and the forward's scale and shift (for the ReLU's mask).
    let mab: Vec<[f32; 3]> = (0..g.c)
        .map(|c| {
            let (a, b) = p.scale_shift(c, mean[c], var[c]);
            [mean[c], a, b]
        })
        .collect();
    let sums = if p.relu {
        sample_grad_sums::<true>
    } else {
        sample_grad_sums::<false>
    };
    let chunk = |xs: &[f32], ds: &[f32], acc: &mut [[f64; 2]]| sums(xs, ds, hw, &mab, acc);
    let raw = per_channel((x, dy), g, chunk, |a, b| [a[0] + b[0], a[1] + b[1]]);
    let (coefs, sums): (Vec<[f32; 6]>, Vec<(f64, f64)>) = (0..g.c)
        .map(|c| p.dx_coefs(c, (mean[c], var[c]), count, (raw[c][0], raw[c][1])))
        .unzip();
    let per = (g.c * g.hw).max(1);
    let kernel = if p.relu { sample_dx_relu } else { sample_dx };
    let dx = filled(x.len(), per, |i, out| {
        let (xs, ds) = (&x[i * per..][..out.len()], &dy[i * per..][..out.len()]);
        kernel(out, xs, ds, &coefs, hw)
    });
    let dgamma = sums.iter().map(|s| s.1 as f32).collect();
    let dbeta = sums.iter().map(|s| s.0 as f32).collect();
    (dx, dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_gradient_matches_finite_differences() {
        let g = BnGeom { n: 3, c: 2, hw: 5 };
        let x: Vec<f32> = (0..30)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.3)
            .collect();
        let (gamma, beta) = (vec![1.5f32, 0.5], vec![0.1f32, -0.2]);
        let (mean, var) = stats(&x, &g);
        let p = BnAffine {
            gamma: &gamma,
            beta: &beta,
            eps: 1e-5,
            relu: false,
        };
        let y = forward_train(&x, &p, (&mean, &var), &g);
        // Each channel of y has mean beta and variance gamma^2 (up to eps).
        let (ym, yv) = stats(&y, &g);
        for c in 0..2 {
            assert!((ym[c] - beta[c]).abs() < 1e-5);
            assert!((yv[c] - gamma[c] * gamma[c]).abs() < 1e-3);
        }
        // Loss L = sum(w * y) for fixed weights w; compare dL/dx with central differences.
        let w: Vec<f32> = (0..30).map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.1).collect();
        let loss = |x: &[f32]| -> f64 {
            let (m, v) = stats(x, &g);
            forward_train(x, &p, (&m, &v), &g)
                .iter()
                .zip(&w)
                .map(|(a, b)| (*a * *b) as f64)
                .sum()
        };
        let (dx, dgamma, dbeta) = backward_train((&x, &w), &p, (&mean, &var), &g);
        for i in [0, 7, 29] {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += 1e-2;
            xm[i] -= 1e-2;
            let fd = (loss(&xp) - loss(&xm)) / 2e-2;
            assert!(
                (fd - dx[i] as f64).abs() < 1e-3,
                "dx[{i}] {fd} vs {}",
                dx[i]
            );
        }
        let dbeta0: f32 = (0..3).flat_map(|n| w[n * 10..n * 10 + 5].to_vec()).sum();
        assert!((dbeta[0] - dbeta0).abs() < 1e-5);
        assert!(dgamma.iter().all(|v| v.is_finite()));
    }

    /// A NaN in the input reaches the output through the fused ReLU, as in PyTorch (the
    /// trainer's non-finite-loss check depends on it), on large and small planes.
    #[test]
    fn nan_passes_the_fused_relu() {
        for hw in [49, 4] {
            let g = BnGeom { n: 3, c: 2, hw };
            let mut x: Vec<f32> = (0..g.n * g.c * hw).map(|i| (i % 5) as f32).collect();
            x[1] = f32::NAN;
            let (gamma, beta) = (vec![1.0f32; 2], vec![0.0f32; 2]);
            let p = BnAffine {
                gamma: &gamma,
                beta: &beta,
                eps: 1e-5,
                relu: true,
            };
            let (y, mean, _) = train_forward(&x, &p, &g);
            assert!(mean[0].is_nan() && mean[1].is_finite(), "{hw}");
            assert!(y[..hw].iter().all(|v| v.is_nan()), "{hw}");
            assert!(y[hw..2 * hw].iter().all(|v| v.is_finite()), "{hw}");
        }
    }

    /// The f32 per-plane kernels against a direct f64 evaluation, on planes that are not a
    /// multiple of the vector width and data with a large mean (cancellation-prone).
    #[test]
    fn matches_an_f64_reference() {
        // Every SIMD copy of the loops (portable, AVX2, AVX-512) that this CPU runs.
        crate::kernels::simd::for_each_level(|_| {
            for &(n, c, hw) in &[
                (4usize, 3usize, 37usize),
                (2, 5, 49),
                (3, 2, 16),
                (1, 1, 1),
                (40, 2, 150),
                // Several reduction tasks; planes longer than one f32 run.
                (9, 8, 1000),
                (3, 2, 5000),
                // Small planes, position by position; more samples than one f32 run.
                (70, 5, 4),
                (130, 3, 1),
                (3, 7, 9),
                (2, 600, 16),
                // Small planes in several tasks of whole channels.
                (40, 300, 16),
            ] {
                let g = BnGeom { n, c, hw };
                let len = n * c * hw;
                let x: Vec<f32> = (0..len)
                    .map(|i| 5.0 + ((i * 7919 % 1009) as f32 / 1009.0 - 0.5) * (1 + i % 3) as f32)
                    .collect();
                let dy: Vec<f32> = (0..len)
                    .map(|i| ((i * 31 % 17) as f32 - 8.0) * 0.1)
                    .collect();
                let gamma: Vec<f32> = (0..c).map(|i| 0.5 + (i % 5) as f32 * 0.25).collect();
                let beta: Vec<f32> = (0..c).map(|i| 0.1 - (i % 7) as f32 * 0.05).collect();
                let p = BnAffine {
                    gamma: &gamma,
                    beta: &beta,
                    eps: 1e-5,
                    relu: false,
                };
                let (mean, var) = stats(&x, &g);
                let y = forward_train(&x, &p, (&mean, &var), &g);
                // The one-call forward gives the same output and statistics.
                let (y1, mean1, var1) = train_forward(&x, &p, &g);
                assert_eq!((&mean1, &var1), (&mean, &var), "{g:?}");
                assert!(
                    y1.iter()
                        .zip(&y)
                        .all(|(a, b)| (a - b).abs() <= 1e-6 * (1.0 + b.abs()))
                );
                let grads = backward_train((&x, &dy), &p, (&mean, &var), &g);
                check_per_channel((&x, &dy), &p, (&mean, &var), (&y, grads), &g);
                check_fused_relu((&x, &dy), &p, (&mean, &var), &y1, &g);
            }
        });
    }

    /// `(dx, dgamma, dbeta)`.
    type Grads = (Vec<f32>, Vec<f32>, Vec<f32>);

    /// Statistics, output and gradients of every channel against float64.
    fn check_per_channel(
        (x, dy): (&[f32], &[f32]),
        p: &BnAffine,
        (mean, var): (&[f32], &[f32]),
        (y, (dx, dgamma, dbeta)): (&[f32], Grads),
        g: &BnGeom,
    ) {
        let cnt = (g.n * g.hw) as f64;
        for ch in 0..g.c {
            let idx: Vec<usize> = (0..g.n).flat_map(|s| g.plane(s, ch)).collect();
            let m = idx.iter().map(|&i| x[i] as f64).sum::<f64>() / cnt;
            let v = idx.iter().map(|&i| (x[i] as f64 - m).powi(2)).sum::<f64>() / cnt;
            assert!((mean[ch] as f64 - m).abs() < 1e-5, "mean {g:?}");
            assert!((var[ch] as f64 - v).abs() < 1e-5, "var {g:?}");
            let inv = 1.0 / (v + 1e-5).sqrt();
            let db: f64 = idx.iter().map(|&i| dy[i] as f64).sum();
            let dg: f64 = idx
                .iter()
                .map(|&i| dy[i] as f64 * (x[i] as f64 - m) * inv)
                .sum();
            assert!((dbeta[ch] as f64 - db).abs() < 1e-4, "dbeta {g:?}");
            assert!((dgamma[ch] as f64 - dg).abs() < 1e-4, "dgamma {g:?}");
            let gamma = p.gamma[ch] as f64;
            for &i in &idx {
                let xhat = (x[i] as f64 - m) * inv;
                let want_y = gamma * xhat + p.beta[ch] as f64;
                assert!((y[i] as f64 - want_y).abs() < 1e-4, "y[{i}] {g:?}");
                let want = gamma * inv / cnt * (cnt * dy[i] as f64 - db - xhat * dg);
                assert!((dx[i] as f64 - want).abs() < 1e-4, "dx[{i}] {g:?}");
            }
        }
    }

    /// With the ReLU fused: the output is `relu(y)`, and the gradients are those of batch
    /// norm alone with `dy` zeroed where the output was not positive.
    fn check_fused_relu(
        (x, dy): (&[f32], &[f32]),
        p: &BnAffine,
        (mean, var): (&[f32], &[f32]),
        y: &[f32],
        g: &BnGeom,
    ) {
        let relu = BnAffine { relu: true, ..*p };
        let (yr, ..) = train_forward(x, &relu, g);
        assert!(
            yr.iter().zip(y).all(|(r, y)| *r == y.max(0.0)),
            "relu {g:?}"
        );
        if yr.len() > 20 {
            assert!(yr.contains(&0.0) && yr.iter().any(|v| *v > 0.0));
        }
        let masked: Vec<f32> = dy
            .iter()
            .zip(&yr)
            .map(|(d, y)| if *y > 0.0 { *d } else { 0.0 })
            .collect();
        let want = backward_train((x, &masked), p, (mean, var), g);
        let got = backward_train((x, dy), &relu, (mean, var), g);
        for (w, g2) in [(&want.0, &got.0), (&want.1, &got.1), (&want.2, &got.2)] {
            assert!(
                w.iter()
                    .zip(g2)
                    .all(|(a, b)| (a - b).abs() <= 1e-5 * (1.0 + a.abs())),
                "relu grads {g:?}"
            );
        }
    }
}
