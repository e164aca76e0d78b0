//! 1x1 convolutions in NHWC: one GEMM `[pixels, c_in] x [c_in, c_out]`, split into row
//! tiles (or, for few rows, panels of output channels) that the threads share. At AVX-512
//! and AVX2 with `c_out` a multiple of 16 the packed kernels of `packed.rs` run it, bias,
//! activation and residual included; elsewhere the `gemm` crate (which picks its own
//! micro-kernels at run time), with the epilogue applied to each tile while it is in cache.

use gemm::Parallelism;
use rayon::prelude::*;

use crate::buffer::{self, Buf};
use crate::epilogue::{self, Epilogue};
use crate::packed::{self, Packed, PackedGemm, SharedOut};
use crate::parallel;
use crate::simd::SimdLevel;

/// Fewest rows of a tile: below this the weight packing per GEMM call costs more than the
/// tile's arithmetic.
const MIN_TILE_ROWS: usize = 64;
/// Most rows of a tile (keeps a tile's input and output in L2).
const MAX_TILE_ROWS: usize = 512;

/// A 1x1 convolution with its BN folded in.
#[derive(Clone, Debug)]
pub(crate) struct Conv1x1 {
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Stride (the input is subsampled first).
    pub stride: usize,
    /// Weight `[c_in][c_out]`.
    pub weight: Buf,
    /// The weight packed for the AVX-512 and AVX2 kernels (`packed.rs`), when `c_out` is a
    /// multiple of 16.
    pub packed: Option<Packed>,
    /// Bias `[c_out]`.
    pub bias: Vec<f32>,
    /// Fused tail.
    pub ep: Epilogue,
    /// Where `c_out` is not a multiple of 16 but at least [`MIN_PADDED`] (a classifier of
    /// 1000 classes): the weight packed with zero columns up to a multiple of 16, and the
    /// bias padded alike, for the packed kernels at few rows (see [`Conv1x1::few_rows`]).
    pub padded: Option<(Packed, Vec<f32>)>,
}

/// Fewest output channels that get a padded packed weight (narrower convs, such as
/// EfficientNet's 24 and 40 channels, keep the `gemm` crate: their copy would be most of it).
const MIN_PADDED: usize = 64;

/// Most rows that run on the padded weight (through a copy of the output).
const MAX_PADDED_ROWS: usize = 64;

impl Conv1x1 {
    /// Builds from a PyTorch weight `[c_out, c_in, 1, 1]`, packed for this CPU's best
    /// SIMD level ([`Conv1x1::repack`] packs it for another).
    pub fn new(weight: &[f32], bias: Vec<f32>, c_in: usize, stride: usize, ep: Epilogue) -> Self {
        let c_out = bias.len();
        let mut w = buffer::zeroed(c_in * c_out);
        for o in 0..c_out {
            for i in 0..c_in {
                w[i * c_out + o] = weight[o * c_in + i];
            }
        }
        let mut conv = Conv1x1 {
            c_in,
            c_out,
            stride,
            packed: None,
            weight: w,
            bias,
            ep,
            padded: None,
        };
        conv.repack(packed::panel(SimdLevel::detect()));
        conv
    }

    /// Packs the weight in panels of `panel` channels (see [`packed::panel`]), unless it
    /// already is.
    pub fn repack(&mut self, panel: usize) {
        let (c_in, c_out) = (self.c_in, self.c_out);
        if c_out.is_multiple_of(16) {
            if self.packed.as_ref().is_none_or(|p| p.panel() != panel) {
                self.packed = Some(Packed::new(&self.weight, c_in, c_out, panel));
            }
        } else if c_out >= MIN_PADDED && self.padded.as_ref().is_none_or(|p| p.0.panel() != panel) {
            let c_pad = c_out.next_multiple_of(16);
            let mut wp = vec![0.0; c_in * c_pad];
            for (dst, src) in wp
                .chunks_exact_mut(c_pad)
                .zip(self.weight.chunks_exact(c_out))
            {
                dst[..c_out].copy_from_slice(src);
            }
            let mut bp = self.bias.clone();
            bp.resize(c_pad, 0.0);
            self.padded = Some((Packed::new(&wp, c_in, c_pad, panel), bp));
        }
    }

