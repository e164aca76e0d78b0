//! Property-based fuzzing of weight files (issue 10): mutated copies of small valid
//! safetensors files (the shared fixtures, regnet's own with spec metadata) and pycls `.pyth`
//! checkpoints (the CLI's test data), safetensors headers with random shapes and offsets,
//! spec metadata with random counts, and random bytes. Reading must succeed or fail with a
//! one-line error: no panic, no abort, and no allocation above [`MAX_ALLOC`] (a capped
//! allocator turns one into an abort, which fails the run).
//!
//! The default case count keeps the file at a few seconds in release builds; set
//! `PROPTEST_CASES` for longer runs (`scripts/fuzz.sh`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use regnet_core::network::Network;
use regnet_core::spec::NetSpec;
use regnet_nn::StateDict;
use regnet_nn::weights::{self, ChannelOrder, Which};

/// The largest single allocation allowed while reading inputs of at most a few hundred KB.
const MAX_ALLOC: usize = 1 << 30;

/// The system allocator, refusing single allocations above [`MAX_ALLOC`] (an abort).
struct Capped;

unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOC {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > MAX_ALLOC {
            return std::ptr::null_mut();
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Capped = Capped;

/// Cases per property: `PROPTEST_CASES`, or `default`.
fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A small regnet safetensors file with spec metadata, written once.
fn regnet_file() -> Vec<u8> {
    let spec = regnet_core::zoo::lookup("RegNetX-200MF").unwrap().spec();
    let mut spec = spec;
    if let regnet_core::spec::Arch::RegNet(r) = &mut spec.arch {
        (r.depth, r.w0, r.wa, r.wm, r.group_w) = (3, 8, 8.0, 2.0, 8);
    }
    spec.num_classes = 3;
    let net = Network::from_spec(&spec).unwrap();
    let mut sd = StateDict::default();
    for p in net.parameters() {
        let t = regnet_nn::TensorF32::new(p.shape.clone(), vec![0.5; p.numel()]);
        sd.insert(p.name, t);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.safetensors");
    weights::write_safetensors(&path, &sd, &spec, ChannelOrder::Rgb).unwrap();
    std::fs::read(path).unwrap()
}

/// Seed files: (bytes, is it a PyTorch pickle).
fn corpus() -> &'static [(Vec<u8>, bool)] {
    static CORPUS: std::sync::OnceLock<Vec<(Vec<u8>, bool)>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut v = vec![(regnet_file(), false)];
        let tiny = repo().join("../shared/reference/fixtures/tiny_cifar_anynet.safetensors");
        if let Ok(b) = std::fs::read(&tiny) {
            v.push((b, false));
        }
        let ckpts = repo().join("crates/regnet-cli/tests/data/pycls_checkpoints");
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&ckpts)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dirs.sort();
        for d in dirs {
            v.push((std::fs::read(d.join("model.pyth")).unwrap(), true));
            v.push((std::fs::read(d.join("io.safetensors")).unwrap(), false));
        }
        assert!(v.len() >= 10, "weight file corpus: {}", v.len());
        v
    })
}

/// Where an edit lands: near the start (pickle, safetensors header), near the end (ZIP
/// central directory), or anywhere.
fn position(len: usize, region: u8, i: usize) -> usize {
    if len == 0 {
        return 0;
    }
    match region % 3 {
        0 => i % len.min(32 << 10),
        1 => len - 1 - i % len.min(16 << 10),
        _ => i % len,
    }
}

/// One edit: overwrite bytes, write a little-endian integer, delete or insert a range.
#[derive(Clone, Debug)]
enum Edit {
    Bytes(u8, usize, Vec<u8>),
    Int(u8, usize, u64),
    Delete(u8, usize, usize),
    Insert(u8, usize, Vec<u8>),
}

fn edit() -> impl Strategy<Value = Edit> {
    let big = prop_oneof![any::<u64>(), 0u64..300, Just(u64::MAX), Just(1 << 40)];
    prop_oneof![
        (
            any::<u8>(),
            any::<usize>(),
            prop::collection::vec(any::<u8>(), 1..6)
        )
            .prop_map(|(r, i, b)| Edit::Bytes(r, i, b)),
        (any::<u8>(), any::<usize>(), big).prop_map(|(r, i, n)| Edit::Int(r, i, n)),
        (any::<u8>(), any::<usize>(), 1usize..64).prop_map(|(r, i, n)| Edit::Delete(r, i, n)),
        (
            any::<u8>(),
            any::<usize>(),
            prop::collection::vec(any::<u8>(), 1..32)
        )
            .prop_map(|(r, i, b)| Edit::Insert(r, i, b)),
    ]
}

