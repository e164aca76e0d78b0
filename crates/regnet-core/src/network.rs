//! The layer plan: a [`NetSpec`] expanded into named layers (convs, BNs, SE, pooling, fc).
//!
//! This is the single place where blocks are turned into layers. The complexity count walks
//! this plan, the burn model is built from it, and the parameter names in it (pycls's
//! state-dict keys, `s1.b1.f.a_bn.weight`) are the names weights are loaded by. A change to
//! a block here changes all three at once.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::limits::{MAX_STAGES, MAX_WIDTH};
use crate::spec::{Activation, AnyNet, Arch, BlockType, EffNet, NetSpec, StemType};

/// A 2-d convolution with "same" padding `(k - 1) / 2`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Conv2d {
    /// Input channels.
    pub w_in: usize,
    /// Output channels.
    pub w_out: usize,
    /// Kernel size (odd).
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Groups.
    pub groups: usize,
    /// Whether the conv has a bias (only SE convs do).
    pub bias: bool,
}

impl ConvBn {
    /// Full state-dict prefix of the conv under `owner` (`s1.b1` + `f.a`).
    pub fn conv_path(&self, owner: &str) -> String {
        format!("{owner}.{}", self.conv_key)
    }

    /// Full state-dict prefix of the BN under `owner`.
    pub fn bn_path(&self, owner: &str) -> String {
        format!("{owner}.{}", self.bn_key)
    }
}

impl Se {
    /// The squeeze (`f_ex.0`, `w_in -> w_se`) and excite (`f_ex.2`, `w_se -> w_in`) 1x1 convs
    /// with their biases, each with its state-dict prefix under the block `owner` (`s1.b1`).
    /// Every consumer of the plan takes the SE's layers and names from here.
    pub fn convs(&self, owner: &str) -> [(String, Conv2d); 2] {
        let conv = |w_in, w_out| Conv2d {
            w_in,
            w_out,
            k: 1,
            stride: 1,
            groups: 1,
            bias: true,
        };
        let prefix = format!("{owner}.{}.f_ex", self.key);
        [
            (format!("{prefix}.0"), conv(self.w_in, self.w_se)),
            (format!("{prefix}.2"), conv(self.w_se, self.w_in)),
        ]
    }
}

impl Conv2d {
    /// Padding on each side.
    pub fn padding(&self) -> usize {
        (self.k - 1) / 2
    }
}

/// A conv followed by BatchNorm and, optionally, the activation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConvBn {
    /// Name of the conv inside its owner (`f.a`); the state-dict prefix is
    /// `<owner>.<conv_key>` (`s1.b1.f.a`), see [`ConvBn::conv_path`].
    pub conv_key: &'static str,
    /// Name of the BN inside its owner (`f.a_bn`).
    pub bn_key: &'static str,
    /// The conv.
    pub conv: Conv2d,
    /// Apply the activation after the BN.
    pub act: bool,
    /// Last BN of a residual branch (zero-initialised gamma with `BN.ZERO_INIT_FINAL_GAMMA`).
    pub final_bn: bool,
}

/// Squeeze-excitation: global average pool, 1x1 conv (bias) to `w_se`, activation, 1x1 conv
/// (bias) back to `w_in`, sigmoid, channel-wise product.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Se {
    /// Name inside the block (`f.se`); the convs are `<block>.<key>.f_ex.0` and `.f_ex.2`.
    pub key: &'static str,
    /// Channels of the gated tensor.
    pub w_in: usize,
    /// Squeezed width.
    pub w_se: usize,
}

/// One step of a block's residual branch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Op {
    /// Conv, BN, optional activation.
    ConvBn(ConvBn),
    /// Squeeze-excitation.
    Se(Se),
}

/// What is added to the branch output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Shortcut {
    /// Nothing: the block is a plain sequence (vanilla block, linear bottleneck that
    /// changes shape).
    None,
    /// The input itself.
    Identity,
    /// A strided 1x1 conv and BN of the input (no activation).
    Projection(ConvBn),
}

