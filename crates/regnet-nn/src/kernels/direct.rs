//! Direct grouped convolutions at strides 1 and 2, without unfolding: RegNet's
//! group-width-8/16 3x3 convolutions on 4x4 to 16x16 maps ran at 12-18 GMAC/s through im2col
//! and a GEMM whose output has 8 rows (`examples/kernel_bench.rs`); the unfolding alone was
//! 14% of a training step, and after the stride-1 layers moved here, the stride-2 layers that
//! open each stage were a quarter of the default model's step (im2col, col2im and their
//! copies, `perf`).
//!
//! The samples of a chunk are stacked, one group's channels at a time, into zero-padded
//! planes that share their padding rows (sample `j`'s real row `r` at row
//! `j * (h + p) + p + r`, width `w + 2p`). On that grid every kernel tap is a constant offset,
//! so an output channel is a sum of shifted copies of the input planes over one long "wide"
//! index `q = row * (w + 2p) + col` (positions that are not outputs are computed and
//! dropped). Blocks of [`OB`] output channels by [`V`] positions stay in registers while the
//! loop runs over input channels and taps:
//!
//! - forward: `yw[o][q] = sum_{c, t} w[o][c][t] * xs[c][q + off[t]]`;
//! - weight gradient: `dw[o][c][t] = sum_q dyw[o][q] * xs[c][q + off[t]]`, with `dy` laid
//!   out on the same grid (zeros where no output is);
//! - input gradient: the forward of `dy` with the weights transposed per group and
//!   flipped, padding `k - 1 - p`.
//!
//! At stride 2 the input is stacked as its four phase planes (even and odd rows times even
//! and odd columns of the padded input, each at half resolution), where a stride-2 tap is
//! again a constant offset, so the same kernels run the forward and the weight gradient; the
//! input gradient is one stride-1 product of `dy` per phase (see [`backward_data_strided`]).

use rayon::prelude::*;

use super::conv::ConvGeom;
use super::fill::written;
use super::phases::{Phases, RowsAt};
use super::simd::multiversioned;

/// Output channels per register block.
pub(super) const OB: usize = 8;
/// Positions per register block: two AVX-512 vectors.
const V: usize = 32;
/// Input values (channels of a group times stacked plane) per chunk of samples: the stacked
/// input of a group and its outputs stay in L2.
const CHUNK_VALUES: usize = 16 * 1024;

/// Whether `g` runs here: grouped (not depthwise), or a stem of at most 4 input channels
/// (whose im2col rows are so few that the GEMM ran at ~21 GFLOP/s: 1.35 ms for the default
/// model's 1-channel stem at batch 128, 0.60 ms here), stride 1 or 2, whole blocks of output
/// channels per group and padding the input gradient can mirror.
pub(super) fn applies(g: &ConvGeom) -> bool {
    (g.g > 1 && g.cig() > 1 || g.g == 1 && g.cig() <= 4)
        && (g.s == 1 || g.s == 2)
        && g.cog().is_multiple_of(OB)
        && g.p < g.k
        && g.h + 2 * g.p >= g.k
        && g.w + 2 * g.p >= g.k
}

/// Output width from which the direct kernels beat im2col and the GEMM (measured with
/// `examples/kernel_bench.rs`, AVX-512: forward and input gradient 2-3x faster from 7x7 to
/// 16x16 and 1.5-2x at 4x4; no faster at 2x2, where two thirds of the stacked grid is
/// padding).
const MIN_WIDTH: usize = 4;

/// Whether `g` should run here: it can ([`applies`]), its maps are wide enough to gain, and
/// the CPU has AVX-512 or AVX2 micro-kernels. (The portable loops compiled for AVX2 ran
/// 1.1-3x slower than im2col and the GEMM; with the AVX2 micro-kernels, `REGNET_SIMD=avx2
/// regnet time`, 4 rounds alternating: default model 36.7 vs 39.4 ms per training step,
/// RegNetX-400MF CIFAR 85.7 vs 90.7 ms.)
pub(super) fn pays_off(g: &ConvGeom) -> bool {
    applies(g) && g.ow() >= MIN_WIDTH && super::simd::level() >= super::simd::Level::Avx2
}

/// Whether the input gradient of `g` runs here (the forward of the mirrored geometry).
pub(super) fn applies_backward_data(g: &ConvGeom) -> bool {
    // At stride 2 only odd kernels of 3 and more: with an even one (and no padding) the last
    // input row of an odd map falls past the phase grid's rows, onto the next sample's.
    let strided_ok = g.k >= 3 && g.k % 2 == 1;
    applies(g) && (g.s == 1 || strided_ok) && g.cig().is_multiple_of(OB)
}

