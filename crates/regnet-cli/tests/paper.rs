//! `regnet paper` end to end at toy scale: every embedded sweep (3 models each, 1 epoch on
//! 256 Fashion-MNIST images, tested on 200), trained by the real `regnet train`, collected
//! and reported; then a resumed run that trains nothing again, and bad options.

mod common;

use std::path::Path;

use common::{fails, ok, regnet};
use regnet_sweep::paper::experiments::{CLAIMS, SECTIONS, Test};
use regnet_sweep::paper::report::{OVERVIEW_SECTION, SWEEPS_SECTION};
use regnet_sweep::paper::sweeps::SWEEPS;
use serde_json::Value;

const TOY: &[&str] = &[
    "--models",
    "3",
    "--epochs",
    "1",
    "--train-subset",
    "256",
    "--test-subset",
    "200",
    "--bn-samples",
    "64",
    "--rounds",
    "200",
    "-j",
    "2",
    "-q",
];

fn paper(out: &Path, extra: &[&str]) -> (String, String) {
    let mut args = vec!["paper", "--out", out.to_str().unwrap()];
    args.extend_from_slice(TOY);
    args.extend_from_slice(extra);
    let o = regnet(&args);
    let (stdout, stderr) = (
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    );
    assert!(o.status.success(), "regnet {args:?} failed: {stderr}");
    (stdout, stderr)
}

/// Every section is there, in order, and every claim has exactly one verdict; with data,
/// every claim has a plot.
fn check_report(html: &str, with_data: bool) {
    let mut titles = vec![OVERVIEW_SECTION];
    titles.extend(SECTIONS.iter().map(|s| s.title));
    titles.push(SWEEPS_SECTION);
    let mut at = 0;
    for (i, t) in titles.iter().enumerate() {
        let h = format!("{} {}", i + 1, t);
        let pos = html[at..]
            .find(&h)
            .unwrap_or_else(|| panic!("section `{h}` missing"));
        at += pos + h.len();
    }
    for c in CLAIMS {
        let tag = format!("data-claim=\"{}\">", c.id);
        assert_eq!(html.matches(&tag).count(), 1, "{}: one verdict", c.id);
        let after = &html[html.find(&tag).unwrap()..];
        let verdict = after.split("Verdict: ").nth(1).unwrap();
        assert!(
            ["holds<", "does not hold<", "inconclusive<"]
                .iter()
                .any(|v| verdict.starts_with(v)),
            "{}: {}",
            c.id,
            &verdict[..40.min(verdict.len())]
        );
    }
    if with_data {
        assert!(
            html.matches("<svg").count() >= CLAIMS.len(),
            "a plot per claim"
        );
    }
    assert!(
        html.contains("95% bootstrap interval"),
        "the rule is stated"
    );
}

#[test]
fn toy_paper_run_reports_every_claim_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("paper");
    let (stdout, _) = paper(&out, &[]);
    for c in CLAIMS {
        assert!(stdout.contains(c.id), "{} printed", c.id);
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    check_report(&html, true);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("outcomes.json")).unwrap()).unwrap();
    let sweeps = summary["sweeps"].as_array().unwrap();
    assert_eq!(sweeps.len(), SWEEPS.len());
    for s in sweeps {
        assert_eq!(s[1]["finished"], 3, "{s}");
    }
    // Every comparison was measured on the data (3 finished models per sweep).
    let outcomes = summary["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), CLAIMS.len());
    for (c, o) in CLAIMS.iter().zip(outcomes) {
        assert_eq!(o["id"], c.id);
        if let Test::Compare { .. } = c.test {
            assert!(o["measured"]["Compare"].is_object(), "{o}");
        }
    }
    // The Markdown table has a row per claim, in order.
    let md = std::fs::read_to_string(out.join("outcomes.md")).unwrap();
    let rows: Vec<&str> = md.lines().skip(2).collect();
    assert_eq!(rows.len(), CLAIMS.len());
    for (row, c) in rows.iter().zip(CLAIMS) {
        assert!(row.contains(c.figure), "{row}");
    }
    // The swish sweep's configs use SiLU, the depthwise one g = 1.
    let cfg = |s: &str| std::fs::read_to_string(out.join(format!("sweeps/{s}/cfgs/000000.yaml")));
    assert!(
        cfg("regnetx_swish")
            .unwrap()
            .contains("ACTIVATION_FUN: silu")
    );
    assert!(cfg("regnetx_depthwise").unwrap().contains("GROUP_W: 1\n"));

    // A second run finds everything done and trains nothing again.
    let log = out.join("sweeps/regnetx/logs/000000/stdout.log");
    let before = std::fs::read_to_string(&log).unwrap();
    let (_, stderr) = paper(&out, &["--only", "X,A"]);
    assert!(
        stderr.contains("regnetx: 3 models found set up"),
        "{stderr}"
    );
    assert!(
        stderr.contains("3 finished before, 0 finished now"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), before);
    check_report(
        &std::fs::read_to_string(out.join("report.html")).unwrap(),
        true,
    );

    // Other settings on the same folder are refused, naming the file.
    let o = out.to_str().unwrap();
    let err = fails(&["paper", "--out", o, "--models", "4", "--only", "X", "-q"]);
    assert!(err.contains("sweep_cfg.yaml"), "{err}");
    let err = fails(&["paper", "--out", o, "--only", "X,Z"]);
    assert!(err.contains("`Z`"), "{err}");
    let err = fails(&["paper", "--out", o, "--dataset", "cifar10"]);
    assert!(err.contains("--data-path"), "{err}");
    let err = fails(&["paper", "--out", o, "--data-path", "/no/such/dir"]);
    assert!(err.contains("/no/such/dir: not a folder"), "{err}");
}

/// `--slurm` sets up and writes one job array per sweep and trains nothing here; the report
/// then has every section with every claim inconclusive, and `--report-only` sets up
/// nothing more.
#[test]
fn slurm_arrays_and_a_report_without_data() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("paper");
    let o = out.to_str().unwrap();
    // Too many jobs at once is refused before anything is set up.
    let err = fails(&["paper", "--out", o, "--only", "X", "-j", "100000"]);
    assert!(err.contains("--jobs 100000 is above the limit"), "{err}");
    assert!(!out.exists(), "nothing written before the refusal");
    ok(&[
        "paper", "--out", o, "--only", "X,Y", "--models", "2", "--slurm", "-q",
    ]);
    for k in ["regnetx", "regnety"] {
        let dir = out.join("sweeps").join(k);
        let script = std::fs::read_to_string(dir.join("slurm_array.sh")).unwrap();
        assert!(script.contains("#SBATCH --array=0-1"), "{script}");
        assert!(
            !dir.join("logs/000000/stdout.log").exists(),
            "nothing trained"
        );
    }
    let report = out.join("report.html");
    let html = std::fs::read_to_string(&report).unwrap();
    check_report(&html, false);
    assert_eq!(html.matches("Verdict: inconclusive<").count(), CLAIMS.len());
    std::fs::remove_file(&report).unwrap();
    ok(&["paper", "--out", o, "--report-only"]);
    check_report(&std::fs::read_to_string(&report).unwrap(), false);
    assert!(
        !out.join("sweeps/anynetx_a").exists(),
        "--report-only sets nothing up"
    );
}