/// A block of the body.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Block {
    /// State-dict prefix (`s2.b3`).
    pub key: String,
    /// Stage index, 0-based.
    pub stage: usize,
    /// Input width.
    pub w_in: usize,
    /// Output width.
    pub w_out: usize,
    /// Stride.
    pub stride: usize,
    /// The residual branch (or the whole block, without a shortcut).
    pub ops: Vec<Op>,
    /// The shortcut.
    pub shortcut: Shortcut,
    /// Apply the activation after the sum.
    pub act_after_sum: bool,
    /// Drop-connect applies to the branch in training (EfficientNet).
    pub drop_connect: bool,
}

/// Max pooling with "same" padding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MaxPool {
    /// Name (`stem.pool`), for per-layer listings.
    pub key: &'static str,
    /// Channels.
    pub channels: usize,
    /// Kernel size.
    pub k: usize,
    /// Stride.
    pub stride: usize,
}

/// The stem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stem {
    /// Conv, BN, activation.
    pub conv: ConvBn,
    /// Optional max-pool (ResNet stem).
    pub pool: Option<MaxPool>,
}

/// A fully connected layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Linear {
    /// State-dict prefix (`head.fc`).
    pub key: &'static str,
    /// Input features.
    pub w_in: usize,
    /// Output features.
    pub w_out: usize,
    /// Whether it has a bias.
    pub bias: bool,
}

/// The head: optional 1x1 conv, global average pool, optional dropout, fc.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Head {
    /// Optional conv, BN, activation.
    pub conv: Option<ConvBn>,
    /// Dropout before the fc (training only).
    pub dropout: f64,
    /// The classifier.
    pub fc: Linear,
}

/// What a named tensor of the state dict is, with what pycls's initialisation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ParamKind {
    /// Conv weight `[w_out, w_in / groups, k, k]`; initialised N(0, sqrt(2 / fan_out)) with
    /// `fan_out = k * k * w_out` (pycls does not divide by groups).
    ConvWeight {
        /// `k * k * w_out`.
        fan_out: usize,
    },
    /// Conv bias `[w_out]` (SE convs); PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    ConvBias {
        /// `w_in / groups * k * k`.
        fan_in: usize,
    },
    /// BN gamma `[c]`: 1, or 0 for the final BN of a residual branch with
    /// `BN.ZERO_INIT_FINAL_GAMMA`.
    BnWeight {
        /// Whether this is the final BN of a residual branch.
        final_bn: bool,
    },
    /// BN beta `[c]`: 0.
    BnBias,
    /// BN running mean `[c]` (a buffer): 0.
    BnRunningMean,
    /// BN running variance `[c]` (a buffer): 1.
    BnRunningVar,
    /// fc weight `[w_out, w_in]` (PyTorch layout): N(0, 0.01).
    FcWeight,
    /// fc bias `[w_out]`: 0.
    FcBias,
}

impl ParamKind {
    /// Whether the tensor is trained (buffers are not).
    pub fn trainable(self) -> bool {
        !matches!(self, ParamKind::BnRunningMean | ParamKind::BnRunningVar)
    }
}

/// One tensor of the state dict, named as pycls names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParamInfo {
    /// `s1.b1.f.a.weight`.
    pub name: String,
    /// PyTorch shape.
    pub shape: Vec<usize>,
    /// What it is.
    pub kind: ParamKind,
}

impl ParamInfo {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Summary of one stage, as `regnet info` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageInfo {
    /// Number of blocks.
    pub depth: usize,
    /// Output width.
    pub width: usize,
    /// Stride of the first block.
    pub stride: usize,
    /// Bottleneck multiplier (1 where the block has none).
    pub bot_mul: f64,
    /// Group width (of the bottleneck conv; equals the bottleneck width when it has none).
    pub group_w: usize,
    /// Bottleneck (or expanded) width of the first block.
    pub w_b: usize,
    /// Groups of the 3x3 (or depthwise) conv.
    pub groups: usize,
    /// SE width of the first block (0: no SE).
    pub w_se: usize,
    /// Kernel of the spatial conv.
    pub kernel: usize,
}

/// A network expanded into layers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Network {
    /// Input channels.
    pub in_channels: usize,
    /// Activation used everywhere.
    pub activation: Activation,
    /// The stem.
    pub stem: Stem,
    /// Every block, stage by stage.
    pub blocks: Vec<Block>,
    /// The head.
    pub head: Head,
    /// Drop-connect ratio for blocks with `drop_connect`.
    pub dc_ratio: f64,
    /// Per-stage summary.
    pub stages: Vec<StageInfo>,
    /// Things pycls accepts but that are probably not what was meant (e.g. a group width
    /// that does not divide the bottleneck width, so the real group width differs).
    pub warnings: Vec<String>,
}

