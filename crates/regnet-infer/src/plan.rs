//! The execution plan: the layer plan compiled once, BN folded, epilogues fused, weights
//! packed. Built by walking `regnet_core::network::Network`, like the complexity count; it
//! describes nothing of its own.

use regnet_core::network::{self, Network, Op, Shortcut};
use regnet_nn::StateDict;
use regnet_nn::fold::fold_conv_bn;

use crate::conv1x1::Conv1x1;
use crate::direct::DirectConv;
use crate::epilogue::{Act, Epilogue};
use crate::error::InferError;
use crate::pool::{MaxPool, SqueezeExcite};
use crate::simd::SimdLevel;

/// A convolution, by the kernel that runs it.
#[derive(Clone, Debug)]
pub(crate) enum Conv {
    /// 1x1, ungrouped: GEMM.
    Pointwise(Conv1x1),
    /// Anything else: direct kernel.
    Direct(DirectConv),
}

impl Conv {
    /// Output channels.
    pub fn c_out(&self) -> usize {
        match self {
            Conv::Pointwise(c) => c.c_out,
            Conv::Direct(c) => c.c_out,
        }
    }

    /// Output height and width.
    pub fn out_hw(&self, h: usize, w: usize) -> (usize, usize) {
        match self {
            Conv::Pointwise(c) => ((h - 1) / c.stride + 1, (w - 1) / c.stride + 1),
            Conv::Direct(c) => c.out_hw(h, w),
        }
    }

    /// What it computes on an `h` x `w` input, for per-layer times: `conv 3x3 32->32 g2 /2
    /// at 112x112`.
    pub fn label(&self, [h, w]: [usize; 2]) -> String {
        let (k, c_in, c_out, groups, stride) = match self {
            Conv::Pointwise(c) => (1, c.c_in, c.c_out, 1, c.stride),
            Conv::Direct(c) => (c.k, c.c_in, c.c_out, c.groups, c.stride),
        };
        let g = if groups > 1 {
            format!(" g{groups}")
        } else {
            String::new()
        };
        let s = if stride > 1 {
            format!(" /{stride}")
        } else {
            String::new()
        };
        format!("conv {k}x{k} {c_in}->{c_out}{g}{s} at {h}x{w}")
    }

    /// Packs its weights for the packed kernels of `level` (see `packed::panel`).
    pub fn repack(&mut self, level: SimdLevel) {
        let panel = crate::packed::panel(level);
        match self {
            Conv::Pointwise(c) => c.repack(panel),
            Conv::Direct(c) => c.repack(panel),
        }
    }

    /// Multiply-adds of a call whose output holds `out_len` values.
    pub fn macs(&self, out_len: usize) -> u64 {
        let per_output = match self {
            Conv::Pointwise(c) => c.c_in,
            Conv::Direct(c) => c.k * c.k * c.c_in / c.groups,
        };
        (out_len * per_output) as u64
    }

    /// Runs on `x` (`[n, h, w, c_in]`) into `out`, with the fused epilogue.
    pub fn run(
        &self,
        level: SimdLevel,
        x: &[f32],
        dims: [usize; 3],
        scratch: &mut [f32],
        out: &mut [f32],
        residual: Option<&[f32]>,
    ) {
        match self {
            Conv::Pointwise(c) => c.run(level, x, dims, scratch, out, residual),
            Conv::Direct(c) => c.run(level, x, dims, out, residual),
        }
    }
}

/// One step of a block's branch.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    /// A convolution (BN folded, epilogue fused).
    Conv(Conv),
    /// Squeeze-excitation, in place.
    Se(SqueezeExcite),
}

/// What the last conv of a branch adds.
#[derive(Clone, Debug)]
pub(crate) enum Residual {
    /// Nothing.
    None,
    /// The block input.
    Identity,
    /// A projection of the block input.
    Projection(Conv),
}

/// A block of the body.
#[derive(Clone, Debug)]
pub(crate) struct BlockPlan {
    /// The branch, in order; the last step is a conv.
    pub steps: Vec<Step>,
    /// What is added by the last conv's epilogue.
    pub residual: Residual,
}

/// The whole network.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// Input channels.
    pub in_channels: usize,
    /// Stem conv.
    pub stem: Conv,
    /// Stem max pool (ResNet stem).
    pub pool: Option<MaxPool>,
    /// The body.
    pub blocks: Vec<BlockPlan>,
    /// Head conv (EfficientNet).
    pub head_conv: Option<Conv>,
    /// Classifier, as a 1x1 conv on the pooled features.
    pub fc: Conv1x1,
}

