//! Parallel loops over numbered items whose caller waits for the others' last items by
//! spinning, not by parking.
//!
//! Rayon's `par_iter` ends in a join: a thread that finishes its half before the other
//! polls briefly and then parks on a futex, and the other thread's wake-up call and the
//! scheduler's latency come before the next layer can start. A compiled forward pass is a
//! few hundred such loops of 10 µs to 1 ms. Here the threads claim items one at a time, each
//! from its own range first (by its index in the pool, so the same range in every loop),
//! then from the back of the others' (so a thread slowed by other load does fewer), and the
//! caller, once no item is left to claim, waits for those still running with `spin_loop`
//! and `sched_yield` (which hands the core to a thread that shares it, such as the one it
//! waits for).
//!
//! The home ranges keep a layer's input in the L2 of the thread that wrote it: with one
//! shared counter, the claims fell in whatever order the threads arrived, and about half of
//! each input came from the other core. RegNetX-400MF batch 8, `regnet time ...
//! --forward-only --layers`, 4 rounds alternating (Intel Xeon, 2 cores, 2 MiB L2 each): at
//! AVX2 33.3-34.1 -> 31.8-32.9 ms (the 1x1 384->384 12.1-12.8 -> 11.9-12.3), at AVX-512
//! 22.2-22.6 -> 20.9-21.4; with the busy-half-the-time process below, 44.6-51.2 -> 43.6-44.1.
//!
//! Used for the convolutions' loops (all but a few percent of a forward pass). Measured with
//! `perf stat -e context-switches` around `regnet time ... --forward-only` (10 and 110
//! iterations, the difference): RegNetX-400MF batch 8 switched 16 times per forward
//! through rayon's loops, 1.9 times through these; RegNetY-800MF batch 1 5.3 and 0.3 times.
//! On a quiet machine the times did not move (19.0 vs 19.0 ms, 19.8 vs 19.4, 23.5 vs 20.2);
//! with a competing process busy on one core half the time (a loop running 20 ms, then
//! sleeping 20 ms), RegNetX-400MF took 36.5 ms against 39.1 (means of 8 rounds alternating,
//! faster in 7).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// `f(state, i)` for every `i` in `0..n`, on the current rayon pool's threads, each thread
/// with its own `state` from `init` (made only by threads that claim an item).
pub(crate) fn for_each_init<S>(
    n: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize) + Sync,
) {
    let threads = rayon::current_num_threads().min(n);
    if threads <= 1 {
        let mut s = None;
        for i in 0..n {
            f(s.get_or_insert_with(&init), i);
        }
        return;
    }
    let ranges = Ranges::new(n, threads);
    let left = AtomicUsize::new(n);
    let work = || {
        let mut s = None;
        // The pool's index, not an order of arrival, so that a thread takes the same part
        // of every loop: the rows it wrote in one layer, still in its L2, it reads in the
        // next.
        let home = rayon::current_thread_index().unwrap_or(0) % threads;
        while let Some(i) = ranges.claim(home) {
            // Counted down also when `f` unwinds, so that the caller's wait ends and
            // rayon's scope passes the panic on.
            let _done = CountDown(&left);
            f(s.get_or_insert_with(&init), i);
        }
    };
    rayon::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(|_| work());
        }
        work();
        wait_until_zero(&left);
    });
}

/// `f(i)` for every `i` in `0..n` (see [`for_each_init`]).
pub(crate) fn for_each(n: usize, f: impl Fn(usize) + Sync) {
    for_each_init(n, || (), |_, i| f(i));
}

/// `f(i, chunk)` for the consecutive chunks of `len` values of `out` (the last may be
/// shorter), in parallel: the spans of [`for_each_span`] in one image.
pub(crate) fn for_each_chunk(out: &mut [f32], len: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if !out.is_empty() {
        let img = out.len();
        for_each_span(out, img, len, |_, i, chunk| f(i, chunk));
    }
}

/// `f(b, i, span)` for the spans of `span` values within each image of `img` values of
/// `out` (the last span of an image may be shorter), in parallel (see [`for_each_init`]).
pub(crate) fn for_each_span(
    out: &mut [f32],
    img: usize,
    span: usize,
    f: impl Fn(usize, usize, &mut [f32]) + Sync,
) {
    for_each_span_init(out, img, span, || (), |_, b, i, o| f(b, i, o));
}

/// [`for_each_span`] with a state per thread, as [`for_each_init`].
pub(crate) fn for_each_span_init<S>(
    out: &mut [f32],
    img: usize,
    span: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, usize, &mut [f32]) + Sync,
) {
    assert!(img > 0 && span > 0 && out.len().is_multiple_of(img));
    let per_img = img.div_ceil(span);
    let base = Shared(out.as_mut_ptr());
    for_each_init(out.len() / img * per_img, init, |s, k| {
        let (b, i) = (k / per_img, k % per_img);
        let start = b * img + i * span;
        let len = span.min(img - i * span);
        // SAFETY: every index is claimed once, so the spans handed out are disjoint and
        // inside `out`, which stays mutably borrowed until every item has ended.
        let o = unsafe { std::slice::from_raw_parts_mut(base.at(start), len) };
        f(s, b, i, o);
    });
}

