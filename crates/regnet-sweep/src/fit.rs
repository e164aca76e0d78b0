//! Fitting the quantized linear rule to per-block widths (the paper's Section 3.3 and
//! Figure 7: how well does a network follow `w_j = w0 * wm^round(log(u_j/w0)/log(wm))`,
//! `u_j = w0 + wa * j`?).
//!
//! **Objective.** As in the paper, the depth `d` is the network's, and `w0`, `wa`, `wm` are
//! chosen to minimize the mean log-ratio of predicted to observed per-block widths,
//! `e_fit = (1/d) sum_j |log(pred_j / w_j)|`, where `pred` are the quantized widths
//! `regnet_core::regnet::generate_widths` produces (before group compatibility).
//!
//! **Search.** `w0` runs over multiples of 8 within a factor 2 of the first width (the
//! first predicted width is always `w0`), nearest first, skipping those whose first block
//! alone costs more than the best fit so far; `wm` runs over a grid (default `[1.5, 3.0]`
//! in steps of 0.001, pycls's quantum for `WM`). For fixed `w0` and `wm`, each block's
//! quantization level `k_j` is a step function of `wa`, changing where
//! `log(1 + wa j / w0) / log(wm) = k + 1/2`, i.e. at `wa = w0 (wm^(k+1/2) - 1) / j`; the
//! fit sweeps these breakpoints in order, updating the error of the one block that
//! changes, so every `wa` in `[0, wa_max]` is covered exactly, not sampled. The reported
//! `wa` is the shortest decimal inside the best interval, and the reported fit is
//! recomputed from the widths `regnet_core` generates with it.
//!
//! Widths a RegNet generated are recovered exactly (`e_fit = 0`) when its `wm` is on the
//! grid, which holds for every `wm` pycls's sampler draws (multiples of 0.001).

use regnet_core::regnet::{QUANT, generate_widths};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Search ranges.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitOptions {
    /// `wm` range, inclusive.
    pub wm_range: (f64, f64),
    /// `wm` grid step (a power of ten at most 1).
    pub wm_step: f64,
    /// Largest `wa` considered (0: `max(256, 2 * max width)`).
    pub wa_max: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            wm_range: (1.5, 3.0),
            wm_step: 0.001,
            wa_max: 0.0,
        }
    }
}

/// The best fit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    /// Depth `d` (number of blocks).
    pub depth: usize,
    /// Initial width.
    pub w0: usize,
    /// Slope.
    pub wa: f64,
    /// Quantization multiplier.
    pub wm: f64,
    /// Every `wa` in this open interval gives the same widths.
    pub wa_interval: (f64, f64),
    /// Mean absolute log-ratio of fitted to observed widths.
    pub e_fit: f64,
    /// The fitted per-block widths.
    pub widths: Vec<usize>,
    /// The continuous widths `w0 + wa * j`.
    pub ws_cont: Vec<f64>,
    /// The fitted stages' widths.
    pub stage_widths: Vec<usize>,
    /// The fitted stages' depths.
    pub stage_depths: Vec<usize>,
}

/// `e_fit` of predicted against observed widths.
pub fn e_fit(pred: &[usize], obs: &[usize]) -> f64 {
    assert_eq!(pred.len(), obs.len(), "one prediction per block");
    let s: f64 = pred
        .iter()
        .zip(obs)
        .map(|(&p, &o)| (p as f64 / o as f64).ln().abs())
        .sum();
    s / obs.len() as f64
}

/// Fits the rule to per-block widths with the default search ranges.
pub fn fit_widths(widths: &[usize]) -> Result<Fit> {
    fit_widths_with(widths, &FitOptions::default())
}

/// Fits the rule to an AnyNet's stages (`depths[i]` blocks of width `widths[i]`).
pub fn fit_stages(depths: &[usize], widths: &[usize]) -> Result<Fit> {
    if depths.len() != widths.len() {
        return Err(Error::other(format!(
            "fit: {} depths but {} widths",
            depths.len(),
            widths.len()
        )));
    }
    let ws: Vec<usize> = depths
        .iter()
        .zip(widths)
        .flat_map(|(&d, &w)| std::iter::repeat_n(w, d))
        .collect();
    fit_widths(&ws)
}

