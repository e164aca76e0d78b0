//! Winograd's F(2x2, 3x3) and F(4x4, 3x3) for stride-1 3x3 convs with small groups
//! (RegNet's grouped convs in every block but the first of a stage). Each M x M block of
//! output pixels (a "tile", M = 2 or 4) is computed from its (M + 2)² input window: the window
//! and the weight are transformed into (M + 2)² positions each (the weight once, when
//! packed), multiplied position by position, and the products transformed back into the M²
//! outputs. Per input and output channel an output pixel costs 4 multiply-adds with F(2x2)
//! and 2.25 with F(4x4) instead of 9; the transforms cost a few operations per value. The
//! transforms are Lavin and Gray's ("Fast Algorithms for Convolutional Neural Networks",
//! 2016): with `d` the window and `g` the kernel, `y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`. F(4x4)'s
//! larger coefficients round more (see the unit test); the compiled networks still agree
//! with the burn model's logits to about 1e-6 (`tests/families.rs`).
//!
//! F(4x4) runs where a task has a register block of its tiles ([`tile_side`]). Its weight is
//! 4x the direct kernel's (36 positions against 9): a 384-channel layer's is 885 KB, which
//! at batch 8 came from memory at every layer (the network's weights outgrow the caches)
//! and, with the hardware's prefetch alone, took back most of what the fewer multiply-adds
//! gained (RegNetX-400MF's 3x3 384 at 7x7, AVX2, per call: 145 us alone, 230 in the
//! network); the products now prefetch the next group's weight.
//!
//! A task runs whole rows of tiles of one image, or on small maps whole images (so its
//! output is a contiguous slice), in blocks of up to [`max_tiles`] tiles; per block and
//! group, the transformed inputs (`[position][tile][input channel]`) and the products
//! (`[position][tile][output channel]`) sit in a per-thread scratch, and the products are a
//! register-blocked GEMM per position: `NB` tiles times `NV` vectors of output channels.

use crate::buffer::{self, Buf};
use crate::direct::{DirectConv, store};
use crate::parallel;
use crate::simd::SimdLevel;
use crate::vector::{F32x4, Vf};

mod transforms;

use transforms::{G2, G4, input_vec, outputs2, outputs4, transform_weight};

/// Most transformed positions per tile: F(4x4, 3x3)'s 6 x 6.
const MAX_POS: usize = 36;

/// Positions per tile of F(`M`x`M`, 3x3): its input window is `M + 2` pixels square.
const fn pos(m: usize) -> usize {
    (m + 2) * (m + 2)
}

/// Most tiles per block of F(`M`x`M`, 3x3): the scratch of 16-channel groups is then 2 x 16
/// KiB (F(2x2)) or 2 x 18 KiB (F(4x4)), next to a group's transformed weight (16 or 36 KiB)
/// in the L1 and L2 (24 tiles of F(2x2) measured no faster).
const fn max_tiles(m: usize) -> usize {
    if m == 2 { 16 } else { 8 }
}

/// Largest group (input or output channels) run here: the scratch grows with it.
const MAX_GROUP: usize = 64;

/// A conv's weight transformed for both tilings, each `[group][position][ci][co]`.
#[derive(Clone, Debug)]
pub(crate) struct Transformed {
    f2: Buf,
    f4: Buf,
}

/// The weight of `cv` (PyTorch `[c_out, c_in / groups, 3, 3]` in `weight`) transformed,
/// when `cv` is a stride-1 3x3 conv whose groups are small enough and whose output groups
/// are whole 4-lane vectors; `None` otherwise.
pub(crate) fn pack(cv: &DirectConv, weight: &[f32]) -> Option<Transformed> {
    let (cin_g, cout_g) = (cv.c_in / cv.groups, cv.c_out / cv.groups);
    let fits = cv.k == 3 && cv.stride == 1 && cv.pad == 1 && !cv.depthwise;
    if !fits || cin_g > MAX_GROUP || cout_g > MAX_GROUP || !cout_g.is_multiple_of(4) {
        return None;
    }
    Some(Transformed {
        f2: transform_weight(cv, weight, &G2),
        f4: transform_weight(cv, weight, &G4),
    })
}

