//! Sweep setup: written configs, constraints, deduplication, reproducibility, design
//! spaces, and errors in sweep configs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use regnet_core::complexity::complexity;
use regnet_core::config::Config;
use regnet_core::network::Network;
use regnet_sweep::SweepConfig;
use regnet_sweep::setup::{self, SetupOptions, SetupSummary};

/// Writes `yaml` as `dir/sweep.yaml` and returns its path.
fn sweep_file(dir: &Path, yaml: &str) -> PathBuf {
    let p = dir.join("sweep.yaml");
    std::fs::write(&p, yaml).unwrap();
    p
}

/// A written config, read back as training will read it.
fn load_cfg(sweep_dir: &Path, rel: &str) -> Config {
    Config::load(&sweep_dir.join(rel).to_string_lossy()).unwrap()
}

/// The pycls CIFAR RegNet sweep (configs/sweeps/cifar/cifar_regnet.yaml), smaller.
const CIFAR_REGNET: &str = r#"
NAME: cifar/regnet
ROOT_DIR: out
SETUP:
  NUM_CONFIGS: 12
  RNG_SEED: 3
  SAMPLERS:
    REGNET:
      TYPE: regnet_sampler
      DEPTH: [6, 16]
      GROUP_W: [1, 32]
    OPTIM.BASE_LR:
      TYPE: float_sampler
      RAND_TYPE: log_uniform
      RANGE: [0.1, 1.0]
      QUANTIZE: 1.0e-3
  CONSTRAINTS:
    CX:
      FLOPS: [0.12e+9, 0.13e+9]
      PARAMS: [0, 2.0e+6]
      ACTS: [0, 1.0e+6]
    REGNET:
      NUM_STAGES: [2, 2]
  BASE_CFG:
    MODEL: {TYPE: regnet, NUM_CLASSES: 10}
    REGNET: {STEM_TYPE: res_stem_cifar, SE_ON: True, STEM_W: 16}
    OPTIM: {MAX_EPOCH: 50}
    TRAIN: {DATASET: cifar10, IM_SIZE: 32, BATCH_SIZE: 1024}
    TEST: {DATASET: cifar10, IM_SIZE: 32}
"#;

fn check_written(s: &SetupSummary, sweep_dir: &Path) {
    let mut descs = HashSet::new();
    for m in &s.models {
        let cfg = load_cfg(sweep_dir, &m.cfg);
        // The complexity recorded is what regnet_core computes for the file.
        let spec = cfg.spec().unwrap();
        let cx = complexity(
            &Network::from_spec(&spec).unwrap(),
            cfg.im_size(),
            cfg.im_size(),
        );
        assert_eq!(
            (cx.flops, cx.params, cx.acts),
            (m.complexity.flops, m.complexity.params, m.complexity.acts),
            "{}",
            m.cfg
        );
        // Every sampled value is in the file.
        let tree: serde_json::Value = serde_json::to_value(&cfg).unwrap();
        for (k, v) in &m.sampled {
            let mut node = &tree;
            for part in k.split('.') {
                node = &node[part];
            }
            assert_eq!(node, v, "{}: {k}", m.cfg);
        }
        assert!(descs.insert(cfg.desc.clone()), "duplicate {}", cfg.desc);
        assert!(cfg.out_dir.ends_with(&format!("logs/{}", m.name)));
    }
}