/// The stacked layout of a chunk of `nc` samples. At stride 2 each channel is stored as the
/// four phase planes of its padded input (`(row % 2, col % 2)`, each at half resolution), on
/// which every tap of a stride-2 kernel is again a constant offset into one of the planes.
#[derive(Clone, Copy)]
struct Stack {
    /// Grid width (padded width at stride 1, a phase plane's width at stride 2).
    wp: usize,
    /// Grid rows per sample (`h + p` at stride 1, where neighbours share `p` zero rows).
    pitch: usize,
    /// Wide positions computed, a multiple of [`V`].
    q: usize,
    /// Values per phase plane, with room for the furthest tap of the last block.
    plane: usize,
    /// Values per stacked channel: `s * s` planes.
    len: usize,
    /// Stride.
    s: usize,
    /// Samples.
    nc: usize,
}

impl Stack {
    fn new(g: &ConvGeom, nc: usize) -> Self {
        let (wp, pitch) = if g.s == 1 {
            (g.w + 2 * g.p, g.h + g.p)
        } else {
            // Room for every real input value and for the furthest tap of the last output.
            let reach = (g.k - 1) / 2;
            (
                (g.w + 2 * g.p).div_ceil(2).max(g.ow() + reach),
                (g.h + 2 * g.p).div_ceil(2).max(g.oh() + reach),
            )
        };
        let q = (nc * pitch * wp).div_ceil(V) * V;
        let reach = (g.k - 1) / g.s;
        let plane = (q + reach * (wp + 1)).max((nc * pitch + g.p) * wp);
        Stack {
            wp,
            pitch,
            q,
            plane,
            len: plane * g.s * g.s,
            s: g.s,
            nc,
        }
    }

    /// Wide position of output `(j, y, 0)`: column `x` is `x` further.
    fn at(&self, j: usize, y: usize) -> usize {
        (j * self.pitch + y) * self.wp
    }

    /// Offsets of the taps `kh * k + kw`.
    fn offsets(&self, k: usize) -> Vec<usize> {
        let s = self.s;
        (0..k * k)
            .map(|t| {
                let (kh, kw) = (t / k, t % k);
                ((kh % s) * s + kw % s) * self.plane + (kh / s) * self.wp + kw / s
            })
            .collect()
    }
}

/// Samples per chunk for `g`: as many as keep a group's stacked input in L2, in chunks the
/// threads share evenly (7x7 maps of the default model, 5 chunks of 28 samples against 6 of
/// 22; mean time per call over a 100-step `regnet time`, a temporary timer around the
/// kernels: forward 0.30-0.37 vs 0.22-0.24 ms, weight gradient 0.42 vs 0.35-0.38, input
/// gradient 0.25 vs 0.20; RegNetX-400MF CIFAR even or a few percent faster).
fn chunk(g: &ConvGeom) -> usize {
    let per_sample = (g.cig() * (g.h + g.p) * (g.w + 2 * g.p)).max(1);
    super::split::even_task_size(g.n, CHUNK_VALUES / per_sample)
}

/// Stacks channels `[c0, c0 + cig)` of samples `[n0, n0 + nc)` of `x` (`[n, c, h, w]`).
/// `xs` must start zeroed: every call writes the same positions, so the padding stays zero
/// and is not cleared again for each group.
fn stack_input(x: &[f32], g: &ConvGeom, st: &Stack, (n0, c0): (usize, usize), xs: &mut [f32]) {
    let (h, w, hw) = (g.h, g.w, g.h * g.w);
    let split = Phases::new(w);
    for c in 0..g.cig() {
        let chan = &mut xs[c * st.len..(c + 1) * st.len];
        for j in 0..st.nc {
            let plane = ((n0 + j) * g.ci + c0 + c) * hw;
            if st.s == 1 {
                for r in 0..h {
                    let at = (j * st.pitch + g.p + r) * st.wp + g.p;
                    chan[at..at + w].copy_from_slice(&x[plane + r * w..][..w]);
                }
                continue;
            }
            // Padded row `r + p` is row `(r + p) / 2` of the phase planes `(r + p) % 2`;
            // the even real columns go to phase `p % 2` from column `p / 2`, the odd ones to
            // the other phase from column `(p + 1) / 2`. Rows in memory order; `x` is passed
            // whole, for the splits to read ahead past a row.
            let to = |r: usize| {
                let (a, row) = ((r + g.p) % 2, (j * st.pitch + (r + g.p) / 2) * st.wp);
                let at = |b: usize| (a * 2 + b) * st.plane + row;
                (at(g.p % 2) + g.p / 2, at(1 - g.p % 2) + g.p.div_ceil(2))
            };
            let from = RowsAt {
                start: plane,
                stride: w,
            };
            split.split(x, (from, h), chan, to);
        }
    }
}

