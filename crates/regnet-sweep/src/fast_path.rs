//! The fast verdict on a candidate whose network only the design space (or one
//! `regnet_sampler`) decides.
//!
//! Rejection sampling judges up to millions of candidates, most of them rejected for their
//! flops. The general path sets the sampled values on a copy of the base config, builds its
//! spec and full layer plan (every layer named) and walks it. When the sampled network
//! parameters are the only model keys that change from one candidate to the next, the rest
//! of the network (stem, block type, SE, strides, head, classes, image size) is fixed, so
//! it is read once from the base config, and each candidate's stages are counted with
//! [`regnet_core::fast_complexity`], stage by stage and without allocating. Where that
//! declines (a network the layer plan might refuse, torchvision rounding), the candidate
//! goes the general way, which gives the exact verdict and message.

use regnet_core::config::Config;
use regnet_core::fast_complexity::{anynet_complexity, regnet_stages};
use regnet_core::regnet::{RegNet, Rounding};
use regnet_core::spec::{AnyNet, Arch};

use crate::apply;
use crate::constraints::{Accepted, Constraints, Cx, Rejection};
use crate::design_space::{AnyNetDraw, DesignSpace, SpaceDraw};
use crate::sampler::{RegNetParams, Sampler};
use crate::sweep_config::SweepConfig;

/// The sampled values that decide a candidate's network.
#[derive(Clone, Copy, Debug)]
pub enum NetDraw<'a> {
    /// A RegNet's parameters (RegNet design space or `regnet_sampler`).
    RegNet(&'a RegNetParams),
    /// An AnyNet design space's stages.
    AnyNet(&'a AnyNetDraw),
}

impl<'a> From<&'a SpaceDraw> for NetDraw<'a> {
    fn from(d: &'a SpaceDraw) -> Self {
        match d {
            SpaceDraw::AnyNet(a) => NetDraw::AnyNet(a),
            SpaceDraw::RegNet(r) => NetDraw::RegNet(r),
        }
    }
}

/// Where a sweep's network parameters come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetSource {
    /// `SETUP.DESIGN_SPACE`.
    DesignSpace,
    /// The `regnet_sampler` at this index of `SETUP.SAMPLERS`.
    Sampler(usize),
}

/// The fixed part of a sweep's networks, for judging candidates fast.
#[derive(Clone, Debug)]
pub struct FastPath {
    /// Where the network parameters come from.
    pub source: NetSource,
    in_channels: usize,
    num_classes: usize,
    im_size: usize,
    /// The RegNet of the base config (its sampled fields are replaced per candidate).
    regnet: Option<RegNet>,
    /// The AnyNet of the base config (its stages are replaced per candidate).
    anynet: AnyNet,
    constraints: Constraints,
}

/// Placeholder values that build a valid network (an AnyNet of `stages` stages, else a
/// RegNet), to read the fixed parts of the base config through `Config::spec`: the same
/// code that builds every candidate's spec.
fn placeholder(anynet_stages: Option<usize>) -> SpaceDraw {
    match anynet_stages {
        Some(n) => SpaceDraw::AnyNet(AnyNetDraw {
            depths: vec![1; n],
            widths: vec![8; n],
            bot_muls: vec![1.0; n],
            group_ws: vec![1; n],
        }),
        None => SpaceDraw::RegNet(RegNetParams {
            depth: 1,
            w0: 8,
            wa: 0.0,
            wm: 2.0,
            group_w: 8,
            bot_mul: 1.0,
        }),
    }
}

/// Where the network parameters come from, if nothing else sets a model key.
fn net_source(sweep: &SweepConfig) -> Option<NetSource> {
    let s = &sweep.setup;
    let regnet_samplers: Vec<usize> = (s.samplers.iter().enumerate())
        .filter(|(_, (_, sm))| matches!(sm, Sampler::RegNet(_)))
        .map(|(i, _)| i)
        .collect();
    let source = match (&s.design_space, regnet_samplers.as_slice()) {
        (Some(_), []) => NetSource::DesignSpace,
        (None, [i]) => NetSource::Sampler(*i),
        _ => return None,
    };
    // Any other sampled model key (SE ratio, image size, ...) changes the fixed part.
    let others_fixed = s.samplers.iter().enumerate().all(|(i, (param, sm))| {
        NetSource::Sampler(i) == source || sm.keys(param).iter().all(|k| apply::setter(k).is_none())
    });
    others_fixed.then_some(source)
}