#[test]
fn regnet_sweep_meets_constraints_and_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let path = sweep_file(tmp.path(), CIFAR_REGNET);
    let s = setup::run(&path).unwrap();
    let dir = tmp.path().join("out/cifar/regnet");
    assert_eq!(s.models.len(), 12);
    assert_eq!(Path::new(&s.sweep_dir), dir);
    assert!(dir.join("cfgs/000011.yaml").is_file() && !dir.join("cfgs/000012.yaml").exists());
    assert!(dir.join("sweep_cfg.yaml").is_file());
    let mut back: SetupSummary =
        serde_json::from_str(&std::fs::read_to_string(dir.join("setup.json")).unwrap()).unwrap();
    // The timing is not exact through JSON (shortest decimal vs. f64 parse); the rest is.
    assert!((back.stats.draws_per_second - s.stats.draws_per_second).abs() < 1e-6);
    back.stats.draws_per_second = s.stats.draws_per_second;
    assert_eq!(back, s);
    check_written(&s, &dir);
    let st = &s.stats;
    assert_eq!(st.accepted, 12);
    assert_eq!(
        st.drawn,
        12 + st.duplicates + st.invalid + st.regnet_stages + st.flops + st.params + st.acts
    );
    assert!(st.flops > 0 && st.regnet_stages > 0, "{st:?}");
    for m in &s.models {
        let cx = m.complexity;
        assert!((120_000_000..=130_000_000).contains(&cx.flops), "{cx:?}");
        assert!(cx.params <= 2_000_000 && cx.acts <= 1_000_000, "{cx:?}");
        assert_eq!(m.stages.depths.len(), 2, "NUM_STAGES [2, 2]");
        let p = m.regnet.unwrap();
        assert!((6..=16).contains(&p.depth) && (1..=32).contains(&p.group_w));
        let lr = m.sampled["OPTIM.BASE_LR"].as_f64().unwrap();
        assert!((0.1..=1.0).contains(&lr) && lr == (lr * 1000.0).round() / 1000.0);
        let cfg = load_cfg(&dir, &m.cfg);
        assert!(cfg.regnet.se_on && cfg.regnet.stem_type == "res_stem_cifar");
        assert_eq!(cfg.optim.base_lr, lr);
    }
}

#[test]
fn same_seed_same_sweep_and_no_overwrite_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let sa = setup::run(sweep_file(&a, CIFAR_REGNET)).unwrap();
    let sb = setup::run(sweep_file(&b, CIFAR_REGNET)).unwrap();
    let texts = |dir: &Path, s: &SetupSummary| -> Vec<String> {
        s.models
            .iter()
            .map(|m| {
                std::fs::read_to_string(dir.join("out/cifar/regnet").join(&m.cfg))
                    .unwrap()
                    .replace(&dir.display().to_string(), "")
            })
            .collect()
    };
    assert_eq!(texts(&a, &sa), texts(&b, &sb));
    assert_eq!(sa.models, sb.models);
    // Another seed, other configs.
    let other = CIFAR_REGNET.replace("RNG_SEED: 3", "RNG_SEED: 4");
    let c = tmp.path().join("c");
    std::fs::create_dir_all(&c).unwrap();
    let sc = setup::run(sweep_file(&c, &other)).unwrap();
    assert_ne!(sa.models[0].sampled, sc.models[0].sampled);
    // An existing sweep is not overwritten unless forced.
    let e = setup::run(a.join("sweep.yaml")).unwrap_err().to_string();
    assert!(
        e.contains("already has 12 configs") && e.contains("--force"),
        "{e}"
    );
    let forced = setup::run_with(a.join("sweep.yaml"), &SetupOptions { force: true }).unwrap();
    assert_eq!(forced.models, sa.models);
}