/// Forward weights of group `gi`, packed per block of [`OB`] outputs as `[c][t][o]`.
fn pack_weights(wt: &[f32], g: &ConvGeom, gi: usize) -> Vec<f32> {
    let (cig, cog, kk) = (g.cig(), g.cog(), g.k * g.k);
    let mut out = vec![0.0f32; cog * cig * kk];
    for o in 0..cog {
        let (b, ob) = (o / OB, o % OB);
        for c in 0..cig {
            for t in 0..kk {
                out[((b * cig + c) * kk + t) * OB + ob] = wt[((gi * cog + o) * cig + c) * kk + t];
            }
        }
    }
    out
}

/// `yw[o][q] = sum_{c, t} wpk[(c * kk + t) * OB + o] * xs[c * len + q + offs[t]]` for the
/// [`OB`] outputs of one block, `q` in `[0, q)` (`dims = (len, cig, q)`).
fn block_forward(
    xs: &[f32],
    dims: (usize, usize, usize),
    offs: &[usize],
    wpk: &[f32],
    yw: &mut [f32],
) {
    let (len, cig, q) = dims;
    // The bounds every load and store below stays in.
    assert!(q.is_multiple_of(V) && yw.len() >= OB * q && wpk.len() >= cig * offs.len() * OB);
    assert!(
        offs.iter()
            .all(|&o| (cig - 1) * len + q - V + o + V <= xs.len())
    );
    #[cfg(target_arch = "x86_64")]
    match super::simd::level() {
        // SAFETY: the CPU has AVX-512F (`level`); the assertions bound every access.
        super::simd::Level::Avx512 => {
            return unsafe { avx512::block_forward(xs, dims, offs, wpk, yw) };
        }
        // SAFETY: the CPU has AVX2 and FMA (`level`); the assertions bound every access.
        super::simd::Level::Avx2 => return unsafe { avx2::block_forward(xs, dims, offs, wpk, yw) },
        super::simd::Level::Portable => {}
    }
    block_forward_generic(xs, dims, offs, wpk, yw);
}

multiversioned! {
    /// [`block_forward`] for CPUs without AVX-512 (and the tests' portable path).
    fn block_forward_generic(xs: &[f32], dims: (usize, usize, usize), offs: &[usize], wpk: &[f32], yw: &mut [f32]) {
        let ((len, cig, q), kk) = (dims, offs.len());
        // One output row at a time: the loop over positions is the one that vectorizes.
        for q0 in (0..q).step_by(V) {
            for o in 0..OB {
                let mut acc = [0.0f32; V];
                for c in 0..cig {
                    let base = &xs[c * len + q0..];
                    let wc = &wpk[c * kk * OB..(c + 1) * kk * OB];
                    for (t, &off) in offs.iter().enumerate() {
                        let w = wc[t * OB + o];
                        for (a, x) in acc.iter_mut().zip(&base[off..off + V]) {
                            *a = w.mul_add(*x, *a);
                        }
                    }
                }
                yw[o * q + q0..o * q + q0 + V].copy_from_slice(&acc);
            }
        }
    }
}

/// Direct forward of `g` (see [`applies`]).
pub(super) fn forward(x: &[f32], wt: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (cig, cog, kk) = (g.cig(), g.cog(), g.k * g.k);
    let pix = g.oh() * g.ow();
    let packed: Vec<Vec<f32>> = (0..g.g).map(|gi| pack_weights(wt, g, gi)).collect();
    let nc = chunk(g);
    written(g.n * g.co * pix, nc * g.co * pix, |ci, ychunk| {
        let st = Stack::new(g, ychunk.len() / (g.co * pix));
        let offs = st.offsets(g.k);
        let mut xs = vec![0.0f32; cig * st.len];
        let mut yw = vec![0.0f32; OB * st.q];
        for (gi, wpk) in packed.iter().enumerate() {
            stack_input(x, g, &st, (ci * nc, gi * cig), &mut xs);
            for b in 0..cog / OB {
                let wb = &wpk[b * cig * kk * OB..(b + 1) * cig * kk * OB];
                block_forward(&xs, (st.len, cig, st.q), &offs, wb, &mut yw);
                unstack_block(&yw, g, &st, gi * cog + b * OB, ychunk);
            }
        }
    })
}

/// Copies the outputs of a block of [`OB`] channels from the stacked grid into `ychunk`.
fn unstack_block(yw: &[f32], g: &ConvGeom, st: &Stack, co0: usize, ychunk: &mut [f32]) {
    let (oh, ow, pix) = (g.oh(), g.ow(), g.oh() * g.ow());
    for o in 0..OB {
        let row = &yw[o * st.q..(o + 1) * st.q];
        for j in 0..st.nc {
            let dst = &mut ychunk[(j * g.co + co0 + o) * pix..][..pix];
            for yy in 0..oh {
                dst[yy * ow..(yy + 1) * ow].copy_from_slice(&row[st.at(j, yy)..][..ow]);
            }
        }
    }
}

