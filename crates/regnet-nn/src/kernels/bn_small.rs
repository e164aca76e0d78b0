//! Batch-norm kernels for small planes (at most [`MAX_HW`] pixels: RegNet's later stages on
//! CIFAR-sized inputs run at 4x4 and 2x2), position by position.
//!
//! Walked plane by plane, as [`super::batch_norm`] does, a 4-pixel plane is a fraction of one
//! vector and the loops run scalar: a [64, 384, 2, 2] training forward took 0.14 ms and its
//! backward 0.135 ms (`REGNET_OPPROF` timings of a RegNetX-400MF CIFAR step), about 3 GB/s.
//! Here a sample's `c * hw` values are one flat vector: the sums accumulate per position
//! (`acc[c * hw + p]`, vertical adds across samples) and fold into channels at the end, and
//! the elementwise passes use the per-channel coefficients repeated per position.

use std::mem::MaybeUninit;
use std::ops::Range;

use rayon::prelude::*;

use super::batch_norm::{BnAffine, BnGeom, relu, relu_grad};
use super::fill::filled;
use super::shared::SharedOut;
use super::simd::multiversioned;

/// Planes of at most this many pixels run here.
pub(super) const MAX_HW: usize = 16;

/// Samples summed in f32 per position before the sums are added into the f64 totals.
const FLUSH_SAMPLES: usize = 64;

/// Values per reduction task at most (whole channels, every sample; at least one channel,
/// whatever its size). A channel's sums run
/// inside one task, sample by sample, so how channels are grouped into tasks does not change
/// them: the results are the same on every machine.
const TASK_VALUES: usize = 1 << 16;

/// Each value of `v` repeated `hw` times: per-channel coefficients per position.
fn expand(v: &[f32], hw: usize) -> Vec<f32> {
    v.iter().flat_map(|&a| std::iter::repeat_n(a, hw)).collect()
}

multiversioned! {
    /// `sum += x - s`, `squares += (x - s)^2`.
    fn add_shifted(sum: &mut [f32], squares: &mut [f32], x: &[f32], s: &[f32]) {
        for ((a, b), (v, s)) in sum.iter_mut().zip(squares.iter_mut()).zip(x.iter().zip(s)) {
            let d = *v - *s;
            *a += d;
            *b += d * d;
        }
    }
}

multiversioned! {
    /// `sum_dy += dy`, `sum_dyx += dy * (x - m)`.
    fn add_grad(sum_dy: &mut [f32], sum_dyx: &mut [f32], x: &[f32], dy: &[f32], m: &[f32]) {
        let terms = x.iter().zip(dy).zip(m);
        for ((a, b), ((v, d), m)) in sum_dy.iter_mut().zip(sum_dyx.iter_mut()).zip(terms) {
            *a += *d;
            *b += *d * (*v - *m);
        }
    }
}

multiversioned! {
    /// [`add_grad`] behind a ReLU: `dy` masked where `x * a + b` was not positive;
    /// `mab` holds the per-position `m`, `a` and `b`.
    fn add_grad_relu(sum_dy: &mut [f32], sum_dyx: &mut [f32], x: &[f32], dy: &[f32], mab: [&[f32]; 3]) {
        let [m, a, b] = mab;
        let terms = x.iter().zip(dy).zip(m.iter().zip(a).zip(b));
        for ((s0, s1), ((v, d), ((m, a), b))) in sum_dy.iter_mut().zip(sum_dyx.iter_mut()).zip(terms) {
            let d = relu_grad(*v, *d, *a, *b);
            *s0 += d;
            *s1 += d * (*v - *m);
        }
    }
}

