//! An AVX2 kernel for the batch-norm backward's two sums (behind a ReLU or not).
//!
//! The portable loop ([`super::batch_norm`]'s `add_sample_sums`) keeps two sums per lane
//! (and masks `dy` with the ReLU); for AVX2 LLVM emitted mostly scalar code for it: in `perf`
//! of the default model's training step with `REGNET_SIMD=avx2` the ReLU version took 10.9 %
//! of the samples against 4.5 % with AVX-512. Written with AVX2 intrinsics it is faster than
//! LLVM's AVX-512 code as well (`examples/bn_bench.rs`, [128, 16, 28, 28], whole backward:
//! 0.36 -> 0.18 ms with the ReLU, 0.26 -> 0.18 ms without, on an AVX-512 machine), so it
//! runs wherever AVX2 does.

use std::arch::x86_64::*;

use super::batch_norm::FLUSH;
use super::simd::sum8;

/// `acc[c] += (sum d, sum d (x - m))` over every sample's plane of channel `c`, where
/// `mab[c] = [m, a, b]` and `d = dy`, or with `RELU`, `d = dy` if `x a + b > 0` else 0.
/// `x` and `dy` hold whole samples of `acc.len()` planes of `hw` values.
///
/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn grad_sums<const RELU: bool>(
    x: &[f32],
    dy: &[f32],
    hw: usize,
    mab: &[[f32; 3]],
    acc: &mut [[f64; 2]],
) {
    let per = acc.len() * hw;
    if per == 0 {
        return;
    }
    for (xn, yn) in x.chunks_exact(per).zip(dy.chunks_exact(per)) {
        let planes = xn.chunks_exact(hw).zip(yn.chunks_exact(hw));
        for ((xp, yp), (a, &p)) in planes.zip(acc.iter_mut().zip(mab)) {
            for (xr, yr) in xp.chunks(FLUSH).zip(yp.chunks(FLUSH)) {
                let s = run_sums::<RELU>(xr, yr, p);
                a[0] += s[0];
                a[1] += s[1];
            }
        }
    }
}

/// The two sums over one run of at most [`FLUSH`] values, 16 lanes at a time.
#[target_feature(enable = "avx2")]
fn run_sums<const RELU: bool>(x: &[f32], dy: &[f32], [m, a, b]: [f32; 3]) -> [f64; 2] {
    let (vm, va, vb, zero) = (
        _mm256_set1_ps(m),
        _mm256_set1_ps(a),
        _mm256_set1_ps(b),
        _mm256_setzero_ps(),
    );
    let mut s0 = [_mm256_setzero_ps(); 2];
    let mut s1 = [_mm256_setzero_ps(); 2];
    let (xc, yc) = (x.chunks_exact(16), dy.chunks_exact(16));
    let mut tail = [0.0f32; 2];
    for (xv, dv) in xc.remainder().iter().zip(yc.remainder()) {
        let d = if RELU {
            super::batch_norm::relu_grad(*xv, *dv, a, b)
        } else {
            *dv
        };
        tail[0] += d;
        tail[1] += d * (*xv - m);
    }
    for (xs, ds) in xc.zip(yc) {
        for h in 0..2 {
            // SAFETY: `xs` and `ds` hold 16 values, so both halves are in bounds.
            let (xv, dv) = unsafe {
                (
                    _mm256_loadu_ps(xs.as_ptr().add(8 * h)),
                    _mm256_loadu_ps(ds.as_ptr().add(8 * h)),
                )
            };
            let d = if RELU {
                // Multiply, then add, as the forward computed the ReLU's input.
                let pre = _mm256_add_ps(_mm256_mul_ps(xv, va), vb);
                _mm256_and_ps(dv, _mm256_cmp_ps::<_CMP_GT_OQ>(pre, zero))
            } else {
                dv
            };
            s0[h] = _mm256_add_ps(s0[h], d);
            s1[h] = _mm256_add_ps(s1[h], _mm256_mul_ps(d, _mm256_sub_ps(xv, vm)));
        }
    }
    [
        (sum8(_mm256_add_ps(s0[0], s0[1])) + tail[0]) as f64,
        (sum8(_mm256_add_ps(s1[0], s1[1])) + tail[1]) as f64,
    ]
}