/// The best interval found for one `(w0, wm)`.
struct Best {
    err: f64,
    w0: usize,
    wm: f64,
    lo: f64,
    hi: f64,
}

/// Sweeps `wa` for fixed `w0`, `wm`: the best `(error sum, interval)`.
fn sweep_wa(
    ws_ln: &[f64],
    w0: usize,
    wm: f64,
    wa_max: f64,
    bps: &mut Vec<(f64, u32)>,
    levels_ln: &mut Vec<f64>,
) -> (f64, f64, f64) {
    let d = ws_ln.len();
    let w0f = w0 as f64;
    let q = QUANT as f64;
    let level_ln = |k: usize, levels_ln: &mut Vec<f64>| -> f64 {
        while levels_ln.len() <= k {
            let kk = levels_ln.len() as f64;
            let w = ((w0f * wm.powf(kk)) / q).round_ties_even() * q;
            levels_ln.push(w.ln());
        }
        levels_ln[k]
    };
    levels_ln.clear();
    bps.clear();
    let lw = wm.ln();
    for j in 1..d {
        let mut k = 0.0;
        loop {
            let bp = w0f * ((k + 0.5) * lw).exp_m1() / j as f64;
            if bp >= wa_max {
                break;
            }
            bps.push((bp, j as u32));
            k += 1.0;
        }
    }
    bps.sort_by(|a, b| a.0.total_cmp(&b.0));
    let l0 = level_ln(0, levels_ln);
    let mut ks = vec![0usize; d];
    let mut err: f64 = ws_ln.iter().map(|w| (l0 - w).abs()).sum();
    let (mut best, mut best_lo, mut best_hi) = (err, 0.0, bps.first().map_or(wa_max, |b| b.0));
    let mut i = 0;
    while i < bps.len() {
        let x = bps[i].0;
        while i < bps.len() && bps[i].0 == x {
            let j = bps[i].1 as usize;
            let k = ks[j];
            let (a, b) = (level_ln(k, levels_ln), level_ln(k + 1, levels_ln));
            err += (b - ws_ln[j]).abs() - (a - ws_ln[j]).abs();
            ks[j] = k + 1;
            i += 1;
        }
        let next = bps.get(i).map_or(wa_max, |b| b.0);
        if err < best - 1e-12 && next > x {
            (best, best_lo, best_hi) = (err, x, next);
        }
    }
    (best, best_lo, best_hi)
}

/// The shortest decimal strictly inside `(lo, hi)` (or `lo` itself when it is 0), else the
/// midpoint.
fn nice_inside(lo: f64, hi: f64) -> f64 {
    if lo == 0.0 {
        return 0.0;
    }
    for digits in 0..7 {
        let step = 10f64.powi(-digits);
        let x = ((lo / step).floor() + 1.0) * step;
        // Round to the decimal so that 36.400000000000006 prints as 36.4.
        let x: f64 = format!("{x:.*}", digits as usize)
            .parse()
            .expect("a number");
        if x > lo && x < hi {
            return x;
        }
    }
    (lo + hi) / 2.0
}

/// The w0 candidates: multiples of 8 within a factor 2 of the first width, nearest first.
fn w0_candidates(first: f64) -> Vec<usize> {
    let mut w0s: Vec<usize> = (1..=(2.0 * first / QUANT as f64).ceil() as usize + 1)
        .map(|k| k * QUANT)
        .filter(|&w| (w as f64) >= first / 2.0 && (w as f64) <= 2.0 * first)
        .collect();
    if w0s.is_empty() {
        w0s.push(QUANT);
    }
    w0s.sort_by(|a, b| {
        let da = (*a as f64 / first).ln().abs();
        let db = (*b as f64 / first).ln().abs();
        da.total_cmp(&db).then(a.cmp(b))
    });
    w0s
}

