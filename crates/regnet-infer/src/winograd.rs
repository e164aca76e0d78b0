//! Winograd's F(2x2, 3x3) for stride-1 3x3 convs with small groups (RegNet's grouped convs
//! in every block but the first of a stage). Each 2x2 block of output pixels (a "tile") is
//! computed from its 4x4 input window: the window and the weight are transformed into 16
//! positions each (additions only for the input; the weight once, when packed), multiplied
//! position by position, and the 16 products transformed back into the 4 outputs. Per input
//! and output channel a tile costs 16 multiply-adds instead of 36 (2.25x fewer); the
//! transforms cost a few additions per value. The transforms are Lavin and Gray's ("Fast
//! Algorithms for Convolutional Neural Networks", 2016): with `d` the window and `g` the
//! kernel, `y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`.
//!
//! A task runs whole rows of tiles of one image (so its output is a contiguous slice), in
//! blocks of up to [`MAX_TILES`] tiles; per block and group, the transformed inputs
//! (`[position][tile][input channel]`) and the products (`[position][tile][output
//! channel]`) sit in a per-thread scratch small enough for the L1, and the products are a
//! register-blocked GEMM per position: `NB` tiles times `NV` vectors of output channels.

use crate::buffer::{self, Buf};
use crate::direct::{DirectConv, store};
use crate::parallel;
use crate::simd::SimdLevel;
use crate::vector::{F32x4, Vf};

/// Transformed positions per tile.
const POS: usize = 16;

/// Most tiles per block: the scratch of 16-channel groups is then 2 x 16 KiB, next to a
/// group's 16 KiB of transformed weight in the L1 (24 tiles measured no faster).
const MAX_TILES: usize = 16;

/// Largest group (input or output channels) run here: the scratch grows with it.
const MAX_GROUP: usize = 64;

