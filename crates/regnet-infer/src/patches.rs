//! Dense convolutions over few input channels (the image stems: 1 to 7 channels, 3x3 or
//! 7x7): each span of output pixels has its windows gathered into rows of `k * k * c_in`
//! values in a small per-task buffer (im2col, a span at a time, so it stays in L1), which
//! the packed GEMM of `packed.rs` then multiplies by the weight, epilogue included. The
//! direct kernel streamed only `c_in` values per tap between pointer set-ups, and ran each
//! group of 8 or 16 output channels over the span again: RegNetX-400MF's 3->32 stem at 224
//! ran at 42 GMAC/s at AVX2 and 102 at AVX-512, against 108-240 for the 1x1 convs.

use std::ops::Range;

use crate::direct::DirectConv;
use crate::packed::{self, Packed, PackedGemm, SharedOut};
use crate::parallel;
use crate::simd::SimdLevel;
use crate::stem;

/// Input channels below which a dense conv runs here (at and above a vector's width the
/// register-blocked kernel of `blocked.rs` streams whole vectors of channels).
const MAX_C_IN: usize = 8;

/// Most output pixels per task: 192 windows of a 7x7 stem (147 values) are 110 KiB.
const MAX_SPAN: usize = 192;

/// The weight of `cv` packed for [`packed::run`] in panels of `panel` channels, when `cv`
/// is a dense conv over fewer than [`MAX_C_IN`] input channels and `c_out` is a multiple of
/// 16.
pub(crate) fn pack(cv: &DirectConv, panel: usize) -> Option<Packed> {
    let dense = cv.groups == 1 && !cv.depthwise && cv.c_in < MAX_C_IN;
    // A dense weight `[ky][kx][ci][co]` is already `[k * k * c_in][c_out]`, row `(ky * k +
    // kx) * c_in + ci`: the order in which `gather` lays out a window.
    (dense && cv.c_out.is_multiple_of(16))
        .then(|| Packed::new(&cv.weight, cv.k * cv.k * cv.c_in, cv.c_out, panel))
}

/// Runs `cv` on `x` (`[n, h, w, c_in]`) into `out` with its packed weight `weight` (from
/// [`pack`]); returns false (doing nothing) where `level` has no packed kernel.
pub(crate) fn run(
    level: SimdLevel,
    cv: &DirectConv,
    weight: &Packed,
    x: &[f32],
    [h, w]: [usize; 2],
    out: &mut [f32],
    residual: Option<&[f32]>,
) -> bool {
    if !packed::has_kernel(level) {
        return false;
    }
    let (ho, wo) = cv.out_hw(h, w);
    let g = PackedGemm {
        packed: weight,
        bias: &cv.bias,
        c_in: cv.k * cv.k * cv.c_in,
        ep: cv.ep,
    };
    let img_len = ho * wo * cv.c_out;
    let threads = rayon::current_num_threads().max(1);
    // About 4 spans per thread, whole tiles of 8 pixels, within one image.
    let span = (out.len() / cv.c_out)
        .div_ceil(threads * 4)
        .next_multiple_of(8)
        .clamp(8, MAX_SPAN);
    let tiles = stem::tile_fn(level, cv);
    parallel::for_each_span_init(out, img_len, span * cv.c_out, Vec::new, |buf, b, i, o| {
        let img = &x[b * h * w * cv.c_in..][..h * w * cv.c_in];
        let start = b * img_len + i * span * cv.c_out;
        let res = residual.map(|rs| &rs[start..start + o.len()]);
        let task = Task {
            cv,
            g: &g,
            img,
            hw: [h, w, wo],
            p0: i * span,
        };
        match tiles {
            Some(f) => run_tiles(level, &task, f, buf, o, res),
            None => gathered(level, &task, 0..o.len() / cv.c_out, buf, o, res),
        }
    });
    true
}

/// What the parts of one task share: the conv, its GEMM, the image, `[h, w, wo]` and the raster
/// index of the task's first output pixel.
struct Task<'a> {
    cv: &'a DirectConv,
    g: &'a PackedGemm<'a>,
    img: &'a [f32],
    hw: [usize; 3],
    p0: usize,
}