#[test]
fn duplicates_are_dropped() {
    // Twelve possible configs (pycls's cifar_best sweep): all found, each once.
    let tmp = tempfile::tempdir().unwrap();
    let yaml = r#"
NAME: best
SETUP:
  NUM_CONFIGS: 20
  NUM_SAMPLES: 2000
  SAMPLERS:
    OPTIM.MAX_EPOCH: {TYPE: value_sampler, VALUES: [50, 100, 200, 400]}
    RNG_SEED: {TYPE: int_sampler, RAND_TYPE: uniform, RANGE: [1, 3], QUANTIZE: 1}
  CONSTRAINTS: {REGNET: {NUM_STAGES: [2, 2]}}
  BASE_CFG:
    MODEL: {TYPE: regnet, NUM_CLASSES: 10}
    REGNET: {STEM_TYPE: res_stem_cifar, SE_ON: True, STEM_W: 16, DEPTH: 12, W0: 96, WA: 19.5, WM: 2.942, GROUP_W: 8}
    TRAIN: {IM_SIZE: 32}
"#;
    let s = setup::run(sweep_file(tmp.path(), yaml)).unwrap();
    assert_eq!(s.models.len(), 12);
    assert_eq!(s.stats.drawn, 2000);
    assert_eq!(s.stats.duplicates, 2000 - 12);
    let mut seen = HashSet::new();
    for m in &s.models {
        let key = (
            m.sampled["OPTIM.MAX_EPOCH"].clone(),
            m.sampled["RNG_SEED"].clone(),
        );
        assert!(seen.insert(key.to_owned()));
    }
    // All models share the architecture, hence the complexity.
    assert!(
        s.models
            .iter()
            .all(|m| m.complexity == s.models[0].complexity)
    );
}

fn anynet_sweep(space: &str, n: usize) -> (tempfile::TempDir, SetupSummary) {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = format!(
        "NAME: {space}\nSETUP:\n  NUM_CONFIGS: {n}\n  RNG_SEED: 7\n  DESIGN_SPACE: {space}\n  \
         BASE_CFG: {{MODEL: {{NUM_CLASSES: 1000}}, TRAIN: {{IM_SIZE: 224}}}}\n  \
         CONSTRAINTS: {{CX: {{FLOPS: [0, 4.0e+9]}}}}\n"
    );
    let s = setup::run(sweep_file(tmp.path(), &yaml)).unwrap();
    (tmp, s)
}

#[test]
fn anynet_design_spaces_have_their_restrictions() {
    for space in [
        "AnyNetX_A",
        "AnyNetX_B",
        "AnyNetX_C",
        "AnyNetX_D",
        "AnyNetX_E",
    ] {
        let (tmp, s) = anynet_sweep(space, 40);
        assert_eq!(s.design_space.as_deref(), Some(space));
        let dir = tmp.path().join("sweeps").join(space);
        check_written(&s, &dir);
        let mut any_unsorted_w = false;
        let mut any_unsorted_d = false;
        let mut any_mixed_b = false;
        let mut any_mixed_g = false;
        for m in &s.models {
            let cfg = load_cfg(&dir, &m.cfg);
            let a = &cfg.anynet;
            assert_eq!(cfg.model.ty, "anynet");
            assert_eq!(a.block_type, "res_bottleneck_block");
            assert_eq!(a.strides, vec![2, 2, 2, 2]);
            assert_eq!(a.depths.len(), 4);
            assert!(
                a.depths.iter().all(|d| (1..=16).contains(d)),
                "{:?}",
                a.depths
            );
            assert!(
                a.widths.iter().all(|&w| w <= 1024 && w % 8 == 0),
                "{:?}",
                a.widths
            );
            assert!(a.bot_muls.iter().all(|b| [1.0, 0.5, 0.25].contains(b)));
            // Group widths are powers of two up to 32, shrunk to the bottleneck width by
            // the compatibility adjustment.
            assert!(
                a.group_ws.iter().all(|g| (1..=32).contains(g)),
                "{:?}",
                a.group_ws
            );
            // Group widths divide the bottleneck widths (compatibility).
            for i in 0..4 {
                let wb = (a.widths[i] as f64 * a.bot_muls[i]).round() as usize;
                assert_eq!(wb % a.group_ws[i], 0, "{space} {:?}", a);
            }
            let sorted = |v: &[usize]| v.windows(2).all(|w| w[0] <= w[1]);
            any_unsorted_w |= !sorted(&a.widths);
            any_unsorted_d |= !sorted(&a.depths);
            any_mixed_b |= a.bot_muls.iter().any(|b| *b != a.bot_muls[0]);
            any_mixed_g |= a.group_ws.iter().any(|g| *g != a.group_ws[0]);
            assert!(m.complexity.flops <= 4_000_000_000);
        }
        let v = space.chars().last().unwrap();
        assert_eq!(any_mixed_b, v == 'A', "{space}: shared b from B on");
        assert_eq!(any_mixed_g, v < 'C', "{space}: shared g from C on");
        assert_eq!(any_unsorted_w, v < 'D', "{space}: sorted widths from D on");
        assert_eq!(any_unsorted_d, v < 'E', "{space}: sorted depths from E on");
    }
}

