//! 1x1 convolutions on 4x4 maps. The forward, `Y_n = W X_n`, and the input gradient,
//! `dX_n = W^T dY_n`, of every sample: register blocks of output channels times samples,
//! each input plane loaded once per block and met by a broadcast of each weight of the
//! block's column. The general path (`conv::pointwise_gathered`) copies runs of samples into
//! `[c][m * 16]`, multiplies with the `gemm` crate and copies the result back.
//!
//! The weight gradient stays there. Register blocks of 6 x 4 lane-wise dot products over
//! the samples, summed across lanes at the end, ran 2x faster than it on one thread with
//! warm caches, but in the training step took 1.15-1.6x its time (the sums across lanes
//! per step of 16-64 samples, and the step's inputs coming from memory).

use super::{PIX, Simd, in_blocks, simd};

/// Samples per task of a product.
const SAMPLES_PER_TASK: usize = 8;

/// `out_n[m, 16] = A[m, k] * in_n[k, 16]` for every sample of `input` (`[n, k, 16]`), `A`
/// read from `wt` with row stride `rs` and column stride `cs`; `None` where the CPU has no
/// kernel here.
pub(in crate::kernels) fn product(
    input: &[f32],
    (wt, rs, cs): (&[f32], usize, usize),
    (n, k, m): (usize, usize, usize),
) -> Option<Vec<f32>> {
    let simd = simd()?;
    assert!(input.len() >= n * k * PIX);
    // A column by column: the `m` weights that one input plane meets, side by side.
    let mut ap = vec![0.0f32; k * m];
    for (c, col) in ap.chunks_exact_mut(m.max(1)).enumerate() {
        for (r, a) in col.iter_mut().enumerate() {
            *a = wt[r * rs + c * cs];
        }
    }
    let per = SAMPLES_PER_TASK * m * PIX;
    Some(crate::kernels::fill::written(n * m * PIX, per, |i, y| {
        let nc = y.len() / (m * PIX);
        let x = &input[i * SAMPLES_PER_TASK * k * PIX..][..nc * k * PIX];
        // SAFETY: `simd` names a level the CPU has; `x` holds the `nc` samples' `k` planes,
        // `ap` is `k x m`, `y` the `nc` samples' `m` planes.
        unsafe {
            match simd {
                #[cfg(target_arch = "x86_64")]
                Simd::Avx512 => x86::avx512::product(x, &ap, (k, m), y),
                #[cfg(target_arch = "x86_64")]
                Simd::Avx2 => x86::avx2::product(x, &ap, (k, m), y),
                #[cfg(not(target_arch = "x86_64"))]
                _ => unreachable!("no kernels off x86"),
            }
        }
    }))
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    /// AVX-512: 32 registers of one plane each.
    pub(super) mod avx512 {
        use std::arch::x86_64::*;

        use super::super::{PIX, in_blocks};

        /// See [`super::super::product`]: blocks of 12 channels x 2 samples (24
        /// accumulators), then smaller ones at the edges.
        ///
        /// # Safety
        /// AVX-512F must be available; `x` holds `n` samples' `k` planes, `ap` is `k x m`,
        /// `y` holds `n` samples' `m` planes.
        #[target_feature(enable = "avx512f")]
        pub(crate) unsafe fn product(x: &[f32], ap: &[f32], (k, m): (usize, usize), y: &mut [f32]) {
            let n = y.len() / (m * PIX).max(1);
            assert!(x.len() >= n * k * PIX && ap.len() >= k * m);
            let (xp, app, yp) = (x.as_ptr(), ap.as_ptr(), y.as_mut_ptr());
            in_blocks(n, [2, 2], |s0, ns| {
                in_blocks(m, [12, 4], |r0, nr| {
                    // SAFETY: samples s0..s0+ns and rows r0..r0+nr are in bounds (above).
                    unsafe {
                        let (xs, a, ys) = (
                            xp.add(s0 * k * PIX),
                            app.add(r0),
                            yp.add((s0 * m + r0) * PIX),
                        );
                        match (ns, nr) {
                            (2, 12) => block::<12, 2>(xs, a, (k, m), ys),
                            (2, 4) => block::<4, 2>(xs, a, (k, m), ys),
                            (2, _) => block::<1, 2>(xs, a, (k, m), ys),
                            (_, 12) => block::<12, 1>(xs, a, (k, m), ys),
                            (_, 4) => block::<4, 1>(xs, a, (k, m), ys),
                            _ => block::<1, 1>(xs, a, (k, m), ys),
                        }
                    }
                });
            });
        }

        /// `R` output planes of `S` samples: `y[s][r] = sum_c a[c][r] * x[s][c]`.
        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn block<const R: usize, const S: usize>(
            x: *const f32,
            a: *const f32,
            (k, m): (usize, usize),
            y: *mut f32,
        ) {
            // acc[r][s]: output channel r of sample s.
            let mut acc = [[_mm512_setzero_ps(); S]; R];
            for c in 0..k {
                // SAFETY: in bounds, as the caller checked.
                unsafe {
                    let v: [__m512; S] =
                        std::array::from_fn(|s| _mm512_loadu_ps(x.add((s * k + c) * PIX)));
                    let w = a.add(c * m);
                    for (r, samples) in acc.iter_mut().enumerate() {
                        let b = _mm512_set1_ps(*w.add(r));
                        for (a, v) in samples.iter_mut().zip(&v) {
                            *a = _mm512_fmadd_ps(b, *v, *a);
                        }
                    }
                }
            }
            for (r, samples) in acc.iter().enumerate() {
                for (s, p) in samples.iter().enumerate() {
                    // SAFETY: in bounds, as the caller checked.
                    unsafe { _mm512_storeu_ps(y.add((s * m + r) * PIX), *p) };
                }
            }
        }
    }

    /// AVX2 + FMA: 16 registers of half a plane each, so the blocks are smaller.
    pub(super) mod avx2 {
        use std::arch::x86_64::*;

        use super::super::{PIX, in_blocks};

        /// See [`super::super::product`]: blocks of 6 channels x 1 sample (12 accumulators).
        ///
        /// # Safety
        /// AVX2 and FMA must be available; `x` holds `n` samples' `k` planes, `ap` is
        /// `k x m`, `y` holds `n` samples' `m` planes.
        #[target_feature(enable = "avx2,fma")]
        pub(crate) unsafe fn product(x: &[f32], ap: &[f32], (k, m): (usize, usize), y: &mut [f32]) {
            let n = y.len() / (m * PIX).max(1);
            assert!(x.len() >= n * k * PIX && ap.len() >= k * m);
            let (xp, app, yp) = (x.as_ptr(), ap.as_ptr(), y.as_mut_ptr());
            for s in 0..n {
                in_blocks(m, [6, 3], |r0, nr| {
                    // SAFETY: sample s and rows r0..r0+nr are in bounds (above).
                    unsafe {
                        let (xs, a, ys) =
                            (xp.add(s * k * PIX), app.add(r0), yp.add((s * m + r0) * PIX));
                        match nr {
                            6 => block::<6>(xs, a, (k, m), ys),
                            3 => block::<3>(xs, a, (k, m), ys),
                            _ => block::<1>(xs, a, (k, m), ys),
                        }
                    }
                });
            }
        }

        /// `R` output planes of one sample: `y[r] = sum_c a[c][r] * x[c]`.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn block<const R: usize>(
            x: *const f32,
            a: *const f32,
            (k, m): (usize, usize),
            y: *mut f32,
        ) {
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            for c in 0..k {
                // SAFETY: in bounds, as the caller checked.
                unsafe {
                    let v = [
                        _mm256_loadu_ps(x.add(c * PIX)),
                        _mm256_loadu_ps(x.add(c * PIX + 8)),
                    ];
                    let w = a.add(c * m);
                    for (r, halves) in acc.iter_mut().enumerate() {
                        let b = _mm256_broadcast_ss(&*w.add(r));
                        for (h, v) in halves.iter_mut().zip(&v) {
                            *h = _mm256_fmadd_ps(b, *v, *h);
                        }
                    }
                }
            }
            for (r, halves) in acc.iter().enumerate() {
                // SAFETY: in bounds, as the caller checked.
                unsafe {
                    _mm256_storeu_ps(y.add(r * PIX), halves[0]);
                    _mm256_storeu_ps(y.add(r * PIX + 8), halves[1]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: u64) -> Vec<f32> {
        (0..len as u64)
            .map(|i| ((i * 2654435761 + seed * 97) % 1999) as f32 / 999.5 - 1.0)
            .collect()
    }

    /// Products against their definition in f64, on every SIMD level with kernels here,
    /// for channel and sample counts that leave every edge block in use.
    #[test]
    fn products_match_their_definition() {
        crate::kernels::simd::for_each_level(|_| {
            if simd().is_none() {
                assert!(product(&[0.0; PIX], (&[1.0], 1, 1), (1, 1, 1)).is_none());
                return;
            }
            for (n, k, m) in [(1, 1, 1), (3, 5, 7), (7, 27, 29), (5, 96, 96), (2, 13, 40)] {
                let (x, wt) = (data(n * k * PIX, 1), data(k * m, 2));
                // The forward reads `W[m, k]`, the input gradient `W^T`: both layouts.
                for (rs, cs) in [(k, 1), (1, m)] {
                    let y = product(&x, (&wt, rs, cs), (n, k, m)).unwrap();
                    for s in 0..n {
                        for r in 0..m {
                            for p in 0..PIX {
                                let want: f64 = (0..k)
                                    .map(|c| {
                                        wt[r * rs + c * cs] as f64 * x[(s * k + c) * PIX + p] as f64
                                    })
                                    .sum();
                                let got = y[(s * m + r) * PIX + p] as f64;
                                assert!((got - want).abs() < 1e-4, "{n} {k} {m}: {got} vs {want}");
                            }
                        }
                    }
                }
            }
        });
    }
}
