//! `A * B^T` for row-major matrices whose rows are long and few: the weight gradients,
//! `dW[cog, K] = dY[cog, cols] * C[K, cols]^T`, where `cols` (samples times pixels) runs to
//! thousands while `cog` is 8 and `K` 72 in RegNet's group-width-8 convolutions.
//!
//! A general GEMM packs both operands into panels along the long dimension and runs its
//! micro-kernel on an 8-row output (half of an AVX-512 tile); measured, that took 4x longer
//! than the forward product of the same size. Here every output is a dot product of two
//! contiguous rows, computed in register blocks of 4 x 2 rows with 8-lane accumulators,
//! straight from the unpacked rows.

use super::simd::multiversioned;

/// Lanes per accumulator.
const L: usize = 8;

/// Dot products of `MA` rows of `a` with `NB` rows of `b`, over `len` values.
#[inline(always)]
fn block<const MA: usize, const NB: usize>(
    a: [&[f32]; MA],
    b: [&[f32]; NB],
    len: usize,
) -> [[f32; NB]; MA] {
    let mut acc = [[[0.0f32; L]; NB]; MA];
    let full = len / L * L;
    let mut t = 0;
    while t < full {
        for r in 0..MA {
            let av = &a[r][t..t + L];
            for s in 0..NB {
                let bv = &b[s][t..t + L];
                for l in 0..L {
                    acc[r][s][l] += av[l] * bv[l];
                }
            }
        }
        t += L;
    }
    let mut out = [[0.0f32; NB]; MA];
    for r in 0..MA {
        for s in 0..NB {
            let tail: f32 = (full..len).map(|t| a[r][t] * b[s][t]).sum();
            out[r][s] = acc[r][s].iter().sum::<f32>() + tail;
        }
    }
    out
}

/// Operand rows: `rows` rows of `len` values, `stride` apart.
#[derive(Clone, Copy)]
pub(super) struct Rows<'a> {
    /// The values.
    pub data: &'a [f32],
    /// Number of rows.
    pub rows: usize,
    /// Distance between row starts.
    pub stride: usize,
}

impl<'a> Rows<'a> {
    /// The same rows without their first `t` values.
    fn skip(self, t: usize) -> Self {
        Rows {
            data: &self.data[t.min(self.data.len())..],
            ..self
        }
    }

    #[inline(always)]
    fn pick<const R: usize>(&self, first: usize, len: usize) -> [&'a [f32]; R] {
        std::array::from_fn(|r| &self.data[(first + r) * self.stride..][..len])
    }
}

/// Adds (or writes, `accumulate == false`) the output block of rows `i..i+MA` of `a` and
/// `j..j+NB` of `b` into `dst` (row stride `b.rows`).
#[inline(always)]
fn put<const MA: usize, const NB: usize>(
    a: Rows,
    b: Rows,
    (i, j, len): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
) {
    let v = block::<MA, NB>(a.pick::<MA>(i, len), b.pick::<NB>(j, len), len);
    for (r, row) in v.iter().enumerate() {
        for (s, x) in row.iter().enumerate() {
            let d = &mut dst[(i + r) * b.rows + j + s];
            *d = if accumulate { *d + *x } else { *x };
        }
    }
}

/// Values per tile of the long dimension: the 4 + 2 rows of a block (24 KB) stay in L1
/// while every block of the tile reads them.
const TILE: usize = 1024;

/// `dst[i, j] (+)= sum_t a[i, t] * b[j, t]` over `len` values; `dst` is `[a.rows, b.rows]`
/// row-major. Works tile by tile along `t` so the rows come from cache.
pub(super) fn gemm_abt(a: Rows, b: Rows, len: usize, dst: &mut [f32], accumulate: bool) {
    let mut t0 = 0;
    while t0 < len || (t0 == 0 && !accumulate) {
        let tl = TILE.min(len - t0);
        gemm_abt_tile(a.skip(t0), b.skip(t0), tl, dst, accumulate || t0 > 0);
        t0 += TILE;
    }
}

multiversioned! {
    /// [`gemm_abt`] over one tile.
    fn gemm_abt_tile(a: Rows, b: Rows, len: usize, dst: &mut [f32], accumulate: bool) {
        let mut i = 0;
        while i < a.rows {
            let four = i + 4 <= a.rows;
            let mut j = 0;
            while j + 2 <= b.rows {
                if four {
                    put::<4, 2>(a, b, (i, j, len), dst, accumulate);
                } else {
                    put::<1, 2>(a, b, (i, j, len), dst, accumulate);
                }
                j += 2;
            }
            if j < b.rows {
                if four {
                    put::<4, 1>(a, b, (i, j, len), dst, accumulate);
                } else {
                    put::<1, 1>(a, b, (i, j, len), dst, accumulate);
                }
            }
            i += if four { 4 } else { 1 };
        }
    }
}