#[test]
fn small_input_design_space() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = r#"
NAME: mnist
SETUP:
  NUM_CONFIGS: 10
  DESIGN_SPACE:
    NAME: AnyNetX_E
    NUM_STAGES: 3
    STEM_TYPE: res_stem_cifar
    STEM_W: 16
    DEPTH: [1, 4]
    WIDTH: [8, 128]
  BASE_CFG:
    MODEL: {NUM_CLASSES: 10}
    EXT: {IN_CHANNELS: 1}
    TRAIN: {IM_SIZE: 28}
  CONSTRAINTS: {CX: {FLOPS: [0, 50.0e+6]}}
"#;
    let s = setup::run(sweep_file(tmp.path(), yaml)).unwrap();
    let dir = tmp.path().join("sweeps/mnist");
    check_written(&s, &dir);
    for m in &s.models {
        let cfg = load_cfg(&dir, &m.cfg);
        assert_eq!(cfg.ext.in_channels, 1);
        assert_eq!(cfg.anynet.stem_type, "res_stem_cifar");
        assert_eq!(cfg.anynet.strides, vec![1, 2, 2]);
        assert_eq!(cfg.spec().unwrap().in_channels, 1);
        assert!(cfg.anynet.depths.iter().all(|d| (1..=4).contains(d)));
        assert!(cfg.anynet.widths.iter().all(|w| *w <= 128));
    }
    // RegNetY at 32x32 with 3 stages.
    let yaml = r#"
NAME: ry
SETUP:
  NUM_CONFIGS: 6
  DESIGN_SPACE: {NAME: RegNetY, NUM_STAGES: 3, STEM_TYPE: res_stem_cifar, STEM_W: 16, DEPTH: [6, 12], W0: [16, 64], WA: [8.0, 64.0]}
  BASE_CFG: {MODEL: {NUM_CLASSES: 10}, TRAIN: {IM_SIZE: 32}}
"#;
    let t2 = tempfile::tempdir().unwrap();
    let s = setup::run(sweep_file(t2.path(), yaml)).unwrap();
    let dir = t2.path().join("sweeps/ry");
    check_written(&s, &dir);
    for m in &s.models {
        let cfg = load_cfg(&dir, &m.cfg);
        assert!(cfg.regnet.se_on && cfg.model.ty == "regnet");
        assert_eq!(m.stages.depths.len(), 3);
        assert!((6..=12).contains(&cfg.regnet.depth) && (16..=64).contains(&cfg.regnet.w0));
    }
}

#[test]
fn base_cfg_file_relative_to_the_sweep_file() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("cfgs")).unwrap();
    std::fs::write(
        tmp.path().join("cfgs/base.yaml"),
        "MODEL:\n  TYPE: regnet\n  NUM_CLASSES: 10\nREGNET:\n  STEM_TYPE: res_stem_cifar\nTRAIN:\n  IM_SIZE: 32\n",
    )
    .unwrap();
    let yaml = "NAME: rel\nSETUP:\n  NUM_CONFIGS: 3\n  BASE_CFG: cfgs/base.yaml\n  SAMPLERS:\n    REGNET: {TYPE: regnet_sampler, DEPTH: [6, 10]}\n  CONSTRAINTS: {REGNET: {NUM_STAGES: [2, 3]}}\n";
    let s = setup::run(sweep_file(tmp.path(), yaml)).unwrap();
    assert!(s.base_cfg.ends_with("cfgs/base.yaml"));
    let cfg = load_cfg(&tmp.path().join("sweeps/rel"), &s.models[0].cfg);
    assert_eq!((cfg.model.num_classes, cfg.train.im_size), (10, 32));
}