impl FastPath {
    /// The fast path of `sweep`, or `None` where candidates must go the general way.
    pub fn new(sweep: &SweepConfig) -> Option<FastPath> {
        let source = net_source(sweep)?;
        let s = &sweep.setup;
        let anynet_stages = match (&s.design_space, source) {
            (Some(DesignSpace::AnyNet(a)), NetSource::DesignSpace) => Some(a.num_stages),
            _ => None,
        };
        let mut cfg: Config = s.base_cfg.clone();
        for (k, v) in placeholder(anynet_stages).to_params() {
            apply::setter(&k)?(&mut cfg, &v).ok()?;
        }
        let spec = cfg.spec().ok()?;
        let (regnet, anynet) = match (spec.arch, anynet_stages) {
            (Arch::RegNet(r), None) if r.rounding == Rounding::Pycls => {
                let a = r.anynet().ok()?;
                (Some(r), a)
            }
            (Arch::AnyNet(a), Some(_)) => (None, a),
            _ => return None,
        };
        Some(FastPath {
            source,
            in_channels: spec.in_channels,
            num_classes: spec.num_classes,
            im_size: cfg.im_size(),
            regnet,
            anynet,
            constraints: s.constraints.clone(),
        })
    }

    /// A scratch network for [`FastPath::check`], one per thread.
    pub fn scratch(&self) -> AnyNet {
        self.anynet.clone()
    }

    /// Writes the candidate's stages into `net`; for RegNets, also the number of stages
    /// the widths form and the number the quantization allows. `None`: go the general way.
    fn stages(&self, draw: NetDraw<'_>, net: &mut AnyNet) -> Option<Option<(usize, usize)>> {
        match (draw, &self.regnet) {
            (NetDraw::RegNet(p), Some(base)) => {
                let r = RegNet {
                    depth: p.depth,
                    w0: p.w0,
                    wa: p.wa,
                    wm: p.wm,
                    group_w: p.group_w,
                    bot_mul: p.bot_mul,
                    ..base.clone()
                };
                let shape = regnet_stages(&r, &mut net.stages)?;
                Some(Some((shape.num_stages, shape.total_stages)))
            }
            (NetDraw::AnyNet(d), None) => {
                if d.depths.len() != self.anynet.stages.len() {
                    return None;
                }
                net.stages.clone_from(&self.anynet.stages);
                for (i, st) in net.stages.iter_mut().enumerate() {
                    st.depth = d.depths[i];
                    st.width = *d.widths.get(i)?;
                    st.bot_mul = Some(*d.bot_muls.get(i)?);
                    st.group_w = Some(*d.group_ws.get(i)?);
                }
                Some(None)
            }
            _ => None,
        }
    }

    /// The candidate's complexity at `TRAIN.IM_SIZE`, ignoring the constraints; `None`
    /// where the fast path declines.
    pub fn complexity(&self, draw: NetDraw<'_>, net: &mut AnyNet) -> Option<Cx> {
        self.stages(draw, net)?;
        let s = self.im_size;
        anynet_complexity(self.in_channels, self.num_classes, net, s, s).map(Cx::from)
    }

    /// The candidate's verdict, as [`Constraints::check`] gives it for the full config;
    /// `None` where the fast path declines.
    pub fn check(
        &self,
        draw: NetDraw<'_>,
        net: &mut AnyNet,
    ) -> Option<Result<Accepted, Rejection>> {
        if let Some((num, total)) = self.stages(draw, net)? {
            let (lo, hi) = self.constraints.num_stages;
            if num != total || !(lo..=hi).contains(&num) {
                return Some(Err(Rejection::RegNetStages));
            }
        }
        let s = self.im_size;
        let cx = anynet_complexity(self.in_channels, self.num_classes, net, s, s)?;
        Some(self.constraints.check_cx(cx.into()))
    }
}
