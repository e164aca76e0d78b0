//! Convolutions on 4x4 maps, straight on NCHW: a 16-value plane is one AVX-512 register
//! (two AVX2 ones), so the kernels need no gather of the planes into rows or columns.
//!
//! RegNet's last stage runs at 4x4 on the default model (28x28 inputs) and the one before
//! it on CIFAR's 32x32: there the general paths spent more on copying planes around (or, for
//! 3x3 kernels, on multiplying zeros) than on arithmetic. `pointwise` has the 1x1 products,
//! `taps` the 3x3 convolutions.
//!
//! Measured with a temporary per-kernel timer that switched these kernels on and off every
//! other step of `regnet time` (so both variants ran under the same load on this noisy
//! machine), 4 runs of 60 steps, median time per call, AMD EPYC (Zen 5) with AVX-512:
//!
//! | default model, batch 128 | forward | input gradient | weight gradient |
//! |---|---|---|---|
//! | 1x1, 96 channels | 0.160 -> 0.131 ms | 0.160 -> 0.115 ms | 0.239 -> 0.183 ms |
//! | 3x3, 12 groups of 8 | 0.345 -> 0.145 ms | 0.272 -> 0.142 ms | 0.296 -> 0.237 ms |
//!
//! The steps with these kernels were faster in all 4 runs (0.77-0.93x). With AVX2 kernels
//! (and the `gemm` crate held to AVX2, as in `bench/emulate_avx2.sh`) the 3x3s took 0.38x,
//! 0.51x and 0.62x their time before, the 1x1s 0.80x, 0.74x and 0.80x, the steps 0.81-0.91x;
//! on RegNetX-400MF CIFAR (160 channels, 10 groups of 16, batch 64, AVX-512) the 3x3s 0.47x,
//! 0.42x and 0.62x, the 1x1s 0.89x, 0.86x and 0.84x.

// Off x86 no kernel is compiled, and the helpers only they use would warn.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_imports))]

pub(super) mod pointwise;
pub(super) mod taps;

/// Values per plane.
pub(in crate::kernels) const PIX: usize = 16;

/// The SIMD levels with kernels here.
#[derive(Clone, Copy)]
pub(super) enum Simd {
    /// AVX-512F: a plane per register.
    Avx512,
    /// AVX2 and FMA: a plane in two registers.
    Avx2,
}

/// The level's kernels, if it has them (the portable path gathers, as for other small maps,
/// so that the `gemm` crate's own vector code runs off x86).
pub(super) fn simd() -> Option<Simd> {
    use super::simd::{Level, level};
    match level() {
        Level::Avx512 if cfg!(target_arch = "x86_64") => Some(Simd::Avx512),
        Level::Avx2 if cfg!(target_arch = "x86_64") => Some(Simd::Avx2),
        _ => None,
    }
}

/// Runs `block(r0, rows)` over `0..len` in blocks of `big` rows, then `mid`, then single rows.
#[inline(always)]
pub(super) fn in_blocks(len: usize, [big, mid]: [usize; 2], mut block: impl FnMut(usize, usize)) {
    let mut r0 = 0;
    while r0 < len {
        let rows = match len - r0 {
            l if l >= big => big,
            l if l >= mid => mid,
            _ => 1,
        };
        block(r0, rows);
        r0 += rows;
    }
}