/// The error of loading `yaml` as `dir/sweep.yaml`.
fn error_of(yaml: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let path = sweep_file(tmp.path(), yaml);
    let e = match SweepConfig::load(&path) {
        Err(e) => e,
        Ok(s) => setup::setup(&s, &SetupOptions::default()).unwrap_err(),
    };
    let msg = e.to_string();
    assert!(
        msg.starts_with(&path.display().to_string()),
        "names the file: {msg}"
    );
    assert!(!msg.contains('\n'), "one line: {msg}");
    msg
}

/// Asserts that `yaml` (with `{base}` standing for a minimal valid sweep) fails with an
/// error containing every one of `parts`.
fn expect_error(yaml: &str, parts: &[&str]) {
    let e = error_of(&yaml.replace("{base}", "NAME: x\nSETUP:\n  NUM_CONFIGS: 2\n"));
    for part in parts {
        assert!(e.contains(part), "{yaml}: {e}");
    }
}

#[test]
fn sweep_config_errors_name_file_and_key() {
    expect_error(
        "NAM: x\nSETUP:\n  NUM_CONFIGS: 2\n",
        &[": NAM: unknown key (did you mean NAME?)"],
    );
    expect_error("NAME: x\n", &[": SETUP.NUM_CONFIGS: has to be specified"]);
    expect_error(
        "SETUP:\n  NUM_CONFIGS: 2\n",
        &[": NAME: has to be specified"],
    );
    expect_error(
        "{base}  NUM_CONFIG: 3\n",
        &["SETUP.NUM_CONFIG: unknown key (did you mean SETUP.NUM_CONFIGS?)"],
    );
    expect_error("NAME: x\nSETUP: [1, 2\n", &[": <yaml>: "]);
    expect_error(
        "{base}  BASE_CFG: missing.yaml\n",
        &["SETUP.BASE_CFG: config file", "missing.yaml not found"],
    );
    expect_error(
        "{base}  BASE_CFG:\n    REGNET: {DEPHT: 3}\n",
        &["SETUP.BASE_CFG.REGNET.DEPHT: unknown key (did you mean REGNET.DEPTH?)"],
    );
}

#[test]
fn sampler_errors_name_the_sampled_key() {
    let cases: &[(&str, &str)] = &[
        (
            "OPTIM.BASE_LR: {TYPE: flot_sampler}",
            "SETUP.SAMPLERS.OPTIM.BASE_LR.TYPE: unknown sampler type `flot_sampler`",
        ),
        (
            "OPTIM.BASE_LR: {RANGE: [1, 2]}",
            "SETUP.SAMPLERS.OPTIM.BASE_LR: sampler has no TYPE",
        ),
        (
            "OPTIM.BASE_LR: {TYPE: float_sampler, RAND_TYPE: log_uniform, RANGE: [0.1, 1.05], QUANTIZE: 0.1}",
            "SETUP.SAMPLERS.OPTIM.BASE_LR: float_sampler: log_uniform(low=0.1, high=1.05, q=0.1) is invalid: low and high must be multiples of q",
        ),
        (
            "OPTIM.BASE_LR: {TYPE: float_sampler, RAND_TYPE: log_unifrom, RANGE: [0.1, 1.0]}",
            "SETUP.SAMPLERS.OPTIM.BASE_LR.RAND_TYPE: unknown RAND_TYPE `log_unifrom`",
        ),
        (
            "OPTIM.BASE_LRR: {TYPE: value_sampler, VALUES: [0.1]}",
            "SETUP.SAMPLERS.OPTIM.BASE_LRR: `OPTIM.BASE_LRR` is not a config key (did you mean OPTIM.BASE_LR?)",
        ),
        (
            "ANYNET: {TYPE: regnet_sampler}",
            "SETUP.SAMPLERS.ANYNET: regnet_sampler can only be used for REGNET",
        ),
        (
            "REGNET: {TYPE: regnet_sampler, W0: [8, 100]}",
            "SETUP.SAMPLERS.REGNET.W0: regnet_sampler: log_uniform(low=8, high=100, q=8) is invalid",
        ),
        (
            "MODEL.DEPTH: {TYPE: value_sampler, VALUES: []}",
            "SETUP.SAMPLERS.MODEL.DEPTH.VALUES: value_sampler needs at least one value",
        ),
    ];
    for (sampler, want) in cases {
        expect_error(&format!("{{base}}  SAMPLERS:\n    {sampler}\n"), &[want]);
    }
    // A sampled value of the wrong type for its key.
    expect_error(
        "{base}  BASE_CFG: {MODEL: {TYPE: regnet}}\n  SAMPLERS:\n    REGNET.DEPTH: {TYPE: value_sampler, VALUES: [12.5]}\n",
        &["SETUP.SAMPLERS.REGNET.DEPTH: cannot set REGNET.DEPTH to 12.5"],
    );
}

