//! Direct k x k convolutions in NHWC: grouped and dense 3x3 (and 5x5, 7x7) convs and
//! depthwise convs (dense convs over fewer than 8 input channels, the stems, go to the
//! im2col path of `patches.rs` where there is a packed kernel). Group widths that are a
//! multiple of a vector width go to the register-blocked kernel of `blocked.rs`; the rest to
//! the micro-kernel here, which keeps a block of output pixels times 16 (or 8) output
//! channels of one group in registers and streams the group's input channels, so each
//! weight vector loaded serves several pixels; the epilogue is applied before the single
//! store.

use rayon::prelude::*;

use crate::blocked::blocked_span;
use crate::buffer::{self, Buf};
use crate::cache;
use crate::epilogue::{Act, Epilogue, activate};
use crate::packed::{self, Packed};
use crate::parallel;
use crate::patches;
use crate::simd::SimdLevel;
use crate::vector::{F32x4, Vf};
use crate::winograd;

/// A k x k convolution with "same" padding and its BN folded in.
#[derive(Clone, Debug)]
pub(crate) struct DirectConv {
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel size.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Padding on each side.
    pub pad: usize,
    /// Groups.
    pub groups: usize,
    /// Depthwise (one input and one output channel per group): weight `[ky][kx][c]`.
    /// Otherwise the weight is `[g][ky][kx][ci][co]` (ci, co within the group).
    pub depthwise: bool,
    /// Packed weight.
    pub weight: Buf,
    /// `c_in` zeros: what taps outside the image read.
    pub zeros: Vec<f32>,
    /// Bias `[c_out]`.
    pub bias: Vec<f32>,
    /// Fused tail.
    pub ep: Epilogue,
    /// The weight packed for the im2col path of `patches.rs` (dense convs over few input
    /// channels: the stems).
    pub patches: Option<Packed>,
    /// The weight transformed for `winograd.rs` (stride-1 3x3 convs with small groups).
    pub winograd: Option<Box<winograd::Transformed>>,
}

impl DirectConv {
    /// Packs a PyTorch weight `[c_out, c_in / groups, k, k]`.
    pub fn new(
        weight: &[f32],
        bias: Vec<f32>,
        [c_in, k, stride, groups]: [usize; 4],
        ep: Epilogue,
    ) -> Self {
        let c_out = bias.len();
        let (cin_g, cout_g) = (c_in / groups, c_out / groups);
        let depthwise = cin_g == 1 && cout_g == 1;
        let mut w = buffer::zeroed(weight.len());
        for o in 0..c_out {
            let (g, co) = (o / cout_g, o % cout_g);
            for ci in 0..cin_g {
                for t in 0..k * k {
                    let v = weight[(o * cin_g + ci) * k * k + t];
                    let dst = if depthwise {
                        t * c_out + o
                    } else {
                        ((g * k * k + t) * cin_g + ci) * cout_g + co
                    };
                    w[dst] = v;
                }
            }
        }
        let mut cv = DirectConv {
            c_in,
            c_out,
            k,
            stride,
            pad: (k - 1) / 2,
            groups,
            depthwise,
            weight: w,
            zeros: vec![0.0; c_in],
            bias,
            ep,
            patches: None,
            winograd: None,
        };
        cv.repack(packed::panel(SimdLevel::detect()));
        cv.winograd = winograd::pack(&cv, weight).map(Box::new);
        cv
    }

    /// Packs the weight of the im2col path (if it has one) in panels of `panel` channels
    /// (see [`packed::panel`]), unless it already is.
    pub fn repack(&mut self, panel: usize) {
        if self.patches.as_ref().is_none_or(|p| p.panel() != panel) {
            self.patches = patches::pack(self, panel);
        }
    }

    /// Output height and width for an `h` x `w` input.
    pub fn out_hw(&self, h: usize, w: usize) -> (usize, usize) {
        let f = |d: usize| (d + 2 * self.pad - self.k) / self.stride + 1;
        (f(h), f(w))
    }

