//! The binary's memory allocator: mimalloc, keeping the memory it frees.
//!
//! Why: a training step frees and allocates again the same few hundred activation and
//! gradient buffers, step after step. glibc's malloc serves most of them with fresh `mmap`s
//! and unmaps them on free, so each step page-faults its memory in again; in `perf` of a
//! RegNetX-400MF CIFAR step (one thread) the kernel's page clearing, `memset` and `munmap`
//! took about 8%. mimalloc reuses freed memory, but by default returns pages unused for a
//! second to the OS, so some fault in again every step (`clear_page_erms` was still the top
//! symbol). With purging off, the step took about 12% less time than
//! with glibc's malloc (A/B of `regnet time`, in the README's speed section); the price is
//! that a process keeps its peak memory until it exits, which for training is what it
//! needs anyway. `MIMALLOC_PURGE_DELAY` in the environment still wins.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`: its position in mimalloc 3's `mi_option_e` (the Rust bindings'
/// option names predate it; the test checks the value behind it is the purge delay's default).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Turns mimalloc's purging of freed memory off, unless `MIMALLOC_PURGE_DELAY` says otherwise.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: setting an option is a plain store in mimalloc, valid at any time.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_is_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reading and setting options is always valid.
        unsafe {
            // Its default in mimalloc 3's options.c (1000 ms), which no other option has.
            assert_eq!(libmimalloc_sys::mi_option_get(PURGE_DELAY), 1000);
            keep_freed_memory();
            assert_eq!(libmimalloc_sys::mi_option_get(PURGE_DELAY), -1);
        }
    }
}
