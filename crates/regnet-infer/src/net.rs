//! [`CompiledNet`]: the compiled plan, its SIMD level and its buffer arena.

use std::ops::Range;

use rayon::prelude::*;
use regnet_core::network::Network;
use regnet_nn::StateDict;

use crate::buffer::{self, Buf};
use crate::error::InferError;
use crate::plan::{BlockPlan, Conv, Plan, Residual, Step};
use crate::pool::global_avg_pool;
use crate::profile::{LayerTime, Profile};
use crate::simd::{SimdLevel, multiversion};

/// Most elements of one activation buffer (1 GiB of f32): larger inputs are refused before
/// anything is allocated.
pub const MAX_ACTIVATION_ELEMS: usize = 1 << 28;

/// Per-image activation size (values) above which the leading blocks of a batch run one
/// image at a time (512 KiB: half of a Zen or Xeon core's L2).
const FRONT_ELEMS: usize = 1 << 17;

/// Environment variable that forces the SIMD level (`portable`, `avx2`, `avx512`).
pub const SIMD_ENV: &str = "REGNET_SIMD";

/// Activation buffers, allocated for the largest activation of the last input shape and
/// reused by every call with that shape.
/// 64-byte aligned (see `buffer.rs`).
#[derive(Debug)]
struct Arena {
    /// `[n, h, w]` they were sized for.
    dims: [usize; 3],
    /// The current activation (block input / output).
    x: Buf,
    /// Branch intermediates, projection output, block output.
    spare: [Buf; 4],
    /// Subsampled input of a strided 1x1 conv.
    scratch: Buf,
    /// SE gates and pooled features, `[n, c]`.
    gate: Vec<f32>,
}

