//! Test-set evaluation on the CPU through regnet-infer's compiled engine (BN folded, fused
//! kernels): the same top-1/top-5 meters as `trainer::evaluate`, without burn's forward.

use std::time::Instant;

use regnet_core::network::Network;
use regnet_core::spec::NetSpec;
use regnet_data::{Loader, Split};
use regnet_infer::CompiledNet;
use regnet_nn::StateDict;

use crate::meters::{EpochMeter, topk_errors};
use crate::trainer::TrainError;

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
    let t = Instant::now();
    let what = |e: &dyn std::fmt::Display| TrainError::Other(format!("{origin}: {e}"));
    let net = Network::from_spec(spec).map_err(|e| what(&e))?;
    let mut compiled = CompiledNet::compile(&net, sd, bn_eps).map_err(|e| what(&e))?;
    let classes = spec.num_classes;
    let mut meter = EpochMeter::default();
    for batch in loader.epoch(0) {
        let batch = batch?;
        let n = batch.labels.len();
        if n == 0 {
            continue;
        }
        let logits = compiled
            .forward(&batch.images, batch.shape)
            .map_err(|e| what(&e))?;
        let errs = topk_errors(&logits, classes, &batch.labels, &[1, 5.min(classes)]);
        meter.update(errs[0], errs[1], 0.0, n, 0.0);
    }
    if meter.samples() == 0 {
        // An error of 0% over no image is not a result.
        return Err(loader.all_skipped_error(Split::Test, 0).into());
    }
    Ok((
        meter.top1_err(),
        meter.top5_err(),
        t.elapsed().as_secs_f64(),
    ))
}
