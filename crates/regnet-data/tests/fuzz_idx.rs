//! Fuzzing the IDX reader (MNIST / Fashion-MNIST files, raw and gzipped): mutated valid
//! files and random bytes never panic, give a value or a one-line error naming the file, and
//! never make the reader take much more memory than the data it returns (a header promising
//! gigabytes in a small file is refused before anything is allocated).
//!
//! Cases: [`fuzz_support::DEFAULT_CASES`] per property, `PROPTEST_CASES` to change it
//! (`scripts/fuzz.sh` runs many).

mod common;
mod fuzz_support;

use std::path::Path;

use proptest::prelude::*;
use regnet_data::{DatasetKind, Split, open_mnist, read_idx};

use common::{gzip, idx_bytes, write_mnist};
use fuzz_support::{
    CountingAlloc, Mutation, assert_bounded, assert_names_once, assert_one_line, mutate, mutations,
    peak_during,
};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// A valid IDX file: `n` images of 4x3.
fn seed(n: u32) -> Vec<u8> {
    let data: Vec<u8> = (0..n * 12).map(|k| (k * 37 % 251) as u8).collect();
    idx_bytes(&[n, 4, 3], &data)
}

/// Reads `bytes` written to `path` with [`read_idx`]: on success the values match the
/// header; on failure the message is one line naming the file once; the memory taken is
/// bounded by what the input can hold.
fn check_read(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    let (result, peak) = peak_during(|| read_idx(path));
    // A gzip file holds at most 1032 times its size; the reader's buffers may double that.
    let limit = 2 * 1032 * bytes.len() + (1 << 20);
    assert_bounded(peak, limit, bytes.len());
    match result {
        Ok(a) => {
            let count: usize = a.dims.iter().product();
            assert_eq!(count, a.data.len(), "dims {:?}", a.dims);
        }
        Err(e) => {
            let msg = e.to_string();
            assert_one_line(&msg);
            let name = path.display().to_string();
            assert!(msg.contains(&name), "{msg}");
            assert_names_once(&msg, &name);
        }
    }
}

fn run_mutated(seed: &[u8], m: &[Mutation], gz_before: bool, gz_after: bool) {
    let dir = common::tempdir();
    let mut bytes = mutate(seed, m);
    if gz_before {
        bytes = gzip(&bytes);
    }
    if gz_after {
        bytes = mutate(&gzip(seed), m);
    }
    check_read(&dir.path().join("t10k-images-idx3-ubyte"), &bytes);
}

proptest! {
    #![proptest_config(fuzz_support::config("proptest-regressions/fuzz_idx.txt"))]

    /// Mutated raw files.
    #[test]
    fn mutated_raw_idx(n in 0u32..6, m in mutations(6)) {
        run_mutated(&seed(n), &m, false, false);
    }

    /// Mutated IDX data, then gzipped (the header is read through the decoder).
    #[test]
    fn mutated_idx_gzipped(n in 0u32..6, m in mutations(6)) {
        run_mutated(&seed(n), &m, true, false);
    }

    /// Mutated gzip streams (corrupt deflate data, checksums, lengths).
    #[test]
    fn mutated_gzip_stream(n in 0u32..6, m in mutations(4)) {
        run_mutated(&seed(n), &m, false, true);
    }

    /// Random bytes, some behind the IDX or gzip magic number so they get past the first check.
    #[test]
    fn random_bytes(
        prefix in prop_oneof![Just(vec![]), Just(vec![0u8, 0, 8, 3]), Just(vec![0x1f, 0x8b])],
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let dir = common::tempdir();
        check_read(&dir.path().join("x-idx1-ubyte"), &[prefix, body].concat());
    }

    /// A whole split with a mutated image file: opening it never panics, and an error names
    /// one of the two files.
    #[test]
    fn open_mnist_with_a_mutated_image_file(m in mutations(4), gz in any::<bool>()) {
        let dir = common::tempdir();
        write_mnist(dir.path(), "train", 3, 4, 3, gz);
        let ext = if gz { ".gz" } else { "" };
        let images = dir.path().join(format!("train-images-idx3-ubyte{ext}"));
        let bytes = std::fs::read(&images).unwrap();
        std::fs::write(&images, mutate(&bytes, &m)).unwrap();
        match open_mnist(dir.path(), Split::Train, DatasetKind::Mnist) {
            Ok(ds) => prop_assert!(regnet_data::Dataset::len(&ds) > 0),
            Err(e) => {
                let msg = e.to_string();
                assert_one_line(&msg);
                prop_assert!(msg.contains("-idx"), "{}", msg);
            }
        }
    }
}

/// The memory measure the properties rely on sees a reader's allocations.
#[test]
fn allocations_are_counted() {
    let (v, peak) = peak_during(|| vec![1u8; 3 << 20]);
    assert!(peak >= 3 << 20, "{peak}");
    drop(v);
    let (_, peak) = peak_during(|| ());
    assert!(peak < 1 << 10, "{peak}");
}