/// Folds and packs one conv+BN owned by `owner`.
fn conv(
    sd: &StateDict,
    owner: &str,
    cb: &network::ConvBn,
    eps: f64,
    ep: Epilogue,
) -> Result<Conv, InferError> {
    let f = fold_conv_bn(sd, owner, cb, eps)?;
    let c = &cb.conv;
    Ok(if c.k == 1 && c.groups == 1 {
        Conv::Pointwise(Conv1x1::new(&f.weight.data, f.bias, c.w_in, c.stride, ep))
    } else {
        Conv::Direct(DirectConv::new(
            &f.weight.data,
            f.bias,
            [c.w_in, c.k, c.stride, c.groups],
            ep,
        ))
    })
}

/// The SE of block `owner`.
fn se(sd: &StateDict, owner: &str, s: &network::Se, act: Act) -> Result<SqueezeExcite, InferError> {
    let get = |suffix: &str| {
        let name = format!("{owner}.{}.{suffix}", s.key);
        sd.get(&name)
            .map(|t| t.data.clone())
            .ok_or_else(|| InferError::Unsupported(format!("missing tensor {name}")))
    };
    Ok(SqueezeExcite {
        c: s.w_in,
        w_se: s.w_se,
        w1: get("f_ex.0.weight")?,
        b1: get("f_ex.0.bias")?,
        w2: get("f_ex.2.weight")?,
        b2: get("f_ex.2.bias")?,
        act,
    })
}

/// Compiles one block: the last conv of the branch takes the residual add and the
/// activation after the sum.
fn block(sd: &StateDict, b: &network::Block, act: Act, eps: f64) -> Result<BlockPlan, InferError> {
    let last = b.ops.len().checked_sub(1);
    if !matches!(b.ops.last(), Some(Op::ConvBn(_))) || matches!(b.ops.first(), Some(Op::Se(_))) {
        return Err(InferError::Unsupported(format!(
            "block {}: the branch must start and end with a conv",
            b.key
        )));
    }
    let residual = match &b.shortcut {
        Shortcut::None => Residual::None,
        Shortcut::Identity => Residual::Identity,
        Shortcut::Projection(p) => {
            Residual::Projection(conv(sd, &b.key, p, eps, Epilogue::default())?)
        }
    };
    let mut steps = Vec::with_capacity(b.ops.len());
    for (i, op) in b.ops.iter().enumerate() {
        steps.push(match op {
            Op::ConvBn(cb) => {
                let mut ep = Epilogue {
                    act: cb.act.then_some(act),
                    ..Epilogue::default()
                };
                if Some(i) == last {
                    ep.residual = !matches!(residual, Residual::None);
                    ep.act_after = b.act_after_sum.then_some(act);
                }
                Step::Conv(conv(sd, &b.key, cb, eps, ep)?)
            }
            Op::Se(s) => Step::Se(se(sd, &b.key, s, act)?),
        });
    }
    Ok(BlockPlan { steps, residual })
}

impl Plan {
    /// Packs every conv's weights for the packed kernels of `level`; those already packed
    /// for it stay as they are.
    pub fn repack(&mut self, level: SimdLevel) {
        self.stem.repack(level);
        for b in &mut self.blocks {
            for s in &mut b.steps {
                if let Step::Conv(c) = s {
                    c.repack(level);
                }
            }
            if let Residual::Projection(c) = &mut b.residual {
                c.repack(level);
            }
        }
        if let Some(c) = &mut self.head_conv {
            c.repack(level);
        }
        self.fc.repack(crate::packed::panel(level));
    }

    /// Compiles `net` with the weights of `sd` (checked against the plan first).
    pub fn compile(net: &Network, sd: &StateDict, eps: f64) -> Result<Plan, InferError> {
        sd.check(net, "state dict")?;
        let act = Act::from(net.activation);
        let with_act = |cb: &network::ConvBn| Epilogue {
            act: cb.act.then_some(act),
            ..Epilogue::default()
        };
        let stem = conv(sd, "stem", &net.stem.conv, eps, with_act(&net.stem.conv))?;
        let pool = net.stem.pool.as_ref().map(|p| MaxPool {
            k: p.k,
            stride: p.stride,
        });
        let blocks = net
            .blocks
            .iter()
            .map(|b| block(sd, b, act, eps))
            .collect::<Result<_, _>>()?;
        let head_conv = match &net.head.conv {
            Some(cb) => Some(conv(sd, "head", cb, eps, with_act(cb))?),
            None => None,
        };
        let fc = &net.head.fc;
        let tensor = |name: String| {
            sd.get(&name)
                .ok_or_else(|| InferError::Unsupported(format!("missing tensor {name}")))
        };
        let weight = tensor(format!("{}.weight", fc.key))?;
        let bias = if fc.bias {
            tensor(format!("{}.bias", fc.key))?.data.clone()
        } else {
            vec![0.0; fc.w_out]
        };
        Ok(Plan {
            in_channels: net.in_channels,
            stem,
            pool,
            blocks,
            head_conv,
            fc: Conv1x1::new(&weight.data, bias, fc.w_in, 1, Epilogue::default()),
        })
    }
}
