//! RegNet: per-block widths from the quantized linear rule, grouped into stages.
//!
//! Continuous widths `u_j = w0 + wa * j` (j < depth) are quantized to
//! `w_j = w0 * wm^round(log(u_j / w0) / log(wm))`, rounded to a multiple of 8; consecutive
//! blocks of equal width form a stage. Widths are then made compatible with the bottleneck
//! multiplier and group width. Rounding is half-to-even as in pycls (Python and numpy);
//! torchvision's variant rounds half up, works in float32 and bumps widths differently, which
//! changes some zoo models (timm's `*_tv`), so it is offered as [`Rounding::Torchvision`].

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::limits::{MAX_BLOCKS, MAX_WIDTH, check};
use crate::spec::{AnyNet, BlockType, Stage, StemType};

/// Widths are quantized to multiples of this.
pub const QUANT: usize = 8;

/// Which implementation's rounding turns RegNet parameters into widths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// pycls (and timm): float64, round half to even.
    #[default]
    Pycls,
    /// torchvision: float32 quantization and `_make_divisible` for group compatibility.
    Torchvision,
}

impl Rounding {
    /// `pycls` or `torchvision`.
    pub fn name(self) -> &'static str {
        match self {
            Rounding::Pycls => "pycls",
            Rounding::Torchvision => "torchvision",
        }
    }
}

/// A RegNet design: the quantized linear parameters plus the AnyNet parts they don't fix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegNet {
    /// Number of blocks `d`.
    pub depth: usize,
    /// Initial width `w0` (a multiple of 8).
    pub w0: usize,
    /// Slope `wa` (>= 0).
    pub wa: f64,
    /// Quantization multiplier `wm` (> 1).
    pub wm: f64,
    /// Group width `g`.
    pub group_w: usize,
    /// Bottleneck multiplier `b`.
    pub bot_mul: f64,
    /// Stride of every stage.
    pub stride: usize,
    /// SE ratio (0: RegNetX, 0.25: RegNetY).
    pub se_r: f64,
    /// Stem type.
    pub stem_type: StemType,
    /// Stem width.
    pub stem_w: usize,
    /// Block type.
    pub block_type: BlockType,
    /// Head conv width (0: none).
    pub head_w: usize,
    /// pycls or torchvision rounding.
    #[serde(default)]
    pub rounding: Rounding,
}

/// Per-block and per-stage widths generated from RegNet parameters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Widths {
    /// Continuous per-block widths `u_j = w0 + wa * j`.
    pub ws_cont: Vec<f64>,
    /// Quantized per-block widths (before group compatibility).
    pub ws_all: Vec<usize>,
    /// Per-stage widths (before group compatibility).
    pub widths: Vec<usize>,
    /// Per-stage depths.
    pub depths: Vec<usize>,
    /// Number of stages.
    pub num_stages: usize,
    /// Number of stages the quantization allows (`max k + 1`).
    pub total_stages: usize,
}

/// Checks the domain of the quantized linear rule (as pycls asserts it).
pub fn check_params(wa: f64, w0: usize, wm: f64, depth: usize) -> Result<()> {
    if !(wa >= 0.0 && wa.is_finite()) {
        return Err(Error::spec(format!("RegNet wa = {wa} must be >= 0")));
    }
    if w0 == 0 || !w0.is_multiple_of(QUANT) {
        return Err(Error::spec(format!(
            "RegNet w0 = {w0} must be a positive multiple of {QUANT}"
        )));
    }
    if !(wm > 1.0 && wm.is_finite()) {
        return Err(Error::spec(format!("RegNet wm = {wm} must be > 1")));
    }
    if depth == 0 {
        return Err(Error::spec("RegNet depth must be at least 1"));
    }
    check("RegNet depth", depth, MAX_BLOCKS)?;
    check("RegNet w0", w0, MAX_WIDTH)
}

/// A quantized width `w0 * wm^k` rounded to a multiple of [`QUANT`], checked against
/// [`MAX_WIDTH`] before it becomes an integer (a huge `wa` or `wm` must not saturate and wrap).
fn quantized_width(w: f64) -> Result<usize> {
    let q = (w / QUANT as f64).round_ties_even();
    let v = q * QUANT as f64;
    if v.is_nan() || v > MAX_WIDTH as f64 {
        return Err(Error::spec(format!(
            "RegNet parameters generate a block width of {w:.0}, above the limit of {MAX_WIDTH}"
        )));
    }
    Ok(q as usize * QUANT)
}

