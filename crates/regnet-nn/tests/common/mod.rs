//! Helpers of the parity tests: the shared reference fixtures.

#![allow(dead_code)]

use std::path::PathBuf;

use regnet_core::spec::{Activation, AnyNet, Arch, NetSpec, Stage};
use regnet_nn::StateDict;
use regnet_nn::weights::{self, Layout};
use serde_json::Value;

/// The read-only reference data (`../shared/reference`), or `REGNET_REFERENCE`.
pub fn reference_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("REGNET_REFERENCE") {
        return PathBuf::from(dir);
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference");
    assert!(
        dir.is_dir(),
        "reference data not found at {} (set REGNET_REFERENCE)",
        dir.display()
    );
    dir
}

/// A fixture: every float tensor, and its metadata.
pub struct Fixture {
    pub tensors: StateDict,
    pub meta: std::collections::HashMap<String, String>,
}

pub fn fixture(name: &str) -> Fixture {
    let path = reference_dir().join("fixtures").join(name);
    let (tensors, meta) = weights::read_safetensors_tensors(&path).unwrap();
    Fixture { tensors, meta }
}

impl Fixture {
    /// The spec described by the `anynet_args` metadata (pycls's AnyNet arguments).
    pub fn spec(&self) -> NetSpec {
        let Some(args) = self.meta.get("anynet_args") else {
            // The timm/torchvision fixtures name the zoo model instead.
            return regnet_core::zoo::lookup(&self.meta["model"])
                .unwrap()
                .spec();
        };
        let a: Value = serde_json::from_str(args).unwrap();
        let list = |k: &str| a[k].as_array().unwrap().clone();
        let n = list("ds").len();
        let stages = (0..n)
            .map(|i| Stage {
                depth: list("ds")[i].as_u64().unwrap() as usize,
                width: list("ws")[i].as_u64().unwrap() as usize,
                stride: list("ss")[i].as_u64().unwrap() as usize,
                bot_mul: list("bms")[i].as_f64(),
                group_w: list("gws")[i].as_u64().map(|g| g as usize),
            })
            .collect();
        NetSpec {
            in_channels: 3,
            num_classes: a["nc"].as_u64().unwrap() as usize,
            activation: Activation::Relu,
            arch: Arch::AnyNet(AnyNet {
                stem_type: a["stem_type"].as_str().unwrap().parse().unwrap(),
                stem_w: a["stem_w"].as_u64().unwrap() as usize,
                block_type: a["block_type"].as_str().unwrap().parse().unwrap(),
                stages,
                se_r: a["se_r"].as_f64().unwrap_or(0.0),
                head_w: 0,
                stride_1x1: false,
            }),
        }
    }

    /// The model weights (tensors not named `input`, `logits*`, `labels`, `loss`, or with a
    /// `grad.`/`momentum_buffer.`/`updated.`/`step2.` prefix), renamed to pycls names.
    pub fn weights(&self, prefix: &str) -> StateDict {
        let mut sd = StateDict::default();
        for (k, v) in &self.tensors.tensors {
            let Some(k) = k.strip_prefix(prefix) else {
                continue;
            };
            let skip = ["input", "logits", "logits_f64", "labels", "loss"].contains(&k)
                || ["grad.", "momentum_buffer.", "updated.", "step2."]
                    .iter()
                    .any(|p| k.starts_with(p));
            if !skip {
                sd.insert(k, v.clone());
            }
        }
        let layout = weights::detect_layout(sd.tensors.keys().map(String::as_str));
        weights::to_pycls_names(sd, layout)
    }

    pub fn layout(&self) -> Layout {
        weights::detect_layout(self.tensors.tensors.keys().map(String::as_str))
    }

    pub fn get(&self, name: &str) -> &regnet_nn::TensorF32 {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("fixture lacks {name}"))
    }
}

/// Largest absolute difference.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
