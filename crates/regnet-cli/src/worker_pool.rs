//! The main thread as one of rayon's workers.
//!
//! The CPU kernels' parallel loops run on rayon's global pool. Started from a thread outside
//! the pool, each loop is injected into the pool while the caller parks until it is done, so
//! every one of a training step's few hundred loops parks and wakes the main thread (in
//! `perf stat` of the default model's step: ~500 context switches per 35 ms step, and the
//! scheduler's symbols ~10 % of `perf record`). As worker 0 of the pool, the main thread runs
//! its own loops and shares them with the other workers by work stealing.

/// Makes the calling thread worker 0 of rayon's global pool (of `RAYON_NUM_THREADS` or one
/// thread per core). Call it once, first, from the main thread; if the pool already exists,
/// nothing changes.
pub fn join_global_pool() {
    // An error means the pool exists already; the loops then run as before, only slower.
    let _ = rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global();
}