/// Runs `cv` with its transformed weight `u` (from [`pack`]) on `x` (`[n, h, w, c_in]`)
/// into `out` (`[n, h, w, c_out]`); returns false, doing nothing, where `level` has no
/// vector width dividing the output groups.
pub(crate) fn run(
    level: SimdLevel,
    cv: &DirectConv,
    u: &Transformed,
    x: &[f32],
    [h, w]: [usize; 2],
    out: &mut [f32],
    residual: Option<&[f32]>,
) -> bool {
    let threads = rayon::current_num_threads().max(1);
    let n = out.len() / (h * w * cv.c_out);
    let m = tile_side(level, cv.c_out / cv.groups, [n, h, w], threads);
    run_tiled(level, cv, u, x, [h, w, m], out, residual)
}

/// [`run`] with F(`m`x`m`, 3x3).
fn run_tiled(
    level: SimdLevel,
    cv: &DirectConv,
    u: &Transformed,
    x: &[f32],
    [h, w, m]: [usize; 3],
    out: &mut [f32],
    residual: Option<&[f32]>,
) -> bool {
    let (cin_g, cout_g) = (cv.c_in / cv.groups, cv.c_out / cv.groups);
    let Some(span) = span_fn(level, cin_g, cout_g, m) else {
        return false;
    };
    let u = if m == 2 { &u.f2[..] } else { &u.f4[..] };
    assert!(u.len() == cv.groups * pos(m) * cin_g * cout_g);
    let img_len = h * w * cv.c_out;
    let n = out.len() / img_len;
    assert!(out.len() == n * img_len && x.len() >= n * h * w * cv.c_in);
    let (tile_rows, tw) = (h.div_ceil(m), w.div_ceil(m));
    let threads = rayon::current_num_threads().max(1);
    let sp = split(n, [tile_rows, tw], threads, max_tiles(m));
    // Tasks of whole images are spans of the whole batch; tasks of rows, spans of an image.
    let (chunk, span_len) = if sp.imgs > 1 {
        (out.len(), sp.imgs * img_len)
    } else {
        (img_len, sp.rows * m * w * cv.c_out)
    };
    let scratch = || Scratch::new(cin_g, cout_g);
    parallel::for_each_span_init(out, chunk, span_len, scratch, |s, b, i, o| {
        let (b0, row0) = if sp.imgs > 1 {
            (i * sp.imgs, 0)
        } else {
            (b, i * sp.rows)
        };
        let start = b0 * img_len + row0 * m * w * cv.c_out;
        let res = residual.map(|r| &r[start..start + o.len()]);
        let nt = if sp.imgs > 1 {
            (n - b0).min(sp.imgs) * tile_rows * tw
        } else {
            ((row0 + sp.rows).min(tile_rows) - row0) * tw
        };
        let job = Job {
            cv,
            u,
            x,
            hw: [h, w],
            tile_rows,
            b0,
            row0,
        };
        span(&job, nt, o, res, s);
    });
    true
}

/// How a conv's tiles are split into tasks: `rows` tile rows of one image each, or (where
/// `imgs > 1`, `rows` then being a whole image's) `imgs` whole images each.
#[derive(Clone, Copy)]
struct Split {
    rows: usize,
    imgs: usize,
}

/// The split of `n` images of `tile_rows` rows of `tw` tiles: rows of an image, about 4
/// tasks per thread; on small maps whole images, as many as give `block` tiles a task (each
/// transformed weight then serves that many tiles), leaving 2 tasks per thread.
fn split(n: usize, [tile_rows, tw]: [usize; 2], threads: usize, block: usize) -> Split {
    let rows = (n * tile_rows).div_ceil(threads * 4).clamp(1, tile_rows);
    let imgs = if rows < tile_rows {
        1
    } else {
        block.div_ceil(tile_rows * tw).min(n / (2 * threads)).max(1)
    };
    Split { rows, imgs }
}

/// The output tile side for `n` images of `h` x `w` with groups of `cout_g` output
/// channels: 4 (F(4x4, 3x3): 2.25 multiplies per output and input channel against F(2x2)'s
/// 4) where a task has a whole register block of tiles (see [`span_fn`]), else 2 (a task of
/// F(4x4) on a 7x7 map at batch 1 has 2 tiles, and its padded block wasted half the
/// products: slower than F(2x2)).
fn tile_side(level: SimdLevel, cout_g: usize, [n, h, w]: [usize; 3], threads: usize) -> usize {
    let lanes = match level {
        SimdLevel::Avx512 if cout_g.is_multiple_of(16) => 16,
        SimdLevel::Avx512 | SimdLevel::Avx2 if cout_g.is_multiple_of(8) => 8,
        _ => 4,
    };
    let block = if level == SimdLevel::Avx512 || cout_g == lanes {
        8
    } else {
        4
    };
    let tw = w.div_ceil(4);
    let sp = split(n, [h.div_ceil(4), tw], threads, max_tiles(4));
    let tiles = sp.rows * tw * sp.imgs;
    if tiles >= block { 4 } else { 2 }
}

