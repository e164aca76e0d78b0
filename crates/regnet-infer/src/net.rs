//! [`CompiledNet`]: the compiled plan, its SIMD level and its buffer arena.

use rayon::prelude::*;
use regnet_core::network::Network;
use regnet_nn::StateDict;

use crate::error::InferError;
use crate::plan::{BlockPlan, Conv, Plan, Residual, Step};
use crate::pool::global_avg_pool;
use crate::simd::SimdLevel;

/// Most elements of one activation buffer (1 GiB of f32): larger inputs are refused before
/// anything is allocated.
pub const MAX_ACTIVATION_ELEMS: usize = 1 << 28;

/// Environment variable that forces the SIMD level (`portable`, `avx2`, `avx512`).
pub const SIMD_ENV: &str = "REGNET_SIMD";

/// Activation buffers, allocated for the largest activation of the last input shape and
/// reused by every call with that shape.
#[derive(Debug, Default)]
struct Arena {
    /// `[n, h, w]` they were sized for.
    dims: [usize; 3],
    /// The current activation (block input / output).
    x: Vec<f32>,
    /// Branch intermediates, projection output, block output.
    spare: [Vec<f32>; 4],
    /// Subsampled input of a strided 1x1 conv.
    scratch: Vec<f32>,
    /// SE gates and pooled features, `[n, c]`.
    gate: Vec<f32>,
}

/// A network compiled for the CPU: see the crate documentation.
#[derive(Debug)]
pub struct CompiledNet {
    plan: Plan,
    level: SimdLevel,
    arena: Arena,
}

/// Where an activation is: its spatial size and channels.
#[derive(Clone, Copy, Debug)]
struct Shape {
    h: usize,
    w: usize,
    c: usize,
}

impl CompiledNet {
    /// Compiles `net` with weights `sd` (checked against the plan) and BN epsilon `bn_eps`.
    /// The SIMD level is the best the CPU has, or `REGNET_SIMD` if set.
    pub fn compile(net: &Network, sd: &StateDict, bn_eps: f64) -> Result<Self, InferError> {
        let level = match std::env::var(SIMD_ENV) {
            Ok(s) => {
                let l: SimdLevel = s
                    .parse()
                    .map_err(|e| InferError::Unsupported(format!("{SIMD_ENV}: {e}")))?;
                check_level(l)?
            }
            Err(_) => SimdLevel::detect(),
        };
        Ok(CompiledNet {
            plan: Plan::compile(net, sd, bn_eps)?,
            level,
            arena: Arena::default(),
        })
    }

    /// The SIMD level the kernels run at.
    pub fn level(&self) -> SimdLevel {
        self.level
    }

    /// Forces a SIMD level; refused if this CPU lacks it.
    pub fn set_level(&mut self, level: SimdLevel) -> Result<(), InferError> {
        self.level = check_level(level)?;
        Ok(())
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.plan.fc.c_out
    }

    /// Eval-mode logits `[n, classes]` of `input`, NCHW `shape` = `[n, c, h, w]`.
    pub fn forward(&mut self, input: &[f32], shape: [usize; 4]) -> Result<Vec<f32>, InferError> {
        self.check_input(input, shape)?;
        let [n, c, h, w] = shape;
        let (elems, widest) = self.sizes(n, h, w)?;
        self.arena.ensure([n, h, w], elems, n * widest);
        let mut arena = std::mem::take(&mut self.arena);
        nchw_to_nhwc(input, shape, &mut arena.x);
        let logits = self.run(&mut arena, n, Shape { h, w, c });
        self.arena = arena;
        Ok(logits)
    }

