//! The clap arguments and run functions, as the `regnet` binary will call them.

mod common;

use clap::{Parser, Subcommand};
use regnet_sweep::cli::{self, FitArgs, SweepArgs};

/// Stands in for the `regnet` binary's two new subcommands.
#[derive(Parser)]
struct Regnet {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Sweep(SweepArgs),
    Fit(FitArgs),
}

fn run(args: &[&str]) -> anyhow::Result<()> {
    let cli = Regnet::try_parse_from(std::iter::once("regnet").chain(args.iter().copied()))?;
    match cli.command {
        Command::Sweep(a) => cli::run_sweep(a),
        Command::Fit(a) => cli::run_fit(a),
    }
}

#[test]
fn sweep_commands_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, dir) = common::small_sweep(tmp.path(), "cli", 4, 9);
    let trainer = common::fake_trainer(tmp.path());
    let f = file.to_str().unwrap();
    run(&["sweep", "setup", "--sweep-cfg", f]).unwrap();
    assert!(dir.join("cfgs/000003.yaml").is_file());
    let e = run(&["sweep", "setup", "--sweep-cfg", f]).unwrap_err();
    assert!(e.to_string().contains("--force"), "{e}");
    run(&["sweep", "setup", "--sweep-cfg", f, "--force", "--json"]).unwrap();
    run(&["sweep", "launch", "--sweep-cfg", f, "--dry-run"]).unwrap();
    assert!(!dir.join("logs").exists(), "a dry run runs nothing");
    let cmd = format!("sh {} {{cfg}} {{out_dir}} {{index}}", trainer.display());
    run(&[
        "sweep",
        "launch",
        "--sweep-cfg",
        f,
        "-j",
        "2",
        "--command",
        &cmd,
        "-q",
    ])
    .unwrap();
    assert!(dir.join("logs/000003/stdout.log").is_file());
    run(&[
        "sweep",
        "launch",
        "--sweep-cfg",
        f,
        "--slurm",
        "--max-parallel",
        "3",
    ])
    .unwrap();
    let script = std::fs::read_to_string(dir.join("slurm_array.sh")).unwrap();
    assert!(
        script.contains("#SBATCH --array=2%3"),
        "only the failed job is left:\n{script}"
    );
    // The default command is this binary's `train` subcommand.
    assert!(script.contains(" train --quiet --cfg \"${cfg}\" OUT_DIR \"${out_dir}\""));
    run(&["sweep", "collect", dir.to_str().unwrap()]).unwrap();
    assert!(dir.join("sweep.json").is_file());
    let out = tmp.path().join("an");
    run(&[
        "sweep",
        "analyze",
        f,
        "--out",
        out.to_str().unwrap(),
        "--rounds",
        "200",
    ])
    .unwrap();
    assert!(out.join("report.html").is_file() && out.join("edf.svg").is_file());
    run(&["sweep", "analyze", dir.to_str().unwrap()]).unwrap();
    assert!(dir.join("analysis/report.html").is_file());
    assert!(run(&["sweep", "analyze"]).is_err(), "needs a sweep");
    assert!(
        run(&[
            "sweep",
            "launch",
            "--sweep-cfg",
            f,
            "--command",
            "echo {out_dir}"
        ])
        .is_err()
    );
}

#[test]
fn fit_command() {
    run(&[
        "fit",
        "--widths",
        "24,56,152,152,152,152,368,368,368,368,368,368,368",
    ])
    .unwrap();
    run(&[
        "fit",
        "--depths",
        "3,4,6,3",
        "--stage-widths",
        "256,512,1024,2048",
        "--json",
    ])
    .unwrap();
    run(&["fit", "RegNetX-200MF"]).unwrap();
    run(&[
        "fit",
        "MODEL.TYPE",
        "regnet",
        "REGNET.DEPTH",
        "14",
        "--wm-max",
        "2.6",
    ])
    .unwrap();
    assert!(run(&["fit"]).is_err());
    assert!(run(&["fit", "--widths", "8,0"]).is_err());
    assert!(
        run(&["fit", "--depths", "1,2"]).is_err(),
        "--depths needs --stage-widths"
    );
}