fn apply(bytes: &mut Vec<u8>, e: &Edit) {
    let len = bytes.len();
    match e {
        Edit::Bytes(r, i, b) => {
            let at = position(len, *r, *i);
            for (k, x) in b.iter().enumerate() {
                if let Some(y) = bytes.get_mut(at + k) {
                    *y = *x;
                }
            }
        }
        Edit::Int(r, i, n) => {
            let at = position(len, *r, *i);
            for (k, x) in n.to_le_bytes().iter().enumerate() {
                if let Some(y) = bytes.get_mut(at + k) {
                    *y = *x;
                }
            }
        }
        Edit::Delete(r, i, n) => {
            let at = position(len, *r, *i).min(len);
            bytes.drain(at..(at + n).min(len));
        }
        Edit::Insert(r, i, b) => {
            let at = position(len, *r, *i).min(len);
            bytes.splice(at..at, b.iter().copied());
        }
    }
}

fn one_line(e: &dyn std::fmt::Display) {
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
}

/// Reads `bytes` as a weight file every way the CLI does, and uses what it reads.
fn check(bytes: &[u8], name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    for which in [Which::Model, Which::Ema] {
        match weights::read(&path, which) {
            Err(e) => one_line(&e),
            Ok(mut w) => {
                if let Some(spec) = &w.spec {
                    let net = Network::from_spec(spec).expect("specs are validated when read");
                    if let Err(e) = w.state.check(&net, name) {
                        one_line(&e);
                    }
                }
                if let Some(cfg) = &w.pycls_cfg {
                    let mut c = regnet_core::config::Config::default();
                    let origin = regnet_core::error::Origin::File("cfg".into());
                    match c.merge_yaml(cfg, origin).and_then(|()| c.spec()) {
                        Err(e) => one_line(&e),
                        Ok(spec) => {
                            let net = Network::from_spec(&spec).unwrap();
                            let _ = w.state.check(&net, name);
                        }
                    }
                }
                if let Err(e) = w.state.flip_stem_channels() {
                    one_line(&e);
                }
            }
        }
    }
    if let Err(e) = weights::read_safetensors_tensors(&path) {
        one_line(&e);
    }
}

/// A safetensors file with one tensor of the given header values and `data` bytes.
fn safetensors(dtype: &str, shape: &[u64], offsets: [u64; 2], meta: &str, data: usize) -> Vec<u8> {
    let shape: Vec<String> = shape.iter().map(u64::to_string).collect();
    let header = format!(
        r#"{{"t":{{"dtype":"{dtype}","shape":[{}],"data_offsets":[{},{}]}},"__metadata__":{meta}}}"#,
        shape.join(","),
        offsets[0],
        offsets[1]
    );
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.bytes());
    out.extend(std::iter::repeat_n(0u8, data));
    out
}

proptest! {
    #![proptest_config(cases(500))]

    #[test]
    fn mutated_weight_files(file in 0usize..1000, edits in prop::collection::vec(edit(), 1..5)) {
        let corpus = corpus();
        let (seed, pickle) = &corpus[file % corpus.len()];
        let mut bytes = seed.clone();
        for e in &edits {
            apply(&mut bytes, e);
        }
        check(&bytes, if *pickle { "fuzz.pyth" } else { "fuzz.safetensors" });
    }

    #[test]
    fn random_safetensors_headers(
        dtype in prop::sample::select(vec!["F32", "F64", "F16", "BF16", "I64", "U8", "X"]),
        shape in prop::collection::vec(prop_oneof![0u64..5, any::<u64>(), Just(1 << 32)], 0..10),
        offsets in [prop_oneof![0u64..64, any::<u64>()], prop_oneof![0u64..64, any::<u64>()]],
        data in 0usize..64,
    ) {
        check(&safetensors(dtype, &shape, offsets, "{}", data), "fuzz.safetensors");
    }

    #[test]
    fn random_spec_metadata(values in prop::collection::vec(any::<u64>(), 1..8), at in any::<usize>()) {
        // The small file's spec with some of its numbers replaced.
        let st = regnet_file();
        let n = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&st[8..8 + n]).unwrap();
        let spec = header["__metadata__"][weights::META_SPEC].as_str().unwrap().to_string();
        let mut parts: Vec<String> = spec.split(':').map(str::to_string).collect();
        for (k, v) in values.iter().enumerate() {
            let i = (at + k * 7) % parts.len();
            let rest: String = parts[i].trim_start_matches(|c: char| c.is_ascii_digit()).into();
            if rest.len() < parts[i].len() {
                parts[i] = format!("{v}{rest}");
            }
        }
        let spec = parts.join(":");
        if let Err(e) = NetSpec::from_json(&spec) {
            one_line(&e);
        }
        let meta = serde_json::json!({ weights::META_SPEC: spec }).to_string();
        check(&safetensors("F32", &[1], [0, 4], &meta, 4), "fuzz.safetensors");
    }

    #[test]
    fn random_bytes(kind in 0u8..3, bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        // Raw, pickle-looking (protocol 2 header) and ZIP-looking files.
        let mut b = match kind {
            0 => Vec::new(),
            1 => vec![0x80, 0x02],
            _ => b"PK\x03\x04".to_vec(),
        };
        b.extend(bytes);
        check(&b, "fuzz.pyth");
    }
}