/// Tasks of whole channels, every sample: `f(channels)` for each, results in channel order.
/// Each channel lies in one task, so the sums do not depend on the tasks.
fn per_task<T: Send>(g: &BnGeom, f: impl Fn(Range<usize>) -> Vec<T> + Sync) -> Vec<T> {
    // Tasks the threads share evenly: 3 tasks of 32 channels on 2 threads left one idle
    // for a third of the call. Mean time per call over a 100-step `regnet time` (a temporary
    // timer around the kernels), balanced vs not: RegNetX-400MF CIFAR's 160 channels at 4x4,
    // backward 0.095 vs 0.14-0.16 ms, 384 at 2x2 0.061 vs 0.074; the default model's 96 at
    // 4x4, forward 0.069-0.075 vs 0.089-0.133.
    let per_task = super::split::even_task_size(g.c, TASK_VALUES / (g.n * g.hw).max(1));
    let tasks: Vec<Range<usize>> = (0..g.c)
        .step_by(per_task)
        .map(|c0| c0..(c0 + per_task).min(g.c))
        .collect();
    tasks.into_par_iter().flat_map_iter(&f).collect()
}

/// Per-channel totals `[f64; 2]` over every sample of the two per-position sums that
/// `add(sample, acc0, acc1)` accumulates for `channels` (f32 per position inside runs of
/// [`FLUSH_SAMPLES`] samples, f64 across runs).
fn channel_sums(
    g: &BnGeom,
    channels: &Range<usize>,
    add: impl Fn(usize, &mut [f32], &mut [f32]),
) -> Vec<[f64; 2]> {
    let (hw, len) = (g.hw, channels.len() * g.hw);
    let mut acc = [vec![0.0f32; len], vec![0.0f32; len]];
    let mut totals = vec![[0.0f64; 2]; channels.len()];
    for n in 0..g.n {
        let [a0, a1] = &mut acc;
        add(n, a0, a1);
        if (n + 1) % FLUSH_SAMPLES == 0 || n + 1 == g.n {
            for (c, t) in totals.iter_mut().enumerate() {
                for (k, a) in acc.iter().enumerate() {
                    t[k] += a[c * hw..][..hw].iter().map(|&v| v as f64).sum::<f64>();
                }
            }
            acc.iter_mut().for_each(|a| a.fill(0.0));
        }
    }
    totals
}

/// Mean and biased variance of `channels`, in one pass: the sums of `x - s` and `(x - s)^2`
/// around a shift `s` per channel (its first value), which keeps the variance's cancellation
/// as small as the spread of the data around that value. (Two passes around the mean cost a
/// third more time: the activations are read from memory, not cache, in a training step.)
fn moments(x: &[f32], g: &BnGeom, channels: &Range<usize>) -> Vec<(f32, f32)> {
    let (per, count) = (g.c * g.hw, (g.n * g.hw) as f64);
    let pos = channels.start * g.hw..channels.end * g.hw;
    let shift: Vec<f32> = channels.clone().map(|c| x[c * g.hw]).collect();
    let sexp = expand(&shift, g.hw);
    let sums = channel_sums(g, channels, |n, a, b| {
        add_shifted(a, b, &x[n * per..][pos.clone()], &sexp)
    });
    sums.iter()
        .zip(&shift)
        .map(|(s, &shift)| {
            let d = s[0] / count;
            let var = (s[1] / count - d * d).max(0.0);
            ((shift as f64 + d) as f32, var as f32)
        })
        .collect()
}

/// Per-channel mean and biased variance.
pub(super) fn stats(x: &[f32], g: &BnGeom) -> (Vec<f32>, Vec<f32>) {
    per_task(g, |channels| moments(x, g, &channels))
        .into_iter()
        .unzip()
}

/// Values `[start, start + len)` behind `base`.
///
/// # Safety
/// They must lie inside the allocation, and no other live reference may overlap them.
unsafe fn span<'a>(
    base: SharedOut<MaybeUninit<f32>>,
    start: usize,
    len: usize,
) -> &'a mut [MaybeUninit<f32>] {
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts_mut(base.0.add(start), len) }
}