    /// Runs on `x` (`[n, h, w, c_in]`) into `out` (`[n, ho, wo, c_out]`), one task per
    /// output row.
    pub fn run(
        &self,
        level: SimdLevel,
        x: &[f32],
        [_, h, w]: [usize; 3],
        out: &mut [f32],
        residual: Option<&[f32]>,
    ) {
        if let Some(p) = &self.patches
            && patches::run(level, self, p, x, [h, w], out, residual)
        {
            return;
        }
        if let Some(u) = &self.winograd
            && winograd::run(level, self, u, x, [h, w], out, residual)
        {
            return;
        }
        let (ho, wo) = self.out_hw(h, w);
        if self.depthwise {
            let row_len = wo * self.c_out;
            out.par_chunks_mut(row_len).enumerate().for_each(|(r, o)| {
                let (b, oy) = (r / ho, r % ho);
                let img = &x[b * h * w * self.c_in..][..h * w * self.c_in];
                let res = residual.map(|rs| &rs[r * row_len..][..row_len]);
                depthwise_row(level, self, img, [h, w, oy], o, res);
            });
            return;
        }
        // Spans of output pixels in raster order, within one image, so that a register
        // block of pixels can run across output rows (a 7x7 map is 49 pixels, not 7 rows
        // of 7); about 4 spans per thread.
        let n = out.len() / (ho * wo * self.c_out);
        let threads = rayon::current_num_threads().max(1);
        let span = span_len(n, ho * wo, threads);
        let img_len = ho * wo * self.c_out;
        // An input larger than the L2 is read from further out: see `prefetch_next`.
        let prefetch = std::mem::size_of_val(x) > cache::l2_bytes();
        parallel::for_each_span(out, img_len, span * self.c_out, |b, i, o| {
            let img = &x[b * h * w * self.c_in..][..h * w * self.c_in];
            let start = b * img_len + i * span * self.c_out;
            let res = residual.map(|rs| &rs[start..start + o.len()]);
            let hwp = [h, w, wo, i * span];
            if !blocked_span(level, self, img, hwp, o, res, prefetch) {
                grouped_span(level, self, img, hwp, o, res);
            }
        });
    }
}

/// Output pixels per task for `n` images of `pixels` each on `threads` threads: about 4
/// spans per thread, whole register tiles of 8 pixels, at most 192. Where that leaves few
/// spans (a 14x14 map at batch 1: 7 spans of 32, 4 for one thread and 3 for the other),
/// the span length instead minimises the largest thread's share (4 spans of 49), the short
/// last tiles costing less than the wait.
fn span_len(n: usize, pixels: usize, threads: usize) -> usize {
    let span = (n * pixels)
        .div_ceil(threads * 4)
        .next_multiple_of(8)
        .clamp(8, 192);
    let spans = |span: usize| n * pixels.div_ceil(span);
    if threads == 1 || spans(span) >= 8 * threads {
        return span;
    }
    // The largest share, spans being claimed in turn; then the longer span.
    let share = |span: usize| spans(span).div_ceil(threads) * span.min(pixels);
    let candidates = (1..=4 * threads).map(|per_image| pixels.div_ceil(per_image));
    candidates
        .chain([span])
        .min_by_key(|&s| (share(s), usize::MAX - s))
        .unwrap_or(span)
}

/// What every pixel block of one span shares.
struct Span<'a> {
    cv: &'a DirectConv,
    img: &'a [f32],
    h: usize,
    w: usize,
    wo: usize,
    /// Raster index of the span's first output pixel.
    p0: usize,
}

/// The kernel taps `[lo, hi)` that stay inside `0..len` for output position `o`.
#[inline(always)]
fn taps(cv: &DirectConv, o: usize, len: usize) -> (usize, usize) {
    let start = o * cv.stride;
    let lo = cv.pad.saturating_sub(start);
    let hi = cv.k.min((len + cv.pad).saturating_sub(start));
    (lo, hi.max(lo))
}

/// A span of output pixels of a grouped or dense conv: per group, output channels in
/// chunks of `VB::LANES`, then `VS::LANES`, then one at a time.
#[inline(always)]
fn grouped_span_imp<VB: Vf, VS: Vf, const XB: usize>(
    cv: &DirectConv,
    img: &[f32],
    [h, w, wo, p0]: [usize; 4],
    out: &mut [f32],
    res: Option<&[f32]>,
) {
    assert_eq!(out.len() % cv.c_out, 0);
    if let Some(rs) = res {
        assert_eq!(rs.len(), out.len());
    }
    let sp = Span {
        cv,
        img,
        h,
        w,
        wo,
        p0,
    };
    let cout_g = cv.c_out / cv.groups;
    for g in 0..cv.groups {
        let mut c0 = 0;
        while c0 + VB::LANES <= cout_g {
            chunk::<VB, XB>(&sp, g, c0, out, res);
            c0 += VB::LANES;
        }
        while c0 + VS::LANES <= cout_g {
            chunk::<VS, XB>(&sp, g, c0, out, res);
            c0 += VS::LANES;
        }
        while c0 < cout_g {
            chunk::<f32, XB>(&sp, g, c0, out, res);
            c0 += 1;
        }
    }
}

