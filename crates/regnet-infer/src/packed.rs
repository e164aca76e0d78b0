//! The 1x1 convolution's own GEMM over weights packed once per SIMD level: panels of
//! output channels (`[c_in][panel]`, [`panel`]), register tiles of up to 6 pixels x 64
//! channels at AVX-512 and 6 pixels x 16 channels at AVX2 (24 and 12 accumulators; a tile's
//! channels are one panel), bias in the initial accumulators and the epilogue applied
//! before the single store; the tiles of a strip of channels prefetch the next strip's
//! weights (see `prefetch.rs`). The `gemm` crate re-packs the weights on
//! every call and writes the tile back before the epilogue pass; this does neither. Threads
//! may share the rows (each streams every panel) or the panels (each streams every row): see
//! `conv1x1.rs`.

use std::ops::Range;

use crate::buffer::{self, Buf};
use crate::cache;
use crate::direct::act_vec;
use crate::epilogue::{Act, Epilogue};
use crate::prefetch::{Ahead, Lines};
use crate::simd::SimdLevel;
use crate::vector::Vf;

/// Output channels per panel of a weight packed for `level`: the channels of one register
/// tile, so that a tile reads one contiguous stream of weights. At AVX2 (16 channels) a
/// strip of 384 rows (24 KiB) then stays in a 48 KiB L1; in panels of 64 its rows were
/// 256 bytes apart and fell in a quarter of the L1's sets, so it came from L2 for every
/// tile: on an Intel Xeon at AVX2, RegNetX-400MF's 1x1 384->384 at batch 8 ran 11.9-12.1 ms
/// per forward against 12.8-12.9 (panels of 32: 12.6-12.7). At AVX-512 (64 channels: 4
/// vectors x 6 rows, 24 accumulators) the same 1x1 ran 6.7 ms against 7.0-7.1 in panels of
/// 16 read side by side, and 8.3-8.7 against 9.1-9.4 for panels of 32 in tiles of 8 rows x 2
/// vectors (16 accumulators, whose broadcasts and weight loads then nearly matched the FMAs
/// one for one). Either width gives the same results at every level (see [`run`]).
pub(crate) fn panel(level: SimdLevel) -> usize {
    // (The kernels are compiled for each of `PANELS`: a width known only at run time cost
    // RegNetX-400MF's 1x1 convs 4-15 % at AVX2 and its stem a third, in divisions and
    // multiplications per tile and step.)
    match level {
        SimdLevel::Avx512 => 64,
        _ => 16,
    }
}

/// The panel widths weights are packed in: [`panel`]'s, one for each level.
pub(crate) const PANELS: [usize; 2] = [16, 64];

/// The unit in which threads share a conv's output channels ([`PackedGemm::run_cols`]):
/// so that 320 channels split 160 + 160, not 128 + 192.
pub(crate) const SPLIT: usize = 32;

/// Fewest rows per chunk, however wide the rows (64 rows of 2048 channels are 512 KiB).
const MIN_CHUNK: usize = 64;

/// Rows per chunk for `c_in` input channels: as many as fill half the L2 (the rest holds the
/// weights and the output tiles). Each strip's weights then stay in L1 (or, at AVX-512, L2)
/// while all the rows of a chunk pass them; chunks of 64 rows (the panels streaming past each
/// chunk in turn) measured 4-5 % slower on RegNetX-400MF's 384- and 160-channel 1x1 convs
/// at AVX2 and 0-7 % at AVX-512 (1 MiB L2; about 1 % of the whole network there).
fn chunk_rows(c_in: usize) -> usize {
    (cache::l2_bytes() / 2 / (4 * c_in.max(1))).max(MIN_CHUNK)
}

/// The vectors (of `NV`, 2 or 1) of the strip [`PackedGemm::run_cols`] runs next, with
/// `left` channels to go: the widest that fits.
fn strip_vectors<const NV: usize>(left: usize, lanes: usize) -> usize {
    if left >= NV * lanes {
        NV
    } else if NV > 2 && left >= 2 * lanes {
        2
    } else {
        1
    }
}

