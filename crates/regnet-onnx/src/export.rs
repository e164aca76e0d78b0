//! The export: a spec and its weights to an ONNX `ModelProto`, by walking the layer plan
//! ([`regnet_core::network::Network`]) in forward order, exactly as `regnet_nn::Model` runs it.
//!
//! Operators (opset 13): `Conv`, `BatchNormalization` (kept mode only), `Relu`, `Sigmoid`
//! and `Mul` (SiLU is `x * Sigmoid(x)`; opset 13 has no SiLU), `MaxPool` (ResNet stem),
//! `GlobalAveragePool` (SE and head), `Add` (shortcuts), `Flatten` and `Gemm` (classifier).

use std::path::Path;

use prost::Message;
use regnet_core::network::{Block, Conv2d, ConvBn, Network, Op, Se, Shortcut};
use regnet_core::spec::{Activation, NetSpec};
use regnet_nn::fold::fold_conv_bn;
use regnet_nn::weights::write_atomic;
use regnet_nn::{StateDict, WeightsError};

use crate::builder::{Dim, GraphBuilder, f32_value, float, int, ints};
use crate::error::{OnnxError, Result};
use crate::metadata::{InputConvention, metadata_props};
use crate::proto::{ModelProto, OperatorSetIdProto};

/// The opset the graph is written for: 13 is read by every current runtime (ONNX Runtime
/// since 1.6, TensorRT 8, OpenVINO, CoreML tools) and has every operator the networks need.
pub const OPSET: i64 = 13;
/// The IR version that goes with opset 13 (ONNX 1.8).
pub const IR_VERSION: i64 = 7;
/// Name of the graph input, `[batch, channels, height, width]`.
pub const INPUT: &str = "input";
/// Name of the graph output, `[batch, classes]`.
pub const OUTPUT: &str = "logits";
/// A protobuf message cannot exceed 2 GiB; this leaves room for everything but the weights.
const MAX_WEIGHT_BYTES: usize = (1 << 31) - (16 << 20);

/// What to do with the batch norms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BatchNorm {
    /// Keep `BatchNormalization` nodes with the running statistics (faithful to training:
    /// the statistics stay visible and can be recalibrated).
    #[default]
    Keep,
    /// Fold each BN into the preceding convolution (inference-ready: fewer nodes).
    Fold,
}

/// Options of the export.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportOptions {
    /// Keep or fold the batch norms.
    pub batch_norm: BatchNorm,
    /// A fixed image size, or `None` for symbolic height and width.
    pub image_size: Option<usize>,
    /// BN epsilon (pycls's `BN.EPS`).
    pub bn_eps: f64,
    /// The input preprocessing recorded in the metadata.
    pub input: InputConvention,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            batch_norm: BatchNorm::Keep,
            image_size: None,
            bn_eps: 1e-5,
            input: InputConvention::imagenet(),
        }
    }
}

/// Builds the ONNX model of `spec` with the weights `sd` (pycls names), checking first that
/// the weights are exactly the network's (`source` names them in errors).
pub fn to_onnx(
    spec: &NetSpec,
    sd: &StateDict,
    opts: &ExportOptions,
    source: &str,
) -> Result<ModelProto> {
    let net = Network::from_spec(spec)?;
    sd.check(&net, source)?;
    opts.input.check(net.in_channels)?;
    if opts.image_size == Some(0) || !(opts.bn_eps > 0.0 && opts.bn_eps.is_finite()) {
        return Err(OnnxError::Invalid(
            "image size and BN epsilon must be positive".into(),
        ));
    }
    let weight_bytes: usize = net.parameters().iter().map(|p| p.numel() * 4).sum();
    if weight_bytes > MAX_WEIGHT_BYTES {
        return Err(OnnxError::Invalid(format!(
            "{weight_bytes} bytes of weights exceed what one ONNX file holds (2 GiB)"
        )));
    }
    let mut w = Walker {
        g: GraphBuilder::default(),
        sd,
        fold: opts.batch_norm == BatchNorm::Fold,
        eps: opts.bn_eps,
        act: net.activation,
    };
    let logits = w.network(&net)?;
    debug_assert_eq!(logits, OUTPUT);
    let (h, wd) = match opts.image_size {
        Some(s) => (Dim::Fixed(s), Dim::Fixed(s)),
        None => (Dim::Symbolic("height"), Dim::Symbolic("width")),
    };
    let batch = Dim::Symbolic("batch");
    let input = f32_value(INPUT, &[batch.clone(), Dim::Fixed(net.in_channels), h, wd]);
    let output = f32_value(OUTPUT, &[batch, Dim::Fixed(spec.num_classes)]);
    Ok(ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        producer_name: Some("regnet".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(format!(
            "regnet network exported from its layer plan; input {INPUT} [batch, {}, H, W], \
             output {OUTPUT} [batch, {}]",
            net.in_channels, spec.num_classes
        )),
        graph: Some(w.g.finish("regnet", vec![input], vec![output])),
        metadata_props: metadata_props(spec, &opts.input, w.fold, opts.image_size),
        ..Default::default()
    })
}

