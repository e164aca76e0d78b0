//! Run-time CPU dispatch for the elementwise loops of the kernels.
//!
//! The workspace is built for baseline x86-64 (SSE2); `multiversioned!` compiles a loop a
//! second time with AVX2 and FMA enabled and picks that copy when the CPU has them, so the
//! binary runs everywhere and the loops use 8-wide vectors where they can.

/// Defines `fn $name(args) -> ret` running `$body`, compiled twice: as written and with
/// `avx2,fma` (chosen at run time with `is_x86_feature_detected!`, which caches).
macro_rules! multiversioned {
    ($(#[$m:meta])* fn $name:ident($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? $body:block) => {
        $(#[$m])*
        fn $name($($a: $t),*) $(-> $r)? {
            #[inline(always)]
            fn generic($($a: $t),*) $(-> $r)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($a: $t),*) $(-> $r)? { generic($($a),*) }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU supports the features `avx2` was compiled for.
                    return unsafe { avx2($($a),*) };
                }
            }
            generic($($a),*)
        }
    };
}

pub(crate) use multiversioned;

/// Lanes of the partial sums: two AVX2 vectors, so the additions pipeline.
pub(crate) const LANES: usize = 16;

/// Adds the [`LANES`] partial sums and a tail.
#[inline(always)]
pub(crate) fn reduce(acc: [f32; LANES], tail: f32) -> f32 {
    acc.iter().sum::<f32>() + tail
}
