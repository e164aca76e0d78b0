//! What the `fuzz_*` test targets of this crate share: the proptest configuration (a small
//! number of cases by default, `PROPTEST_CASES` for long runs, failures kept in
//! `proptest-regressions/`), mutations of valid seed files, the check that a reader's error
//! is one line, and an allocator that measures the memory a reader takes.
//!
//! `scripts/fuzz.sh` runs these targets for minutes with many cases and fresh seeds.
#![allow(dead_code)] // each fuzz target uses some of these

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Cases per property when `PROPTEST_CASES` is not set: small, so that each target runs in a
/// few seconds in CI.
pub const DEFAULT_CASES: u32 = 48;

/// The proptest configuration of a fuzz target whose failures are kept in
/// `proptest-regressions/<name>.txt` (relative to the crate: where `cargo test` runs).
pub fn config(regressions: &'static str) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        // Shrinking a failure of a large random file can take long; a failing case is
        // printed and persisted either way.
        max_shrink_iters: 2048,
        ..Config::default()
    }
}

/// One edit of a seed file.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flip one bit.
    Flip(prop::sample::Index, u8),
    /// Set one byte.
    Set(prop::sample::Index, u8),
    /// Write a big-endian and a little-endian "interesting" u32 (sizes, counts, lengths).
    SetU32(prop::sample::Index, u32, bool),
    /// Insert bytes.
    Insert(prop::sample::Index, Vec<u8>),
    /// Remove up to `n` bytes.
    Remove(prop::sample::Index, usize),
    /// Cut the file.
    Truncate(prop::sample::Index),
    /// Repeat a slice of the file in place (`n` copies of up to 64 bytes).
    Repeat(prop::sample::Index, usize, usize),
}

/// Values that sizes and counts in file headers are often fuzzed with.
fn interesting_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(0x7f),
        Just(0xff),
        Just(0x100),
        Just(0xffff),
        Just(0x1_0000),
        Just(0x7fff_ffff),
        Just(0x8000_0000),
        Just(u32::MAX),
        any::<u32>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    use prop::sample::Index;
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        3 => (any::<Index>(), interesting_u32(), any::<bool>())
            .prop_map(|(i, v, be)| Mutation::SetU32(i, v, be)),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), 1usize..64, 1usize..64)
            .prop_map(|(i, len, n)| Mutation::Repeat(i, len, n)),
    ]
}

/// Up to `max` mutations.
pub fn mutations(max: usize) -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..=max)
}

/// `seed` with `mutations` applied in order.
pub fn mutate(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in mutations {
        let at = |i: &prop::sample::Index, len: usize| if len == 0 { 0 } else { i.index(len) };
        match m {
            Mutation::Flip(i, bit) if !b.is_empty() => {
                let k = at(i, b.len());
                b[k] ^= 1 << bit;
            }
            Mutation::Set(i, v) if !b.is_empty() => {
                let k = at(i, b.len());
                b[k] = *v;
            }
            Mutation::SetU32(i, v, be) if b.len() >= 4 => {
                let k = at(i, b.len() - 3);
                let bytes = if *be {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                b[k..k + 4].copy_from_slice(&bytes);
            }
            Mutation::Insert(i, v) => {
                let k = at(i, b.len() + 1);
                b.splice(k..k, v.iter().copied());
            }
            Mutation::Remove(i, n) if !b.is_empty() => {
                let k = at(i, b.len());
                let end = (k + n).min(b.len());
                b.drain(k..end);
            }
            Mutation::Truncate(i) => {
                let k = at(i, b.len() + 1);
                b.truncate(k);
            }
            Mutation::Repeat(i, len, n) if !b.is_empty() => {
                let k = at(i, b.len());
                let piece = b[k..(k + len).min(b.len())].to_vec();
                let copies: Vec<u8> = piece
                    .iter()
                    .copied()
                    .cycle()
                    .take(piece.len() * n)
                    .collect();
                b.splice(k..k, copies);
            }
            _ => {}
        }
    }
    b
}

/// Checks a reader's error message: one line, not empty, no panic text.
pub fn assert_one_line(message: &str) {
    assert!(!message.is_empty(), "empty error message");
    assert!(
        !message.contains('\n') && !message.contains('\r'),
        "error message of more than one line: {message:?}"
    );
}

/// Checks that a message names `name` (a file) exactly once when it names it at all: an
/// error chain printed twice shows it twice.
pub fn assert_names_once(message: &str, name: &str) {
    assert!(
        message.matches(name).count() <= 1,
        "{name} named more than once: {message}"
    );
}

thread_local! {
    /// Bytes allocated and not yet freed by this thread.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The most `LIVE` has been since the last [`peak_during`] began.
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

/// The system allocator, counting the live bytes of each thread (the readers allocate on
/// the calling thread), so a test can bound the memory a reader takes for an input.
pub struct CountingAlloc;

fn account(delta: isize) {
    // `try_with`: the thread-locals may be gone while a thread exits.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is passed to the system allocator unchanged; the counting only reads
// and writes thread-locals that are `const`-initialised `Cell`s (no allocation, no drop).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        account(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` and returns its result with the most bytes it had allocated at once (on this
/// thread) above what was live when it began.
pub fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, (peak - start).max(0) as usize)
}

/// Checks that a reader took at most `limit` bytes for an input of `input_len` bytes.
pub fn assert_bounded(peak: usize, limit: usize, input_len: usize) {
    assert!(
        peak <= limit,
        "the reader took {peak} bytes at once for an input of {input_len} bytes (limit {limit})"
    );
}