/// `G`: the kernel transform, 4 x 3.
const G: [[f32; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// The weight of `cv` (PyTorch `[c_out, c_in / groups, 3, 3]` in `weight`) transformed to
/// `[group][position][ci][co]`, when `cv` is a stride-1 3x3 conv whose groups are small
/// enough and whose output groups are whole 4-lane vectors; `None` otherwise.
pub(crate) fn pack(cv: &DirectConv, weight: &[f32]) -> Option<Buf> {
    let (cin_g, cout_g) = (cv.c_in / cv.groups, cv.c_out / cv.groups);
    let fits = cv.k == 3 && cv.stride == 1 && cv.pad == 1 && !cv.depthwise;
    if !fits || cin_g > MAX_GROUP || cout_g > MAX_GROUP || !cout_g.is_multiple_of(4) {
        return None;
    }
    let mut u = buffer::zeroed(cv.groups * POS * cin_g * cout_g);
    for o in 0..cv.c_out {
        let (g, co) = (o / cout_g, o % cout_g);
        for ci in 0..cin_g {
            let k = &weight[(o * cin_g + ci) * 9..][..9];
            // G k Gᵀ, 4 x 4.
            for a in 0..4 {
                for b in 0..4 {
                    let mut s = 0.0;
                    for i in 0..3 {
                        for j in 0..3 {
                            s += G[a][i] * k[i * 3 + j] * G[b][j];
                        }
                    }
                    u[((g * POS + a * 4 + b) * cin_g + ci) * cout_g + co] = s;
                }
            }
        }
    }
    Some(u)
}

/// Runs `cv` with its transformed weight `u` (from [`pack`]) on `x` (`[n, h, w, c_in]`)
/// into `out` (`[n, h, w, c_out]`); returns false, doing nothing, where `level` has no
/// vector width dividing the output groups.
pub(crate) fn run(
    level: SimdLevel,
    cv: &DirectConv,
    u: &[f32],
    x: &[f32],
    [h, w]: [usize; 2],
    out: &mut [f32],
    residual: Option<&[f32]>,
) -> bool {
    let (cin_g, cout_g) = (cv.c_in / cv.groups, cv.c_out / cv.groups);
    let Some(span) = span_fn(level, cin_g, cout_g) else {
        return false;
    };
    assert!(u.len() == cv.groups * POS * cin_g * cout_g);
    let img_len = h * w * cv.c_out;
    let n = out.len() / img_len;
    assert!(out.len() == n * img_len && x.len() >= n * h * w * cv.c_in);
    // Whole rows of tiles per task (two output rows each), about 4 tasks per thread.
    let tile_rows = h.div_ceil(2);
    let threads = rayon::current_num_threads().max(1);
    let rows = (n * tile_rows).div_ceil(threads * 4).clamp(1, tile_rows);
    let span_len = rows * 2 * w * cv.c_out;
    let scratch = || Scratch::new(cin_g, cout_g);
    parallel::for_each_span_init(out, img_len, span_len, scratch, |s, b, i, o| {
        let img = &x[b * h * w * cv.c_in..][..h * w * cv.c_in];
        let start = b * img_len + i * span_len;
        let res = residual.map(|r| &r[start..start + o.len()]);
        let r0 = i * rows;
        let r1 = (r0 + rows).min(tile_rows);
        let job = Job {
            cv,
            u,
            img,
            h,
            w,
            row0: r0,
        };
        span(&job, (r1 - r0) * w.div_ceil(2), o, res, s);
    });
    true
}

/// A thread's transformed inputs and products (aligned: the products are stored and loaded
/// as whole vectors) and its current block's window table (see [`window_table`]).
struct Scratch {
    v: Buf,
    m: Buf,
    windows: Vec<[*const f32; POS]>,
}

impl Scratch {
    /// Room for a block of [`MAX_TILES`] tiles of groups of `cin_g` input and `cout_g`
    /// output channels (at most [`MAX_GROUP`] each: see [`pack`]).
    fn new(cin_g: usize, cout_g: usize) -> Self {
        Scratch {
            v: buffer::zeroed(POS * MAX_TILES * cin_g),
            m: buffer::zeroed(POS * MAX_TILES * cout_g),
            windows: Vec::with_capacity(MAX_TILES),
        }
    }
}

/// What every block of a task shares.
struct Job<'a> {
    cv: &'a DirectConv,
    u: &'a [f32],
    /// The image, `[h, w, c_in]`.
    img: &'a [f32],
    h: usize,
    w: usize,
    /// The task's first tile row.
    row0: usize,
}

/// A task's kernel: the job, its number of tiles, its output (and residual) rows, scratch.
type SpanFn = fn(&Job, usize, &mut [f32], Option<&[f32]>, &mut Scratch);

/// The kernel for groups of `cin_g` input and `cout_g` output channels at `level`, if a
/// vector width divides `cout_g` and the direct kernel is not faster. That is the case of
/// AVX-512 with groups one vector wide (8 or 16 channels in and out, RegNetX-400MF's and
/// RegNetY-800MF's): the direct kernel runs several groups per tile there, and the products
/// here, one FMA per broadcast value as there, measured 0.63-1.17x its speed (one thread,
/// RegNet shapes of 7x7 to 28x28, batches 1 and 8), where AVX2 measured 0.91-1.45x and wider
/// groups (24, 48) 1.12-2.6x at both levels.
fn span_fn(level: SimdLevel, cin_g: usize, cout_g: usize) -> Option<SpanFn> {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::vector::{F32x8, F32x16};
        macro_rules! span_at {
            ($name:ident, $features:literal, $v:ty, $a:literal, $b:literal, $c:literal) => {
                fn $name(j: &Job, nt: usize, o: &mut [f32], r: Option<&[f32]>, s: &mut Scratch) {
                    #[target_feature(enable = $features)]
                    fn imp(j: &Job, nt: usize, o: &mut [f32], r: Option<&[f32]>, s: &mut Scratch) {
                        span_imp::<$v, $a, $b, $c>(j, nt, o, r, s)
                    }
                    // SAFETY: only chosen below for a level the CPU supports (a
                    // CompiledNet only holds such levels).
                    unsafe { imp(j, nt, o, r, s) }
                }
            };
        }
        // Tiles per register block (divisors of MAX_TILES): 8 accumulators or more cover
        // the FMA latency; at most 24 of AVX-512's 32 registers and 12 of AVX2's 16 (4
        // tiles of 2 vectors at AVX2 measured faster than 6 on 7x7 maps, whose 16 tiles
        // then need no padded block).
        span_at!(v4_16, "avx512f,avx512vl,avx2,fma", F32x16, 8, 8, 8);
        span_at!(v4_8, "avx512f,avx512vl,avx2,fma", F32x8, 8, 8, 8);
        span_at!(v3_8, "avx2,fma", F32x8, 8, 4, 4);
        span_at!(v3_4, "avx2,fma", F32x4, 8, 4, 4);
        let one_vector = cin_g == cout_g && (cout_g == 16 || cout_g == 8);
        match level {
            SimdLevel::Avx512 if one_vector => return None,
            SimdLevel::Avx512 if cout_g.is_multiple_of(16) => return Some(v4_16),
            SimdLevel::Avx512 if cout_g.is_multiple_of(8) => return Some(v4_8),
            SimdLevel::Avx2 if cout_g.is_multiple_of(8) => return Some(v3_8),
            SimdLevel::Avx512 | SimdLevel::Avx2 if cout_g.is_multiple_of(4) => return Some(v3_4),
            SimdLevel::Avx512 | SimdLevel::Avx2 => return None,
            SimdLevel::Portable => {}
        }
    }
    let _ = (level, cin_g);
    fn portable(j: &Job, nt: usize, o: &mut [f32], r: Option<&[f32]>, s: &mut Scratch) {
        span_imp::<F32x4, 8, 4, 4>(j, nt, o, r, s)
    }
    cout_g.is_multiple_of(4).then_some(portable as SpanFn)
}

