//! The image stems' convs (3 input channels; 3x3 at stride 1 or 2, 7x7 at stride 2) read
//! straight from the image where a whole register tile of windows lies inside it: a tile of
//! `NP` output pixels of one row times `NV` vectors of output channels, its broadcast input
//! values at offsets known at compile time from one pointer per kernel row. `patches.rs`
//! gathers the windows at the borders (and of every other few-channel conv) and runs them
//! through the packed GEMM. Gathering every window cost about as much as the GEMM itself:
//! RegNetX-400MF's 3->32 stem at 224 ran at 35-41 GMAC/s with AVX-512 on one thread.

use crate::direct::{DirectConv, act_vec};
use crate::packed::{self, Packed};
use crate::prefetch;
use crate::simd::SimdLevel;
use crate::vector::Vf;

/// What a conv's tiles share: the conv, its weight packed in panels (`patches::pack`), the
/// image (`[h, w, c_in]`) and its width.
pub(crate) struct Stem<'a> {
    pub cv: &'a DirectConv,
    pub weight: &'a Packed,
    pub img: &'a [f32],
    pub h: usize,
    pub w: usize,
}

/// A tile kernel: `NP` output pixels from the window whose top-left input value is at
/// `img[at..]`, written (all `c_out` channels) to `out` from pixel `0`, `res` (if any) added.
pub(crate) type TileFn = fn(&Stem, usize, &mut [f32], Option<&[f32]>);

/// The tile kernel for `cv` at `level` and its pixels per tile, if there is one.
pub(crate) fn tile_fn(level: SimdLevel, cv: &DirectConv) -> Option<(TileFn, usize)> {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::vector::{F32x8, F32x16};
        macro_rules! tile_at {
            ($name:ident, $features:literal, $v:ty, $np:literal, $k:literal, $s:literal,
             $p:literal) => {
                fn $name(st: &Stem, at: usize, out: &mut [f32], res: Option<&[f32]>) {
                    #[target_feature(enable = $features)]
                    fn imp(st: &Stem, at: usize, out: &mut [f32], res: Option<&[f32]>) {
                        tile::<$v, $np, 3, $k, $s, $p>(st, at, out, res)
                    }
                    // SAFETY: only chosen below for a level the CPU supports (a
                    // CompiledNet only holds such levels).
                    unsafe { imp(st, at, out, res) }
                }
            };
        }
        // 12 pixels x 2 vectors (24 of AVX-512's 32 registers accumulate), 6 x 2 at AVX2
        // (12 of 16); the weight packed for the level (`packed::panel`).
        tile_at!(v4_k3s2, "avx512f,avx512vl,avx2,fma", F32x16, 12, 3, 2, 64);
        tile_at!(v4_k3s1, "avx512f,avx512vl,avx2,fma", F32x16, 12, 3, 1, 64);
        tile_at!(v4_k7s2, "avx512f,avx512vl,avx2,fma", F32x16, 12, 7, 2, 64);
        tile_at!(v3_k3s2, "avx2,fma", F32x8, 6, 3, 2, 16);
        tile_at!(v3_k3s1, "avx2,fma", F32x8, 6, 3, 1, 16);
        tile_at!(v3_k7s2, "avx2,fma", F32x8, 6, 7, 2, 16);
        let packed_here = cv.patches.as_ref().map(Packed::panel) == Some(packed::panel(level));
        if cv.c_in != 3 || cv.groups != 1 || !cv.c_out.is_multiple_of(16) || !packed_here {
            return None;
        }
        let f: (TileFn, usize) = match (level, cv.k, cv.stride) {
            (SimdLevel::Avx512, 3, 2) => (v4_k3s2, 12),
            (SimdLevel::Avx512, 3, 1) => (v4_k3s1, 12),
            (SimdLevel::Avx512, 7, 2) => (v4_k7s2, 12),
            (SimdLevel::Avx2, 3, 2) => (v3_k3s2, 6),
            (SimdLevel::Avx2, 3, 1) => (v3_k3s1, 6),
            (SimdLevel::Avx2, 7, 2) => (v3_k7s2, 6),
            _ => return None,
        };
        return Some(f);
    }
    #[allow(unreachable_code)]
    {
        let _ = (level, cv);
        None
    }
}

/// Whether output pixels `ox..ox + np` of row `oy` have their whole windows inside the image.
pub(crate) fn inside(st: &Stem, [oy, ox, np]: [usize; 3]) -> bool {
    let cv = st.cv;
    let y0 = (oy * cv.stride).wrapping_sub(cv.pad);
    let x0 = (ox * cv.stride).wrapping_sub(cv.pad);
    let x_end = x0.wrapping_add((np - 1) * cv.stride + cv.k);
    y0 < st.h && st.h - y0 >= cv.k && x0 < st.w && x0 <= x_end && x_end <= st.w
}

