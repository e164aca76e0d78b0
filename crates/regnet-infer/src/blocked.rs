//! The register-blocked kernel for grouped and dense k x k convolutions whose output group
//! width is a multiple of the vector width (RegNet's group widths are multiples of 8).
//!
//! A register tile is `NB` output pixels times `NV` output vectors ("slots"). When a group is
//! exactly one vector wide (`cin_g = cout_g = LANES`, 3x3), the slots are `NV` consecutive
//! groups: each tile still has `NV * NB` independent accumulators, and every operand's address
//! is a pixel pointer or the weight pointer plus a constant. Otherwise the slots are `NV`
//! vectors of one group's output channels, and each broadcast input value feeds `NV` FMAs.
//! Where each pixel's taps read (the input pixel, or zeros outside the image) is computed once
//! per span of pixels, not per tile and tap, so border pixels cost the same as interior ones.

use crate::direct::{DirectConv, store};
use crate::prefetch;
use crate::simd::SimdLevel;
use crate::vector::{F32x4, Vf};

/// What every tile of a span shares.
struct Span<'a> {
    cv: &'a DirectConv,
    /// `table[t * np + q]`: where pixel `q` of the span reads tap `t` (`c_in` readable values).
    table: &'a [*const f32],
    /// Pixels in the span.
    np: usize,
    /// Whether each tile prefetches the next one's input (see [`prefetch_next`]).
    prefetch: bool,
}

/// Where one slot block starts: its first input channel, first output channel and the offset
/// of its first weight (tap 0, input channel 0, slot 0).
#[derive(Clone, Copy)]
struct Slots {
    in_off: usize,
    co: usize,
    w0: usize,
}

/// The tap table of the span of `np` output pixels from raster index `p0` (see [`Span`]).
fn tap_table(
    cv: &DirectConv,
    img: &[f32],
    [h, w, wo, p0]: [usize; 4],
    np: usize,
) -> Vec<*const f32> {
    let (k, s, p, c) = (cv.k, cv.stride, cv.pad, cv.c_in);
    assert!(img.len() >= h * w * c && cv.zeros.len() >= c);
    let mut table = vec![cv.zeros.as_ptr(); k * k * np];
    let (mut oy, mut ox) = (p0 / wo, p0 % wo);
    for q in 0..np {
        let (y0, x0) = ((oy * s).wrapping_sub(p), (ox * s).wrapping_sub(p));
        if y0.wrapping_add(k) <= h && x0.wrapping_add(k) <= w && y0 < h && x0 < w {
            // Every tap inside (most pixels): no per-tap checks, which were most of this
            // function's time.
            let base = img.as_ptr().wrapping_add((y0 * w + x0) * c);
            for ky in 0..k {
                for kx in 0..k {
                    table[(ky * k + kx) * np + q] = base.wrapping_add((ky * w + kx) * c);
                }
            }
        } else {
            edge_taps(&mut table, img, [h, w, c, k, np, q], [y0, x0]);
        }
        ox += 1;
        if ox == wo {
            (ox, oy) = (0, oy + 1);
        }
    }
    table
}

/// The taps of border pixel `q` whose window starts at `[y0, x0]` (wrapped below zero):
/// those inside the image point into `img`; the others keep the zeros.
fn edge_taps(
    table: &mut [*const f32],
    img: &[f32],
    [h, w, c, k, np, q]: [usize; 6],
    [y0, x0]: [usize; 2],
) {
    for ky in 0..k {
        let iy = y0.wrapping_add(ky);
        for kx in (0..k).filter(|_| iy < h) {
            let ix = x0.wrapping_add(kx);
            if ix < w {
                // Inside the image (iy < h, ix < w; img holds h * w pixels of c values).
                table[(ky * k + kx) * np + q] = img.as_ptr().wrapping_add((iy * w + ix) * c);
            }
        }
    }
}