/// A task's `nt` tiles (whole tile rows from `job.row0`) in blocks of up to [`MAX_TILES`]:
/// per block and group, transform the inputs, multiply, transform back and store.
/// `NBn`: tiles per register block of `n` vectors.
#[inline(always)]
fn span_imp<V: Vf, const NB1: usize, const NB2: usize, const NB3: usize>(
    job: &Job,
    nt: usize,
    out: &mut [f32],
    res: Option<&[f32]>,
    s: &mut Scratch,
) {
    let cv = job.cv;
    let (cin_g, cout_g) = (cv.c_in / cv.groups, cv.c_out / cv.groups);
    assert!(s.v.len() >= POS * MAX_TILES * cin_g && s.m.len() >= POS * MAX_TILES * cout_g);
    assert!(res.is_none_or(|r| r.len() == out.len()));
    // Blocks of a multiple of 8 tiles where possible: the products run whole register
    // blocks (padded, see `products`), so 16 + 16 + 1 computes fewer than 11 + 11 + 11.
    let blocks = nt.div_ceil(MAX_TILES);
    let per = nt.div_ceil(blocks).next_multiple_of(8).min(MAX_TILES);
    let mut t0 = 0;
    while t0 < nt {
        let bt = per.min(nt - t0);
        window_table(job, t0, bt, &mut s.windows);
        for g in 0..cv.groups {
            transform_inputs::<V>(job, &s.windows, g, bt, &mut s.v);
            let mut c = 0;
            while c < cout_g / V::LANES {
                let nv = (cout_g / V::LANES - c).min(3);
                let at = [g, c * V::LANES, bt];
                match nv {
                    1 => products::<V, 1, NB1>(job, at, &s.v, &mut s.m),
                    2 => products::<V, 2, NB2>(job, at, &s.v, &mut s.m),
                    _ => products::<V, 3, NB3>(job, at, &s.v, &mut s.m),
                }
                c += nv;
            }
            transform_outputs::<V>(job, [g, t0, bt], &s.m, out, res);
        }
        t0 += bt;
    }
}

