//! Convolutions on maps of at most 16 pixels as one dense matrix per group.
//!
//! RegNet's last stage runs at 2x2 on 32x32 inputs (pycls's CIFAR models), about half of a
//! RegNetX-400MF CIFAR network's multiply-adds. There a 3x3 kernel with padding 1 links
//! every input pixel to every output pixel, so im2col's unfolded rows are 5/9 padding and
//! its copies cost more than the arithmetic (53 GFLOP/s counting the zeros, in `REGNET_OPPROF`
//! timings of a training step). Instead, a group's convolution is the matrix
//! `E_g[cog * P_out, cig * P_in]` whose entry for (output channel and pixel, input channel
//! and pixel) is the kernel tap linking the two pixels, or zero. With the samples as rows,
//! NCHW is already `X_g[n, cig * P_in]` (row stride `ci * P_in`), so each product is one
//! strided GEMM with no copies:
//!
//! - forward: `Y_g[n, cog * P_out] = X_g * E_g^T`;
//! - input gradient: `dX_g = dY_g * E_g`;
//! - weight gradient: `dE_g = dY_g^T * X_g`, whose entries are added back onto their taps.
//!
//! Where the CPU has AVX2 or AVX-512, 3x3 stride-1 convolutions on 4x4 maps run in
//! `plane16::taps` instead, without the zeros (0.38-0.62x the time of the kernels here in
//! per-step A/Bs: `plane16`'s docs).

use gemm::Parallelism;
use rayon::prelude::*;

use super::conv::ConvGeom;
use super::shared::SharedOut;

/// Largest input map (in pixels) that runs here. At 4x4 a 3x3 kernel links 100 of the 256
/// pixel pairs, so `E_g` is 61 % zeros; still, on the default model's 4x4 stage
/// (`REGNET_OPPROF`, batch 128) the weight gradient took 0.27 ms here against 0.56 ms in the
/// direct kernels and the input gradient 0.23 against 0.34 ms; the forward gains on 8-channel
/// groups only: see [`preferred_forward`].
const MAX_PIXELS: usize = 16;

/// Whether `g` can run here: a real kernel (not 1x1, which the pointwise path does without
/// zeros), a map of at most [`MAX_PIXELS`], some output, and not depthwise (whose direct
/// loops need no matrix). The gradients of such convolutions run here.
pub(super) fn applies(g: &ConvGeom) -> bool {
    g.k > 1 && g.h * g.w <= MAX_PIXELS && g.oh() * g.ow() > 0 && !(g.cig() == 1 && g.cog() == 1)
}

/// Whether the forward of `g` runs here: on maps of at most 4 pixels (no zeros in `E_g` for
/// 3x3 kernels), on groups of 8 channels, or where the direct kernels do not run.
/// Mean time per call over a 100-step `regnet time` (a temporary timer around the kernels),
/// 4x4 maps, here against the direct kernels: the default model's 8-channel groups 0.18-0.19
/// vs 0.24 ms (two rounds), RegNetX-400MF CIFAR's 16-channel groups 0.41 vs 0.30 ms.
pub(super) fn preferred_forward(g: &ConvGeom) -> bool {
    applies(g) && (g.h * g.w <= 4 || g.cig() == 8 || !super::direct::pays_off(g))
}

/// For each (output pixel, input pixel) pair, row-major, the tap `kh * k + kw` that links
/// them, if any.
fn taps(g: &ConvGeom) -> Vec<Option<usize>> {
    let (ow, w) = (g.ow(), g.w);
    let mut t = Vec::with_capacity(g.oh() * ow * g.h * w);
    for po in 0..g.oh() * ow {
        let (oy, ox) = (po / ow, po % ow);
        for pi in 0..g.h * w {
            let (iy, ix) = (pi / w, pi % w);
            // Tap (kh, kw) reads input row oy*s + kh - p.
            let kh = (iy + g.p).checked_sub(oy * g.s).filter(|&v| v < g.k);
            let kw = (ix + g.p).checked_sub(ox * g.s).filter(|&v| v < g.k);
            t.push(kh.zip(kw).map(|(kh, kw)| kh * g.k + kw));
        }
    }
    t
}

/// Writes group `gi`'s dense matrix `E_g[cog * P_out, cig * P_in]` into `e`.
fn dense(wt: &[f32], g: &ConvGeom, gi: usize, taps: &[Option<usize>], e: &mut [f32]) {
    let (cig, kk) = (g.cig(), g.k * g.k);
    let (pin, pout) = (g.h * g.w, g.oh() * g.ow());
    for co in 0..g.cog() {
        let filters = &wt[(gi * g.cog() + co) * cig * kk..][..cig * kk];
        for po in 0..pout {
            let row = &mut e[(co * pout + po) * cig * pin..][..cig * pin];
            let links = &taps[po * pin..][..pin];
            for (ci, out) in row.chunks_exact_mut(pin).enumerate() {
                for (o, t) in out.iter_mut().zip(links) {
                    *o = t.map_or(0.0, |t| filters[ci * kk + t]);
                }
            }
        }
    }
}

