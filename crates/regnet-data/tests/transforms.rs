//! Transforms against numbers computed by hand or by an independent implementation.

use regnet_data::transforms::ops::{
    CropBox, center_crop_box, lighting_shift, scale_and_center_crop, scale_size,
};
use regnet_data::transforms::resize::resize;
use regnet_data::transforms::{
    CIFAR_MEAN, CIFAR_STD, CifarTransform, FloatImage, GrayTransform, IMAGENET_EIG_VALS,
    IMAGENET_EIG_VECS, IMAGENET_MEAN, IMAGENET_STD, ImageNetTransform,
};
use regnet_data::{
    ChannelOrder, DatasetKind, Image, Split, Transform, TransformOptions, build_transform,
    sample_rng,
};

/// The 5x7 test image of the resize cross-check: ((y * 7 + x) * 37 % 101) / 101.
fn grid() -> FloatImage {
    let data = (0..35).map(|i| ((i * 37 % 101) as f32) / 101.0).collect();
    FloatImage::new(5, 7, 1, data)
}

fn assert_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "value {i}: {g} vs {w}");
    }
}

/// Expected values from PyTorch's `F.interpolate(mode="bilinear", align_corners=False,
/// antialias=False)`, which maps pixels like OpenCV's INTER_LINEAR (half-pixel centres, no
/// anti-aliasing, clamped borders), computed once with PyTorch 2 and pasted here.
#[test]
fn resize_matches_an_independent_bilinear() {
    let down = [
        0.325495, 0.549918, 0.316007, 0.498762, 0.266089, 0.782178, 0.548267, 0.564356, 0.415017,
        0.764439, 0.530528, 0.463284,
    ];
    assert_close(&resize(&grid(), 3, 4).data, &down, 2e-6);
    let thin = [
        0.244224, 0.0990099, 0.620462, 0.808581, 0.663366, 0.518152, 0.372937, 0.227723, 0.749175,
        0.270627, 0.792079, 0.646865, 0.50165, 0.356436, 0.211221,
    ];
    assert_close(&resize(&grid(), 5, 3).data, &thin, 2e-6);
    let up = resize(&grid(), 9, 11);
    // First row, and the first and last values of the others.
    let first_row = [
        0.0, 0.166517, 0.39964, 0.632763, 0.50225, 0.0990099, 0.332133, 0.565256, 0.79838,
        0.486049, 0.19802,
    ];
    assert_close(&up.data[..11], &first_row, 2e-6);
    assert_close(
        &[up.get(4, 5, 0), up.get(8, 10, 0)],
        &[0.227723, 0.455446],
        2e-6,
    );
}

#[test]
fn scale_and_center_crop_by_hand() {
    // 4 x 6 image, v = 10 y + x, scaled so the short side is 2: (2, int(6 / 4 * 2) = 3),
    // each output the mean of a 2x2 block: 20 r + 2 c + 5.5. The centre 2x2 starts at
    // x = ceil((3 - 2) / 2) = 1, y = 0.
    assert_eq!(scale_size(4, 6, 2), (2, 3));
    assert_eq!(
        center_crop_box(2, 3, 2),
        CropBox {
            y: 0,
            x: 1,
            height: 2,
            width: 2
        }
    );
    let im = FloatImage::new(
        4,
        6,
        1,
        (0..24).map(|i| (10 * (i / 6) + i % 6) as f32).collect(),
    );
    assert_eq!(
        scale_and_center_crop(&im, 2, 2).data,
        vec![7.5, 9.5, 27.5, 29.5]
    );
}