/// Fills `table` with where tile `t0 + t`'s 16 window pixels read (channel 0): an input
/// pixel, or the zeros outside the image. `[tile][position]`.
fn window_table(job: &Job, t0: usize, bt: usize, table: &mut Vec<[*const f32; POS]>) {
    let (cv, w) = (job.cv, job.w);
    let tw = w.div_ceil(2);
    assert!(job.img.len() == job.h * w * cv.c_in && cv.zeros.len() == cv.c_in);
    table.clear();
    table.extend((t0..t0 + bt).map(|t| {
        let (ty, tx) = (job.row0 + t / tw, t % tw);
        std::array::from_fn(|p| {
            let iy = (2 * ty + p / 4).wrapping_sub(1);
            let ix = (2 * tx + p % 4).wrapping_sub(1);
            if iy < job.h && ix < w {
                job.img[(iy * w + ix) * cv.c_in..].as_ptr()
            } else {
                cv.zeros.as_ptr()
            }
        })
    }));
}

/// `Bᵀ d B` of group `g`'s channels of every window into `v` (`[position][tile][ci]`,
/// `bt` tiles per position).
#[inline(always)]
fn transform_inputs<V: Vf>(
    job: &Job,
    windows: &[[*const f32; POS]],
    g: usize,
    bt: usize,
    v: &mut [f32],
) {
    let cin_g = job.cv.c_in / job.cv.groups;
    assert!(windows.len() == bt && bt <= MAX_TILES && v.len() >= POS * MAX_TILES * cin_g);
    for (t, win) in windows.iter().enumerate() {
        // Each window pointer reads c_in values (an input pixel, or `zeros`), so the
        // group's channels g * cin_g.. are readable; dst's last write is at
        // (15 * MAX_TILES + t) * cin_g + cin_g - 1 < v.len() (asserted).
        let src = win.map(|p| p.wrapping_add(g * cin_g));
        let dst = v.as_mut_ptr().wrapping_add(t * cin_g);
        let mut c = 0;
        while c + V::LANES <= cin_g {
            // SAFETY: see above.
            unsafe { input_vec::<V>(&src, c, dst, MAX_TILES * cin_g) };
            c += V::LANES;
        }
        while c < cin_g {
            // SAFETY: as above.
            unsafe { input_vec::<f32>(&src, c, dst, MAX_TILES * cin_g) };
            c += 1;
        }
    }
}

/// `Bᵀ d B` for channels `c..c + LANES` of one window, position `p` stored at
/// `dst + p * stride + c`. Column by column, so that about 12 vectors are live at a time
/// (all 16 at once spilled to the stack at AVX2). Plain functions and loops, no closures or
/// `array::map`: those were not inlined into the caller's `#[target_feature]` code, where
/// each vector operation became a call.
///
/// # Safety
/// Every `src` pointer must have `c + LANES` readable values, and `dst` room for every store.
#[inline(always)]
unsafe fn input_vec<V: Vf>(src: &[*const f32; POS], c: usize, dst: *mut f32, stride: usize) {
    let (d1, d2) = unsafe { (column::<V>(src, 1, c), column::<V>(src, 2, c)) };
    let (d0, d3) = unsafe { (column::<V>(src, 0, c), column::<V>(src, 3, c)) };
    // d B: its columns are d0 - d2, d1 + d2, d2 - d1, d1 - d3 (of d's columns); then Bᵀ
    // on each.
    unsafe {
        put_column(sub4(d0, d2), 0, dst, stride, c);
        put_column(add4(d1, d2), 1, dst, stride, c);
        put_column(sub4(d2, d1), 2, dst, stride, c);
        put_column(sub4(d1, d3), 3, dst, stride, c);
    }
}