/// Python's `int(round(x))` (half to even).
fn round_int(x: f64) -> usize {
    x.round_ties_even() as usize
}

fn conv_bn(conv: &'static str, bn: &'static str, c: Conv2d, act: bool, final_bn: bool) -> ConvBn {
    ConvBn {
        conv_key: conv,
        bn_key: bn,
        conv: c,
        act,
        final_bn,
    }
}

fn conv(w_in: usize, w_out: usize, k: usize, stride: usize, groups: usize) -> Conv2d {
    Conv2d {
        w_in,
        w_out,
        k,
        stride,
        groups,
        bias: false,
    }
}

impl Network {
    /// Expands and validates a spec. Counts are checked against [`crate::limits`] before
    /// anything is allocated from them, and every layer's width after the expansion.
    pub fn from_spec(spec: &NetSpec) -> Result<Network> {
        crate::limits::check_spec(spec)?;
        if spec.in_channels == 0 {
            return Err(Error::spec("input channels must be positive"));
        }
        if spec.num_classes == 0 {
            return Err(Error::spec("number of classes must be positive"));
        }
        let net = match &spec.arch {
            Arch::AnyNet(a) => anynet(spec, a)?,
            Arch::RegNet(r) => {
                let a = r.anynet()?;
                crate::limits::check("RegNet stages", a.stages.len(), MAX_STAGES)?;
                anynet(spec, &a)?
            }
            Arch::EffNet(e) => effnet(spec, e)?,
        };
        net.check_widths()?;
        Ok(net)
    }

    /// Checks every derived width (bottleneck, SE, expanded) against [`MAX_WIDTH`], so that
    /// shapes and complexity stay small, exact numbers.
    fn check_widths(&self) -> Result<()> {
        for (owner, cb) in self.conv_bns() {
            let c = &cb.conv;
            let name = cb.conv_path(owner);
            crate::limits::check(&format!("{name}: width"), c.w_in.max(c.w_out), MAX_WIDTH)?;
        }
        for b in &self.blocks {
            for op in &b.ops {
                if let Op::Se(se) = op {
                    let name = format!("{}.{}: SE width", b.key, se.key);
                    crate::limits::check(&name, se.w_se, MAX_WIDTH)?;
                }
            }
        }
        Ok(())
    }