/// One tile: pixels `q0..q0 + NB` of the span times the `NV` slots of `sl`, finished and stored.
/// `MULTI`: the slots are consecutive groups one vector wide (3x3 kernel); otherwise vectors of
/// one group.
#[inline(always)]
fn tile<V: Vf, const NV: usize, const NB: usize, const MULTI: bool>(
    sp: &Span,
    q0: usize,
    sl: Slots,
    out: &mut [f32],
    res: Option<&[f32]>,
) {
    let cv = sp.cv;
    let (kk, lanes) = (cv.k * cv.k, V::LANES);
    let (cin_g, cout_g) = (cv.c_in / cv.groups, cv.c_out / cv.groups);
    // Slot and input-channel strides of the weight `[g][tap][ci][co]`, and the input offset
    // of a slot.
    let (wslot, wci, xslot) = if MULTI {
        (9 * lanes * lanes, lanes, lanes)
    } else {
        (lanes, cout_g, 0)
    };
    let last_w = sl.w0 + (NV - 1) * wslot + (kk - 1) * cin_g * cout_g + (cin_g - 1) * wci + lanes;
    assert!(last_w <= cv.weight.len() && sl.co + NV * lanes <= cv.bias.len());
    assert!(sl.in_off + (NV - 1) * xslot + cin_g <= cv.c_in && q0 + NB <= sp.np);
    assert!(!MULTI || (cv.k == 3 && cin_g == lanes && cout_g == lanes));
    assert_eq!(sp.table.len(), kk * sp.np);
    // SAFETY: co + NV * LANES <= bias.len() (asserted).
    let mut acc: [[V; NB]; NV] =
        std::array::from_fn(|v| [unsafe { V::load(cv.bias.as_ptr().add(sl.co + v * lanes)) }; NB]);
    let w0 = cv.weight[sl.w0..].as_ptr();
    if sp.prefetch {
        prefetch_next::<NB>(sp, q0 + NB, sl.in_off);
    }
    for t in 0..kk {
        // Every table entry points at c_in readable values, and the channels read from it,
        // in_off + slot offset + ci, stay below c_in (asserted).
        let row = &sp.table[t * sp.np + q0..][..NB];
        let xs: [*const f32; NB] = std::array::from_fn(|q| row[q].wrapping_add(sl.in_off));
        let mut wp = w0.wrapping_add(t * cin_g * cout_g);
        for ci in 0..cin_g {
            // SAFETY: the last weight read is below last_w <= weight.len() (asserted).
            let wv: [V; NV] = std::array::from_fn(|v| unsafe { V::load(wp.add(v * wslot)) });
            for q in 0..NB {
                if MULTI {
                    for v in 0..NV {
                        // SAFETY: see the table note above.
                        let x = V::splat(unsafe { *xs[q].add(ci + v * xslot) });
                        acc[v][q] = x.fma(wv[v], acc[v][q]);
                    }
                } else {
                    // SAFETY: as above.
                    let x = V::splat(unsafe { *xs[q].add(ci) });
                    for v in 0..NV {
                        acc[v][q] = x.fma(wv[v], acc[v][q]);
                    }
                }
            }
            wp = wp.wrapping_add(wci);
        }
    }
    for (v, a) in acc.iter().enumerate() {
        store::<V, NB>(
            cv.ep,
            a,
            q0 * cv.c_out + sl.co + v * lanes,
            cv.c_out,
            out,
            res,
        );
    }
}

/// Asks for the first cache line of every tap of pixels `next..next + NB` (from channel
/// `in_off`), if the span has them: the tile about to run after this one. Where a conv's
/// input is larger than the L2 (the stride-2 convs that open each stage read 3-4 MB just
/// written by the layer before), its taps otherwise missed the caches one after another:
/// at AVX2, RegNetX-400MF's 160-channel stride-2 conv ran at 47-90 GMAC/s in the network
/// against 107-111 with this (101-115 in a test harness with its input cached), and
/// RegNetY-800MF's 64-channel one at 112x112 at 63-90 against 108-110. A group's channels of
/// a pixel are 64 bytes (16 channels) or less in RegNets, so one line per tap.
#[inline(always)]
fn prefetch_next<const NB: usize>(sp: &Span, next: usize, in_off: usize) {
    if next + NB > sp.np {
        return;
    }
    for t in 0..sp.cv.k * sp.cv.k {
        for &p in &sp.table[t * sp.np + next..][..NB] {
            prefetch::line(p.wrapping_add(in_off));
        }
    }
}

/// Every pixel of the span for one slot block: tiles of `NB` pixels, then 4, 2 and 1.
#[inline(always)]
fn pixels<V: Vf, const NV: usize, const NB: usize, const MULTI: bool>(
    sp: &Span,
    sl: Slots,
    out: &mut [f32],
    res: Option<&[f32]>,
) {
    let mut q = 0;
    while q + NB <= sp.np {
        tile::<V, NV, NB, MULTI>(sp, q, sl, out, res);
        q += NB;
    }
    while q + 4 <= sp.np {
        tile::<V, NV, 4, MULTI>(sp, q, sl, out, res);
        q += 4;
    }
    while q + 2 <= sp.np {
        tile::<V, NV, 2, MULTI>(sp, q, sl, out, res);
        q += 2;
    }
    if q < sp.np {
        tile::<V, NV, 1, MULTI>(sp, q, sl, out, res);
    }
}

