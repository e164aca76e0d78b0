//! Property-based fuzzing of the sweep-config reader (issue 10): mutated copies of valid
//! sweep configs (the example sweeps of `sweeps/` and pycls-style sampler sweeps) and
//! random bytes must load, or fail with a one-line error; a config that loads must sample
//! (a few hundred draws) without a panic, and any error of sampling is one line too.
//!
//! The default case count keeps the file at a few seconds in release builds; set
//! `PROPTEST_CASES` for longer runs (`scripts/fuzz.sh`).

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use regnet_sweep::SweepConfig;

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

/// A sweep in pycls's style: samplers of every type, constraints, a regnet_sampler.
const SAMPLER_SWEEP: &str = r#"NAME: cifar/regnet
ROOT_DIR: out
DESC: fuzz seed
SETUP:
  NUM_CONFIGS: 4
  NUM_SAMPLES: 300
  RNG_SEED: 3
  SAMPLERS:
    REGNET: {TYPE: regnet_sampler, DEPTH: [6, 16], GROUP_W: [1, 32]}
    OPTIM.BASE_LR: {TYPE: float_sampler, RAND_TYPE: log_uniform, RANGE: [0.1, 1.0], QUANTIZE: 1.0e-3}
    OPTIM.MAX_EPOCH: {TYPE: value_sampler, VALUES: [50, 100]}
    OPTIM.STEPS: {TYPE: list_sampler, LENGTH: 2, ITEM_SAMPLER: {TYPE: int_sampler, RAND_TYPE: normal, RANGE: [1, 9]}}
  CONSTRAINTS:
    CX: {FLOPS: [1.0e+6, 2.0e+8], PARAMS: [0, 5.0e+6], ACTS: [0, 0]}
    REGNET: {NUM_STAGES: [2, 4]}
  BASE_CFG:
    MODEL: {TYPE: regnet, NUM_CLASSES: 10}
    REGNET: {STEM_TYPE: res_stem_cifar, SE_ON: True, STEM_W: 16}
    TRAIN: {IM_SIZE: 32}
LAUNCH: {PARALLEL_JOBS: 2, MAX_RETRY: 1, COMMAND: "sh train.sh {cfg} {out_dir}"}
ANALYZE: {PLOT_CURVES_BEST: 2}
"#;

/// The seed configs: the example sweeps, then [`SAMPLER_SWEEP`].
fn corpus() -> &'static [String] {
    static CORPUS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        assert!(files.len() >= 2, "example sweeps: {files:?}");
        let mut texts: Vec<String> = files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect();
        texts.push(SAMPLER_SWEEP.to_string());
        texts
    })
}

/// Pieces that YAML and the sweep reader treat specially.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    "- ",
    ": ",
    "\n",
    "  ",
    "#",
    "'",
    "\"",
    "&a ",
    "*a",
    "!!str ",
    "---\n",
    "\u{feff}",
    "~",
    "null",
    "1e308",
    "-1",
    ".nan",
    ".inf",
    "18446744073709551616",
    "1.0e+12",
    "0",
    "0.5",
    "true",
    "NAME",
    "../",
    "/",
    "SETUP",
    "NUM_CONFIGS",
    "NUM_SAMPLES",
    "SAMPLERS",
    "TYPE",
    "list_sampler",
    "regnet_sampler",
    "value_sampler",
    "LENGTH",
    "ITEM_SAMPLER",
    "RANGE",
    "QUANTIZE",
    "RAND_TYPE",
    "log_normal",
    "power2_or_log_uniform",
    "DESIGN_SPACE",
    "AnyNetX_E",
    "RegNetY",
    "NUM_STAGES",
    "CONSTRAINTS",
    "BASE_CFG",
    "? ",
    "|\n",
    "<<: *a\n",
    "\t",
    "\\",
];

/// One edit of a config's bytes.
#[derive(Clone, Debug)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Token(usize, usize),
    Delete(usize, usize),
    Repeat(usize, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(i, t)| Edit::Token(i, t)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), 1usize..40, 1usize..30).prop_map(|(i, n, k)| Edit::Repeat(i, n, k)),
    ]
}