/// One tile, in strips of 2 vectors of output channels (1 for the last 16 at AVX-512), their
/// weights in panels of the packed weight. `C`, `K`, `S`: input channels,
/// kernel size, stride.
#[inline(always)]
fn tile<V: Vf, const NP: usize, const C: usize, const K: usize, const S: usize, const P: usize>(
    st: &Stem,
    at: usize,
    out: &mut [f32],
    res: Option<&[f32]>,
) {
    let cv = st.cv;
    let c_out = cv.c_out;
    let row = st.w * C;
    // The tile's last read: row K - 1, pixel NP - 1's last tap.
    assert!(at + (K - 1) * row + ((NP - 1) * S + K) * C <= st.img.len());
    assert!(out.len() >= NP * c_out && res.is_none_or(|r| r.len() >= NP * c_out));
    assert!(cv.bias.len() == c_out);
    // The next tile's window rows (it starts NP * S pixels on), while this one computes: the
    // first taps of a tile had waited on them (RegNetX-400MF's stem at batch 8 on an Intel
    // Xeon: 1.26 -> 1.13 ms per forward at AVX2, about 0.90 -> 0.86 at AVX-512).
    let span = ((NP - 1) * S + K) * C;
    let next = at + NP * S * C;
    for ky in 0..K {
        let mut off = 0;
        while off < span + 15 {
            prefetch::line(
                st.img
                    .as_ptr()
                    .wrapping_add(next + ky * row + off.min(span - 1)),
            );
            off += 16;
        }
    }
    let mut co = 0;
    while co < c_out {
        let strip = Strip {
            x: &st.img[at..],
            row,
            w: st.weight,
            co,
        };
        if c_out - co >= 2 * V::LANES {
            strip_tile::<V, NP, 2, C, K, S, P>(cv, &strip, out, res);
            co += 2 * V::LANES;
        } else {
            strip_tile::<V, NP, 1, C, K, S, P>(cv, &strip, out, res);
            co += V::LANES;
        }
    }
}

/// `p`, which the compiler can no longer relate to other pointers. Unrolled, a tap's
/// broadcasts repeat those of the taps before it (at stride 2, pixel j's third column is
/// pixel j + 1's first), and LLVM kept them in registers across taps: at AVX2 (16
/// registers, 12 of them accumulators) it spilled them to the stack and reloaded them
/// (RegNetX-400MF's stem 1.33 -> 1.28 ms per forward at batch 8 on an Intel Xeon).
#[inline(always)]
fn opaque(p: *const f32) -> *const f32 {
    let mut p = p;
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    // SAFETY: an empty asm that only claims to change the register holding `p`; it reads
    // and writes no memory (`nomem` is true, though the lint cannot know).
    #[allow(clippy::pointers_in_nomem_asm_block)]
    unsafe {
        std::arch::asm!("/* {0} */", inout(reg) p, options(nomem, nostack, preserves_flags))
    };
    p
}

/// One strip of a tile: the image from the tile's first window, the image row length,
/// the packed weight and the strip's first output channel.
struct Strip<'a> {
    x: &'a [f32],
    row: usize,
    w: &'a Packed,
    co: usize,
}

/// `NP` pixels x `NV` vectors of output channels from `strip.co`: bias, the `K * K * C`
/// multiply-adds per value, the epilogue, one store.
#[inline(always)]
fn strip_tile<
    V: Vf,
    const NP: usize,
    const NV: usize,
    const C: usize,
    const K: usize,
    const S: usize,
    const P: usize,
