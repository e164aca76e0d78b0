//! Hand-written CPU kernels, used through burn's backend-extension mechanism where burn's own
//! are slow (measured with `examples/op_bench.rs`).

mod abt;
pub mod batch_norm;
#[cfg(target_arch = "x86_64")]
mod bn_avx2;
mod bn_small;
pub mod conv;
mod direct;
mod fill;
mod partials;
mod phases;
mod plane16;
pub mod residual;
pub mod sgd;
mod shared;
pub(crate) mod simd;
mod small_map;
mod split;
mod unfold;