/// Fits the rule to per-block widths.
pub fn fit_widths_with(widths: &[usize], opts: &FitOptions) -> Result<Fit> {
    if widths.is_empty() || widths.contains(&0) {
        return Err(Error::other(
            "fit: widths must be a non-empty list of positive numbers",
        ));
    }
    let (wm_lo, wm_hi) = opts.wm_range;
    if !(wm_lo > 1.0 && wm_lo <= wm_hi && opts.wm_step > 0.0) {
        return Err(Error::other(format!(
            "fit: wm range [{wm_lo}, {wm_hi}] must have 1 < low <= high, step > 0"
        )));
    }
    let d = widths.len();
    let max_w = *widths.iter().max().expect("non-empty");
    let wa_max = if opts.wa_max > 0.0 {
        opts.wa_max
    } else {
        (2.0 * max_w as f64).max(256.0)
    };
    let ws_ln: Vec<f64> = widths.iter().map(|&w| (w as f64).ln()).collect();
    let first = widths[0] as f64;
    let w0s = w0_candidates(first);
    // wm grid as exact decimals k * step (the values pycls's sampler produces).
    let inv = (1.0 / opts.wm_step).round();
    let (k_lo, k_hi) = ((wm_lo * inv).round() as i64, (wm_hi * inv).round() as i64);
    let mut best: Option<Best> = None;
    let (mut bps, mut levels) = (Vec::new(), Vec::new());
    for &w0 in &w0s {
        let first_cost = (w0 as f64 / first).ln().abs();
        if best.as_ref().is_some_and(|b| first_cost >= b.err - 1e-12) {
            continue;
        }
        for k in k_lo..=k_hi {
            let wm = k as f64 / inv;
            let (err, lo, hi) = sweep_wa(&ws_ln, w0, wm, wa_max, &mut bps, &mut levels);
            if best.as_ref().is_none_or(|b| err < b.err - 1e-12) {
                best = Some(Best {
                    err,
                    w0,
                    wm,
                    lo,
                    hi,
                });
            }
        }
    }
    let b = best.expect("at least one candidate");
    // Regenerate with regnet_core and report its widths; fall back to the interval's
    // midpoint if the chosen decimal sits on a floating-point boundary.
    let mut result = None;
    for wa in [nice_inside(b.lo, b.hi), (b.lo + b.hi) / 2.0] {
        let g = generate_widths(wa, b.w0, b.wm, d)?;
        let e = e_fit(&g.ws_all, widths);
        if (e - b.err / d as f64).abs() < 1e-9 {
            result = Some((wa, g, e));
            break;
        }
        result.get_or_insert((wa, g, e));
    }
    let (wa, g, e) = result.expect("two tries");
    Ok(Fit {
        depth: d,
        w0: b.w0,
        wa,
        wm: b.wm,
        wa_interval: (b.lo, b.hi),
        e_fit: e,
        widths: g.ws_all,
        ws_cont: g.ws_cont,
        stage_widths: g.widths,
        stage_depths: g.depths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_regnetx_200mf() {
        let g = generate_widths(36.44, 24, 2.49, 13).unwrap();
        let f = fit_widths(&g.ws_all).unwrap();
        assert_eq!(f.e_fit, 0.0);
        assert_eq!(f.widths, g.ws_all);
        assert_eq!((f.stage_widths, f.stage_depths), (g.widths, g.depths));
        assert!(f.wa > f.wa_interval.0 && f.wa < f.wa_interval.1);
    }

    #[test]
    fn imperfect_fits_report_their_error() {
        // Widths no quantized linear rule with wm <= 3 makes: 8 -> 1024 in one step.
        let ws = [8, 8, 1024, 1024];
        let f = fit_widths(&ws).unwrap();
        assert!(f.e_fit > 0.1, "{}", f.e_fit);
        assert!((f.e_fit - e_fit(&f.widths, &ws)).abs() < 1e-12);
        let g = generate_widths(f.wa, f.w0, f.wm, 4).unwrap();
        assert_eq!(g.ws_all, f.widths);
        // e_fit by hand: |log(16/8)| / 2 = 0.3466 for [8, 16] against [8, 8].
        assert!((e_fit(&[8, 16], &[8, 8]) - 2f64.ln() / 2.0).abs() < 1e-15);
    }

    #[test]
    fn shortest_decimal_inside() {
        assert_eq!(nice_inside(36.37, 36.52), 36.4);
        assert_eq!(nice_inside(3.2, 7.9), 4.0);
        assert_eq!(nice_inside(0.0, 5.0), 0.0);
    }

    #[test]
    fn bad_input() {
        assert!(fit_widths(&[]).is_err());
        assert!(fit_widths(&[8, 0]).is_err());
        assert!(fit_stages(&[1, 2], &[8]).is_err());
    }
}
