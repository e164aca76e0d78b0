//! Broken data end to end: `regnet train` on a split with no image, a training split
//! smaller than one batch, or a split whose images are all skipped as corrupt stops with a
//! one-line error naming the split and the path (never "accuracy 100.00%" or a loss of 0);
//! `regnet predict` on a small PNG claiming a huge image is a one-line error, not an abort.

mod common;

use std::path::Path;

use common::fails;
use regnet_core::network::Network;
use regnet_nn::init::init_state_dict;
use regnet_nn::weights::{ChannelOrder, write_safetensors};

/// Writes MNIST-format IDX files `<prefix>-{images,labels}` of `n` 28x28 images.
fn write_idx(dir: &Path, prefix: &str, n: u32) {
    let header = |dims: &[u32]| {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    };
    let mut images = header(&[n, 28, 28]);
    images.extend((0..n * 784).map(|k| (k % 251) as u8));
    let mut labels = header(&[n]);
    labels.extend((0..n).map(|i| (i % 10) as u8));
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
}

/// `regnet train` of a tiny model on the MNIST files in `data`, with `extra` overrides.
fn train_fails(data: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "train",
        "--quiet",
        "OUT_DIR",
        out.to_str().unwrap(),
        "TRAIN.DATASET",
        "mnist",
        "TEST.DATASET",
        "mnist",
        "EXT.DATA_PATH",
        data.to_str().unwrap(),
        "OPTIM.MAX_EPOCH",
        "1",
    ];
    args.extend_from_slice(extra);
    fails(&args)
}

#[test]
fn empty_splits_are_errors_naming_the_split_and_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("data"), tmp.path().join("out"));
    std::fs::create_dir(&data).unwrap();
    write_idx(&data, "train", 0);
    write_idx(&data, "t10k", 5);
    let err = train_fails(&data, &out, &[]);
    let file = data.join("train-images-idx3-ubyte");
    assert!(
        err.contains("TRAIN.DATASET") && err.contains(file.to_str().unwrap()),
        "{err}"
    );
    assert!(err.contains("no images"), "{err}");
    assert_eq!(err.matches(file.to_str().unwrap()).count(), 1, "{err}");

    write_idx(&data, "train", 20);
    write_idx(&data, "t10k", 0);
    let err = train_fails(&data, &out, &[]);
    assert!(
        err.contains("TEST.DATASET") && err.contains("t10k-images-idx3-ubyte"),
        "{err}"
    );
}

#[test]
fn a_training_split_smaller_than_one_batch_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, out) = (tmp.path().join("data"), tmp.path().join("out"));
    std::fs::create_dir(&data).unwrap();
    write_idx(&data, "train", 3);
    write_idx(&data, "t10k", 3);
    let err = train_fails(&data, &out, &["TRAIN.BATCH_SIZE", "8"]);
    let file = data.join("train-images-idx3-ubyte");
    assert!(
        err.contains(&format!(
            "TRAIN.BATCH_SIZE: the train split at {} has 3 images, fewer than one batch of 8",
            file.display()
        )),
        "{err}"
    );
    assert!(
        !out.join("checkpoints").exists(),
        "nothing trained, nothing written"
    );
}

/// The CRC-32 of PNG chunks (a few lines: not worth a dependency in a test).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// A PNG of a few dozen bytes whose header claims 100 000 x 100 000 pixels.
fn write_png_bomb(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::new(1, 1).save(path).unwrap();
    let mut b = std::fs::read(path).unwrap();
    b[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    b[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&b[12..29]);
    b[29..33].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(path, b).unwrap();
}

/// An image folder with classes `a` and `b`, two images each in `train/` and `val/`: PNG
/// bombs in `bombs`, valid 8x8 images in the other split.
fn write_folder(root: &Path, bombs: &str) {
    for split in ["train", "val"] {
        for class in ["a", "b"] {
            let dir = root.join(format!("{split}/{class}"));
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..2 {
                if split == bombs {
                    write_png_bomb(&dir.join(format!("bomb{i}.png")));
                } else {
                    image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([x as u8 * 30, y as u8, 7]))
                        .save(dir.join(format!("ok{i}.png")))
                        .unwrap();
                }
            }
        }
    }
}