/// A vector of every sample's `c * hw` values, which `write(channels, n, out)` fills for the
/// given channels of sample `n` inside the tasks of [`per_task`]; `each(channels)` runs first
/// in each task, its results returned in channel order and passed to `write`.
fn filled_by_channels<T: Send, S: Sync>(
    g: &BnGeom,
    each: impl Fn(&Range<usize>) -> (S, Vec<T>) + Sync,
    write: impl Fn(&S, usize, Range<usize>, &mut [MaybeUninit<f32>]) + Sync,
) -> (Vec<f32>, Vec<T>) {
    let (per, len) = (g.c * g.hw, g.n * g.c * g.hw);
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let base = SharedOut(out.spare_capacity_mut().as_mut_ptr());
    let results = per_task(g, |channels| {
        let (state, results) = each(&channels);
        let pos = channels.start * g.hw..channels.end * g.hw;
        for n in 0..g.n {
            // SAFETY: inside the capacity (n < g.n, pos within one sample); only this task
            // writes positions `pos` of any sample.
            let dst = unsafe { span(base, n * per + pos.start, pos.len()) };
            write(&state, n, pos.clone(), dst);
        }
        results
    });
    // SAFETY: the tasks cover every channel, and `write` wrote every value it was given.
    unsafe { out.set_len(len) };
    (out, results)
}

/// Training-mode forward (and ReLU) in one pass over the tasks: the output, the mean and the
/// biased variance.
pub(super) fn forward_train(x: &[f32], p: &BnAffine, g: &BnGeom) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let per = g.c * g.hw;
    let each = |channels: &Range<usize>| {
        let mv = moments(x, g, channels);
        let (a, b): (Vec<f32>, Vec<f32>) = channels
            .clone()
            .zip(&mv)
            .map(|(c, (m, v))| p.scale_shift(c, *m, *v))
            .unzip();
        ((expand(&a, g.hw), expand(&b, g.hw)), mv)
    };
    let kernel = if p.relu {
        flat_affine_relu
    } else {
        flat_affine
    };
    let write = |(a, b): &(Vec<f32>, Vec<f32>), n: usize, pos: Range<usize>, out: &mut _| {
        kernel(out, &x[n * per..][pos], a, b)
    };
    let (y, mv) = filled_by_channels(g, each, write);
    let (mean, var) = mv.into_iter().unzip();
    (y, mean, var)
}

/// Gradients `(dx, dgamma, dbeta)` of training-mode batch norm (and ReLU), in one pass over
/// the tasks.
pub(super) fn backward_train(
    (x, dy): (&[f32], &[f32]),
    p: &BnAffine,
    (mean, var): (&[f32], &[f32]),
    g: &BnGeom,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let per = g.c * g.hw;
    let count = (g.n * g.hw) as f64;
    let each = |channels: &Range<usize>| {
        let pos = channels.start * g.hw..channels.end * g.hw;
        // Per position: mean, and the forward's scale and shift (for the ReLU's mask).
        let (a, b): (Vec<f32>, Vec<f32>) = channels
            .clone()
            .map(|c| p.scale_shift(c, mean[c], var[c]))
            .unzip();
        let mexp = expand(&mean[channels.clone()], g.hw);
        let (aexp, bexp) = (expand(&a, g.hw), expand(&b, g.hw));
        let sums = channel_sums(g, channels, |n, s0, s1| {
            let (xs, ds) = (&x[n * per..][pos.clone()], &dy[n * per..][pos.clone()]);
            if p.relu {
                add_grad_relu(s0, s1, xs, ds, [&mexp, &aexp, &bexp])
            } else {
                add_grad(s0, s1, xs, ds, &mexp)
            }
        });
        let mut coefs = [const { Vec::new() }; 6];
        let mut grads = Vec::with_capacity(channels.len());
        for (c, s) in channels.clone().zip(&sums) {
            let (k, db_dg) = p.dx_coefs(c, (mean[c], var[c]), count, (s[0], s[1]));
            coefs.iter_mut().zip(k).for_each(|(v, k)| v.push(k));
            grads.push(db_dg);
        }
        (coefs.map(|v| expand(&v, g.hw)), grads)
    };
    let kernel = if p.relu { flat_dx_relu } else { flat_dx };
    let write = |c: &[Vec<f32>; 6], n: usize, pos: Range<usize>, out: &mut _| {
        let (xs, ds) = (&x[n * per..][pos.clone()], &dy[n * per..][pos]);
        kernel(out, xs, ds, [&c[0], &c[1], &c[2], &c[3], &c[4], &c[5]])
    };
    let (dx, grads) = filled_by_channels(g, each, write);
    let dgamma = grads.iter().map(|s| s.1 as f32).collect();
    let dbeta = grads.iter().map(|s| s.0 as f32).collect();
    (dx, dgamma, dbeta)
}

