//! What follows a convolution, fused into it: its activation, the residual add of the block
//! and the activation after the sum. BN is already folded into the weights and bias.

use regnet_core::spec::Activation;

use crate::simd::multiversion;

/// An element-wise activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Act {
    /// `max(x, 0)`.
    Relu,
    /// `x * sigmoid(x)`.
    Silu,
}

impl From<Activation> for Act {
    fn from(a: Activation) -> Self {
        match a {
            Activation::Relu => Act::Relu,
            Activation::Silu => Act::Silu,
        }
    }
}

/// The fused tail of a convolution: `act_after(act(conv + bias) + residual)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Epilogue {
    /// The convolution's own activation.
    pub act: Option<Act>,
    /// Whether a residual is added after `act`.
    pub residual: bool,
    /// Activation after the residual add.
    pub act_after: Option<Act>,
}

/// Applies an optional activation.
#[inline(always)]
pub(crate) fn activate(a: Option<Act>, v: f32) -> f32 {
    match a {
        None => v,
        Some(Act::Relu) => v.max(0.0),
        Some(Act::Silu) => v / (1.0 + exp(-v)),
    }
}

/// `e^x` in plain arithmetic (no libm call), so that loops over it vectorize: Cephes's
/// `expf` reduction `x = n ln2 + r` and degree-7 polynomial, within 2 ulp of `f32::exp`
/// on [-87, 88] (clamped outside, where SiLU and sigmoid saturate anyway).
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let r2 = r * r;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_2e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 0.166_666_65;
    let p = p * r + 0.5;
    let e = p * r2 + r + 1.0;
    // 2^n from the low mantissa bits of t (which hold n, |n| <= 127), without a float to
    // int conversion (Rust's saturating `as` kept the loop scalar).
    let bits = t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23;
    e * f32::from_bits(bits)
}

impl Epilogue {
    /// The finished value of a conv output `v` (bias included) with residual `r` (0 if none).
    #[inline(always)]
    pub(crate) fn finish(self, v: f32, r: f32) -> f32 {
        activate(self.act_after, activate(self.act, v) + r)
    }
}

/// Finishes rows of `bias.len()` channels: `dst = f(dst + bias, residual)` (0 without a
/// residual), one pass while the GEMM tile is in cache.
#[inline(always)]
fn rows(dst: &mut [f32], bias: &[f32], residual: Option<&[f32]>, f: impl Fn(f32, f32) -> f32) {
    let c = bias.len();
    match residual {
        Some(r) => {
            for (d, r) in dst.chunks_exact_mut(c).zip(r.chunks_exact(c)) {
                for ((d, r), b) in d.iter_mut().zip(r).zip(bias) {
                    *d = f(*d + b, *r);
                }
            }
        }
        None => {
            for d in dst.chunks_exact_mut(c) {
                for (d, b) in d.iter_mut().zip(bias) {
                    *d = f(*d + b, 0.0);
                }
            }
        }
    }
}

/// After a GEMM that wrote `dst` (rows of `bias.len()` channels): bias, activation,
/// residual, activation after the sum. The common combinations get their own loops so that
/// they vectorize.
#[inline(always)]
fn finish_rows_imp(dst: &mut [f32], bias: &[f32], residual: Option<&[f32]>, ep: Epilogue) {
    match (ep.act, ep.act_after) {
        (None, None) => rows(dst, bias, residual, |v, r| v + r),
        (Some(Act::Relu), None) => rows(dst, bias, residual, |v, r| v.max(0.0) + r),
        (None, Some(Act::Relu)) => rows(dst, bias, residual, |v, r| (v + r).max(0.0)),
        (Some(Act::Silu), None) => rows(dst, bias, residual, |v, r| v / (1.0 + exp(-v)) + r),
        _ => rows(dst, bias, residual, |v, r| ep.finish(v, r)),
    }
}

multiversion!(
    /// Finishes GEMM output rows, see `finish_rows_imp`.
    pub(crate) fn finish_rows(dst: &mut [f32], bias: &[f32], residual: Option<&[f32]>, ep: Epilogue) => finish_rows_imp
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_a_few_ulp_of_libm() {
        let mut worst = 0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (exp(x), x.exp());
            worst = worst.max(((got - want) / want).abs());
            x += 0.001_7;
        }
        assert!(worst < 4.0 * f32::EPSILON, "relative error {worst}");
        // Clamped, finite and positive outside the range.
        assert_eq!(exp(-1000.0), exp(-87.0));
        assert_eq!(exp(1000.0), exp(88.0));
        assert!(exp(88.0).is_finite() && exp(f32::NEG_INFINITY) > 0.0);
    }
}
