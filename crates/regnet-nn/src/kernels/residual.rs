//! The end of a residual block, `relu(a + b)`, and its gradient, as parallel passes.
//!
//! burn's `add` and `relu` are two single-threaded passes on flex (and the ReLU's backward a
//! third): in `perf` of the default model's training step, burn's elementwise operations were
//! about 9 % of the main thread's samples, time in which the other worker had nothing to do.

use std::mem::MaybeUninit;

use super::batch_norm::relu;
use super::fill::filled;
use super::simd::multiversioned;

/// Values per parallel task.
const TASK: usize = 1 << 15;

/// A new vector of `a.len()` values, `fill(out, a, b)` writing each task's span.
fn map2(a: &[f32], b: &[f32], fill: fn(&mut [MaybeUninit<f32>], &[f32], &[f32])) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "operands of one shape");
    filled(a.len(), TASK, |i, out| {
        let span = i * TASK..i * TASK + out.len();
        fill(out, &a[span.clone()], &b[span])
    })
}

multiversioned! {
    /// `out = relu(a + b)`.
    fn add_relu_into(out: &mut [MaybeUninit<f32>], a: &[f32], b: &[f32]) {
        for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
            o.write(relu(*x + *y));
        }
    }
}

multiversioned! {
    /// `out = dz` where `z > 0`, else 0.
    fn relu_grad_into(out: &mut [MaybeUninit<f32>], z: &[f32], dz: &[f32]) {
        for ((o, z), d) in out.iter_mut().zip(z).zip(dz) {
            o.write(if *z > 0.0 { *d } else { 0.0 });
        }
    }
}

/// `relu(a + b)`, elementwise.
pub fn add_relu(a: &[f32], b: &[f32]) -> Vec<f32> {
    map2(a, b, add_relu_into)
}

/// The gradient of [`add_relu`] for either operand, from its output `z` and the output's
/// gradient `dz`.
pub fn relu_grad(z: &[f32], dz: &[f32]) -> Vec<f32> {
    map2(z, dz, relu_grad_into)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::for_each_level;

    #[test]
    fn matches_the_definition_and_keeps_nan() {
        for_each_level(|level| {
            for len in [0, 1, 17, TASK, 3 * TASK + 5] {
                let a: Vec<f32> = (0..len).map(|i| (i % 13) as f32 - 6.0).collect();
                let mut b: Vec<f32> = (0..len).map(|i| (i % 7) as f32 * 0.5 - 1.0).collect();
                if len > 0 {
                    b[len / 2] = f32::NAN;
                }
                let z = add_relu(&a, &b);
                let dz: Vec<f32> = (0..len).map(|i| i as f32).collect();
                let d = relu_grad(&z, &dz);
                for i in 0..len {
                    let s = a[i] + b[i];
                    if s.is_nan() {
                        assert!(z[i].is_nan() && d[i] == 0.0, "{level:?} {len} [{i}]");
                    } else {
                        assert_eq!(z[i], if s < 0.0 { 0.0 } else { s }, "{level:?} {len} [{i}]");
                        assert_eq!(d[i], if s > 0.0 { dz[i] } else { 0.0 }, "{level:?}");
                    }
                }
            }
        });
    }
}