    /// Every tensor of the model's state dict (weights, biases, BN affine and running
    /// statistics), with pycls's names and PyTorch's shapes, in module order. The importers
    /// and the model builder use this list; the parameter count it gives equals the
    /// complexity count's.
    pub fn parameters(&self) -> Vec<ParamInfo> {
        let mut out = Vec::new();
        let conv = |out: &mut Vec<ParamInfo>, prefix: String, c: &Conv2d| {
            out.push(ParamInfo {
                name: format!("{prefix}.weight"),
                shape: vec![c.w_out, c.w_in / c.groups, c.k, c.k],
                kind: ParamKind::ConvWeight {
                    fan_out: c.k * c.k * c.w_out,
                },
            });
            if c.bias {
                out.push(ParamInfo {
                    name: format!("{prefix}.bias"),
                    shape: vec![c.w_out],
                    kind: ParamKind::ConvBias {
                        fan_in: c.w_in / c.groups * c.k * c.k,
                    },
                });
            }
        };
        let conv_bn = |out: &mut Vec<ParamInfo>, owner: &str, cb: &ConvBn| {
            conv(out, cb.conv_path(owner), &cb.conv);
            let bn = cb.bn_path(owner);
            let c = cb.conv.w_out;
            let kinds = [
                (
                    "weight",
                    ParamKind::BnWeight {
                        final_bn: cb.final_bn,
                    },
                ),
                ("bias", ParamKind::BnBias),
                ("running_mean", ParamKind::BnRunningMean),
                ("running_var", ParamKind::BnRunningVar),
            ];
            for (suffix, kind) in kinds {
                out.push(ParamInfo {
                    name: format!("{bn}.{suffix}"),
                    shape: vec![c],
                    kind,
                });
            }
        };
        conv_bn(&mut out, "stem", &self.stem.conv);
        for b in &self.blocks {
            if let Shortcut::Projection(p) = &b.shortcut {
                conv_bn(&mut out, &b.key, p);
            }
            for op in &b.ops {
                match op {
                    Op::ConvBn(cb) => conv_bn(&mut out, &b.key, cb),
                    Op::Se(se) => {
                        for (name, c) in se.convs(&b.key) {
                            conv(&mut out, name, &c);
                        }
                    }
                }
            }
        }
        if let Some(cb) = &self.head.conv {
            conv_bn(&mut out, "head", cb);
        }
        let fc = &self.head.fc;
        out.push(ParamInfo {
            name: format!("{}.weight", fc.key),
            shape: vec![fc.w_out, fc.w_in],
            kind: ParamKind::FcWeight,
        });
        if fc.bias {
            out.push(ParamInfo {
                name: format!("{}.bias", fc.key),
                shape: vec![fc.w_out],
                kind: ParamKind::FcBias,
            });
        }
        out
    }

    /// Every conv+BN pair with its owner prefix (`stem`, `s1.b1`, `head`), in forward order.
    pub fn conv_bns(&self) -> Vec<(&str, &ConvBn)> {
        let mut out = vec![("stem", &self.stem.conv)];
        for b in &self.blocks {
            if let Shortcut::Projection(p) = &b.shortcut {
                out.push((b.key.as_str(), p));
            }
            for op in &b.ops {
                if let Op::ConvBn(cb) = op {
                    out.push((b.key.as_str(), cb));
                }
            }
        }
        if let Some(cb) = &self.head.conv {
            out.push(("head", cb));
        }
        out
    }
}

fn anynet(spec: &NetSpec, a: &AnyNet) -> Result<Network> {
    if a.stem_w == 0 {
        return Err(Error::spec("stem width must be positive"));
    }
    if !(a.se_r >= 0.0 && a.se_r.is_finite()) {
        return Err(Error::spec(format!("SE ratio {} must be >= 0", a.se_r)));
    }
    let stem_conv = match a.stem_type {
        StemType::SimpleStemIn => conv(spec.in_channels, a.stem_w, 3, 2, 1),
        StemType::ResStemIn => conv(spec.in_channels, a.stem_w, 7, 2, 1),
        StemType::ResStemCifar => conv(spec.in_channels, a.stem_w, 3, 1, 1),
    };
    let stem = Stem {
        conv: conv_bn("conv", "bn", stem_conv, true, false),
        pool: (a.stem_type == StemType::ResStemIn).then_some(MaxPool {
            key: "stem.pool",
            channels: a.stem_w,
            k: 3,
            stride: 2,
        }),
    };
    let mut blocks = Vec::with_capacity(a.stages.iter().map(|s| s.depth).sum());
    let mut stages = Vec::with_capacity(a.stages.len());
    let mut warnings = Vec::new();
    let mut w_in = a.stem_w;
    for (si, st) in a.stages.iter().enumerate() {
        let n = si + 1;
        if st.depth == 0 {
            return Err(Error::spec(format!("stage {n}: depth must be at least 1")));
        }
        if st.width == 0 {
            return Err(Error::spec(format!("stage {n}: width must be positive")));
        }
        if st.stride == 0 {
            return Err(Error::spec(format!("stage {n}: stride must be positive")));
        }
        let mut stride = st.stride;
        for bi in 0..st.depth {
            let key = format!("s{n}.b{}", bi + 1);
            let block = anynet_block(a, st, n, &key, w_in, stride, &mut warnings)?;
            if bi == 0 {
                stages.push(stage_info(st, &block));
            }
            blocks.push(Block { stage: si, ..block });
            w_in = st.width;
            stride = 1;
        }
    }
    let head_conv =
        (a.head_w > 0).then(|| conv_bn("conv", "bn", conv(w_in, a.head_w, 1, 1, 1), true, false));
    let fc_in = if a.head_w > 0 { a.head_w } else { w_in };
    Ok(Network {
        in_channels: spec.in_channels,
        activation: spec.activation,
        stem,
        blocks,
        head: Head {
            conv: head_conv,
            dropout: 0.0,
            fc: Linear {
                key: "head.fc",
                w_in: fc_in,
                w_out: spec.num_classes,
                bias: true,
            },
        },
        dc_ratio: 0.0,
        stages,
        warnings,
    })
}

