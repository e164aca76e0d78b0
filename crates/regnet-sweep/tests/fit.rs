//! Fitting the quantized linear rule: exact recovery of generated RegNets.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use regnet_core::regnet::generate_widths;
use regnet_core::zoo::{self, ZooArch};
use regnet_sweep::fit::{e_fit, fit_stages, fit_widths};
use regnet_sweep::sampler::RegNetSampler;

#[test]
fn recovers_sampled_regnets() {
    let sampler = RegNetSampler::default();
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    for _ in 0..25 {
        let p = sampler.sample(&mut rng);
        let g = generate_widths(p.wa, p.w0, p.wm, p.depth).unwrap();
        let f = fit_widths(&g.ws_all).unwrap();
        assert_eq!(f.e_fit, 0.0, "{p:?} -> {f:?}");
        assert_eq!(f.depth, p.depth);
        // The fitted parameters regenerate the same widths.
        let back = generate_widths(f.wa, f.w0, f.wm, f.depth).unwrap();
        assert_eq!(back.ws_all, g.ws_all, "{p:?}");
        assert_eq!(f.widths, g.ws_all);
        assert_eq!((&f.stage_widths, &f.stage_depths), (&g.widths, &g.depths));
    }
}

#[test]
fn recovers_the_zoo_regnets() {
    let mut n = 0;
    for m in zoo::models() {
        if let ZooArch::RegNet {
            depth, w0, wa, wm, ..
        } = m.arch
        {
            let g = generate_widths(wa, w0, wm, depth).unwrap();
            let f = fit_widths(&g.ws_all).unwrap();
            assert_eq!(f.e_fit, 0.0, "{}", m.name);
            assert_eq!(
                generate_widths(f.wa, f.w0, f.wm, depth).unwrap().ws_all,
                g.ws_all
            );
            n += 1;
        }
    }
    assert_eq!(n, 24);
}

#[test]
fn anynet_stages_and_imperfect_fits() {
    // ResNet-50's stage widths are not a RegNet: the fit is close but not exact.
    let f = fit_stages(&[3, 4, 6, 3], &[256, 512, 1024, 2048]).unwrap();
    assert!(f.e_fit > 0.0 && f.e_fit < 0.3, "{}", f.e_fit);
    let ws: Vec<usize> = [(3, 256), (4, 512), (6, 1024), (3, 2048)]
        .iter()
        .flat_map(|&(d, w)| std::iter::repeat_n(w, d))
        .collect();
    assert_eq!(f.e_fit, e_fit(&f.widths, &ws));
    // A RegNet with one block moved off the rule fits with a small error.
    let g = generate_widths(36.44, 24, 2.49, 13).unwrap();
    let mut ws = g.ws_all.clone();
    ws[5] = 160;
    let f = fit_widths(&ws).unwrap();
    assert!(
        f.e_fit > 0.0 && f.e_fit <= (160f64 / 152.0).ln() / 13.0 + 1e-12,
        "{}",
        f.e_fit
    );
}