/// A weight `[rows][c_out]` (`c_out` a multiple of 16) packed in panels of `panel` output
/// channels, `[c_out / panel][rows][panel]`, the last panel padded with zero columns.
#[derive(Clone, Debug)]
pub(crate) struct Packed {
    data: Buf,
    rows: usize,
    /// Channels per panel, one of [`PANELS`].
    panel: usize,
}

impl Packed {
    /// Packs `w` (`[rows][c_out]`) in panels of `panel` channels (one of [`PANELS`]).
    pub fn new(w: &[f32], rows: usize, c_out: usize, panel: usize) -> Self {
        assert!(PANELS.contains(&panel));
        assert!(c_out.is_multiple_of(16) && w.len() == rows * c_out);
        let mut data = buffer::zeroed(c_out.next_multiple_of(panel) * rows);
        for c0 in (0..c_out).step_by(panel) {
            let width = panel.min(c_out - c0);
            for i in 0..rows {
                let at = c0 * rows + i * panel;
                data[at..][..width].copy_from_slice(&w[i * c_out + c0..][..width]);
            }
        }
        Packed { data, rows, panel }
    }

    /// Rows (input channels, or window values).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Channels per panel.
    pub fn panel(&self) -> usize {
        self.panel
    }

    /// Where channel `ch`'s weight for row 0 is; those for the next rows follow
    /// [`Packed::panel`] apart.
    #[inline(always)]
    pub fn offset(&self, ch: usize) -> usize {
        ch / self.panel * self.panel * self.rows + ch % self.panel
    }

    /// The packed values.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Output channels the panels hold (a multiple of the panel width).
    pub fn width(&self) -> usize {
        self.data.len().checked_div(self.rows).unwrap_or(0)
    }
}

/// An output `[m][c_out]` that several threads write at once, each its own channels (a
/// `&mut` slice per thread cannot express interleaved columns).
#[derive(Clone, Copy)]
pub(crate) struct SharedOut {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: only a pointer and a length; `PackedGemm::run_cols`'s callers keep the channel
// ranges of concurrent writers disjoint.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// Wraps `out`, which must outlive every use of the result.
    pub fn new(out: &mut [f32]) -> Self {
        SharedOut {
            ptr: out.as_mut_ptr(),
            len: out.len(),
        }
    }
}

/// `dst = epilogue(src x weight + bias)` for `src` `[m][c_in]` and `dst` `[m][c_out]`.
pub(crate) struct PackedGemm<'a> {
    /// Packed weight.
    pub packed: &'a Packed,
    /// Bias `[c_out]`.
    pub bias: &'a [f32],
    /// Input channels.
    pub c_in: usize,
    /// Fused tail.
    pub ep: Epilogue,
}

