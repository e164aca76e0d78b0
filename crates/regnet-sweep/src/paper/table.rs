//! The outcomes as a Markdown table (`OUT/outcomes.md`): one row per claim with the paper's
//! figure, the claim, the verdict and the numbers, for a README or an issue.

use super::experiments::CLAIMS;
use super::outcome::Outcome;

/// A cell's text with the characters that would break a table row escaped.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The table: a header and one row per outcome, in claim order.
pub fn markdown(outcomes: &[Outcome]) -> String {
    let mut t = String::from("| claim | paper | outcome | measured |\n|---|---|---|---|\n");
    for o in outcomes {
        let claim = CLAIMS.iter().find(|c| c.id == o.id);
        let (figure, text) = claim.map_or(("", ""), |c| (c.figure, c.text));
        t.push_str(&format!(
            "| {} | {} | **{}** | {} |\n",
            cell(text),
            cell(figure),
            o.verdict.text(),
            cell(&o.summary)
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paper::outcome::Measured;
    use crate::paper::verdict::Verdict;

    #[test]
    fn one_row_per_claim_with_its_figure_and_escaped_cells() {
        let outcomes: Vec<Outcome> = CLAIMS
            .iter()
            .map(|c| Outcome {
                id: c.id.into(),
                verdict: Verdict::Holds,
                measured: Measured::Missing,
                summary: "a | b".into(),
            })
            .collect();
        let t = markdown(&outcomes);
        let rows: Vec<&str> = t.lines().skip(2).collect();
        assert_eq!(rows.len(), CLAIMS.len());
        for (row, c) in rows.iter().zip(CLAIMS) {
            assert!(row.contains(c.figure), "{row}");
            assert!(row.contains("**holds**"), "{row}");
            assert!(row.ends_with("| a \\| b |"), "{row}");
            // Four cells: the escaped bar does not split one.
            assert_eq!(row.replace("\\|", "").matches('|').count(), 5, "{row}");
        }
    }
}
