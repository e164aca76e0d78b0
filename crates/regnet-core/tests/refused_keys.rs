//! Every pycls key acts or is refused: keys with a fixed set of names are typed when the
//! config loads (a one-line error naming the key and the names allowed), and keys training
//! cannot act on are refused by [`Config::check_trainable`] with a one-line error naming
//! the key. The typed values dump as the strings pycls writes.

use regnet_core::config::{Augment, ChannelOrder, Config, LossFun, LrPolicy, OnCorrupt, Optimizer};

/// The error of a `KEY VALUE` override, checked to be one line.
fn override_err(key: &str, value: &str) -> String {
    let e = Config::default()
        .merge_overrides(&[key, value])
        .unwrap_err()
        .to_string();
    assert!(!e.contains('\n'), "one line: {e}");
    assert!(e.starts_with(&format!("command line: {key}: ")), "{e}");
    e
}

/// The error `check_trainable` gives for `KEY VALUE`, checked to be one line naming the key.
fn train_err(key: &str, value: &str) -> String {
    let mut c = Config::default();
    c.merge_overrides(&[key, value]).unwrap();
    let e = c.check_trainable().unwrap_err().to_string();
    assert!(!e.contains('\n'), "one line: {e}");
    assert!(e.contains(&format!("{key}: ")), "{e}");
    e
}

#[test]
fn loss_fun_accepts_only_cross_entropy() {
    let e = override_err("MODEL.LOSS_FUN", "soft_cross_entropy");
    assert!(
        e.contains("`soft_cross_entropy`") && e.contains("`cross_entropy`"),
        "{e}"
    );
    let mut c = Config::default();
    c.merge_overrides(&["MODEL.LOSS_FUN", "cross_entropy"])
        .unwrap();
    assert_eq!(c.model.loss_fun, LossFun::CrossEntropy);
}

#[test]
fn optimizer_names_the_allowed_values() {
    let e = override_err("OPTIM.OPTIMIZER", "SGD");
    assert!(e.contains("`sgd`, `adam`, `adamw`"), "{e}");
    let mut c = Config::default();
    c.merge_yaml(
        "OPTIM:\n  OPTIMIZER: adam\n",
        regnet_core::error::Origin::Builtin,
    )
    .unwrap();
    assert_eq!(c.optim.optimizer, Optimizer::Adam);
}

#[test]
fn lr_policy_names_the_allowed_values() {
    let e = override_err("OPTIM.LR_POLICY", "cosine");
    assert!(e.contains("`cos`, `exp`, `lin`, `steps`"), "{e}");
}

#[test]
fn channel_order_is_rgb_or_bgr() {
    // Once anything but exactly `bgr` trained as RGB and went into checkpoint metadata.
    for bad in ["BGR", "brg", "1"] {
        let e = override_err("EXT.CHANNEL_ORDER", bad);
        assert!(e.contains("`rgb` or `bgr`"), "{e}");
    }
    let mut c = Config::default();
    c.merge_overrides(&["EXT.CHANNEL_ORDER", "bgr"]).unwrap();
    assert_eq!(c.ext.channel_order, ChannelOrder::Bgr);
}

#[test]
fn on_corrupt_is_fail_or_skip() {
    let e = override_err("EXT.ON_CORRUPT", "ignore");
    assert!(e.contains("`fail` or `skip`"), "{e}");
    let mut c = Config::default();
    c.merge_overrides(&["EXT.ON_CORRUPT", "skip"]).unwrap();
    assert_eq!(c.ext.on_corrupt, OnCorrupt::Skip);
}

#[test]
fn mixed_precision_true_is_refused() {
    let e = train_err("TRAIN.MIXED_PRECISION", "True");
    assert!(e.contains("float32"), "{e}");
    let mut c = Config::default();
    c.merge_overrides(&["TRAIN.MIXED_PRECISION", "False"])
        .unwrap();
    c.check_trainable().unwrap();
}

#[test]
fn augment_policies_parse_once_and_name_the_allowed_forms() {
    // pycls's make_augment accepts these (the last `M` wins, `N` is truncated).
    let mut c = Config::default();
    c.merge_overrides(&["TRAIN.AUGMENT", "RandAugment_M0.9_N2.5_M0.3_P0.5"])
        .unwrap();
    let want = Augment::RandAugment {
        n_ops: 2,
        magnitude: 0.3,
        prob: 0.5,
    };
    assert_eq!(c.train.augment, want);
    assert!(
        c.to_yaml()
            .contains("  AUGMENT: RandAugment_N2_M0.3_P0.5\n")
    );
    // ... and fails at the first image on these, which are refused when the config loads.
    for bad in [
        "RandAugment",
        "RandAugment_M2",
        "AutoAugment_N2",
        "Rand",
        "RandAugment_Q1_M0.5",
    ] {
        let e = override_err("TRAIN.AUGMENT", bad);
        assert!(e.contains(&format!("`{bad}`")), "{e}");
        assert!(
            e.contains("`AutoAugment`, `RandAugment_N<ops>_M<magnitude"),
            "{e}"
        );
    }
    let e = override_err("TRAIN.AUGMENT", "3");
    assert!(e.contains("`AutoAugment`"), "{e}");
}

