//! Samplers: ranges, quantization, distributions (fixed seeds, tolerances of several
//! standard errors), validation, reproducibility.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use regnet_sweep::random::{RandType, ScalarDist};
use regnet_sweep::sampler::{RegNetSampler, Sampler};

const N: usize = 60_000;

fn draws(d: &ScalarDist, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..N).map(|_| d.sample(&mut rng)).collect()
}

fn freqs(xs: &[f64]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for x in xs {
        *m.entry(format!("{x:?}")).or_insert(0.0) += 1.0 / xs.len() as f64;
    }
    m
}

fn dist(rt: RandType, lo: f64, hi: f64, q: f64, int: bool) -> ScalarDist {
    ScalarDist::new(rt, lo, hi, q, int).unwrap()
}

/// Frequencies within 5 standard errors of `p` (binomial, N draws).
fn close(f: f64, p: f64) -> bool {
    (f - p).abs() <= 5.0 * (p * (1.0 - p) / N as f64).sqrt() + 1e-12
}

#[test]
fn uniform_covers_both_ends_equally() {
    let xs = draws(&dist(RandType::Uniform, 1.0, 6.0, 1.0, true), 1);
    let f = freqs(&xs);
    assert_eq!(f.len(), 6, "{f:?}");
    for v in 1..=6 {
        let p = f[&format!("{:?}", v as f64)];
        assert!(close(p, 1.0 / 6.0), "{v}: {p}");
    }
    // Floats, quantized to 0.1 on [-0.5, 0.5]: eleven values, exact decimals.
    let xs = draws(&dist(RandType::Uniform, -0.5, 0.5, 0.1, false), 2);
    let f = freqs(&xs);
    assert_eq!(f.len(), 11, "{f:?}");
    for (k, p) in &f {
        assert!(close(*p, 1.0 / 11.0), "{k}: {p}");
        // Exact decimals: `0.30000000000000004` would have more digits.
        assert!(k.len() <= 4, "{k}");
    }
    assert!(f.contains_key("0.3") && f.contains_key("-0.5") && f.contains_key("0.5"));
}

#[test]
fn log_uniform_has_a_log_linear_cdf() {
    // Integers on [1, 32]: f in (0.5, 32], ceil, so P(v <= k) = ln(2k) / ln(64).
    let xs = draws(&dist(RandType::LogUniform, 1.0, 32.0, 1.0, true), 3);
    assert!(
        xs.iter()
            .all(|&x| (1.0..=32.0).contains(&x) && x.fract() == 0.0)
    );
    for k in [1.0, 2.0, 4.0, 16.0] {
        let cdf = xs.iter().filter(|&&x| x <= k).count() as f64 / N as f64;
        let p = (2.0 * k).ln() / 64f64.ln();
        assert!(close(cdf, p), "P(v <= {k}) = {cdf}, expected {p}");
    }
    // pycls's W0 law: [8, 256] quantized to 8, f in (4, 256]: P(8) = 1/6, P(<= 64) = 2/3.
    let xs = draws(&dist(RandType::LogUniform, 8.0, 256.0, 8.0, true), 4);
    assert!(
        xs.iter()
            .all(|&x| (8.0..=256.0).contains(&x) && x % 8.0 == 0.0)
    );
    let p8 = xs.iter().filter(|&&x| x == 8.0).count() as f64 / N as f64;
    let p64 = xs.iter().filter(|&&x| x <= 64.0).count() as f64 / N as f64;
    assert!(close(p8, 1.0 / 6.0), "{p8}");
    assert!(close(p64, 2.0 / 3.0), "{p64}");
    assert!(xs.contains(&256.0));
    // Floats quantized to 0.001 (pycls's WM law): exact thousandths.
    let xs = draws(&dist(RandType::LogUniform, 2.0, 3.0, 0.001, false), 5);
    for x in xs.iter().take(1000) {
        let k = (x * 1000.0).round();
        assert_eq!(*x, k / 1000.0, "{x}");
        assert!((2.0..=3.0).contains(x));
    }
    let median = {
        let mut v = xs.clone();
        v.sort_by(f64::total_cmp);
        v[N / 2]
    };
    // Log-uniform on (2 - 0.001, 3]: median near sqrt(6) = 2.449.
    assert!((median - 6f64.sqrt()).abs() < 0.01, "{median}");
}

#[test]
fn power2_uniform_is_uniform_over_powers() {
    let xs = draws(&dist(RandType::Power2Uniform, 2.0, 512.0, 1.0, true), 6);
    let f = freqs(&xs);
    assert_eq!(f.len(), 9);
    for (k, p) in &f {
        assert!(close(*p, 1.0 / 9.0), "{k}: {p}");
    }
    let xs = draws(&dist(RandType::Power2Uniform, 0.25, 8.0, 0.25, false), 7);
    let f = freqs(&xs);
    assert_eq!(
        f.keys().cloned().collect::<Vec<_>>(),
        vec!["0.25", "0.5", "1.0", "2.0", "4.0", "8.0"]
    );
}

