//! 3x3 convolutions (stride 1, padding 1) on 4x4 maps, any grouping: the forward, the input
//! gradient (the same convolution of the output gradient, with each group's weights
//! transposed and their taps flipped) and the weight gradient (for each input channel and
//! block of output channels, the dot products of the output-gradient planes with the 9
//! shifted input planes, over the samples).
//!
//! Each input plane is laid into three 26-value rows, its 16 values between 5 zeros on either
//! side (the zeros written once per task, the values per sample): as is, with its last column
//! zeroed, with its first column zeroed. The plane a tap reads, shifted by `(kh - 1, kw - 1)`
//! with zeros outside the map, is then the 16 values at `4 kh + kw` of one of them (column
//! `-1` reads the previous row's last column, zeroed in the copy the left taps read, and so
//! on), one unaligned load; each tap's plane meets a broadcast weight per output channel of a
//! register block. `small_map` instead multiplies by a dense matrix
//! per group, 61 % of whose entries are zeros at 4x4.

use super::{PIX, Simd, in_blocks, simd};
use crate::kernels::conv::ConvGeom;

/// Length of a laid-out plane: 5 zeros, 16 values, 5 zeros.
const ROW: usize = 26;

/// Values per laid-out input channel: its three rows.
const LAID: usize = 3 * ROW;

/// Samples per task.
const SAMPLES_PER_TASK: usize = 4;

/// Whether `g` runs here (where the CPU has the kernels).
pub(in crate::kernels) fn applies(g: &ConvGeom) -> bool {
    (g.k, g.s, g.p, g.h, g.w) == (3, 1, 1, 4, 4)
        && g.g > 0
        && g.ci.is_multiple_of(g.g)
        && g.co.is_multiple_of(g.g)
}

/// Forward convolution `y[n, co, 4, 4]` of `x[n, ci, 4, 4]` by `wt[co, ci/g, 3, 3]`;
/// `None` where the CPU has no kernel here.
pub(in crate::kernels) fn forward(x: &[f32], wt: &[f32], g: &ConvGeom) -> Option<Vec<f32>> {
    let simd = simd()?;
    let (cig, cog) = (g.cig(), g.cog());
    // [group][input channel][tap][output channel]
    let wp = pack(
        g,
        |gi, c, t, o| wt[((gi * cog + o) * cig + c) * 9 + t],
        (cig, cog),
    );
    Some(run(simd, x, &wp, (g.n, g.g), (cig, cog)))
}

/// Input gradient `dx[n, ci, 4, 4]` from `dy[n, co, 4, 4]`; `None` where the CPU has no
/// kernel here.
pub(in crate::kernels) fn backward_data(dy: &[f32], wt: &[f32], g: &ConvGeom) -> Option<Vec<f32>> {
    let simd = simd()?;
    let (cig, cog) = (g.cig(), g.cog());
    // The transposed convolution: output channel `o` of a group reads back through the tap
    // opposite to the one it was read through.
    let wp = pack(
        g,
        |gi, o, t, c| wt[((gi * cog + o) * cig + c) * 9 + 8 - t],
        (cog, cig),
    );
    Some(run(simd, dy, &wp, (g.n, g.g), (cog, cig)))
}

/// Samples per step of the weight gradient: their laid-out planes of one input channel
/// (20 KB) stay in L1 while every block of output channels reads them.
const SUB: usize = 64;

/// Weight gradient `dw[co, ci/g, 3, 3]` from `x` and `dy`: one partial sum per thread's
/// share of the samples, added in a fixed order. `None` where the CPU has no kernel here.
pub(in crate::kernels) fn backward_weight(x: &[f32], dy: &[f32], g: &ConvGeom) -> Option<Vec<f32>> {
    use rayon::prelude::*;
    let simd = simd()?;
    let (_, wlen, _) = g.sizes();
    assert!(x.len() >= g.n * g.ci * PIX && dy.len() >= g.n * g.co * PIX);
    let per = g.n.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let partials: Vec<Vec<f32>> = (0..g.n.div_ceil(per))
        .into_par_iter()
        .map(|i| {
            let mut dw = vec![0.0f32; wlen];
            weight_grad(simd, (x, dy), g, i * per..((i + 1) * per).min(g.n), &mut dw);
            dw
        })
        .collect();
    Some(crate::kernels::partials::sum_in_order(partials, wlen))
}

