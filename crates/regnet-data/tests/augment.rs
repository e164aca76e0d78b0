//! AutoAugment and RandAugment against pycls's `augment.py` and Pillow 13: the policy tables
//! equal pycls's, every op's output equals Pillow's byte for byte on a fixed 32x24 image at
//! several magnitudes and both signs, every AutoAugment sub-policy composes as pycls's, and
//! the random choices are a function of the sample's seed.
//!
//! The fixture is written by `tools/reference/augment_reference.py` (see its docstring).

use std::collections::BTreeMap;

use regnet_data::transforms::augment::{
    AUTO_AUGMENT_POLICY, FILL_COLOR, POSTERIZE_MIN, RAND_AUGMENT_OPS, apply_op, augment_float,
};
use regnet_data::transforms::{AugmentOp, AugmentPolicy, FloatImage, ImageNetTransform};
use regnet_data::{
    ChannelOrder, DatasetKind, Image, Split, Transform, TransformOptions, build_transform,
    sample_rng,
};
use serde_json::Value;

struct Fixture {
    meta: Value,
    input: Image,
    /// The expected output of case `i` of `meta["cases"]`.
    outputs: Vec<Vec<u8>>,
}

fn fixture() -> Fixture {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");
    let meta: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{dir}augment_reference.json")).unwrap(),
    )
    .unwrap();
    let bin = std::fs::read(format!("{dir}augment_reference.bin")).unwrap();
    let (h, w) = (
        meta["height"].as_u64().unwrap() as usize,
        meta["width"].as_u64().unwrap() as usize,
    );
    let n = h * w * 3;
    let cases = meta["cases"].as_array().unwrap().len();
    assert_eq!(
        bin.len(),
        n * (cases + 1),
        "one input and one output per case"
    );
    let mut chunks = bin.chunks_exact(n).map(<[u8]>::to_vec);
    let input = Image::new(h, w, 3, chunks.next().unwrap());
    Fixture {
        meta,
        input,
        outputs: chunks.collect(),
    }
}

fn op_named(name: &str) -> AugmentOp {
    *AugmentOp::ALL
        .iter()
        .find(|o| o.name() == name)
        .unwrap_or_else(|| panic!("pycls op {name} is not in regnet"))
}

