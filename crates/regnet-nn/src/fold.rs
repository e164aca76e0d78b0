//! Batch-norm folding: an eval-mode BN after a convolution becomes a per-output-channel
//! scale of the conv weight and a bias. Both inference consumers of the layer plan (the
//! compiled CPU path and the ONNX writer) fold with this one function, so they agree.

use regnet_core::network::ConvBn;

use crate::error::WeightsError;
use crate::state_dict::{StateDict, TensorF32};

/// A convolution with its BN folded in: `weight` in PyTorch layout `[w_out, w_in / groups,
/// k, k]` and one bias per output channel.
#[derive(Clone, Debug, PartialEq)]
pub struct FoldedConv {
    /// Scaled conv weight.
    pub weight: TensorF32,
    /// `beta - mean * gamma / sqrt(var + eps)` (plus the conv's own bias, scaled, if any).
    pub bias: Vec<f32>,
}

/// Folds the eval-mode BN of `cb` (owned by `owner`, e.g. `s1.b1`) into its conv.
///
/// The arithmetic runs in f64 so that folding adds no error beyond the final rounding.
pub fn fold_conv_bn(
    sd: &StateDict,
    owner: &str,
    cb: &ConvBn,
    eps: f64,
) -> Result<FoldedConv, WeightsError> {
    let conv = cb.conv_path(owner);
    let bn = cb.bn_path(owner);
    let w = get(sd, &format!("{conv}.weight"))?;
    let gamma = get(sd, &format!("{bn}.weight"))?;
    let beta = get(sd, &format!("{bn}.bias"))?;
    let mean = get(sd, &format!("{bn}.running_mean"))?;
    let var = get(sd, &format!("{bn}.running_var"))?;
    let c_out = cb.conv.w_out;
    for (t, name) in [
        (gamma, "weight"),
        (beta, "bias"),
        (mean, "running_mean"),
        (var, "running_var"),
    ] {
        if t.numel() != c_out {
            return Err(WeightsError::Other(format!(
                "{bn}.{name}: {} values for {c_out} channels",
                t.numel()
            )));
        }
    }
    if w.numel() % c_out != 0 {
        return Err(WeightsError::Other(format!(
            "{conv}.weight: {} values do not split into {c_out} output channels",
            w.numel()
        )));
    }
    let conv_bias = if cb.conv.bias {
        Some(get(sd, &format!("{conv}.bias"))?)
    } else {
        None
    };
    let per_out = w.numel() / c_out;
    let mut weight = w.data.clone();
    let mut bias = Vec::with_capacity(c_out);
    for o in 0..c_out {
        let scale = gamma.data[o] as f64 / (var.data[o] as f64 + eps).sqrt();
        for v in &mut weight[o * per_out..(o + 1) * per_out] {
            *v = (*v as f64 * scale) as f32;
        }
        let b0 = conv_bias.map_or(0.0, |b| b.data[o] as f64);
        bias.push((beta.data[o] as f64 + (b0 - mean.data[o] as f64) * scale) as f32);
    }
    Ok(FoldedConv {
        weight: TensorF32::new(w.shape.clone(), weight),
        bias,
    })
}

fn get<'a>(sd: &'a StateDict, name: &str) -> Result<&'a TensorF32, WeightsError> {
    sd.get(name)
        .ok_or_else(|| WeightsError::Other(format!("missing tensor {name}")))
}