#[test]
fn augment_is_refused_where_pycls_ignores_it() {
    // pycls applies TRAIN.AUGMENT in its ImageNet data set only; CIFAR-10 ignores it.
    for dataset in ["cifar10", "fashion_mnist", "mnist"] {
        let mut c = Config::default();
        c.merge_overrides(&["TRAIN.DATASET", dataset]).unwrap();
        c.check_trainable().unwrap();
        let policy = "AutoAugment";
        c.merge_overrides(&["TRAIN.AUGMENT", policy]).unwrap();
        let e = c.check_trainable().unwrap_err().to_string();
        assert!(!e.contains('\n'), "one line: {e}");
        assert!(
            e.contains("TRAIN.AUGMENT: `AutoAugment`") && e.contains(dataset),
            "{e}"
        );
    }
    for dataset in ["imagenet", "image-folder"] {
        let mut c = Config::default();
        let pairs = [
            "TRAIN.DATASET",
            dataset,
            "TRAIN.AUGMENT",
            "RandAugment_N2_M0.5",
        ];
        c.merge_overrides(&pairs).unwrap();
        c.check_trainable().unwrap();
    }
}

#[test]
fn typed_values_dump_as_pycls_strings() {
    let mut c = Config::default();
    c.merge_overrides(&[
        "OPTIM.OPTIMIZER",
        "adamw",
        "OPTIM.LR_POLICY",
        "steps",
        "EXT.CHANNEL_ORDER",
        "bgr",
    ])
    .unwrap();
    let yaml = c.to_yaml();
    for line in [
        "  OPTIMIZER: adamw\n",
        "  LR_POLICY: steps\n",
        "  LOSS_FUN: cross_entropy\n",
        "  CHANNEL_ORDER: bgr\n",
        "  ON_CORRUPT: fail\n",
    ] {
        assert!(yaml.contains(line), "{line:?} in\n{yaml}");
    }
    let mut back = Config::default();
    back.merge_yaml(&yaml, c.origin.clone()).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.optim.lr_policy, LrPolicy::Steps);
}

#[test]
fn adam_betas_outside_0_1_are_refused() {
    let mut c = Config::default();
    c.merge_overrides(&["OPTIM.BETA2", "1.0"]).unwrap();
    c.check_trainable().unwrap(); // SGD does not read the betas
    c.merge_overrides(&["OPTIM.OPTIMIZER", "adam"]).unwrap();
    let e = c.check_trainable().unwrap_err().to_string();
    assert!(e.contains("OPTIM.BETA2: 1 is not in [0, 1)"), "{e}");
}

#[test]
fn splits_are_the_names_pycls_accepts() {
    // Any name but `train` once read the test split, for training too.
    for key in ["TRAIN.SPLIT", "TEST.SPLIT"] {
        let e = override_err(key, "training");
        assert!(
            e.contains("`training`") && e.contains("`train`, `val`, `test`"),
            "{e}"
        );
    }
    let mut c = Config::default();
    c.merge_overrides(&["TRAIN.SPLIT", "val", "TEST.SPLIT", "test"])
        .unwrap();
    c.check_trainable().unwrap();
}

#[test]
fn log_dest_is_stdout_or_file() {
    let e = override_err("LOG_DEST", "syslog");
    assert!(e.contains("`stdout`, `file`"), "{e}");
    let mut c = Config::default();
    c.merge_overrides(&["LOG_DEST", "file"]).unwrap();
}

#[test]
fn launch_mode_slurm_is_refused_for_training() {
    let e = override_err("LAUNCH.MODE", "kubernetes");
    assert!(e.contains("`local`, `submitit_local`, `slurm`"), "{e}");
    let e = train_err("LAUNCH.MODE", "slurm");
    assert!(e.contains("regnet sweep launch --slurm"), "{e}");
    for ok in ["local", "submitit_local"] {
        let mut c = Config::default();
        c.merge_overrides(&["LAUNCH.MODE", ok]).unwrap();
        c.check_trainable().unwrap();
    }
}

#[test]
fn data_loader_mode_other_than_pytorch_is_refused() {
    let e = train_err("DATA_LOADER.MODE", "ffcv");
    assert!(e.contains("`ffcv`") && e.contains("pytorch"), "{e}");
}

/// Keys accepted with non-default values although nothing reads them, because they change
/// nothing pycls's training computes either: logging, performance and multi-process
/// plumbing, the scaler tool's keys, and ViT's keys (`MODEL.TYPE vit` is refused).
#[test]
fn keys_without_effect_on_the_result_are_accepted() {
    let mut c = Config::default();
    c.merge_overrides(&[
        "MODEL.ACTIVATION_INPLACE",
        "False",
        "MODEL.SCALING_TYPE",
        "d1_w8_g8_r1",
        "MODEL.SCALING_FACTOR",
        "4.0",
        "OPTIM.MTA",
        "True",
        "DATA_LOADER.NUM_WORKERS",
        "2",
        "DATA_LOADER.PIN_MEMORY",
        "False",
        "CUDNN.BENCHMARK",
        "False",
        "FSDP.ENABLED",
        "True",
        "FSDP.RESHARD_AFTER_FW",
        "False",
        "LAUNCH.MODE",
        "submitit_local",
        "LAUNCH.PARTITION",
        "learnfair",
        "VIT.NUM_LAYERS",
        "6",
        "LN.EPS",
        "1e-6",
        "DESC",
        "a run",
        "VERBOSE",
        "False",
        "LOG_DEST",
        "file",
        "MAX_GPUS_PER_NODE",
        "4",
        "DIST_BACKEND",
        "gloo",
        "HOST",
        "node1",
        "PORT_RANGE",
        "[20000, 30000]",
        "DOWNLOAD_CACHE",
        "/tmp/cache",
        "PREC_TIME.NUM_ITER",
        "0",
    ])
    .unwrap();
    c.check_trainable().unwrap();
}
