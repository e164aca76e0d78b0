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