/// A span of output pixels of a grouped or dense conv, at `level`.
fn grouped_span(
    level: SimdLevel,
    cv: &DirectConv,
    img: &[f32],
    hwp: [usize; 4],
    out: &mut [f32],
    res: Option<&[f32]>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::vector::{F32x8, F32x16};
        // 8 accumulators cover the FMA latency on both pipes; 12 measured ~3% slower with
        // AVX-512 (12 input pointers no longer fit the general registers and spill).
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        fn v4(cv: &DirectConv, img: &[f32], hwp: [usize; 4], out: &mut [f32], res: Option<&[f32]>) {
            grouped_span_imp::<F32x16, F32x8, 8>(cv, img, hwp, out, res)
        }
        #[target_feature(enable = "avx2,fma")]
        fn v3(cv: &DirectConv, img: &[f32], hwp: [usize; 4], out: &mut [f32], res: Option<&[f32]>) {
            grouped_span_imp::<F32x8, F32x4, 8>(cv, img, hwp, out, res)
        }
        match level {
            // SAFETY: a CompiledNet only holds a level the CPU supports.
            SimdLevel::Avx512 => return unsafe { v4(cv, img, hwp, out, res) },
            // SAFETY: as above.
            SimdLevel::Avx2 => return unsafe { v3(cv, img, hwp, out, res) },
            SimdLevel::Portable => {}
        }
    }
    let _ = level;
    grouped_span_imp::<F32x4, f32, 4>(cv, img, hwp, out, res)
}

/// Output channels `c0..c0 + V::LANES` of group `g` over the span, `XB` pixels at a time,
/// then the rest in blocks of 4, 2 and 1.
#[inline(always)]
fn chunk<V: Vf, const XB: usize>(
    sp: &Span,
    g: usize,
    c0: usize,
    out: &mut [f32],
    res: Option<&[f32]>,
) {
    let np = out.len() / sp.cv.c_out;
    let mut q = 0;
    while q + XB <= np {
        pixels::<V, XB>(sp, g, c0, q, out, res);
        q += XB;
    }
    while q + 4 <= np {
        pixels::<V, 4>(sp, g, c0, q, out, res);
        q += 4;
    }
    while q + 2 <= np {
        pixels::<V, 2>(sp, g, c0, q, out, res);
        q += 2;
    }
    if q < np {
        pixels::<V, 1>(sp, g, c0, q, out, res);
    }
}