/// Generates per-block and per-stage widths with pycls's float64, half-to-even arithmetic.
pub fn generate_widths(wa: f64, w0: usize, wm: f64, depth: usize) -> Result<Widths> {
    check_params(wa, w0, wm, depth)?;
    let w0f = w0 as f64;
    let ws_cont: Vec<f64> = (0..depth).map(|j| j as f64 * wa + w0f).collect();
    let ks: Vec<f64> = ws_cont
        .iter()
        .map(|u| ((u / w0f).ln() / wm.ln()).round_ties_even())
        .collect();
    let ws_all: Vec<usize> = ks
        .iter()
        .map(|&k| quantized_width(w0f * wm.powf(k)))
        .collect::<Result<_>>()?;
    let total_stages = ks.iter().cloned().fold(0.0, f64::max) as usize + 1;
    Ok(group_stages(ws_cont, ws_all, total_stages))
}

/// Generates widths the way torchvision does (float32 tensors, `torch.round`).
pub fn generate_widths_tv(wa: f64, w0: usize, wm: f64, depth: usize) -> Result<Widths> {
    check_params(wa, w0, wm, depth)?;
    // torch.arange(depth) * w_a + w_0 is a float32 tensor; math.log(w_m) stays a double
    // until the division with the float32 tensor rounds it.
    let (wa32, w032, wm32) = (wa as f32, w0 as f32, wm as f32);
    let log_wm = wm.ln() as f32;
    let ws_cont32: Vec<f32> = (0..depth).map(|j| j as f32 * wa32 + w032).collect();
    let ks: Vec<f32> = ws_cont32
        .iter()
        .map(|u| ((u / w032).ln() / log_wm).round_ties_even())
        .collect();
    let ws_all: Vec<usize> = ks
        .iter()
        .map(|&k| {
            quantized_width(
                ((w032 * wm32.powf(k)) / QUANT as f32).round_ties_even() as f64 * QUANT as f64,
            )
        })
        .collect::<Result<_>>()?;
    let total_stages = ks.iter().cloned().fold(0.0, f32::max) as usize + 1;
    let ws_cont = ws_cont32.iter().map(|&u| u as f64).collect();
    Ok(group_stages(ws_cont, ws_all, total_stages))
}

fn group_stages(ws_cont: Vec<f64>, ws_all: Vec<usize>, total_stages: usize) -> Widths {
    // pycls uses np.unique (sorted); torchvision splits where the width changes. The
    // widths are non-decreasing (wa >= 0), so both give the same runs.
    let mut widths: Vec<usize> = Vec::new();
    let mut depths: Vec<usize> = Vec::new();
    for &w in &ws_all {
        if widths.last() == Some(&w) {
            *depths.last_mut().expect("non-empty") += 1;
        } else {
            widths.push(w);
            depths.push(1);
        }
    }
    Widths {
        num_stages: widths.len(),
        ws_cont,
        ws_all,
        widths,
        depths,
        total_stages,
    }
}

/// pycls's `adjust_block_compatibility`: makes each stage's bottleneck width a multiple of
/// its group width (and of `b` when `b > 1`), shrinking the group width to the bottleneck
/// width where needed. Returns the adjusted `(widths, group widths)`.
pub fn adjust_block_compatibility(
    ws: &[usize],
    bs: &[f64],
    gs: &[usize],
) -> Result<(Vec<usize>, Vec<usize>)> {
    check_compat_inputs(ws, bs, gs)?;
    let mut out_ws = Vec::with_capacity(ws.len());
    let mut out_gs = Vec::with_capacity(ws.len());
    for ((&w, &b), &g) in ws.iter().zip(bs).zip(gs) {
        let v = (w as f64 * b).max(1.0) as usize;
        let g = g.min(v);
        let m = if b > 1.0 { lcm(g, b as usize) } else { g };
        let v = m.max((v as f64 / m as f64).round_ties_even() as usize * m);
        out_ws.push((v as f64 / b) as usize);
        out_gs.push(g);
    }
    Ok((out_ws, out_gs))
}

/// torchvision's `_adjust_widths_groups_compatibilty` (with `_make_divisible`).
pub fn adjust_widths_groups_tv(
    ws: &[usize],
    bs: &[f64],
    gs: &[usize],
) -> Result<(Vec<usize>, Vec<usize>)> {
    check_compat_inputs(ws, bs, gs)?;
    let mut out_ws = Vec::with_capacity(ws.len());
    let mut out_gs = Vec::with_capacity(ws.len());
    for ((&w, &b), &g) in ws.iter().zip(bs).zip(gs) {
        let w_bot = (w as f64 * b) as usize;
        let g = g.min(w_bot).max(1);
        let w_bot = make_divisible(w_bot as f64, g);
        out_ws.push((w_bot as f64 / b) as usize);
        out_gs.push(g);
    }
    Ok((out_ws, out_gs))
}

