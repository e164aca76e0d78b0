//! Complexity of AnyNets and RegNets stage by stage, without building the layer plan.
//!
//! Rejection sampling counts the complexity of millions of candidate networks. The layer
//! plan of [`crate::network`] names every layer (`s2.b3.f.b`) and allocates per block;
//! here the count is summed per stage instead: a stage's first block (which may stride and
//! project) and `depth - 1` identical blocks after it. The sums are integer, so they equal
//! the walk of [`crate::complexity::complexity`] exactly (a test in `regnet-sweep` checks
//! this on many random candidates of every design space).
//!
//! The functions return `None` for any network they do not handle or that the layer plan
//! refuses: a caller then builds the full plan, which gives the exact verdict and its error
//! message. `Some` is only returned for networks that the plan builds, so a fast answer
//! never accepts what the plan would refuse; the counts are checked against the same
//! [`crate::limits`] as the plan's.

use crate::complexity::Complexity;
use crate::limits::{MAX_BLOCKS, MAX_CLASSES, MAX_STAGES, MAX_STRIDE, MAX_WIDTH};
use crate::regnet::{QUANT, RegNet, Rounding};
use crate::spec::{AnyNet, BlockType, Stage, StemType};

/// How many stages a RegNet's widths form, and how many its quantization allows (pycls
/// rejects sampled RegNets where the two differ).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegNetShape {
    /// Stages of the generated widths.
    pub num_stages: usize,
    /// Stages the quantization allows (`max k + 1`).
    pub total_stages: usize,
}

/// Python's `int(round(x))` (half to even), as the layer plan computes widths.
fn round_int(x: f64) -> usize {
    x.round_ties_even() as usize
}

/// The stages of a RegNet with pycls rounding, written into `stages` (cleared first): the
/// same widths, depths and group widths as [`RegNet::anynet`] gives, with no allocation
/// once `stages` has grown. `None` for torchvision rounding and for parameters that the
/// full generation might reject.
pub fn regnet_stages(r: &RegNet, stages: &mut Vec<Stage>) -> Option<RegNetShape> {
    stages.clear();
    let params_ok = r.rounding == Rounding::Pycls
        && r.wa >= 0.0
        && r.wa.is_finite()
        && r.w0 > 0
        && r.w0.is_multiple_of(QUANT)
        && r.w0 <= MAX_WIDTH
        && r.wm > 1.0
        && r.wm.is_finite()
        && (1..=MAX_BLOCKS).contains(&r.depth)
        && r.group_w > 0
        && r.group_w <= MAX_WIDTH
        && (1..=MAX_STRIDE).contains(&r.stride)
        && r.bot_mul > 0.0
        && r.bot_mul <= MAX_WIDTH as f64
        && (r.bot_mul <= 1.0 || r.bot_mul.fract() == 0.0);
    if !params_ok {
        return None;
    }
    // The arithmetic of `regnet::generate_widths`, operation for operation.
    let w0f = r.w0 as f64;
    let q = QUANT as f64;
    let ln_wm = r.wm.ln();
    let mut max_k = 0.0f64;
    for j in 0..r.depth {
        let u = j as f64 * r.wa + w0f;
        let k = ((u / w0f).ln() / ln_wm).round_ties_even();
        max_k = max_k.max(k);
        let wq = ((w0f * r.wm.powf(k)) / q).round_ties_even();
        if !(wq >= 1.0 && wq * q <= MAX_WIDTH as f64) {
            return None;
        }
        let width = wq as usize * QUANT;
        match stages.last_mut() {
            Some(s) if s.width == width => s.depth += 1,
            _ => stages.push(Stage {
                depth: 1,
                width,
                stride: r.stride,
                bot_mul: Some(r.bot_mul),
                group_w: Some(r.group_w),
            }),
        }
    }
    if stages.len() > MAX_STAGES {
        return None;
    }
    let shape = RegNetShape {
        num_stages: stages.len(),
        total_stages: max_k as usize + 1,
    };
    for s in stages.iter_mut() {
        (s.width, s.group_w) = compatible(s.width, r.bot_mul, r.group_w);
    }
    Some(shape)
}