#[test]
fn tables_equal_pycls() {
    let f = fixture();
    let m = &f.meta;
    let names: Vec<&str> = m["op_functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let ours: Vec<&str> = AugmentOp::ALL.iter().map(|o| o.name()).collect();
    assert_eq!(ours, names, "ops and their order");
    for (name, r) in m["op_ranges"].as_object().unwrap() {
        let range = op_named(name).range();
        let want = (
            r[0].as_f64().unwrap(),
            r[1].as_f64().unwrap(),
            r[2].as_bool().unwrap(),
        );
        assert_eq!(
            (range.min, range.max, range.negate),
            want,
            "range of {name}"
        );
    }
    let policy = m["auto_augment_policy"].as_array().unwrap();
    assert_eq!(policy.len(), AUTO_AUGMENT_POLICY.len());
    for (i, (sub, ours)) in policy.iter().zip(&AUTO_AUGMENT_POLICY).enumerate() {
        let sub = sub.as_array().unwrap();
        assert_eq!(sub.len(), ours.len());
        for (o, p) in sub.iter().zip(ours) {
            let want = (
                op_named(o[0].as_str().unwrap()),
                o[1].as_f64().unwrap(),
                o[2].as_f64().unwrap(),
            );
            assert_eq!((p.op, p.prob, p.magnitude), want, "sub-policy {i}");
        }
    }
    let rand: Vec<AugmentOp> = m["rand_augment_ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| op_named(v.as_str().unwrap()))
        .collect();
    assert_eq!(rand, RAND_AUGMENT_OPS);
    assert_eq!(m["posterize_min"].as_u64(), Some(u64::from(POSTERIZE_MIN)));
    let fill: Vec<u8> = m["fillcolor"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u8)
        .collect();
    assert_eq!(fill, FILL_COLOR);
    // regnet's warps sample bilinearly: pycls must still ask for that.
    assert_eq!(m["resample"], "BILINEAR");
}

/// The largest difference between two images and how many values differ.
fn diff(got: &[u8], want: &[u8]) -> (u8, usize) {
    assert_eq!(got.len(), want.len());
    got.iter().zip(want).fold((0, 0), |(max, n), (&g, &w)| {
        let d = g.abs_diff(w);
        (max.max(d), n + usize::from(d > 0))
    })
}

#[test]
fn every_op_matches_pillow_byte_for_byte() {
    let f = fixture();
    let mut worst: BTreeMap<&str, (u8, usize, usize)> = BTreeMap::new();
    for (case, want) in f.meta["cases"].as_array().unwrap().iter().zip(&f.outputs) {
        if case["kind"] != "op" {
            continue;
        }
        let op = op_named(case["op"].as_str().unwrap());
        let v = op.level(case["magnitude"].as_f64().unwrap()) * case["sign"].as_f64().unwrap();
        let (max, n) = diff(op.apply(&f.input, v).data(), want);
        let e = worst.entry(op.name()).or_default();
        *e = (e.0.max(max), e.1 + n, e.2 + 1);
    }
    assert_eq!(worst.len(), AugmentOp::ALL.len(), "every op has cases");
    for (op, (max, n, cases)) in &worst {
        eprintln!("{op:>15}: {cases} cases, max diff {max}, {n} values differ");
    }
    let bad: Vec<_> = worst.iter().filter(|(_, w)| w.0 > 0).collect();
    assert!(bad.is_empty(), "ops that differ from Pillow: {bad:?}");
}

#[test]
fn auto_augment_sub_policies_match_pycls() {
    let f = fixture();
    let mut checked = 0;
    for (case, want) in f.meta["cases"].as_array().unwrap().iter().zip(&f.outputs) {
        if case["kind"] != "sub_policy" {
            continue;
        }
        let i = case["index"].as_u64().unwrap() as usize;
        // Both ops applied, positive sign: what the fixture forced in pycls.
        let out = AUTO_AUGMENT_POLICY[i]
            .iter()
            .fold(f.input.clone(), |im, p| {
                p.op.apply(&im, p.op.level(p.magnitude))
            });
        assert_eq!(diff(out.data(), want), (0, 0), "sub-policy {i}");
        checked += 1;
    }
    assert_eq!(checked, AUTO_AUGMENT_POLICY.len());
}

fn rand_augment(n_ops: usize, magnitude: f64, prob: f64) -> AugmentPolicy {
    AugmentPolicy::RandAugment {
        n_ops,
        magnitude,
        prob,
    }
}

#[test]
fn same_seed_same_augmentation() {
    let im = fixture().input;
    for policy in [
        AugmentPolicy::AutoAugment,
        rand_augment(2, 0.5, 1.0),
        rand_augment(3, 0.9, 0.5),
    ] {
        let run = |i| policy.apply(im.clone(), &mut sample_rng(7, 1, i));
        let outs: Vec<Image> = (0..40).map(run).collect();
        assert!(
            (0..40).all(|i| run(i) == outs[i as usize]),
            "{policy:?} replays"
        );
        let distinct = outs.iter().filter(|o| **o != outs[0]).count();
        assert!(
            distinct > 10,
            "{policy:?} varies with the sample: {distinct}"
        );
    }
    // No op, or probability 0: the image is untouched.
    for policy in [rand_augment(0, 0.5, 1.0), rand_augment(4, 0.5, 0.0)] {
        assert_eq!(policy.apply(im.clone(), &mut sample_rng(1, 0, 0)), im);
    }
}

#[test]
fn apply_op_draws_the_probability_and_the_sign() {
    let im = fixture().input;
    let rng = |i| sample_rng(11, 0, i);
    // A fixed-sign op at probability 1 is the op at its level.
    let want = AugmentOp::Solarize.apply(&im, AugmentOp::Solarize.level(0.3));
    assert_eq!(
        apply_op(im.clone(), AugmentOp::Solarize, 1.0, 0.3, &mut rng(0)),
        want
    );
    // A signed op gives the level or its negation, both over a few samples.
    let op = AugmentOp::Rotate;
    let (plus, minus) = (op.apply(&im, op.level(0.5)), op.apply(&im, -op.level(0.5)));
    let outs: Vec<Image> = (0..20)
        .map(|i| apply_op(im.clone(), op, 1.0, 0.5, &mut rng(i)))
        .collect();
    assert!(outs.iter().all(|o| *o == plus || *o == minus));
    assert!(outs.contains(&plus) && outs.contains(&minus));
    // Probability 0.5 applies the op to some samples only; 0 to none.
    let applied = (0..40)
        .filter(|&i| apply_op(im.clone(), AugmentOp::Invert, 0.5, 0.0, &mut rng(i)) != im)
        .count();
    assert!((8..=32).contains(&applied), "{applied} of 40");
    assert!((0..40).all(|i| apply_op(im.clone(), AugmentOp::Invert, 0.0, 0.0, &mut rng(i)) == im));
}

#[test]
fn float_round_trip_truncates_like_numpy() {
    // pycls: (im * 255).astype(np.uint8) / 255 in single precision.
    let data = vec![0.5, 1.0, 0.0, 0.999, 0.2, 0.0039];
    let im = FloatImage::new(1, 2, 3, data.clone());
    let out = augment_float(&im, &rand_augment(0, 0.0, 1.0), &mut sample_rng(0, 0, 0));
    let want: Vec<f32> = data
        .iter()
        .map(|v| ((v * 255.0) as u8) as f32 / 255.0)
        .collect();
    assert_eq!(out.data, want);
    assert_eq!(out.data[0], 127.0 / 255.0);
}

#[test]
fn imagenet_training_applies_the_policy_after_the_flip() {
    let im = fixture().input;
    let plain = ImageNetTransform::train(16, 0.0, ChannelOrder::Rgb);
    let aug = plain.clone().with_augment(Some(rand_augment(2, 1.0, 1.0)));
    let run = |t: &ImageNetTransform, i| {
        let mut out = vec![0.0; 3 * 16 * 16];
        t.apply(&im, &mut sample_rng(3, 0, i), &mut out).unwrap();
        out
    };
    assert_eq!(run(&aug, 5), run(&aug, 5));
    let changed = (0..10).filter(|&i| run(&aug, i) != run(&plain, i)).count();
    assert!(
        changed >= 8,
        "magnitude 1 changes the image: {changed} of 10"
    );
}

#[test]
fn policies_are_refused_where_pycls_does_not_apply_them() {
    let opts = TransformOptions {
        augment_policy: Some(AugmentPolicy::AutoAugment),
        ..TransformOptions::default()
    };
    for kind in [
        DatasetKind::Cifar10,
        DatasetKind::Mnist,
        DatasetKind::FashionMnist,
    ] {
        let e = build_transform(kind, Split::Train, &opts)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("TRAIN.AUGMENT") && e.contains(&format!("{kind:?}")),
            "{e}"
        );
        assert!(!e.contains('\n'));
        // Test splits ignore the key, as pycls's test transforms do.
        build_transform(kind, Split::Test, &opts).unwrap();
    }
    build_transform(DatasetKind::ImageFolder, Split::Train, &opts).unwrap();
    let bad = TransformOptions {
        augment_policy: Some(rand_augment(2, 1.5, 1.0)),
        ..opts
    };
    let e = build_transform(DatasetKind::ImageFolder, Split::Train, &bad)
        .unwrap_err()
        .to_string();
    assert!(e.contains("1.5") && e.contains("[0, 1]"), "{e}");
}