fn stage_info(st: &crate::spec::Stage, first: &Block) -> StageInfo {
    // The spatial conv is the one with k > 1 (`b` in bottleneck and basic blocks).
    let spatial = first
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::ConvBn(cb) if cb.conv.k > 1 => Some(&cb.conv),
            _ => None,
        })
        .next_back();
    let w_se = first
        .ops
        .iter()
        .find_map(|op| match op {
            Op::Se(se) => Some(se.w_se),
            _ => None,
        })
        .unwrap_or(0);
    let (w_b, groups, kernel) = spatial.map_or((st.width, 1, 1), |c| (c.w_out, c.groups, c.k));
    StageInfo {
        depth: st.depth,
        width: st.width,
        stride: st.stride,
        bot_mul: st.bot_mul.unwrap_or(1.0),
        group_w: w_b / groups,
        w_b,
        groups,
        w_se,
        kernel,
    }
}

fn anynet_block(
    a: &AnyNet,
    st: &crate::spec::Stage,
    stage_no: usize,
    key: &str,
    w_in: usize,
    stride: usize,
    warnings: &mut Vec<String>,
) -> Result<Block> {
    let w_out = st.width;
    let needs_proj = w_in != w_out || stride != 1;
    // pycls's residual blocks project the shortcut when the shape changes; its linear
    // bottleneck (no activation after the sum) drops the shortcut instead.
    let residual = || {
        if needs_proj {
            Shortcut::Projection(conv_bn(
                "proj",
                "bn",
                conv(w_in, w_out, 1, stride, 1),
                false,
                false,
            ))
        } else {
            Shortcut::Identity
        }
    };
    let (ops, shortcut, act_after_sum) = match a.block_type {
        BlockType::VanillaBlock => (
            two_convs("a", "b", w_in, w_out, stride, false),
            Shortcut::None,
            false,
        ),
        BlockType::ResBasicBlock => (
            two_convs("f.a", "f.b", w_in, w_out, stride, true),
            residual(),
            true,
        ),
        BlockType::ResBottleneckBlock => (
            bottleneck_ops(a, st, stage_no, key, w_in, stride, warnings)?,
            residual(),
            true,
        ),
        BlockType::ResBottleneckLinearBlock => {
            let skip = if needs_proj {
                Shortcut::None
            } else {
                Shortcut::Identity
            };
            let ops = bottleneck_ops(a, st, stage_no, key, w_in, stride, warnings)?;
            (ops, skip, false)
        }
    };
    Ok(Block {
        key: key.to_string(),
        stage: 0,
        w_in,
        w_out,
        stride,
        ops,
        shortcut,
        act_after_sum,
        drop_connect: false,
    })
}

/// Two 3x3 convolutions (`{a}`, `{b}` with BN `{a}_bn`, `{b}_bn`): the vanilla block, or the
/// basic residual block whose second BN is the block's final BN (`residual`).
fn two_convs(
    a: &'static str,
    b: &'static str,
    w_in: usize,
    w_out: usize,
    stride: usize,
    residual: bool,
) -> Vec<Op> {
    let (a_bn, b_bn) = if residual {
        ("f.a_bn", "f.b_bn")
    } else {
        ("a_bn", "b_bn")
    };
    vec![
        Op::ConvBn(conv_bn(
            a,
            a_bn,
            conv(w_in, w_out, 3, stride, 1),
            true,
            false,
        )),
        Op::ConvBn(conv_bn(
            b,
            b_bn,
            conv(w_out, w_out, 3, 1, 1),
            !residual,
            residual,
        )),
    ]
}