/// A task's output pixels: whole tiles of `np` pixels whose windows lie inside the image
/// with `tile`, the pixels between them gathered.
fn run_tiles(
    level: SimdLevel,
    t: &Task,
    (tile, np): (stem::TileFn, usize),
    buf: &mut Vec<f32>,
    o: &mut [f32],
    res: Option<&[f32]>,
) {
    let cv = t.cv;
    let [h, w, wo] = t.hw;
    let st = stem::Stem {
        cv,
        weight: t.g.packed,
        img: t.img,
        h,
        w,
    };
    let pixels = o.len() / cv.c_out;
    let (mut p, mut pending) = (0, 0);
    while p < pixels {
        let (oy, ox) = ((t.p0 + p) / wo, (t.p0 + p) % wo);
        if p + np > pixels || ox + np > wo || !stem::inside(&st, [oy, ox, np]) {
            p += 1;
            continue;
        }
        if pending < p {
            gathered(level, t, pending..p, buf, o, res);
        }
        let at = ((oy * cv.stride - cv.pad) * w + ox * cv.stride - cv.pad) * cv.c_in;
        let range = p * cv.c_out..(p + np) * cv.c_out;
        tile(&st, at, &mut o[range.clone()], res.map(|r| &r[range]));
        p += np;
        pending = p;
    }
    if pending < pixels {
        gathered(level, t, pending..pixels, buf, o, res);
    }
}

/// Pixels `px` of a task (offsets from its first), windows gathered into `buf`, then the
/// packed GEMM.
fn gathered(
    level: SimdLevel,
    t: &Task,
    px: Range<usize>,
    buf: &mut Vec<f32>,
    o: &mut [f32],
    res: Option<&[f32]>,
) {
    let cv = t.cv;
    let [h, w, wo] = t.hw;
    buf.resize(px.len() * t.g.c_in, 0.0);
    gather(cv, t.img, [h, w, wo, t.p0 + px.start], buf);
    let range = px.start * cv.c_out..px.end * cv.c_out;
    let res = res.map(|r| &r[range.clone()]);
    // SAFETY: `o` is this task's alone and outlives the call; `level` has a packed kernel
    // (checked by `run`).
    unsafe {
        packed::run(
            level,
            t.g,
            buf,
            SharedOut::new(&mut o[range]),
            res,
            0..cv.c_out,
        )
    };
}

/// The windows of output pixels `p0..` (raster order, `buf.len() / (k * k * c_in)` of
/// them) of one image `img` (`[h, w, c_in]`), a row each, zeros where a tap falls outside.
fn gather(cv: &DirectConv, img: &[f32], hwp: [usize; 4], buf: &mut [f32]) {
    // A window row (k pixels' channels) copied at a length known at compile time: a call
    // to `memcpy` per row of 3 or 9 values cost as much as the GEMM.
    match cv.k * cv.c_in {
        3 => gather_rows::<3>(cv, img, hwp, buf),
        9 => gather_rows::<9>(cv, img, hwp, buf),
        21 => gather_rows::<21>(cv, img, hwp, buf),
        _ => gather_rows::<0>(cv, img, hwp, buf),
    }
}