/// `regnet train` of a tiny model on the image folder `root`, skipping corrupt images.
fn train_folder_fails(root: &Path, out: &Path) -> String {
    fails(&[
        "train",
        "--quiet",
        "OUT_DIR",
        out.to_str().unwrap(),
        "TRAIN.DATASET",
        "image_folder",
        "TEST.DATASET",
        "image_folder",
        "EXT.DATA_PATH",
        root.to_str().unwrap(),
        "TRAIN.IM_SIZE",
        "32",
        "TEST.IM_SIZE",
        "36",
        "TRAIN.BATCH_SIZE",
        "2",
        "TEST.BATCH_SIZE",
        "2",
        "OPTIM.MAX_EPOCH",
        "1",
        "EXT.ON_CORRUPT",
        "skip",
        "REGNET.DEPTH",
        "2",
        "REGNET.W0",
        "8",
        "REGNET.WA",
        "8",
        "REGNET.WM",
        "2.0",
        "REGNET.GROUP_W",
        "4",
        "REGNET.STEM_W",
        "8",
        "BN.USE_PRECISE_STATS",
        "False",
    ])
}

#[test]
fn a_training_split_of_corrupt_images_is_an_error_even_when_skipping() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, out) = (tmp.path().join("folder"), tmp.path().join("out"));
    write_folder(&root, "train");
    let err = train_folder_fails(&root, &out);
    let train = root.join("train");
    assert!(
        err.contains(&format!(
            "the train split at {} gave no image in epoch 1: all 4 were skipped as corrupt",
            train.display()
        )),
        "{err}"
    );
    // The log says what was skipped.
    let log = std::fs::read_to_string(out.join("stdout.log")).unwrap();
    assert_eq!(log.matches("skipped corrupt sample").count(), 4, "{log}");
    assert!(!log.contains("test_epoch"), "{log}");
}

#[test]
fn a_test_split_of_corrupt_images_is_an_error_not_a_result() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, out) = (tmp.path().join("folder"), tmp.path().join("out"));
    write_folder(&root, "val");
    let err = train_folder_fails(&root, &out);
    let val = root.join("val");
    assert!(
        err.contains(&format!(
            "the test split at {} gave no image in epoch 1: all 4 were skipped as corrupt",
            val.display()
        )),
        "{err}"
    );
    // It trained, but no "test_epoch" result was logged, and no checkpoint claims one.
    let log = std::fs::read_to_string(out.join("stdout.log")).unwrap();
    assert!(
        log.contains("train_epoch") && !log.contains("test_epoch"),
        "{log}"
    );
    assert!(!out.join("checkpoints").exists());
}

#[test]
fn predict_on_a_png_bomb_is_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = regnet_core::zoo::lookup("RegNetX-200MF").unwrap().spec();
    let sd = init_state_dict(&Network::from_spec(&spec).unwrap(), 3, false);
    let weights = tmp.path().join("w.safetensors");
    write_safetensors(&weights, &sd, &spec, ChannelOrder::Rgb).unwrap();
    let bomb = tmp.path().join("bomb.png");
    write_png_bomb(&bomb);
    assert!(std::fs::metadata(&bomb).unwrap().len() < 1024);
    let err = fails(&[
        "predict",
        "--weights",
        weights.to_str().unwrap(),
        "--",
        bomb.to_str().unwrap(),
    ]);
    assert!(
        err.contains(bomb.to_str().unwrap()) && err.contains("cannot decode image"),
        "{err}"
    );
    assert_eq!(err.matches(bomb.to_str().unwrap()).count(), 1, "{err}");
}