/// The bottleneck's width and group count, checked as pycls computes them: `w_b =
/// round(w_out * bot_mul)`, `groups = w_b // group_w`.
fn bottleneck_width(
    a: &AnyNet,
    st: &crate::spec::Stage,
    stage_no: usize,
    key: &str,
    warnings: &mut Vec<String>,
) -> Result<(usize, usize)> {
    let w_out = st.width;
    let missing =
        |what: &str| Error::spec(format!("stage {stage_no}: {} needs {what}", a.block_type));
    let b = st
        .bot_mul
        .ok_or_else(|| missing("a bottleneck multiplier (BOT_MULS)"))?;
    let g = st
        .group_w
        .ok_or_else(|| missing("a group width (GROUP_WS)"))?;
    if !(b > 0.0 && b.is_finite()) {
        return Err(Error::spec(format!(
            "stage {stage_no}: bottleneck multiplier {b} must be positive"
        )));
    }
    let w_b = round_int(w_out as f64 * b);
    if w_b == 0 {
        return Err(Error::spec(format!(
            "stage {stage_no}: bottleneck width round({w_out} * {b}) is 0"
        )));
    }
    if g == 0 || g > w_b {
        return Err(Error::spec(format!(
            "stage {stage_no}: group width {g} must be between 1 and the bottleneck \
             width {w_b}"
        )));
    }
    let groups = w_b / g;
    if !w_b.is_multiple_of(groups) {
        return Err(Error::spec(format!(
            "stage {stage_no}: group width {g} does not divide the bottleneck width \
             {w_b} ({w_b} channels cannot form {groups} groups)"
        )));
    }
    if !w_b.is_multiple_of(g) && key.ends_with(".b1") {
        warnings.push(format!(
            "stage {stage_no}: group width {g} does not divide the bottleneck width \
             {w_b}; pycls uses {groups} groups of {}",
            w_b / groups
        ));
    }
    Ok((w_b, groups))
}

/// The bottleneck's ops: 1x1 reduce, grouped 3x3, optional SE, 1x1 expand (its BN final).
fn bottleneck_ops(
    a: &AnyNet,
    st: &crate::spec::Stage,
    stage_no: usize,
    key: &str,
    w_in: usize,
    stride: usize,
    warnings: &mut Vec<String>,
) -> Result<Vec<Op>> {
    let (w_b, groups) = bottleneck_width(a, st, stage_no, key, warnings)?;
    let w_se = round_int(w_in as f64 * a.se_r);
    let (s1, s3) = if a.stride_1x1 {
        (stride, 1)
    } else {
        (1, stride)
    };
    let mut ops = vec![
        Op::ConvBn(conv_bn(
            "f.a",
            "f.a_bn",
            conv(w_in, w_b, 1, s1, 1),
            true,
            false,
        )),
        Op::ConvBn(conv_bn(
            "f.b",
            "f.b_bn",
            conv(w_b, w_b, 3, s3, groups),
            true,
            false,
        )),
    ];
    if w_se > 0 {
        ops.push(Op::Se(Se {
            key: "f.se",
            w_in: w_b,
            w_se,
        }));
    }
    ops.push(Op::ConvBn(conv_bn(
        "f.c",
        "f.c_bn",
        conv(w_b, st.width, 1, 1, 1),
        false,
        true,
    )));
    Ok(ops)
}