#[test]
fn design_space_and_constraint_errors_name_the_key() {
    let cases: &[(&str, &[&str])] = &[
        (
            "DESIGN_SPACE: AnyNetXA2",
            &["SETUP.DESIGN_SPACE: unknown design space `AnyNetXA2` (did you mean AnyNetX_A?)"],
        ),
        (
            "DESIGN_SPACE: {NAME: AnyNetX_A, WIDTH: [8, 100]}",
            &["SETUP.DESIGN_SPACE.WIDTH: must be [LOW, HIGH]"],
        ),
        (
            "DESIGN_SPACE: {NAME: RegNetX, WIDTH: [8, 96]}",
            &["SETUP.DESIGN_SPACE.WIDTH: unknown key"],
        ),
        (
            "DESIGN_SPACE: AnyNetX_A\n  SAMPLERS:\n    ANYNET.WIDTHS: {TYPE: value_sampler, VALUES: [[8, 8, 8, 8]]}",
            &["SETUP.SAMPLERS.ANYNET.WIDTHS: ANYNET.WIDTHS is also sampled by SETUP.DESIGN_SPACE"],
        ),
        (
            "DESIGN_SPACE: RegNetX\n  BASE_CFG: {MODEL: {TYPE: anynet}}",
            &[
                "SETUP.DESIGN_SPACE: RegNetX is a regnet design space but SETUP.BASE_CFG sets MODEL.TYPE anynet",
            ],
        ),
        (
            "CONSTRAINTS: {CX: {FLOPS: [5, 1]}}",
            &["SETUP.CONSTRAINTS.CX.FLOPS: [5, 1] must have 0 <= LOW <= HIGH"],
        ),
        (
            "CONSTRAINTS: {CX: {FLOP: [0, 1]}}",
            &["SETUP.CONSTRAINTS.CX.FLOP: unknown key (did you mean SETUP.CONSTRAINTS.CX.FLOPS?)"],
        ),
        // Constraints nothing meets.
        (
            "NUM_SAMPLES: 300\n  DESIGN_SPACE: RegNetX\n  CONSTRAINTS: {CX: {FLOPS: [1, 10]}}",
            &[
                "SETUP.CONSTRAINTS: no candidate met the constraints in 300 draws",
                "flops out of range",
            ],
        ),
        // Networks that cannot be built are rejected, and the first reason is given.
        (
            "NUM_SAMPLES: 50\n  BASE_CFG: {MODEL: {TYPE: anynet}, ANYNET: {DEPTHS: [1], WIDTHS: [8], STRIDES: [2], BOT_MULS: [0.25], GROUP_WS: [4]}}",
            &["50 invalid networks", "group width 4"],
        ),
    ];
    for (setup, want) in cases {
        expect_error(&format!("{{base}}  {setup}\n"), want);
    }
}