impl PackedGemm<'_> {
    /// Runs on all rows, output channels `cols` only (whole [`SPLIT`]s, or up to `c_out`):
    /// chunks of rows that fill half the L2 ([`chunk_rows`]), each through strips of `NV`
    /// vectors of channels (then 2, then 1, at the end) whose weights stay in cache while
    /// the chunk's rows, in L2, pass them up to `MAXR` at a time.
    ///
    /// # Safety
    /// `dst` must be valid for writes, and no other thread may access channels `cols` of
    /// its rows during the call.
    #[inline(always)]
    pub unsafe fn run_cols<V: Vf, const NV: usize, const MAXR: usize, const P: usize>(
        &self,
        src: &[f32],
        dst: SharedOut,
        res: Option<&[f32]>,
        cols: Range<usize>,
    ) {
        let c_out = self.bias.len();
        let m = dst.len / c_out;
        assert!(self.packed.panel == P);
        assert!(src.len() == m * self.c_in && self.packed.rows == self.c_in);
        assert!(self.c_in == 0 || self.packed.width() >= c_out);
        assert!(res.is_none_or(|r| r.len() == dst.len) && 16 % V::LANES == 0);
        assert!(cols.start.is_multiple_of(SPLIT) && cols.end <= c_out);
        assert!(cols.end.is_multiple_of(SPLIT) || cols.end == c_out);
        // Chunks of equal size, so that no chunk ends in a sliver of rows.
        let chunks = m.div_ceil(chunk_rows(self.c_in)).max(1);
        for i in 0..chunks {
            let rows = [m * i / chunks, m * (i + 1) / chunks];
            let tiles = (rows[1] - rows[0]).div_ceil(MAXR);
            let mut c = cols.start;
            while c < cols.end {
                // Strips no wider than a panel stay inside one (see `tile`).
                let left = if NV * V::LANES <= P {
                    (P - c % P).min(cols.end - c)
                } else {
                    cols.end - c
                };
                let nv = strip_vectors::<NV>(left, V::LANES);
                let next = c + nv * V::LANES;
                // The next strip's weights: the panels that hold them.
                let end = (next + NV * V::LANES).min(cols.end);
                let region = if next < end {
                    &self.packed.data[next / P * P * self.c_in..end.div_ceil(P) * P * self.c_in]
                } else {
                    &[]
                };
                let mut pf = Ahead::new(region, tiles, self.c_in);
                match nv {
                    1 => self.rows::<V, 1, MAXR, P>(src, rows, c, dst, res, &mut pf),
                    2 => self.rows::<V, 2, MAXR, P>(src, rows, c, dst, res, &mut pf),
                    _ => self.rows::<V, NV, MAXR, P>(src, rows, c, dst, res, &mut pf),
                }
                c = next;
            }
        }
    }

    /// Rows `r0..r1` of the strip of `NV` vectors from channel `ch`, in tiles of equal
    /// height (up to `MAXR`, at most 8): with 8, 49 rows run as 7 x 7, not 6 x 8 and a 1-row
    /// tile, whose accumulator chains wait on the FMA latency.
    #[inline(always)]
    fn rows<V: Vf, const NV: usize, const MAXR: usize, const P: usize>(
        &self,
        src: &[f32],
        [r0, r1]: [usize; 2],
        strip: usize,
        dst: SharedOut,
        res: Option<&[f32]>,
        pf: &mut Ahead,
    ) {
        const { assert!(MAXR >= 1 && MAXR <= 8) };
        let m = r1 - r0;
        let tiles = m.div_ceil(MAXR);
        // Heights of `base` and `base + 1` rows, from two divisions, not two per tile (a
        // tile of 32 input channels is about 200 cycles of FMAs).
        let (base, extra) = (
            m.checked_div(tiles).unwrap_or(0),
            m.checked_rem(tiles).unwrap_or(0),
        );
        let mut r = r0;
        for t in 0..tiles {
            let h = base + usize::from(t < extra);
            match h {
                8 => self.tile::<V, 8, NV, P>(src, r, strip, dst, res, pf.take()),
                7 => self.tile::<V, 7, NV, P>(src, r, strip, dst, res, pf.take()),
                6 => self.tile::<V, 6, NV, P>(src, r, strip, dst, res, pf.take()),
                5 => self.tile::<V, 5, NV, P>(src, r, strip, dst, res, pf.take()),
                4 => self.tile::<V, 4, NV, P>(src, r, strip, dst, res, pf.take()),
                3 => self.tile::<V, 3, NV, P>(src, r, strip, dst, res, pf.take()),
                2 => self.tile::<V, 2, NV, P>(src, r, strip, dst, res, pf.take()),
                1 => self.tile::<V, 1, NV, P>(src, r, strip, dst, res, pf.take()),
                _ => unreachable!("tiles of 1 to {MAXR} rows"),
            }
            r += h;
        }
    }

    /// Rows `r0..r0 + NB` times the `NV` vectors of channels from `ch`, prefetching the
    /// lines `pf` of the next strip.
    #[inline(always)]
    fn tile<V: Vf, const NB: usize, const NV: usize, const P: usize>(
        &self,
        src: &[f32],
        r0: usize,
        ch: usize,
        dst: SharedOut,
        res: Option<&[f32]>,
        pf: Lines,
    ) {
        let (c_in, c_out) = (self.c_in, self.bias.len());
        let width = NV * V::LANES;
        assert!(ch.is_multiple_of(V::LANES) && ch + width <= c_out);
        assert!((r0 + NB) * c_in <= src.len() && self.packed.rows == c_in);
        assert!(c_in == 0 || self.packed.width() >= c_out);
        assert!(self.packed.panel == P && (width > P || ch % P + width <= P));
        // SAFETY: ch + width <= c_out = bias.len().
        let mut acc: [[V; NB]; NV] = std::array::from_fn(|v| {
            [unsafe { V::load(self.bias.as_ptr().add(ch + v * V::LANES)) }; NB]
        });
        let a: [*const f32; NB] = std::array::from_fn(|r| src[(r0 + r) * c_in..].as_ptr());
        let b = self.strip_weights::<V, NV, P>(ch);
        // The steps that prefetch, then the rest without the check. One loop with the check
        // inside compiled at AVX2 to 12 FMAs and 19 other instructions per step, two of them
        // reloads from the stack (now 16, none): on RegNetX-400MF's 384- and 160-channel
        // 1x1s one thread ran 42-46 GMAC/s, now 47-56; two threads (the network's case) ran
        // about 105 GMAC/s both ways, and AVX-512 did not move (92-101 on one thread).
        let fetching = pf.steps.min(c_in);
        let mut at = 0;
        for k in 0..fetching {
            pf.fetch(k);
            // SAFETY: each b[v] starts c_in rows of P values in the weight, of which it
            // reads LANES (within a panel: LANES divides ch and 16, and 16 divides P) at
            // row k (`at`); each a[r] has c_in values.
            unsafe { step(&mut acc, &a, &b, at, k) };
            at += P;
        }
        let mut k = fetching;
        // AVX2 (12 accumulators) two steps at a time: the second's addresses are the
        // first's plus constants, so half the address arithmetic, which had taken issue
        // slots from the FMAs (one thread, 1x1s over 32-384 channels 2-7 % faster, the
        // 384-channel one at 61 GMAC/s; RegNetX-400MF's 160->160 about 2 % faster, its
        // 384->384 1 %). Four steps, and AVX-512 (24 accumulators) with two, spilled
        // accumulators: 90 -> 42 GMAC/s.
        while V::LANES < 16 && k + 2 <= c_in {
            // SAFETY: as above, for rows k and k + 1.
            unsafe {
                step(&mut acc, &a, &b, at, k);
                step(&mut acc, &a, &b, at + P, k + 1);
            }
            k += 2;
            at += 2 * P;
        }
        while k < c_in {
            // SAFETY: as above.
            unsafe { step(&mut acc, &a, &b, at, k) };
            k += 1;
            at += P;
        }
        self.finish(&acc, r0, ch, dst, res);
    }

    /// Where each of the `NV` vectors of the strip from channel `ch` has its weights, in its
    /// panel: one pointer where the strip is inside a panel (where it is no wider than one:
    /// `tile` asserts it), with which RegNetX-400MF's 1x1 384->384 at AVX-512 ran 4 % faster
    /// than with four. (No read through them when c_in is 0, where the weight is empty.)
    #[inline(always)]
    fn strip_weights<V: Vf, const NV: usize, const P: usize>(&self, ch: usize) -> [*const f32; NV] {
        let base = self.packed.data.as_ptr();
        let first = base.wrapping_add(self.packed.offset(ch));
        std::array::from_fn(|v| {
            if NV * V::LANES <= P {
                first.wrapping_add(v * V::LANES)
            } else {
                base.wrapping_add(self.packed.offset(ch + v * V::LANES))
            }
        })
    }

    /// The epilogue of a tile (rows `r0..r0 + NB`, the `NV` vectors from channel `ch`) and
    /// its one store. RegNet's three epilogues (a conv's with ReLU, the last of a branch with
    /// the residual and ReLU, the projection's) run without a test per vector; the generic
    /// one kept the accumulators in memory.
    #[inline(always)]
    fn finish<V: Vf, const NB: usize, const NV: usize>(
        &self,
        acc: &[[V; NB]; NV],
        r0: usize,
        ch: usize,
        dst: SharedOut,
        res: Option<&[f32]>,
    ) {
        let c_out = self.bias.len();
        let last = (r0 + NB - 1) * c_out + ch + NV * V::LANES;
        assert!(last <= dst.len && res.is_none_or(|r| last <= r.len()));
        let at = |v: usize, r: usize| (r0 + r) * c_out + ch + v * V::LANES;
        // SAFETY (every store and load below): in bounds (asserted above); channels
        // ch..ch + NV * LANES of these rows are this caller's alone (`run_cols`'s contract).
        let put = |v: usize, r: usize, x: V| unsafe { x.store(dst.ptr.add(at(v, r))) };
        match (self.ep.act, res, self.ep.act_after) {
            (Some(Act::Relu), None, None) => each(acc, |v, r, a| put(v, r, a.relu())),
            (None, Some(rs), Some(Act::Relu)) => each(acc, |v, r, a| {
                let x = a.add(unsafe { V::load(rs.as_ptr().add(at(v, r))) });
                put(v, r, x.relu())
            }),
            (None, None, None) => each(acc, put),
            _ => each(acc, |v, r, a| {
                let mut x = act_vec(self.ep.act, a);
                if let Some(rs) = res {
                    x = x.add(unsafe { V::load(rs.as_ptr().add(at(v, r))) });
                }
                put(v, r, act_vec(self.ep.act_after, x))
            }),
        }
    }
}

