//! Limits on every count and size that comes from outside (configs, `KEY VALUE` overrides,
//! spec metadata in weight files), all in one place.
//!
//! Input is checked against these *before* anything is allocated from it, so that a config
//! asking for a network of 10^9 blocks, or a file whose metadata claims one, is a one-line
//! error naming the key and the limit rather than an allocation failure that aborts the
//! process. The limits are far above any network of the RegNet paper (RegNetY-128GF has 27
//! blocks and widths below 8,000; pycls's deepest ResNet has 50 blocks) and still keep the
//! layer plan and its complexity count small and exact (see [`crate::complexity`], which
//! counts in 128 bits, so no count below these limits can wrap).

use crate::error::{Error, Result};
use crate::spec::{Arch, NetSpec};

/// Most blocks in one network (all stages together; `REGNET.DEPTH`, `MODEL.DEPTH`,
/// `ANYNET.DEPTHS`, `EN.DEPTHS`).
pub const MAX_BLOCKS: usize = 10_000;
/// Most stages in one network (length of `ANYNET.DEPTHS` and the like).
pub const MAX_STAGES: usize = 256;
/// Widest layer: channels of any conv (stem, stage, bottleneck, SE, head) and input channels.
pub const MAX_WIDTH: usize = 65_536;
/// Most classes of the classifier (`MODEL.NUM_CLASSES`).
pub const MAX_CLASSES: usize = 1 << 20;
/// Largest conv kernel (`EN.KERNELS`).
pub const MAX_KERNEL: usize = 31;
/// Largest stride of a stage.
pub const MAX_STRIDE: usize = 64;
/// Largest image side (`TRAIN.IM_SIZE`, `TEST.IM_SIZE`, complexity's input size).
pub const MAX_IM_SIZE: usize = 16_384;
/// Largest mini-batch (`TRAIN.BATCH_SIZE`, `TEST.BATCH_SIZE`).
pub const MAX_BATCH: usize = 65_536;
/// Most decoding threads of the data loader (`EXT.LOADER_THREADS`; pycls's loaders use
/// 4 to 8 workers per GPU). Past a few thousand, starting the threads fails on memory.
pub const MAX_LOADER_THREADS: usize = 256;
/// Most epochs (`OPTIM.MAX_EPOCH`, `OPTIM.WARMUP_EPOCHS`).
pub const MAX_EPOCHS: usize = 1_000_000;
/// Most entries of any list-valued config key.
pub const MAX_LIST: usize = 1_024;
/// Largest config file read, in bytes (pycls's full dumps are about 5 KB).
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// Deepest nesting of YAML collections in a config (pycls's need 2). The YAML parser's
/// time grows faster than linearly with nesting, so deeper input is refused before parsing.
pub const MAX_YAML_NESTING: usize = 32;
/// Most dimensions of a tensor in a weight file.
pub const MAX_TENSOR_RANK: usize = 8;
/// Most ops RandAugment applies per image (`N` of `TRAIN.AUGMENT`; pycls's list has 15).
pub const MAX_AUGMENT_OPS: usize = 64;

/// Checks `value <= max` for the count `what` (a key or a description), naming both.
pub fn check(what: &str, value: usize, max: usize) -> Result<()> {
    if value > max {
        return Err(Error::spec(format!(
            "{what} {value} is above the limit of {max}"
        )));
    }
    Ok(())
}

/// A stage's depth, width, stride and group width, as the checks see them.
type StageCounts = (usize, usize, usize, usize);

