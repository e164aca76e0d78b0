//! A row split into its even and odd values, and two such halves merged back: the data
//! movement of the stride-2 direct kernels ([`super::direct`]), which stack each input row
//! as two phase rows and write each input-gradient row from two phase results.
//!
//! Why vectors: as scalar loops (one load and one store per value) these copies were the
//! larger part of the stride-2 convolutions. `perf` of the default model's 16-channel
//! stride-2 layer at batch 128 (28x28 to 14x14, a loop of 200 calls of one kernel): the
//! stacking 59 % of the forward's samples against 16 % for the multiply-adds, and the
//! scalar scatter of the input gradient's phases (each phase to every other value of a row)
//! 54 % of that call; the input gradient now computes both column phases of a row before
//! writing it once. An earlier AVX-512 version with masked loads stalled on activations that
//! had left the cache; here every load is a full unmasked vector (read past the row where
//! the slice goes on, which the callers' layouts allow for all rows but the last few), and
//! only the stores are masked (AVX-512) or left to a scalar tail (AVX2). The fastest of six
//! default-model training runs, per kernel (a temporary timer around the kernels, old and
//! new builds alternating): that layer's forward 0.70 -> 0.55 ms, input gradient 0.70 ->
//! 0.44, weight gradient 0.90 -> 0.81; the 40-channel one on 14x14 0.46 -> 0.39 and 0.57 ->
//! 0.44. (The build measured kept rows under 8 values scalar; against it, vectorizing
//! those too put the 7x7 layers' minima at 0.87x forward, 1.02x input gradient and 0.89x
//! weight gradient, while kernels neither build changed moved by up to 13 %.)

use super::simd::{Level, level};

/// Splits and merges of rows of `w` values, with the SIMD level chosen once (asked for per
/// row, the CPU feature checks took 5 % of the stride-2 forward's `perf` samples).
#[derive(Clone, Copy, Debug)]
pub(super) struct Phases {
    w: usize,
    level: Level,
}

/// Rows `start + r * stride` of a buffer.
#[derive(Clone, Copy, Debug)]
pub(super) struct RowsAt {
    /// Where row 0 starts.
    pub start: usize,
    /// Values from one row to the next.
    pub stride: usize,
}

impl RowsAt {
    /// Where row `r` starts.
    #[inline(always)]
    fn row(self, r: usize) -> usize {
        self.start + r * self.stride
    }

    /// Whether `rows` rows of `len` values fit in `buf_len` values.
    #[inline(always)]
    fn fits(self, rows: usize, len: usize, buf_len: usize) -> bool {
        rows == 0 || self.row(rows - 1) + len <= buf_len
    }
}

impl Phases {
    /// For rows of `w` values.
    pub(super) fn new(w: usize) -> Self {
        Phases { w, level: level() }
    }

    /// Splits `rows` rows of `src` (at `from`) into their even values (`dst` from
    /// `to(r).0` for row `r`) and odd values (from `to(r).1`). `src` may go on past the
    /// rows: the vector loads read ahead where it does.
    #[inline]
    pub(super) fn split(
        self,
        src: &[f32],
        (from, rows): (RowsAt, usize),
        dst: &mut [f32],
        to: impl Fn(usize) -> (usize, usize),
    ) {
        let w = self.w;
        assert!(from.fits(rows, w, src.len()));
        // Each row's halves are checked to fit in `dst` as the row comes.
        let len = dst.len();
        let to = |r: usize| {
            let (e, o) = to(r);
            assert!(e + w.div_ceil(2) <= len && o + w / 2 <= len);
            (e, o)
        };
        match self.level {
            // SAFETY: the CPU has AVX-512F (`level`); the rows fit (asserted above).
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => unsafe { x86::split_rows_avx512(src, (from, rows, w), dst, to) },
            // SAFETY: the CPU has AVX2 (`level`); the rows fit (asserted above).
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => unsafe { x86::split_rows_avx2(src, (from, rows, w), dst, to) },
            _ => (0..rows).for_each(|r| split_tail(src, from.row(r), (0, w), dst, to(r))),
        }
    }