/// [`gather`] for window rows of `KC` values (`k * c_in`; 0: any).
#[inline(always)]
fn gather_rows<const KC: usize>(
    cv: &DirectConv,
    img: &[f32],
    [h, w, wo, p0]: [usize; 4],
    buf: &mut [f32],
) {
    let (k, c) = (cv.k, cv.c_in);
    let kc = if KC == 0 { k * c } else { KC };
    debug_assert_eq!(kc, k * c);
    let (mut oy, mut ox) = (p0 / wo, p0 % wo);
    for win in buf.chunks_exact_mut(k * kc) {
        // Top-left corner; "negative" (wrapped) in the padding.
        let (y0, x0) = (
            (oy * cv.stride).wrapping_sub(cv.pad),
            (ox * cv.stride).wrapping_sub(cv.pad),
        );
        let cols_inside = x0 < w && w - x0 >= k;
        for (ky, dst) in win.chunks_exact_mut(kc).enumerate() {
            let y = y0.wrapping_add(ky);
            if y >= h {
                dst.fill(0.0);
            } else if cols_inside {
                // The common case: one contiguous run of k pixels' channels.
                dst[..kc].copy_from_slice(&img[(y * w + x0) * c..][..kc]);
            } else {
                for (kx, d) in dst.chunks_exact_mut(c).enumerate() {
                    let x = x0.wrapping_add(kx);
                    if x < w {
                        d.copy_from_slice(&img[(y * w + x) * c..][..c]);
                    } else {
                        d.fill(0.0);
                    }
                }
            }
        }
        ox += 1;
        if ox == wo {
            (oy, ox) = (oy + 1, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::direct::DirectConv;
    use crate::epilogue::Epilogue;
    use crate::packed;
    use crate::simd::SimdLevel;
    use crate::test_support::{epilogues, plain_conv, val};

    /// Stem-like convs (1 to 7 input channels, 3x3 and 7x7, strides 1 and 2, odd sizes,
    /// maps smaller than the kernel, batches of 1 and 3) against their definition at every
    /// level this CPU has: the im2col path (and its tiles straight from the image, for 3
    /// channels) where there is a packed kernel, the direct kernel elsewhere, all with every
    /// epilogue.
    #[test]
    fn few_channel_convs_match_their_definition_at_every_level() {
        let mut ran = 0;
        for &(n, h, w, c, c_out, k, stride) in &[
            (1, 17, 23, 3, 32, 3, 2),
            (3, 9, 8, 3, 16, 3, 1),
            (1, 13, 11, 1, 48, 3, 2),
            (2, 21, 19, 3, 64, 7, 2),
            (1, 5, 6, 7, 32, 7, 2),
            (1, 2, 3, 4, 16, 3, 1),
            // Rows wide enough for whole tiles straight from the image (stem.rs) at every
            // level, with a last panel of 16 channels (48), and tails of every length.
            (1, 40, 57, 3, 48, 3, 2),
            (2, 19, 30, 3, 32, 3, 1),
            (1, 33, 70, 3, 64, 7, 2),
        ] {
            for (e, ep) in epilogues().into_iter().enumerate() {
                let wt: Vec<f32> = (0..c_out * c * k * k).map(|i| val(i, 1 + e)).collect();
                let bias: Vec<f32> = (0..c_out).map(|i| val(i, 2)).collect();
                let cv = DirectConv::new(&wt, bias, [c, k, stride, 1], ep);
                assert!(cv.patches.is_some(), "{c}->{c_out} k{k}: packed for im2col");
                let mut cv = cv;
                // Where a level has no packed kernel, the direct one, not Winograd's (whose
                // F(4x4) has its own bound, in `winograd.rs`).
                cv.winograd = None;
                let x: Vec<f32> = (0..n * h * w * c).map(|i| val(i, 3)).collect();
                let mut want = plain_conv(&cv, &wt, &x, [n, h, w]);
                let res: Vec<f32> = (0..want.len()).map(|i| val(i, 4)).collect();
                let residual = ep.residual.then_some(&res[..]);
                for (j, v) in want.iter_mut().enumerate() {
                    *v = ep.finish(*v, if ep.residual { res[j] } else { 0.0 });
                }
                for level in SimdLevel::available() {
                    // Packed for the level, as `CompiledNet` packs it (the tiles straight
                    // from the image run only on their level's panels).
                    cv.repack(packed::panel(level));
                    let mut got = vec![f32::NAN; want.len()];
                    cv.run(level, &x, [n, h, w], &mut got, residual);
                    for (j, (g, v)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (g - v).abs() <= 1e-5 * (1.0 + v.abs()),
                            "{n}x{h}x{w}x{c} -> {c_out} k{k} s{stride} {ep:?} at {level}, \
                             value {j}: {g} vs {v}"
                        );
                    }
                    ran += 1;
                }
            }
        }
        assert!(ran >= 12);
    }

    /// Grouped convs, wide inputs and output widths that do not fill the packed panels keep
    /// the direct kernels.
    #[test]
    fn only_dense_few_channel_convs_are_packed() {
        let conv = |c: usize, c_out: usize, groups: usize| {
            let wt = vec![0.5; c_out * (c / groups) * 9];
            DirectConv::new(
                &wt,
                vec![0.0; c_out],
                [c, 3, 1, groups],
                Epilogue::default(),
            )
        };
        assert!(conv(3, 32, 1).patches.is_some());
        assert!(conv(3, 24, 1).patches.is_none());
        assert!(conv(8, 32, 1).patches.is_none());
        assert!(conv(4, 32, 2).patches.is_none());
    }
}
