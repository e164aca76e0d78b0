//! Every pycls key acts or is refused: keys with a fixed set of names are typed when the
//! config loads (a one-line error naming the key and the names allowed), and keys training
//! cannot act on are refused by [`Config::check_trainable`] with a one-line error naming
//! the key. The typed values dump as the strings pycls writes.

use regnet_core::config::{ChannelOrder, Config, LossFun, LrPolicy, OnCorrupt, Optimizer};

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
fn augment_policies_are_refused_until_implemented() {
    for policy in ["AutoAugment", "RandAugment_N2_M0.5"] {
        let e = train_err("TRAIN.AUGMENT", policy);
        assert!(e.contains(policy) && e.contains("not implemented"), "{e}");
    }
    Config::default().check_trainable().unwrap();
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
