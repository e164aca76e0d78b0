//! Test-set evaluation on the CPU through regnet-infer's compiled engine (BN folded, fused
//! kernels): the same top-1/top-5 meters as `trainer::evaluate`, without burn's forward.

use regnet_core::network::Network;
use regnet_core::spec::NetSpec;
use regnet_data::Loader;
use regnet_infer::CompiledNet;
use regnet_nn::StateDict;

use crate::trainer::{TrainError, evaluate_with};

/// Top-1 error, top-5 error (percent) and seconds of `spec` with weights `sd` (already
/// checked by building the burn model) over `loader`'s epoch; `origin` names the weights in
/// errors.
pub fn evaluate_compiled(
    spec: &NetSpec,
    sd: &StateDict,
    bn_eps: f64,
    loader: &Loader,
    origin: &str,
) -> Result<(f64, f64, f64), TrainError> {
    let what = |e: &dyn std::fmt::Display| TrainError::Other(format!("{origin}: {e}"));
    let net = Network::from_spec(spec).map_err(|e| what(&e))?;
    let mut compiled = CompiledNet::compile(&net, sd, bn_eps).map_err(|e| what(&e))?;
    evaluate_with(loader, spec.num_classes, |batch| {
        compiled
            .forward(&batch.images, batch.shape)
            .map_err(|e| what(&e))
    })
}