/// `f(v, r, acc[v][r])` for every accumulator.
#[inline(always)]
fn each<V: Vf, const NB: usize, const NV: usize>(
    acc: &[[V; NB]; NV],
    mut f: impl FnMut(usize, usize, V),
) {
    for (v, acc) in acc.iter().enumerate() {
        for (r, a) in acc.iter().enumerate() {
            f(v, r, *a);
        }
    }
}

/// One inner step of a tile: `acc[v][r] += a[r][k] * b[v][at]`, `at` being where row `k`
/// of the panels starts.
///
/// # Safety
/// Every `b[v]` must be readable for a vector at `at` and every `a[r]` at `k`.
#[inline(always)]
unsafe fn step<V: Vf, const NB: usize, const NV: usize>(
    acc: &mut [[V; NB]; NV],
    a: &[*const f32; NB],
    b: &[*const f32; NV],
    at: usize,
    k: usize,
) {
    // SAFETY: the caller's.
    let bv: [V; NV] = std::array::from_fn(|v| unsafe { V::load(b[v].add(at)) });
    for r in 0..NB {
        // SAFETY: the caller's.
        let x = V::splat(unsafe { *a[r].add(k) });
        for v in 0..NV {
            acc[v][r] = x.fma(bv[v], acc[v][r]);
        }
    }
}

