//! Rayon's other workers kept awake while a training step or a compiled forward pass runs.
//!
//! A step is a few hundred parallel loops of 0.05-1 ms each, with the caller's sequential
//! work (autodiff bookkeeping, allocation) in between; a compiled forward pass is a few dozen
//! layers of tens of microseconds at batch 1. Rayon parks a worker that found no work for a
//! few microseconds, and waking it again costs a futex call and tens of microseconds of
//! scheduling, during which the caller works alone: `perf` of the default model's step showed
//! the scheduler's symbols at ~10 % of the samples. While a step or a forward pass runs, the
//! other workers here poll for work instead of parking (with a `sched_yield` now and then, so
//! that the data loader's threads still get the cores, and for at most [`MAX_IDLE`] without a
//! job). Measured with `regnet time`, rounds alternating on the project's 2-core machine:
//! training step, default model 31.1 vs 33.1 ms (faster in 6 of 6 rounds; 33.8 vs 35.5, 7 of
//! 8, before the idle bound), RegNetX-400MF CIFAR 78.6 vs 82.1 ms (5 of 5); compiled forward,
//! RegNetY-800MF batch 1 4.34 vs 4.46 ms (6 of 6), RegNetX-400MF batch 8 16.75 vs 17.13 ms
//! (5 of 6). In a 1-epoch `regnet train` of the default model, where the data loader's
//! threads share the two cores, the mean iteration time did not move beyond the noise (37.7
//! vs 37.8 and 41.7 vs 42.7 ms).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Polls between `sched_yield`s of an idle worker.
const SPINS_PER_YIELD: u32 = 256;

/// Time without a job after which a worker stops polling and goes back to rayon, which parks
/// it. Rayon runs a worker's pending copy of the polling job also while the worker waits for
/// the stolen half of one of the step's own jobs; that job then cannot finish until the
/// polling ends, and without a bound the step would wait forever. A bound also ends the
/// stall when two callers share a pool (each can end up polling on top of the other's
/// work). The step's sequential stretches between loops are far shorter than this.
const MAX_IDLE: Duration = Duration::from_millis(1);

/// Runs `f`, with every other worker of the current rayon pool polling for work until `f`
/// returns. Outside a pool, or in a pool of one thread, it just runs `f`.
pub fn with_workers_awake<R>(f: impl FnOnce() -> R) -> R {
    let Some(me) = rayon::current_thread_index() else {
        return f();
    };
    if rayon::current_num_threads() < 2 {
        return f();
    }
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let flag = stop.0.clone();
    // One copy per worker; the caller's returns at once whenever it runs.
    rayon::spawn_broadcast(move |ctx| {
        if ctx.index() != me {
            poll_until(&flag);
        }
    });
    f()
}

/// Ends the polling when the call returns or unwinds.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Workers polling now, in every pool (what the tests check).
static POLLING: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether this thread polls already (a later step's copy can reach it through
    /// `yield_now` before it has seen its own step end; that copy then returns at once).
    static IN_POLL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs the pool's pending jobs as they come, until `stop` is set or no job came for
/// [`MAX_IDLE`].
fn poll_until(stop: &AtomicBool) {
    if IN_POLL.replace(true) {
        return;
    }
    POLLING.fetch_add(1, Ordering::Relaxed);
    let (mut idle, mut last_job) = (0u32, Instant::now());
    while !stop.load(Ordering::Acquire) {
        if rayon::yield_now() == Some(rayon::Yield::Executed) {
            (idle, last_job) = (0, Instant::now());
            continue;
        }
        idle = idle.wrapping_add(1);
        if idle.is_multiple_of(SPINS_PER_YIELD) {
            if last_job.elapsed() > MAX_IDLE {
                break;
            }
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    POLLING.fetch_sub(1, Ordering::Relaxed);
    IN_POLL.set(false);
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use rayon::prelude::*;

    use super::*;

    /// `f` run inside a pool of `threads` workers; a hang past `secs` fails the test.
    fn in_pool<R: Send + 'static>(
        threads: usize,
        secs: u64,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> R {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(pool.install(f)).unwrap());
        rx.recv_timeout(Duration::from_secs(secs))
            .expect("still running: hung")
    }

    /// The loops inside run and give their result, other workers poll while they do, and
    /// none polls once the calls have returned.
    #[test]
    fn workers_poll_during_the_call_and_stop_after_it() {
        let runs: Vec<(u64, usize)> = in_pool(3, 60, || {
            (0..20)
                .map(|_| {
                    with_workers_awake(|| {
                        let sum = (0..10_000u64).into_par_iter().sum::<u64>();
                        // Give the other workers time to start polling.
                        let t = std::time::Instant::now();
                        while POLLING.load(Ordering::Relaxed) == 0 && t.elapsed().as_secs() < 1 {
                            std::hint::spin_loop();
                        }
                        (sum, POLLING.load(Ordering::Relaxed))
                    })
                })
                .collect()
        });
        // A poller that found nothing for [`MAX_IDLE`] may have left before the check, on a
        // loaded machine; most runs see one.
        assert!(runs.iter().all(|&(sum, _)| sum == 49_995_000), "{runs:?}");
        assert!(runs.iter().any(|&(_, polling)| polling >= 1), "{runs:?}");
        let t = std::time::Instant::now();
        while POLLING.load(Ordering::Relaxed) > 0 && t.elapsed().as_secs() < 10 {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(POLLING.load(Ordering::Relaxed), 0, "workers still polling");
    }

    /// A polling worker whose step never ends (as when its polling runs on top of one of
    /// the step's own jobs) goes back to rayon once no job comes.
    #[test]
    fn polling_ends_when_no_job_comes() {
        in_pool(1, 30, || poll_until(&AtomicBool::new(false)));
    }

    #[test]
    fn outside_a_pool_it_just_runs() {
        assert_eq!(with_workers_awake(|| 7), 7);
    }
}
