//! Complexity: flops (multiply-adds), parameters and activations, counted as pycls counts
//! them, by walking the layer plan of [`crate::network`].
//!
//! - conv: `k*k*w_in*w_out*h*w / groups` flops (+ `w_out*h*w` with bias), `k*k*w_in*w_out /
//!   groups` params (+ `w_out`), `w_out*h*w` acts, at the output size `(h-1)/stride + 1`;
//! - BN: `2*C` params; max-pool: output elements as acts; fc: like a 1x1 conv at 1x1;
//! - SE convs run at 1x1; activations, pooling, the SE product and residual sums count nothing.
//!
//! Counts are summed in 128 bits, where no network within [`crate::limits`] can overflow, and
//! reported as `u64`: [`try_complexity`] fails on a count that does not fit, never wraps.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::limits::MAX_IM_SIZE;
use crate::network::{Block, Conv2d, ConvBn, Network, Op, Shortcut};

/// Totals for a network at one input size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Complexity {
    /// Multiply-adds.
    pub flops: u64,
    /// Parameters (weights, biases, BN affine).
    pub params: u64,
    /// Output elements of convs, fc and the stem pool (batch 1).
    pub acts: u64,
}

/// One layer's share of the complexity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerComplexity {
    /// State-dict style name (`s1.b1.f.a`).
    pub name: String,
    /// Layer kind and shape (`conv3x3/2 g8`, `bn`, `maxpool3x3/2`, `fc`).
    pub kind: String,
    /// Input channels.
    pub w_in: usize,
    /// Output channels.
    pub w_out: usize,
    /// Output height.
    pub h: usize,
    /// Output width.
    pub w: usize,
    /// Multiply-adds.
    pub flops: u64,
    /// Parameters.
    pub params: u64,
    /// Activations.
    pub acts: u64,
}

/// Walks the plan, always summing, and listing rows only when asked (the sampler counts
/// millions of networks and must not format names).
struct Walker {
    h: usize,
    w: usize,
    /// Flops, params and acts so far (saturating: a sum past `u128::MAX` stays too large).
    total: [u128; 3],
    /// The first layer whose own count does not fit in `u64`.
    overflow: Option<String>,
    rows: Option<Vec<LayerComplexity>>,
}

/// A count as `u64`, or `u64::MAX` when it does not fit (the walker records where).
fn narrow(x: u128) -> u64 {
    u64::try_from(x).unwrap_or(u64::MAX)
}

impl Walker {
    fn add(&mut self, row: impl FnOnce() -> (String, String, usize, usize), cx: [u128; 3]) {
        for (t, c) in self.total.iter_mut().zip(cx) {
            *t = t.saturating_add(c);
        }
        let fits = cx.iter().all(|&c| u64::try_from(c).is_ok());
        if self.rows.is_some() || (!fits && self.overflow.is_none()) {
            let (name, kind, w_in, w_out) = row();
            if !fits && self.overflow.is_none() {
                self.overflow = Some(name.clone());
            }
            if let Some(rows) = &mut self.rows {
                rows.push(LayerComplexity {
                    name,
                    kind,
                    w_in,
                    w_out,
                    h: self.h,
                    w: self.w,
                    flops: narrow(cx[0]),
                    params: narrow(cx[1]),
                    acts: narrow(cx[2]),
                });
            }
        }
    }

    fn conv(&mut self, name: impl FnOnce() -> String, c: &Conv2d) {
        self.h = (self.h - 1) / c.stride + 1;
        self.w = (self.w - 1) / c.stride + 1;
        let (k, wi, wo, hw) = (
            c.k as u128,
            c.w_in as u128,
            c.w_out as u128,
            self.h as u128 * self.w as u128,
        );
        let g = (c.groups as u128).max(1);
        let b = u128::from(c.bias);
        // Saturating: widths and sizes within the limits cannot come near u128::MAX.
        let per_pixel = k.saturating_mul(k).saturating_mul(wi).saturating_mul(wo);
        let flops = (per_pixel.saturating_mul(hw) / g).saturating_add(b.saturating_mul(wo) * hw);
        let params = per_pixel / g + b * wo;
        let row = || {
            let mut kind = format!("conv{}x{}", c.k, c.k);
            if c.stride > 1 {
                kind += &format!("/{}", c.stride);
            }
            if c.groups > 1 {
                kind += &format!(" g{}", c.groups);
            }
            (name(), kind, c.w_in, c.w_out)
        };
        self.add(row, [flops, params, wo.saturating_mul(hw)]);
    }

    fn conv_bn(&mut self, owner: &str, cb: &ConvBn) {
        self.conv(|| cb.conv_path(owner), &cb.conv);
        let c = cb.conv.w_out;
        self.add(
            || (cb.bn_path(owner), "bn".into(), c, c),
            [0, 2 * c as u128, 0],
        );
    }

