//! # regnet-infer
//!
//! Compiled CPU inference for regnet's networks. [`CompiledNet::compile`] walks the layer
//! plan of `regnet_core::network::Network` once (a second consumer of the plan, like the
//! complexity count) into an execution plan:
//!
//! - batch norm folded into the conv weights and bias (`regnet_nn::fold::fold_conv_bn`);
//! - the activation, the residual add and the activation after the sum fused into the
//!   epilogue of the conv that precedes them;
//! - NHWC activations from stem to head, so a 1x1 conv is one GEMM over pixels (packed
//!   AVX-512 and AVX2 kernels, the `gemm` crate elsewhere) and a grouped 3x3 conv a direct kernel
//!   register-blocked over pixels and the output channels of one or several groups, or, at
//!   stride 1 with groups of up to 64 channels, Winograd's F(4x4, 3x3) (4x fewer
//!   multiply-adds) or on small work F(2x2, 3x3) (2.25x); a stem over few input channels gathers its windows a span at a time for
//!   the packed GEMM, except that the 3-channel image stems read whole register tiles of
//!   windows straight from the image;
//! - the leading blocks of a batch whose activations are large run one image at a time,
//!   so that their activations stay in the caches;
//! - weights packed once, buffers allocated once per input shape and reused, all of them
//!   aligned to cache lines;
//! - kernels compiled for AVX-512, AVX2+FMA and portable code in one binary, chosen at run
//!   time ([`SimdLevel`], `REGNET_SIMD`); rows and tiles shared by rayon's threads, each
//!   claiming from its own range first (so it reads the rows it wrote in the layer before),
//!   the caller spinning (not parking) for the last ones;
//! - per-layer times on request ([`CompiledNet::profile_layers`], `regnet time --layers`).
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (net, sd): (regnet_core::network::Network, regnet_nn::StateDict) = todo!();
//! let mut compiled = regnet_infer::CompiledNet::compile(&net, &sd, 1e-5)?;
//! let logits = compiled.forward(&vec![0.0; 3 * 224 * 224], [1, 3, 224, 224])?;
//! # Ok(()) }
//! ```

mod blocked;
mod buffer;
mod cache;
mod conv1x1;
mod direct;
mod epilogue;
pub mod error;
mod net;
mod packed;
mod parallel;
mod patches;
mod plan;
mod pool;
mod prefetch;
mod profile;
pub mod simd;
mod stem;
#[cfg(test)]
mod test_support;
mod vector;
mod winograd;

pub use error::InferError;
pub use net::{CompiledNet, MAX_ACTIVATION_ELEMS, SIMD_ENV};
pub use profile::LayerTime;
pub use simd::SimdLevel;