/// Items `0..n` in one contiguous range per thread: a thread claims its own range's items
/// from the front, then, with its own done, other ranges' from the back (a thread slowed by
/// other load does fewer).
struct Ranges {
    /// Per range, its next item (low half) and its end (high half).
    parts: Vec<AtomicU64>,
}

impl Ranges {
    /// `n` items over `threads` ranges. The compiled path's loops have at most one item per
    /// activation value, and `CompiledNet` refuses activations over 2^28 values.
    fn new(n: usize, threads: usize) -> Self {
        let n = u32::try_from(n).expect("at most one item per activation value, < 2^28");
        let t = threads as u64;
        let at = |i: u64| (u64::from(n) * i / t) as u32;
        let parts = (0..t)
            .map(|i| AtomicU64::new(pack(at(i), at(i + 1))))
            .collect();
        Ranges { parts }
    }

    /// The next item for the thread of range `home`, or None once every item is claimed.
    fn claim(&self, home: usize) -> Option<usize> {
        let t = self.parts.len();
        (0..t).find_map(|k| take(&self.parts[(home + k) % t], k == 0))
    }
}

/// The first (`front`) or last item left in `range` (a [`pack`]ed pair), if any.
fn take(range: &AtomicU64, front: bool) -> Option<usize> {
    let mut cur = range.load(Ordering::Relaxed);
    loop {
        let (lo, hi) = (cur as u32, (cur >> 32) as u32);
        if lo >= hi {
            return None;
        }
        let (next, item) = if front {
            (pack(lo + 1, hi), lo)
        } else {
            (pack(lo, hi - 1), hi - 1)
        };
        match range.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Some(item as usize),
            Err(now) => cur = now,
        }
    }
}

/// A range's next item `lo` and end `hi` in one word, so that one compare-and-swap moves
/// either.
fn pack(lo: u32, hi: u32) -> u64 {
    u64::from(lo) | (u64::from(hi) << 32)
}

/// A pointer into a slice that the items of one loop share (each its own part).
struct Shared<T>(*mut T);

// SAFETY: only ever offset to disjoint parts (see `for_each_span_init`).
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    fn at(&self, i: usize) -> *mut T {
        self.0.wrapping_add(i)
    }
}

struct CountDown<'a>(&'a AtomicUsize);

impl Drop for CountDown<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// Polls between `sched_yield`s while waiting.
const SPINS_PER_YIELD: u32 = 64;

/// Returns once `left` is zero: the items other threads were running have ended.
fn wait_until_zero(left: &AtomicUsize) {
    let mut spins = 0u32;
    while left.load(Ordering::Acquire) > 0 {
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(SPINS_PER_YIELD) {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool")
    }

    /// Every item runs exactly once, on any number of threads, nested loops included.
    #[test]
    fn every_item_runs_once() {
        for threads in [1, 2, 3] {
            pool(threads).install(|| {
                for n in [0, 1, 2, 7, 100] {
                    let hits: Vec<AtomicUsize> = (0..n * 3).map(|_| AtomicUsize::new(0)).collect();
                    for_each(n, |i| {
                        for_each(3, |j| {
                            hits[i * 3 + j].fetch_add(1, Ordering::Relaxed);
                        })
                    });
                    assert!(
                        hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                        "{threads} {n}"
                    );
                }
            });
        }
    }

    /// The chunks cover the slice in order, the last one shorter; spans do so within each
    /// image, numbered by image and position.
    #[test]
    fn chunks_and_spans_cover_the_slice() {
        pool(3).install(|| {
            let mut v = vec![0.0f32; 103];
            for_each_chunk(&mut v, 10, |i, c| {
                assert!(c.len() == 10 || (i == 10 && c.len() == 3));
                c.iter_mut().for_each(|x| *x += (i + 1) as f32);
            });
            assert!(
                v.iter().enumerate().all(|(j, &x)| x == (j / 10 + 1) as f32),
                "{v:?}"
            );
            let mut v = vec![0.0f32; 4 * 23];
            for_each_span(&mut v, 23, 5, |b, i, o| {
                assert!(b < 4 && (o.len() == 5 || (i == 4 && o.len() == 3)));
                o.iter_mut().for_each(|x| *x += (100 * b + i + 1) as f32);
            });
            let want = |j: usize| (100 * (j / 23) + (j % 23) / 5 + 1) as f32;
            assert!(v.iter().enumerate().all(|(j, &x)| x == want(j)), "{v:?}");
        });
    }

    /// A thread claims its own range from the front, then the others' from the back.
    #[test]
    fn ranges_hand_out_home_first() {
        let r = Ranges::new(10, 3);
        let order: Vec<usize> = std::iter::from_fn(|| r.claim(1)).collect();
        assert_eq!(order, [3, 4, 5, 9, 8, 7, 6, 2, 1, 0]);
        let r = Ranges::new(2, 2);
        assert_eq!(
            (r.claim(1), r.claim(1), r.claim(0), r.claim(0)),
            (Some(1), Some(0), None, None)
        );
    }

    /// A panicking item reaches the caller (no hang).
    #[test]
    fn a_panic_reaches_the_caller() {
        let r = pool(2)
            .install(|| std::panic::catch_unwind(|| for_each(50, |i| assert!(i != 17, "item 17"))));
        assert!(r.is_err());
    }
}
