//! The claim table: each finding of "Designing Network Design Spaces" that `regnet paper`
//! tests, the sweeps it compares, and what the paper says.

/// What a comparison expects of the `new` sweep's errors against the `base` sweep's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// No worse: the restriction loses nothing.
    NoWorse,
    /// Lower errors.
    Better,
    /// Higher errors.
    Worse,
}

/// What a trend claim expects of the best models' value of a parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TrendExpect {
    /// The best models' value is about this.
    About(f64),
    /// The best models' value grows with flops.
    Increases,
}

/// A parameter of the sampled models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// Depth `d` (blocks).
    Depth,
    /// Bottleneck ratio `b` (the paper's convention: `1 / BOT_MUL`).
    BottleneckRatio,
    /// Group width `g`.
    GroupW,
    /// Width multiplier `wm`.
    Wm,
    /// Width slope `wa`.
    Wa,
    /// Initial width `w0`.
    W0,
}

impl Param {
    /// The paper's symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Param::Depth => "d",
            Param::BottleneckRatio => "b",
            Param::GroupW => "g",
            Param::Wm => "w_m",
            Param::Wa => "w_a",
            Param::W0 => "w_0",
        }
    }
}

/// How a claim is tested.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Test {
    /// Errors of sweep `new` against sweep `base` (keys of [`super::sweeps::SWEEPS`]).
    Compare {
        /// The sweep the claim is about.
        new: &'static str,
        /// The sweep it is compared with.
        base: &'static str,
        /// The expected direction.
        expect: Expect,
    },
    /// The best models' value of `param` in sweep `sweep`.
    Trend {
        /// The sweep.
        sweep: &'static str,
        /// The parameter.
        param: Param,
        /// The expectation.
        expect: TrendExpect,
    },
}

/// The report section a claim belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section {
    /// Title.
    pub title: &'static str,
    /// What the section shows, in one paragraph.
    pub intro: &'static str,
}

/// One claim of the paper.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Claim {
    /// Identifier (stable: the report and tests use it).
    pub id: &'static str,
    /// Section title (claims of one section are consecutive).
    pub section: &'static str,
    /// The paper's figure.
    pub figure: &'static str,
    /// The claim, in the paper's terms.
    pub text: &'static str,
    /// How it is tested.
    pub test: Test,
}

const fn cmp(new: &'static str, base: &'static str, expect: Expect) -> Test {
    Test::Compare { new, base, expect }
}

const fn trend(param: Param, expect: TrendExpect) -> Test {
    Test::Trend {
        sweep: "regnetx_trends",
        param,
        expect,
    }
}

/// The report's sections, in order (the claims name them by title).
pub const SECTIONS: &[Section] = &[
    Section {
        title: "AnyNetX_A to AnyNetX_B: shared bottleneck ratio",
        intro: "AnyNetX_B forces one bottleneck ratio b on all stages of AnyNetX_A.",
    },
    Section {
        title: "AnyNetX_B to AnyNetX_C: shared group width",
        intro: "AnyNetX_C also forces one group width g on all stages.",
    },
    Section {
        title: "AnyNetX_C to AnyNetX_D: increasing widths",
        intro: "AnyNetX_D keeps only networks whose stage widths do not decrease.",
    },
    Section {
        title: "AnyNetX_D to AnyNetX_E: increasing depths",
        intro: "AnyNetX_E keeps only networks whose stage depths do not decrease.",
    },
    Section {
        title: "AnyNetX_E to RegNetX: the quantized linear rule",
        intro: "RegNetX generates the stage widths and depths from four numbers (d, w0, wa, \
                wm) with b = 1; the last row is the comparison the project's first sweep made.",
    },
    Section {
        title: "RegNetY against RegNetX: squeeze-excitation",
        intro: "RegNetY is RegNetX with a squeeze-excitation unit (se_r = 0.25) in every block.",
    },
    Section {
        title: "Trends of the best models",
        intro: "The paper reads off the parameters of the best RegNet models across flops \
                regimes. Here one RegNetX sweep samples d, b, g, wm, wa and w0 in a wider \
                range (regnetx_trends); the bands are the empirical bootstrap of the best \
                model's value. The flops band is narrow (2-5 MF), so a trend over flops \
                compares the lower and upper half of that band only.",
    },
    Section {
        title: "Ablations",
        intro: "Each ablation changes one thing of RegNetX: an inverted bottleneck (b = 1/4), \
                depthwise convolutions (g = 1), Swish instead of ReLU, four stages instead \
                of three.",
    },
];