/// Input gradient of `g` (see [`applies_backward_data`]): the forward of `dy` through the
/// mirrored convolution.
pub(super) fn backward_data(dy: &[f32], wt: &[f32], g: &ConvGeom) -> Vec<f32> {
    if g.s == 2 {
        return backward_data_strided(dy, wt, g);
    }
    let (cig, cog, k) = (g.cig(), g.cog(), g.k);
    let m = ConvGeom {
        n: g.n,
        ci: g.co,
        co: g.ci,
        h: g.oh(),
        w: g.ow(),
        k,
        s: 1,
        p: k - 1 - g.p,
        g: g.g,
    };
    // m's weight [ci][cog][k][k]: w[gi cog + o][c][kh][kw] goes to [gi cig + c][o][k-1-kh][k-1-kw].
    let mut wm = vec![0.0f32; wt.len()];
    for gi in 0..g.g {
        for o in 0..cog {
            for c in 0..cig {
                for t in 0..k * k {
                    let src = ((gi * cog + o) * cig + c) * k * k + t;
                    let dst = ((gi * cig + c) * cog + o) * k * k + (k * k - 1 - t);
                    wm[dst] = wt[src];
                }
            }
        }
    }
    forward(dy, &wm, &m)
}

/// Input gradient of a stride-2 `g`. Phase `(a, b)` of the padded input gradient (rows
/// `2r + a`, columns `2c + b`) collects only the taps with `kh % 2 == a` and `kw % 2 == b`,
/// which read `dy[r - kh / 2][c - kw / 2]`: a stride-1 convolution of `dy` (padded by
/// `reach = (k - 1) / 2` on every side) with those taps. Both column phases of a row phase
/// run through [`block_forward`], then each of its rows of `dx` is written once, merged from
/// the two ([`scatter_rows`]).
fn backward_data_strided(dy: &[f32], wt: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (cig, k) = (g.cig(), g.k);
    let reach = (k - 1) / 2;
    // `dy` as the input of a stride-1 convolution whose taps reach `reach` rows and columns.
    let m = ConvGeom {
        n: g.n,
        ci: g.co,
        co: g.ci,
        h: g.oh(),
        w: g.ow(),
        k: reach + 1,
        s: 1,
        p: reach,
        g: g.g,
    };
    // Phase `2 a + b`'s taps.
    let phases: Vec<Vec<usize>> = (0..4)
        .map(|ph| {
            let (a, b) = (ph / 2, ph % 2);
            (0..k * k)
                .filter(|t| (t / k) % 2 == a && (t % k) % 2 == b)
                .collect()
        })
        .collect();
    // packed[gi][phase]: per block of OB input channels, `[o][tap][OB]`.
    let packed: Vec<Vec<Vec<f32>>> = (0..g.g)
        .map(|gi| {
            phases
                .iter()
                .map(|taps| pack_phase_weights(wt, g, gi, taps))
                .collect()
        })
        .collect();
    let nc = chunk(&m);
    let per_sample = g.ci * g.h * g.w;
    written(g.n * per_sample, nc * per_sample, |ci, dxchunk| {
        let st = Stack::new(&m, dxchunk.len() / per_sample);
        let mut ds = vec![0.0f32; g.cog() * st.len];
        let mut yw = [vec![0.0f32; OB * st.q], vec![0.0f32; OB * st.q]];
        // Each phase's taps as offsets on this chunk's grid.
        let offsets: Vec<Vec<usize>> = phases
            .iter()
            .map(|taps| {
                taps.iter()
                    .map(|t| (reach - t / k / 2) * st.wp + reach - t % k / 2)
                    .collect()
            })
            .collect();
        for (gi, per_phase) in packed.iter().enumerate() {
            stack_input(dy, &m, &st, (ci * nc, gi * g.cog()), &mut ds);
            for a in 0..2 {
                for blk in 0..cig / OB {
                    // Both column phases of row phase `a`, whose rows are then merged.
                    for (b, yb) in yw.iter_mut().enumerate() {
                        let ph = 2 * a + b;
                        let per_block = g.cog() * phases[ph].len() * OB;
                        let wb = &per_phase[ph][blk * per_block..(blk + 1) * per_block];
                        block_forward(&ds, (st.len, g.cog(), st.q), &offsets[ph], wb, yb);
                    }
                    scatter_rows(&yw, g, &st, (a, gi * cig + blk * OB), dxchunk);
                }
            }
        }
    })
}