/// Adds the weight gradient of `samples` to `dw`, input channel by input channel.
fn weight_grad(
    simd: Simd,
    (x, dy): (&[f32], &[f32]),
    g: &ConvGeom,
    samples: std::ops::Range<usize>,
    dw: &mut [f32],
) {
    let (cig, cog) = (g.cig(), g.cog());
    let mut laid = vec![0.0f32; SUB * LAID];
    let mut sums = vec![[0.0f32; 9]; cog];
    for n0 in samples.clone().step_by(SUB) {
        let ns = SUB.min(samples.end - n0);
        for gi in 0..g.g {
            let dyg = &dy[(n0 * g.co + gi * cog) * PIX..][..((ns - 1) * g.co + cog) * PIX];
            for c in 0..cig {
                let xc = &x[(n0 * g.ci + gi * cig + c) * PIX..][..((ns - 1) * g.ci + 1) * PIX];
                let (xs, ds) = ((xc, g.ci * PIX), (dyg, g.co * PIX));
                // SAFETY: `simd` names a level the CPU has; `xc` holds a plane of each of
                // `ns` samples and `dyg` `cog` planes of each, at their strides; `laid` has
                // room for `ns` laid-out planes, zeros in place.
                unsafe {
                    match simd {
                        #[cfg(target_arch = "x86_64")]
                        Simd::Avx512 => x86::avx512::channel_grad(xs, ds, ns, &mut laid, &mut sums),
                        #[cfg(target_arch = "x86_64")]
                        Simd::Avx2 => x86::avx2::channel_grad(xs, ds, ns, &mut laid, &mut sums),
                        #[cfg(not(target_arch = "x86_64"))]
                        _ => unreachable!("no kernels off x86"),
                    }
                }
                for (o, taps) in sums.iter().enumerate() {
                    let at = ((gi * cog + o) * cig + c) * 9;
                    for (d, v) in dw[at..at + 9].iter_mut().zip(taps) {
                        *d += v;
                    }
                }
            }
        }
    }
}

/// Weights as `[group][input channel][tap][output channel]`, entry by entry from `at`.
fn pack(
    g: &ConvGeom,
    at: impl Fn(usize, usize, usize, usize) -> f32,
    (cin, cout): (usize, usize),
) -> Vec<f32> {
    let mut wp = Vec::with_capacity(g.g * cin * 9 * cout);
    for gi in 0..g.g {
        for c in 0..cin {
            for t in 0..9 {
                wp.extend((0..cout).map(|o| at(gi, c, t, o)));
            }
        }
    }
    wp
}

/// The convolution of `src` (`[n, groups * cin, 16]`) by packed weights `wp` into a new
/// `[n, groups * cout, 16]`.
fn run(
    simd: Simd,
    src: &[f32],
    wp: &[f32],
    (n, groups): (usize, usize),
    (cin, cout): (usize, usize),
) -> Vec<f32> {
    let (src_len, out_len) = (groups * cin * PIX, groups * cout * PIX);
    assert!(src.len() >= n * src_len && wp.len() >= groups * cin * 9 * cout);
    crate::kernels::fill::written(n * out_len, SAMPLES_PER_TASK * out_len, |i, out| {
        let mut laid = vec![0.0f32; cin * LAID];
        let first = i * SAMPLES_PER_TASK;
        for (s, y) in out.chunks_exact_mut(out_len).enumerate() {
            let x = &src[(first + s) * src_len..][..src_len];
            for gi in 0..groups {
                let xg = &x[gi * cin * PIX..][..cin * PIX];
                let w = &wp[gi * cin * 9 * cout..][..cin * 9 * cout];
                let yg = &mut y[gi * cout * PIX..][..cout * PIX];
                // SAFETY: `simd` names a level the CPU has; `xg` holds `cin` planes, `laid`
                // room for them laid out (its zeros in place), `w` is `cin x 9 x cout`, `yg`
                // holds `cout` planes.
                unsafe {
                    match simd {
                        #[cfg(target_arch = "x86_64")]
                        Simd::Avx512 => x86::avx512::group(xg, &mut laid, w, (cin, cout), yg),
                        #[cfg(target_arch = "x86_64")]
                        Simd::Avx2 => x86::avx2::group(xg, &mut laid, w, (cin, cout), yg),
                        #[cfg(not(target_arch = "x86_64"))]
                        _ => unreachable!("no kernels off x86"),
                    }
                }
            }
        }
    })
}

