//! Explicit SIMD vectors for the direct-conv micro-kernel (LLVM's auto-vectorizer turned
//! its register blocks into scalar code at some sizes). Every method is `#[inline(always)]`
//! so that it compiles inside the `#[target_feature]` function that calls it; the x86
//! vectors are only used from functions compiled with their features.

/// A vector of `LANES` f32 values.
pub(crate) trait Vf: Copy {
    /// Lanes.
    const LANES: usize;
    /// Loads `LANES` values from `p` (unaligned).
    ///
    /// # Safety
    /// `p` must point at `LANES` readable values, and the CPU must have the vector's features.
    unsafe fn load(p: *const f32) -> Self;
    /// Stores to `p` (unaligned).
    ///
    /// # Safety
    /// As [`Vf::load`], for writing.
    unsafe fn store(self, p: *mut f32);
    /// `x` in every lane.
    fn splat(x: f32) -> Self;
    /// `self * b + c`, fused where the vector type has FMA.
    fn fma(self, b: Self, c: Self) -> Self;
    /// `self + b`.
    fn add(self, b: Self) -> Self;
    /// `self - b`.
    fn sub(self, b: Self) -> Self;
    /// `max(self, 0)`.
    fn relu(self) -> Self;
}

/// One lane: the remainder of a group whose width is not a multiple of 4.
impl Vf for f32 {
    const LANES: usize = 1;
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        unsafe { *p = self }
    }
    #[inline(always)]
    fn splat(x: f32) -> Self {
        x
    }
    #[inline(always)]
    fn fma(self, b: Self, c: Self) -> Self {
        self * b + c
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        self + b
    }
    #[inline(always)]
    fn sub(self, b: Self) -> Self {
        self - b
    }
    #[inline(always)]
    fn relu(self) -> Self {
        self.max(0.0)
    }
}

/// Four lanes in plain Rust: the portable path on targets other than x86-64.
#[cfg(not(target_arch = "x86_64"))]
#[derive(Clone, Copy)]
pub(crate) struct F32x4([f32; 4]);

#[cfg(not(target_arch = "x86_64"))]
impl Vf for F32x4 {
    const LANES: usize = 4;
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        F32x4(unsafe { *(p as *const [f32; 4]) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        unsafe { *(p as *mut [f32; 4]) = self.0 }
    }
    #[inline(always)]
    fn splat(x: f32) -> Self {
        F32x4([x; 4])
    }
    #[inline(always)]
    fn fma(self, b: Self, c: Self) -> Self {
        let mut r = c.0;
        for i in 0..4 {
            r[i] += self.0[i] * b.0[i];
        }
        F32x4(r)
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        let mut r = self.0;
        for i in 0..4 {
            r[i] += b.0[i];
        }
        F32x4(r)
    }
    #[inline(always)]
    fn sub(self, b: Self) -> Self {
        let mut r = self.0;
        for i in 0..4 {
            r[i] -= b.0[i];
        }
        F32x4(r)
    }
    #[inline(always)]
    fn relu(self) -> Self {
        F32x4(self.0.map(|x| x.max(0.0)))
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{F32x4, F32x8, F32x16};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Vf;

    /// SSE2 (part of x86-64 itself, so always present): 4 lanes, no FMA. The portable path.
    #[derive(Clone, Copy)]
    pub(crate) struct F32x4(__m128);

    // SAFETY (all methods): SSE2 is in every x86-64 CPU.
    impl Vf for F32x4 {
        const LANES: usize = 4;
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            F32x4(unsafe { _mm_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        fn splat(x: f32) -> Self {
            F32x4(unsafe { _mm_set1_ps(x) })
        }
        #[inline(always)]
        fn fma(self, b: Self, c: Self) -> Self {
            F32x4(unsafe { _mm_add_ps(_mm_mul_ps(self.0, b.0), c.0) })
        }
        #[inline(always)]
        fn add(self, b: Self) -> Self {
            F32x4(unsafe { _mm_add_ps(self.0, b.0) })
        }
        #[inline(always)]
        fn sub(self, b: Self) -> Self {
            F32x4(unsafe { _mm_sub_ps(self.0, b.0) })
        }
        #[inline(always)]
        fn relu(self) -> Self {
            F32x4(unsafe { _mm_max_ps(self.0, _mm_setzero_ps()) })
        }
    }

    /// AVX2+FMA: 8 lanes. Only used from functions compiled with `avx2,fma`.
    #[derive(Clone, Copy)]
    pub(crate) struct F32x8(__m256);

    // SAFETY (all methods): the type is only used in code compiled for, and dispatched to
    // after detecting, AVX2 and FMA.
    impl Vf for F32x8 {
        const LANES: usize = 8;
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            F32x8(unsafe { _mm256_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        fn splat(x: f32) -> Self {
            F32x8(unsafe { _mm256_set1_ps(x) })
        }
        #[inline(always)]
        fn fma(self, b: Self, c: Self) -> Self {
            F32x8(unsafe { _mm256_fmadd_ps(self.0, b.0, c.0) })
        }
        #[inline(always)]
        fn add(self, b: Self) -> Self {
            F32x8(unsafe { _mm256_add_ps(self.0, b.0) })
        }
        #[inline(always)]
        fn sub(self, b: Self) -> Self {
            F32x8(unsafe { _mm256_sub_ps(self.0, b.0) })
        }
        #[inline(always)]
        fn relu(self) -> Self {
            F32x8(unsafe { _mm256_max_ps(self.0, _mm256_setzero_ps()) })
        }
    }

    /// AVX-512: 16 lanes. Only used from functions compiled with `avx512f`.
    #[derive(Clone, Copy)]
    pub(crate) struct F32x16(__m512);

    // SAFETY (all methods): as for F32x8, with AVX-512F.
    impl Vf for F32x16 {
        const LANES: usize = 16;
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            F32x16(unsafe { _mm512_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        fn splat(x: f32) -> Self {
            F32x16(unsafe { _mm512_set1_ps(x) })
        }
        #[inline(always)]
        fn fma(self, b: Self, c: Self) -> Self {
            F32x16(unsafe { _mm512_fmadd_ps(self.0, b.0, c.0) })
        }
        #[inline(always)]
        fn add(self, b: Self) -> Self {
            F32x16(unsafe { _mm512_add_ps(self.0, b.0) })
        }
        #[inline(always)]
        fn sub(self, b: Self) -> Self {
            F32x16(unsafe { _mm512_sub_ps(self.0, b.0) })
        }
        #[inline(always)]
        fn relu(self) -> Self {
            F32x16(unsafe { _mm512_max_ps(self.0, _mm512_setzero_ps()) })
        }
    }
}
