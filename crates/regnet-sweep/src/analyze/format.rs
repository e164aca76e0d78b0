//! How numbers, names and lists are written in the report.

/// `s` as a file-name part: lower-case letters and digits, `_` between words.
pub(super) fn slug(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    while out.contains("__") {
        out = out.replace("__", "_");
    }
    out.trim_matches('_').to_string()
}

/// `(scale, unit)` for a complexity measure: millions or billions, as pycls prints them.
pub(super) fn scale(max: f64) -> (f64, &'static str) {
    if max >= 1e9 {
        (1e9, "B")
    } else if max >= 1e6 {
        (1e6, "M")
    } else {
        (1e3, "K")
    }
}

/// Three significant digits.
pub(super) fn fmt_sig(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let digits = (3 - x.abs().log10().floor() as i32 - 1).clamp(0, 6) as usize;
    format!("{x:.digits$}")
}

/// A count in K, M or B.
pub(super) fn fmt_count(x: u64) -> String {
    let (s, unit) = scale(x as f64);
    format!("{:.2}{unit}", x as f64 / s)
}

/// A number with at most four decimals and no trailing zeros (`25`, `2.5`, `97.5`).
pub(super) fn fmt_short(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// `[a, b, c]`.
pub(super) fn list<T: std::fmt::Display>(xs: &[T]) -> String {
    format!(
        "[{}]",
        xs.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names() {
        assert_eq!(slug("flops (M)"), "flops_m");
        assert_eq!(slug("best #1"), "best_1");
        assert_eq!(fmt_short(25.0), "25");
        assert_eq!(fmt_short(2.5), "2.5");
        assert_eq!(fmt_short(0.1 * 100.0), "10");
        assert_eq!(fmt_sig(0.012345), "0.0123");
        assert_eq!(fmt_count(2_684_792), "2.68M");
        assert_eq!(list(&[1, 2]), "[1, 2]");
    }
}