    fn block(&mut self, b: &Block) {
        if let Shortcut::Projection(p) = &b.shortcut {
            let (h, w) = (self.h, self.w);
            self.conv_bn(&b.key, p);
            (self.h, self.w) = (h, w);
        }
        for op in &b.ops {
            match op {
                Op::ConvBn(cb) => self.conv_bn(&b.key, cb),
                Op::Se(se) => {
                    let (h, w) = (self.h, self.w);
                    (self.h, self.w) = (1, 1);
                    for (name, c) in se.convs(&b.key) {
                        self.conv(|| name.clone(), &c);
                    }
                    (self.h, self.w) = (h, w);
                }
            }
        }
    }

    fn network(&mut self, net: &Network) {
        self.conv_bn("stem", &net.stem.conv);
        if let Some(pool) = &net.stem.pool {
            self.h = (self.h - 1) / pool.stride + 1;
            self.w = (self.w - 1) / pool.stride + 1;
            let acts = pool.channels as u128 * self.h as u128 * self.w as u128;
            let row = || {
                let kind = format!("maxpool{}x{}/{}", pool.k, pool.k, pool.stride);
                (pool.key.to_string(), kind, pool.channels, pool.channels)
            };
            self.add(row, [0, 0, acts]);
        }
        for b in &net.blocks {
            self.block(b);
        }
        if let Some(cb) = &net.head.conv {
            self.conv_bn("head", cb);
        }
        (self.h, self.w) = (1, 1);
        let fc = &net.head.fc;
        let (wi, wo, b) = (fc.w_in as u128, fc.w_out as u128, u128::from(fc.bias));
        let row = || (fc.key.to_string(), "fc".into(), fc.w_in, fc.w_out);
        self.add(row, [wi * wo + b * wo, wi * wo + b * wo, wo]);
    }
}

fn walker(h: usize, w: usize, rows: bool) -> Walker {
    Walker {
        h: h.max(1),
        w: w.max(1),
        total: [0; 3],
        overflow: None,
        rows: rows.then(Vec::new),
    }
}

impl Walker {
    /// The totals, or an error naming the first count that does not fit in `u64`.
    fn result(&self) -> Result<Complexity> {
        let [flops, params, acts] = self.total;
        let total = Complexity {
            flops: narrow(flops),
            params: narrow(params),
            acts: narrow(acts),
        };
        let fits = self.total.iter().all(|&t| u64::try_from(t).is_ok());
        match (&self.overflow, fits) {
            (None, true) => Ok(total),
            (Some(layer), _) => Err(Error::spec(format!(
                "the complexity of layer {layer} does not fit in a 64-bit count"
            ))),
            (None, false) => Err(Error::spec(
                "the network's total complexity does not fit in a 64-bit count",
            )),
        }
    }
}

fn check_size(h: usize, w: usize) -> Result<()> {
    crate::limits::check("image height", h, MAX_IM_SIZE)?;
    crate::limits::check("image width", w, MAX_IM_SIZE)
}

/// Per-layer complexity of `net` at input size `h x w`, in forward order. A count that does
/// not fit in `u64` shows as `u64::MAX`; [`try_layer_complexity`] makes it an error.
pub fn layer_complexity(net: &Network, h: usize, w: usize) -> Vec<LayerComplexity> {
    let mut wk = walker(h, w, true);
    wk.network(net);
    wk.rows.unwrap_or_default()
}

/// Per-layer complexity, or an error when the size is above [`MAX_IM_SIZE`] or a count does
/// not fit in `u64`.
pub fn try_layer_complexity(net: &Network, h: usize, w: usize) -> Result<Vec<LayerComplexity>> {
    check_size(h, w)?;
    let mut wk = walker(h, w, true);
    wk.network(net);
    wk.result()?;
    Ok(wk.rows.unwrap_or_default())
}

/// Total complexity of `net` at input size `h x w`. Never wraps: a count that does not fit
/// in `u64` is `u64::MAX` (use [`try_complexity`] to get an error instead). For networks built
/// by [`Network::from_spec`] the params always fit; flops can only overflow at huge sizes.
pub fn complexity(net: &Network, h: usize, w: usize) -> Complexity {
    let mut wk = walker(h, w, false);
    wk.network(net);
    let [flops, params, acts] = wk.total;
    Complexity {
        flops: narrow(flops),
        params: narrow(params),
        acts: narrow(acts),
    }
}

/// Total complexity, or an error when the size is above [`MAX_IM_SIZE`] or a count does not
/// fit in `u64`.
pub fn try_complexity(net: &Network, h: usize, w: usize) -> Result<Complexity> {
    check_size(h, w)?;
    let mut wk = walker(h, w, false);
    wk.network(net);
    wk.result()
}
