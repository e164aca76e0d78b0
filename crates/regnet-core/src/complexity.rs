//! Complexity: flops (multiply-adds), parameters and activations, counted as pycls counts
//! them, by walking the layer plan of [`crate::network`].
//!
//! - conv: `k*k*w_in*w_out*h*w / groups` flops (+ `w_out*h*w` with bias), `k*k*w_in*w_out /
//!   groups` params (+ `w_out`), `w_out*h*w` acts, at the output size `(h-1)/stride + 1`;
//! - BN: `2*C` params; max-pool: output elements as acts; fc: like a 1x1 conv at 1x1;
//! - SE convs run at 1x1; activations, pooling, the SE product and residual sums count nothing.

use serde::Serialize;

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
    total: Complexity,
    rows: Option<Vec<LayerComplexity>>,
}

impl Walker {
    fn add(&mut self, row: impl FnOnce() -> (String, String, usize, usize), cx: [u64; 3]) {
        self.total.flops += cx[0];
        self.total.params += cx[1];
        self.total.acts += cx[2];
        if let Some(rows) = &mut self.rows {
            let (name, kind, w_in, w_out) = row();
            rows.push(LayerComplexity {
                name,
                kind,
                w_in,
                w_out,
                h: self.h,
                w: self.w,
                flops: cx[0],
                params: cx[1],
                acts: cx[2],
            });
        }
    }

    fn conv(&mut self, name: impl FnOnce() -> String, c: &Conv2d) {
        self.h = (self.h - 1) / c.stride + 1;
        self.w = (self.w - 1) / c.stride + 1;
        let (k, wi, wo, hw) = (
            c.k as u64,
            c.w_in as u64,
            c.w_out as u64,
            (self.h * self.w) as u64,
        );
        let g = c.groups as u64;
        let b = u64::from(c.bias);
        let flops = k * k * wi * wo * hw / g + b * wo * hw;
        let params = k * k * wi * wo / g + b * wo;
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
        self.add(row, [flops, params, wo * hw]);
    }

    fn conv_bn(&mut self, owner: &str, cb: &ConvBn) {
        self.conv(|| cb.conv_path(owner), &cb.conv);
        let c = cb.conv.w_out;
        self.add(
            || (cb.bn_path(owner), "bn".into(), c, c),
            [0, 2 * c as u64, 0],
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
                    let squeeze = conv1x1_bias(se.w_in, se.w_se);
                    let excite = conv1x1_bias(se.w_se, se.w_in);
                    self.conv(|| format!("{}.{}.f_ex.0", b.key, se.key), &squeeze);
                    self.conv(|| format!("{}.{}.f_ex.2", b.key, se.key), &excite);
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
            let acts = (pool.channels * self.h * self.w) as u64;
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
        let (wi, wo, b) = (fc.w_in as u64, fc.w_out as u64, u64::from(fc.bias));
        let row = || (fc.key.to_string(), "fc".into(), fc.w_in, fc.w_out);
        self.add(row, [wi * wo + b * wo, wi * wo + b * wo, wo]);
    }
}

fn conv1x1_bias(w_in: usize, w_out: usize) -> Conv2d {
    Conv2d {
        w_in,
        w_out,
        k: 1,
        stride: 1,
        groups: 1,
        bias: true,
    }
}

fn walker(h: usize, w: usize, rows: bool) -> Walker {
    Walker {
        h: h.max(1),
        w: w.max(1),
        total: Complexity::default(),
        rows: rows.then(Vec::new),
    }
}

/// Per-layer complexity of `net` at input size `h x w`, in forward order.
pub fn layer_complexity(net: &Network, h: usize, w: usize) -> Vec<LayerComplexity> {
    let mut wk = walker(h, w, true);
    wk.network(net);
    wk.rows.unwrap_or_default()
}

/// Total complexity of `net` at input size `h x w`.
pub fn complexity(net: &Network, h: usize, w: usize) -> Complexity {
    let mut wk = walker(h, w, false);
    wk.network(net);
    wk.total
}