/// `NB` output pixels from span position `q0` times `V::LANES` channels from `c0` of group
/// `g`. Taps outside the image read `zeros`.
#[inline(always)]
fn pixels<V: Vf, const NB: usize>(
    sp: &Span,
    g: usize,
    c0: usize,
    q0: usize,
    out: &mut [f32],
    res: Option<&[f32]>,
) {
    let cv = sp.cv;
    let (k, s, p) = (cv.k, cv.stride, cv.pad);
    let (cin_g, cout_g) = (cv.c_in / cv.groups, cv.c_out / cv.groups);
    let co = g * cout_g + c0;
    assert!(co + V::LANES <= cv.bias.len() && c0 + V::LANES <= cout_g);
    // SAFETY: checked just above.
    let mut acc = [unsafe { V::load(cv.bias.as_ptr().add(co)) }; NB];
    // Top-left input corner of each pixel's window (wrapping: may be "negative").
    let corner: [(usize, usize); NB] = std::array::from_fn(|q| {
        let px = sp.p0 + q0 + q;
        (
            (px / sp.wo * s).wrapping_sub(p),
            (px % sp.wo * s).wrapping_sub(p),
        )
    });
    let group_off = g * cin_g;
    // Whether every tap of every pixel is inside the image: then each tap moves all the
    // pixel pointers by one offset, with no checks.
    let inside =
        |&(y0, x0): &(usize, usize)| y0 < sp.h && sp.h - y0 >= k && x0 < sp.w && sp.w - x0 >= k;
    let interior = corner.iter().all(inside);
    let img = sp.img.as_ptr();
    let base: [usize; NB] = std::array::from_fn(|q| {
        let (y0, x0) = corner[q];
        (y0.wrapping_mul(sp.w).wrapping_add(x0))
            .wrapping_mul(cv.c_in)
            .wrapping_add(group_off)
    });
    for ky in 0..k {
        for kx in 0..k {
            let wk = &cv.weight[((g * k + ky) * k + kx) * cin_g * cout_g..][..cin_g * cout_g];
            let xs: [*const f32; NB] = if interior {
                let off = (ky * sp.w + kx) * cv.c_in;
                // SAFETY: every window lies inside the image (checked), so pixel q's tap
                // starts at base[q] + off with cin_g values of its group after it.
                std::array::from_fn(|q| unsafe { img.add(base[q] + off) })
            } else {
                tap_pointers(sp, &corner, (ky, kx), group_off, cin_g)
            };
            let wp = wk.as_ptr();
            for ci in 0..cin_g {
                // SAFETY: wk holds cin_g rows of cout_g >= c0 + LANES values; every xs[q]
                // points at cin_g readable values (an input pixel's group, or `zeros`).
                let wv = unsafe { V::load(wp.add(ci * cout_g + c0)) };
                for q in 0..NB {
                    let xv = V::splat(unsafe { *xs[q].add(ci) });
                    acc[q] = xv.fma(wv, acc[q]);
                }
            }
        }
    }
    store::<V, NB>(cv.ep, &acc, q0 * cv.c_out + co, cv.c_out, out, res);
}

/// The input pointers of tap `(ky, kx)` for pixels whose windows start at `corner`: the
/// pixel's group of channels, or `zeros` outside the image.
#[inline(always)]
fn tap_pointers<const NB: usize>(
    sp: &Span,
    corner: &[(usize, usize); NB],
    (ky, kx): (usize, usize),
    group_off: usize,
    cin_g: usize,
) -> [*const f32; NB] {
    let mut xs = [sp.cv.zeros.as_ptr(); NB];
    for (x, &(y0, x0)) in xs.iter_mut().zip(corner) {
        let (iy, ix) = (y0.wrapping_add(ky), x0.wrapping_add(kx));
        if iy < sp.h && ix < sp.w {
            *x = sp.img[(iy * sp.w + ix) * sp.cv.c_in + group_off..][..cin_g].as_ptr();
        }
    }
    xs
}

/// Applies an optional activation to a vector.
#[inline(always)]
pub(crate) fn act_vec<V: Vf>(a: Option<Act>, v: V) -> V {
    match a {
        None => v,
        Some(Act::Relu) => v.relu(),
        Some(Act::Silu) => {
            let mut tmp = [0.0f32; 16];
            // SAFETY: LANES <= 16.
            unsafe { v.store(tmp.as_mut_ptr()) };
            tmp.iter_mut().for_each(|x| *x = activate(a, *x));
            unsafe { V::load(tmp.as_ptr()) }
        }
    }
}

/// Writes finished accumulators of `NB` pixels, the first at `at`, pixels `stride` apart.
#[inline(always)]
pub(crate) fn store<V: Vf, const NB: usize>(
    ep: Epilogue,
    acc: &[V; NB],
    at: usize,
    stride: usize,
    out: &mut [f32],
    res: Option<&[f32]>,
) {
    let last = at + (NB - 1) * stride + V::LANES;
    assert!(last <= out.len() && res.is_none_or(|r| last <= r.len()));
    for (q, a) in acc.iter().enumerate() {
        let at = at + q * stride;
        let mut v = act_vec(ep.act, *a);
        if let Some(rs) = res {
            // SAFETY: in bounds, checked above.
            v = v.add(unsafe { V::load(rs.as_ptr().add(at)) });
        }
        v = act_vec(ep.act_after, v);
        // SAFETY: as above.
        unsafe { v.store(out.as_mut_ptr().add(at)) };
    }
}

