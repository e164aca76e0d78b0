//! Seeded randomness that does not depend on thread scheduling.
//!
//! Every random choice is drawn from a generator keyed by what it is for: the augmentation
//! of a sample from `(seed, epoch, sample index)`, the shuffle of an epoch from
//! `(seed, epoch)`, a random subset from `seed`. Whichever worker thread transforms a sample,
//! and in whatever order, it draws the same numbers, so an epoch is the same with 1 or 16
//! threads and can be replayed from its number alone.
//!
//! The generator is ChaCha8: the 256-bit key holds the seed, the epoch and the purpose, and
//! the 64-bit stream number holds the sample index, so distinct keys give independent
//! streams (no hashing, no collisions).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The generator handed to transforms.
pub type SampleRng = ChaCha8Rng;

/// What a generator is for; part of the key so that, say, the shuffle of epoch 3 and the
/// augmentation of sample 0 in epoch 3 do not draw the same numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub(crate) enum Purpose {
    Sample = 1,
    Shuffle = 2,
    Subset = 3,
}

fn keyed(seed: u64, epoch: u64, purpose: Purpose, stream: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&epoch.to_le_bytes());
    key[16..24].copy_from_slice(&(purpose as u64).to_le_bytes());
    key[24..].copy_from_slice(b"regnet\0\0");
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(stream);
    rng
}

/// The generator for the augmentation of sample `index` (its index in the data set, not
/// its position in the shuffled epoch) in epoch `epoch` of a run seeded with `seed`.
pub fn sample_rng(seed: u64, epoch: u64, index: u64) -> SampleRng {
    keyed(seed, epoch, Purpose::Sample, index)
}

/// The generator for the shuffle of epoch `epoch`.
pub(crate) fn shuffle_rng(seed: u64, epoch: u64) -> ChaCha8Rng {
    keyed(seed, epoch, Purpose::Shuffle, 0)
}

/// The generator for a random subset, the same in every epoch.
pub(crate) fn subset_rng(seed: u64) -> ChaCha8Rng {
    keyed(seed, 0, Purpose::Subset, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = sample_rng(1, 2, 3).random();
        assert_eq!(a, sample_rng(1, 2, 3).random::<u64>());
        assert_ne!(a, sample_rng(1, 2, 4).random::<u64>());
        assert_ne!(a, sample_rng(1, 3, 3).random::<u64>());
        assert_ne!(a, sample_rng(2, 2, 3).random::<u64>());
        assert_ne!(
            shuffle_rng(1, 2).random::<u64>(),
            sample_rng(1, 2, 0).random::<u64>()
        );
    }
}
