//! The size of a core's L2 cache, by which the packed GEMM sizes its chunks of rows: read
//! once from Linux's sysfs (the level-2 data or unified cache of cpu0), [`DEFAULT_L2`] where
//! it cannot be read or is out of bounds.

use std::fs;
use std::sync::OnceLock;

/// L2 size assumed where sysfs does not say (the smallest of recent x86 server cores').
pub(crate) const DEFAULT_L2: usize = 512 << 10;

/// Sizes outside this range are not believed.
const PLAUSIBLE: std::ops::RangeInclusive<usize> = (64 << 10)..=(64 << 20);

/// The L2 size in bytes (read once).
pub(crate) fn l2_bytes() -> usize {
    static L2: OnceLock<usize> = OnceLock::new();
    *L2.get_or_init(|| {
        read_l2()
            .filter(|b| PLAUSIBLE.contains(b))
            .unwrap_or(DEFAULT_L2)
    })
}

/// The level-2 data or unified cache of cpu0 from sysfs.
fn read_l2() -> Option<usize> {
    for i in 0..8 {
        let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{i}");
        let read = |f: &str| fs::read_to_string(format!("{dir}/{f}")).ok();
        let Some(level) = read("level") else { break };
        if level.trim() != "2" || read("type").is_some_and(|t| t.trim() == "Instruction") {
            continue;
        }
        return parse_size(read("size")?.trim());
    }
    None
}

/// A sysfs cache size: bytes, or a number with a `K`, `M` or `G` suffix.
fn parse_size(s: &str) -> Option<usize> {
    let (digits, unit) = match s.char_indices().last()? {
        (i, 'K') => (&s[..i], 1 << 10),
        (i, 'M') => (&s[..i], 1 << 20),
        (i, 'G') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    digits.parse::<usize>().ok()?.checked_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_sizes_parse() {
        assert_eq!(parse_size("1024K"), Some(1 << 20));
        assert_eq!(parse_size("2M"), Some(2 << 20));
        assert_eq!(parse_size("524288"), Some(512 << 10));
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("K"), None);
        assert_eq!(parse_size("12x"), None);
        assert_eq!(parse_size("99999999999999999999G"), None);
        assert_eq!(parse_size("18446744073709551615G"), None);
    }

    #[test]
    fn the_l2_size_is_plausible() {
        assert!(PLAUSIBLE.contains(&l2_bytes()), "{}", l2_bytes());
    }
}