/// Checks the counts of a spec that the layer plan allocates from (blocks, stages) and its
/// given widths, before [`crate::network::Network::from_spec`] builds anything. Widths the
/// plan derives (bottleneck, SE, expanded) are checked on the built plan.
pub fn check_spec(spec: &NetSpec) -> Result<()> {
    check("input channels", spec.in_channels, MAX_WIDTH)?;
    check("number of classes", spec.num_classes, MAX_CLASSES)?;
    let (stem_w, head_w, stages): (usize, usize, Vec<StageCounts>) = match &spec.arch {
        Arch::AnyNet(a) => (
            a.stem_w,
            a.head_w,
            a.stages
                .iter()
                .take(MAX_STAGES + 1)
                .map(|s| (s.depth, s.width, s.stride, s.group_w.unwrap_or(1)))
                .collect(),
        ),
        Arch::RegNet(r) => {
            check("RegNet depth", r.depth, MAX_BLOCKS)?;
            check("RegNet w0", r.w0, MAX_WIDTH)?;
            check("RegNet group width", r.group_w, MAX_WIDTH)?;
            check("RegNet stride", r.stride, MAX_STRIDE)?;
            (r.stem_w, r.head_w, Vec::new())
        }
        Arch::EffNet(e) => {
            for (i, s) in e.stages.iter().take(MAX_STAGES).enumerate() {
                check(&format!("stage {}: kernel", i + 1), s.kernel, MAX_KERNEL)?;
            }
            let stages = e.stages.iter().take(MAX_STAGES + 1);
            let stages = stages.map(|s| (s.depth, s.width, s.stride, 1)).collect();
            (e.stem_w, e.head_w, stages)
        }
    };
    check("stem width", stem_w, MAX_WIDTH)?;
    check("head width", head_w, MAX_WIDTH)?;
    check("number of stages", stages.len(), MAX_STAGES)?;
    let mut blocks = 0usize;
    for (i, &(depth, width, stride, group_w)) in stages.iter().enumerate() {
        let n = i + 1;
        check(&format!("stage {n}: depth"), depth, MAX_BLOCKS)?;
        check(&format!("stage {n}: width"), width, MAX_WIDTH)?;
        check(&format!("stage {n}: stride"), stride, MAX_STRIDE)?;
        check(&format!("stage {n}: group width"), group_w, MAX_WIDTH)?;
        // Each term is at most MAX_BLOCKS and there are at most MAX_STAGES: no overflow.
        blocks += depth;
    }
    check("total depth (blocks of all stages)", blocks, MAX_BLOCKS)
}

/// The deepest nesting of YAML collections in `text`, or an error as soon as it passes
/// [`MAX_YAML_NESTING`]. Counts flow collections (`[`, `{` outside quotes and comments)
/// plus, per line, the compact block sequences (`- - x`) that open before any content;
/// block nesting by indentation is bounded by the parser's own recursion limit, reached in
/// linear time. This runs before the YAML parser, whose time is super-linear in nesting.
pub fn check_yaml_nesting(text: &str) -> std::result::Result<(), String> {
    let mut flow = 0usize;
    for (no, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let mut depth = flow + compact_sequences(trimmed);
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        for c in trimmed.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '#') if prev.is_whitespace() => break,
                (None, '"' | '\'') if flow > 0 || "[{,: ".contains(prev) => quote = Some(c),
                (None, '[' | '{') => {
                    flow += 1;
                    depth += 1;
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
            if depth > MAX_YAML_NESTING {
                return Err(format!(
                    "line {}: collections nested deeper than {MAX_YAML_NESTING} levels",
                    no + 1
                ));
            }
            prev = c;
        }
    }
    Ok(())
}

/// How many `- ` sequence markers open a line (`- - - x` is three nested sequences).
fn compact_sequences(line: &str) -> usize {
    let mut n = 0;
    let mut rest = line;
    while let Some(r) = rest.strip_prefix('-') {
        if !(r.is_empty() || r.starts_with(' ') || r.starts_with('\t')) {
            break;
        }
        n += 1;
        rest = r.trim_start();
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_counts_flow_and_compact_sequences() {
        assert!(check_yaml_nesting("A:\n  B: [1, [2, 3]]\n  C: {x: 1}\n").is_ok());
        assert!(check_yaml_nesting("A: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['\n").is_ok());
        assert!(check_yaml_nesting("A: 1 # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n").is_ok());
        let deep = format!("A: {}{}\n", "[".repeat(33), "]".repeat(33));
        assert!(check_yaml_nesting(&deep).unwrap_err().contains("line 1"));
        let compact = format!("A:\n{}1\n", "- ".repeat(40));
        assert!(check_yaml_nesting(&compact).unwrap_err().contains("line 2"));
        assert!(check_yaml_nesting("- - 1\n- -2\n").is_ok());
    }

    #[test]
    fn check_names_value_and_limit() {
        assert!(check("depth", MAX_BLOCKS, MAX_BLOCKS).is_ok());
        let e = check("depth", MAX_BLOCKS + 1, MAX_BLOCKS).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid network: depth 10001 is above the limit of 10000"
        );
    }
}
