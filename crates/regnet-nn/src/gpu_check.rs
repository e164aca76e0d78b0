//! Checks of the GPU against the CPU, shared by the test suites of several crates: the GPU
//! to run them on (or a reason they skip), a report of what they measured, and the measure.

use burn::tensor::Device;

/// The GPU for tests that compare it with the CPU. `Ok(None)` when this build or machine has
/// none (the caller says it skipped), unless the environment sets `REGNET_REQUIRE_GPU`, as CI
/// does: then a missing GPU is an error.
pub fn gpu_for_tests() -> Result<Option<Device>, String> {
    match crate::device::by_name("gpu") {
        Ok(dev) => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                let adapter = crate::device::gpu_adapter().unwrap_or_default();
                gpu_report(&format!("GPU tests run on: {adapter}"));
            });
            Ok(Some(dev))
        }
        Err(e) if std::env::var_os("REGNET_REQUIRE_GPU").is_some() => {
            Err(format!("REGNET_REQUIRE_GPU is set, but {e}"))
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            Ok(None)
        }
    }
}

/// Prints one measured GPU-vs-CPU result and, when `REGNET_GPU_REPORT` names a file, appends
/// it there, so that CI can show the differences of tests whose output libtest hides.
pub fn gpu_report(line: &str) {
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("REGNET_GPU_REPORT") {
        use std::io::Write;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path);
        if let Ok(mut f) = file {
            // One write per line, so that concurrent tests do not interleave within a line.
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
}

/// `||got - want|| / ||want||` (Euclidean norms, in f64; absolute where `want` is zero;
/// infinite for NaN). Not the largest elementwise difference: where a ReLU's input lies within
/// rounding of zero, one device passes the gradient and the other does not, which moves a few
/// values by O(1) while both devices compute the same function equally well.
pub fn relative_l2(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "relative_l2: lengths differ");
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (a, b) in got.iter().zip(want) {
        diff += (*a as f64 - *b as f64).powi(2);
        norm += (*b as f64).powi(2);
    }
    let d = if norm > 0.0 {
        (diff / norm).sqrt()
    } else {
        diff.sqrt()
    };
    if d.is_nan() { f32::INFINITY } else { d as f32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_l2_is_relative_and_catches_nan() {
        assert_eq!(relative_l2(&[3.0, 4.0], &[3.0, 4.0]), 0.0);
        assert!((relative_l2(&[3.0, 4.5], &[3.0, 4.0]) - 0.1).abs() < 1e-6);
        assert!((relative_l2(&[0.5], &[0.0]) - 0.5).abs() < 1e-6);
        assert!(relative_l2(&[f32::NAN], &[1.0]).is_infinite());
    }
}
