//! The forward engine of the evaluation commands: regnet-infer's compiled path on the CPU,
//! burn's model on other devices.

use anyhow::{Context, Result, anyhow};
use burn::tensor::Device;
use regnet_core::network::Network;
use regnet_core::spec::NetSpec;
use regnet_infer::CompiledNet;
use regnet_nn::conv::{from_tensor, to_tensor};
use regnet_nn::layers::BnSettings;
use regnet_nn::{Model, StateDict, TensorF32, device};

/// A network ready to compute eval-mode logits.
pub enum Engine {
    /// The compiled CPU path.
    Compiled(Box<CompiledNet>),
    /// burn's model on `device`.
    Burn(Box<Model>, Device),
}

impl Engine {
    /// The compiled path for `cpu`, burn's model otherwise; `source` names the weights.
    pub fn new(spec: &NetSpec, sd: &StateDict, device_name: &str, source: &str) -> Result<Self> {
        let bn = BnSettings::default();
        if device_name == "cpu" {
            let net = Network::from_spec(spec)?;
            let c = CompiledNet::compile(&net, sd, bn.eps).with_context(|| source.to_string())?;
            return Ok(Engine::Compiled(Box::new(c)));
        }
        let dev = device::by_name(device_name).map_err(|e| anyhow!(e))?;
        let model = Model::from_state_dict(spec, sd, bn, &dev, source)?;
        Ok(Engine::Burn(Box::new(model), dev))
    }

    /// Logits `[n, classes]` (row-major) of NCHW `input`.
    pub fn logits(&mut self, input: Vec<f32>, shape: [usize; 4]) -> Result<Vec<f32>> {
        match self {
            Engine::Compiled(c) => Ok(c.forward(&input, shape)?),
            Engine::Burn(model, dev) => {
                let x = to_tensor::<4>(&TensorF32::new(shape.to_vec(), input), dev);
                Ok(from_tensor(model.forward(x)).data)
            }
        }
    }
}

/// Softmax of each row of `classes` values.
pub fn softmax_rows(logits: &mut [f32], classes: usize) {
    for row in logits.chunks_exact_mut(classes) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        row.iter_mut().for_each(|v| *v /= sum);
    }
}