    fn check_input(&self, input: &[f32], [n, c, h, w]: [usize; 4]) -> Result<(), InferError> {
        if n == 0 || c == 0 || h == 0 || w == 0 {
            return Err(InferError::input(format!(
                "shape [{n}, {c}, {h}, {w}] has a zero dimension"
            )));
        }
        if c != self.plan.in_channels {
            return Err(InferError::input(format!(
                "{c} channels, the network takes {}",
                self.plan.in_channels
            )));
        }
        let len = [n, c, h, w]
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d));
        match len {
            Some(l) if l == input.len() => Ok(()),
            Some(l) => Err(InferError::input(format!(
                "{} values for shape [{n}, {c}, {h}, {w}] ({l} expected)",
                input.len()
            ))),
            None => Err(InferError::input(format!(
                "shape [{n}, {c}, {h}, {w}] overflows"
            ))),
        }
    }

    /// Walks the plan's shapes: the largest activation (elements) and the widest layer
    /// (channels); refuses inputs whose activations exceed [`MAX_ACTIVATION_ELEMS`].
    fn sizes(&self, n: usize, h: usize, w: usize) -> Result<(usize, usize), InferError> {
        let mut max = 0usize;
        let mut widest = self.plan.in_channels.max(self.plan.fc.c_in);
        let mut see = |s: Shape| {
            let e = [n, s.h, s.w, s.c]
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d));
            max = max.max(e.unwrap_or(usize::MAX));
            widest = widest.max(s.c);
        };
        let mut s = Shape {
            h,
            w,
            c: self.plan.in_channels,
        };
        see(s);
        self.walk(&mut s, &mut see);
        if max > MAX_ACTIVATION_ELEMS {
            return Err(InferError::input(format!(
                "batch {n} at {h}x{w} needs activations of {max} values (at most {MAX_ACTIVATION_ELEMS})"
            )));
        }
        Ok((max, widest))
    }

    /// Calls `see` with the output shape of every layer, in order.
    fn walk(&self, s: &mut Shape, see: &mut impl FnMut(Shape)) {
        let mut conv = |cv: &Conv, s: &mut Shape| {
            let (h, w) = cv.out_hw(s.h, s.w);
            *s = Shape {
                h,
                w,
                c: cv.c_out(),
            };
            see(*s);
        };
        conv(&self.plan.stem, s);
        if let Some(p) = &self.plan.pool {
            (s.h, s.w) = p.out_hw(s.h, s.w);
        }
        for b in &self.plan.blocks {
            let input = *s;
            if let Residual::Projection(p) = &b.residual {
                conv(p, &mut input.clone());
            }
            for st in &b.steps {
                if let Step::Conv(cv) = st {
                    conv(cv, s);
                }
            }
        }
        if let Some(cv) = &self.plan.head_conv {
            conv(cv, s);
        }
    }
}

fn check_level(l: SimdLevel) -> Result<SimdLevel, InferError> {
    if l.supported() {
        Ok(l)
    } else {
        Err(InferError::Unsupported(format!(
            "this CPU cannot run SIMD level {l}"
        )))
    }
}

impl Arena {
    /// Makes every buffer large enough for `[n, h, w]` (a no-op for the same shape).
    fn ensure(&mut self, dims: [usize; 3], elems: usize, gate: usize) {
        if self.dims == dims && self.x.len() >= elems {
            return;
        }
        self.dims = dims;
        for b in std::iter::once(&mut self.x)
            .chain(self.spare.iter_mut())
            .chain(std::iter::once(&mut self.scratch))
        {
            if b.len() < elems {
                *b = vec![0.0; elems];
            }
        }
        if self.gate.len() < gate {
            self.gate = vec![0.0; gate];
        }
    }
}

/// NCHW `input` into NHWC `out`.
fn nchw_to_nhwc(input: &[f32], [_, c, h, w]: [usize; 4], out: &mut [f32]) {
    let plane = h * w;
    out[..input.len()]
        .par_chunks_mut(w * c)
        .enumerate()
        .for_each(|(r, row)| {
            let (b, y) = (r / h, r % h);
            let img = &input[b * c * plane..][..c * plane];
            for (x, px) in row.chunks_exact_mut(c).enumerate() {
                for (ch, v) in px.iter_mut().enumerate() {
                    *v = img[ch * plane + y * w + x];
                }
            }
        });
}