/// A thread's transformed inputs and products (aligned: the products are stored and loaded
/// as whole vectors) and its current block's window table (see [`window_table`]).
struct Scratch {
    v: Buf,
    m: Buf,
    windows: Vec<[*const f32; MAX_POS]>,
}

/// The most a block of either tiling holds per channel of a group.
const SCRATCH_ROWS: usize = {
    let (a, b) = (pos(2) * max_tiles(2), pos(4) * max_tiles(4));
    if a > b { a } else { b }
};

impl Scratch {
    /// Room for a block of tiles of either tiling, groups of `cin_g` input and `cout_g`
    /// output channels (at most [`MAX_GROUP`] each: see [`pack`]).
    fn new(cin_g: usize, cout_g: usize) -> Self {
        Scratch {
            v: buffer::zeroed(SCRATCH_ROWS * cin_g),
            m: buffer::zeroed(SCRATCH_ROWS * cout_g),
            windows: Vec::with_capacity(max_tiles(2)),
        }
    }
}

/// What every block of a task shares.
struct Job<'a> {
    cv: &'a DirectConv,
    /// The weight transformed for the task's tiling.
    u: &'a [f32],
    /// The input, `[n, h, w, c_in]`.
    x: &'a [f32],
    /// The maps' height and width.
    hw: [usize; 2],
    /// Tile rows per image.
    tile_rows: usize,
    /// The task's first image, and its first tile row in that image.
    b0: usize,
    row0: usize,
}

impl Job<'_> {
    /// Where the task's tile `t` lies: its image (from the task's first) and tile row and
    /// column in that image.
    fn place(&self, t: usize, tw: usize) -> [usize; 3] {
        let r = self.row0 + t / tw;
        [r / self.tile_rows, r % self.tile_rows, t % tw]
    }
}

/// A task's kernel: the job, its number of tiles, its output (and residual) rows, scratch.
type SpanFn = fn(&Job, usize, &mut [f32], Option<&[f32]>, &mut Scratch);

/// The kernel of F(`m`x`m`, 3x3) for groups of `cin_g` input and `cout_g` output channels
/// at `level`, if a vector width divides `cout_g` and the direct kernel is not faster.
/// That is the case of F(2x2) at AVX-512 with groups one vector wide (8 or 16 channels in
/// and out, RegNetX-400MF's and RegNetY-800MF's): the direct kernel runs several groups per
/// tile there, and the products here, one FMA per broadcast value as there, measured
/// 0.63-1.17x its speed (one thread, RegNet shapes of 7x7 to 28x28, batches 1 and 8), where
/// AVX2 measured 0.91-1.45x and wider groups (24, 48) 1.12-2.6x at both levels. F(4x4)
/// there measured 1.37x the direct kernel at 14x14 and 1.55x at 28x28 (batch 8).
fn span_fn(level: SimdLevel, cin_g: usize, cout_g: usize, m: usize) -> Option<SpanFn> {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::vector::{F32x8, F32x16};
        macro_rules! span_at {
            ($name:ident, $features:literal, $v:ty, $m:literal, $a:literal, $b:literal,
             $c:literal) => {
                fn $name(j: &Job, nt: usize, o: &mut [f32], r: Option<&[f32]>, s: &mut Scratch) {
                    #[target_feature(enable = $features)]
                    fn imp(j: &Job, nt: usize, o: &mut [f32], r: Option<&[f32]>, s: &mut Scratch) {
                        span_imp::<$v, $m, $a, $b, $c>(j, nt, o, r, s)
                    }
                    // SAFETY: only chosen below for a level the CPU supports (a
                    // CompiledNet only holds such levels).
                    unsafe { imp(j, nt, o, r, s) }
                }
            };
        }
        // Tiles per register block (divisors of both tilings' block sizes): 8 accumulators
        // or more cover the FMA latency; at most 24 of AVX-512's 32 registers and 12 of
        // AVX2's 16 (4 tiles of 2 vectors at AVX2 measured faster than 6 on 7x7 maps,
        // whose 16 tiles then need no padded block).
        span_at!(v4_16_f2, "avx512f,avx512vl,avx2,fma", F32x16, 2, 8, 8, 8);
        span_at!(v4_8_f2, "avx512f,avx512vl,avx2,fma", F32x8, 2, 8, 8, 8);
        span_at!(v3_8_f2, "avx2,fma", F32x8, 2, 8, 4, 4);
        span_at!(v3_4_f2, "avx2,fma", F32x4, 2, 8, 4, 4);
        span_at!(v4_16_f4, "avx512f,avx512vl,avx2,fma", F32x16, 4, 8, 8, 8);
        span_at!(v4_8_f4, "avx512f,avx512vl,avx2,fma", F32x8, 4, 8, 8, 8);
        span_at!(v3_8_f4, "avx2,fma", F32x8, 4, 8, 4, 4);
        span_at!(v3_4_f4, "avx2,fma", F32x4, 4, 8, 4, 4);
        let pick = |f2: SpanFn, f4: SpanFn| Some(if m == 2 { f2 } else { f4 });
        let one_vector = cin_g == cout_g && (cout_g == 16 || cout_g == 8);
        match level {
            SimdLevel::Avx512 if one_vector && m == 2 => return None,
            SimdLevel::Avx512 if cout_g.is_multiple_of(16) => return pick(v4_16_f2, v4_16_f4),
            SimdLevel::Avx512 if cout_g.is_multiple_of(8) => return pick(v4_8_f2, v4_8_f4),
            SimdLevel::Avx2 if cout_g.is_multiple_of(8) => return pick(v3_8_f2, v3_8_f4),
            SimdLevel::Avx512 | SimdLevel::Avx2 if cout_g.is_multiple_of(4) => {
                return pick(v3_4_f2, v3_4_f4);
            }
            SimdLevel::Avx512 | SimdLevel::Avx2 => return None,
            SimdLevel::Portable => {}
        }
    }
    let _ = (level, cin_g);
    fn portable2(j: &Job, nt: usize, o: &mut [f32], r: Option<&[f32]>, s: &mut Scratch) {
        span_imp::<F32x4, 2, 8, 4, 4>(j, nt, o, r, s)
    }
    fn portable4(j: &Job, nt: usize, o: &mut [f32], r: Option<&[f32]>, s: &mut Scratch) {
        span_imp::<F32x4, 4, 8, 4, 4>(j, nt, o, r, s)
    }
    let f: SpanFn = if m == 2 { portable2 } else { portable4 };
    cout_g.is_multiple_of(4).then_some(f)
}