/// torchvision's `_make_divisible(v, divisor)` with `min_value = divisor`.
fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut new_v = divisor.max(((v + d / 2.0) as usize / divisor) * divisor);
    if (new_v as f64) < 0.9 * v {
        new_v += divisor;
    }
    new_v
}

fn check_compat_inputs(ws: &[usize], bs: &[f64], gs: &[usize]) -> Result<()> {
    for ((&w, &b), &g) in ws.iter().zip(bs).zip(gs) {
        if w == 0 || g == 0 || !(b > 0.0 && b.is_finite()) {
            return Err(Error::spec(format!(
                "width {w}, bottleneck multiplier {b} and group width {g} must all be positive"
            )));
        }
        check("width", w, MAX_WIDTH)?;
        check("group width", g, MAX_WIDTH)?;
        if b > MAX_WIDTH as f64 {
            return Err(Error::spec(format!(
                "bottleneck multiplier {b} is above the limit of {MAX_WIDTH}"
            )));
        }
        if b > 1.0 && b.fract() != 0.0 {
            return Err(Error::spec(format!(
                "bottleneck multiplier {b} must be below 1 or a whole number"
            )));
        }
    }
    Ok(())
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn lcm(a: usize, b: usize) -> usize {
    a / gcd(a, b) * b
}

impl RegNet {
    /// Per-block and per-stage widths before group compatibility.
    pub fn widths(&self) -> Result<Widths> {
        match self.rounding {
            Rounding::Pycls => generate_widths(self.wa, self.w0, self.wm, self.depth),
            Rounding::Torchvision => generate_widths_tv(self.wa, self.w0, self.wm, self.depth),
        }
    }

    /// The AnyNet this RegNet generates (pycls's `generate_regnet_full`).
    pub fn anynet(&self) -> Result<AnyNet> {
        if self.group_w == 0 {
            return Err(Error::spec("RegNet group_w must be positive"));
        }
        if self.stride == 0 {
            return Err(Error::spec("RegNet stride must be positive"));
        }
        let w = self.widths()?;
        let n = w.num_stages;
        let bs = vec![self.bot_mul; n];
        let gs = vec![self.group_w; n];
        let (ws, gs) = match self.rounding {
            Rounding::Pycls => adjust_block_compatibility(&w.widths, &bs, &gs)?,
            Rounding::Torchvision => adjust_widths_groups_tv(&w.widths, &bs, &gs)?,
        };
        let stages = (0..n)
            .map(|i| Stage {
                depth: w.depths[i],
                width: ws[i],
                stride: self.stride,
                bot_mul: Some(bs[i]),
                group_w: Some(gs[i]),
            })
            .collect();
        Ok(AnyNet {
            stem_type: self.stem_type,
            stem_w: self.stem_w,
            block_type: self.block_type,
            stages,
            se_r: self.se_r,
            head_w: self.head_w,
            stride_1x1: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regnetx_200mf_stages() {
        // pycls RegNetX-200MF: d=13, w0=24, wa=36.44, wm=2.49, g=8.
        let w = generate_widths(36.44, 24, 2.49, 13).unwrap();
        assert_eq!(w.widths, vec![24, 56, 152, 368]);
        assert_eq!(w.depths, vec![1, 1, 4, 7]);
        assert_eq!(w.total_stages, 4);
    }

    #[test]
    fn ties_round_to_even() {
        // 392 / 16 = 24.5 must round to 24 (RegNetX-400MF's group compatibility).
        let (ws, gs) = adjust_block_compatibility(&[392], &[1.0], &[16]).unwrap();
        assert_eq!((ws, gs), (vec![384], vec![16]));
        // torchvision rounds the same case up.
        let (ws, _) = adjust_widths_groups_tv(&[392], &[1.0], &[16]).unwrap();
        assert_eq!(ws, vec![400]);
    }

    #[test]
    fn group_width_shrinks_to_bottleneck_width() {
        let (ws, gs) = adjust_block_compatibility(&[24], &[0.25], &[16]).unwrap();
        assert_eq!((ws, gs), (vec![24], vec![6]));
        let (ws, gs) = adjust_block_compatibility(&[100], &[2.0], &[3]).unwrap();
        // v = 200, m = lcm(3, 2) = 6, round(200 / 6) = 33 -> 198 -> w = 99.
        assert_eq!((ws, gs), (vec![99], vec![3]));
    }

    #[test]
    fn domain_errors() {
        assert!(generate_widths(-1.0, 24, 2.5, 10).is_err());
        assert!(generate_widths(10.0, 20, 2.5, 10).is_err());
        assert!(generate_widths(10.0, 24, 1.0, 10).is_err());
        assert!(generate_widths(10.0, 24, 2.0, 0).is_err());
        assert!(adjust_block_compatibility(&[64], &[1.5], &[8]).is_err());
    }
}
