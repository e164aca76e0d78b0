//! Batch normalisation kernels on f32 NCHW slices: one pass for the statistics, one for the
//! output, and the exact gradient, per channel in parallel. burn's batch norm goes through
//! generic reductions and broadcasts that copy the activations several times.

use rayon::prelude::*;

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
    fn plane(&self, x: &[f32], n: usize, c: usize) -> std::ops::Range<usize> {
        let _ = x;
        let start = (n * self.c + c) * self.hw;
        start..start + self.hw
    }
}

/// Per-channel mean and biased variance, accumulated in f64.
pub fn stats(x: &[f32], g: &BnGeom) -> (Vec<f32>, Vec<f32>) {
    let count = (g.n * g.hw) as f64;
    (0..g.c)
        .into_par_iter()
        .map(|c| {
            let mut sum = 0.0f64;
            for n in 0..g.n {
                sum += x[g.plane(x, n, c)].iter().map(|&v| v as f64).sum::<f64>();
            }
            let mean = sum / count;
            let mut sq = 0.0f64;
            for n in 0..g.n {
                sq += x[g.plane(x, n, c)]
                    .iter()
                    .map(|&v| (v as f64 - mean).powi(2))
                    .sum::<f64>();
            }
            (mean as f32, (sq / count) as f32)
        })
        .unzip()
}

/// `y = x * scale[c] + shift[c]`.
pub fn affine(x: &[f32], scale: &[f32], shift: &[f32], g: &BnGeom) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    y.par_chunks_mut(g.hw).enumerate().for_each(|(plane, out)| {
        let c = plane % g.c;
        let (a, b) = (scale[c], shift[c]);
        for (o, &v) in out.iter_mut().zip(&x[plane * g.hw..(plane + 1) * g.hw]) {
            *o = v * a + b;
        }
    });
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
    // Per channel: dbeta = sum dy, dgamma = sum dy * xhat.
    let sums: Vec<(f64, f64)> = (0..g.c)
        .into_par_iter()
        .map(|c| {
            let inv = 1.0 / (var[c] as f64 + eps).sqrt();
            let m = mean[c] as f64;
            let (mut db, mut dg) = (0.0f64, 0.0f64);
            for n in 0..g.n {
                let r = g.plane(x, n, c);
                for (&xv, &dv) in x[r.clone()].iter().zip(&dy[r]) {
                    db += dv as f64;
                    dg += dv as f64 * (xv as f64 - m) * inv;
                }
            }
            (db, dg)
        })
        .collect();
    let mut dx = vec![0.0f32; x.len()];
    dx.par_chunks_mut(g.hw)
        .enumerate()
        .for_each(|(plane, out)| {
            let c = plane % g.c;
            let inv = 1.0 / (var[c] as f64 + eps).sqrt();
            let (db, dg) = sums[c];
            // dx = gamma * inv / N * (N * dy - dbeta - xhat * dgamma)
            let k = gamma[c] as f64 * inv;
            let (a, m) = (db / count, mean[c] as f64);
            let b = dg / count;
            let r = plane * g.hw..(plane + 1) * g.hw;
            for ((o, &xv), &dv) in out.iter_mut().zip(&x[r.clone()]).zip(&dy[r]) {
                let xhat = (xv as f64 - m) * inv;
                *o = (k * (dv as f64 - a - xhat * b)) as f32;
            }
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
}