#[test]
fn power2_or_log_uniform_mixes_both_laws() {
    // GROUP_W [1, 32] with q = 8: 1, 2, 4 with 1/6 each; otherwise (1/2) log-uniform on
    // (4, 32] quantized up to 8: 8 and 16 get ln 2 / ln 8, 24 ln 1.5 / ln 8, 32 ln(4/3) / ln 8.
    let xs = draws(&dist(RandType::Power2OrLogUniform, 1.0, 32.0, 8.0, true), 8);
    let f = freqs(&xs);
    let l8 = 8f64.ln();
    let expect = [
        (1.0, 1.0 / 6.0),
        (2.0, 1.0 / 6.0),
        (4.0, 1.0 / 6.0),
        (8.0, 0.5 * 2f64.ln() / l8),
        (16.0, 0.5 * 2f64.ln() / l8),
        (24.0, 0.5 * 1.5f64.ln() / l8),
        (32.0, 0.5 * (4.0f64 / 3.0).ln() / l8),
    ];
    assert_eq!(f.len(), expect.len(), "{f:?}");
    for (v, p) in expect {
        let got = f[&format!("{v:?}")];
        assert!(close(got, p), "{v}: {got} vs {p}");
    }
    // q above high: only powers of two (pycls's example (0.25, 4.0, 4.0)).
    let xs = draws(
        &dist(RandType::Power2OrLogUniform, 0.25, 4.0, 4.0, false),
        9,
    );
    assert_eq!(freqs(&xs).len(), 5);
}

#[test]
fn normal_laws_are_clipped_and_centred() {
    let xs = draws(&dist(RandType::Normal, 0.0, 10.0, 1.0, true), 10);
    assert!(
        xs.iter()
            .all(|&x| (0.0..=10.0).contains(&x) && x.fract() == 0.0)
    );
    let mean = xs.iter().sum::<f64>() / N as f64;
    let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / N as f64).sqrt();
    assert!((mean - 5.0).abs() < 0.03, "{mean}");
    // sigma = (high - low) / 6, a little more after rounding to integers.
    assert!((sd - 10.0 / 6.0).abs() < 0.1, "{sd}");
    // 5 gets P(4.5 < f < 5.5) = 0.236 of a normal with sigma 5/3.
    let p5 = xs.iter().filter(|&&x| x == 5.0).count() as f64 / N as f64;
    assert!(close(p5, 0.2358), "{p5}");

    let xs = draws(&dist(RandType::LogNormal, 1.0, 100.0, 0.5, false), 11);
    assert!(
        xs.iter()
            .all(|&x| (1.0..=100.0).contains(&x) && (x * 2.0).fract() == 0.0)
    );
    let mut v = xs.clone();
    v.sort_by(f64::total_cmp);
    // Median of the log-normal: the geometric middle, 10.
    assert!((v[N / 2] - 10.0).abs() <= 0.5, "{}", v[N / 2]);
}

#[test]
fn pycls_validation_rules() {
    let bad = |rt, lo, hi, q, int| ScalarDist::new(rt, lo, hi, q, int).unwrap_err();
    assert!(bad(RandType::Uniform, 2.0, 1.0, 1.0, true).contains("low must be <= high"));
    assert!(bad(RandType::LogUniform, 0.0, 1.0, 0.1, false).contains("low must be > 0"));
    assert!(bad(RandType::Uniform, 0.0, 1.05, 0.1, false).contains("multiples of q"));
    assert!(bad(RandType::Power2Uniform, 3.0, 8.0, 1.0, true).contains("powers of 2"));
    assert!(bad(RandType::Uniform, 0.5, 2.0, 1.0, true).contains("integers"));
    assert!(bad(RandType::Uniform, 0.0, 1.0, 0.0, false).contains("q must be > 0"));
    // pycls accepts uniform and normal from 0 and below, and power2_or_log_uniform with
    // ends that are not multiples of q.
    assert!(ScalarDist::new(RandType::Normal, -1.0, 1.0, 0.5, false).is_ok());
    assert!(ScalarDist::new(RandType::Power2OrLogUniform, 1.0, 32.0, 8.0, true).is_ok());
}

#[test]
fn regnet_sampler_defaults_and_quanta() {
    let s = RegNetSampler::default();
    assert_eq!(
        s.ranges(),
        [
            (12.0, 28.0),
            (8.0, 256.0),
            (8.0, 256.0),
            (2.0, 3.0),
            (8.0, 128.0),
            (1.0, 1.0)
        ]
    );
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut depths = std::collections::BTreeSet::new();
    for _ in 0..5000 {
        let p = s.sample(&mut rng);
        depths.insert(p.depth);
        assert!((12..=28).contains(&p.depth));
        assert!(p.w0 % 8 == 0 && (8..=256).contains(&p.w0), "{p:?}");
        assert!((8.0..=256.0).contains(&p.wa) && p.wa == (p.wa * 10.0).round() / 10.0);
        assert!((2.0..=3.0).contains(&p.wm) && p.wm == (p.wm * 1000.0).round() / 1000.0);
        assert!(
            p.group_w % 8 == 0 && (8..=128).contains(&p.group_w),
            "{p:?}"
        );
        assert_eq!(p.bot_mul, 1.0);
    }
    assert_eq!(depths.len(), 17, "every depth 12..=28 appears");
    // Ranges are validated like pycls's validate_sampler.
    let mut r = s.ranges();
    r[1] = (8.0, 100.0);
    assert!(RegNetSampler::new(r).unwrap_err().starts_with("W0:"));
    let mut r = s.ranges();
    r[4] = (8.0, 96.0);
    assert!(RegNetSampler::new(r).unwrap_err().starts_with("GROUP_W:"));
}

#[test]
fn same_seed_same_draws() {
    let s = Sampler::List {
        length: 4,
        item: Box::new(Sampler::Scalar(dist(
            RandType::LogUniform,
            8.0,
            1024.0,
            8.0,
            true,
        ))),
    };
    let run = |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..100).map(|_| s.sample(&mut rng)).collect::<Vec<_>>()
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
    assert!(run(5).iter().all(|v| v.as_array().unwrap().len() == 4));
}