/// regnet-core reads back the configs it writes with an `EXT` section (1-channel inputs).
#[test]
fn core_reads_configs_with_ext() {
    let mut cfg = Config::default();
    cfg.ext.in_channels = 1;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("c.yaml");
    std::fs::write(&path, cfg.to_yaml()).unwrap();
    assert_eq!(
        Config::load(&path.to_string_lossy())
            .unwrap()
            .ext
            .in_channels,
        1
    );
}

/// The example sweeps of `sweeps/` set up (written to a temporary ROOT_DIR).
#[test]
fn example_sweeps_set_up() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with("ROOT_DIR:") {
                    format!("ROOT_DIR: {}", tmp.path().display())
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let s = setup::run(sweep_file(tmp.path(), &text)).unwrap();
        assert_eq!(s.models.len(), s.num_configs, "{}", path.display());
        let sweep_dir = Path::new(&s.sweep_dir);
        check_written(&s, sweep_dir);
        for m in &s.models {
            assert!((2_000_000..=5_000_000).contains(&m.complexity.flops));
            assert_eq!(load_cfg(sweep_dir, &m.cfg).spec().unwrap().in_channels, 1);
        }
        n += 1;
    }
    assert_eq!(n, 2);
}

/// Every file under `dir`, relative.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn names_stay_inside_root_dir() {
    let rest = "ROOT_DIR: out\nSETUP:\n  NUM_CONFIGS: 1\n  DESIGN_SPACE: RegNetX\n";
    for name in [
        "../escape",
        "a/../../escape",
        "/tmp/abs",
        "./x",
        "a/..",
        "''",
        "'  '",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let path = sweep_file(tmp.path(), &format!("NAME: {name}\n{rest}"));
        let e = SweepConfig::load(&path).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: NAME: ", path.display())),
            "{name}: {e}"
        );
        assert!(!e.contains('\n'), "{e}");
        assert_eq!(
            files_under(tmp.path()),
            vec![PathBuf::from("sweep.yaml")],
            "{name}"
        );
    }
    // Plain nested names are fine.
    let tmp = tempfile::tempdir().unwrap();
    let s = SweepConfig::load(sweep_file(tmp.path(), &format!("NAME: a/b\n{rest}"))).unwrap();
    assert!(s.sweep_dir().starts_with(&s.root_dir));
}

#[test]
fn unmeetable_constraints_write_nothing_and_keep_an_existing_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let ok = "NAME: s\nROOT_DIR: out\nSETUP:\n  NUM_CONFIGS: 2\n  NUM_SAMPLES: 2000\n  \
              DESIGN_SPACE: {NAME: RegNetX, NUM_STAGES: 3, STEM_TYPE: res_stem_cifar}\n  \
              BASE_CFG: {MODEL: {NUM_CLASSES: 10}, TRAIN: {IM_SIZE: 32}}\n";
    let never = format!("{ok}  CONSTRAINTS: {{CX: {{FLOPS: [1.0e+15, 2.0e+15]}}}}\n");
    let path = sweep_file(tmp.path(), &never);
    let e = setup::run(&path).unwrap_err().to_string();
    assert!(
        e.contains("SETUP.CONSTRAINTS: no candidate met the constraints in 2000 draws"),
        "{e}"
    );
    assert!(
        e.contains("nothing was written") && e.contains("flops out of range"),
        "{e}"
    );
    assert!(!tmp.path().join("out").exists(), "nothing written");
    // An existing sweep survives a forced setup that cannot be met.
    sweep_file(tmp.path(), ok);
    let first = setup::run(&path).unwrap();
    let before = files_under(&tmp.path().join("out/s"));
    sweep_file(tmp.path(), &never);
    assert!(setup::run_with(&path, &SetupOptions { force: true }).is_err());
    assert_eq!(files_under(&tmp.path().join("out/s")), before);
    let kept = setup::load_summary(&tmp.path().join("out/s")).unwrap();
    assert_eq!(kept.models, first.models);
    // A forced setup that succeeds replaces the configs and leaves no temporary folder.
    sweep_file(tmp.path(), &ok.replace("NUM_CONFIGS: 2", "NUM_CONFIGS: 1"));
    setup::run_with(&path, &SetupOptions { force: true }).unwrap();
    let after = files_under(&tmp.path().join("out/s"));
    assert_eq!(
        after.iter().filter(|p| p.starts_with("cfgs")).count(),
        1,
        "{after:?}"
    );
    assert!(
        after.iter().all(|p| !p.to_string_lossy().contains("tmp")),
        "{after:?}"
    );
}

