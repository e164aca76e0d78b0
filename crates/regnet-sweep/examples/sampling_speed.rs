//! Measures rejection-sampling speed: draws `N` candidates (default one million) from a
//! design space, builds each network with `regnet_core` and counts its complexity.
//!
//! ```sh
//! cargo run --release -p regnet-sweep --example sampling_speed -- [N] [DESIGN_SPACE]
//! ```

use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .get(1)
        .map_or(1_000_000, |s| s.parse().expect("N is a number"));
    let space = args.get(2).map_or("RegNetX", String::as_str);
    // Every draw is kept unless it breaks a constraint, so NUM_CONFIGS = N draws N.
    let yaml = format!(
        "NAME: speed\nSETUP:\n  NUM_CONFIGS: {n}\n  NUM_SAMPLES: {n}\n  RNG_SEED: 1\n  \
         DESIGN_SPACE: {space}\n  BASE_CFG: {{MODEL: {{NUM_CLASSES: 1000}}, TRAIN: {{IM_SIZE: 224}}}}\n  \
         CONSTRAINTS:\n    CX: {{FLOPS: [360.0e+6, 400.0e+6]}}\n"
    );
    let sweep = regnet_sweep::SweepConfig::from_yaml(&yaml, Path::new("speed.yaml"))
        .expect("valid sweep config");
    let threads = rayon::current_num_threads();
    let (kept, st) = regnet_sweep::setup::sample(&sweep).expect("sampling works");
    println!(
        "{space}: {} candidates in {:.2} s = {:.0} candidates/s on {threads} threads; \
         kept {} (360-400MF), rejected: {} invalid, {} RegNet stages, {} flops, {} duplicates",
        st.drawn,
        st.seconds,
        st.draws_per_second,
        kept.len(),
        st.invalid,
        st.regnet_stages,
        st.flops,
        st.duplicates
    );
}
