//! 1x1 convolutions on 4x4 maps. The forward, `Y_n = W X_n`, and the input gradient,
//! `dX_n = W^T dY_n`, of every sample: register blocks of output channels times samples,
//! each input plane loaded once per block and met by a broadcast of each weight of the
//! block's column. The general path (`conv::pointwise_gathered`) copies runs of samples into
//! `[c][m * 16]`, multiplies with the `gemm` crate and copies the result back.
//!
//! The weight gradient, `dW = sum_n dY_n X_n^T`: see [`weight_grad`]. Register blocks of
//! lane-wise dot products over the samples (no transposed copy, sums across lanes at the
//! end) had run 2x faster than the gathered path on one thread with warm caches but took
//! 1.15-1.6x its time in the training step.

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

/// Samples per step of the weight gradient: their transposed input (8 x 16 rows of the
/// channels) and output-gradient planes stay in L1 while every register block reads them.
const GRAD_SAMPLES: usize = 8;

/// `dw[co, ci] += sum_n dY_n[co] . X_n[ci]` over `samples`, for `x` (`[n, ci, 16]`) and
/// `dy` (`[n, co, 16]`); `false` (and `dw` untouched) where the CPU has no kernel here.
/// Each step transposes its samples' input to `[n * 16][ci]` and accumulates outer
/// products: a vector of input channels met by a broadcast output-gradient value per
/// output channel of a register block, so no sums across lanes are left at the end.
pub(in crate::kernels) fn weight_grad(
    x: &[f32],
    dy: &[f32],
    (ci, co): (usize, usize),
    samples: std::ops::Range<usize>,
    dw: &mut [f32],
) -> bool {
    let Some(simd) = simd() else {
        return false;
    };
    assert!(x.len() >= samples.end * ci * PIX && dy.len() >= samples.end * co * PIX);
    assert_eq!(dw.len(), co * ci);
    if ci == 0 || co == 0 {
        return true;
    }
    // Rows of the transposed input and of the sums, padded to whole vectors.
    let row = ci.next_multiple_of(PIX);
    let mut xt = vec![0.0f32; GRAD_SAMPLES * PIX * row];
    let mut sums = vec![0.0f32; co * row];
    for n0 in samples.clone().step_by(GRAD_SAMPLES) {
        let ns = GRAD_SAMPLES.min(samples.end - n0);
        let xs = &x[n0 * ci * PIX..][..ns * ci * PIX];
        for (sample, rows) in xs
            .chunks_exact(ci * PIX)
            .zip(xt.chunks_exact_mut(PIX * row))
        {
            for (c, plane) in sample.chunks_exact(PIX).enumerate() {
                for (p, v) in plane.iter().enumerate() {
                    rows[p * row + c] = *v;
                }
            }
        }
        let dys = &dy[n0 * co * PIX..][..ns * co * PIX];
        // SAFETY: `simd` names a level the CPU has; `xt` holds `ns * 16` rows of `row`
        // values, `dys` `ns` samples' `co` planes, `sums` is `co x row`.
        unsafe {
            match simd {
                #[cfg(target_arch = "x86_64")]
                Simd::Avx512 => x86::avx512::outer_sums(&xt, dys, (row, co), ns, &mut sums),
                #[cfg(target_arch = "x86_64")]
                Simd::Avx2 => x86::avx2::outer_sums(&xt, dys, (row, co), ns, &mut sums),
                #[cfg(not(target_arch = "x86_64"))]
                _ => unreachable!("no kernels off x86"),
            }
        }
    }
    for (d, s) in dw
        .chunks_exact_mut(ci.max(1))
        .zip(sums.chunks_exact(row.max(1)))
    {
        for (d, s) in d.iter_mut().zip(s) {
            *d += s;
        }
    }
    true
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

        /// See [`super::super::weight_grad`]: `sums[o][c] += sum_k dy[o][k] * xt[k][c]`
        /// over the `ns * 16` rows `k` of `xt`, in register blocks of 12 output channels x
        /// 2 vectors of input channels (24 accumulators).
        ///
        /// # Safety
        /// AVX-512F must be available; `xt` holds `ns * 16` rows of `row` values (a multiple
        /// of 16), `dy` `ns` samples' `co` planes, `sums` is `co x row`.
        #[target_feature(enable = "avx512f")]
        pub(crate) unsafe fn outer_sums(
            xt: &[f32],
            dy: &[f32],
            (row, co): (usize, usize),
            ns: usize,
            sums: &mut [f32],
        ) {
            assert!(row % PIX == 0 && xt.len() >= ns * PIX * row);
            assert!(dy.len() >= ns * co * PIX && sums.len() >= co * row);
            let (xp, dp, sp) = (xt.as_ptr(), dy.as_ptr(), sums.as_mut_ptr());
            in_blocks(row / PIX, [2, 2], |v0, nv| {
                in_blocks(co, [12, 4], |o0, no| {
                    // SAFETY: vectors v0..v0+nv of every row and outputs o0..o0+no are in
                    // bounds (above).
                    unsafe {
                        let (x, d, s) = (
                            xp.add(v0 * PIX),
                            dp.add(o0 * PIX),
                            sp.add(o0 * row + v0 * PIX),
                        );
                        let dims = (row, co, ns);
                        match (no, nv) {
                            (12, 2) => outer::<12, 2>(x, d, dims, s),
                            (4, 2) => outer::<4, 2>(x, d, dims, s),
                            (_, 2) => outer::<1, 2>(x, d, dims, s),
                            (12, _) => outer::<12, 1>(x, d, dims, s),
                            (4, _) => outer::<4, 1>(x, d, dims, s),
                            _ => outer::<1, 1>(x, d, dims, s),
                        }
                    }
                });
            });
        }

        /// `s[o][v] += sum_k d[o][k] * x[k][v]` for `R` outputs and `V` vectors.
        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn outer<const R: usize, const V: usize>(
            x: *const f32,
            d: *const f32,
            (row, co, ns): (usize, usize, usize),
            s: *mut f32,
        ) {
            // SAFETY (every block below): in bounds, as the caller checked.
            let mut acc: [[__m512; V]; R] = std::array::from_fn(|o| {
                std::array::from_fn(|v| unsafe { _mm512_loadu_ps(s.add(o * row + v * PIX)) })
            });
            for n in 0..ns {
                for p in 0..PIX {
                    unsafe {
                        let xr = x.add((n * PIX + p) * row);
                        let xv: [__m512; V] =
                            std::array::from_fn(|v| _mm512_loadu_ps(xr.add(v * PIX)));
                        let dn = d.add(n * co * PIX + p);
                        for (o, a) in acc.iter_mut().enumerate() {
                            let b = _mm512_set1_ps(*dn.add(o * PIX));
                            for (a, xv) in a.iter_mut().zip(&xv) {
                                *a = _mm512_fmadd_ps(b, *xv, *a);
                            }
                        }
                    }
                }
            }
            for (o, a) in acc.iter().enumerate() {
                for (v, a) in a.iter().enumerate() {
                    unsafe { _mm512_storeu_ps(s.add(o * row + v * PIX), *a) };
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

        /// See [`super::avx512::outer_sums`]: register blocks of 6 output channels x 16
        /// input channels (12 accumulators).
        ///
        /// # Safety
        /// AVX2 and FMA must be available; `xt` holds `ns * 16` rows of `row` values (a
        /// multiple of 16), `dy` `ns` samples' `co` planes, `sums` is `co x row`.
        #[target_feature(enable = "avx2,fma")]
        pub(crate) unsafe fn outer_sums(
            xt: &[f32],
            dy: &[f32],
            (row, co): (usize, usize),
            ns: usize,
            sums: &mut [f32],
        ) {
            assert!(row % PIX == 0 && xt.len() >= ns * PIX * row);
            assert!(dy.len() >= ns * co * PIX && sums.len() >= co * row);
            let (xp, dp, sp) = (xt.as_ptr(), dy.as_ptr(), sums.as_mut_ptr());
            for v0 in 0..row / PIX {
                in_blocks(co, [6, 3], |o0, no| {
                    // SAFETY: vector v0 of every row and outputs o0..o0+no are in bounds.
                    unsafe {
                        let (x, d, s) = (
                            xp.add(v0 * PIX),
                            dp.add(o0 * PIX),
                            sp.add(o0 * row + v0 * PIX),
                        );
                        let dims = (row, co, ns);
                        match no {
                            6 => outer::<6>(x, d, dims, s),
                            3 => outer::<3>(x, d, dims, s),
                            _ => outer::<1>(x, d, dims, s),
                        }
                    }
                });
            }
        }

        /// `s[o][0..16] += sum_k d[o][k] * x[k][0..16]` for `R` outputs.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn outer<const R: usize>(
            x: *const f32,
            d: *const f32,
            (row, co, ns): (usize, usize, usize),
            s: *mut f32,
        ) {
            // SAFETY (every block below): in bounds, as the caller checked.
            let mut acc: [[__m256; 2]; R] = std::array::from_fn(|o| {
                std::array::from_fn(|h| unsafe { _mm256_loadu_ps(s.add(o * row + h * 8)) })
            });
            for n in 0..ns {
                for p in 0..PIX {
                    unsafe {
                        let xr = x.add((n * PIX + p) * row);
                        let xv = [_mm256_loadu_ps(xr), _mm256_loadu_ps(xr.add(8))];
                        let dn = d.add(n * co * PIX + p);
                        for (o, a) in acc.iter_mut().enumerate() {
                            let b = _mm256_broadcast_ss(&*dn.add(o * PIX));
                            for (a, xv) in a.iter_mut().zip(&xv) {
                                *a = _mm256_fmadd_ps(b, *xv, *a);
                            }
                        }
                    }
                }
            }
            for (o, a) in acc.iter().enumerate() {
                for (h, a) in a.iter().enumerate() {
                    unsafe { _mm256_storeu_ps(s.add(o * row + h * 8), *a) };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv::tests::data;

    /// Products and weight gradients against their definitions in f64, on every SIMD level
    /// with kernels here, for channel and sample counts that leave every edge block in use
    /// (and, for the weight gradient, part of a step of samples).
    #[test]
    fn products_and_weight_gradients_match_their_definitions() {
        crate::kernels::simd::for_each_level(|_| {
            if simd().is_none() {
                assert!(product(&[0.0; PIX], (&[1.0], 1, 1), (1, 1, 1)).is_none());
                let x = [0.0; PIX];
                assert!(!weight_grad(&x, &x, (1, 1), 0..1, &mut [0.0]));
                return;
            }
            for (n, k, m) in [
                (1, 1, 1),
                (3, 5, 7),
                (7, 27, 29),
                (5, 96, 96),
                (2, 13, 40),
                (9, 13, 29),
            ] {
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
            for (n, ci, co) in [
                (1, 1, 1),
                (3, 5, 7),
                (11, 27, 29),
                (20, 96, 40),
                (9, 13, 29),
                (2, 0, 3),
            ] {
                let (x, dy) = (data(n * ci * PIX, 3), data(n * co * PIX, 4));
                let start = n / 4;
                let mut dw = data(co * ci, 5);
                let before = dw.clone();
                assert!(weight_grad(&x, &dy, (ci, co), start..n, &mut dw));
                for a in 0..co {
                    for b in 0..ci {
                        let want: f64 = before[a * ci + b] as f64
                            + (start..n)
                                .flat_map(|s| (0..PIX).map(move |p| (s, p)))
                                .map(|(s, p)| {
                                    dy[(s * co + a) * PIX + p] as f64
                                        * x[(s * ci + b) * PIX + p] as f64
                                })
                                .sum::<f64>();
                        let got = dw[a * ci + b] as f64;
                        assert!(
                            (got - want).abs() < 1e-3,
                            "{n} {ci} {co} [{a},{b}]: {got} vs {want}"
                        );
                    }
                }
            }
        });
    }
}