/// Whether `level` has a packed kernel ([`run`]).
pub(crate) fn has_kernel(level: SimdLevel) -> bool {
    cfg!(target_arch = "x86_64") && matches!(level, SimdLevel::Avx512 | SimdLevel::Avx2)
}

/// Runs `g` on output channels `cols` with the packed kernel of `level`: AVX-512 tiles of up
/// to 6 rows x 64 channels, AVX2 tiles of up to 6 rows x 16 channels (12 of the 16 vector
/// registers accumulate). Returns false (doing nothing) where `level` has none
/// ([`has_kernel`]). The AVX2 kernel against the `gemm` crate's AVX2 one (a build whose
/// `gemm-common` was patched not to pick AVX-512, `REGNET_SIMD=avx2 regnet time ...
/// --forward-only`, 3 rounds alternating): RegNetY-800MF batch 1 8.0-8.4 vs 8.9-9.4 ms,
/// RegNetX-400MF batch 8 28.9-30.6 vs 29.5-30.6 ms.
///
/// # Safety
/// As [`PackedGemm::run_cols`]; `level` must be supported by the CPU (asserted).
pub(crate) unsafe fn run(
    level: SimdLevel,
    g: &PackedGemm,
    src: &[f32],
    dst: SharedOut,
    res: Option<&[f32]>,
    cols: Range<usize>,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn v4<const P: usize>(
            g: &PackedGemm,
            src: &[f32],
            dst: SharedOut,
            res: Option<&[f32]>,
            cols: Range<usize>,
        ) {
            // SAFETY: passed on from the caller.
            unsafe { g.run_cols::<crate::vector::F32x16, 4, 6, P>(src, dst, res, cols) }
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn v3<const P: usize>(
            g: &PackedGemm,
            src: &[f32],
            dst: SharedOut,
            res: Option<&[f32]>,
            cols: Range<usize>,
        ) {
            // SAFETY: passed on from the caller.
            unsafe { g.run_cols::<crate::vector::F32x8, 2, 6, P>(src, dst, res, cols) }
        }
        if !has_kernel(level) {
            return false;
        }
        assert!(level.supported());
        // SAFETY: the CPU has the level's features (asserted just above); the rest is the
        // caller's. (Either level runs either panel width: tests pack for one level and
        // run at every level.)
        unsafe {
            match (level, g.packed.panel) {
                (SimdLevel::Avx512, 64) => v4::<64>(g, src, dst, res, cols),
                (SimdLevel::Avx512, _) => v4::<16>(g, src, dst, res, cols),
                (_, 64) => v3::<64>(g, src, dst, res, cols),
                _ => v3::<16>(g, src, dst, res, cols),
            }
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (level, g, src, dst, res, cols);
        false
    }
}

#[cfg(test)]
mod tests {
    use crate::conv1x1::Conv1x1;
    use crate::epilogue::{Act, Epilogue};
    use crate::simd::SimdLevel;
    use crate::test_support::{epilogues, val};

    /// `run_cols` runs the widest strips first, then 2 vectors, then 1, and covers every
    /// channel once.
    #[test]
    fn strips_run_widest_first() {
        for lanes in [8, 16] {
            for width in (0..=6 * lanes).step_by(lanes) {
                let (mut left, mut got) = (width, Vec::new());
                while left > 0 {
                    let nv = super::strip_vectors::<4>(left, lanes);
                    got.push(nv);
                    left -= nv * lanes;
                }
                let mut want = Vec::new();
                let mut rest = width;
                for nv in [4, 2, 1] {
                    want.extend(std::iter::repeat_n(nv, rest / (nv * lanes)));
                    rest %= nv * lanes;
                }
                assert_eq!(got, want, "{width} at {lanes}");
                assert_eq!(super::strip_vectors::<2>(3 * lanes, lanes), 2);
                assert_eq!(super::strip_vectors::<2>(lanes, lanes), 1);
            }
        }
    }

    /// `offset` finds every weight where `Packed::new` put it, in panels that do and do not
    /// divide the channels.
    #[test]
    fn offsets_find_packed_weights() {
        let (c_in, c_out) = (5, 80);
        let w: Vec<f32> = (0..c_in * c_out).map(|i| i as f32).collect();
        for panel in super::PANELS {
            let p = super::Packed::new(&w, c_in, c_out, panel);
            assert_eq!(p.width(), c_out.next_multiple_of(panel));
            for i in 0..c_in {
                for o in 0..c_out {
                    let at = p.offset(o) + i * panel;
                    assert_eq!(p.data()[at], w[i * c_out + o], "{o} {i} in {panel}");
                }
            }
        }
    }

    /// The packed kernels (AVX-512, AVX2) and gemm (the portable level) against a plain
    /// sum, at every level, on 3 threads: row counts around the tile heights and over several
    /// chunks ([`super::chunk_rows`]), widths of 1 to 11 panels, threads sharing rows (many
    /// rows) and panels (fewer rows than channels), every epilogue.
    #[test]
    fn one_by_one_matches_a_plain_sum_at_every_level() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .expect("a thread pool");
        pool.install(check_against_plain_sums);
    }

    /// The packed kernel of `level` on its own (not through `Conv1x1`'s dispatch): it runs
    /// exactly where [`super::has_kernel`] says, and then gives `want`.
    fn check_packed_kernel(
        level: SimdLevel,
        (packed, bias, c_in, ep): (&super::Packed, &[f32], usize, Epilogue),
        src: &[f32],
        residual: Option<&[f32]>,
        want: &[f32],
    ) {
        let g = super::PackedGemm {
            packed,
            bias,
            c_in,
            ep,
        };
        let mut got = vec![f32::NAN; want.len()];
        let out = super::SharedOut::new(&mut got);
        // SAFETY: `got` outlives the call and nothing else touches it meanwhile.
        let ran = unsafe { super::run(level, &g, src, out, residual, 0..bias.len()) };
        assert_eq!(ran, super::has_kernel(level), "{level}");
        if ran {
            for (j, (g, w)) in got.iter().zip(want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                    "{level} [{j}]: {g} vs {w}"
                );
            }
        }
    }

    fn check_against_plain_sums() {
        // With a residual block's last conv's (its own arm in `tile`).
        let residual_relu = Epilogue {
            act: None,
            residual: true,
            act_after: Some(Act::Relu),
        };
        let eps: Vec<Epilogue> = epilogues().into_iter().chain([residual_relu]).collect();
        let mut cases = 0;
        for (m, c_in, c_out) in [
            (1, 3, 16),
            (7, 16, 48),
            (13, 37, 80),
            (9, 1, 32),
            (300, 24, 48),
            (135, 40, 16),
            (21, 8, 24),
            (49, 64, 176),
            (13, 160, 144),
            (1100, 16, 32),
            // Classifiers of 1000 and 100 classes at batches 1, 8 and 9: the padded packed
            // weight at few rows without a residual, `gemm` otherwise.
            (1, 72, 1000),
            (8, 40, 100),
            (9, 19, 1000),
            (65, 24, 100),
            // Two and a bit chunks of rows, however large this machine's L2.
            (2 * super::chunk_rows(1100) + 5, 1100, 32),
        ] {
            for &ep in &eps {
                let w: Vec<f32> = (0..c_in * c_out).map(|i| val(i, 1)).collect();
                let bias: Vec<f32> = (0..c_out).map(|i| val(i, 2)).collect();
                let src: Vec<f32> = (0..m * c_in).map(|i| val(i, 3)).collect();
                let res: Vec<f32> = (0..m * c_out).map(|i| val(i, 4)).collect();
                let mut conv = Conv1x1::new(&w, bias.clone(), c_in, 1, ep);
                assert_eq!(conv.packed.is_some(), c_out % 16 == 0);
                assert_eq!(conv.padded.is_some(), c_out % 16 != 0 && c_out >= 64);
                // Each level's panels, run at every level.
                let panel = [16, 64][(m + c_in) % 2];
                conv.repack(panel);
                let panels = conv.packed.as_ref().or(conv.padded.as_ref().map(|p| &p.0));
                assert!(panels.is_none_or(|p| p.panel() == panel));
                let residual = ep.residual.then_some(&res[..]);
                let want: Vec<f32> = (0..m * c_out)
                    .map(|j| {
                        let (r, o) = (j / c_out, j % c_out);
                        let dot: f32 = (0..c_in).map(|i| src[r * c_in + i] * w[o * c_in + i]).sum();
                        ep.finish(dot + bias[o], if ep.residual { res[j] } else { 0.0 })
                    })
                    .collect();
                for level in SimdLevel::available() {
                    let mut got = vec![f32::NAN; m * c_out];
                    conv.gemm_rows(level, &src, &mut got, residual);
                    for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                            "{m}x{c_in}x{c_out} {ep:?} at {level}, value {j}: {g} vs {w}"
                        );
                    }
                    cases += 1;
                    if conv.padded.is_some() && m <= 64 && residual.is_none() {
                        let mut again = vec![f32::NAN; m * c_out];
                        let ran = conv.few_rows(level, &src, &mut again, None);
                        assert_eq!(ran, super::has_kernel(level), "{level}");
                        assert!(!ran || again == got, "{m}x{c_in}x{c_out} at {level}");
                    }
                    if let Some(p) = &conv.packed {
                        check_packed_kernel(level, (p, &bias, c_in, ep), &src, residual, &want);
                    }
                }
            }
        }
        assert!(cases >= 30);
    }
}