multiversioned! {
    /// `out = x * a + b`, per position.
    fn flat_affine(out: &mut [MaybeUninit<f32>], x: &[f32], a: &[f32], b: &[f32]) {
        for ((o, v), (a, b)) in out.iter_mut().zip(x).zip(a.iter().zip(b)) {
            o.write(*v * *a + *b);
        }
    }
}

multiversioned! {
    /// `out = relu(x * a + b)`, per position.
    fn flat_affine_relu(out: &mut [MaybeUninit<f32>], x: &[f32], a: &[f32], b: &[f32]) {
        for ((o, v), (a, b)) in out.iter_mut().zip(x).zip(a.iter().zip(b)) {
            o.write(relu(*v * *a + *b));
        }
    }
}

multiversioned! {
    /// `out = k * dy + q * (x - m) + r`, per position (`c = [k, q, m, r, a, b]`).
    fn flat_dx(out: &mut [MaybeUninit<f32>], x: &[f32], dy: &[f32], c: [&[f32]; 6]) {
        let [k, q, m, r, _, _] = c;
        let coefs = k.iter().zip(q).zip(m.iter().zip(r));
        for (((o, v), d), ((k, q), (m, r))) in out.iter_mut().zip(x).zip(dy).zip(coefs) {
            o.write(*k * *d + *q * (*v - *m) + *r);
        }
    }
}

multiversioned! {
    /// [`flat_dx`] behind a ReLU: `dy` masked where `x * a + b` was not positive.
    fn flat_dx_relu(out: &mut [MaybeUninit<f32>], x: &[f32], dy: &[f32], c: [&[f32]; 6]) {
        let [k, q, m, r, a, b] = c;
        let coefs = k.iter().zip(q).zip(m.iter().zip(r)).zip(a.iter().zip(b));
        for (((o, v), d), (((k, q), (m, r)), (a, b))) in out.iter_mut().zip(x).zip(dy).zip(coefs) {
            o.write(*k * relu_grad(*v, *d, *a, *b) + *q * (*v - *m) + *r);
        }
    }
}

/// `y = x * scale[c] + shift[c]`, then the ReLU if `relu`, sample by sample.
pub(super) fn affine(
    x: &[f32],
    (scale, shift): (&[f32], &[f32]),
    relu: bool,
    g: &BnGeom,
) -> Vec<f32> {
    let per = (g.c * g.hw).max(1);
    let (a, b) = (expand(scale, g.hw), expand(shift, g.hw));
    let kernel = if relu { flat_affine_relu } else { flat_affine };
    filled(x.len(), per, |i, out| {
        kernel(out, &x[i * per..][..out.len()], &a, &b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| ((i.wrapping_mul(2654435761).wrapping_add(seed) >> 9) % 2001) as f32 / 500.0)
            .collect()
    }

    /// Every output of the forward and backward passes, as bits.
    fn run(x: &[f32], dy: &[f32], p: &BnAffine, g: &BnGeom) -> Vec<u32> {
        let (y, mean, var) = forward_train(x, p, g);
        let (dx, dgamma, dbeta) = backward_train((x, dy), p, (&mean, &var), g);
        [y, mean, var, dx, dgamma, dbeta]
            .iter()
            .flatten()
            .map(|v| v.to_bits())
            .collect()
    }

    /// The channel tasks follow the thread count, but each channel's sums run inside one
    /// task, so the results are the same bits on any number of threads.
    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        // 70 channels of 37 x 9 values: one task of 70 on 1 thread, 24, 24 and 22 on 3.
        let g = BnGeom {
            n: 37,
            c: 70,
            hw: 9,
        };
        let len = g.n * g.c * g.hw;
        let (x, dy) = (data(len, 1), data(len, 2));
        let (gamma, beta) = (data(g.c, 3), data(g.c, 4));
        for relu in [false, true] {
            let p = BnAffine {
                gamma: &gamma,
                beta: &beta,
                eps: 1e-5,
                relu,
            };
            let on = |threads| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("a thread pool");
                pool.install(|| run(&x, &dy, &p, &g))
            };
            assert_eq!(on(1), on(3), "relu {relu}");
        }
    }
}