/// The weights of group `gi` for the input gradient through `taps`, per block of [`OB`]
/// input channels as `[o][tap][c]`.
fn pack_phase_weights(wt: &[f32], g: &ConvGeom, gi: usize, taps: &[usize]) -> Vec<f32> {
    let (cig, cog, kk) = (g.cig(), g.cog(), g.k * g.k);
    let mut out = vec![0.0f32; cig * cog * taps.len()];
    for c in 0..cig {
        let (blk, ob) = (c / OB, c % OB);
        for o in 0..cog {
            for (u, &t) in taps.iter().enumerate() {
                out[((blk * cog + o) * taps.len() + u) * OB + ob] =
                    wt[((gi * cog + o) * cig + c) * kk + t];
            }
        }
    }
    out
}

/// Writes row phase `a` of the input gradient of channels `[c0, c0 + OB)` from the grid
/// into every other row of `dxchunk`, each row merged from the two column phases `yw`.
fn scatter_rows(
    yw: &[Vec<f32>; 2],
    g: &ConvGeom,
    st: &Stack,
    (a, c0): (usize, usize),
    dxchunk: &mut [f32],
) {
    let (h, w) = (g.h, g.w);
    // The phase's first real row and its grid row.
    let y0 = (a + g.p) % 2;
    let (r0, rows) = ((y0 + g.p) / 2, h.saturating_sub(y0).div_ceil(2));
    // Even columns come from column phase `p % 2` from grid column `p / 2`, odd ones from
    // the other phase from grid column `(p + 1) / 2`. The buffers are passed whole: the
    // merges read ahead past a row where they go on.
    let (be, merge) = (g.p % 2, Phases::new(w));
    for o in 0..OB {
        for j in 0..st.nc {
            let grid = |col: usize| RowsAt {
                start: o * st.q + st.at(j, r0) + col,
                stride: st.wp,
            };
            let to = RowsAt {
                start: (j * g.ci + c0 + o) * h * w + y0 * w,
                stride: 2 * w,
            };
            let from = (grid(g.p / 2), grid(g.p.div_ceil(2)));
            merge.merge((&yw[be], &yw[1 - be]), (from, rows), dxchunk, to);
        }
    }
}

/// `out[o][u] = sum_q dyw[o][q] * xc[q + offs[u]]` for up to 3 taps `offs` of one input
/// channel `xc` and the [`OB`] outputs of one block.
fn taps_weight_grad(xc: &[f32], dyw: &[f32], q: usize, offs: &[usize], out: &mut [[f32; 3]; OB]) {
    assert!(q.is_multiple_of(V) && dyw.len() >= OB * q && (1..=3).contains(&offs.len()));
    assert!(offs.iter().all(|&o| q + o <= xc.len()));
    #[cfg(target_arch = "x86_64")]
    match super::simd::level() {
        // SAFETY: the CPU has AVX-512F (`level`); the assertions bound every access.
        super::simd::Level::Avx512 => unsafe {
            return match offs.len() {
                3 => avx512::taps_grad::<3>(xc, dyw, q, offs, out),
                2 => avx512::taps_grad::<2>(xc, dyw, q, offs, out),
                _ => avx512::taps_grad::<1>(xc, dyw, q, offs, out),
            };
        },
        // SAFETY: the CPU has AVX2 and FMA (`level`); the assertions bound every access.
        super::simd::Level::Avx2 => unsafe {
            return match offs.len() {
                3 => avx2::taps_grad::<3>(xc, dyw, q, offs, out),
                2 => avx2::taps_grad::<2>(xc, dyw, q, offs, out),
                _ => avx2::taps_grad::<1>(xc, dyw, q, offs, out),
            };
        },
        super::simd::Level::Portable => {}
    }
    taps_grad_generic(xc, dyw, q, offs, out);
}

multiversioned! {
    /// [`taps_weight_grad`] for CPUs without AVX-512 (and the tests' portable path).
    fn taps_grad_generic(xc: &[f32], dyw: &[f32], q: usize, offs: &[usize], out: &mut [[f32; 3]; OB]) {
        for (o, row) in out.iter_mut().enumerate() {
            let d = &dyw[o * q..(o + 1) * q];
            for (u, &off) in offs.iter().enumerate() {
                row[u] = dot(d, &xc[off..off + q]);
            }
        }
    }
}

/// Dot product in [`LANES`](super::simd::LANES) partial sums.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; super::simd::LANES];
    let (ac, bc) = (a.chunks_exact(acc.len()), b.chunks_exact(acc.len()));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..acc.len() {
            acc[l] += x[l] * y[l];
        }
    }
    super::simd::reduce(acc, tail)
}

