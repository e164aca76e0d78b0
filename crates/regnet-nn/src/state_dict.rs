//! State dicts: named f32 tensors in PyTorch layout, with pycls's names. Every weight format
//! is converted to and from this, and models are built from it, so that names and shapes are
//! checked in one place against the layer plan's list of tensors.

use std::collections::{BTreeMap, BTreeSet};

use regnet_core::network::Network;

use crate::error::{ShapeMismatch, WeightsError};

/// A dense f32 tensor in row-major (PyTorch) layout.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorF32 {
    /// Shape.
    pub shape: Vec<usize>,
    /// Elements, row-major.
    pub data: Vec<f32>,
}

impl TensorF32 {
    /// A tensor; `data.len()` must equal the product of `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        TensorF32 { shape, data }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }
}

/// Named tensors, sorted by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateDict {
    /// The tensors.
    pub tensors: BTreeMap<String, TensorF32>,
}

/// Suffix of BN step counters, which PyTorch saves and nothing here needs.
pub const NUM_BATCHES_TRACKED: &str = "num_batches_tracked";

impl StateDict {
    /// Adds or replaces a tensor.
    pub fn insert(&mut self, name: impl Into<String>, t: TensorF32) {
        self.tensors.insert(name.into(), t);
    }

    /// A tensor by name.
    pub fn get(&self, name: &str) -> Option<&TensorF32> {
        self.tensors.get(name)
    }

    /// Checks that the tensors are exactly those of `net` (BN step counters aside), listing
    /// every missing, unexpected and wrongly shaped tensor. `path` names the source.
    pub fn check(&self, net: &Network, path: &str) -> Result<(), WeightsError> {
        let params = net.parameters();
        let expected: BTreeSet<&str> = params.iter().map(|p| p.name.as_str()).collect();
        let mut missing = Vec::new();
        let mut shapes = Vec::new();
        for p in &params {
            match self.tensors.get(&p.name) {
                None => missing.push((p.name.clone(), p.shape.clone())),
                Some(t) if t.shape != p.shape => shapes.push(ShapeMismatch {
                    name: p.name.clone(),
                    expected: p.shape.clone(),
                    found: t.shape.clone(),
                }),
                Some(_) => {}
            }
        }
        let unexpected: Vec<(String, Vec<usize>)> = self
            .tensors
            .iter()
            .filter(|(n, _)| !expected.contains(n.as_str()) && !n.ends_with(NUM_BATCHES_TRACKED))
            .map(|(n, t)| (n.clone(), t.shape.clone()))
            .collect();
        if missing.is_empty() && unexpected.is_empty() && shapes.is_empty() {
            Ok(())
        } else {
            Err(WeightsError::Mismatch {
                path: path.to_string(),
                missing,
                unexpected,
                shapes,
            })
        }
    }

    /// Reverses the input channels of the stem conv: turns weights for BGR input (pycls's
    /// original ImageNet weights) into weights for RGB input, and back.
    pub fn flip_stem_channels(&mut self) -> Result<(), WeightsError> {
        let t = self
            .tensors
            .get_mut("stem.conv.weight")
            .ok_or_else(|| WeightsError::Other("no stem.conv.weight to flip".into()))?;
        let [o, c, kh, kw] = t.shape[..] else {
            return Err(WeightsError::Other("stem.conv.weight is not 4-d".into()));
        };
        let numel = [c, kh, kw].iter().try_fold(o, |n, &d| n.checked_mul(d));
        if numel != Some(t.data.len()) {
            return Err(WeightsError::Other(format!(
                "stem.conv.weight has shape {:?} but {} elements",
                t.shape,
                t.data.len()
            )));
        }
        let plane = kh * kw;
        if plane == 0 {
            return Ok(()); // no elements: nothing to flip
        }
        let mut out = vec![0.0; t.data.len()];
        for oi in 0..o {
            for ci in 0..c {
                let src = (oi * c + ci) * plane;
                let dst = (oi * c + (c - 1 - ci)) * plane;
                out[dst..dst + plane].copy_from_slice(&t.data[src..src + plane]);
            }
        }
        t.data = out;
        Ok(())
    }
}