    /// A few rows (a classifier at a small batch) on the padded weight, the threads sharing
    /// its panels; returns false (doing nothing) where there is none or it does not apply.
    /// The `gemm` crate ran RegNetX-400MF's 384 -> 1000 classifier at batch 8 on one thread
    /// at 11 GMAC/s.
    pub(crate) fn few_rows(
        &self,
        level: SimdLevel,
        src: &[f32],
        out: &mut [f32],
        residual: Option<&[f32]>,
    ) -> bool {
        let rows = out.len() / self.c_out;
        let Some((packed, bias)) = &self.padded else {
            return false;
        };
        if rows > MAX_PADDED_ROWS || residual.is_some() || !packed::has_kernel(level) {
            return false;
        }
        let c_pad = bias.len();
        let g = PackedGemm {
            packed,
            bias,
            c_in: self.c_in,
            ep: self.ep,
        };
        let mut wide = vec![0.0; rows * c_pad];
        let threads = rayon::current_num_threads().max(1);
        Self::split_panels(level, &g, src, &mut wide, None, threads);
        for (o, w) in out
            .chunks_exact_mut(self.c_out)
            .zip(wide.chunks_exact(c_pad))
        {
            o.copy_from_slice(&w[..self.c_out]);
        }
        true
    }

    /// Runs on `x` (`[n, h, w, c_in]`) into `out` (`[n, ho, wo, c_out]`); `scratch` holds the
    /// subsampled input of a strided conv.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        level: SimdLevel,
        x: &[f32],
        [n, h, w]: [usize; 3],
        scratch: &mut [f32],
        out: &mut [f32],
        residual: Option<&[f32]>,
    ) {
        let src: &[f32] = if self.stride == 1 {
            x
        } else {
            subsample(x, [n, h, w], self.c_in, self.stride, scratch)
        };
        let rows = out.len() / self.c_out;
        self.gemm_rows(level, &src[..rows * self.c_in], out, residual);
    }

    /// `out = epilogue(src x weight + bias)` over all rows, tiled across threads.
    pub fn gemm_rows(
        &self,
        level: SimdLevel,
        src: &[f32],
        out: &mut [f32],
        residual: Option<&[f32]>,
    ) {
        if self.few_rows(level, src, out, residual) {
            return;
        }
        let rows = out.len() / self.c_out;
        let threads = rayon::current_num_threads().max(1);
        let big = rows * self.c_in * self.c_out > 1 << 18;
        if threads == 1 || !big {
            self.tile(level, src, out, residual, Parallelism::None);
            return;
        }
        if let (Some(p), true) = (&self.packed, packed::has_kernel(level)) {
            let g = self.packed_gemm(p);
            if rows < self.c_out {
                // Fewer rows than channels (a 7x7 or 14x14 map at batch 1): the weights
                // outweigh the input, so the threads share the panels, each streaming its
                // part of the weights past every row (sharing the rows, each thread
                // streamed all the weights, and 49 rows split 32 + 17).
                Self::split_panels(level, &g, src, out, residual, threads);
                return;
            }
            // Equal shares, a multiple of the thread count, so that no thread is left
            // with an extra tile (7 tiles of 448 rows ran 4 against 3).
            let per = rows.div_ceil(threads * MAX_TILE_ROWS);
            self.split_rows(level, src, out, residual, rows.div_ceil(threads * per));
            return;
        }
        if rows < 2 * MIN_TILE_ROWS {
            // Few rows: one share of rows per thread, in multiples of 8.
            let share = rows.div_ceil(threads).next_multiple_of(8);
            self.split_rows(level, src, out, residual, share);
            return;
        }
        // (The `gemm` crate from here on.) Multiples of 64 rows: the height of its AVX-512
        // micro-kernel.
        let tile = (rows / (threads * 4))
            .next_multiple_of(64)
            .clamp(MIN_TILE_ROWS, MAX_TILE_ROWS);
        self.split_rows(level, src, out, residual, tile);
    }

    /// The packed kernel's view of this conv.
    fn packed_gemm<'a>(&'a self, packed: &'a Packed) -> PackedGemm<'a> {
        PackedGemm {
            packed,
            bias: &self.bias,
            c_in: self.c_in,
            ep: self.ep,
        }
    }

    /// All rows of `out`, its channels shared by the threads in units of
    /// [`packed::SPLIT`]: twice as many runs as threads, so that a thread slowed by other load hands work to the other.
    fn split_panels(
        level: SimdLevel,
        g: &PackedGemm,
        src: &[f32],
        out: &mut [f32],
        residual: Option<&[f32]>,
        threads: usize,
    ) {
        let c_out = g.bias.len();
        let panels = c_out.div_ceil(packed::SPLIT);
        let tasks = panel_tasks(panels, threads);
        let dst = SharedOut::new(out);
        parallel::for_each(tasks, |t| {
            let (p0, p1) = (panels * t / tasks, panels * (t + 1) / tasks);
            let cols = p0 * packed::SPLIT..(p1 * packed::SPLIT).min(c_out);
            // SAFETY: `out` stays borrowed until every task ends; the tasks' channel
            // ranges are disjoint.
            unsafe { packed::run(level, g, src, dst, residual, cols) };
        });
    }

    /// `out` in tiles of `tile` rows shared by the threads.
    fn split_rows(
        &self,
        level: SimdLevel,
        src: &[f32],
        out: &mut [f32],
        residual: Option<&[f32]>,
        tile: usize,
    ) {
        let (c_in, c_out) = (self.c_in, self.c_out);
        parallel::for_each_chunk(out, tile * c_out, |i, d| {
            let r0 = i * tile;
            let m = d.len() / c_out;
            let res = residual.map(|r| &r[r0 * c_out..(r0 + m) * c_out]);
            let s = &src[r0 * c_in..(r0 + m) * c_in];
            self.tile(level, s, d, res, Parallelism::None);
        });
    }

    /// One tile: the GEMM, then bias, activations and residual in one pass.
    fn tile(
        &self,
        level: SimdLevel,
        src: &[f32],
        dst: &mut [f32],
        residual: Option<&[f32]>,
        par: Parallelism,
    ) {
        let m = dst.len() / self.c_out;
        debug_assert_eq!(src.len(), m * self.c_in);
        // Single-threaded tiles at AVX-512 and AVX2: the packed kernel, epilogue included.
        if let (Some(p), Parallelism::None) = (&self.packed, par) {
            let g = self.packed_gemm(p);
            let cols = 0..self.c_out;
            // SAFETY: `dst` is borrowed mutably for the whole call: no other writer.
            if unsafe { packed::run(level, &g, src, SharedOut::new(dst), residual, cols) } {
                return;
            }
        }
        let (co, ci) = (self.c_out as isize, self.c_in as isize);
        let (w, x, d) = (self.weight.as_ptr(), src.as_ptr(), dst.as_mut_ptr());
        // SAFETY: dst is m x c_out, src m x c_in, weight c_in x c_out, all row-major and
        // in bounds (checked by the slice lengths above and at compile time). (Computing
        // `dst^T = weight^T x src^T` instead measured no faster, at any row count.)
        unsafe {
            gemm::gemm(
                m, self.c_out, self.c_in, d, 1, co, false, x, 1, ci, w, 1, co, 0.0, 1.0, false,
                false, false, par,
            );
        }
        epilogue::finish_rows(level, dst, &self.bias, residual, self.ep);
    }
}

