//! Measures rejection-sampling speed: draws `N` candidates (default one million) from each
//! design space given (default RegNetX and AnyNetX_E), counts each one's complexity at
//! 224x224 with 1000 classes, and prints the time, with the CPU model and thread count.
//!
//! ```sh
//! cargo run --release -p regnet-sweep --example sampling_speed -- [N] [SPACE ...] [--layer-plan]
//! ```
//!
//! `--layer-plan` also times the general path (every candidate through its full config and
//! layer plan, [`regnet_sweep::setup::sample_with_layer_plan`]) in the same run, alternating
//! with the fast path, and checks that both keep the same candidates.

use std::path::Path;

/// The CPU model from `/proc/cpuinfo` (Linux), or the architecture.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// A sweep drawing `n` candidates from `space`: the flops window keeps a few percent, so
/// `NUM_CONFIGS` (at most its limit) is not reached before `NUM_SAMPLES = n` draws.
fn sweep(n: usize, space: &str) -> regnet_sweep::SweepConfig {
    let configs = n.min(regnet_sweep::sweep_config::MAX_NUM_CONFIGS);
    let yaml = format!(
        "NAME: speed\nSETUP:\n  NUM_CONFIGS: {configs}\n  NUM_SAMPLES: {n}\n  RNG_SEED: 1\n  \
         DESIGN_SPACE: {space}\n  BASE_CFG: {{MODEL: {{NUM_CLASSES: 1000}}, TRAIN: {{IM_SIZE: 224}}}}\n  \
         CONSTRAINTS:\n    CX: {{FLOPS: [360.0e+6, 400.0e+6]}}\n"
    );
    regnet_sweep::SweepConfig::from_yaml(&yaml, Path::new("speed.yaml"))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let layer_plan = args.iter().any(|a| a == "--layer-plan");
    let mut rest = args.iter().filter(|a| !a.starts_with("--"));
    let n: usize = rest
        .next()
        .map_or(1_000_000, |s| s.parse().expect("N is a number"));
    let mut spaces: Vec<&str> = rest.map(String::as_str).collect();
    if spaces.is_empty() {
        spaces = vec!["RegNetX", "AnyNetX_E"];
    }
    let threads = rayon::current_num_threads();
    println!("CPU: {}; {threads} threads", cpu_model());
    for space in spaces {
        let sweep = sweep(n, space);
        let (kept, st) = regnet_sweep::setup::sample(&sweep).expect("sampling works");
        println!(
            "{space}: {} candidates in {:.2} s = {:.0} candidates/s; kept {} (360-400MF), \
             rejected: {} invalid, {} RegNet stages, {} flops, {} duplicates",
            st.drawn,
            st.seconds,
            st.draws_per_second,
            kept.len(),
            st.invalid,
            st.regnet_stages,
            st.flops,
            st.duplicates
        );
        if layer_plan {
            let (slow, sst) =
                regnet_sweep::setup::sample_with_layer_plan(&sweep).expect("sampling works");
            assert_eq!(slow, kept, "the layer-plan path keeps the same candidates");
            println!(
                "{space} via the layer plan: {} candidates in {:.2} s ({:.1}x the fast path's time)",
                sst.drawn,
                sst.seconds,
                sst.seconds / st.seconds
            );
        }
    }
}