/// A network compiled for the CPU: see the crate documentation.
#[derive(Debug)]
pub struct CompiledNet {
    plan: Plan,
    level: SimdLevel,
    arena: Arena,
    /// The one-image arena of the leading blocks of a batch (see `split`).
    front: Arena,
    /// Per-layer times, when turned on ([`CompiledNet::profile_layers`]).
    profile: Option<Profile>,
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
        let mut plan = Plan::compile(net, sd, bn_eps)?;
        plan.repack(level);
        Ok(CompiledNet {
            plan,
            level,
            arena: Arena::default(),
            front: Arena::default(),
            profile: None,
        })
    }

    /// The SIMD level the kernels run at.
    pub fn level(&self) -> SimdLevel {
        self.level
    }

    /// Forces a SIMD level (repacking the weights whose layout differs there); refused if
    /// this CPU lacks it.
    pub fn set_level(&mut self, level: SimdLevel) -> Result<(), InferError> {
        self.level = check_level(level)?;
        self.plan.repack(level);
        Ok(())
    }

    /// Turns per-layer timing on (clearing the times so far) or off. Each layer's call then
    /// reads the clock and takes a lock: for profiling, not for serving.
    pub fn profile_layers(&mut self, on: bool) {
        self.profile = on.then(Profile::default);
    }

    /// The per-layer times since [`CompiledNet::profile_layers`] turned them on, slowest
    /// first (empty when off).
    pub fn layer_times(&self) -> Vec<LayerTime> {
        self.profile.as_ref().map_or_else(Vec::new, Profile::layers)
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.plan.fc.c_out
    }

    /// Eval-mode logits `[n, classes]` of `input`, NCHW `shape` = `[n, c, h, w]`.
    pub fn forward(&mut self, input: &[f32], shape: [usize; 4]) -> Result<Vec<f32>, InferError> {
        let (elems, widest) = self.check_input(input, shape)?;
        let [n, c, h, w] = shape;
        self.arena.ensure([n, h, w], elems, n * widest);
        let s = Shape { h, w, c };
        let split = if n > 1 { self.split(s) } else { 0 };
        let mut front = std::mem::take(&mut self.front);
        if split > 0 {
            let (e1, w1) = self.sizes(1, h, w)?;
            front.ensure([1, h, w], e1, w1);
        }
        let mut arena = std::mem::take(&mut self.arena);
        // On a pool thread: every parallel loop then forks from a worker, instead of this
        // thread handing each loop to the pool and waiting for it; the other workers poll
        // for the layers' loops rather than park between them.
        let logits = rayon::scope(|_| {
            regnet_nn::awake::with_workers_awake(|| {
                self.run(&mut arena, &mut front, input, s, split)
            })
        });
        self.arena = arena;
        self.front = front;
        Ok(logits)
    }

    /// The whole network on NCHW `input` of shape `s` (`n` images), the leading `split`
    /// blocks image by image.
    fn run(
        &self,
        a: &mut Arena,
        front: &mut Arena,
        input: &[f32],
        s: Shape,
        split: usize,
    ) -> Vec<f32> {
        let n = input.len() / (s.c * s.h * s.w);
        let s = if split > 0 {
            self.run_front(a, front, input, s, split)
        } else {
            self.to_nhwc(input, [n, s.c, s.h, s.w], &mut a.x);
            self.run_stem(a, n, s)
        };
        let s = self.run_blocks(a, n, s, split..self.plan.blocks.len());
        self.run_head(a, n, s)
    }

    /// How many leading blocks run one image at a time: those with a per-image activation
    /// above [`FRONT_ELEMS`]. A batch of such activations (1.6 MB per image after a 224
    /// stem) streams through DRAM at every layer; one image's stays in the caches.
    fn split(&self, s: Shape) -> usize {
        let big = |s: Shape| s.h * s.w * s.c > FRONT_ELEMS;
        let mut s = conv_shape(&self.plan.stem, s);
        if let Some(p) = &self.plan.pool {
            (s.h, s.w) = p.out_hw(s.h, s.w);
        }
        let mut split = 0;
        for (i, b) in self.plan.blocks.iter().enumerate() {
            let mut any = big(s);
            if let Residual::Projection(p) = &b.residual {
                any |= big(conv_shape(p, s));
            }
            for st in &b.steps {
                if let Step::Conv(cv) = st {
                    s = conv_shape(cv, s);
                    any |= big(s);
                }
            }
            if !any {
                break;
            }
            split = i + 1;
        }
        split
    }

    /// Runs the stem and blocks `..split` image by image (NCHW `input`, `s` its shape) in
    /// the one-image arena `front`, gathering the outputs into `a.x`; returns their shape.
    fn run_front(
        &self,
        a: &mut Arena,
        front: &mut Arena,
        input: &[f32],
        s: Shape,
        split: usize,
    ) -> Shape {
        let per_in = s.c * s.h * s.w;
        let mut out = s;
        for (b, img) in input.chunks_exact(per_in).enumerate() {
            self.to_nhwc(img, [1, s.c, s.h, s.w], &mut front.x);
            out = self.run_stem(front, 1, s);
            out = self.run_blocks(front, 1, out, 0..split);
            let per = out.h * out.w * out.c;
            self.timed(
                || {
                    format!(
                        "copy {}x{}x{} out of the one-image front",
                        out.h, out.w, out.c
                    )
                },
                0,
                || a.x[b * per..][..per].copy_from_slice(&front.x[..per]),
            );
        }
        out
    }

    /// [`CompiledNet::check_shape`] and the input's length; returns the largest activation
    /// and the widest layer, as [`CompiledNet::sizes`].
    fn check_input(&self, input: &[f32], shape: [usize; 4]) -> Result<(usize, usize), InferError> {
        let [n, c, h, w] = shape;
        let (len, elems, widest) = self.shape_sizes(shape)?;
        if len != input.len() {
            return Err(InferError::input(format!(
                "{} values for shape [{n}, {c}, {h}, {w}] ({len} expected)",
                input.len()
            )));
        }
        Ok((elems, widest))
    }

    /// Checks that [`CompiledNet::forward`] takes inputs of NCHW `shape`: no zero
    /// dimension, the network's channels, activations within [`MAX_ACTIVATION_ELEMS`];
    /// returns the input's length. For callers that make an input, before they make it.
    pub fn check_shape(&self, shape: [usize; 4]) -> Result<usize, InferError> {
        Ok(self.shape_sizes(shape)?.0)
    }

    /// The checks of [`CompiledNet::check_shape`]: the input's length, the largest
    /// activation and the widest layer.
    fn shape_sizes(&self, [n, c, h, w]: [usize; 4]) -> Result<(usize, usize, usize), InferError> {
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
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| InferError::input(format!("shape [{n}, {c}, {h}, {w}] overflows")))?;
        let (elems, widest) = self.sizes(n, h, w)?;
        Ok((len, elems, widest))
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

/// The output shape of `cv` on `s`.
fn conv_shape(cv: &Conv, s: Shape) -> Shape {
    let (h, w) = cv.out_hw(s.h, s.w);
    Shape {
        h,
        w,
        c: cv.c_out(),
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

impl Default for Arena {
    fn default() -> Self {
        Arena {
            dims: [0; 3],
            x: buffer::zeroed(0),
            spare: std::array::from_fn(|_| buffer::zeroed(0)),
            scratch: buffer::zeroed(0),
            gate: Vec::new(),
        }
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
                *b = buffer::zeroed(elems);
            }
        }
        if self.gate.len() < gate {
            self.gate = vec![0.0; gate];
        }
    }
}

/// NCHW `input` into NHWC `out`: per output row, each channel's input row (read in order)
/// scattered with stride `c` (a gather per value ran scalar with bounds checks); 3-channel
/// rows (images) interleaved in vectors ([`interleave3`]).
fn nchw_to_nhwc(level: SimdLevel, input: &[f32], [_, c, h, w]: [usize; 4], out: &mut [f32]) {
    let plane = h * w;
    out[..input.len()]
        .par_chunks_mut(w * c)
        .enumerate()
        .for_each(|(r, row)| {
            let (b, y) = (r / h, r % h);
            let img = &input[b * c * plane..][..c * plane];
            let src = |ch: usize| &img[ch * plane + y * w..][..w];
            if c == 3 {
                interleave3(level, row, src(0), src(1), src(2));
                return;
            }
            for ch in 0..c {
                for (d, v) in row[ch..].iter_mut().step_by(c).zip(src(ch)) {
                    *d = *v;
                }
            }
        });
}

