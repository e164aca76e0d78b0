//! Fuzzing the CIFAR-10 readers: pickled batches (Python 2's layout, and what numpy writes
//! with protocols 2, 4 and 5), `batches.meta`, and binary batches. Mutated valid files and
//! random bytes never panic, never run anything, give a data set or a one-line error naming
//! the file, and never make the reader take much more memory than the file's size (the
//! pickle memo cannot multiply a string, a length cannot reserve gigabytes).
//!
//! Cases: [`fuzz_support::DEFAULT_CASES`] per property, `PROPTEST_CASES` to change it
//! (`scripts/fuzz.sh` runs many).

mod common;
mod fuzz_support;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use regnet_data::{Dataset, Split, open_cifar10};

use common::{cifar_bin, cifar_planes, cifar_py2_meta, cifar_py2_pickle};
use fuzz_support::{
    CountingAlloc, assert_bounded, assert_names_once, assert_one_line, mutate, mutations,
    peak_during,
};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The valid pickled batches to start from.
fn pickle_seed(which: usize) -> Vec<u8> {
    match which {
        0 => {
            let planes: Vec<Vec<u8>> = (0..2).map(cifar_planes).collect();
            cifar_py2_pickle(&planes, &[3, 9])
        }
        1 => fixture("cifar_py3_protocol2.pickle"),
        2 => fixture("cifar_py3_protocol4.pickle"),
        _ => fixture("cifar_py3_protocol5.pickle"),
    }
}

/// Opens the test split of `dir` (whose file `file` was fuzzed) and checks the outcome;
/// the memory taken is bounded by a multiple of the fuzzed file's size.
fn check_open(dir: &Path, file: &Path, input_len: usize) {
    let (result, peak) = peak_during(|| open_cifar10(dir, Split::Test));
    // Every opcode byte may create an object (about 100 bytes with the arena's, the stack's
    // and the memo's growth), and the images are copied twice (planes, then HWC).
    let limit = 256 * input_len + (4 << 20);
    assert_bounded(peak, limit, input_len);
    match result {
        Ok(ds) => {
            assert!(ds.len() > 0);
            assert_eq!(ds.num_classes(), 10);
            for i in 0..ds.len() {
                assert!(ds.label(i) < 10);
                assert_eq!(ds.image(i).unwrap().data().len(), 3072);
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert_one_line(&msg);
            let name = file.display().to_string();
            assert!(msg.contains(&name), "{msg}");
            assert_names_once(&msg, &name);
        }
    }
}

/// Writes `bytes` as the test batch (Python or binary form) and opens it.
fn check_batch(bytes: &[u8], binary: bool) {
    let dir = common::tempdir();
    let file = dir.path().join(if binary {
        "test_batch.bin"
    } else {
        "test_batch"
    });
    std::fs::write(&file, bytes).unwrap();
    check_open(dir.path(), &file, bytes.len());
}

proptest! {
    #![proptest_config(fuzz_support::config("proptest-regressions/fuzz_cifar.txt"))]

    /// Mutated pickled batches.
    #[test]
    fn mutated_pickle_batch(which in 0usize..4, m in mutations(6)) {
        check_batch(&mutate(&pickle_seed(which), &m), false);
    }

    /// Mutated binary batches (record counts, labels).
    #[test]
    fn mutated_binary_batch(n in 1usize..4, m in mutations(6)) {
        let planes: Vec<Vec<u8>> = (0..n).map(cifar_planes).collect();
        let labels: Vec<usize> = (0..n).map(|i| i % 10).collect();
        check_batch(&mutate(&cifar_bin(&planes, &labels), &m), true);
    }

    /// A valid batch with a mutated `batches.meta` (class names).
    #[test]
    fn mutated_meta(py3 in any::<bool>(), m in mutations(6)) {
        let dir = common::tempdir();
        std::fs::write(dir.path().join("test_batch"), pickle_seed(0)).unwrap();
        let meta = if py3 {
            fixture("cifar_meta_protocol2.pickle")
        } else {
            cifar_py2_meta(&regnet_data::CIFAR10_CLASSES)
        };
        let bytes = mutate(&meta, &m);
        let file = dir.path().join("batches.meta");
        std::fs::write(&file, &bytes).unwrap();
        check_open(dir.path(), &file, bytes.len() + 7000);
    }

    /// Random pickle programs: a protocol header and random opcodes with random arguments.
    #[test]
    fn random_pickle(body in prop::collection::vec(any::<u8>(), 0..1024)) {
        check_batch(&[&[0x80, 2][..], &body, b"."].concat(), false);
    }

    /// Random pickle programs made of valid opcodes only (containers, memo, strings), so
    /// that they run long before failing.
    #[test]
    fn random_opcodes(ops in prop::collection::vec(prop::sample::select(OPCODES.to_vec()), 0..256)) {
        check_batch(&[&[0x80, 2][..], &ops.concat(), b"."].concat(), false);
    }
}

/// Opcodes with their arguments, from which `random_opcodes` builds programs.
const OPCODES: &[&[u8]] = &[
    b"(",
    b"}",
    b"]",
    b")",
    b"d",
    b"l",
    b"t",
    b"\x85",
    b"\x86",
    b"\x87",
    b"a",
    b"e",
    b"s",
    b"u",
    b"q\x00",
    b"q\x01",
    b"h\x00",
    b"h\x01",
    b"\x94",
    b"K\x05",
    b"M\x00\x01",
    b"N",
    b"\x88",
    b"U\x04data",
    b"U\x06labels",
    b"U\x02u1",
    b"U\x01C",
    b"X\x01\x00\x00\x00C",
    b"0",
    b"1",
    b"2",
    b"R",
    b"b",
    b"cnumpy\ndtype\n",
    b"cnumpy.core.multiarray\n_reconstruct\n",
    b"cnumpy\nndarray\n",
    b"c_codecs\nencode\n",
    b"\x8c\x06latin1",
    b"\x8c\x03abc",
];
