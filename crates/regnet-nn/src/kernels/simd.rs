//! Run-time CPU dispatch for the kernels' loops.
//!
//! The workspace is built for baseline x86-64 (SSE2); `multiversioned!` compiles a loop twice
//! more, with AVX2 + FMA and with AVX-512 enabled, and picks the best copy the CPU runs, so
//! the binary runs everywhere and the loops use 8- or 16-wide vectors where they can.

use std::sync::atomic::{AtomicU8, Ordering};

/// The instruction sets a multiversioned loop can run with, in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Baseline: whatever the build targets.
    Portable = 0,
    /// AVX2 and FMA.
    Avx2 = 1,
    /// AVX-512 (F, VL) with AVX2 and FMA.
    Avx512 = 2,
}

/// The highest level the loops may use (tests lower it to exercise every path).
static CAP: AtomicU8 = AtomicU8::new(Level::Avx512 as u8);

/// Runs `f` once per level this CPU supports, portable included, with the kernels limited
/// to that level (process-wide; the tests that do this take turns).
#[cfg(test)]
pub(crate) fn for_each_level(f: impl Fn(Level)) {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    for l in [Level::Portable, Level::Avx2, Level::Avx512] {
        if l <= detected() {
            CAP.store(l as u8, Ordering::Relaxed);
            assert_eq!(level(), l);
            f(l);
        }
    }
    CAP.store(Level::Avx512 as u8, Ordering::Relaxed);
}

/// The best level this CPU supports (cached by `is_x86_feature_detected!`).
pub fn detected() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
        {
            return Level::Avx512;
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return Level::Avx2;
        }
    }
    Level::Portable
}

/// The cap `REGNET_SIMD` (`portable`, `avx2` or `avx512`) sets, read once: for comparing
/// the paths on one machine. Unset or unknown, it caps nothing.
fn env_cap() -> u8 {
    static ENV: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    *ENV.get_or_init(|| match std::env::var("REGNET_SIMD").as_deref() {
        Ok("portable") => Level::Portable as u8,
        Ok("avx2") => Level::Avx2 as u8,
        _ => Level::Avx512 as u8,
    })
}

/// The level the loops run with now: the detected one, capped.
#[inline]
pub(crate) fn level() -> Level {
    let cap = CAP.load(Ordering::Relaxed).min(env_cap());
    let d = detected();
    if (d as u8) <= cap {
        d
    } else if cap >= Level::Avx2 as u8 {
        Level::Avx2
    } else {
        Level::Portable
    }
}

/// Defines `fn $name(args) -> ret` running `$body`, compiled three times: as written, with
/// `avx2,fma` and with `avx512f,avx512vl` added, the copy chosen by [`level`] at each call.
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
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                unsafe fn avx512($($a: $t),*) $(-> $r)? { generic($($a),*) }
                match $crate::kernels::simd::level() {
                    // SAFETY: `level` reports only features the CPU supports.
                    $crate::kernels::simd::Level::Avx512 => return unsafe { avx512($($a),*) },
                    // SAFETY: as above.
                    $crate::kernels::simd::Level::Avx2 => return unsafe { avx2($($a),*) },
                    $crate::kernels::simd::Level::Portable => {}
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

/// The sum of an AVX register's 8 lanes (for the AVX2 micro-kernels).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(crate) fn sum8(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
}