>(
    cv: &DirectConv,
    st: &Strip,
    out: &mut [f32],
    res: Option<&[f32]>,
) {
    let (lanes, c_out) = (V::LANES, cv.c_out);
    assert!(st.x.len() >= (K - 1) * st.row + ((NP - 1) * S + K) * C);
    let kdim = K * K * C;
    assert!(st.w.rows() == kdim && st.w.width() >= c_out && st.w.panel() == P);
    assert!(st.co.is_multiple_of(lanes) && st.co + NV * lanes <= c_out);
    assert!(out.len() >= NP * c_out);
    assert!(res.is_none_or(|r| r.len() >= NP * c_out));
    let x = st.x.as_ptr();
    // Each vector's weights, in its panel (one pointer where the strip is inside one).
    let first = st.w.data().as_ptr().wrapping_add(st.w.offset(st.co));
    let w: [*const f32; NV] = std::array::from_fn(|k| {
        if NV * lanes <= P {
            first.wrapping_add(k * lanes)
        } else {
            st.w.data()
                .as_ptr()
                .wrapping_add(st.w.offset(st.co + k * lanes))
        }
    });
    let mut acc = [[V::splat(0.0); NP]; NV];
    for (k, a) in acc.iter_mut().enumerate() {
        // SAFETY: co + NV * LANES <= c_out = bias.len() (asserted here and in `tile`).
        *a = [unsafe { V::load(cv.bias.as_ptr().add(st.co + k * lanes)) }; NP];
    }
    for ky in 0..K {
        for kx in 0..K {
            for ci in 0..C {
                let r = (ky * K + kx) * C + ci;
                let mut wv = [V::splat(0.0); NV];
                for (k, v) in wv.iter_mut().enumerate() {
                    // SAFETY: row r < kdim of a panel, LANES values within it (co and
                    // LANES divide 16, which divides the panel; asserted).
                    *v = unsafe { V::load(w[k].add(r * P)) };
                }
                // Index loops, as in every kernel here: plain loops inline into the
                // `#[target_feature]` caller.
                // SAFETY: below x.len() (asserted; the largest offset read is
                // (K - 1) * row + ((NP - 1) * S + K - 1) * C + C - 1).
                let tap = opaque(unsafe { x.add(ky * st.row + kx * C + ci) });
                #[allow(clippy::needless_range_loop)]
                for j in 0..NP {
                    // SAFETY: as above.
                    let xv = V::splat(unsafe { *tap.add(j * S * C) });
                    for k in 0..NV {
                        acc[k][j] = xv.fma(wv[k], acc[k][j]);
                    }
                }
            }
        }
    }
    for (k, a) in acc.iter().enumerate() {
        for (j, v) in a.iter().enumerate() {
            let at = j * c_out + st.co + k * lanes;
            let mut v = act_vec(cv.ep.act, *v);
            if let Some(r) = res {
                // SAFETY: at + LANES <= NP * c_out <= r.len() (asserted).
                v = v.add(unsafe { V::load(r.as_ptr().add(at)) });
            }
            v = act_vec(cv.ep.act_after, v);
            // SAFETY: as above, for out.
            unsafe { v.store(out.as_mut_ptr().add(at)) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Stem, inside, tile_fn};
    use crate::direct::DirectConv;
    use crate::epilogue::Epilogue;
    use crate::packed;
    use crate::simd::SimdLevel;

    /// The stems of RegNet (3x3, stride 2), the CIFAR models (3x3, stride 1) and ResNet
    /// (7x7, stride 2) have tile kernels at AVX2 and AVX-512 where their weight is packed
    /// for the level, and at 224 all but the borders' windows run through them; other convs
    /// have none.
    #[test]
    fn image_stems_run_in_tiles_inside_the_image() {
        let conv = |c: usize, c_out: usize, k: usize, stride: usize| {
            let wt = vec![0.5; c_out * c * k * k];
            DirectConv::new(
                &wt,
                vec![0.0; c_out],
                [c, k, stride, 1],
                Epilogue::default(),
            )
        };
        for level in [SimdLevel::Avx2, SimdLevel::Avx512] {
            for (k, s) in [(3, 2), (3, 1), (7, 2)] {
                let mut cv = conv(3, 32, k, s);
                let other = [SimdLevel::Avx2, SimdLevel::Avx512]
                    .into_iter()
                    .find(|&l| l != level);
                cv.repack(packed::panel(other.expect("two levels")));
                // Packed for the other level: the windows are gathered.
                assert!(tile_fn(level, &cv).is_none());
                cv.repack(packed::panel(level));
                let (_, np) = tile_fn(level, &cv).expect("a stem's tile kernel");
                let img = vec![0.0; 224 * 224 * 3];
                let st = Stem {
                    cv: &cv,
                    weight: cv.patches.as_ref().expect("packed"),
                    img: &img,
                    h: 224,
                    w: 224,
                };
                let (ho, wo) = cv.out_hw(224, 224);
                // The first row and column read the padding; the second ones do not.
                assert!(!inside(&st, [0, 1, np]) && !inside(&st, [2, 0, np]));
                assert!(inside(&st, [ho / 2, wo / 2, np]) && inside(&st, [3, 3, np]));
                assert!(!inside(&st, [ho / 2, wo - np + 1, np]));
            }
            assert!(tile_fn(level, &conv(4, 32, 3, 2)).is_none());
            assert!(tile_fn(level, &conv(3, 24, 3, 2)).is_none());
            assert!(tile_fn(level, &conv(3, 32, 5, 2)).is_none());
        }
        assert!(tile_fn(SimdLevel::Portable, &conv(3, 32, 3, 2)).is_none());
    }
}