/// Every `stride`-th pixel of `x` (`[n, h, w, c]`) into `scratch`; returns the filled part.
fn subsample<'a>(
    x: &[f32],
    [n, h, w]: [usize; 3],
    c: usize,
    stride: usize,
    scratch: &'a mut [f32],
) -> &'a [f32] {
    let (ho, wo) = ((h - 1) / stride + 1, (w - 1) / stride + 1);
    let len = n * ho * wo * c;
    scratch[..len]
        .par_chunks_mut(wo * c)
        .enumerate()
        .for_each(|(row, dst)| {
            let (b, oy) = (row / ho, row % ho);
            let src_row = &x[((b * h) + oy * stride) * w * c..];
            for (ox, d) in dst.chunks_exact_mut(c).enumerate() {
                d.copy_from_slice(&src_row[ox * stride * c..][..c]);
            }
        });
    &scratch[..len]
}

/// Tasks for `panels` panels on `threads` threads: two per thread, or one where only that
/// gives every task the same number of panels (10 panels, 320 channels, in 4 tasks of 2, 3,
/// 2 and 3 left one of 2 threads 6 panels and the other 4).
fn panel_tasks(panels: usize, threads: usize) -> usize {
    if panels.is_multiple_of(threads) && !panels.is_multiple_of(2 * threads) {
        threads
    } else {
        (2 * threads).min(panels)
    }
}

#[cfg(test)]
mod tests {
    use super::panel_tasks;

    /// Equal panel counts per thread wherever the panels divide evenly between the threads.
    #[test]
    fn threads_get_equal_panel_counts_where_possible() {
        for threads in 1..=8 {
            for panels in 1..=48 {
                let tasks = panel_tasks(panels, threads);
                assert!((1..=panels).contains(&tasks));
                // Tasks are claimed in turn: thread i of `threads` gets tasks i, i + threads...
                let share = |i: usize| {
                    (i..tasks)
                        .step_by(threads)
                        .map(|t| panels * (t + 1) / tasks - panels * t / tasks)
                        .sum::<usize>()
                };
                if panels.is_multiple_of(threads) {
                    let shares: Vec<usize> = (0..threads).map(share).collect();
                    assert!(
                        shares.iter().all(|&s| s == panels / threads),
                        "{panels} panels on {threads} threads: {shares:?}"
                    );
                }
            }
        }
    }
}
