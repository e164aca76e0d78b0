//! Helpers shared by the CLI tests (included with `mod common;`).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The read-only reference data (`../shared/reference` next to the checkout), or the
/// directory named by `REGNET_REFERENCE`.
pub fn reference_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("REGNET_REFERENCE") {
        return PathBuf::from(dir);
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference");
    assert!(
        dir.is_dir(),
        "reference data not found at {} (set REGNET_REFERENCE)",
        dir.display()
    );
    dir
}

/// Runs `regnet ARGS`.
pub fn regnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regnet"))
        .args(args)
        .output()
        .expect("regnet runs")
}

/// Runs `regnet ARGS`, expects success, returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = regnet(args);
    assert!(
        out.status.success(),
        "regnet {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `regnet ARGS`, expects a clean failure (no panic, one-line message), returns stderr.
pub fn fails(args: &[&str]) -> String {
    let out = regnet(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success(), "regnet {args:?} should fail");
    assert!(
        !stderr.contains("panicked"),
        "regnet {args:?} panicked: {stderr}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one-line error expected: {stderr}"
    );
    stderr
}