#[test]
fn imagenet_test_transform_by_hand() {
    // The same geometry on a 3-channel u8 image: channel c holds 10 y + x + 50 c.
    let data = (0..24)
        .flat_map(|i| (0..3).map(move |c| (10 * (i / 6) + i % 6 + 50 * c) as u8))
        .collect();
    let im = Image::new(4, 6, 3, data);
    let norm = |v: f32, c: usize| (v / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
    for (order, first) in [(ChannelOrder::Rgb, 0), (ChannelOrder::Bgr, 2)] {
        let t = ImageNetTransform::test(2, 2, order).unwrap();
        assert_eq!(t.output_shape(), [3, 2, 2]);
        let mut out = vec![0.0; 12];
        t.apply(&im, &mut sample_rng(0, 0, 0), &mut out).unwrap();
        // Output channel 0 is R (RGB) or B (BGR); 1 is G.
        let want0: Vec<f32> = [7.5, 9.5, 27.5, 29.5]
            .iter()
            .map(|v| norm(v + 50.0 * first as f32, first))
            .collect();
        assert_close(&out[..4], &want0, 1e-5);
        assert_close(&out[4..5], &[norm(57.5, 1)], 1e-5);
    }
}

#[test]
fn imagenet_test_transform_on_a_landscape_photo_size() {
    // 375 x 500 -> 256 x 341, crop at (16, 59): the output is that window of the resize.
    let data: Vec<u8> = (0..375 * 500 * 3).map(|i| (i * 7 % 253) as u8).collect();
    let im = Image::new(375, 500, 3, data);
    let t = ImageNetTransform::test(224, 256, ChannelOrder::Bgr).unwrap();
    let mut out = vec![0.0; 3 * 224 * 224];
    t.apply(&im, &mut sample_rng(0, 0, 0), &mut out).unwrap();
    let full = resize(&FloatImage::from_image(&im, 255.0), 256, 341);
    let plane = 224 * 224;
    for (y, x) in [(0, 0), (100, 7), (223, 223)] {
        for c in 0..3 {
            let want = (full.get(16 + y, 59 + x, c) - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
            assert_eq!(out[(2 - c) * plane + y * 224 + x], want, "({y}, {x}, {c})");
        }
    }
}

/// pycls's `lighting` for the fixed draws alpha = (0.1, -0.2, 0.05), computed once with
/// numpy following pycls's code (repeat, multiply, sum over axis 1).
#[test]
fn lighting_noise_with_a_fixed_alpha() {
    let s = lighting_shift([0.1, -0.2, 0.05], IMAGENET_EIG_VALS, IMAGENET_EIG_VECS);
    let want = [-0.01495711, -0.01279863, -0.00998628];
    for i in 0..3 {
        assert!((s[i] - want[i]).abs() < 1e-8, "{s:?}");
    }
}

#[test]
fn imagenet_train_transform_without_noise_keeps_flat_images_flat() {
    // A flat image stays flat under any crop, resize and flip: with pca_std 0 every output
    // value is the normalized colour.
    let im = Image::new(50, 80, 3, [200u8, 100, 30].repeat(50 * 80));
    let t = ImageNetTransform::train(32, 0.0, ChannelOrder::Rgb);
    for i in 0..20 {
        let mut out = vec![0.0; 3 * 32 * 32];
        t.apply(&im, &mut sample_rng(3, 1, i), &mut out).unwrap();
        for (c, v) in [200.0f32, 100.0, 30.0].iter().enumerate() {
            let want = (v / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
            assert!(
                out[c * 1024..(c + 1) * 1024]
                    .iter()
                    .all(|&o| (o - want).abs() < 1e-5)
            );
        }
    }
    // With noise, each channel moves by one shift for the whole image.
    let t = ImageNetTransform::train(32, 0.1, ChannelOrder::Rgb);
    let mut out = vec![0.0; 3 * 32 * 32];
    t.apply(&im, &mut sample_rng(3, 1, 0), &mut out).unwrap();
    let want0 = (200.0 / 255.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0];
    assert!((out[0] - want0).abs() > 1e-4, "noise moved the colour");
    assert!(out[..1024].iter().all(|&o| (o - out[0]).abs() < 1e-5));
}

#[test]
fn imagenet_train_transform_flips_half_the_time() {
    // Left half black, right half white: a flip shows white on the left.
    let data = (0..40 * 60)
        .flat_map(|i| [if i % 60 < 30 { 0u8 } else { 255 }; 3])
        .collect();
    let im = Image::new(40, 60, 3, data);
    let t = ImageNetTransform::train(16, 0.0, ChannelOrder::Rgb);
    let (mut flips, mut plain) = (0, 0);
    for i in 0..400 {
        let mut out = vec![0.0; 3 * 16 * 16];
        t.apply(&im, &mut sample_rng(9, 0, i), &mut out).unwrap();
        // Crops that straddle the edge tell a flip; the others (one colour) do not.
        if out[0] > out[15] {
            flips += 1;
        } else if out[0] < out[15] {
            plain += 1;
        }
    }
    let n = flips + plain;
    assert!(
        n > 100 && flips * 10 > n * 4 && plain * 10 > n * 4,
        "{flips} / {plain}"
    );
}

#[test]
fn cifar_train_transform_flips_and_normalizes_with_pycls_constants() {
    // Column x holds 8 x in every channel; a flipped image decreases along x.
    let data = (0..1024).flat_map(|i| [((i % 32) * 8) as u8; 3]).collect();
    let im = Image::new(32, 32, 3, data);
    let t = CifarTransform::new(true);
    let mut flips = 0;
    for i in 0..400 {
        let mut out = vec![0.0; 3072];
        t.apply(&im, &mut sample_rng(1, 0, i), &mut out).unwrap();
        // Row 16, columns 10 and 11 are inside the image for any offset.
        let (a, b) = (out[16 * 32 + 10], out[16 * 32 + 11]);
        assert!((a - b).abs() * CIFAR_STD[0] > 7.9, "neighbours 8 apart");
        if a > b {
            flips += 1;
        }
    }
    assert!((150..250).contains(&flips), "{flips} flips in 400");
    assert_eq!(CIFAR_MEAN, [125.3, 123.0, 113.9]);
}

#[test]
fn gray_transform_resizes_to_32() {
    let im = Image::new(28, 28, 1, vec![255; 784]);
    let t = GrayTransform::fashion_mnist(32, false);
    let mut out = vec![0.0; 1024];
    t.apply(&im, &mut sample_rng(0, 0, 0), &mut out).unwrap();
    assert_eq!(t.output_shape(), [1, 32, 32]);
    let want = (1.0 - 0.2860) / 0.3530;
    assert!(out.iter().all(|&v| (v - want).abs() < 1e-5));
}

#[test]
fn build_transform_follows_the_options() {
    let opts = TransformOptions {
        im_size: Some(64),
        augment: false,
        ..TransformOptions::default()
    };
    // No augmentation: the training split gets the test transform (deterministic).
    let t = build_transform(DatasetKind::ImageFolder, Split::Train, &opts).unwrap();
    assert_eq!(t.output_shape(), [3, 64, 64]);
    let im = Image::new(
        70,
        90,
        3,
        (0..70 * 90 * 3).map(|i| (i % 256) as u8).collect(),
    );
    let (mut a, mut b) = (vec![0.0; 3 * 64 * 64], vec![0.0; 3 * 64 * 64]);
    t.apply(&im, &mut sample_rng(0, 0, 1), &mut a).unwrap();
    t.apply(&im, &mut sample_rng(0, 0, 2), &mut b).unwrap();
    assert_eq!(a, b);
    // Test scale: round(64 * 8 / 7) = 73 by default.
    let explicit = ImageNetTransform::test(64, 73, ChannelOrder::Bgr).unwrap();
    explicit
        .apply(&im, &mut sample_rng(0, 0, 0), &mut b)
        .unwrap();
    assert_eq!(a, b);
    let t = build_transform(
        DatasetKind::Mnist,
        Split::Test,
        &TransformOptions::default(),
    );
    assert_eq!(t.unwrap().output_shape(), [1, 28, 28]);
}