/// A span at one vector type: slot blocks of up to `NVMAX` slots, `NBn` pixels per tile for
/// blocks of `n` slots (about as many accumulators as the registers hold).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn span_imp<
    V: Vf,
    const MULTI: bool,
    const NVMAX: usize,
    const NB1: usize,
    const NB2: usize,
    const NB3: usize,
    const NB4: usize,
>(
    cv: &DirectConv,
    img: &[f32],
    hwp: [usize; 4],
    out: &mut [f32],
    res: Option<&[f32]>,
    prefetch: bool,
) {
    assert!(out.len().is_multiple_of(cv.c_out) && res.is_none_or(|r| r.len() == out.len()));
    let np = out.len() / cv.c_out;
    let table = tap_table(cv, img, hwp, np);
    let sp = Span {
        cv,
        table: &table,
        np,
        prefetch,
    };
    let lanes = V::LANES;
    let (cin_g, cout_g, kk) = (cv.c_in / cv.groups, cv.c_out / cv.groups, cv.k * cv.k);
    // A plain function, not a closure: closures do not inherit `#[target_feature]`.
    #[inline(always)]
    fn run<
        V: Vf,
        const MULTI: bool,
        const NB1: usize,
        const NB2: usize,
        const NB3: usize,
        const NB4: usize,
    >(
        nv: usize,
        sp: &Span,
        sl: Slots,
        out: &mut [f32],
        res: Option<&[f32]>,
    ) {
        match nv {
            1 => pixels::<V, 1, NB1, MULTI>(sp, sl, out, res),
            2 => pixels::<V, 2, NB2, MULTI>(sp, sl, out, res),
            3 => pixels::<V, 3, NB3, MULTI>(sp, sl, out, res),
            _ => pixels::<V, 4, NB4, MULTI>(sp, sl, out, res),
        }
    }
    if MULTI {
        let mut g0 = 0;
        while g0 < cv.groups {
            let nv = NVMAX.min(cv.groups - g0);
            let sl = Slots {
                in_off: g0 * lanes,
                co: g0 * lanes,
                w0: g0 * 9 * lanes * lanes,
            };
            run::<V, MULTI, NB1, NB2, NB3, NB4>(nv, &sp, sl, out, res);
            g0 += nv;
        }
        return;
    }
    let chunks = cout_g / lanes;
    for g in 0..cv.groups {
        let mut c = 0;
        while c < chunks {
            let nv = NVMAX.min(chunks - c);
            let sl = Slots {
                in_off: g * cin_g,
                co: g * cout_g + c * lanes,
                w0: g * kk * cin_g * cout_g + c * lanes,
            };
            run::<V, MULTI, NB1, NB2, NB3, NB4>(nv, &sp, sl, out, res);
            c += nv;
        }
    }
}

