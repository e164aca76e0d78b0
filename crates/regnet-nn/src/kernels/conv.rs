//! Convolution kernels on f32 NCHW slices: forward, gradient of the input and gradient of
//! the weight, for any kernel size, stride, symmetric padding and groups.
//!
//! burn's `flex` backend runs grouped convolutions group by group and computes their
//! gradients with transposed convolutions and per-group loops; on RegNet's small, grouped
//! layers that is 3-20x slower than it need be (see `examples/op_bench.rs`). Here a chunk of
//! samples of one group is unfolded once (im2col, `[K = cig*k*k, samples*pixels]`), and all
//! three products are single large GEMMs over the chunk:
//!
//! - forward: `Y_g[cog, NP] = W_g[cog, K] * C[K, NP]`;
//! - weight gradient: `dW_g[cog, K] += dY_g[cog, NP] * C^T`, by blocked dot products of the
//!   rows ([`super::abt`]) rather than a GEMM when `K` is not tiny;
//! - input gradient: `dC[K, NP] = W_g^T * dY_g`, folded back (col2im).
//!
//! The unfolding copies rows, or gathers through a table of tap offsets on small and strided
//! feature maps ([`super::unfold`]). Depthwise convolutions (one channel per group) use
//! direct loops instead: their GEMMs would have a single row. 1x1 convolutions multiply
//! straight from NCHW, gathering chunks of samples first on maps of a few pixels; strided
//! ones multiply a compact copy of the pixels they read. Grouped stride-1 convolutions with
//! whole blocks of 8 outputs per group run the direct kernels of [`super::direct`] instead,
//! on AVX-512 CPUs and maps at least 4 wide; on maps of at most 16 pixels a kernel becomes
//! one dense matrix per group ([`super::small_map`]).

use std::cell::RefCell;

use gemm::Parallelism;
use rayon::prelude::*;

use super::abt::{Rows, gemm_abt};
use super::direct;
use super::fill::written;
use super::plane16;
use super::small_map;
use super::unfold::{COL2IM_MIN_ROW, IM2COL_MIN_ROW, Unfold};

thread_local! {
    /// Per-thread scratch buffers (unfolded input, gathered output), reused across calls:
    /// allocating and zeroing them on every call cost more than the copies themselves.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Takes this thread's scratch buffers, sized `a` and `b` (contents arbitrary: callers
/// overwrite them). Hand them back with [`give_back`].
fn take_scratch(a: usize, b: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut x, mut y) = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    x.resize(a, 0.0);
    y.resize(b, 0.0);
    (x, y)
}

fn give_back(x: Vec<f32>, y: Vec<f32>) {
    SCRATCH.with(|s| *s.borrow_mut() = (x, y));
}

/// Shape of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvGeom {
    /// Batch.
    pub n: usize,
    /// Input channels.
    pub ci: usize,
    /// Output channels.
    pub co: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Square kernel size.
    pub k: usize,
    /// Stride.
    pub s: usize,
    /// Padding on every side.
    pub p: usize,
    /// Groups.
    pub g: usize,
}

impl ConvGeom {
    /// Output height.
    pub fn oh(&self) -> usize {
        (self.h + 2 * self.p - self.k) / self.s + 1
    }
    /// Output width.
    pub fn ow(&self) -> usize {
        (self.w + 2 * self.p - self.k) / self.s + 1
    }
    pub(super) fn cig(&self) -> usize {
        self.ci / self.g
    }
    pub(super) fn cog(&self) -> usize {
        self.co / self.g
    }
    /// Rows of the unfolded input: `cig * k * k`.
    fn kdim(&self) -> usize {
        self.cig() * self.k * self.k
    }
    fn pixels(&self) -> usize {
        self.oh() * self.ow()
    }
    /// 1x1, stride 1, no padding, one group: a per-sample matrix product, no unfolding.
    fn is_pointwise(&self) -> bool {
        self.k == 1 && self.s == 1 && self.p == 0 && self.g == 1
    }
    /// 1x1, no padding, one group, stride above 1: a pointwise product on the input's
    /// sampled pixels (ResNet and RegNet projections on the shortcut).
    fn is_strided_pointwise(&self) -> bool {
        self.k == 1 && self.s > 1 && self.p == 0 && self.g == 1
    }
    /// The stride-1 geometry of the product on the sampled input ([`subsample`]).
    fn sampled(&self) -> ConvGeom {
        ConvGeom {
            h: self.oh(),
            w: self.ow(),
            s: 1,
            ..*self
        }
    }
    fn is_depthwise(&self) -> bool {
        self.cig() == 1 && self.cog() == 1
    }
    /// Input, weight and output element counts.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.n * self.ci * self.h * self.w,
            self.co * self.cig() * self.k * self.k,
            self.n * self.co * self.pixels(),
        )
    }
    /// Samples per chunk: enough to make the GEMMs large, few enough to bound the
    /// unfolded buffer (about 4 MB) and to give every thread work.
    fn chunk(&self) -> usize {
        let per_sample = (self.kdim() * self.pixels()).max(1);
        let by_memory = ((1 << 20) / per_sample).max(1);
        let threads = rayon::current_num_threads().max(1);
        let by_threads = self.n.div_ceil(threads).max(1);
        by_memory.min(by_threads).min(self.n).max(1)
    }
}