/// A task's `nt` tiles of F(`M`x`M`, 3x3) (whole tile rows from `job.row0`) in blocks of up
/// to [`max_tiles`]: per block and group, transform the inputs, multiply, transform back
/// and store. `NBn`: tiles per register block of `n` vectors.
#[inline(always)]
fn span_imp<V: Vf, const M: usize, const NB1: usize, const NB2: usize, const NB3: usize>(
    job: &Job,
    nt: usize,
    out: &mut [f32],
    res: Option<&[f32]>,
    s: &mut Scratch,
) {
    let cv = job.cv;
    let (cin_g, cout_g) = (cv.c_in / cv.groups, cv.c_out / cv.groups);
    let mt = max_tiles(M);
    assert!(s.v.len() >= pos(M) * mt * cin_g && s.m.len() >= pos(M) * mt * cout_g);
    assert!(res.is_none_or(|r| r.len() == out.len()));
    // Blocks of a multiple of 8 tiles where possible: the products run whole register
    // blocks (padded, see `products`), so 16 + 16 + 1 computes fewer than 11 + 11 + 11.
    let blocks = nt.div_ceil(mt);
    let per = nt.div_ceil(blocks).next_multiple_of(8).min(mt);
    let mut t0 = 0;
    while t0 < nt {
        let bt = per.min(nt - t0);
        window_table::<M>(job, t0, bt, &mut s.windows);
        for g in 0..cv.groups {
            transform_inputs::<V, M>(job, &s.windows, g, bt, &mut s.v);
            let mut c = 0;
            while c < cout_g / V::LANES {
                let nv = (cout_g / V::LANES - c).min(3);
                let at = [g, c * V::LANES, bt];
                match nv {
                    1 => products::<V, M, 1, NB1>(job, at, &s.v, &mut s.m),
                    2 => products::<V, M, 2, NB2>(job, at, &s.v, &mut s.m),
                    _ => products::<V, M, 3, NB3>(job, at, &s.v, &mut s.m),
                }
                c += nv;
            }
            transform_outputs::<V, M>(job, [g, t0, bt], &s.m, out, res);
        }
        t0 += bt;
    }
}