/// Column `j` of a window: rows 0..4, channels `c..c + LANES`.
///
/// # Safety
/// As [`input_vec`].
#[inline(always)]
unsafe fn column<V: Vf>(src: &[*const f32; POS], j: usize, c: usize) -> [V; 4] {
    unsafe {
        [
            V::load(src[j].add(c)),
            V::load(src[4 + j].add(c)),
            V::load(src[8 + j].add(c)),
            V::load(src[12 + j].add(c)),
        ]
    }
}

#[inline(always)]
fn add4<V: Vf>(a: [V; 4], b: [V; 4]) -> [V; 4] {
    [
        a[0].add(b[0]),
        a[1].add(b[1]),
        a[2].add(b[2]),
        a[3].add(b[3]),
    ]
}

#[inline(always)]
fn sub4<V: Vf>(a: [V; 4], b: [V; 4]) -> [V; 4] {
    [
        a[0].sub(b[0]),
        a[1].sub(b[1]),
        a[2].sub(b[2]),
        a[3].sub(b[3]),
    ]
}

/// Stores `Bᵀ x` (x0 - x2, x1 + x2, x2 - x1, x1 - x3) as column `j`: row `i` at
/// `dst + (4 i + j) * stride + c`.
///
/// # Safety
/// As [`input_vec`].
#[inline(always)]
unsafe fn put_column<V: Vf>(x: [V; 4], j: usize, dst: *mut f32, stride: usize, c: usize) {
    let y = [
        x[0].sub(x[2]),
        x[1].add(x[2]),
        x[2].sub(x[1]),
        x[1].sub(x[3]),
    ];
    for (i, v) in y.into_iter().enumerate() {
        unsafe { v.store(dst.add((4 * i + j) * stride + c)) };
    }
}

