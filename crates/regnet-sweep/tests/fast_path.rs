//! The fast verdict of rejection sampling against the general one: the complexity it
//! counts stage by stage equals `regnet_core::complexity` of the full layer plan on many
//! random candidates of every design space, it declines exactly the networks the plan
//! refuses, and a sweep sampled with it keeps the same candidates with the same statistics.

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use regnet_sweep::apply;
use regnet_sweep::constraints::config_complexity;
use regnet_sweep::design_space::SpaceDraw;
use regnet_sweep::fast_path::{FastPath, NetDraw, NetSource};
use regnet_sweep::sampler::{Param, Sampler};
use regnet_sweep::{SweepConfig, setup};

/// A sweep of `space` (a name or a flow mapping) with `extra` SETUP lines.
fn sweep(space: &str, base: &str, extra: &str) -> SweepConfig {
    let yaml = format!(
        "NAME: t\nSETUP:\n  NUM_CONFIGS: 4000\n  NUM_SAMPLES: 4000\n  RNG_SEED: 3\n  \
         DESIGN_SPACE: {space}\n  BASE_CFG: {base}\n{extra}"
    );
    SweepConfig::from_yaml(&yaml, Path::new("t.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

/// The design spaces tested, with ImageNet and small-input settings.
fn sweeps() -> Vec<SweepConfig> {
    let imagenet = "{MODEL: {NUM_CLASSES: 1000}, TRAIN: {IM_SIZE: 224}}";
    let cifar = "{MODEL: {NUM_CLASSES: 10}, TRAIN: {IM_SIZE: 32}, EXT: {IN_CHANNELS: 1}}";
    let mut out = Vec::new();
    for name in [
        "AnyNetX_A",
        "AnyNetX_B",
        "AnyNetX_C",
        "AnyNetX_D",
        "AnyNetX_E",
    ] {
        out.push(sweep(name, imagenet, ""));
        let small = format!(
            "{{NAME: {name}, NUM_STAGES: 3, STEM_TYPE: res_stem_cifar, STEM_W: 16, DEPTH: [1, 6], \
             WIDTH: [8, 256], GROUP_WS: [1, 2, 4, 8, 16, 32, 64]}}"
        );
        out.push(sweep(&small, cifar, ""));
    }
    out.push(sweep(
        "{NAME: AnyNetX_A, STEM_TYPE: res_stem_in, NUM_STAGES: 5}",
        imagenet,
        "",
    ));
    for name in ["RegNetX", "RegNetY"] {
        out.push(sweep(name, imagenet, ""));
        let wide = format!(
            "{{NAME: {name}, NUM_STAGES: [1, 6], DEPTH: [1, 30], W0: [8, 512], WA: [0.1, 512.0], \
             WM: [1.5, 4.0], GROUP_W: [1, 256], BOT_MUL: [0.25, 4.0]}}"
        );
        out.push(sweep(&wide, imagenet, ""));
        let cifar_space = format!("{{NAME: {name}, NUM_STAGES: 3, STEM_TYPE: res_stem_cifar}}");
        out.push(sweep(&cifar_space, cifar, ""));
    }
    out
}

/// The complexity of `params` on the sweep's base config, through the layer plan.
fn plan_complexity(sweep: &SweepConfig, params: &[Param]) -> Option<regnet_sweep::constraints::Cx> {
    let mut cfg = sweep.setup.base_cfg.clone();
    for (k, v) in params {
        apply::setter(k).expect("a model key")(&mut cfg, v).unwrap();
    }
    config_complexity(&cfg).ok()
}

#[test]
fn fast_complexity_equals_the_layer_plan_on_random_candidates() {
    for sweep in sweeps() {
        let fast = FastPath::new(&sweep).expect("design spaces take the fast path");
        assert_eq!(fast.source, NetSource::DesignSpace);
        let space = sweep.setup.design_space.as_ref().unwrap().prepare();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut net = fast.scratch();
        let (mut valid, mut invalid) = (0, 0);
        for _ in 0..3000 {
            let d = space.draw(&mut rng);
            let got = fast.complexity(NetDraw::from(&d), &mut net);
            let want = plan_complexity(&sweep, &d.to_params());
            assert_eq!(got, want, "{:?} in {}", d, sweep.text);
            if want.is_some() {
                valid += 1
            } else {
                invalid += 1
            }
        }
        assert!(
            valid > 1000,
            "{valid} valid, {invalid} invalid of {}",
            sweep.text
        );
    }
}

#[test]
fn regnet_sampler_without_design_space_takes_the_fast_path() {
    let yaml = "NAME: t\nSETUP:\n  NUM_CONFIGS: 5\n  NUM_SAMPLES: 3000\n  \
        BASE_CFG: {MODEL: {TYPE: regnet, NUM_CLASSES: 10}, TRAIN: {IM_SIZE: 64}, REGNET: {SE_ON: true}}\n  \
        SAMPLERS:\n    OPTIM.BASE_LR: {TYPE: float_sampler, RAND_TYPE: log_uniform, RANGE: [0.1, 1.0], QUANTIZE: 1.0e-3}\n    \
        REGNET: {TYPE: regnet_sampler, DEPTH: [2, 20], GROUP_W: [1, 64], BOT_MUL: [0.5, 2.0]}\n  \
        CONSTRAINTS: {CX: {FLOPS: [1.0e+6, 60.0e+6]}, REGNET: {NUM_STAGES: [1, 5]}}\n";
    let sweep = SweepConfig::from_yaml(yaml, Path::new("t.yaml")).unwrap();
    let fast = FastPath::new(&sweep).expect("fast path");
    assert_eq!(fast.source, NetSource::Sampler(1));
    let Sampler::RegNet(r) = &sweep.setup.samplers[1].1 else {
        panic!("a regnet_sampler")
    };
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut net = fast.scratch();
    for _ in 0..2000 {
        let p = r.sample(&mut rng);
        let got = fast.complexity(NetDraw::RegNet(&p), &mut net);
        assert_eq!(got, plan_complexity(&sweep, &p.to_params()), "{p:?}");
    }
    // Sampling the whole sweep both ways keeps the same candidates.
    let (a, sa) = setup::sample(&sweep).unwrap();
    let (b, sb) = setup::sample_with_layer_plan(&sweep).unwrap();
    assert_eq!(a, b);
    assert_eq!(same_stats(sa), same_stats(sb));
}

/// Statistics without the timings.
fn same_stats(mut s: setup::SampleStats) -> setup::SampleStats {
    (s.seconds, s.draws_per_second) = (0.0, 0.0);
    s
}

#[test]
fn sweeps_keep_the_same_candidates_either_way() {
    let flops = "  CONSTRAINTS: {CX: {FLOPS: [200.0e+6, 600.0e+6], PARAMS: [0, 6.0e+6]}}\n";
    let imagenet = "{MODEL: {NUM_CLASSES: 1000}, TRAIN: {IM_SIZE: 224}}";
    for space in [
        "RegNetY",
        "AnyNetX_B",
        "AnyNetX_E",
        "{NAME: RegNetX, NUM_STAGES: [3, 4]}",
    ] {
        let sweep = sweep(space, imagenet, flops);
        let (a, sa) = setup::sample(&sweep).unwrap();
        let (b, sb) = setup::sample_with_layer_plan(&sweep).unwrap();
        assert!(!a.is_empty() && sa.flops > 0, "{space}: {sa:?}");
        assert_eq!(a, b, "{space}");
        assert_eq!(same_stats(sa), same_stats(sb), "{space}");
    }
}

#[test]
fn a_sampled_model_key_besides_the_space_takes_the_general_path() {
    let extra = "  SAMPLERS:\n    TRAIN.IM_SIZE: {TYPE: value_sampler, VALUES: [32, 64]}\n";
    let sweep = sweep("RegNetX", "{MODEL: {NUM_CLASSES: 10}}", extra);
    assert!(FastPath::new(&sweep).is_none());
    let extra = "  SAMPLERS:\n    OPTIM.BASE_LR: {TYPE: value_sampler, VALUES: [0.1, 0.2]}\n";
    let sweep = sweep_with(extra);
    assert!(FastPath::new(&sweep).is_some());
    // The draw order (space, then samplers) is the same on both paths.
    let space = sweep.setup.design_space.as_ref().unwrap().prepare();
    let d = space.draw(&mut ChaCha8Rng::seed_from_u64(1));
    assert!(matches!(d, SpaceDraw::RegNet(_)));
}

fn sweep_with(extra: &str) -> SweepConfig {
    sweep("RegNetX", "{MODEL: {NUM_CLASSES: 10}}", extra)
}