#[test]
fn counts_are_bounded_before_anything_is_allocated() {
    let head = "NAME: x\nSETUP:\n";
    for (setup, key) in [
        (
            "  NUM_CONFIGS: 1000000000000\n  NUM_SAMPLES: 1000000000000\n",
            "SETUP.NUM_CONFIGS",
        ),
        (
            "  NUM_CONFIGS: 5\n  NUM_SAMPLES: 1.0e+15\n",
            "SETUP.NUM_SAMPLES",
        ),
        (
            "  NUM_CONFIGS: 50\n  NUM_SAMPLES: 10\n",
            "SETUP.NUM_CONFIGS",
        ),
        (
            "  NUM_CONFIGS: 1\n  DESIGN_SPACE: {NAME: AnyNetX_A, NUM_STAGES: 1000000000000}\n",
            "SETUP.DESIGN_SPACE.NUM_STAGES",
        ),
        (
            "  NUM_CONFIGS: 1\n  DESIGN_SPACE: {NAME: AnyNetX_A, WIDTH: [8, 1.0e+12]}\n",
            "SETUP.DESIGN_SPACE.WIDTH",
        ),
        (
            "  NUM_CONFIGS: 1\n  SAMPLERS:\n    RNG_SEED: {TYPE: list_sampler, LENGTH: 1.0e+12, \
             ITEM_SAMPLER: {TYPE: int_sampler, RANGE: [1, 2]}}\n",
            "SETUP.SAMPLERS.RNG_SEED.LENGTH",
        ),
        (
            "  NUM_CONFIGS: 1\n  SAMPLERS:\n    RNG_SEED: {TYPE: list_sampler, LENGTH: 1000, \
             ITEM_SAMPLER: {TYPE: list_sampler, LENGTH: 1000, ITEM_SAMPLER: {TYPE: int_sampler, RANGE: [1, 2]}}}\n",
            "SETUP.SAMPLERS.RNG_SEED.LENGTH",
        ),
    ] {
        let e = error_of(&format!("{head}{setup}"));
        assert!(e.contains(&format!(": {key}: ")), "{key}: {e}");
    }
}

#[test]
fn deeply_nested_yaml_is_refused_fast() {
    for deep in [
        format!(
            "NAME: x\nDESC: {}{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
        format!("NAME: x\nDESC:\n{}1\n", "- ".repeat(50_000)),
        format!(
            "NAME: x\nDESC: {}1{}\n",
            "{a: ".repeat(20_000),
            "}".repeat(20_000)
        ),
    ] {
        let start = std::time::Instant::now();
        let e = error_of(&deep);
        assert!(start.elapsed().as_secs_f64() < 2.0, "{:?}", start.elapsed());
        assert!(e.contains("nested deeper than"), "{e}");
    }
    // A byte-order mark is accepted.
    let tmp = tempfile::tempdir().unwrap();
    let p = sweep_file(tmp.path(), "\u{feff}NAME: x\nSETUP:\n  NUM_CONFIGS: 1\n");
    assert_eq!(SweepConfig::load(&p).unwrap().name, "x");
}