/// Serialises `model` to `path` atomically (temporary file, then rename), so that a failed
/// or interrupted export never leaves a half-written file.
pub fn write_onnx(path: &Path, model: &ModelProto) -> Result<()> {
    write_atomic(path, &model.encode_to_vec())?;
    Ok(())
}

/// Walks the layer plan, adding nodes; every method returns the name of its output.
struct Walker<'a> {
    g: GraphBuilder,
    sd: &'a StateDict,
    fold: bool,
    eps: f64,
    act: Activation,
}

impl Walker<'_> {
    /// The whole network: stem, blocks, head; returns [`OUTPUT`].
    fn network(&mut self, net: &Network) -> Result<String> {
        let mut x = self.conv_bn(INPUT, "stem", &net.stem.conv)?;
        if let Some(p) = &net.stem.pool {
            let pad = (p.k - 1) / 2;
            let attrs = vec![
                ints("kernel_shape", &[p.k, p.k]),
                ints("strides", &[p.stride, p.stride]),
                ints("pads", &[pad; 4]),
            ];
            x = self.g.node("MaxPool", p.key.to_string(), &[&x], attrs);
        }
        for b in &net.blocks {
            x = self.block(&x, b)?;
        }
        if let Some(cb) = &net.head.conv {
            x = self.conv_bn(&x, "head", cb)?;
        }
        let pooled = self
            .g
            .node("GlobalAveragePool", "head.avg_pool".into(), &[&x], vec![]);
        let flat = self.g.node(
            "Flatten",
            "head.flatten".into(),
            &[&pooled],
            vec![int("axis", 1)],
        );
        let fc = &net.head.fc;
        let weight = self.tensor(&format!("{}.weight", fc.key))?;
        let mut inputs = vec![flat.as_str(), weight.as_str()];
        let bias = if fc.bias {
            Some(self.tensor(&format!("{}.bias", fc.key))?)
        } else {
            None
        };
        inputs.extend(bias.as_deref());
        Ok(self
            .g
            .node("Gemm", OUTPUT.into(), &inputs, vec![int("transB", 1)]))
    }

    /// One block: the branch's ops in order, the shortcut, the sum, the activation after it.
    fn block(&mut self, x: &str, b: &Block) -> Result<String> {
        let mut y = x.to_string();
        for op in &b.ops {
            y = match op {
                Op::ConvBn(cb) => self.conv_bn(&y, &b.key, cb)?,
                Op::Se(se) => self.se(&y, &b.key, se)?,
            };
        }
        let shortcut = match &b.shortcut {
            Shortcut::None => return Ok(y),
            Shortcut::Identity => x.to_string(),
            Shortcut::Projection(p) => self.conv_bn(x, &b.key, p)?,
        };
        let sum = self
            .g
            .node("Add", format!("{}.add", b.key), &[&shortcut, &y], vec![]);
        Ok(if b.act_after_sum {
            self.activation(&sum, &format!("{}.act", b.key))
        } else {
            sum
        })
    }

    /// Conv and BN (kept, or folded into the conv), then the activation if the plan says so.
    fn conv_bn(&mut self, x: &str, owner: &str, cb: &ConvBn) -> Result<String> {
        let conv = cb.conv_path(owner);
        let bn = cb.bn_path(owner);
        let y = if self.fold {
            let f = fold_conv_bn(self.sd, owner, cb, self.eps)?;
            let weight =
                self.g
                    .initializer(format!("{conv}.weight"), &f.weight.shape, &f.weight.data);
            let bias = self
                .g
                .initializer(format!("{conv}.bias"), &[f.bias.len()], &f.bias);
            self.conv(x, &conv, &cb.conv, &weight, Some(&bias))
        } else {
            let weight = self.tensor(&format!("{conv}.weight"))?;
            let bias = if cb.conv.bias {
                Some(self.tensor(&format!("{conv}.bias"))?)
            } else {
                None
            };
            let c = self.conv(x, &conv, &cb.conv, &weight, bias.as_deref());
            let stats = ["weight", "bias", "running_mean", "running_var"]
                .map(|s| self.tensor(&format!("{bn}.{s}")));
            let [scale, shift, mean, var] = stats;
            let (scale, shift, mean, var) = (scale?, shift?, mean?, var?);
            let attrs = vec![float("epsilon", self.eps as f32)];
            self.g.node(
                "BatchNormalization",
                bn.clone(),
                &[&c, &scale, &shift, &mean, &var],
                attrs,
            )
        };
        Ok(if cb.act {
            self.activation(&y, &format!("{bn}.act"))
        } else {
            y
        })
    }

    /// A convolution node with the plan's kernel, stride, "same" padding and groups.
    fn conv(
        &mut self,
        x: &str,
        name: &str,
        c: &Conv2d,
        weight: &str,
        bias: Option<&str>,
    ) -> String {
        let attrs = vec![
            ints("kernel_shape", &[c.k, c.k]),
            ints("strides", &[c.stride, c.stride]),
            ints("pads", &[c.padding(); 4]),
            ints("dilations", &[1, 1]),
            int("group", c.groups as i64),
        ];
        let mut inputs = vec![x, weight];
        inputs.extend(bias);
        self.g.node("Conv", name.to_string(), &inputs, attrs)
    }

    /// Squeeze-excitation: pool, 1x1 conv, activation, 1x1 conv, sigmoid, channel gate.
    fn se(&mut self, x: &str, owner: &str, se: &Se) -> Result<String> {
        let p = format!("{owner}.{}", se.key);
        let pooled = self
            .g
            .node("GlobalAveragePool", format!("{p}.avg_pool"), &[x], vec![]);
        let mut s = pooled;
        for (i, (name, c)) in se.convs(owner).into_iter().enumerate() {
            let weight = self.tensor(&format!("{name}.weight"))?;
            let bias = self.tensor(&format!("{name}.bias"))?;
            s = self.conv(&s, &name, &c, &weight, Some(&bias));
            if i == 0 {
                s = self.activation(&s, &format!("{p}.f_ex.1"));
            }
        }
        let gate = self.g.node("Sigmoid", format!("{p}.f_ex.3"), &[&s], vec![]);
        Ok(self.g.node("Mul", p, &[x, &gate], vec![]))
    }

    /// ReLU, or SiLU as `x * Sigmoid(x)`.
    fn activation(&mut self, x: &str, name: &str) -> String {
        match self.act {
            Activation::Relu => self.g.node("Relu", name.to_string(), &[x], vec![]),
            Activation::Silu => {
                let s = self
                    .g
                    .node("Sigmoid", format!("{name}.sigmoid"), &[x], vec![]);
                self.g.node("Mul", name.to_string(), &[x, &s], vec![])
            }
        }
    }

    /// A state-dict tensor as an initializer under its pycls name.
    fn tensor(&mut self, name: &str) -> Result<String> {
        let t = self
            .sd
            .get(name)
            .ok_or_else(|| WeightsError::Other(format!("missing tensor {name}")))?;
        Ok(self.g.initializer(name.to_string(), &t.shape, &t.data))
    }
}