/// The AVX-512 micro-kernels.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{OB, V};

    /// See [`super::block_forward`]: 8 outputs x 32 positions in 16 registers.
    ///
    /// # Safety
    /// AVX-512F must be available and every access in bounds (the caller asserts it).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn block_forward(
        xs: &[f32],
        (len, cig, q): (usize, usize, usize),
        offs: &[usize],
        wpk: &[f32],
        yw: &mut [f32],
    ) {
        let kk = offs.len();
        let (xp, wp, yp) = (xs.as_ptr(), wpk.as_ptr(), yw.as_mut_ptr());
        for q0 in (0..q).step_by(V) {
            let mut a0 = [_mm512_setzero_ps(); OB];
            let mut a1 = [_mm512_setzero_ps(); OB];
            for c in 0..cig {
                for (t, &off) in offs.iter().enumerate() {
                    // SAFETY: in bounds, as the caller asserted.
                    unsafe {
                        let src = xp.add(c * len + q0 + off);
                        let (v0, v1) = (_mm512_loadu_ps(src), _mm512_loadu_ps(src.add(16)));
                        let w = wp.add((c * kk + t) * OB);
                        for o in 0..OB {
                            let b = _mm512_set1_ps(*w.add(o));
                            a0[o] = _mm512_fmadd_ps(b, v0, a0[o]);
                            a1[o] = _mm512_fmadd_ps(b, v1, a1[o]);
                        }
                    }
                }
            }
            for o in 0..OB {
                // SAFETY: in bounds, as the caller asserted.
                unsafe {
                    let dst = yp.add(o * q + q0);
                    _mm512_storeu_ps(dst, a0[o]);
                    _mm512_storeu_ps(dst.add(16), a1[o]);
                }
            }
        }
    }

    /// See [`super::taps_weight_grad`]: 8 outputs x `T` taps in `8 T` registers.
    ///
    /// # Safety
    /// AVX-512F must be available and every access in bounds (the caller asserts it).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn taps_grad<const T: usize>(
        xc: &[f32],
        dyw: &[f32],
        q: usize,
        offs: &[usize],
        out: &mut [[f32; 3]; OB],
    ) {
        let mut acc = [[_mm512_setzero_ps(); T]; OB];
        let (xp, dp) = (xc.as_ptr(), dyw.as_ptr());
        for q0 in (0..q).step_by(16) {
            // SAFETY: in bounds, as the caller asserted.
            unsafe {
                let v: [__m512; T] = std::array::from_fn(|u| _mm512_loadu_ps(xp.add(q0 + offs[u])));
                for (o, a) in acc.iter_mut().enumerate() {
                    let d = _mm512_loadu_ps(dp.add(o * q + q0));
                    for (au, vu) in a.iter_mut().zip(&v) {
                        *au = _mm512_fmadd_ps(d, *vu, *au);
                    }
                }
            }
        }
        for (row, a) in out.iter_mut().zip(&acc) {
            for (r, au) in row.iter_mut().zip(a) {
                *r = _mm512_reduce_add_ps(*au);
            }
        }
    }
}

/// The AVX2 + FMA micro-kernels: 16 registers of 8 lanes, so the blocks are smaller.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::OB;
    use crate::kernels::simd::sum8;

    /// See [`super::block_forward`]: 8 outputs x 8 positions in 8 registers (`q` is a
    /// multiple of 8, as of [`super::V`]).
    ///
    /// # Safety
    /// AVX2 and FMA must be available and every access in bounds (the caller asserts it).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block_forward(
        xs: &[f32],
        (len, cig, q): (usize, usize, usize),
        offs: &[usize],
        wpk: &[f32],
        yw: &mut [f32],
    ) {
        let kk = offs.len();
        let (xp, wp, yp) = (xs.as_ptr(), wpk.as_ptr(), yw.as_mut_ptr());
        for q0 in (0..q).step_by(8) {
            let mut acc = [_mm256_setzero_ps(); OB];
            for c in 0..cig {
                for (t, &off) in offs.iter().enumerate() {
                    // SAFETY: in bounds, as the caller asserted (q0 + 8 <= q).
                    unsafe {
                        let v = _mm256_loadu_ps(xp.add(c * len + q0 + off));
                        let w = wp.add((c * kk + t) * OB);
                        for (o, a) in acc.iter_mut().enumerate() {
                            *a = _mm256_fmadd_ps(_mm256_broadcast_ss(&*w.add(o)), v, *a);
                        }
                    }
                }
            }
            for (o, a) in acc.iter().enumerate() {
                // SAFETY: in bounds, as the caller asserted.
                unsafe { _mm256_storeu_ps(yp.add(o * q + q0), *a) };
            }
        }
    }

    /// See [`super::taps_weight_grad`]: 4 outputs x `T` taps in `4 T` registers, twice.
    ///
    /// # Safety
    /// AVX2 and FMA must be available and every access in bounds (the caller asserts it).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn taps_grad<const T: usize>(
        xc: &[f32],
        dyw: &[f32],
        q: usize,
        offs: &[usize],
        out: &mut [[f32; 3]; OB],
    ) {
        let (xp, dp) = (xc.as_ptr(), dyw.as_ptr());
        for half in 0..OB / 4 {
            let mut acc = [[_mm256_setzero_ps(); T]; 4];
            for q0 in (0..q).step_by(8) {
                // SAFETY: in bounds, as the caller asserted.
                unsafe {
                    let v: [__m256; T] =
                        std::array::from_fn(|u| _mm256_loadu_ps(xp.add(q0 + offs[u])));
                    for (i, a) in acc.iter_mut().enumerate() {
                        let d = _mm256_loadu_ps(dp.add((half * 4 + i) * q + q0));
                        for (au, vu) in a.iter_mut().zip(&v) {
                            *au = _mm256_fmadd_ps(d, *vu, *au);
                        }
                    }
                }
            }
            for (i, a) in acc.iter().enumerate() {
                for (r, au) in out[half * 4 + i].iter_mut().zip(a) {
                    *r = sum8(*au);
                }
            }
        }
    }
}

