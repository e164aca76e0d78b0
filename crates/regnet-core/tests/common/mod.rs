//! Shared helpers of the integration tests.

use std::path::PathBuf;

/// The read-only reference data (`../shared/reference` next to the checkout), or the
/// directory named by `REGNET_REFERENCE`. Tests that need it fail when it is missing.
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

/// This crate's test data.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}
