//! Mixup and cutmix of a batch on the CPU, as pycls's `net.mixup` does it: with both alphas
//! set, one of the two is chosen with probability 1/2; the mixing weight is drawn from
//! Beta(alpha, alpha) and the batch is mixed with a random permutation of itself.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_distr::{Beta, Distribution};

/// Mixes `images [n, c, h, w]` and their soft `targets [n, classes]` in place. Returns the
/// labels used for the error meters (the argmax of the mixed targets).
#[allow(clippy::too_many_arguments)]
pub fn mix_batch<R: Rng>(
    rng: &mut R,
    images: &mut [f32],
    shape: [usize; 4],
    targets: &mut [f32],
    classes: usize,
    mixup_alpha: f64,
    cutmix_alpha: f64,
) -> Vec<i64> {
    let [n, c, h, w] = shape;
    let mixup_alpha = if cutmix_alpha == 0.0 || rng.random::<f64>() < 0.5 {
        mixup_alpha
    } else {
        0.0
    };
    if mixup_alpha > 0.0 || cutmix_alpha > 0.0 {
        let alpha = if mixup_alpha > 0.0 {
            mixup_alpha
        } else {
            cutmix_alpha
        };
        let mut m = Beta::new(alpha, alpha).expect("positive alpha").sample(rng);
        let mut perm: Vec<usize> = (0..n).collect();
        perm.shuffle(rng);
        let sample = c * h * w;
        let src_images = images.to_vec();
        if mixup_alpha > 0.0 {
            for i in 0..n {
                let (dst, src) = (
                    &mut images[i * sample..(i + 1) * sample],
                    &src_images[perm[i] * sample..][..sample],
                );
                for (a, b) in dst.iter_mut().zip(src) {
                    *a = (m * *a as f64 + (1.0 - m) * *b as f64) as f32;
                }
            }
        } else {
            let w_b = (w as f64 * (1.0 - m).sqrt()) as usize;
            let h_b = (h as f64 * (1.0 - m).sqrt()) as usize;
            let (x_c, y_c) = (rng.random_range(0..w), rng.random_range(0..h));
            let x0 = x_c.saturating_sub(w_b / 2).min(w);
            let y0 = y_c.saturating_sub(h_b / 2).min(h);
            let x1 = (x_c + w_b / 2).min(w);
            let y1 = (y_c + h_b / 2).min(h);
            m = 1.0 - ((x1 - x0) * (y1 - y0)) as f64 / (h * w) as f64;
            for (i, &src) in perm.iter().enumerate().take(n) {
                for ch in 0..c {
                    for y in y0..y1 {
                        let row = ((i * c + ch) * h + y) * w;
                        let src_row = ((src * c + ch) * h + y) * w;
                        images[row + x0..row + x1]
                            .copy_from_slice(&src_images[src_row + x0..src_row + x1]);
                    }
                }
            }
        }
        let src_targets = targets.to_vec();
        for i in 0..n {
            for k in 0..classes {
                let mixed = m * src_targets[i * classes + k] as f64
                    + (1.0 - m) * src_targets[perm[i] * classes + k] as f64;
                targets[i * classes + k] = mixed as f32;
            }
        }
    }
    (0..n)
        .map(|i| {
            let row = &targets[i * classes..(i + 1) * classes];
            // The first maximum, as torch.argmax.
            let mut best = 0;
            for (k, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = k;
                }
            }
            best as i64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::smooth_one_hot;
    use rand::SeedableRng;

    #[test]
    fn no_alpha_changes_nothing() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut x: Vec<f32> = (0..2 * 4).map(|v| v as f32).collect();
        let mut y = smooth_one_hot(&[1, 0], 3, 0.0);
        let labels = mix_batch(&mut rng, &mut x, [2, 1, 2, 2], &mut y, 3, 0.0, 0.0);
        assert_eq!(labels, vec![1, 0]);
        assert_eq!(x, (0..8).map(|v| v as f32).collect::<Vec<_>>());
    }

    #[test]
    fn mixup_is_a_convex_combination_of_a_permutation() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (n, sample) = (4, 3);
        let orig: Vec<f32> = (0..n).flat_map(|i| vec![i as f32 * 10.0; sample]).collect();
        let mut x = orig.clone();
        let mut y = smooth_one_hot(&[0, 1, 2, 3], 4, 0.0);
        mix_batch(&mut rng, &mut x, [n, 1, 1, sample], &mut y, 4, 0.4, 0.0);
        // Each sample i is m * x_i + (1 - m) * x_perm(i): its targets say which, with weights
        // m and 1 - m, and the pixels agree with them.
        for i in 0..n {
            let row = &y[i * 4..(i + 1) * 4];
            let total: f32 = row.iter().sum();
            assert!((total - 1.0).abs() < 1e-6);
            let want: f32 = row
                .iter()
                .enumerate()
                .map(|(k, t)| t * k as f32 * 10.0)
                .sum();
            assert!(
                (x[i * sample] - want).abs() < 1e-4,
                "sample {i}: {} vs {want}",
                x[i * sample]
            );
        }
    }

    #[test]
    fn cutmix_pastes_a_box_and_weights_targets_by_area() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let (n, h, w) = (3, 8, 8);
        let mut x: Vec<f32> = (0..n).flat_map(|i| vec![i as f32; h * w]).collect();
        let mut y = smooth_one_hot(&[0, 1, 2], 3, 0.0);
        mix_batch(&mut rng, &mut x, [n, 1, h, w], &mut y, 3, 0.0, 1.0);
        for i in 0..n {
            let own = x[i * h * w..(i + 1) * h * w]
                .iter()
                .filter(|&&v| v == i as f32)
                .count() as f32;
            // Where the pasted sample is the same sample, every pixel is "own".
            let t_own = y[i * 3 + i];
            if t_own < 1.0 {
                assert!(
                    (own / (h * w) as f32 - t_own).abs() < 1e-6,
                    "sample {i}: area {own} vs target {t_own}"
                );
            }
        }
    }
}