/// Lays out `dy` of outputs `[co0, co0 + OB)`, samples `[n0, n0 + nc)` on the stacked grid.
/// `dyw` must start zeroed (as in [`stack_input`], the positions between stay zero).
fn stack_dy(dy: &[f32], g: &ConvGeom, st: &Stack, (n0, co0): (usize, usize), dyw: &mut [f32]) {
    let (oh, ow, pix) = (g.oh(), g.ow(), g.oh() * g.ow());
    for o in 0..OB {
        let row = &mut dyw[o * st.q..(o + 1) * st.q];
        for j in 0..st.nc {
            let src = &dy[((n0 + j) * g.co + co0 + o) * pix..][..pix];
            for yy in 0..oh {
                row[st.at(j, yy)..][..ow].copy_from_slice(&src[yy * ow..(yy + 1) * ow]);
            }
        }
    }
}

/// Weight gradient of `g` (see [`applies`]): one partial sum per chunk of samples, added in
/// chunk order.
pub(super) fn backward_weight(x: &[f32], dy: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (cig, cog, k, kk) = (g.cig(), g.cog(), g.k, g.k * g.k);
    let wlen = g.co * cig * kk;
    let nc = chunk(g);
    let partials: Vec<Vec<f32>> = (0..g.n.div_ceil(nc))
        .into_par_iter()
        .map(|ci| {
            let n0 = ci * nc;
            let st = Stack::new(g, nc.min(g.n - n0));
            let offs = st.offsets(k);
            let mut xs = vec![0.0f32; cig * st.len];
            let mut dyw = vec![0.0f32; OB * st.q];
            let mut dw = vec![0.0f32; wlen];
            for gi in 0..g.g {
                stack_input(x, g, &st, (n0, gi * cig), &mut xs);
                for b in 0..cog / OB {
                    let co0 = gi * cog + b * OB;
                    stack_dy(dy, g, &st, (n0, co0), &mut dyw);
                    for c in 0..cig {
                        let xc = &xs[c * st.len..(c + 1) * st.len];
                        for t0 in (0..kk).step_by(3) {
                            let taps = &offs[t0..(t0 + 3).min(kk)];
                            let mut out = [[0.0f32; 3]; OB];
                            taps_weight_grad(xc, &dyw, st.q, taps, &mut out);
                            for (o, v) in out.iter().enumerate() {
                                let at = ((co0 + o) * cig + c) * kk + t0;
                                dw[at..at + taps.len()].copy_from_slice(&v[..taps.len()]);
                            }
                        }
                    }
                }
            }
            dw
        })
        .collect();
    super::partials::sum_in_order(partials, wlen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::for_each_level;

    /// The convolution, its input gradient and its weight gradient by their definitions, in
    /// f64: `y[n,o,yy,xx] = sum w[o,c,kh,kw] x[n, g cig + c, s yy + kh - p, s xx + kw - p]`.
    fn naive(x: &[f32], wt: &[f32], dy: &[f32], g: &ConvGeom) -> [Vec<f64>; 3] {
        let (cig, cog, k, oh, ow) = (g.cig(), g.cog(), g.k, g.oh(), g.ow());
        let (xl, wl, yl) = g.sizes();
        let (mut y, mut dx, mut dw) = (vec![0.0; yl], vec![0.0; xl], vec![0.0; wl]);
        for n in 0..g.n {
            for o in 0..g.co {
                let c0 = o / cog * cig;
                for yy in 0..oh {
                    for xx in 0..ow {
                        let yi = ((n * g.co + o) * oh + yy) * ow + xx;
                        for c in 0..cig {
                            for kh in 0..k {
                                for kw in 0..k {
                                    let iy = (g.s * yy + kh).checked_sub(g.p).filter(|&v| v < g.h);
                                    let ix = (g.s * xx + kw).checked_sub(g.p).filter(|&v| v < g.w);
                                    let (Some(iy), Some(ix)) = (iy, ix) else {
                                        continue;
                                    };
                                    let xi = ((n * g.ci + c0 + c) * g.h + iy) * g.w + ix;
                                    let wi = ((o * cig + c) * k + kh) * k + kw;
                                    y[yi] += x[xi] as f64 * wt[wi] as f64;
                                    dx[xi] += dy[yi] as f64 * wt[wi] as f64;
                                    dw[wi] += dy[yi] as f64 * x[xi] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        [y, dx, dw]
    }

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| {
                ((i.wrapping_mul(2654435761).wrapping_add(seed) >> 9) % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn close(got: &[f32], want: &[f64], what: &str, g: &ConvGeom) {
        assert_eq!(got.len(), want.len(), "{what} {g:?}");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (*a as f64 - b).abs() < 1e-4 * (1.0 + b.abs()),
                "{what} {g:?} [{i}]: {a} vs {b}"
            );
        }
    }

    /// Grouped shapes: group widths 8 and 16, 1x1 to 5x5 kernels, square and not, maps
    /// from 1x1 to 9x11, strides 1 and 2 (even and odd sizes), chunks of one sample and of
    /// several.
    fn geoms() -> Vec<ConvGeom> {
        [
            (3, 16, 16, 4, 4, 3, 1, 2, 1),
            (2, 48, 48, 7, 7, 3, 1, 3, 1),
            (2, 16, 32, 5, 6, 3, 1, 2, 1),
            (2, 24, 16, 3, 3, 3, 1, 2, 1),
            (2, 16, 16, 6, 6, 5, 2, 2, 1),
            (2, 16, 16, 4, 4, 1, 0, 2, 1),
            (5, 16, 16, 1, 1, 3, 1, 2, 1),
            (1, 32, 32, 9, 11, 3, 1, 4, 1),
            (40, 16, 16, 4, 4, 3, 1, 2, 1),
            (2, 16, 16, 5, 5, 3, 0, 2, 1),
            (3, 16, 16, 8, 8, 3, 1, 2, 2),
            (2, 40, 40, 7, 7, 3, 1, 5, 2),
            (2, 16, 32, 9, 6, 3, 1, 2, 2),
            (2, 16, 16, 7, 7, 5, 2, 2, 2),
            (2, 16, 16, 6, 6, 1, 0, 2, 2),
            (40, 16, 16, 5, 5, 3, 0, 2, 2),
            (3, 3, 16, 11, 11, 3, 1, 1, 2),
            (4, 16, 16, 11, 11, 4, 0, 2, 2),
        ]
        .into_iter()
        .map(|(n, ci, co, h, w, k, p, g, s)| ConvGeom {
            n,
            ci,
            co,
            h,
            w,
            k,
            s,
            p,
            g,
        })
        .collect()
    }

    #[test]
    fn direct_kernels_match_the_definition_on_every_simd_level() {
        for_each_level(|level| {
            for g in geoms() {
                assert!(applies(&g), "{g:?}");
                let (xl, wl, yl) = g.sizes();
                let (x, wt, dy) = (data(xl, 1), data(wl, 2), data(yl, 3));
                let [y_want, dx_want, dw_want] = naive(&x, &wt, &dy, &g);
                let y = forward(&x, &wt, &g);
                close(&y, &y_want, &format!("forward {level:?}"), &g);
                close(
                    &backward_weight(&x, &dy, &g),
                    &dw_want,
                    &format!("dw {level:?}"),
                    &g,
                );
                if applies_backward_data(&g) {
                    let dx = backward_data(&dy, &wt, &g);
                    close(&dx, &dx_want, &format!("dx {level:?}"), &g);
                }
            }
        });
    }

    #[test]
    fn takes_only_what_it_can_run() {
        let base = ConvGeom {
            n: 2,
            ci: 16,
            co: 16,
            h: 4,
            w: 4,
            k: 3,
            s: 1,
            p: 1,
            g: 2,
        };
        assert!(applies(&base) && applies_backward_data(&base));
        assert!(applies_backward_data(&ConvGeom { s: 2, ..base }));
        assert!(!applies_backward_data(&ConvGeom {
            s: 2,
            k: 1,
            p: 0,
            ..base
        }));
        assert!(!applies_backward_data(&ConvGeom {
            s: 2,
            k: 4,
            p: 0,
            ..base
        }));
        assert!(!applies(&ConvGeom { s: 3, ..base }));
        assert!(!applies(&ConvGeom { g: 1, ..base }));
        assert!(applies(&ConvGeom {
            ci: 3,
            g: 1,
            ..base
        }));
        assert!(!applies(&ConvGeom {
            ci: 5,
            g: 1,
            ..base
        }));
        assert!(!applies(&ConvGeom { g: 16, ..base }));
        assert!(!applies(&ConvGeom { co: 12, ..base }));
        assert!(!applies_backward_data(&ConvGeom { ci: 12, ..base }));
    }
}