/// The products of every position for output channels `co..co + NV * LANES` of group `g`
/// (`at = [g, co, bt]`): `m[p][t][co..] = Σ_ci v[p][t][ci] u[g][p][ci][co..]`, `NB` tiles
/// at a time. The last register block is padded past `bt` (rows of an earlier block, or
/// zeros, whose products are never read): a short block would run at a fraction of the
/// FMA rate (its few accumulators wait on the FMA latency). Positions lie [`MAX_TILES`]
/// rows apart, which `NB` divides.
#[inline(always)]
fn products<V: Vf, const NV: usize, const NB: usize>(
    job: &Job,
    at: [usize; 3],
    v: &[f32],
    m: &mut [f32],
) {
    const { assert!(MAX_TILES.is_multiple_of(NB)) };
    let cv = job.cv;
    let [g, co, bt] = at;
    let (cin_g, cout_g) = (cv.c_in / cv.groups, cv.c_out / cv.groups);
    assert!(co + NV * V::LANES <= cout_g && bt <= MAX_TILES);
    assert!(v.len() >= POS * MAX_TILES * cin_g && m.len() >= POS * MAX_TILES * cout_g);
    assert!(job.u.len() >= (g + 1) * POS * cin_g * cout_g);
    let dims = [cin_g, cout_g];
    for p in 0..POS {
        let u = job.u[(g * POS + p) * cin_g * cout_g + co..].as_ptr();
        let x = v[p * MAX_TILES * cin_g..].as_ptr();
        let y = m[p * MAX_TILES * cout_g + co..].as_mut_ptr();
        // SAFETY: tiles t..t + NB <= MAX_TILES of position p read cin_g values each from
        // x and write NV vectors each from y (within v and m: asserted above); u's rows
        // hold cout_g >= co + NV * LANES values.
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
fn transform_outputs<V: Vf>(
    job: &Job,
    [g, t0, bt]: [usize; 3],
    m: &[f32],
    out: &mut [f32],
    res: Option<&[f32]>,
) {
    let cv = job.cv;
    let (w, cout_g, lanes) = (job.w, cv.c_out / cv.groups, V::LANES);
    let (tw, rows) = (w.div_ceil(2), out.len() / (w * cv.c_out));
    assert!(bt <= MAX_TILES && m.len() >= POS * MAX_TILES * cout_g);
    assert!(cv.bias.len() == cv.c_out);
    for t in t0..t0 + bt {
        // The tile's top-left pixel, in the task's rows.
        let (y0, x0) = (2 * (t / tw), 2 * (t % tw));
        for c in (0..cout_g).step_by(lanes) {
            let o = g * cout_g + c;
            // SAFETY: position p of tile t lies at (p * MAX_TILES + t - t0) * cout_g + c, with
            // c + LANES <= cout_g (LANES divides cout_g), below m.len() (asserted);
            // o + LANES <= c_out = bias.len().
            let bias = unsafe { V::load(cv.bias.as_ptr().add(o)) };
            // Aᵀ m, column by column, so that few vectors are live at a time; then the
            // same on its rows.
            // SAFETY: as above.
            let (c0, c1, c2, c3) = unsafe {
                (
                    column_sums::<V>(m, [0, t - t0, cout_g, c]),
                    column_sums::<V>(m, [1, t - t0, cout_g, c]),
                    column_sums::<V>(m, [2, t - t0, cout_g, c]),
                    column_sums::<V>(m, [3, t - t0, cout_g, c]),
                )
            };
            let s = [[c0[0], c1[0], c2[0], c3[0]], [c0[1], c1[1], c2[1], c3[1]]];
            for (a, r) in s.iter().enumerate() {
                let ys = [r[0].add(r[1]).add(r[2]), r[1].sub(r[2]).sub(r[3])];
                for (b, y) in ys.into_iter().enumerate() {
                    let (py, px) = (y0 + a, x0 + b);
                    if py < rows && px < w {
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

/// Column `j` of `Aᵀ m` for one tile's products (`[j, tile, cout_g, c]`): `m0 + m1 + m2`
/// and `m1 - m2 - m3` of the column's rows.
///
/// # Safety
/// `m` must hold position `4 i + j`'s row `tile` (of [`MAX_TILES`]) with
/// `c + LANES <= cout_g`.
#[inline(always)]
unsafe fn column_sums<V: Vf>(m: &[f32], [j, tile, cout_g, c]: [usize; 4]) -> [V; 2] {
    let at = |i: usize| ((4 * i + j) * MAX_TILES + tile) * cout_g + c;
    let x = unsafe {
        [
            V::load(m.as_ptr().add(at(0))),
            V::load(m.as_ptr().add(at(1))),
            V::load(m.as_ptr().add(at(2))),
            V::load(m.as_ptr().add(at(3))),
        ]
    };
    [x[0].add(x[1]).add(x[2]), x[1].sub(x[2]).sub(x[3])]
}

#[cfg(test)]
mod tests {
    use crate::direct::DirectConv;
    use crate::simd::SimdLevel;
    use crate::test_support::{epilogues, plain_conv, val};

    /// Stride-1 3x3 convs with groups of 4 to 64 channels, odd and even sizes (partial
    /// tiles, 1-pixel maps), batches of 1 and 3, every epilogue, against their definition at
    /// every level this CPU has: within 1e-5 of the value's size.
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
                for level in SimdLevel::available() {
                    let mut got = vec![f32::NAN; want.len()];
                    // At AVX-512, groups one vector wide are left to the direct kernel.
                    let (gi, go) = (c_in / groups, c / groups);
                    let direct = level == SimdLevel::Avx512 && gi == go && (go == 8 || go == 16);
                    if !super::run(level, &cv, u, &x, [h, w], &mut got, res) {
                        assert!(direct, "case {ci} at {level} not run");
                        continue;
                    }
                    for (j, (g, v)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (g - v).abs() <= 1e-5 * (1.0 + v.abs()),
                            "case {ci}, epilogue {ei} at {level}, value {j}: {g} vs {v}"
                        );
                    }
                }
            }
        }
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
