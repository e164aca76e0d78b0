//! How many items each parallel task takes.

/// Items per task when `total` items are split into tasks of at most `most` (at least one)
/// that the current pool's threads share evenly: as many rounds of tasks as `most` needs, but
/// the same number for every thread (5 tasks on 2 threads left one idle for a third of a
/// call; 6 smaller ones do not).
pub(super) fn even_task_size(total: usize, most: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let rounds = total.div_ceil(most.max(1) * threads).max(1);
    total.div_ceil(rounds * threads).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_gets_as_many_tasks_and_none_is_too_big() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            // 128 samples in chunks of at most 28: 6 tasks of 22 (the last 18), not 5 of 28.
            assert_eq!(even_task_size(128, 28), 22);
            // 96 channels in tasks of at most 32: 4 of 24, not 3 of 32.
            assert_eq!(even_task_size(96, 32), 24);
            // Room for everything in one round: one task per thread.
            assert_eq!(even_task_size(10, 100), 5);
            assert_eq!(even_task_size(0, 0), 1);
            for (total, most) in [(7, 3), (100, 1), (33, 8), (1, 1)] {
                let size = even_task_size(total, most);
                let tasks = total.div_ceil(size);
                assert!(
                    size <= most && tasks.div_ceil(2) == total.div_ceil(most * 2),
                    "{total} {most}"
                );
            }
        });
    }
}