/// Every claim tested, in report order.
pub const CLAIMS: &[Claim] = &[
    Claim {
        id: "a_to_b",
        section: SECTIONS[0].title,
        figure: "Fig. 5 (left)",
        text: "Sharing the bottleneck ratio loses nothing: the EDFs of AnyNetX_A and \
               AnyNetX_B are virtually identical.",
        test: cmp("anynetx_b", "anynetx_a", Expect::NoWorse),
    },
    Claim {
        id: "b_to_c",
        section: SECTIONS[1].title,
        figure: "Fig. 5 (middle)",
        text: "Sharing the group width loses nothing (AnyNetX_C is no worse than AnyNetX_B).",
        test: cmp("anynetx_c", "anynetx_b", Expect::NoWorse),
    },
    Claim {
        id: "c_to_d",
        section: SECTIONS[2].title,
        figure: "Fig. 7 (left)",
        text: "Increasing widths improve the EDF substantially (AnyNetX_D better than \
               AnyNetX_C).",
        test: cmp("anynetx_d", "anynetx_c", Expect::Better),
    },
    Claim {
        id: "d_to_e",
        section: SECTIONS[3].title,
        figure: "Fig. 7 (right)",
        text: "Increasing depths improve the EDF further (AnyNetX_E better than AnyNetX_D).",
        test: cmp("anynetx_e", "anynetx_d", Expect::Better),
    },
    Claim {
        id: "e_to_regnetx",
        section: SECTIONS[4].title,
        figure: "Fig. 9 (middle)",
        text: "RegNetX has better average models than AnyNetX_E.",
        test: cmp("regnetx", "anynetx_e", Expect::Better),
    },
    Claim {
        id: "a_to_regnetx",
        section: SECTIONS[4].title,
        figure: "Fig. 9 (right)",
        text: "RegNetX is far better than the unrestricted AnyNetX_A.",
        test: cmp("regnetx", "anynetx_a", Expect::Better),
    },
    Claim {
        id: "regnety",
        section: SECTIONS[5].title,
        figure: "Fig. 14",
        text: "RegNetY (with SE) is better than RegNetX.",
        test: cmp("regnety", "regnetx", Expect::Better),
    },
    Claim {
        id: "trend_depth",
        section: SECTIONS[6].title,
        figure: "Fig. 11 (depth)",
        text: "The best models have about 20 blocks, at every flops regime.",
        test: trend(Param::Depth, TrendExpect::About(20.0)),
    },
    Claim {
        id: "trend_b",
        section: SECTIONS[6].title,
        figure: "Fig. 11 (bottleneck ratio)",
        text: "The best models use a bottleneck ratio b = 1 (no bottleneck).",
        test: trend(Param::BottleneckRatio, TrendExpect::About(1.0)),
    },
    Claim {
        id: "trend_wm",
        section: SECTIONS[6].title,
        figure: "Fig. 11 (width multiplier)",
        text: "The width multiplier of good models is about 2.5.",
        test: trend(Param::Wm, TrendExpect::About(2.5)),
    },
    Claim {
        id: "trend_g",
        section: SECTIONS[6].title,
        figure: "Fig. 11 (group width)",
        text: "The group width of the best models grows with flops.",
        test: trend(Param::GroupW, TrendExpect::Increases),
    },
    Claim {
        id: "trend_wa",
        section: SECTIONS[6].title,
        figure: "Fig. 11 (w_a)",
        text: "The width slope w_a of the best models grows with flops.",
        test: trend(Param::Wa, TrendExpect::Increases),
    },
    Claim {
        id: "trend_w0",
        section: SECTIONS[6].title,
        figure: "Fig. 11 (w_0)",
        text: "The initial width w_0 of the best models grows with flops.",
        test: trend(Param::W0, TrendExpect::Increases),
    },
    Claim {
        id: "inverted",
        section: SECTIONS[7].title,
        figure: "Fig. 12 (left)",
        text: "An inverted bottleneck (b < 1) degrades the EDF.",
        test: cmp("regnetx_inverted", "regnetx", Expect::Worse),
    },
    Claim {
        id: "depthwise",
        section: SECTIONS[7].title,
        figure: "Fig. 12 (middle)",
        text: "Depthwise convolution (g = 1) performs poorly compared with a free group width.",
        test: cmp("regnetx_depthwise", "regnetx", Expect::Worse),
    },
    Claim {
        id: "swish",
        section: SECTIONS[7].title,
        figure: "Fig. 12 (right)",
        text: "Swish outperforms ReLU at low flops (ReLU wins at high flops; 2-5 MF is far \
               below the paper's lowest regime).",
        test: cmp("regnetx_swish", "regnetx", Expect::Better),
    },
    Claim {
        id: "stages",
        section: SECTIONS[7].title,
        figure: "Appendix (fewer stages)",
        text: "Three-stage networks perform considerably worse than four-stage ones.",
        test: cmp("regnetx_4stages", "regnetx", Expect::Better),
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paper::sweeps;

    #[test]
    fn claims_name_known_sweeps_and_sections_in_order() {
        let mut last = 0;
        for c in CLAIMS {
            let s = SECTIONS.iter().position(|s| s.title == c.section).unwrap();
            assert!(s >= last, "{} out of section order", c.id);
            last = s;
            let names = match c.test {
                Test::Compare { new, base, .. } => vec![new, base],
                Test::Trend { sweep, .. } => vec![sweep],
            };
            for n in names {
                assert!(sweeps::SWEEPS.iter().any(|s| s.key == n), "{n}");
            }
        }
        // Every section has a claim, and ids are unique.
        for s in SECTIONS {
            assert!(CLAIMS.iter().any(|c| c.section == s.title), "{}", s.title);
        }
        let mut ids: Vec<&str> = CLAIMS.iter().map(|c| c.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), CLAIMS.len());
    }
}