/// Unfolds samples `[n0, n0+nc)` of group `gi` into `col[K][nc * P]`, row by row.
pub(super) fn im2col_rows(
    x: &[f32],
    g: &ConvGeom,
    gi: usize,
    n0: usize,
    nc: usize,
    col: &mut [f32],
) {
    let (k, s, p, h, w) = (g.k, g.s, g.p, g.h, g.w);
    let (oh, ow, pix) = (g.oh(), g.ow(), g.pixels());
    let row_len = nc * pix;
    for c in 0..g.cig() {
        let ch = gi * g.cig() + c;
        for kh in 0..k {
            for kw in 0..k {
                let row = (c * k + kh) * k + kw;
                let dst_row = &mut col[row * row_len..(row + 1) * row_len];
                let (lo, hi) = valid_cols(g, kw);
                for j in 0..nc {
                    let plane = &x[((n0 + j) * g.ci + ch) * h * w..][..h * w];
                    let dst = &mut dst_row[j * pix..(j + 1) * pix];
                    for y in 0..oh {
                        let d = &mut dst[y * ow..(y + 1) * ow];
                        let iy = (y * s + kh) as isize - p as isize;
                        if iy < 0 || iy >= h as isize {
                            d.fill(0.0);
                            continue;
                        }
                        let src = &plane[iy as usize * w..(iy as usize + 1) * w];
                        d[..lo].fill(0.0);
                        d[hi..].fill(0.0);
                        if s == 1 {
                            let start = lo + kw - p;
                            d[lo..hi].copy_from_slice(&src[start..start + hi - lo]);
                        } else {
                            let start = lo * s + kw - p;
                            for (v, x) in d[lo..hi].iter_mut().zip(src[start..].iter().step_by(s)) {
                                *v = *x;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Adds `col[K][nc * P]` back into samples `[n0, n0+nc)` of group `gi` of `dx` (col2im).
/// `dx` holds only those samples.
pub(super) fn col2im_rows(col: &[f32], g: &ConvGeom, gi: usize, nc: usize, dx: &mut [f32]) {
    let (k, s, p, h, w) = (g.k, g.s, g.p, g.h, g.w);
    let (oh, ow, pix) = (g.oh(), g.ow(), g.pixels());
    let row_len = nc * pix;
    for c in 0..g.cig() {
        let ch = gi * g.cig() + c;
        for kh in 0..k {
            for kw in 0..k {
                let row = (c * k + kh) * k + kw;
                let src_row = &col[row * row_len..(row + 1) * row_len];
                let (lo, hi) = valid_cols(g, kw);
                for j in 0..nc {
                    let plane = &mut dx[(j * g.ci + ch) * h * w..][..h * w];
                    let src = &src_row[j * pix..(j + 1) * pix];
                    for y in 0..oh {
                        let iy = (y * s + kh) as isize - p as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let d = &mut plane[iy as usize * w..(iy as usize + 1) * w];
                        let sv = &src[y * ow..(y + 1) * ow];
                        if s == 1 {
                            let start = lo + kw - p;
                            for (a, b) in d[start..start + hi - lo].iter_mut().zip(&sv[lo..hi]) {
                                *a += *b;
                            }
                        } else {
                            let start = lo * s + kw - p;
                            for (a, b) in d[start..].iter_mut().step_by(s).zip(&sv[lo..hi]) {
                                *a += *b;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `dst[m, n] (+)= lhs[m, k] * rhs[k, n]` on row-major buffers given by strides.
#[allow(clippy::too_many_arguments)]
fn gemm_f32(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    lhs: &[f32],
    lhs_rs: isize,
    lhs_cs: isize,
    rhs: &[f32],
    rhs_rs: isize,
    rhs_cs: isize,
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst[r * dst_rs..r * dst_rs + n].fill(0.0);
            }
        }
        return;
    }
    debug_assert!(dst.len() >= (m - 1) * dst_rs + n);
    // SAFETY: the strides and sizes describe regions inside the given slices (checked by
    // the callers' construction and the debug assertion above); gemm reads lhs and rhs and
    // writes only dst.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// Unfolded rows from which the weight gradient uses [`gemm_abt`] rather than the packed
/// GEMM: with fewer (stems on 1-3 channels) the GEMM is faster, with more the GEMM's packing
/// and half-empty 8-row tiles make it 2-4x slower (measured with `examples/kernel_bench.rs`).
const MIN_ABT_K: usize = 32;

/// Whether one chunk's GEMMs should use the threads (few chunks) or run single-threaded
/// inside a parallel loop over chunks.
fn inner_parallelism(chunks: usize) -> Parallelism {
    if chunks >= rayon::current_num_threads() {
        Parallelism::None
    } else {
        Parallelism::Rayon(0)
    }
}

/// Values zeroed per parallel task of [`zeroed`].
const ZERO_TASK: usize = 1 << 15;

/// A zeroed vector of `len` values, zeroed in parallel: an activation-sized `vec![0.0; len]`
/// zeroes on the calling thread alone, and in `perf` of a training step the main thread's
/// `memset` and allocator zeroing were about 7 % of its samples while the other worker waited.
/// For the convolutions' outputs, `regnet time`, rounds alternating: default model 36.3 vs
/// 37.1 ms per step (faster in 5 of 6), RegNetX-400MF CIFAR 81.4 vs 83.1 ms (4 of 4).
fn zeroed(len: usize) -> Vec<f32> {
    if len < 2 * ZERO_TASK {
        return vec![0.0f32; len];
    }
    super::fill::filled(len, ZERO_TASK, |_, c| {
        c.iter_mut().for_each(|x| {
            x.write(0.0);
        })
    })
}

/// Forward convolution: `y[n, co, oh, ow]` from `x[n, ci, h, w]` and `wt[co, ci/g, k, k]`.
pub fn forward(x: &[f32], wt: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (_, _, ylen) = g.sizes();
    if g.is_depthwise() {
        let mut y = zeroed(ylen);
        depthwise_forward(x, wt, g, &mut y);
        return y;
    }
    if plane16::taps::applies(g)
        && let Some(y) = plane16::taps::forward(x, wt, g)
    {
        return y;
    }
    if small_map::preferred_forward(g) {
        let mut y = zeroed(ylen);
        small_map::forward(x, wt, g, &mut y);
        return y;
    }
    // These write every output, chunk by chunk, and need no zeroing pass first.
    if direct::pays_off(g) {
        return direct::forward(x, wt, g);
    }
    if g.is_pointwise() {
        return pointwise_forward(x, wt, g);
    }
    if g.is_strided_pointwise() {
        return pointwise_forward(&subsample(x, g), wt, &g.sampled());
    }
    let mut y = zeroed(ylen);
    im2col_forward(x, wt, g, &mut y);
    y
}

/// Forward of a 1x1 stride-1 convolution.
fn pointwise_forward(x: &[f32], wt: &[f32], g: &ConvGeom) -> Vec<f32> {
    // Y_n[co, P] = W[co, ci] * X_n[ci, P], straight from and into NCHW.
    pointwise(x, (wt, g.ci as isize, 1), (g.n, g.ci, g.co, g.pixels()))
}

/// Input gradient of a 1x1 stride-1 convolution.
fn pointwise_backward_data(dy: &[f32], wt: &[f32], g: &ConvGeom) -> Vec<f32> {
    // dX_n[ci, P] = W^T[ci, co] * dY_n[co, P].
    pointwise(dy, (wt, 1, g.ci as isize), (g.n, g.co, g.ci, g.pixels()))
}

/// `out_n[m, P] = A[m, k] * in_n[k, P]` for every sample, NCHW in and out; `A` is the
/// weight read with row stride `rs` and column stride `cs` (the forward reads `W`, the input
/// gradient `W^T`), `dims` is `(samples, k, m, pixels)`.
fn pointwise(
    input: &[f32],
    (wt, rs, cs): (&[f32], isize, isize),
    (n, k, m, pix): (usize, usize, usize, usize),
) -> Vec<f32> {
    if pix == plane16::PIX
        && let Some(out) =
            plane16::pointwise::product(input, (wt, rs as usize, cs as usize), (n, k, m))
    {
        return out;
    }
    if pix < POINTWISE_GATHER_PIX {
        return pointwise_gathered(input, (wt, rs, cs), (n, k, m, pix));
    }
    written(n * m * pix, m * pix, |i, on| {
        let xn = &input[i * k * pix..][..k * pix];
        gemm_f32(
            m,
            pix,
            k,
            on,
            pix,
            false,
            wt,
            rs,
            cs,
            xn,
            pix as isize,
            1,
            Parallelism::None,
        );
    })
}

/// The pixels a strided 1x1 convolution reads, `[n, ci, oh, ow]`: a compact copy (a
/// quarter of the input at stride 2) turns the convolution into a plain pointwise product,
/// where im2col's gather through a tap table ran at 10-20 GMAC/s on the default model's
/// projections. Training step of the default model (`regnet time`, six rounds alternating):
/// 44.4 vs 41.2 ms with AVX2 kernels, 39.2 vs 34.1 ms AVX-512, faster in 5 of 6 each;
/// RegNetX-400MF CIFAR even (106.6 vs 107.6 ms).
fn subsample(x: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (ow, plane) = (g.ow(), g.oh() * g.ow());
    if plane == 0 {
        return Vec::new();
    }
    // 64 planes per task; every value of a task's planes is written.
    super::fill::filled(g.n * g.ci * plane, 64 * plane, |i, o| {
        let xi = &x[i * 64 * g.h * g.w..];
        for (o, xp) in o.chunks_exact_mut(plane).zip(xi.chunks_exact(g.h * g.w)) {
            for (oy, orow) in o.chunks_exact_mut(ow).enumerate() {
                let row = &xp[oy * g.s * g.w..];
                for (v, &a) in orow.iter_mut().zip(row.iter().step_by(g.s)) {
                    v.write(a);
                }
            }
        }
    })
}

/// Writes the gradient of the sampled input, `[n, ci, oh, ow]`, into the pixels of `dx`
/// that [`subsample`] read (the others, which the convolution skips, stay as they are).
fn unsample(dxs: &[f32], g: &ConvGeom, dx: &mut [f32]) {
    let (ow, plane) = (g.ow(), g.oh() * g.ow());
    if plane == 0 {
        return;
    }
    dx.par_chunks_mut(g.h * g.w * 64)
        .zip(dxs.par_chunks(plane * 64))
        .for_each(|(d, si)| {
            for (dp, sp) in d.chunks_exact_mut(g.h * g.w).zip(si.chunks_exact(plane)) {
                for (oy, srow) in sp.chunks_exact(ow).enumerate() {
                    let row = &mut dp[oy * g.s * g.w..];
                    for (v, &a) in row.iter_mut().step_by(g.s).zip(srow) {
                        *v = a;
                    }
                }
            }
        });
}

/// Forward of any other convolution into `y`: im2col per group and chunk of samples, then GEMM.
fn im2col_forward(x: &[f32], wt: &[f32], g: &ConvGeom, y: &mut [f32]) {
    let (cog, kd, pix) = (g.cog(), g.kdim(), g.pixels());
    let nc = g.chunk();
    let chunks = g.n.div_ceil(nc);
    let par = inner_parallelism(chunks);
    let per_sample_out = g.co * pix;
    let unfold = Unfold::new(g, IM2COL_MIN_ROW);
    y.par_chunks_mut(nc * per_sample_out)
        .enumerate()
        .for_each(|(ci, ychunk)| {
            let n0 = ci * nc;
            let ncur = ychunk.len() / per_sample_out;
            let cols = ncur * pix;
            let (mut col, mut out) = take_scratch(kd * cols, cog * cols);
            for gi in 0..g.g {
                unfold.im2col(x, g, gi, (n0, ncur), &mut col);
                let w_g = &wt[gi * cog * kd..(gi + 1) * cog * kd];
                gemm_f32(
                    cog,
                    cols,
                    kd,
                    &mut out,
                    cols,
                    false,
                    w_g,
                    kd as isize,
                    1,
                    &col,
                    cols as isize,
                    1,
                    par,
                );
                for c in 0..cog {
                    for j in 0..ncur {
                        let dst = &mut ychunk[(j * g.co + gi * cog + c) * pix..][..pix];
                        dst.copy_from_slice(&out[c * cols + j * pix..][..pix]);
                    }
                }
            }
            give_back(col, out);
        });
}

/// Gathers `dy` of group `gi`, samples `[n0, n0+nc)`, into `[cog][nc * P]`.
fn gather_dy(dy: &[f32], g: &ConvGeom, gi: usize, n0: usize, nc: usize, out: &mut [f32]) {
    let (cog, pix) = (g.cog(), g.pixels());
    let cols = nc * pix;
    for c in 0..cog {
        for j in 0..nc {
            let src = &dy[((n0 + j) * g.co + gi * cog + c) * pix..][..pix];
            out[c * cols + j * pix..][..pix].copy_from_slice(src);
        }
    }
}

/// Gradient of the input: `dx[n, ci, h, w]` from `dy[n, co, oh, ow]` and the weights.
pub fn backward_data(dy: &[f32], wt: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (xlen, _, _) = g.sizes();
    if g.is_depthwise() {
        let mut dx = zeroed(xlen);
        depthwise_backward_data(dy, wt, g, &mut dx);
        return dx;
    }
    if plane16::taps::applies(g)
        && let Some(dx) = plane16::taps::backward_data(dy, wt, g)
    {
        return dx;
    }
    if small_map::applies(g) {
        let mut dx = zeroed(xlen);
        small_map::backward_data(dy, wt, g, &mut dx);
        return dx;
    }
    // These write every value, chunk by chunk, and need no zeroing pass first.
    if direct::pays_off(g) && direct::applies_backward_data(g) {
        return direct::backward_data(dy, wt, g);
    }
    if g.is_pointwise() {
        return pointwise_backward_data(dy, wt, g);
    }
    if g.is_strided_pointwise() {
        let dxs = pointwise_backward_data(dy, wt, &g.sampled());
        let mut dx = zeroed(xlen);
        unsample(&dxs, g, &mut dx);
        return dx;
    }
    let mut dx = zeroed(xlen);
    let (cog, kd, pix) = (g.cog(), g.kdim(), g.pixels());
    let nc = g.chunk();
    let chunks = g.n.div_ceil(nc);
    let par = inner_parallelism(chunks);
    let per_sample_in = g.ci * g.h * g.w;
    let unfold = Unfold::new(g, COL2IM_MIN_ROW);
    dx.par_chunks_mut(nc * per_sample_in)
        .enumerate()
        .for_each(|(ci, dxchunk)| {
            let n0 = ci * nc;
            let ncur = dxchunk.len() / per_sample_in;
            let cols = ncur * pix;
            let (mut dcol, mut dyg) = take_scratch(kd * cols, cog * cols);
            for gi in 0..g.g {
                gather_dy(dy, g, gi, n0, ncur, &mut dyg);
                let w_g = &wt[gi * cog * kd..(gi + 1) * cog * kd];
                // dC[K, cols] = W_g^T[K, cog] * dY_g[cog, cols]
                gemm_f32(
                    kd,
                    cols,
                    cog,
                    &mut dcol,
                    cols,
                    false,
                    w_g,
                    1,
                    kd as isize,
                    &dyg,
                    cols as isize,
                    1,
                    par,
                );
                unfold.col2im(&dcol, g, gi, ncur, dxchunk);
            }
            give_back(dcol, dyg);
        });
    dx
}

/// Gradient of the weights: `dw[co, ci/g, k, k]` from the input and `dy`.
pub fn backward_weight(x: &[f32], dy: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (_, wlen, _) = g.sizes();
    if g.is_depthwise() {
        let mut dw = vec![0.0f32; wlen];
        depthwise_backward_weight(x, dy, g, &mut dw);
        return dw;
    }
    if g.is_pointwise() {
        return pointwise_backward_weight(x, dy, g);
    }
    if g.is_strided_pointwise() {
        return pointwise_backward_weight(&subsample(x, g), dy, &g.sampled());
    }
    if plane16::taps::applies(g)
        && let Some(dw) = plane16::taps::backward_weight(x, dy, g)
    {
        return dw;
    }
    if small_map::applies(g) {
        return small_map::backward_weight(x, dy, g);
    }
    if direct::pays_off(g) {
        return direct::backward_weight(x, dy, g);
    }
    let (cog, kd, pix) = (g.cog(), g.kdim(), g.pixels());
    let nc = g.chunk();
    let chunks = g.n.div_ceil(nc);
    let par = inner_parallelism(chunks);
    // One partial sum per chunk, added at the end: the order of the additions is fixed,
    // so the result does not depend on thread scheduling.
    let unfold = Unfold::new(g, IM2COL_MIN_ROW);
    let partials: Vec<Vec<f32>> = (0..chunks)
        .into_par_iter()
        .map(|ci| {
            let n0 = ci * nc;
            let ncur = nc.min(g.n - n0);
            let cols = ncur * pix;
            let (mut col, mut dyg) = take_scratch(kd * cols, cog * cols);
            let mut dw = vec![0.0f32; wlen];
            for gi in 0..g.g {
                unfold.im2col(x, g, gi, (n0, ncur), &mut col);
                gather_dy(dy, g, gi, n0, ncur, &mut dyg);
                let dst = &mut dw[gi * cog * kd..(gi + 1) * cog * kd];
                // dW_g[cog, K] = dY_g[cog, cols] * C[K, cols]^T
                if kd < MIN_ABT_K {
                    gemm_f32(
                        cog,
                        kd,
                        cols,
                        dst,
                        kd,
                        false,
                        &dyg,
                        cols as isize,
                        1,
                        &col,
                        1,
                        cols as isize,
                        par,
                    );
                } else {
                    let a = Rows {
                        data: &dyg,
                        rows: cog,
                        stride: cols,
                    };
                    let b = Rows {
                        data: &col,
                        rows: kd,
                        stride: cols,
                    };
                    gemm_abt(a, b, cols, dst, false);
                }
            }
            give_back(col, dyg);
            dw
        })
        .collect();
    super::partials::sum_in_order(partials, wlen)
}

/// Pixels per sample below which the pointwise weight gradient gathers several samples'
/// rows into one GEMM.
const POINTWISE_GATHER_PIX: usize = 256;

/// Copies all `channels` planes of samples `[n0, n0+m)` into `out[channels][m * pix]`.
fn gather_channels(
    src: &[f32],
    channels: usize,
    pix: usize,
    (n0, m): (usize, usize),
    out: &mut [f32],
) {
    if channels * pix == 0 {
        return;
    }
    let src = &src[n0 * channels * pix..][..m * channels * pix];
    match pix {
        1 => gather_planes::<1>(src, channels, pix, out),
        4 => gather_planes::<4>(src, channels, pix, out),
        16 => gather_planes::<16>(src, channels, pix, out),
        _ => gather_planes::<0>(src, channels, pix, out),
    }
}

/// Copies `out[channels][m * pix]` back into the NCHW planes of `m` samples in `dst`.
fn scatter_channels(out: &[f32], channels: usize, pix: usize, m: usize, dst: &mut [f32]) {
    if channels * pix == 0 {
        return;
    }
    let dst = &mut dst[..m * channels * pix];
    match pix {
        1 => scatter_planes::<1>(out, channels, pix, dst),
        4 => scatter_planes::<4>(out, channels, pix, dst),
        16 => scatter_planes::<16>(out, channels, pix, dst),
        _ => scatter_planes::<0>(out, channels, pix, dst),
    }
}

/// [`gather_channels`] with planes of `P` values (any length if `P` is 0), sample by
/// sample so that the reads are sequential.
fn gather_planes<const P: usize>(src: &[f32], channels: usize, pix: usize, out: &mut [f32]) {
    let m = src.len() / (channels * pix);
    for (j, sample) in src.chunks_exact(channels * pix).enumerate() {
        for (ch, plane) in sample.chunks_exact(pix).enumerate() {
            copy_plane::<P>(&mut out[(ch * m + j) * pix..][..pix], plane);
        }
    }
}

/// [`scatter_channels`] with planes of `P` values (any length if `P` is 0).
fn scatter_planes<const P: usize>(out: &[f32], channels: usize, pix: usize, dst: &mut [f32]) {
    let m = dst.len() / (channels * pix);
    for (j, sample) in dst.chunks_exact_mut(channels * pix).enumerate() {
        for (ch, plane) in sample.chunks_exact_mut(pix).enumerate() {
            copy_plane::<P>(plane, &out[(ch * m + j) * pix..][..pix]);
        }
    }
}

/// Copies one plane. The planes of small maps are a few values long, where a `memcpy` call
/// per plane costs more than the copy (gathering 32 samples of a 2x2 map of 384 channels
/// took 0.024 ms, against 0.34 ms for the GEMM after it); a fixed length `P` compiles to a
/// few moves. `regnet time`, rounds alternating, RegNetX-400MF CIFAR step 71.3 vs 72.7 ms
/// (faster in 4 of 5), 96.3 vs 97.8 ms with AVX2 kernels.
#[inline(always)]
fn copy_plane<const P: usize>(dst: &mut [f32], src: &[f32]) {
    if P == 0 {
        dst.copy_from_slice(src);
    } else {
        dst[..P].copy_from_slice(&src[..P]);
    }
}

/// `out_n[c_out, P] = W[c_out, c_in] * src_n[c_in, P]` for every sample, `W` given by its
/// strides, on feature maps of a few pixels: per-sample GEMMs there are a few columns wide,
/// so chunks of samples are gathered into `[c_in][m * P]` and multiplied at once.
fn pointwise_gathered(
    src: &[f32],
    (wt, w_rs, w_cs): (&[f32], isize, isize),
    (n, c_in, c_out, pix): (usize, usize, usize, usize),
) -> Vec<f32> {
    let threads = rayon::current_num_threads().max(1);
    let m = (POINTWISE_GATHER_PIX / pix.max(1))
        .min(n.div_ceil(threads))
        .max(1);
    written(n * c_out * pix, m * c_out * pix, |ci, dst| {
        let n0 = ci * m;
        let mc = dst.len() / (c_out * pix).max(1);
        let len = mc * pix;
        let (mut xs, mut ys) = take_scratch(c_in * len, c_out * len);
        gather_channels(src, c_in, pix, (n0, mc), &mut xs);
        gemm_f32(
            c_out,
            len,
            c_in,
            &mut ys,
            len,
            false,
            wt,
            w_rs,
            w_cs,
            &xs,
            len as isize,
            1,
            Parallelism::None,
        );
        scatter_channels(&ys, c_out, pix, mc, dst);
        give_back(xs, ys);
    })
}

/// `dw[co, ci] = sum_n dY_n[co, P] * X_n^T[P, ci]` over `samples`, on feature maps of a
/// few pixels: runs of samples gathered into `[c][m * P]` for both operands, so that each
/// GEMM sums over `m * P` columns rather than one sample's few pixels. For maps under 64
/// pixels: mean time per call over a 100-step `regnet time` (a temporary timer around the
/// kernels), gathered vs per sample, default model 0.125 vs 0.155 ms (40 channels, 7x7),
/// 0.22 vs 0.25 (40 to 96, 7x7), RegNetX-400MF CIFAR 0.24 vs 0.29 (384, 2x2); at 8x8 it lost
/// (0.13 vs 0.11 ms, 64 channels), at 4x4 it was even.
fn gathered_weight_grad(
    x: &[f32],
    dy: &[f32],
    (ci, co, pix): (usize, usize, usize),
    samples: std::ops::Range<usize>,
    dw: &mut [f32],
) {
    let m = (POINTWISE_GATHER_PIX / pix.max(1)).max(1);
    for (run, n0) in samples.clone().step_by(m).enumerate() {
        let mc = m.min(samples.end - n0);
        let len = mc * pix;
        let (mut xs, mut ys) = take_scratch(ci * len, co * len);
        gather_channels(x, ci, pix, (n0, mc), &mut xs);
        gather_channels(dy, co, pix, (n0, mc), &mut ys);
        gemm_f32(
            co,
            ci,
            len,
            dw,
            ci,
            run > 0,
            &ys,
            len as isize,
            1,
            &xs,
            1,
            len as isize,
            Parallelism::None,
        );
        give_back(xs, ys);
    }
}

/// dW[co, ci] = sum_n dY_n[co, P] * X_n^T[P, ci], one partial sum per chunk of samples,
/// added in a fixed order.
fn pointwise_backward_weight(x: &[f32], dy: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (ci, co, pix) = (g.ci, g.co, g.pixels());
    let threads = rayon::current_num_threads().max(1);
    let nc = g.n.div_ceil(threads).max(1);
    let partials: Vec<Vec<f32>> = (0..g.n.div_ceil(nc))
        .into_par_iter()
        .map(|c| {
            let mut dw = vec![0.0f32; co * ci];
            let (first, end) = (c * nc, ((c + 1) * nc).min(g.n));
            if pix == plane16::PIX
                && plane16::pointwise::weight_grad(x, dy, (ci, co), first..end, &mut dw)
            {
                return dw;
            }
            if pix < POINTWISE_GATHER_PIX / 4 {
                gathered_weight_grad(x, dy, (ci, co, pix), first..end, &mut dw);
                return dw;
            }
            for n in first..end {
                let (xn, dyn_) = (
                    &x[n * ci * pix..][..ci * pix],
                    &dy[n * co * pix..][..co * pix],
                );
                gemm_f32(
                    co,
                    ci,
                    pix,
                    &mut dw,
                    ci,
                    true,
                    dyn_,
                    pix as isize,
                    1,
                    xn,
                    1,
                    pix as isize,
                    Parallelism::None,
                );
            }
            dw
        })
        .collect();
    super::partials::sum_in_order(partials, co * ci)
}

/// The output columns `[lo, hi)` of kernel column `kw` that read inside the image: output
/// column `xo` reads input column `xo * s + kw - p`.
fn valid_cols(g: &ConvGeom, kw: usize) -> (usize, usize) {
    let ow = g.ow();
    let lo = g.p.saturating_sub(kw).div_ceil(g.s).min(ow);
    let hi = if g.w + g.p > kw {
        ((g.w + g.p - kw - 1) / g.s + 1).min(ow)
    } else {
        0
    };
    (lo, hi.max(lo))
}

fn depthwise_forward(x: &[f32], wt: &[f32], g: &ConvGeom, y: &mut [f32]) {
    let (k, s, p, h, w, oh, ow) = (g.k, g.s, g.p, g.h, g.w, g.oh(), g.ow());
    y.par_chunks_mut(oh * ow)
        .enumerate()
        .for_each(|(plane, out)| {
            let c = plane % g.co;
            let src = &x[plane * h * w..(plane + 1) * h * w];
            let wc = &wt[c * k * k..(c + 1) * k * k];
            for kh in 0..k {
                for kw in 0..k {
                    let wv = wc[kh * k + kw];
                    let (lo, hi) = valid_cols(g, kw);
                    for yo in 0..oh {
                        let iy = (yo * s + kh) as isize - p as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let row = &src[iy as usize * w..(iy as usize + 1) * w];
                        let d = &mut out[yo * ow..(yo + 1) * ow];
                        if s == 1 {
                            let start = lo + kw - p;
                            for (a, b) in d[lo..hi].iter_mut().zip(&row[start..start + hi - lo]) {
                                *a += wv * *b;
                            }
                        } else {
                            for xo in lo..hi {
                                d[xo] += wv * row[xo * s + kw - p];
                            }
                        }
                    }
                }
            }
        });
}

fn depthwise_backward_data(dy: &[f32], wt: &[f32], g: &ConvGeom, dx: &mut [f32]) {
    let (k, s, p, h, w, oh, ow) = (g.k, g.s, g.p, g.h, g.w, g.oh(), g.ow());
    dx.par_chunks_mut(h * w).enumerate().for_each(|(plane, d)| {
        let c = plane % g.ci;
        let src = &dy[plane * oh * ow..(plane + 1) * oh * ow];
        let wc = &wt[c * k * k..(c + 1) * k * k];
        for kh in 0..k {
            for kw in 0..k {
                let wv = wc[kh * k + kw];
                let (lo, hi) = valid_cols(g, kw);
                for yo in 0..oh {
                    let iy = (yo * s + kh) as isize - p as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    let row = &mut d[iy as usize * w..(iy as usize + 1) * w];
                    let sv = &src[yo * ow..(yo + 1) * ow];
                    if s == 1 {
                        let start = lo + kw - p;
                        for (a, b) in row[start..start + hi - lo].iter_mut().zip(&sv[lo..hi]) {
                            *a += wv * *b;
                        }
                    } else {
                        for xo in lo..hi {
                            row[xo * s + kw - p] += wv * sv[xo];
                        }
                    }
                }
            }
        }
    });
}

fn depthwise_backward_weight(x: &[f32], dy: &[f32], g: &ConvGeom, dw: &mut [f32]) {
    let (k, s, p, h, w, oh, ow) = (g.k, g.s, g.p, g.h, g.w, g.oh(), g.ow());
    dw.par_chunks_mut(k * k).enumerate().for_each(|(c, dwc)| {
        for n in 0..g.n {
            let plane = n * g.ci + c;
            let src = &x[plane * h * w..(plane + 1) * h * w];
            let gy = &dy[plane * oh * ow..(plane + 1) * oh * ow];
            for kh in 0..k {
                for kw in 0..k {
                    let (lo, hi) = valid_cols(g, kw);
                    let mut acc = 0.0f32;
                    for yo in 0..oh {
                        let iy = (yo * s + kh) as isize - p as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let row = &src[iy as usize * w..(iy as usize + 1) * w];
                        let gv = &gy[yo * ow..(yo + 1) * ow];
                        if s == 1 {
                            let start = lo + kw - p;
                            acc += row[start..start + hi - lo]
                                .iter()
                                .zip(&gv[lo..hi])
                                .map(|(a, b)| a * b)
                                .sum::<f32>();
                        } else {
                            for xo in lo..hi {
                                acc += row[xo * s + kw - p] * gv[xo];
                            }
                        }
                    }
                    dwc[kh * k + kw] += acc;
                }
            }
        }
    });
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Direct definition of the convolution, in f64, for the tests (`plane16`'s too).
    pub(in crate::kernels) fn reference(x: &[f32], wt: &[f32], g: &ConvGeom) -> Vec<f64> {
        let (oh, ow, cig, cog) = (g.oh(), g.ow(), g.cig(), g.cog());
        let mut y = vec![0.0f64; g.n * g.co * oh * ow];
        for n in 0..g.n {
            for co in 0..g.co {
                let gi = co / cog;
                for yo in 0..oh {
                    for xo in 0..ow {
                        let mut acc = 0.0f64;
                        for c in 0..cig {
                            for kh in 0..g.k {
                                for kw in 0..g.k {
                                    let iy = (yo * g.s + kh) as isize - g.p as isize;
                                    let ix = (xo * g.s + kw) as isize - g.p as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xv = x[((n * g.ci + gi * cig + c) * g.h + iy as usize)
                                        * g.w
                                        + ix as usize];
                                    let wv = wt[((co * cig + c) * g.k + kh) * g.k + kw];
                                    acc += xv as f64 * wv as f64;
                                }
                            }
                        }
                        y[((n * g.co + co) * oh + yo) * ow + xo] = acc;
                    }
                }
            }
        }
        y
    }

    /// `len` test values in [-1, 1], different for each `seed`.
    pub(in crate::kernels) fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| {
                ((i.wrapping_mul(2654435761).wrapping_add(seed) >> 9) % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    fn geoms() -> Vec<ConvGeom> {
        let mut v = Vec::new();
        for &(n, ci, co, h, w, k, s, g) in &[
            (2, 4, 6, 7, 7, 3, 1, 1),
            (3, 8, 8, 9, 6, 3, 2, 4),
            (2, 6, 6, 8, 8, 5, 2, 6),
            (2, 6, 12, 5, 5, 3, 1, 6),
            (5, 16, 8, 4, 4, 1, 1, 1),
            // 1x1 on 4x4 maps: the plane kernels, every edge block, and a strided 1x1 onto
            // a 4x4 map.
            (7, 27, 29, 4, 4, 1, 1, 1),
            (3, 13, 24, 8, 7, 1, 2, 1),
            (3, 8, 16, 7, 7, 1, 2, 2),
            (2, 3, 4, 10, 10, 7, 2, 1),
            (4, 12, 12, 3, 3, 3, 1, 12),
            (1, 2, 2, 1, 1, 3, 2, 1),
            (2, 4, 8, 17, 19, 3, 1, 2),
            (2, 16, 16, 11, 9, 3, 2, 2),
            (3, 16, 24, 18, 18, 3, 1, 2),
            (2, 8, 6, 17, 16, 1, 1, 1),
            // 1x1 on a map under 64 pixels: runs of 5 gathered samples, several per thread
            // on up to 8 threads.
            (64, 8, 16, 7, 7, 1, 1, 1),
            // ... and on maps of 4 and 1 pixels (planes copied at a fixed length).
            (6, 8, 16, 2, 2, 1, 1, 1),
            (5, 16, 8, 1, 1, 1, 1, 1),
            // Grouped, stride 1, whole blocks of 8 outputs: the direct kernels.
            (3, 16, 32, 6, 6, 3, 1, 2),
            (2, 32, 32, 4, 5, 3, 1, 2),
            // Stems of 1 and 3 channels: the direct kernels too.
            (2, 1, 16, 9, 9, 3, 1, 1),
            (3, 3, 32, 8, 10, 3, 1, 1),
            // Maps of at most 4 pixels: one dense matrix per group.
            (3, 32, 32, 2, 2, 3, 1, 2),
            (4, 24, 24, 2, 2, 3, 1, 1),
            (2, 16, 48, 2, 1, 3, 1, 4),
            (3, 16, 16, 2, 2, 3, 2, 2),
            (2, 8, 8, 2, 2, 5, 1, 2),
            (2, 16, 16, 4, 4, 3, 2, 2),
            (3, 16, 32, 3, 4, 3, 1, 2),
            // 4x4, groups of 8 channels: `plane16::taps` (a dense matrix per group at the
            // portable level).
            (2, 16, 32, 4, 4, 3, 1, 2),
            // Strided 1x1 (projections): a pointwise product on the sampled input, on odd
            // maps, at stride 3, over more planes than one task copies, and on an output
            // map large enough for per-sample products.
            (3, 16, 24, 9, 7, 1, 2, 1),
            (2, 8, 12, 10, 11, 1, 3, 1),
            (70, 8, 16, 8, 8, 1, 2, 1),
            (2, 16, 8, 33, 32, 1, 2, 1),
        ] {
            v.push(ConvGeom {
                n,
                ci,
                co,
                h,
                w,
                k,
                s,
                p: (k - 1) / 2,
                g,
            });
        }
        v
    }

    #[test]
    fn forward_matches_the_definition() {
        crate::kernels::simd::for_each_level(|_| {
            for g in geoms() {
                let (xl, wl, _) = g.sizes();
                let (x, wt) = (data(xl, 1), data(wl, 2));
                let y = forward(&x, &wt, &g);
                let want = reference(&x, &wt, &g);
                for (a, b) in y.iter().zip(&want) {
                    assert!((*a as f64 - b).abs() < 1e-4, "{g:?}: {a} vs {b}");
                }
            }
        });
    }

    /// Past the parallel threshold, after the allocator has handed out dirty memory.
    #[test]
    fn zeroed_outputs_are_zero() {
        for len in [0, 10, 2 * ZERO_TASK, 5 * ZERO_TASK + 7] {
            drop(vec![f32::NAN; len]);
            let v = zeroed(len);
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x.to_bits() == 0), "{len}");
        }
    }

    /// The gradients are the adjoints of the forward map: <dy, conv(x, w)> is linear in both,
    /// so <dy, conv(x, w)> = <backward_data(dy), x> = <backward_weight(x, dy), w>.
    #[test]
    fn gradients_are_adjoints() {
        crate::kernels::simd::for_each_level(|_| {
            for g in geoms() {
                let (xl, wl, yl) = g.sizes();
                let (x, wt, dy) = (data(xl, 1), data(wl, 2), data(yl, 3));
                let y = forward(&x, &wt, &g);
                let lhs = dot(&dy, &y);
                let dx = backward_data(&dy, &wt, &g);
                let dw = backward_weight(&x, &dy, &g);
                let tol = 1e-3 * (1.0 + lhs.abs());
                assert!(
                    (dot(&dx, &x) - lhs).abs() < tol,
                    "{g:?} dx: {} vs {lhs}",
                    dot(&dx, &x)
                );
                assert!(
                    (dot(&dw, &wt) - lhs).abs() < tol,
                    "{g:?} dw: {} vs {lhs}",
                    dot(&dw, &wt)
                );
                // And elementwise against finite weight perturbations of the reference.
                let base: f64 = reference(&x, &wt, &g)
                    .iter()
                    .zip(&dy)
                    .map(|(a, b)| a * *b as f64)
                    .sum();
                for idx in [0, wl / 2, wl - 1] {
                    let mut w2 = wt.clone();
                    w2[idx] += 1.0;
                    let bumped: f64 = reference(&x, &w2, &g)
                        .iter()
                        .zip(&dy)
                        .map(|(a, b)| a * *b as f64)
                        .sum();
                    assert!(
                        (bumped - base - dw[idx] as f64).abs() < 1e-3,
                        "{g:?} dw[{idx}]"
                    );
                }
                // The same for input perturbations: the input gradient elementwise.
                for idx in [0, xl / 3, (xl / 2 + 1).min(xl - 1), xl - 1] {
                    let mut x2 = x.clone();
                    x2[idx] += 1.0;
                    let bumped: f64 = reference(&x2, &wt, &g)
                        .iter()
                        .zip(&dy)
                        .map(|(a, b)| a * *b as f64)
                        .sum();
                    assert!(
                        (bumped - base - dx[idx] as f64).abs() < 1e-3,
                        "{g:?} dx[{idx}]"
                    );
                }
            }
        });
    }
}