/// Where tap `t` (`kh * 3 + kw`) reads its shifted plane in a laid-out channel.
#[inline(always)]
fn tap_offset(t: usize) -> usize {
    let (kh, kw) = (t / 3, t % 3);
    // Row 0 for the centre column, 1 for the left, 2 for the right.
    [ROW, 0, 2 * ROW][kw] + 4 * kh + kw
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    /// AVX-512: a plane per register.
    pub(super) mod avx512 {
        use std::arch::x86_64::*;

        use super::super::{LAID, PIX, ROW, in_blocks, tap_offset};

        /// One group of one sample: `cout` output planes from `cin` input planes `x`, laid
        /// out into `laid` first, in register blocks of 16 and 8 output channels.
        ///
        /// # Safety
        /// AVX-512F must be available; `x` holds `cin` planes, `laid` room for them laid out
        /// with the zeros around each row in place, `w` is `cin x 9 x cout`, `y` holds `cout`
        /// planes.
        #[target_feature(enable = "avx512f")]
        pub(crate) unsafe fn group(
            x: &[f32],
            laid: &mut [f32],
            w: &[f32],
            (cin, cout): (usize, usize),
            y: &mut [f32],
        ) {
            assert!(x.len() >= cin * PIX && laid.len() >= cin * LAID);
            assert!(w.len() >= cin * 9 * cout && y.len() >= cout * PIX);
            // SAFETY: as the caller promised.
            unsafe { lay_out(x, (cin, PIX), laid) };
            let (lp, wp, yp) = (laid.as_ptr(), w.as_ptr(), y.as_mut_ptr());
            in_blocks(cout, [16, 8], |o0, no| {
                // SAFETY: outputs o0..o0+no are in bounds (above).
                unsafe {
                    let (wo, yo) = (wp.add(o0), yp.add(o0 * PIX));
                    match no {
                        16 => block::<16>(lp, wo, (cin, cout), yo),
                        8 => block::<8>(lp, wo, (cin, cout), yo),
                        _ => block::<1>(lp, wo, (cin, cout), yo),
                    }
                }
            });
        }

        /// `R` output planes: `y[r] = sum_c sum_t w[c][t][r] * tap_t(laid[c])`.
        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn block<const R: usize>(
            laid: *const f32,
            w: *const f32,
            (cin, cout): (usize, usize),
            y: *mut f32,
        ) {
            let mut acc = [_mm512_setzero_ps(); R];
            for c in 0..cin {
                for t in 0..9 {
                    // SAFETY: in bounds, as the caller checked (a tap's 16 values end by
                    // the end of its laid-out row).
                    unsafe {
                        let v = _mm512_loadu_ps(laid.add(c * LAID + tap_offset(t)));
                        let wt = w.add((c * 9 + t) * cout);
                        for (r, a) in acc.iter_mut().enumerate() {
                            *a = _mm512_fmadd_ps(_mm512_set1_ps(*wt.add(r)), v, *a);
                        }
                    }
                }
            }
            for (r, a) in acc.iter().enumerate() {
                // SAFETY: in bounds, as the caller checked.
                unsafe { _mm512_storeu_ps(y.add(r * PIX), *a) };
            }
        }

        /// Lays out `count` planes of `x`, `stride` apart, into `laid` (see the module docs;
        /// the zeros around each row are left as they are).
        ///
        /// # Safety
        /// AVX-512F must be available.
        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn lay_out(x: &[f32], (count, stride): (usize, usize), laid: &mut [f32]) {
            assert!(laid.len() >= count * LAID);
            assert!(count == 0 || x.len() >= (count - 1) * stride + PIX);
            for (i, rows) in laid.chunks_exact_mut(LAID).take(count).enumerate() {
                // SAFETY: a plane in bounds (above) and its three rows, each written at 5..21
                // of its 26.
                unsafe {
                    let v = _mm512_loadu_ps(x.as_ptr().add(i * stride));
                    let r = rows.as_mut_ptr().add(5);
                    _mm512_storeu_ps(r, v);
                    // Without the last column (lanes 3, 7, 11, 15), without the first.
                    _mm512_storeu_ps(r.add(ROW), _mm512_maskz_mov_ps(0x7777, v));
                    _mm512_storeu_ps(r.add(2 * ROW), _mm512_maskz_mov_ps(0xEEEE, v));
                }
            }
        }

        /// See [`super::super::backward_weight`]: for a block of `R` output channels, the
        /// dot products of their gradient planes with the 9 tap planes of one input channel,
        /// over `ns` samples (`laid` holds the channel of each sample, `dy` the block of each
        /// sample, `stride` apart): `R x 9` accumulators.
        ///
        /// # Safety
        /// AVX-512F must be available, and `laid` and `dy` in bounds for `ns` samples.
        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn tap_dots<const R: usize>(
            laid: *const f32,
            dy: *const f32,
            stride: usize,
            ns: usize,
        ) -> [[f32; 9]; R] {
            let mut acc = [[_mm512_setzero_ps(); 9]; R];
            for s in 0..ns {
                // SAFETY: in bounds, as the caller promised.
                unsafe {
                    let d: [__m512; R] =
                        std::array::from_fn(|r| _mm512_loadu_ps(dy.add(s * stride + r * PIX)));
                    for t in 0..9 {
                        let v = _mm512_loadu_ps(laid.add(s * LAID + tap_offset(t)));
                        for (a, d) in acc.iter_mut().zip(&d) {
                            a[t] = _mm512_fmadd_ps(*d, v, a[t]);
                        }
                    }
                }
            }
            // Loops, not `map`: a closure would not get this function's target features,
            // and its calls were a fifth of the samples.
            let mut out = [[0.0f32; 9]; R];
            for (o, a) in out.iter_mut().zip(&acc) {
                for (o, v) in o.iter_mut().zip(a) {
                    *o = _mm512_reduce_add_ps(*v);
                }
            }
            out
        }

        /// The gradients of one input channel's taps for every output channel of its group,
        /// into `sums` (one per output channel), over `ns` samples of `x` (a plane each) and
        /// `dy` (`sums.len()` planes each), given with their sample strides.
        ///
        /// # Safety
        /// AVX-512F must be available, `x` and `dy` in bounds for `ns` samples and `laid`
        /// room for `ns` laid-out planes, zeros in place.
        #[target_feature(enable = "avx512f")]
        pub(crate) unsafe fn channel_grad(
            (x, xs): (&[f32], usize),
            (dy, ds): (&[f32], usize),
            ns: usize,
            laid: &mut [f32],
            sums: &mut [[f32; 9]],
        ) {
            let cog = sums.len();
            assert!(ns > 0 && dy.len() >= (ns - 1) * ds + cog * PIX);
            // SAFETY: as the caller promised.
            unsafe { lay_out(x, (ns, xs), laid) };
            let (l, d) = (laid.as_ptr(), dy.as_ptr());
            // Blocks of 2: 3 (27 accumulators) spilled to the stack.
            in_blocks(cog, [2, 2], |o0, no| {
                // SAFETY: outputs o0..o0+no of `ns` samples are in bounds (above).
                unsafe {
                    let (d, out) = (d.add(o0 * PIX), &mut sums[o0..o0 + no]);
                    match no {
                        2 => out.copy_from_slice(&tap_dots::<2>(l, d, ds, ns)),
                        _ => out.copy_from_slice(&tap_dots::<1>(l, d, ds, ns)),
                    }
                }
            });
        }
    }

    /// AVX2 + FMA: a plane in two registers, so the blocks are smaller.
    pub(super) mod avx2 {
        use std::arch::x86_64::*;

        use super::super::{LAID, PIX, ROW, in_blocks, tap_offset};
        use crate::kernels::simd::sum8;

        /// See [`super::avx512::group`]: register blocks of 4 and 2 output channels.
        ///
        /// # Safety
        /// AVX2 and FMA must be available; `x` holds `cin` planes, `laid` room for them laid
        /// out with the zeros around each row in place, `w` is `cin x 9 x cout`, `y` holds
        /// `cout` planes.
        #[target_feature(enable = "avx2,fma")]
        pub(crate) unsafe fn group(
            x: &[f32],
            laid: &mut [f32],
            w: &[f32],
            (cin, cout): (usize, usize),
            y: &mut [f32],
        ) {
            assert!(x.len() >= cin * PIX && laid.len() >= cin * LAID);
            assert!(w.len() >= cin * 9 * cout && y.len() >= cout * PIX);
            // SAFETY: as the caller promised.
            unsafe { lay_out(x, (cin, PIX), laid) };
            let (lp, wp, yp) = (laid.as_ptr(), w.as_ptr(), y.as_mut_ptr());
            in_blocks(cout, [4, 2], |o0, no| {
                // SAFETY: outputs o0..o0+no are in bounds (above).
                unsafe {
                    let (wo, yo) = (wp.add(o0), yp.add(o0 * PIX));
                    match no {
                        4 => block::<4>(lp, wo, (cin, cout), yo),
                        2 => block::<2>(lp, wo, (cin, cout), yo),
                        _ => block::<1>(lp, wo, (cin, cout), yo),
                    }
                }
            });
        }

        /// `R` output planes, each in two halves.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn block<const R: usize>(
            laid: *const f32,
            w: *const f32,
            (cin, cout): (usize, usize),
            y: *mut f32,
        ) {
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            for c in 0..cin {
                for t in 0..9 {
                    // SAFETY: in bounds, as the caller checked.
                    unsafe {
                        let src = laid.add(c * LAID + tap_offset(t));
                        let v = [_mm256_loadu_ps(src), _mm256_loadu_ps(src.add(8))];
                        let wt = w.add((c * 9 + t) * cout);
                        for (r, halves) in acc.iter_mut().enumerate() {
                            let b = _mm256_broadcast_ss(&*wt.add(r));
                            for (h, v) in halves.iter_mut().zip(&v) {
                                *h = _mm256_fmadd_ps(b, *v, *h);
                            }
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

        /// See [`super::avx512::lay_out`].
        ///
        /// # Safety
        /// AVX2 must be available.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn lay_out(x: &[f32], (count, stride): (usize, usize), laid: &mut [f32]) {
            assert!(laid.len() >= count * LAID);
            assert!(count == 0 || x.len() >= (count - 1) * stride + PIX);
            for (i, rows) in laid.chunks_exact_mut(LAID).take(count).enumerate() {
                // SAFETY: a plane in bounds (above) and its three rows, each written at 5..21
                // of its 26.
                unsafe {
                    let (p, r) = (x.as_ptr().add(i * stride), rows.as_mut_ptr().add(5));
                    let zero = _mm256_setzero_ps();
                    for h in [0, 8] {
                        let v = _mm256_loadu_ps(p.add(h));
                        _mm256_storeu_ps(r.add(h), v);
                        // Without the last column (lanes 3 and 7 of each half), without the
                        // first (lanes 0 and 4).
                        _mm256_storeu_ps(r.add(ROW + h), _mm256_blend_ps::<0x88>(v, zero));
                        _mm256_storeu_ps(r.add(2 * ROW + h), _mm256_blend_ps::<0x11>(v, zero));
                    }
                }
            }
        }

        /// See [`super::avx512::tap_dots`]: one output channel, both halves of a plane
        /// added into each of its 9 accumulators.
        ///
        /// # Safety
        /// AVX2 and FMA must be available, and `laid` and `dy` in bounds for `ns` samples.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn tap_dots(laid: *const f32, dy: *const f32, stride: usize, ns: usize) -> [f32; 9] {
            let mut acc = [_mm256_setzero_ps(); 9];
            for s in 0..ns {
                for h in [0, 8] {
                    // SAFETY: in bounds, as the caller promised.
                    unsafe {
                        let d = _mm256_loadu_ps(dy.add(s * stride + h));
                        for (t, a) in acc.iter_mut().enumerate() {
                            let v = _mm256_loadu_ps(laid.add(s * LAID + tap_offset(t) + h));
                            *a = _mm256_fmadd_ps(d, v, *a);
                        }
                    }
                }
            }
            // A loop, not `map`: a closure would not get this function's target features
            // (in the AVX-512 kernel its calls were a fifth of the samples).
            let mut out = [0.0f32; 9];
            for (o, a) in out.iter_mut().zip(&acc) {
                *o = sum8(*a);
            }
            out
        }

        /// See [`super::avx512::channel_grad`]: one output channel at a time.
        ///
        /// # Safety
        /// AVX2 and FMA must be available, `x` and `dy` in bounds for `ns` samples and
        /// `laid` room for `ns` laid-out planes, zeros in place.
        #[target_feature(enable = "avx2,fma")]
        pub(crate) unsafe fn channel_grad(
            (x, xs): (&[f32], usize),
            (dy, ds): (&[f32], usize),
            ns: usize,
            laid: &mut [f32],
            sums: &mut [[f32; 9]],
        ) {
            let cog = sums.len();
            assert!(ns > 0 && dy.len() >= (ns - 1) * ds + cog * PIX);
            // SAFETY: as the caller promised.
            unsafe { lay_out(x, (ns, xs), laid) };
            let (l, d) = (laid.as_ptr(), dy.as_ptr());
            for (o, out) in sums.iter_mut().enumerate() {
                // SAFETY: output o of `ns` samples is in bounds (above).
                *out = unsafe { tap_dots(l, d.add(o * PIX), ds, ns) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv::tests::{data, reference};

    /// Forward against the definition, and the gradients as its adjoints, elementwise
    /// (`dx[i] = sum dy . y(e_i, w)`, `dw[i] = sum dy . y(x, e_i)`), on every level with
    /// kernels here, for group sizes that leave every edge block in use and more samples
    /// than one step of the weight gradient takes.
    #[test]
    fn forward_and_gradients_match_their_definitions() {
        crate::kernels::simd::for_each_level(|_| {
            for (n, ci, co, groups) in [
                (1, 1, 1, 1),
                (3, 16, 16, 2),
                (5, 96, 96, 12),
                (2, 6, 27, 3),
                (6, 32, 48, 2),
                (150, 4, 4, 1),
            ] {
                let g = ConvGeom {
                    n,
                    ci,
                    co,
                    h: 4,
                    w: 4,
                    k: 3,
                    s: 1,
                    p: 1,
                    g: groups,
                };
                assert!(applies(&g));
                let (xl, wl, yl) = g.sizes();
                let (x, wt, dy) = (data(xl, 1), data(wl, 2), data(yl, 3));
                let Some(y) = forward(&x, &wt, &g) else {
                    assert!(simd().is_none());
                    assert!(backward_data(&dy, &wt, &g).is_none());
                    assert!(backward_weight(&x, &dy, &g).is_none());
                    continue;
                };
                for (i, (a, b)) in y.iter().zip(reference(&x, &wt, &g)).enumerate() {
                    assert!((*a as f64 - b).abs() < 1e-4, "{g:?} y[{i}]: {a} vs {b}");
                }
                let dx = backward_data(&dy, &wt, &g).unwrap();
                assert_eq!(dx.len(), xl);
                for i in (0..xl).step_by(7).chain([xl - 1]) {
                    let mut e = vec![0.0f32; xl];
                    e[i] = 1.0;
                    let want: f64 = reference(&e, &wt, &g)
                        .iter()
                        .zip(&dy)
                        .map(|(a, b)| a * *b as f64)
                        .sum();
                    assert!(
                        (dx[i] as f64 - want).abs() < 1e-4,
                        "{g:?} dx[{i}]: {} vs {want}",
                        dx[i]
                    );
                }
                // The weight gradient as the adjoint in the weights: dw[i] = sum dy . y(x, e_i);
                // also all samples in one share (several steps of `SUB`, whatever the number
                // of threads).
                let dw = backward_weight(&x, &dy, &g).unwrap();
                let mut one = vec![0.0f32; wl];
                weight_grad(simd().unwrap(), (&x, &dy), &g, 0..n, &mut one);
                assert_eq!(dw.len(), wl);
                for i in (0..wl).step_by(11).chain([wl - 1]) {
                    let mut e = vec![0.0f32; wl];
                    e[i] = 1.0;
                    let want: f64 = reference(&x, &e, &g)
                        .iter()
                        .zip(&dy)
                        .map(|(a, b)| a * *b as f64)
                        .sum();
                    for got in [dw[i], one[i]] {
                        let err = (got as f64 - want).abs();
                        assert!(err < 1e-3, "{g:?} dw[{i}]: {got} vs {want}");
                    }
                }
            }
        });
    }
}