/// Runs a span of output pixels with the blocked kernel if the conv's shape suits it at
/// `level` (output group width a multiple of a vector width); returns false, doing nothing,
/// otherwise. `hwp` = `[h, w, wo, p0]`: input size, output width, first pixel's raster index.
/// `prefetch`: whether tiles prefetch the next tile's input ([`prefetch_next`]).
pub(crate) fn blocked_span(
    level: SimdLevel,
    cv: &DirectConv,
    img: &[f32],
    hwp: [usize; 4],
    out: &mut [f32],
    res: Option<&[f32]>,
    prefetch: bool,
) -> bool {
    let (cin_g, cout_g) = (cv.c_in / cv.groups, cv.c_out / cv.groups);
    let multi = |lanes: usize| cv.k == 3 && cin_g == lanes && cout_g == lanes;
    #[cfg(target_arch = "x86_64")]
    {
        use crate::vector::{F32x8, F32x16};
        // One entry point per (target features, vector type, register blocking), each
        // choosing the multi-group variant at run time.
        macro_rules! span_at {
            ($name:ident, $features:literal, $v:ty, $a:literal, $b:literal, $c:literal, $d:literal, $e:literal) => {
                #[target_feature(enable = $features)]
                fn $name(
                    cv: &DirectConv,
                    img: &[f32],
                    hwp: [usize; 4],
                    out: &mut [f32],
                    res: Option<&[f32]>,
                    multi: bool,
                    pf: bool,
                ) {
                    if multi {
                        span_imp::<$v, true, $a, $b, $c, $d, $e>(cv, img, hwp, out, res, pf)
                    } else {
                        span_imp::<$v, false, $a, $b, $c, $d, $e>(cv, img, hwp, out, res, pf)
                    }
                }
            };
        }
        // AVX-512 has 32 vector registers: 24 accumulators. AVX2 has 16: 12 accumulators.
        // At most 2 slots of 16: 4 16-channel groups' weights (37 KB) and their inputs
        // overflowed the 48 KB L1, 3 (27 KB) nearly filled it. One thread, RegNetX-400MF's
        // grouped 3x3s at batch 8: on a Zen 4, 3 slots of 8 pixels ran 5-10 % faster than 4
        // of 6, and 2 of 10 or 12 no faster than 3; on an Intel Xeon (two 512-bit FMA
        // units), 2 of 12 took 13.9-14.3 ms per forward against 14.5 for 3 of 8, and 2 of
        // 14 (14 pixel pointers) was slower on two threads.
        span_at!(v4_16, "avx512f,avx512vl,avx2,fma", F32x16, 2, 8, 12, 8, 6);
        span_at!(v4_8, "avx512f,avx512vl,avx2,fma", F32x8, 4, 8, 8, 8, 6);
        span_at!(v3_8, "avx2,fma", F32x8, 3, 8, 6, 4, 1);
        span_at!(v3_4, "avx2,fma", F32x4, 3, 8, 6, 4, 1);
        // SAFETY (all four): a CompiledNet only holds a level the CPU supports.
        match level {
            SimdLevel::Avx512 if cout_g.is_multiple_of(16) => {
                unsafe { v4_16(cv, img, hwp, out, res, multi(16), prefetch) };
                return true;
            }
            SimdLevel::Avx512 | SimdLevel::Avx2 if cout_g.is_multiple_of(8) => {
                if level == SimdLevel::Avx512 {
                    unsafe { v4_8(cv, img, hwp, out, res, multi(8), prefetch) };
                } else {
                    unsafe { v3_8(cv, img, hwp, out, res, multi(8), prefetch) };
                }
                return true;
            }
            SimdLevel::Avx2 if cout_g.is_multiple_of(4) => {
                unsafe { v3_4(cv, img, hwp, out, res, multi(4), prefetch) };
                return true;
            }
            SimdLevel::Avx512 | SimdLevel::Avx2 => return false,
            SimdLevel::Portable => {}
        }
    }
    let _ = level;
    if !cout_g.is_multiple_of(4) {
        return false;
    }
    if multi(4) {
        span_imp::<F32x4, true, 3, 8, 6, 4, 1>(cv, img, hwp, out, res, prefetch);
    } else {
        span_imp::<F32x4, false, 3, 8, 6, 4, 1>(cv, img, hwp, out, res, prefetch);
    }
    true
}

#[cfg(test)]
mod tests {
    use crate::cache;
    use crate::direct::DirectConv;
    use crate::simd::SimdLevel;
    use crate::test_support::{epilogues, plain_conv, val};

    /// Grouped 3x3 convs (16-channel groups, strides 1 and 2) over inputs larger than the L2,
    /// where the tiles prefetch ([`super::prefetch_next`]), against their definition at every
    /// level this CPU has, with the residual epilogue.
    #[test]
    fn grouped_convs_over_inputs_larger_than_the_l2_match_their_definition() {
        let ep = epilogues()[2];
        let (c, groups) = (64, 4);
        // Square maps just larger than the L2, 2 images; a bounded size for a large L2.
        let pixels = (cache::l2_bytes() / (4 * c) + 1).min(1 << 16);
        let side = pixels.isqrt() + 1;
        let (n, h, w) = (2, side, side + 3);
        for stride in [1, 2] {
            let wt: Vec<f32> = (0..c * (c / groups) * 9).map(|i| val(i, 5)).collect();
            let bias: Vec<f32> = (0..c).map(|i| val(i, 6)).collect();
            let mut cv = DirectConv::new(&wt, bias, [c, 3, stride, groups], ep);
            // This kernel's, not Winograd's (`winograd.rs` has its own tests).
            cv.winograd = None;
            let x: Vec<f32> = (0..n * h * w * c).map(|i| val(i, 7)).collect();
            assert!(std::mem::size_of_val(&x[..]) > cache::l2_bytes());
            let mut want = plain_conv(&cv, &wt, &x, [n, h, w]);
            let res: Vec<f32> = (0..want.len()).map(|i| val(i, 8)).collect();
            for (v, r) in want.iter_mut().zip(&res) {
                *v = ep.finish(*v, *r);
            }
            for level in SimdLevel::available() {
                let mut got = vec![f32::NAN; want.len()];
                cv.run(level, &x, [n, h, w], &mut got, Some(&res));
                for (j, (g, v)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - v).abs() <= 1e-5 * (1.0 + v.abs()),
                        "stride {stride} at {level}, value {j}: {g} vs {v}"
                    );
                }
            }
        }
    }
}
