//! Software prefetch: one cache line ([`line`]), and the weights the next piece of work
//! reads, a share per tile of the current piece (the 1x1 GEMM's next panel). A network's
//! weights (21-25 MB for RegNetX-400MF and RegNetY-800MF) outgrow the L2 and often the L3,
//! so each layer's come from memory; at batch 1 a panel has only a few tiles to hide that
//! in, and the first tile's loads wait. The grouped kernel's weights, fetched the same way a
//! slot block ahead, gained 3-13 % with a cold cache at AVX2 and nothing with a warm one (one
//! thread), and the prefetch in its inner loop made the AVX-512 kernel spill accumulators
//! (80 -> 50 GMAC/s): not there.

/// Asks for the cache line holding `p` (into L1). A hint only: any address will do.
#[inline(always)]
pub(crate) fn line(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, whatever the address.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The cache lines of a weight region, handed out in equal shares to the tiles that run
/// before it is read.
pub(crate) struct Ahead {
    /// The region's first value.
    base: *const f32,
    /// Its 64-byte lines.
    lines: usize,
    /// Lines per tile.
    per_tile: usize,
    /// Tiles so far.
    tile: usize,
    /// Steps of each tile's inner loop, at which it prefetches.
    steps: usize,
}

impl Ahead {
    /// `region` (possibly empty), spread over `tiles` tiles of `steps` inner steps each.
    pub fn new(region: &[f32], tiles: usize, steps: usize) -> Self {
        let lines = region.len().div_ceil(16);
        Ahead {
            base: region.as_ptr(),
            lines,
            per_tile: lines.div_ceil(tiles.max(1)),
            tile: 0,
            steps,
        }
    }

    /// The next tile's share.
    pub fn take(&mut self) -> Lines {
        let l0 = (self.tile * self.per_tile).min(self.lines);
        let n = self.per_tile.min(self.lines - l0);
        self.tile += 1;
        // One line per step, two where a share outnumbers the steps (few tiles: the
        // classifier at batch 1); any more are left to the hardware.
        let two = n > self.steps;
        Lines {
            first: self.base.wrapping_add(16 * l0),
            steps: n.div_ceil(1 + two as usize).min(self.steps),
            two,
            n,
        }
    }
}

/// One tile's share: a line (or two) at each of its first `steps` inner steps.
#[derive(Clone, Copy)]
pub(crate) struct Lines {
    first: *const f32,
    /// Inner steps that prefetch.
    pub steps: usize,
    /// Two lines per step.
    two: bool,
    /// Lines in the share.
    n: usize,
}

impl Lines {
    /// The two lines of inner step `i` (the same one twice where one per step, or where
    /// an odd share ends).
    #[inline(always)]
    fn lines(self, i: usize) -> [*const f32; 2] {
        let l = (1 + self.two as usize) * i;
        let second = (l + self.two as usize).min(self.n.saturating_sub(1));
        [
            self.first.wrapping_add(16 * l),
            self.first.wrapping_add(16 * second),
        ]
    }

    /// Prefetches the lines of inner step `i` (< `steps`).
    #[inline(always)]
    pub fn fetch(self, i: usize) {
        for p in self.lines(i) {
            line(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Ahead;

    /// The shares stay inside the region and, where the tiles have steps enough (two lines
    /// each), cover every line of it; otherwise each tile fetches all the lines it can.
    #[test]
    fn shares_cover_the_region_and_stay_inside_it() {
        for (floats, tiles, steps) in [
            (768 * 32, 18, 768),
            (1008 * 32, 1, 1008),
            (1008 * 32, 1, 100),
            (9 * 16 * 16 * 4, 7, 144),
            (5, 3, 2),
            (112, 1, 4),
            (0, 4, 9),
            (1000, 0, 3),
        ] {
            let region = vec![0f32; floats];
            let lines = floats.div_ceil(16);
            let mut ahead = Ahead::new(&region, tiles, steps);
            let mut hit = vec![0usize; lines];
            for _ in 0..tiles.max(1) {
                let share = ahead.take();
                assert!(share.steps <= steps);
                for i in 0..share.steps {
                    for p in share.lines(i) {
                        let line = (p as usize - region.as_ptr() as usize) / 64;
                        assert!(line < lines, "{floats} floats, {tiles} tiles: line {line}");
                        hit[line] += 1;
                    }
                }
            }
            let need = lines.div_ceil(tiles.max(1));
            if need <= 2 * steps {
                assert!(hit.iter().all(|&h| h > 0), "{floats} floats, {tiles} tiles");
            } else {
                assert!(hit.iter().filter(|&&h| h > 0).count() >= 2 * steps);
            }
        }
    }
}