/// Fills `table` with where tile `t0 + t`'s `(M + 2)²` window pixels read (channel 0): an
/// input pixel, or the zeros outside the image. `[tile][position]`, unused positions null.
fn window_table<const M: usize>(
    job: &Job,
    t0: usize,
    bt: usize,
    table: &mut Vec<[*const f32; MAX_POS]>,
) {
    let (cv, [h, w], a) = (job.cv, job.hw, M + 2);
    let tw = w.div_ceil(M);
    assert!(cv.zeros.len() == cv.c_in);
    table.clear();
    table.extend((t0..t0 + bt).map(|t| {
        let [bi, ty, tx] = job.place(t, tw);
        let img = (job.b0 + bi) * h * w;
        let mut win = [std::ptr::null(); MAX_POS];
        for (p, ptr) in win[..a * a].iter_mut().enumerate() {
            let iy = (M * ty + p / a).wrapping_sub(1);
            let ix = (M * tx + p % a).wrapping_sub(1);
            *ptr = if iy < h && ix < w {
                job.x[(img + iy * w + ix) * cv.c_in..].as_ptr()
            } else {
                cv.zeros.as_ptr()
            };
        }
        win
    }));
}

/// `Bᵀ d B` of group `g`'s channels of every window into `v` (`[position][tile][ci]`,
/// [`max_tiles`] tiles per position).
#[inline(always)]
fn transform_inputs<V: Vf, const M: usize>(
    job: &Job,
    windows: &[[*const f32; MAX_POS]],
    g: usize,
    bt: usize,
    v: &mut [f32],
) {
    let cin_g = job.cv.c_in / job.cv.groups;
    let mt = max_tiles(M);
    assert!(windows.len() == bt && bt <= mt && v.len() >= pos(M) * mt * cin_g);
    let stride = mt * cin_g;
    for (t, win) in windows.iter().enumerate() {
        // Each window pointer reads c_in values (an input pixel, or `zeros`), so the
        // group's channels g * cin_g.. are readable; dst's last write is at
        // ((pos - 1) * mt + t) * cin_g + cin_g - 1 < v.len() (asserted).
        let mut src = [std::ptr::null(); MAX_POS];
        for (s, p) in src.iter_mut().zip(&win[..pos(M)]) {
            *s = p.wrapping_add(g * cin_g);
        }
        let dst = v.as_mut_ptr().wrapping_add(t * cin_g);
        let mut c = 0;
        while c + V::LANES <= cin_g {
            // SAFETY: see above.
            unsafe { input_vec::<V, M>(&src, c, dst, stride) };
            c += V::LANES;
        }
        while c < cin_g {
            // SAFETY: as above.
            unsafe { input_vec::<f32, M>(&src, c, dst, stride) };
            c += 1;
        }
    }
}

/// The products of every position for output channels `co..co + NV * LANES` of group `g`
/// (`at = [g, co, bt]`): `m[p][t][co..] = Σ_ci v[p][t][ci] u[g][p][ci][co..]`, `NB` tiles
/// at a time. The last register block is padded past `bt` (rows of an earlier block, or
/// zeros, whose products are never read): a short block would run at a fraction of the
/// FMA rate (its few accumulators wait on the FMA latency). Positions lie [`max_tiles`]
/// rows apart, which `NB` divides.
#[inline(always)]
fn products<V: Vf, const M: usize, const NV: usize, const NB: usize>(
    job: &Job,
    at: [usize; 3],
    v: &[f32],
    m: &mut [f32],
) {
    const { assert!(max_tiles(M).is_multiple_of(NB)) };
    let cv = job.cv;
    let [g, co, bt] = at;
    let (cin_g, cout_g) = (cv.c_in / cv.groups, cv.c_out / cv.groups);
    let (mt, np) = (max_tiles(M), pos(M));
    assert!(co + NV * V::LANES <= cout_g && bt <= mt);
    assert!(v.len() >= np * mt * cin_g && m.len() >= np * mt * cout_g);
    assert!(job.u.len() >= (g + 1) * np * cin_g * cout_g);
    let dims = [cin_g, cout_g];
    // The next group's weight, a position's share at each position (from memory, where
    // the network's weights outgrow the caches; the hardware's prefetch did not keep up).
    let next = (co == 0 && g + 1 < cv.groups).then(|| &job.u[(g + 1) * np * cin_g * cout_g..]);
    for p in 0..np {
        if let Some(nx) = next {
            let share = &nx[p * cin_g * cout_g..][..cin_g * cout_g];
            for l in (0..share.len()).step_by(16) {
                crate::prefetch::line(share[l..].as_ptr());
            }
        }
        let u = job.u[(g * np + p) * cin_g * cout_g + co..].as_ptr();
        let x = v[p * mt * cin_g..].as_ptr();
        let y = m[p * mt * cout_g + co..].as_mut_ptr();
        // SAFETY: tiles t..t + NB <= mt of position p read cin_g values each from x and
        // write NV vectors each from y (within v and m: asserted above); u's rows hold
        // cout_g >= co + NV * LANES values.
        for t in (0..bt).step_by(NB) {
            // Groups one vector wide (RegNets' 8 and 16 channels) with the row length
            // known, so that each tile's values are an offset from one pointer.
            match cin_g {
                8 => unsafe { gemm_tile::<V, NV, NB, 8>(x, u, y, t, dims) },
                16 => unsafe { gemm_tile::<V, NV, NB, 16>(x, u, y, t, dims) },
                _ => unsafe { gemm_tile::<V, NV, NB, 0>(x, u, y, t, dims) },
            }
        }
    }
}

