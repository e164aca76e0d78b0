//! Property-based fuzzing of pycls configs (issue 10): mutated copies of the pycls configs of
//! the reference data, random bytes and random `KEY VALUE` overrides must load, or fail with
//! a one-line error; building the network and counting its complexity must not panic.
//!
//! The default case count keeps the file at a few seconds in release builds; set
//! `PROPTEST_CASES` for longer runs (`scripts/fuzz.sh`).

#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use regnet_core::complexity::try_complexity;
use regnet_core::config::Config;
use regnet_core::error::Origin;

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

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
}

/// The texts of every pycls config of the reference data, sorted by path.
fn corpus() -> &'static [String] {
    static CORPUS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut files = Vec::new();
        yaml_files(&common::reference_dir().join("pycls/configs"), &mut files);
        files.sort();
        assert!(files.len() >= 20, "pycls configs: {}", files.len());
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect()
    })
}

/// Pieces that YAML and the config code treat specially.
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
    "1000000000",
    "0",
    "0.0",
    "true",
    "MODEL",
    "REGNET",
    "DEPTH",
    "ANYNET",
    "DEPTHS",
    "WIDTHS",
    "EN",
    "TYPE",
    "regnet",
    "anynet",
    "effnet",
    "resnet",
    "? ",
    "|\n",
    ">\n",
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
        (any::<usize>(), 1usize..40, 1usize..50).prop_map(|(i, n, k)| Edit::Repeat(i, n, k)),
    ]
}

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

/// Loads `text` as a config file and, if it loads, builds the network and counts it. Any
/// error must be one line.
fn check(text: &str) {
    let mut cfg = Config::default();
    let one_line = |e: &dyn std::fmt::Display| {
        let msg = e.to_string();
        assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
    };
    if let Err(e) = cfg.merge_yaml(text, Origin::File("fuzz.yaml".into())) {
        one_line(&e);
        return;
    }
    match cfg.network() {
        Err(e) => one_line(&e),
        Ok((_, net)) => {
            let size = cfg.im_size();
            if let Err(e) = try_complexity(&net, size, size) {
                one_line(&e);
            }
            let _ = net.parameters();
        }
    }
}

proptest! {
    #![proptest_config(cases(1000))]

    #[test]
    fn mutated_pycls_configs(file in 0usize..1000, edits in prop::collection::vec(edit(), 1..6)) {
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

    #[test]
    fn random_overrides(
        file in 0usize..1000,
        pairs in prop::collection::vec((0usize..16, 0..TOKENS.len(), any::<i64>()), 1..6),
    ) {
        const KEYS: &[&str] = &[
            "REGNET.DEPTH", "REGNET.W0", "REGNET.WA", "REGNET.WM", "REGNET.GROUP_W",
            "REGNET.BOT_MUL", "ANYNET.DEPTHS", "ANYNET.WIDTHS", "ANYNET.BOT_MULS",
            "EN.KERNELS", "EN.EXP_RATIOS", "MODEL.NUM_CLASSES", "MODEL.DEPTH",
            "TRAIN.IM_SIZE", "", "REGNET.SE_R",
        ];
        let corpus = corpus();
        let mut cfg = Config::default();
        if cfg.merge_yaml(&corpus[file % corpus.len()], Origin::Builtin).is_err() {
            return Ok(());
        }
        let words: Vec<String> = pairs
            .iter()
            .flat_map(|&(k, t, n)| {
                let value = match n % 4 {
                    0 => n.to_string(),
                    1 => format!("[{n}, {}]", TOKENS[t]),
                    2 => TOKENS[t].to_string(),
                    _ => format!("{}", n as f64 * 1e-3),
                };
                [KEYS[k].to_string(), value]
            })
            .collect();
        match cfg.merge_overrides(&words) {
            Err(e) => prop_assert!(!e.to_string().contains('\n'), "{e}"),
            Ok(()) => check(&cfg.to_yaml()),
        }
    }
}