impl CompiledNet {
    /// Runs the plan on the NHWC input in `a.x`.
    fn run(&self, a: &mut Arena, n: usize, mut s: Shape) -> Vec<f32> {
        let level = self.level;
        let p = &self.plan;
        let stem_out = &mut a.spare[3];
        let (h, w) = p.stem.out_hw(s.h, s.w);
        let len = n * h * w * p.stem.c_out();
        p.stem.run(
            level,
            &a.x,
            [n, s.h, s.w],
            &mut a.scratch,
            &mut stem_out[..len],
            None,
        );
        std::mem::swap(&mut a.x, stem_out);
        s = Shape {
            h,
            w,
            c: p.stem.c_out(),
        };
        if let Some(pool) = &p.pool {
            let (h, w) = pool.out_hw(s.h, s.w);
            let out = &mut a.spare[3][..n * h * w * s.c];
            pool.run(&a.x, [n, s.h, s.w], s.c, out);
            std::mem::swap(&mut a.x, &mut a.spare[3]);
            (s.h, s.w) = (h, w);
        }
        for b in &p.blocks {
            s = self.run_block(b, a, n, s);
        }
        if let Some(cv) = &p.head_conv {
            let (h, w) = cv.out_hw(s.h, s.w);
            let len = n * h * w * cv.c_out();
            cv.run(
                level,
                &a.x,
                [n, s.h, s.w],
                &mut a.scratch,
                &mut a.spare[3][..len],
                None,
            );
            std::mem::swap(&mut a.x, &mut a.spare[3]);
            s = Shape {
                h,
                w,
                c: cv.c_out(),
            };
        }
        global_avg_pool(&a.x, n, s.h * s.w, s.c, &mut a.gate);
        let mut logits = vec![0.0; n * p.fc.c_out];
        p.fc.gemm_rows(level, &a.gate[..n * s.c], &mut logits, None);
        logits
    }

    /// Runs one block from `a.x` back into `a.x`; returns the output shape.
    fn run_block(&self, b: &BlockPlan, a: &mut Arena, n: usize, s: Shape) -> Shape {
        let level = self.level;
        let [t0, t1, proj, out] = &mut a.spare;
        let x: &[f32] = &a.x;
        let residual: Option<&[f32]> = match &b.residual {
            Residual::None => None,
            Residual::Identity => Some(&x[..n * s.h * s.w * s.c]),
            Residual::Projection(cv) => {
                let (h, w) = cv.out_hw(s.h, s.w);
                let len = n * h * w * cv.c_out();
                cv.run(
                    level,
                    x,
                    [n, s.h, s.w],
                    &mut a.scratch,
                    &mut proj[..len],
                    None,
                );
                Some(&proj[..len])
            }
        };
        // Which buffer holds the branch's current activation: 0 = x, 1 = t0, 2 = t1.
        let mut src = 0;
        let mut cur = s;
        let last = b.steps.len() - 1;
        for (i, st) in b.steps.iter().enumerate() {
            match st {
                Step::Conv(cv) => {
                    let (h, w) = cv.out_hw(cur.h, cur.w);
                    let len = n * h * w * cv.c_out();
                    let dst = if i == last {
                        3
                    } else if src == 1 {
                        2
                    } else {
                        1
                    };
                    let (input, output) = pick(x, t0, t1, out, src, dst);
                    let res = if i == last { residual } else { None };
                    cv.run(
                        level,
                        input,
                        [n, cur.h, cur.w],
                        &mut a.scratch,
                        &mut output[..len],
                        res,
                    );
                    cur = Shape {
                        h,
                        w,
                        c: cv.c_out(),
                    };
                    src = dst;
                }
                Step::Se(se) => {
                    let buf = if src == 1 { &mut *t0 } else { &mut *t1 };
                    let hw = cur.h * cur.w;
                    se.gates(buf, n, hw, &mut a.gate);
                    se.apply(buf, n, hw, &a.gate);
                }
            }
        }
        std::mem::swap(&mut a.x, out);
        cur
    }
}

/// The input (`src`) and output (`dst`) buffers of a branch conv: 0 = block input,
/// 1 and 2 = intermediates, 3 = block output.
fn pick<'a>(
    x: &'a [f32],
    t0: &'a mut [f32],
    t1: &'a mut [f32],
    out: &'a mut [f32],
    src: usize,
    dst: usize,
) -> (&'a [f32], &'a mut [f32]) {
    match (src, dst) {
        (0, 1) => (x, t0),
        (0, 2) => (x, t1),
        (0, 3) => (x, out),
        (1, 2) => (t0, t1),
        (1, 3) => (t0, out),
        (2, 1) => (t1, t0),
        (2, 3) => (t1, out),
        _ => unreachable!("branch buffers {src} -> {dst}"),
    }
}
