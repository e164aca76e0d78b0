//! New vectors written in parallel chunks, without zeroing them first.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// A vector of `len` values written chunk by chunk (`per` values each, the last one possibly
/// shorter, in parallel) by `fill(chunk index, chunk)`, which must write every value of its
/// chunk. Skips zeroing the buffer first: on these memory-bound loops the zeroing pass cost
/// as much as a kernel.
pub(super) fn filled(
    len: usize,
    per: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    v.spare_capacity_mut()[..len]
        .par_chunks_mut(per.max(1))
        .enumerate()
        .for_each(|(i, out)| fill(i, out));
    // SAFETY: every chunk of the first `len` values was written by `fill` above.
    unsafe { v.set_len(len) };
    v
}

/// [`filled`] for kernels that take `&mut [f32]` and write every value: each chunk is
/// zeroed just before `write` gets it, while it is in cache, rather than in a pass of its
/// own over the whole vector (a trip to memory for an activation of several MB).
pub(super) fn written(
    len: usize,
    per: usize,
    write: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    filled(len, per, |i, out| {
        out.iter_mut().for_each(|v| {
            v.write(0.0);
        });
        // SAFETY: every value was just written, and `MaybeUninit<f32>` has `f32`'s layout.
        let out = unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) };
        write(i, out)
    })
}