/// `row` = `a0 b0 c0 a1 b1 c1 ...`: an image row of 3 channels, interleaved in vectors (a
/// value at a time, strided, was most of the input layout's time).
#[inline(always)]
fn interleave3_imp(row: &mut [f32], a: &[f32], b: &[f32], c: &[f32]) {
    for (((px, a), b), c) in row.chunks_exact_mut(3).zip(a).zip(b).zip(c) {
        px[0] = *a;
        px[1] = *b;
        px[2] = *c;
    }
}

multiversion!(
    /// See `interleave3_imp`.
    fn interleave3(row: &mut [f32], a: &[f32], b: &[f32], c: &[f32]) => interleave3_imp
);

impl CompiledNet {
    /// The stem conv and pool, from the NHWC input in `a.x` back into `a.x`.
    fn run_stem(&self, a: &mut Arena, n: usize, s: Shape) -> Shape {
        let p = &self.plan;
        let out = conv_shape(&p.stem, s);
        let len = n * out.h * out.w * out.c;
        self.conv(
            &p.stem,
            &a.x,
            [n, s.h, s.w],
            &mut a.scratch,
            &mut a.spare[3][..len],
            None,
        );
        std::mem::swap(&mut a.x, &mut a.spare[3]);
        let mut s = out;
        if let Some(pool) = &p.pool {
            let (h, w) = pool.out_hw(s.h, s.w);
            let out = &mut a.spare[3][..n * h * w * s.c];
            pool.run(&a.x, [n, s.h, s.w], s.c, out);
            std::mem::swap(&mut a.x, &mut a.spare[3]);
            (s.h, s.w) = (h, w);
        }
        s
    }

    /// Runs `cv` on `x` (`[n, h, w, c_in]` = `dims`) into `out` (see `Conv::run`), timed
    /// when profiling.
    fn conv(
        &self,
        cv: &Conv,
        x: &[f32],
        dims: [usize; 3],
        scratch: &mut [f32],
        out: &mut [f32],
        residual: Option<&[f32]>,
    ) {
        let macs = cv.macs(out.len());
        let label = || cv.label([dims[1], dims[2]]);
        self.timed(label, macs, || {
            cv.run(self.level, x, dims, scratch, out, residual)
        });
    }

    /// `f()`, its time added to layer `label()` when profiling.
    fn timed(&self, label: impl FnOnce() -> String, macs: u64, f: impl FnOnce()) {
        match &self.profile {
            Some(p) => p.time(label, macs, f),
            None => f(),
        }
    }

    /// The NCHW input `x` of `shape` into NHWC `out`, timed when profiling.
    fn to_nhwc(&self, x: &[f32], shape: [usize; 4], out: &mut [f32]) {
        let [_, c, h, w] = shape;
        let label = || format!("input NCHW -> NHWC {c}x{h}x{w}");
        self.timed(label, 0, || nchw_to_nhwc(self.level, x, shape, out));
    }

    /// Blocks `range`, from `a.x` back into `a.x`.
    fn run_blocks(&self, a: &mut Arena, n: usize, mut s: Shape, range: Range<usize>) -> Shape {
        for b in &self.plan.blocks[range] {
            s = self.run_block(b, a, n, s);
        }
        s
    }

    /// The head conv, the global pool and the classifier.
    fn run_head(&self, a: &mut Arena, n: usize, mut s: Shape) -> Vec<f32> {
        let (level, p) = (self.level, &self.plan);
        if let Some(cv) = &p.head_conv {
            let out = conv_shape(cv, s);
            let len = n * out.h * out.w * out.c;
            self.conv(
                cv,
                &a.x,
                [n, s.h, s.w],
                &mut a.scratch,
                &mut a.spare[3][..len],
                None,
            );
            std::mem::swap(&mut a.x, &mut a.spare[3]);
            s = out;
        }
        let mut logits = vec![0.0; n * p.fc.c_out];
        let macs = (n * s.c * p.fc.c_out) as u64;
        self.timed(
            || format!("pool + fc {}->{} at {}x{}", s.c, p.fc.c_out, s.h, s.w),
            macs,
            || {
                global_avg_pool(level, &a.x, n, s.h * s.w, s.c, &mut a.gate);
                p.fc.gemm_rows(level, &a.gate[..n * s.c], &mut logits, None);
            },
        );
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
                self.conv(cv, x, [n, s.h, s.w], &mut a.scratch, &mut proj[..len], None);
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
                    self.conv(
                        cv,
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
                    let gate = &mut a.gate;
                    self.timed(
                        || format!("se {} at {}x{}", cur.c, cur.h, cur.w),
                        0,
                        || {
                            se.gates(level, buf, n, hw, gate);
                            se.apply(level, buf, n, hw, gate);
                        },
                    );
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
