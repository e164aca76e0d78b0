//! Winograd's transforms (Lavin and Gray's matrices) of F(2x2, 3x3) and F(4x4, 3x3): the
//! kernel's `G g Gᵀ` (once, when a conv is packed), the input window's `Bᵀ d B` and the
//! products' `Aᵀ m A`, one vector of channels at a time, in plain functions and loops that
//! inline into the `#[target_feature]` kernels of `winograd.rs`.

use super::{MAX_POS, max_tiles};
use crate::buffer::{self, Buf};
use crate::direct::DirectConv;
use crate::vector::Vf;

/// `G` of F(2x2, 3x3): the kernel transform, 4 x 3.
pub(super) const G2: [[f64; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// `G` of F(4x4, 3x3), 6 x 3 (interpolation points 0, -1, 1, -2, 2 and infinity).
pub(super) const G4: [[f64; 3]; 6] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// `G k Gᵀ` of every kernel `k` of `weight` (in f64, rounded once), `[group][position][ci][co]`.
pub(super) fn transform_weight<const A: usize>(
    cv: &DirectConv,
    weight: &[f32],
    g: &[[f64; 3]; A],
) -> Buf {
    let (cin_g, cout_g) = (cv.c_in / cv.groups, cv.c_out / cv.groups);
    let mut u = buffer::zeroed(cv.groups * A * A * cin_g * cout_g);
    for o in 0..cv.c_out {
        let (grp, co) = (o / cout_g, o % cout_g);
        for ci in 0..cin_g {
            let k = &weight[(o * cin_g + ci) * 9..][..9];
            for a in 0..A {
                for b in 0..A {
                    let mut s = 0.0f64;
                    for i in 0..3 {
                        for j in 0..3 {
                            s += g[a][i] * g[b][j] * f64::from(k[i * 3 + j]);
                        }
                    }
                    u[((grp * A * A + a * A + b) * cin_g + ci) * cout_g + co] = s as f32;
                }
            }
        }
    }
    u
}

/// `Bᵀ d B` for channels `c..c + LANES` of one window, position `p` stored at
/// `dst + p * stride + c`.
///
/// # Safety
/// Every used `src` pointer must have `c + LANES` readable values, and `dst` room for every
/// store.
#[inline(always)]
pub(super) unsafe fn input_vec<V: Vf, const M: usize>(
    src: &[*const f32; MAX_POS],
    c: usize,
    dst: *mut f32,
    stride: usize,
) {
    if M == 2 {
        unsafe { input_vec2::<V>(src, c, dst, stride) }
    } else {
        unsafe { input_vec4::<V>(src, c, dst, stride) }
    }
}

/// [`input_vec`] of F(2x2, 3x3). Column by column, so that about 12 vectors are live at a
/// time (all 16 at once spilled to the stack at AVX2). Plain functions and loops, no
/// closures or `array::map`: those were not inlined into the caller's `#[target_feature]`
/// code, where each vector operation became a call.
///
/// # Safety
/// As [`input_vec`].
#[inline(always)]
unsafe fn input_vec2<V: Vf>(src: &[*const f32; MAX_POS], c: usize, dst: *mut f32, stride: usize) {
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

/// [`input_vec`] of F(4x4, 3x3): `Bᵀ` on each of the window's 6 columns into a 6 x 6
/// array, then on each of its rows (which is `(Bᵀ d) B` row by row).
///
/// # Safety
/// As [`input_vec`].
#[inline(always)]
unsafe fn input_vec4<V: Vf>(src: &[*const f32; MAX_POS], c: usize, dst: *mut f32, stride: usize) {
    let mut t = [[V::splat(0.0); 6]; 6];
    for j in 0..6 {
        let mut x = [V::splat(0.0); 6];
        for (i, xi) in x.iter_mut().enumerate() {
            *xi = unsafe { V::load(src[6 * i + j].add(c)) };
        }
        let y = b6(x);
        for i in 0..6 {
            t[i][j] = y[i];
        }
    }
    for (i, row) in t.into_iter().enumerate() {
        for (j, v) in b6(row).into_iter().enumerate() {
            unsafe { v.store(dst.add((6 * i + j) * stride + c)) };
        }
    }
}

/// `Bᵀ x` of F(4x4, 3x3): rows `4 0 -5 0 1 0`, `0 -4 -4 1 1 0`, `0 4 -4 -1 1 0`,
/// `0 -2 -1 2 1 0`, `0 2 -1 -2 1 0`, `0 4 0 -5 0 1`.
#[inline(always)]
fn b6<V: Vf>(x: [V; 6]) -> [V; 6] {
    let (four, minus4, minus5) = (V::splat(4.0), V::splat(-4.0), V::splat(-5.0));
    let t0 = x[2].fma(minus4, x[4]);
    let t1 = x[1].fma(minus4, x[3]);
    let t2 = x[4].sub(x[2]);
    let d31 = x[3].sub(x[1]);
    let t3 = d31.add(d31);
    [
        x[0].fma(four, x[2].fma(minus5, x[4])),
        t0.add(t1),
        t0.sub(t1),
        t2.add(t3),
        t2.sub(t3),
        x[1].fma(four, x[3].fma(minus5, x[5])),
    ]
}

/// Column `j` of an F(2x2) window: rows 0..4, channels `c..c + LANES`.
///
/// # Safety
/// As [`input_vec`].
#[inline(always)]
unsafe fn column<V: Vf>(src: &[*const f32; MAX_POS], j: usize, c: usize) -> [V; 4] {
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

/// `Aᵀ m A` of F(2x2, 3x3) for one tile's products (`[tile, cout_g, c]`): `Aᵀ` on the
/// columns, so that few vectors are live at a time, then on the rows.
///
/// # Safety
/// `m` must hold the tile's 16 positions (rows [`max_tiles`] apart) with `c + LANES <=
/// cout_g`.
#[inline(always)]
pub(super) unsafe fn outputs2<V: Vf>(m: &[f32], [tile, cout_g, c]: [usize; 3]) -> [[V; 2]; 2] {
    let (c0, c1, c2, c3) = unsafe {
        (
            column_sums::<V>(m, [0, tile, cout_g, c]),
            column_sums::<V>(m, [1, tile, cout_g, c]),
            column_sums::<V>(m, [2, tile, cout_g, c]),
            column_sums::<V>(m, [3, tile, cout_g, c]),
        )
    };
    // Plain expressions, no `array::map`: a closure was not inlined into the
    // `#[target_feature]` caller.
    let (r0, r1) = ([c0[0], c1[0], c2[0], c3[0]], [c0[1], c1[1], c2[1], c3[1]]);
    [
        [r0[0].add(r0[1]).add(r0[2]), r0[1].sub(r0[2]).sub(r0[3])],
        [r1[0].add(r1[1]).add(r1[2]), r1[1].sub(r1[2]).sub(r1[3])],
    ]
}

/// Column `j` of `Aᵀ m` of F(2x2) for one tile's products (`[j, tile, cout_g, c]`):
/// `m0 + m1 + m2` and `m1 - m2 - m3` of the column's rows.
///
/// # Safety
/// As [`outputs2`].
#[inline(always)]
unsafe fn column_sums<V: Vf>(m: &[f32], [j, tile, cout_g, c]: [usize; 4]) -> [V; 2] {
    let at = |i: usize| ((4 * i + j) * max_tiles(2) + tile) * cout_g + c;
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

/// `Aᵀ m A` of F(4x4, 3x3) for one tile's products (`[tile, cout_g, c]`): `Aᵀ` on each of
/// the 6 columns into a 4 x 6 array, then on each of its rows.
///
/// # Safety
/// `m` must hold the tile's 36 positions (rows [`max_tiles`] apart) with `c + LANES <=
/// cout_g`.
#[inline(always)]
pub(super) unsafe fn outputs4<V: Vf>(m: &[f32], [tile, cout_g, c]: [usize; 3]) -> [[V; 4]; 4] {
    let at = |p: usize| (p * max_tiles(4) + tile) * cout_g + c;
    let mut t = [[V::splat(0.0); 6]; 4];
    // Index loops: plain loops inline into the `#[target_feature]` caller.
    #[allow(clippy::needless_range_loop)]
    for j in 0..6 {
        let mut x = [V::splat(0.0); 6];
        for (i, xi) in x.iter_mut().enumerate() {
            *xi = unsafe { V::load(m.as_ptr().add(at(6 * i + j))) };
        }
        let y = a6(x);
        for i in 0..4 {
            t[i][j] = y[i];
        }
    }
    [a6(t[0]), a6(t[1]), a6(t[2]), a6(t[3])]
}

/// `Aᵀ x` of F(4x4, 3x3): rows `1 1 1 1 1 0`, `0 1 -1 2 -2 0`, `0 1 1 4 4 0`,
/// `0 1 -1 8 -8 1`.
#[inline(always)]
fn a6<V: Vf>(x: [V; 6]) -> [V; 4] {
    let (s12, d12) = (x[1].add(x[2]), x[1].sub(x[2]));
    let (s34, d34) = (x[3].add(x[4]), x[3].sub(x[4]));
    [
        x[0].add(s12).add(s34),
        d34.fma(V::splat(2.0), d12),
        s34.fma(V::splat(4.0), s12),
        d34.fma(V::splat(8.0), d12).add(x[5]),
    ]
}