    /// Merges `rows` rows into `dst` (at `to`): value `2 i` of a row from its row of `even`
    /// (at `from.0`), value `2 i + 1` from `odd` (at `from.1`). The sources may go on past
    /// the rows: the vector loads read ahead where they do.
    pub(super) fn merge(
        self,
        (even, odd): (&[f32], &[f32]),
        (from, rows): ((RowsAt, RowsAt), usize),
        dst: &mut [f32],
        to: RowsAt,
    ) {
        let w = self.w;
        let fit =
            from.0.fits(rows, w.div_ceil(2), even.len()) && from.1.fits(rows, w / 2, odd.len());
        assert!(fit && to.fits(rows, w, dst.len()));
        match self.level {
            // SAFETY: the CPU has AVX-512F (`level`); the rows fit (asserted above).
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => unsafe {
                x86::merge_rows_avx512((even, odd), from, (rows, w), dst, to)
            },
            // SAFETY: the CPU has AVX2 (`level`); the rows fit (asserted above).
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => unsafe { x86::merge_rows_avx2((even, odd), from, (rows, w), dst, to) },
            _ => (0..rows).for_each(|r| {
                merge_tail((even, odd), row_at(from, r), 0, &mut dst[to.row(r)..][..w])
            }),
        }
    }
}

/// Where row `r` of the two halves starts.
#[inline(always)]
fn row_at((e, o): (RowsAt, RowsAt), r: usize) -> (usize, usize) {
    (e.row(r), o.row(r))
}

/// Values `[done, w)` of the row at `s` split one at a time (`done` even).
#[inline(always)]
fn split_tail(
    src: &[f32],
    s: usize,
    (done, w): (usize, usize),
    dst: &mut [f32],
    (e, o): (usize, usize),
) {
    for (i, v) in src[s..s + w].iter().enumerate().skip(done) {
        dst[if i % 2 == 0 { e } else { o } + i / 2] = *v;
    }
}

