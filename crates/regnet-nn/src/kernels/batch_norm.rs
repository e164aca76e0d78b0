//! Batch normalisation kernels on f32 NCHW slices, per channel in parallel. burn's batch
//! norm goes through generic reductions and broadcasts that copy the activations several
//! times.
//!
//! The reductions run channel by channel over all samples' planes at once (RegNet's planes
//! are 4x4 to 28x28: per-plane calls cost more than the sums), with f32 partial sums in
//! [`LANES`] accumulators flushed into f64 every few thousand values; the elementwise loops
//! run sample by sample. All are compiled for AVX2 too and picked at run time.

use rayon::prelude::*;

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
const FLUSH: usize = 4096;

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

multiversioned! {
    /// `(sum dy, sum dy * (x - m))` over one channel.
    fn channel_grad_sums(x: Channel, dy: Channel, m: f32) -> (f64, f64) {
        (
            channel_sum(dy, dy, |d, _| d),
            channel_sum(x, dy, |v, d| d * (v - m)),
        )
    }
}

multiversioned! {
    /// `out = x * a[c] + b[c]` for one sample (`c` planes of `hw`).
    fn sample_affine(out: &mut [f32], x: &[f32], a: &[f32], b: &[f32], hw: usize) {
        for (c, (o, v)) in out.chunks_exact_mut(hw).zip(x.chunks_exact(hw)).enumerate() {
            let (a, b) = (a[c], b[c]);
            for (o, v) in o.iter_mut().zip(v) {
                *o = *v * a + b;
            }
        }
    }
}

multiversioned! {
    /// `out = k * dy + q * (x - m) + r` per channel of one sample: the input gradient.
    fn sample_dx(out: &mut [f32], x: &[f32], dy: &[f32], coefs: &[[f32; 4]], hw: usize) {
        let planes = out.chunks_exact_mut(hw).zip(x.chunks_exact(hw)).zip(dy.chunks_exact(hw));
        for (((o, xp), dp), &[k, q, m, r]) in planes.zip(coefs) {
            for ((o, xv), dv) in o.iter_mut().zip(xp).zip(dp) {
                *o = k * *dv + q * (*xv - m) + r;
            }
        }
    }
}

/// Per-channel mean and biased variance.
pub fn stats(x: &[f32], g: &BnGeom) -> (Vec<f32>, Vec<f32>) {
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
    let mut y = vec![0.0f32; x.len()];
    let per = (g.c * g.hw).max(1);
    y.par_chunks_mut(per)
        .zip(x.par_chunks(per))
        .for_each(|(out, xs)| sample_affine(out, xs, scale, shift, g.hw.max(1)));
    y
}

/// Training-mode output: normalise with the batch statistics.
pub fn forward_train(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f64,
    g: &BnGeom,
) -> Vec<f32> {
    let (scale, shift): (Vec<f32>, Vec<f32>) = (0..g.c)
        .map(|c| {
            let inv = 1.0 / (var[c] as f64 + eps).sqrt();
            let a = gamma[c] as f64 * inv;
            (a as f32, (beta[c] as f64 - mean[c] as f64 * a) as f32)
        })
        .unzip();
    affine(x, &scale, &shift, g)
}

/// Gradients `(dx, dgamma, dbeta)` of training-mode batch norm.
#[allow(clippy::too_many_arguments)]
pub fn backward_train(
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f64,
    g: &BnGeom,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let count = (g.n * g.hw) as f64;
    // Per channel: dbeta = sum dy, dgamma = sum dy * xhat = inv * sum dy * (x - mean).
    let sums: Vec<(f64, f64)> = (0..g.c)
        .into_par_iter()
        .map(|c| {
            let (xc, dc) = (
                Channel { data: x, g: *g, c },
                Channel { data: dy, g: *g, c },
            );
            let (db, dxm) = channel_grad_sums(xc, dc, mean[c]);
            (db, dxm / (var[c] as f64 + eps).sqrt())
        })
        .collect();
    // dx = gamma * inv / N * (N * dy - dbeta - xhat * dgamma)
    //    = k * dy + q * (x - mean) + r, k = gamma * inv, q = -k * inv * dgamma / N,
    //      r = -k * dbeta / N.
    let coefs: Vec<[f32; 4]> = (0..g.c)
        .map(|c| {
            let inv = 1.0 / (var[c] as f64 + eps).sqrt();
            let k = gamma[c] as f64 * inv;
            let (db, dg) = sums[c];
            let q = -k * inv * dg / count;
            [k as f32, q as f32, mean[c], (-k * db / count) as f32]
        })
        .collect();
    let mut dx = vec![0.0f32; x.len()];
    let per = (g.c * g.hw).max(1);
    dx.par_chunks_mut(per)
        .zip(x.par_chunks(per).zip(dy.par_chunks(per)))
        .for_each(|(out, (xs, ds))| sample_dx(out, xs, ds, &coefs, g.hw.max(1)));
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
        let y = forward_train(&x, &gamma, &beta, &mean, &var, 1e-5, &g);
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
            forward_train(x, &gamma, &beta, &m, &v, 1e-5, &g)
                .iter()
                .zip(&w)
                .map(|(a, b)| (*a * *b) as f64)
                .sum()
        };
        let (dx, dgamma, dbeta) = backward_train(&x, &w, &gamma, &mean, &var, 1e-5, &g);
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
            ] {
                let g = BnGeom { n, c, hw };
                let len = n * c * hw;
                let x: Vec<f32> = (0..len)
                    .map(|i| 5.0 + ((i * 7919 % 1009) as f32 / 1009.0 - 0.5) * (1 + i % 3) as f32)
                    .collect();
                let dy: Vec<f32> = (0..len)
                    .map(|i| ((i * 31 % 17) as f32 - 8.0) * 0.1)
                    .collect();
                let gamma: Vec<f32> = (0..c).map(|i| 0.5 + i as f32 * 0.25).collect();
                let (mean, var) = stats(&x, &g);
                let cnt = (n * hw) as f64;
                let (dx, dgamma, dbeta) = backward_train(&x, &dy, &gamma, &mean, &var, 1e-5, &g);
                for ch in 0..c {
                    let idx: Vec<usize> = (0..n).flat_map(|s| g.plane(s, ch)).collect();
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
                    for &i in &idx {
                        let xhat = (x[i] as f64 - m) * inv;
                        let want =
                            gamma[ch] as f64 * inv / cnt * (cnt * dy[i] as f64 - db - xhat * dg);
                        assert!((dx[i] as f64 - want).abs() < 1e-4, "dx[{i}] {g:?}");
                    }
                }
            }
        });
    }
}