fn effnet(spec: &NetSpec, e: &EffNet) -> Result<Network> {
    if e.stem_w == 0 || e.head_w == 0 {
        return Err(Error::spec(
            "EfficientNet stem and head widths must be positive",
        ));
    }
    let stem = Stem {
        conv: conv_bn(
            "conv",
            "bn",
            conv(spec.in_channels, e.stem_w, 3, 2, 1),
            true,
            false,
        ),
        pool: None,
    };
    let mut blocks = Vec::new();
    let mut stages = Vec::new();
    let mut w_in = e.stem_w;
    for (si, st) in e.stages.iter().enumerate() {
        check_effnet_stage(si + 1, st)?;
        let mut stride = st.stride;
        for bi in 0..st.depth {
            let (block, w_exp, w_se) = mbconv_block(e, st, si, bi, w_in, stride)?;
            if bi == 0 {
                stages.push(effnet_stage_info(st, w_exp, w_se));
            }
            blocks.push(block);
            w_in = st.width;
            stride = 1;
        }
    }
    let head_conv = conv_bn(
        "conv",
        "conv_bn",
        conv(w_in, e.head_w, 1, 1, 1),
        true,
        false,
    );
    Ok(Network {
        in_channels: spec.in_channels,
        activation: spec.activation,
        stem,
        blocks,
        head: Head {
            conv: Some(head_conv),
            dropout: e.dropout_ratio,
            fc: Linear {
                key: "head.fc",
                w_in: e.head_w,
                w_out: spec.num_classes,
                bias: true,
            },
        },
        dc_ratio: e.dc_ratio,
        stages,
        warnings: Vec::new(),
    })
}

/// Refuses an EfficientNet stage pycls could not build.
fn check_effnet_stage(n: usize, st: &crate::spec::EffStage) -> Result<()> {
    if st.depth == 0 || st.width == 0 || st.stride == 0 {
        return Err(Error::spec(format!(
            "stage {n}: depth, width and stride must be positive"
        )));
    }
    if st.kernel.is_multiple_of(2) {
        return Err(Error::spec(format!(
            "stage {n}: kernel {} must be odd",
            st.kernel
        )));
    }
    if !(st.exp_ratio > 0.0 && st.exp_ratio.is_finite()) {
        return Err(Error::spec(format!(
            "stage {n}: expansion ratio {} must be positive",
            st.exp_ratio
        )));
    }
    Ok(())
}

/// Block `bi` of stage `si`: pycls's MBConv (expand, depthwise, SE, linear projection),
/// with its expanded and SE widths.
fn mbconv_block(
    e: &EffNet,
    st: &crate::spec::EffStage,
    si: usize,
    bi: usize,
    w_in: usize,
    stride: usize,
) -> Result<(Block, usize, usize)> {
    let n = si + 1;
    // pycls truncates here (int()), unlike the AnyNet bottleneck's round().
    let w_exp = (w_in as f64 * st.exp_ratio) as usize;
    let w_se = (w_in as f64 * e.se_r) as usize;
    if w_exp == 0 || w_se == 0 {
        return Err(Error::spec(format!(
            "stage {n}: expanded width {w_exp} and SE width {w_se} must be positive"
        )));
    }
    let mut ops = Vec::new();
    if w_exp != w_in {
        ops.push(Op::ConvBn(conv_bn(
            "exp",
            "exp_bn",
            conv(w_in, w_exp, 1, 1, 1),
            true,
            false,
        )));
    }
    ops.push(Op::ConvBn(conv_bn(
        "dwise",
        "dwise_bn",
        conv(w_exp, w_exp, st.kernel, stride, w_exp),
        true,
        false,
    )));
    ops.push(Op::Se(Se {
        key: "se",
        w_in: w_exp,
        w_se,
    }));
    ops.push(Op::ConvBn(conv_bn(
        "lin_proj",
        "lin_proj_bn",
        conv(w_exp, st.width, 1, 1, 1),
        false,
        false,
    )));
    let skip = stride == 1 && w_in == st.width;
    let block = Block {
        key: format!("s{n}.b{}", bi + 1),
        stage: si,
        w_in,
        w_out: st.width,
        stride,
        ops,
        shortcut: if skip {
            Shortcut::Identity
        } else {
            Shortcut::None
        },
        act_after_sum: false,
        drop_connect: skip,
    };
    Ok((block, w_exp, w_se))
}

/// A stage's summary, from its first block's expanded and SE widths.
fn effnet_stage_info(st: &crate::spec::EffStage, w_exp: usize, w_se: usize) -> StageInfo {
    StageInfo {
        depth: st.depth,
        width: st.width,
        stride: st.stride,
        bot_mul: st.exp_ratio,
        group_w: 1,
        w_b: w_exp,
        groups: w_exp,
        w_se,
        kernel: st.kernel,
    }
}