/// Values `[done, row.len())` of a row merged one at a time (`done` even).
#[inline(always)]
fn merge_tail((even, odd): (&[f32], &[f32]), (e, o): (usize, usize), done: usize, row: &mut [f32]) {
    let (row, at) = (&mut row[done..], done / 2);
    row.iter_mut()
        .step_by(2)
        .zip(&even[e + at..])
        .for_each(|(d, v)| *d = *v);
    row.iter_mut()
        .skip(1)
        .step_by(2)
        .zip(&odd[o + at..])
        .for_each(|(d, v)| *d = *v);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{RowsAt, merge_tail, row_at, split_tail};

    /// `$split`: [`super::Phases::split`] and `$merge`: [`super::Phases::merge`] with
    /// `$feature`, each row through `$split_row` / `$merge_row` as far as they go, the rest
    /// one value at a time.
    macro_rules! row_loops {
        ($feature:literal, $split:ident, $split_row:ident, $merge:ident, $merge_row:ident) => {
            /// # Safety
            /// The CPU must have the feature; the rows must fit in `src`, and `to` must give
            /// only rows whose halves fit in `dst`.
            #[target_feature(enable = $feature)]
            pub(super) unsafe fn $split(
                src: &[f32],
                (from, rows, w): (RowsAt, usize, usize),
                dst: &mut [f32],
                to: impl Fn(usize) -> (usize, usize),
            ) {
                for r in 0..rows {
                    let (s, at) = (from.row(r), to(r));
                    // SAFETY: the caller's contract.
                    let done = unsafe { $split_row(&src[s..], w, dst, at) };
                    split_tail(src, s, (done, w), dst, at);
                }
            }

            /// # Safety
            /// The CPU must have the feature; the rows must fit in the sources and `dst`.
            #[target_feature(enable = $feature)]
            pub(super) unsafe fn $merge(
                (even, odd): (&[f32], &[f32]),
                from: (RowsAt, RowsAt),
                (rows, w): (usize, usize),
                dst: &mut [f32],
                to: RowsAt,
            ) {
                for r in 0..rows {
                    let ((e, o), row) = (row_at(from, r), &mut dst[to.row(r)..][..w]);
                    // SAFETY: the caller's contract.
                    let done = unsafe { $merge_row((&even[e..], &odd[o..]), row) };
                    merge_tail((even, odd), (e, o), done, row);
                }
            }
        };
    }

    row_loops!(
        "avx512f",
        split_rows_avx512,
        split_avx512,
        merge_rows_avx512,
        merge_avx512
    );
    row_loops!(
        "avx2",
        split_rows_avx2,
        split_avx2,
        merge_rows_avx2,
        merge_avx2
    );

    /// The low `n` lanes (`n <= 16`).
    #[inline(always)]
    fn low_lanes(n: usize) -> __mmask16 {
        ((1u32 << n) - 1) as __mmask16
    }

    /// One row of `w` values from `src` split into `dst` at `(e, o)`, in pieces of 32 while
    /// 32 values can be loaded; returns the values done (a multiple of 32, or `w`).
    ///
    /// # Safety
    /// AVX-512F must be available; `dst` must hold `w.div_ceil(2)` values from `e` and
    /// `w / 2` from `o`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn split_avx512(
        src: &[f32],
        w: usize,
        dst: &mut [f32],
        (e, o): (usize, usize),
    ) -> usize {
        let ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
        // Rows of up to 16 values (RegNet's 7x7 and 14x14 maps) with one load, not two.
        if w <= 16 && 16 <= src.len() {
            // SAFETY: `16 <= src.len()`; the stores write the row's halves, inside `dst`
            // (the caller's contract).
            unsafe {
                let v = _mm512_loadu_ps(s);
                let (ve, vo) = (_mm512_permutexvar_ps(ie, v), _mm512_permutexvar_ps(io, v));
                _mm512_mask_storeu_ps(d.add(e), low_lanes(w.div_ceil(2)), ve);
                _mm512_mask_storeu_ps(d.add(o), low_lanes(w / 2), vo);
            }
            return w;
        }
        let mut i = 0;
        while i < w && i + 32 <= src.len() {
            let k = (w - i).min(32);
            // SAFETY: `i + 32 <= src.len()`; the stores end at `e + w.div_ceil(2)` and
            // `o + w / 2` at most (`i` is even), inside `dst` (the caller's contract).
            unsafe {
                let (lo, hi) = (_mm512_loadu_ps(s.add(i)), _mm512_loadu_ps(s.add(i + 16)));
                let (ve, vo) = (
                    _mm512_permutex2var_ps(lo, ie, hi),
                    _mm512_permutex2var_ps(lo, io, hi),
                );
                _mm512_mask_storeu_ps(d.add(e + i / 2), low_lanes(k.div_ceil(2)), ve);
                _mm512_mask_storeu_ps(d.add(o + i / 2), low_lanes(k / 2), vo);
            }
            i += 32;
        }
        i.min(w)
    }

    /// [`split_avx512`] in whole pieces of 16 values (the rest is left to the caller).
    ///
    /// # Safety
    /// AVX2 must be available; `dst` as for [`split_avx512`]; `src` holds `w` values.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn split_avx2(src: &[f32], w: usize, dst: &mut [f32], (e, o): (usize, usize)) -> usize {
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
        let mut i = 0;
        while i + 16 <= w {
            // SAFETY: `i + 16 <= w`, inside `src` and, halved, inside both halves' rows.
            unsafe {
                let (a, b) = (_mm256_loadu_ps(s.add(i)), _mm256_loadu_ps(s.add(i + 8)));
                // a0 a2 b0 b2 | a4 a6 b4 b6, then the middle 64-bit lanes swapped.
                let ve = _mm256_castps_pd(_mm256_shuffle_ps::<0b10_00_10_00>(a, b));
                let vo = _mm256_castps_pd(_mm256_shuffle_ps::<0b11_01_11_01>(a, b));
                let ve = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(ve));
                let vo = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(vo));
                _mm256_storeu_ps(d.add(e + i / 2), ve);
                _mm256_storeu_ps(d.add(o + i / 2), vo);
            }
            i += 16;
        }
        i
    }

    /// One row merged from `even` and `odd` into `row`, in pieces of 32 while 16 values
    /// can be loaded from each; returns the values done (a multiple of 32, or the row).
    ///
    /// # Safety
    /// AVX-512F must be available.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn merge_avx512((even, odd): (&[f32], &[f32]), row: &mut [f32]) -> usize {
        let il = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let ih = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        let (w, d) = (row.len(), row.as_mut_ptr());
        let mut i = 0;
        while i < w && i / 2 + 16 <= even.len().min(odd.len()) {
            let k = (w - i).min(32);
            // SAFETY: 16 values from `i / 2` of each source (checked above); the stores
            // write `k` values from `row[i]`, inside the row.
            unsafe {
                let ve = _mm512_loadu_ps(even.as_ptr().add(i / 2));
                let vo = _mm512_loadu_ps(odd.as_ptr().add(i / 2));
                let lo = _mm512_permutex2var_ps(ve, il, vo);
                _mm512_mask_storeu_ps(d.add(i), low_lanes(k.min(16)), lo);
                if k > 16 {
                    let hi = _mm512_permutex2var_ps(ve, ih, vo);
                    _mm512_mask_storeu_ps(d.add(i + 16), low_lanes(k - 16), hi);
                }
            }
            i += 32;
        }
        i.min(w)
    }

    /// [`merge_avx512`] in whole pieces of 16 values (the rest is left to the caller).
    ///
    /// # Safety
    /// AVX2 must be available; `even` and `odd` must hold the row's halves.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn merge_avx2((even, odd): (&[f32], &[f32]), row: &mut [f32]) -> usize {
        let (w, d) = (row.len(), row.as_mut_ptr());
        let mut i = 0;
        while i + 16 <= w {
            // SAFETY: `i + 16 <= w`: inside the row, and 8 values from `i / 2` of each half.
            unsafe {
                let ve = _mm256_loadu_ps(even.as_ptr().add(i / 2));
                let vo = _mm256_loadu_ps(odd.as_ptr().add(i / 2));
                // e0 o0 e1 o1 | e4 o4 e5 o5 and e2 o2 e3 o3 | e6 o6 e7 o7, halves joined.
                let (lo, hi) = (_mm256_unpacklo_ps(ve, vo), _mm256_unpackhi_ps(ve, vo));
                _mm256_storeu_ps(d.add(i), _mm256_permute2f128_ps::<0x20>(lo, hi));
                _mm256_storeu_ps(d.add(i + 8), _mm256_permute2f128_ps::<0x31>(lo, hi));
            }
            i += 16;
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::for_each_level;

    /// The two halves' rows in one buffer, the odd ones first or last (so that either
    /// half's last row can end the buffer), and the buffer's length.
    fn layout(
        rows: usize,
        (ne, no): (usize, usize),
        odd_first: bool,
        extra: usize,
    ) -> ((RowsAt, RowsAt), usize) {
        let first = |len, stride| (RowsAt { start: 1, stride }, 1 + (rows - 1) * stride + len);
        if odd_first {
            let (o, end) = first(no, no + 2);
            let e = RowsAt {
                start: end + 4,
                stride: ne + 5,
            };
            ((e, o), e.row(rows - 1) + ne + extra)
        } else {
            let (e, end) = first(ne, ne + 5);
            let o = RowsAt {
                start: end + 4,
                stride: no + 2,
            };
            ((e, o), o.row(rows - 1) + no + extra)
        }
    }

    /// Rows of every length up to 70, one and three of them at strides of their own, with
    /// nothing readable past the last row and with more: the vector pieces, the masked and
    /// scalar tails and the fallback near a slice's end; nothing outside the rows written.
    #[test]
    fn split_and_merge_match_their_definitions() {
        for_each_level(|level| {
            for w in 0..=70usize {
                for (rows, extra, odd_first) in [1, 3]
                    .into_iter()
                    .flat_map(|r| [0, 1, 31, 40].map(|x| (r, x)))
                    .flat_map(|(r, x)| [false, true].map(|f| (r, x, f)))
                {
                    let at = format!("{level:?} w {w} rows {rows} +{extra} odd first {odd_first}");
                    let (ne, no) = (w.div_ceil(2), w / 2);
                    let from = RowsAt {
                        start: 2,
                        stride: w + 3,
                    };
                    let src: Vec<f32> = (0..from.row(rows - 1) + w + extra)
                        .map(|i| i as f32 + 0.5)
                        .collect();
                    let (to, len) = layout(rows, (ne, no), odd_first, extra);
                    let mut halves = vec![-1.0; len];
                    Phases::new(w).split(&src, (from, rows), &mut halves, |r| {
                        (to.0.row(r), to.1.row(r))
                    });
                    let mut want = vec![-1.0; len];
                    for r in 0..rows {
                        for i in 0..w {
                            let t = if i % 2 == 0 { to.0 } else { to.1 };
                            want[t.row(r) + i / 2] = src[from.row(r) + i];
                        }
                    }
                    assert_eq!(halves, want, "{at}");

                    let dst_at = RowsAt {
                        start: 1,
                        stride: w + 2,
                    };
                    let mut dst = vec![-1.0; dst_at.row(rows - 1) + w + 3];
                    Phases::new(w).merge((&halves, &halves), (to, rows), &mut dst, dst_at);
                    let mut want = vec![-1.0; dst.len()];
                    for r in 0..rows {
                        let row = &src[from.row(r)..from.row(r) + w];
                        want[dst_at.row(r)..dst_at.row(r) + w].copy_from_slice(row);
                    }
                    assert_eq!(dst, want, "{at}");
                }
            }
        });
    }
}