/// One output row of a depthwise conv: per pixel, channels `V::LANES` at a time (then one
/// at a time), epilogue applied in registers.
#[inline(always)]
fn depthwise_row_imp<V: Vf>(
    cv: &DirectConv,
    img: &[f32],
    [h, w, oy]: [usize; 3],
    out: &mut [f32],
    res: Option<&[f32]>,
) {
    let c = cv.c_out;
    assert!(img.len() >= h * w * c && cv.weight.len() >= cv.k * cv.k * c);
    assert!(out.len().is_multiple_of(c) && res.is_none_or(|r| r.len() == out.len()));
    let ky = taps(cv, oy, h);
    for ox in 0..out.len() / c {
        let kx = taps(cv, ox, w);
        let mut c0 = 0;
        while c0 + V::LANES <= c {
            dw_vec::<V>(cv, img, [w, oy, ox, c0], (ky, kx), out, res);
            c0 += V::LANES;
        }
        while c0 < c {
            dw_vec::<f32>(cv, img, [w, oy, ox, c0], (ky, kx), out, res);
            c0 += 1;
        }
    }
}

/// One output row of a depthwise conv, at `level`.
fn depthwise_row(
    level: SimdLevel,
    cv: &DirectConv,
    img: &[f32],
    hwy: [usize; 3],
    out: &mut [f32],
    res: Option<&[f32]>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::vector::{F32x8, F32x16};
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        fn v4(cv: &DirectConv, img: &[f32], hwy: [usize; 3], out: &mut [f32], res: Option<&[f32]>) {
            depthwise_row_imp::<F32x16>(cv, img, hwy, out, res)
        }
        #[target_feature(enable = "avx2,fma")]
        fn v3(cv: &DirectConv, img: &[f32], hwy: [usize; 3], out: &mut [f32], res: Option<&[f32]>) {
            depthwise_row_imp::<F32x8>(cv, img, hwy, out, res)
        }
        match level {
            // SAFETY: a CompiledNet only holds a level the CPU supports.
            SimdLevel::Avx512 => return unsafe { v4(cv, img, hwy, out, res) },
            // SAFETY: as above.
            SimdLevel::Avx2 => return unsafe { v3(cv, img, hwy, out, res) },
            SimdLevel::Portable => {}
        }
    }
    let _ = level;
    depthwise_row_imp::<F32x4>(cv, img, hwy, out, res)
}

/// Channels `c0..c0 + V::LANES` of one depthwise output pixel, finished and stored.
#[inline(always)]
fn dw_vec<V: Vf>(
    cv: &DirectConv,
    img: &[f32],
    [w, oy, ox, c0]: [usize; 4],
    (ky, kx): ((usize, usize), (usize, usize)),
    out: &mut [f32],
    res: Option<&[f32]>,
) {
    let (k, s, p, c) = (cv.k, cv.stride, cv.pad, cv.c_out);
    // SAFETY (all loads and stores): the taps stay inside the image (`taps`), c0 + LANES
    // <= c, and the lengths of img, weight, out and res were checked by the caller.
    let mut acc = unsafe { V::load(cv.bias.as_ptr().add(c0)) };
    for ty in ky.0..ky.1 {
        let iy = oy * s + ty - p;
        for tx in kx.0..kx.1 {
            let ix = ox * s + tx - p;
            let xv = unsafe { V::load(img.as_ptr().add((iy * w + ix) * c + c0)) };
            let wv = unsafe { V::load(cv.weight.as_ptr().add((ty * k + tx) * c + c0)) };
            acc = xv.fma(wv, acc);
        }
    }
    store::<V, 1>(cv.ep, &[acc], ox * c + c0, c, out, res);
}

#[cfg(test)]
mod tests {
    use super::span_len;

    /// Spans are whole tiles of 8 where there are plenty; a few small images split so that
    /// no thread is left a span more than the others where an even split exists.
    #[test]
    fn small_maps_split_evenly_between_threads() {
        assert_eq!(span_len(8, 49, 2), 56);
        assert_eq!(span_len(1, 112 * 112, 2), 192);
        assert_eq!(span_len(1, 196, 1), 56);
        assert_eq!(span_len(1, 196, 2), 98);
        for (n, pixels) in [(1, 196), (1, 49), (2, 49), (3, 49), (1, 784), (1, 13)] {
            for threads in 2..=4 {
                let span = span_len(n, pixels, threads);
                let spans = n * pixels.div_ceil(span);
                let largest = spans.div_ceil(threads) * span.min(pixels);
                let ideal = (n * pixels).div_ceil(threads);
                assert!(
                    largest <= ideal + ideal / 4 + 1,
                    "{n} x {pixels} pixels on {threads} threads: {spans} spans of {span}"
                );
            }
        }
    }
}