/// `dst[m, n] = lhs[m, k] * rhs[k, n]`, every operand given by a pointer and
/// `(row stride, column stride)` in elements.
///
/// # Safety
/// The strides and sizes must describe elements inside live allocations, and no other
/// thread may touch `dst`'s elements meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_strided(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: isize,
    (lhs, lhs_rs, lhs_cs): (*const f32, isize, isize),
    (rhs, rhs_rs, rhs_cs): (*const f32, isize, isize),
    par: Parallelism,
) {
    // SAFETY: the caller's contract; gemm reads lhs and rhs and writes dst only.
    unsafe {
        gemm::gemm(
            m, n, k, dst, 1, dst_rs, false, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs, 1.0, 1.0,
            false, false, false, par,
        )
    }
}

/// Threads inside each group's GEMM when there are fewer groups than threads.
fn parallelism(g: &ConvGeom) -> Parallelism {
    if g.g >= rayon::current_num_threads() {
        Parallelism::None
    } else {
        Parallelism::Rayon(0)
    }
}

/// Runs `f(gi, e)` for every group in parallel, `e` holding `E_g`.
fn per_group(wt: &[f32], g: &ConvGeom, f: impl Fn(usize, &[f32]) + Sync) {
    let taps = taps(g);
    let len = g.cog() * g.oh() * g.ow() * g.cig() * g.h * g.w;
    (0..g.g).into_par_iter().for_each_init(
        || vec![0.0f32; len],
        |e, gi| {
            dense(wt, g, gi, &taps, e);
            f(gi, e);
        },
    );
}

/// For every group, `dst_g[n, cols_out] = src_g[n, cols_in] * M_g`, `M_g` being `E_g` read
/// with the strides `e` (`E_g^T` for the forward, `E_g` for the input gradient). `src` and
/// `dst` are NCHW, so a group's columns are `cols` consecutive values of each sample's row
/// of `row` values.
fn per_group_product(
    (wt, g): (&[f32], &ConvGeom),
    (src, src_cols, src_row): (&[f32], usize, usize),
    (dst, dst_cols, dst_row): (&mut [f32], usize, usize),
    e: (isize, isize),
) {
    assert!(src.len() >= g.n * src_row && dst.len() >= g.n * dst_row);
    let (out, par) = (SharedOut(dst.as_mut_ptr()), parallelism(g));
    per_group(wt, g, |gi, m| {
        // SAFETY: group gi writes columns [gi*dst_cols, (gi+1)*dst_cols) of the n rows of
        // `dst` and reads inside `src` and `m`; the groups' columns are disjoint.
        unsafe {
            gemm_strided(
                (g.n, dst_cols, src_cols),
                { out }.0.add(gi * dst_cols),
                dst_row as isize,
                (src.as_ptr().add(gi * src_cols), src_row as isize, 1),
                (m.as_ptr(), e.0, e.1),
                par,
            )
        }
    });
}

/// Forward convolution into `y` (every element written): `Y_g = X_g * E_g^T`.
pub(super) fn forward(x: &[f32], wt: &[f32], g: &ConvGeom, y: &mut [f32]) {
    let (pin, pout) = (g.h * g.w, g.oh() * g.ow());
    let (kin, kout) = (g.cig() * pin, g.cog() * pout);
    let dst = (y, kout, g.co * pout);
    per_group_product((wt, g), (x, kin, g.ci * pin), dst, (1, kin as isize));
}

/// Input gradient into `dx` (every element written): `dX_g = dY_g * E_g`.
pub(super) fn backward_data(dy: &[f32], wt: &[f32], g: &ConvGeom, dx: &mut [f32]) {
    let (pin, pout) = (g.h * g.w, g.oh() * g.ow());
    let (kin, kout) = (g.cig() * pin, g.cog() * pout);
    let dst = (dx, kin, g.ci * pin);
    per_group_product((wt, g), (dy, kout, g.co * pout), dst, (kin as isize, 1));
}

/// Weight gradient `dw[co, ci/g, k, k]`.
pub(super) fn backward_weight(x: &[f32], dy: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (pin, pout) = (g.h * g.w, g.oh() * g.ow());
    let (cig, cog, kk) = (g.cig(), g.cog(), g.k * g.k);
    let (kin, kout) = (cig * pin, cog * pout);
    assert!(x.len() >= g.n * g.ci * pin && dy.len() >= g.n * g.co * pout);
    let taps = taps(g);
    let par = parallelism(g);
    let mut dw = vec![0.0f32; g.co * cig * kk];
    dw.par_chunks_mut(cog * cig * kk).enumerate().for_each_init(
        || vec![0.0f32; kout * kin],
        |de, (gi, dwg)| {
            // SAFETY: dE_g[kout, kin] = dY_g^T X_g: reads group gi's columns of `dy`
            // and `x` (all n rows), writes this task's own `de`.
            unsafe {
                gemm_strided(
                    (kout, kin, g.n),
                    de.as_mut_ptr(),
                    kin as isize,
                    (dy.as_ptr().add(gi * kout), 1, (g.co * pout) as isize),
                    (x.as_ptr().add(gi * kin), (g.ci * pin) as isize, 1),
                    par,
                )
            }
            for co in 0..cog {
                for po in 0..pout {
                    let row = &de[(co * pout + po) * kin..][..kin];
                    let links = &taps[po * pin..][..pin];
                    for ci in 0..cig {
                        let filter = &mut dwg[(co * cig + ci) * kk..][..kk];
                        for (v, t) in row[ci * pin..][..pin].iter().zip(links) {
                            if let Some(t) = t {
                                filter[*t] += *v;
                            }
                        }
                    }
                }
            }
        },
    );
    dw
}