/// `NB` tiles from `t` times `NV` vectors: each broadcast input value feeds `NV` FMAs.
/// `CI`: `cin_g` where known at compile time, 0 where not.
///
/// # Safety
/// `x` must hold rows `t..t + NB` of `cin_g` values, `u` `cin_g` rows of `cout_g` values
/// whose first `NV * LANES` are read, and `y` rows `t..t + NB` of `cout_g` with room for
/// `NV * LANES` values each.
#[inline(always)]
unsafe fn gemm_tile<V: Vf, const NV: usize, const NB: usize, const CI: usize>(
    x: *const f32,
    u: *const f32,
    y: *mut f32,
    t: usize,
    [cin_g, cout_g]: [usize; 2],
) {
    let cin_g = if CI == 0 { cin_g } else { CI };
    let lanes = V::LANES;
    let mut acc = [[V::splat(0.0); NB]; NV];
    let x = x.wrapping_add(t * cin_g);
    let mut up = u;
    for ci in 0..cin_g {
        let mut wv = [V::splat(0.0); NV];
        for (k, w) in wv.iter_mut().enumerate() {
            *w = unsafe { V::load(up.add(k * lanes)) };
        }
        // Index loops, as in every kernel here: plain loops inline into the
        // `#[target_feature]` caller.
        #[allow(clippy::needless_range_loop)]
        for q in 0..NB {
            let xv = V::splat(unsafe { *x.add(q * cin_g + ci) });
            for k in 0..NV {
                acc[k][q] = xv.fma(wv[k], acc[k][q]);
            }
        }
        up = up.wrapping_add(cout_g);
    }
    for (k, a) in acc.iter().enumerate() {
        for (q, r) in a.iter().enumerate() {
            unsafe { r.store(y.add((t + q) * cout_g + k * lanes)) };
        }
    }
}