/// One stage of `regnet::adjust_block_compatibility` (inputs already checked).
fn compatible(w: usize, b: f64, g: usize) -> (usize, Option<usize>) {
    let v = (w as f64 * b).max(1.0) as usize;
    let g = g.min(v);
    let m = if b > 1.0 { lcm(g, b as usize) } else { g };
    let v = m.max((v as f64 / m as f64).round_ties_even() as usize * m);
    ((v as f64 / b) as usize, Some(g))
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn lcm(a: usize, b: usize) -> usize {
    a / gcd(a, b) * b
}

/// Running totals in 128 bits (no network within the fast bounds comes near overflow).
#[derive(Default)]
struct Totals {
    flops: u128,
    params: u128,
    acts: u128,
}

impl Totals {
    /// `times` convs (no bias) with kernel `k`, at an output of `hw` pixels.
    fn conv(&mut self, k: usize, w_in: usize, w_out: usize, groups: usize, hw: u128, times: u128) {
        let per_pixel = (k * k) as u128 * w_in as u128 * w_out as u128;
        self.flops += times * (per_pixel * hw / groups as u128);
        self.params += times * (per_pixel / groups as u128);
        self.acts += times * (w_out as u128 * hw);
    }

    /// `times` convs and their BNs.
    fn conv_bn(&mut self, k: usize, w_in: usize, w_out: usize, g: usize, hw: u128, times: u128) {
        self.conv(k, w_in, w_out, g, hw, times);
        self.params += times * 2 * w_out as u128;
    }

    /// `times` squeeze-excitations gating `w` channels through `w_se` (1x1 convs with bias
    /// at 1x1).
    fn se(&mut self, w: usize, w_se: usize, times: u128) {
        let (w, s) = (w as u128, w_se as u128);
        let cx = w * s + s + s * w + w;
        self.flops += times * cx;
        self.params += times * cx;
        self.acts += times * (s + w);
    }

    fn result(&self) -> Option<Complexity> {
        Some(Complexity {
            flops: u64::try_from(self.flops).ok()?,
            params: u64::try_from(self.params).ok()?,
            acts: u64::try_from(self.acts).ok()?,
        })
    }
}

/// What one block of a stage looks like to the count.
struct BlockIn {
    w_in: usize,
    stride: usize,
    /// Input spatial size.
    h: usize,
    w: usize,
    /// Identical blocks counted at once.
    times: u128,
}

/// Counts `b.times` identical blocks of stage `st`; `None` where the plan would refuse
/// the block. Returns the output spatial size.
fn block(t: &mut Totals, a: &AnyNet, st: &Stage, b: &BlockIn) -> Option<(usize, usize)> {
    let w_out = st.width;
    let (ho, wo) = ((b.h - 1) / b.stride + 1, (b.w - 1) / b.stride + 1);
    let hw = ho as u128 * wo as u128;
    let needs_proj = b.w_in != w_out || b.stride != 1;
    let projection = match a.block_type {
        BlockType::VanillaBlock | BlockType::ResBottleneckLinearBlock => false,
        BlockType::ResBasicBlock | BlockType::ResBottleneckBlock => needs_proj,
    };
    if projection {
        t.conv_bn(1, b.w_in, w_out, 1, hw, b.times);
    }
    if !a.block_type.is_bottleneck() {
        t.conv_bn(3, b.w_in, w_out, 1, hw, b.times);
        t.conv_bn(3, w_out, w_out, 1, hw, b.times);
        return Some((ho, wo));
    }
    let bm = st.bot_mul.filter(|x| *x > 0.0 && x.is_finite())?;
    let g = st.group_w?;
    let w_b = round_int(w_out as f64 * bm);
    if w_b == 0 || w_b > MAX_WIDTH || g == 0 || g > w_b {
        return None;
    }
    let groups = w_b / g;
    if !w_b.is_multiple_of(groups) {
        return None;
    }
    let w_se = round_int(b.w_in as f64 * a.se_r);
    if w_se > MAX_WIDTH {
        return None;
    }
    // The strided conv (the 1x1 with `stride_1x1`, else the 3x3) gives `ho x wo`; the
    // other runs at the input size only when it comes first.
    let hw_a = if a.stride_1x1 {
        hw
    } else {
        b.h as u128 * b.w as u128
    };
    t.conv_bn(1, b.w_in, w_b, 1, hw_a, b.times);
    t.conv_bn(3, w_b, w_b, groups, hw, b.times);
    if w_se > 0 {
        t.se(w_b, w_se, b.times);
    }
    t.conv_bn(1, w_b, w_out, 1, hw, b.times);
    Some((ho, wo))
}

/// Checks the parts of an AnyNet besides its blocks that the plan checks.
fn anynet_ok(in_channels: usize, num_classes: usize, a: &AnyNet) -> bool {
    let blocks: usize = a.stages.iter().map(|s| s.depth.min(MAX_BLOCKS + 1)).sum();
    (1..=MAX_WIDTH).contains(&in_channels)
        && (1..=MAX_CLASSES).contains(&num_classes)
        && (1..=MAX_WIDTH).contains(&a.stem_w)
        && a.head_w <= MAX_WIDTH
        && a.se_r >= 0.0
        && a.se_r.is_finite()
        && a.stages.len() <= MAX_STAGES
        && blocks <= MAX_BLOCKS
        && a.stages.iter().all(|s| {
            s.depth > 0
                && (1..=MAX_WIDTH).contains(&s.width)
                && (1..=MAX_STRIDE).contains(&s.stride)
                && s.group_w.is_none_or(|g| g <= MAX_WIDTH)
        })
}

/// The complexity of an AnyNet with `in_channels` inputs and `num_classes` outputs at input
/// size `h x w`: the same numbers as [`crate::complexity::complexity`] of the network
/// [`crate::network::Network::from_spec`] builds, or `None` (see the module docs).
pub fn anynet_complexity(
    in_channels: usize,
    num_classes: usize,
    a: &AnyNet,
    h: usize,
    w: usize,
) -> Option<Complexity> {
    if !anynet_ok(in_channels, num_classes, a) {
        return None;
    }
    let mut t = Totals::default();
    let (k, stride) = match a.stem_type {
        StemType::SimpleStemIn => (3, 2),
        StemType::ResStemIn => (7, 2),
        StemType::ResStemCifar => (3, 1),
    };
    let (mut h, mut w) = (h.max(1), w.max(1));
    (h, w) = ((h - 1) / stride + 1, (w - 1) / stride + 1);
    t.conv_bn(k, in_channels, a.stem_w, 1, h as u128 * w as u128, 1);
    if a.stem_type == StemType::ResStemIn {
        (h, w) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1);
        t.acts += a.stem_w as u128 * h as u128 * w as u128;
    }
    let mut w_in = a.stem_w;
    for st in &a.stages {
        let first = BlockIn {
            w_in,
            stride: st.stride,
            h,
            w,
            times: 1,
        };
        (h, w) = block(&mut t, a, st, &first)?;
        if st.depth > 1 {
            let rest = BlockIn {
                w_in: st.width,
                stride: 1,
                h,
                w,
                times: st.depth as u128 - 1,
            };
            block(&mut t, a, st, &rest)?;
        }
        w_in = st.width;
    }
    if a.head_w > 0 {
        t.conv_bn(1, w_in, a.head_w, 1, h as u128 * w as u128, 1);
        w_in = a.head_w;
    }
    let fc = w_in as u128 * num_classes as u128 + num_classes as u128;
    t.flops += fc;
    t.params += fc;
    t.acts += num_classes as u128;
    t.result()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::complexity::complexity;
    use crate::network::Network;
    use crate::spec::{Arch, NetSpec};

    #[test]
    fn zoo_models_count_as_the_layer_plan() {
        let mut checked = 0;
        for m in crate::zoo::models() {
            let spec = m.spec();
            let slow = complexity(&Network::from_spec(&spec).unwrap(), 224, 224);
            let a = match &spec.arch {
                Arch::AnyNet(a) => a.clone(),
                Arch::RegNet(r) => {
                    let mut stages = Vec::new();
                    regnet_stages(r, &mut stages).unwrap();
                    let full = r.anynet().unwrap();
                    assert_eq!(stages, full.stages, "{}", m.name);
                    full
                }
                Arch::EffNet(_) => continue,
            };
            let NetSpec {
                in_channels,
                num_classes,
                ..
            } = spec;
            let fast = anynet_complexity(in_channels, num_classes, &a, 224, 224);
            assert_eq!(fast, Some(slow), "{}", m.name);
            checked += 1;
        }
        assert!(checked >= 20, "{checked} zoo models checked");
    }

    /// A small xorshift stream, for reproducible random networks without a dependency.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    #[test]
    fn random_anynets_of_every_block_and_stem_count_as_the_layer_plan() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut valid, mut invalid) = (0, 0);
        for case in 0..4000 {
            let n = 1 + rng.below(5);
            let stages = (0..n)
                .map(|_| Stage {
                    depth: 1 + rng.below(4),
                    width: 1 + rng.below(300),
                    stride: 1 + rng.below(3),
                    bot_mul: [None, Some(0.25), Some(0.5), Some(1.0), Some(2.0), Some(0.3)]
                        [rng.below(6)],
                    group_w: [None, Some(0), Some(1), Some(3), Some(8), Some(64)][rng.below(6)],
                })
                .collect();
            let a = AnyNet {
                stem_type: [
                    StemType::SimpleStemIn,
                    StemType::ResStemIn,
                    StemType::ResStemCifar,
                ][rng.below(3)],
                stem_w: rng.below(64),
                block_type: [
                    BlockType::VanillaBlock,
                    BlockType::ResBasicBlock,
                    BlockType::ResBottleneckBlock,
                    BlockType::ResBottleneckLinearBlock,
                ][rng.below(4)],
                stages,
                se_r: [0.0, 0.25, 0.1][rng.below(3)],
                head_w: [0, 0, 64][rng.below(3)],
                stride_1x1: rng.below(2) == 1,
            };
            let (in_channels, num_classes, size) = (1 + rng.below(3), rng.below(20), rng.below(80));
            let spec = NetSpec {
                in_channels,
                num_classes,
                activation: crate::spec::Activation::Relu,
                arch: Arch::AnyNet(a.clone()),
            };
            let slow = Network::from_spec(&spec).map(|net| complexity(&net, size, size + 3));
            let fast = anynet_complexity(in_channels, num_classes, &a, size, size + 3);
            assert_eq!(
                fast,
                slow.as_ref().ok().copied(),
                "case {case}: {a:?} {slow:?}"
            );
            if fast.is_some() {
                valid += 1
            } else {
                invalid += 1
            }
        }
        assert!(
            valid > 500 && invalid > 500,
            "{valid} valid, {invalid} invalid"
        );
    }
}