/// Applies `e` to `bytes` (positions wrap around the length).
fn apply(bytes: &mut Vec<u8>, e: &Edit) {
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
    match e {
        Edit::Flip(i, b) if !bytes.is_empty() => {
            let n = bytes.len();
            bytes[i % n] ^= b;
        }
        Edit::Flip(..) => {}
        Edit::Insert(i, b) => {
            let i = at(*i, bytes.len());
            bytes.splice(i..i, b.iter().copied());
        }
        Edit::Token(i, t) => {
            let i = at(*i, bytes.len());
            bytes.splice(i..i, TOKENS[*t].bytes());
        }
        Edit::Delete(i, n) => {
            let i = at(*i, bytes.len());
            let end = (i + n).min(bytes.len());
            bytes.drain(i..end);
        }
        Edit::Repeat(i, n, k) => {
            let i = at(*i, bytes.len());
            let end = (i + n).min(bytes.len());
            let piece = bytes[i..end].repeat(*k);
            bytes.splice(end..end, piece);
        }
    }
}

/// Reads `text` as a sweep config and, if it loads, samples a few hundred candidates
/// (nothing is written). Every error must be one line.
fn check(text: &str) {
    let one_line = |e: &dyn std::fmt::Display| {
        let msg = e.to_string();
        assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
        assert!(!msg.is_empty(), "empty error");
    };
    // Relative BASE_CFG paths resolve against a folder without configs.
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz/sweep.yaml");
    let mut sweep = match SweepConfig::from_yaml(text, &file) {
        Ok(s) => s,
        Err(e) => return one_line(&e),
    };
    assert!(sweep.sweep_dir().starts_with(&sweep.root_dir));
    sweep.setup.num_samples = sweep.setup.num_samples.min(300);
    sweep.setup.num_configs = sweep.setup.num_configs.min(sweep.setup.num_samples);
    if let Err(e) = regnet_sweep::setup::sample(&sweep) {
        one_line(&e);
    }
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn mutated_sweep_configs(file in 0usize..1000, edits in prop::collection::vec(edit(), 1..6)) {
        let corpus = corpus();
        let mut bytes = corpus[file % corpus.len()].clone().into_bytes();
        for e in &edits {
            apply(&mut bytes, e);
        }
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_token_soup(tokens in prop::collection::vec(0..TOKENS.len(), 0..80)) {
        let text: String = tokens.iter().map(|&t| TOKENS[t]).collect();
        check(&text);
    }
}

/// Found by `scripts/fuzz.sh`: a quoted key holding a newline (`"\n[": ...`) made the
/// "unknown key" message two lines.
#[test]
fn regression_a_key_with_a_newline_is_one_line() {
    let text: String = [51, 13, 52, 6, 7, 0].iter().map(|&t| TOKENS[t]).collect();
    check(&text);
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz/sweep.yaml");
    let e = SweepConfig::from_yaml("\"a\\nb\": 1\n", &file)
        .err()
        .unwrap();
    assert!(e.to_string().contains(": a\\nb: unknown key"), "{e}");
    assert!(!e.to_string().contains('\n'), "{e}");
}

/// Found by `scripts/fuzz.sh`: an inline `BASE_CFG` whose value does not serialise back to
/// YAML panicked (`expect`) instead of failing with a message.
#[test]
fn regression_an_inline_base_cfg_that_does_not_serialise() {
    let corpus = corpus();
    let mut bytes = corpus[227 % corpus.len()].clone().into_bytes();
    apply(&mut bytes, &Edit::Flip(8808456658965870787, 104));
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("TRAIN: {!M_SIZE: 32}"), "{text}");
    check(&text);
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz/sweep.yaml");
    let e = SweepConfig::from_yaml(&text, &file).err().unwrap();
    assert!(
        e.to_string().contains("SETUP.BASE_CFG: cannot be read"),
        "{e}"
    );
}

#[test]
fn the_seed_configs_load_and_sample() {
    for text in corpus() {
        let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz/sweep.yaml");
        let mut sweep = SweepConfig::from_yaml(text, &file).unwrap_or_else(|e| panic!("{e}"));
        sweep.setup.num_samples = 300;
        sweep.setup.num_configs = 2;
        let (kept, stats) = regnet_sweep::setup::sample(&sweep).unwrap();
        assert!(
            kept.len() <= 2 && (1..=300).contains(&stats.drawn),
            "{stats:?}"
        );
    }
}
