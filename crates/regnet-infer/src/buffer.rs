//! 64-byte-aligned `f32` buffers for packed weights and activations.
//!
//! The kernels load and store whole vectors at offsets that are multiples of 16 floats
//! (64 bytes) from a buffer's start, so an aligned start keeps every AVX-512 access inside
//! one cache line (and every AVX2 access inside one). glibc's `malloc` returns 16-byte
//! aligned blocks: with the grouped 3x3 kernel's weight 32 bytes off a line, the kernel
//! measured 7-11 % slower at AVX-512 than with it aligned (one thread, RegNet shapes, the
//! `winograd_timings` benchmark before its buffers were aligned). The `regnet` binary's
//! mimalloc happened to align these blocks already; library users get the same speed with
//! any allocator.

use aligned_vec::{AVec, ConstAlign};

/// Cache-line alignment.
const ALIGN: usize = 64;

/// A 64-byte-aligned vector of `f32`.
pub(crate) type Buf = AVec<f32, ConstAlign<ALIGN>>;

/// `n` zeros.
pub(crate) fn zeroed(n: usize) -> Buf {
    let mut b = Buf::new(ALIGN);
    b.resize(n, 0.0);
    b
}

#[cfg(test)]
mod tests {
    #[test]
    fn buffers_start_on_a_cache_line() {
        for n in [1, 7, 1000, 1 << 20] {
            let z = super::zeroed(n);
            assert_eq!(z.as_ptr() as usize % 64, 0);
            assert!(z.len() == n && z.iter().all(|&x| x == 0.0));
        }
    }
}