/// `Aᵀ m A` plus the bias for group `g`'s output channels of tiles `t0..t0 + bt`
/// (`at = [g, t0, bt]`), epilogue applied, stored where the tile's pixels lie in the image.
#[inline(always)]
fn transform_outputs<V: Vf, const M: usize>(
    job: &Job,
    [g, t0, bt]: [usize; 3],
    m: &[f32],
    out: &mut [f32],
    res: Option<&[f32]>,
) {
    let cv = job.cv;
    let ([h, w], cout_g, lanes) = (job.hw, cv.c_out / cv.groups, V::LANES);
    let tw = w.div_ceil(M);
    let mt = max_tiles(M);
    assert!(bt <= mt && m.len() >= pos(M) * mt * cout_g);
    assert!(cv.bias.len() == cv.c_out);
    for t in t0..t0 + bt {
        // The tile's top-left pixel: its row in the task's rows (of consecutive images),
        // and in its image.
        let [bi, ty, tx] = job.place(t, tw);
        let (y0, x0) = (bi * h + M * ty - M * job.row0, M * tx);
        for c in (0..cout_g).step_by(lanes) {
            let o = g * cout_g + c;
            // SAFETY: position p of tile t lies at (p * mt + t - t0) * cout_g + c, with
            // c + LANES <= cout_g (LANES divides cout_g), below m.len() (asserted);
            // o + LANES <= c_out = bias.len().
            let bias = unsafe { V::load(cv.bias.as_ptr().add(o)) };
            let at = [t - t0, cout_g, c];
            let ys: [[V; 4]; 4] = if M == 2 {
                let y = unsafe { outputs2::<V>(m, at) };
                let z = V::splat(0.0);
                [
                    [y[0][0], y[0][1], z, z],
                    [y[1][0], y[1][1], z, z],
                    [z; 4],
                    [z; 4],
                ]
            } else {
                unsafe { outputs4::<V>(m, at) }
            };
            for (a, r) in ys.iter().take(M).enumerate() {
                for (b, y) in r.iter().take(M).enumerate() {
                    let (py, px) = (y0 + a, x0 + b);
                    if M * ty + a < h && px < w {
                        store::<V, 1>(
                            cv.ep,
                            &[y.add(bias)],
                            (py * w + px) * cv.c_out + o,
                            0,
                            out,
                            res,
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::direct::DirectConv;
    use crate::simd::SimdLevel;
    use crate::test_support::{epilogues, plain_conv, val};

    /// Stride-1 3x3 convs with groups of 4 to 64 channels, odd and even sizes (partial
    /// tiles, 1-pixel maps), batches of 1 to 9 (tasks of rows and of whole images), every
    /// epilogue, both tilings, against their definition at every level this CPU has: within
    /// 1e-5 of the value's size for F(2x2), 1e-4 for F(4x4), whose transforms' larger
    /// coefficients (up to 8) round more (here up to 4.7e-5, groups of 32 channels: sums
    /// of 288 products of values up to 1; 7e-6 for F(2x2)).
    #[test]
    fn winograd_convs_match_their_definition() {
        // (c_in, c_out, groups, [n, h, w]); 24 -> 32 in 2 groups reads 12 input channels
        // per group, not a whole number of vectors; groups of 32, 24 and 8 channels take
        // the other kernels at AVX-512.
        let cases = [
            (64, 64, 4, [2, 14, 14]),
            (48, 48, 3, [1, 7, 7]),
            (32, 32, 2, [3, 5, 8]),
            (24, 24, 6, [1, 9, 3]),
            (24, 32, 2, [1, 4, 5]),
            (96, 96, 3, [2, 7, 7]),
            (48, 48, 2, [1, 6, 9]),
            (16, 16, 2, [1, 5, 5]),
            (64, 64, 1, [2, 6, 6]),
            (16, 16, 4, [1, 1, 1]),
            (32, 32, 4, [1, 2, 1]),
            (48, 48, 3, [8, 7, 7]),
            (32, 32, 2, [9, 5, 7]),
        ];
        for (ci, (c_in, c, groups, [n, h, w])) in cases.into_iter().enumerate() {
            for (ei, ep) in epilogues().into_iter().enumerate() {
                let wt: Vec<f32> = (0..c * (c_in / groups) * 9)
                    .map(|i| val(i, 5 + ci))
                    .collect();
                let bias: Vec<f32> = (0..c).map(|i| val(i, 6)).collect();
                let cv = DirectConv::new(&wt, bias, [c_in, 3, 1, groups], ep);
                let u = cv.winograd.as_ref().expect("a Winograd conv");
                let x: Vec<f32> = (0..n * h * w * c_in).map(|i| val(i, 7)).collect();
                let res: Vec<f32> = (0..n * h * w * c).map(|i| val(i, 8)).collect();
                let mut want = plain_conv(&cv, &wt, &x, [n, h, w]);
                for (v, r) in want.iter_mut().zip(&res) {
                    *v = ep.finish(*v, if ep.residual { *r } else { 0.0 });
                }
                let res = ep.residual.then_some(&res[..]);
                for (level, m) in SimdLevel::available()
                    .into_iter()
                    .flat_map(|l| [(l, 2), (l, 4)])
                {
                    let mut got = vec![f32::NAN; want.len()];
                    // At AVX-512, F(2x2) leaves groups one vector wide to the direct kernel.
                    let (gi, go) = (c_in / groups, c / groups);
                    let direct = level == SimdLevel::Avx512 && gi == go && (go == 8 || go == 16);
                    if !super::run_tiled(level, &cv, u, &x, [h, w, m], &mut got, res) {
                        assert!(direct && m == 2, "case {ci} at {level}, F({m}x{m}) not run");
                        continue;
                    }
                    let tol = if m == 2 { 1e-5 } else { 1e-4 };
                    for (j, (g, v)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (g - v).abs() <= tol * (1.0 + v.abs()),
                            "case {ci}, epilogue {ei} at {level}, F({m}x{m}), value {j}: {g} vs {v}"
                        );
                    }
                }
            }
        }
    }

    /// F(4x4) where a task has a register block of its tiles, F(2x2) on small work.
    #[test]
    fn the_tiling_follows_the_work() {
        use super::tile_side;
        let (avx2, avx512) = (SimdLevel::Avx2, SimdLevel::Avx512);
        // RegNetX-400MF's stage 4 at batch 8 (2 images a task), stage 3 at batch 8.
        assert_eq!(tile_side(avx2, 16, [8, 7, 7], 2), 4);
        assert_eq!(tile_side(avx512, 16, [8, 14, 14], 2), 4);
        // RegNetY-800MF's stage 4 at batch 1: 2 tiles a task.
        assert_eq!(tile_side(avx2, 16, [1, 7, 7], 2), 2);
        assert_eq!(tile_side(avx512, 16, [1, 14, 14], 2), 2);
        assert_eq!(tile_side(avx2, 16, [1, 14, 14], 2), 4);
        assert_eq!(tile_side(avx2, 16, [1, 3, 3], 1), 2);
    }

    /// Strided, 5x5, depthwise and wide-group convs are not transformed.
    #[test]
    fn only_small_group_stride_1_3x3_convs_are_transformed() {
        let ep = epilogues()[0];
        let conv = |c: usize, k: usize, s: usize, g: usize| {
            let wt = vec![0.5; c * (c / g) * k * k];
            DirectConv::new(&wt, vec![0.0; c], [c, k, s, g], ep)
        };
        assert!(conv(32, 3, 1, 2).winograd.is_some());
        assert!(conv(32, 3, 2, 2).winograd.is_none());
        assert!(conv(32, 5, 1, 2).winograd.is_none());
        assert!(conv(32, 3, 1, 32).winograd.is_none());
        assert!(conv(128, 3, 1, 1).winograd.is_none());
    }
}

/// A benchmark, not a check (ignored by `cargo test`): the fastest of 15 x 10 calls of the
/// direct and the Winograd kernels on RegNet-like stride-1 grouped 3x3 convs (X-400MF's
/// stages 2-4 at batch 8, Y-800MF's stages 3-4 at batch 1, with `GW`-channel groups, 16 by
/// default), at every level this CPU has. Run:
/// `GW=16 RAYON_NUM_THREADS=1 cargo test --release -p regnet-infer --lib winograd_timings -- --ignored --nocapture`.
#[cfg(test)]
mod bench {
    use crate::direct::DirectConv;
    use crate::simd::SimdLevel;
    use crate::test_support::{epilogues, val};

    #[test]
    #[ignore = "a benchmark: prints timings"]
    fn winograd_timings() {
        let ep = epilogues()[1];
        let gw: usize = std::env::var("GW").map_or(16, |v| v.parse().expect("GW: a number"));
        let shapes = [
            (384, 7, 8),
            (160, 14, 8),
            (64, 28, 8),
            (768, 7, 1),
            (320, 14, 1),
        ];
        for (c16, hw, n) in shapes {
            let c = c16 / 16 * gw;
            let wt: Vec<f32> = (0..c * gw * 9).map(|i| val(i, 5)).collect();
            let bias: Vec<f32> = (0..c).map(|i| val(i, 6)).collect();
            let wino = DirectConv::new(&wt, bias, [c, 3, 1, c / gw], ep);
            let mut direct = wino.clone();
            direct.winograd = None;
            let x: Vec<f32> = (0..n * hw * hw * c).map(|i| val(i, 7)).collect();
            let mut out = vec![0.0; x.len()];
            eprintln!(
                "ALIGN w {} {} x {} out {}",
                wino.weight.as_ptr() as usize % 64,
                direct.weight.as_ptr() as usize % 64,
                x.as_ptr() as usize % 64,
                out.as_ptr() as usize % 64
            );
            let macs = (n * hw * hw * c * gw * 9) as f64;
            for level in SimdLevel::available() {
                let mut best = [f64::MAX; 2];
                // As `CompiledNet::forward` runs: on a pool thread, the other workers polling.
                rayon::scope(|_| {
                    regnet_nn::awake::with_workers_awake(|| {
                        for _ in 0..15 {
                            for (k, conv) in [&direct, &wino].iter().enumerate() {
                                let t = std::time::Instant::now();
                                for _ in 0..10 {
                                    conv.run(level, &x, [n, hw, hw], &mut out, None);
                                }
                                best[k] = best[k].min(t.elapsed().as_secs_f64() / 10.0);
                            }
                        }
                    })
                });
                let gmacs = |t: f64| macs / t / 1e9;
                println!(
                    "{c} channels {hw}x{hw} batch {n} {level}: direct {:.1} us ({:.0} GMAC/s), \
                     Winograd {:.1} us ({:.0} direct-equivalent GMAC/s): {:.2}x",
                    best[0] * 1e6,
                    gmacs(best[0]),
                    best[1] * 1e6,
                    gmacs(best[1]),
                    best[0] / best[1]
                );
            }
        }
    }
}
