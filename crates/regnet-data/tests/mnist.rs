//! MNIST / Fashion-MNIST IDX files: tiny raw and gzipped ones, corrupt ones, and the real
//! Fashion-MNIST that Debian's `dataset-fashion-mnist` installs.

mod common;

use std::path::Path;

use common::{gzip, idx_bytes, tempdir, write_mnist};
use regnet_data::transforms::{FASHION_MNIST_MEAN, FASHION_MNIST_STD};
use regnet_data::{
    DataError, Dataset, DatasetKind, FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, Split, open_dataset,
    open_mnist,
};

#[test]
fn reads_raw_and_gzipped_files_alike() {
    for gz in [false, true] {
        let dir = tempdir();
        write_mnist(dir.path(), "train", 12, 3, 4, gz);
        write_mnist(dir.path(), "t10k", 5, 3, 4, gz);
        let train = open_mnist(dir.path(), Split::Train, DatasetKind::FashionMnist).unwrap();
        let test = open_mnist(dir.path(), Split::Test, DatasetKind::Mnist).unwrap();
        assert_eq!((train.len(), test.len()), (12, 5));
        assert_eq!((train.height(), train.width(), train.channels()), (3, 4, 1));
        let im = train.image(7).unwrap();
        assert_eq!((im.height(), im.width(), im.channels()), (3, 4, 1));
        // Pixel p of image i is (i * 31 + p) % 256.
        assert_eq!(im.get(2, 1, 0), (7 * 31 + 9) as u8);
        assert_eq!(train.label(7), 7);
        assert_eq!(train.label(11), 1);
        assert_eq!(train.class_names()[0], "T-shirt/top");
        assert_eq!(test.class_names()[3], "3");
        assert_eq!(test.kind(), DatasetKind::Mnist);
        assert!(train.describe(7).contains("train-images-idx3-ubyte"));
    }
}

/// Writes the train split, then overwrites one file with `bytes`, and returns the error.
fn open_with(file: &str, bytes: Vec<u8>) -> (DataError, std::path::PathBuf) {
    let dir = tempdir();
    write_mnist(dir.path(), "train", 4, 2, 2, false);
    let path = dir.path().join(file);
    std::fs::write(&path, bytes).unwrap();
    let e = open_mnist(dir.path(), Split::Train, DatasetKind::Mnist).unwrap_err();
    (e, path)
}

fn assert_names(e: &DataError, path: &Path, what: &str) {
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(what), "{msg}");
    assert_eq!(e.path(), Some(path));
}

#[test]
fn truncated_images_are_an_error_naming_the_file() {
    let mut b = idx_bytes(&[4, 2, 2], &[0; 16]);
    b.truncate(b.len() - 3);
    let (e, p) = open_with("train-images-idx3-ubyte", b);
    assert_names(&e, &p, "need 16 bytes of data, found 13");
}

#[test]
fn bad_magic_is_an_error_naming_the_file() {
    let mut b = idx_bytes(&[4], &[0; 4]);
    b[2] = 0x0c; // int32
    let (e, p) = open_with("train-labels-idx1-ubyte", b);
    assert_names(&e, &p, "bad IDX magic number 0x00000c01");
}

#[test]
fn wrong_label_count_is_an_error_naming_both_files() {
    let (e, p) = open_with("train-labels-idx1-ubyte", idx_bytes(&[3], &[0; 3]));
    assert_names(&e, &p, "3 labels for the 4 images of");
    assert!(e.to_string().contains("train-images-idx3-ubyte"), "{e}");
}

#[test]
fn label_out_of_range_and_wrong_dimensions_are_errors() {
    let (e, p) = open_with("train-labels-idx1-ubyte", idx_bytes(&[4], &[0, 1, 10, 2]));
    assert_names(&e, &p, "label 10 of sample 2");
    let (e, p) = open_with("train-images-idx3-ubyte", idx_bytes(&[4, 4], &[0; 16]));
    assert_names(&e, &p, "3-dimensional");
}

#[test]
fn truncated_gzip_is_an_error_naming_the_file() {
    let dir = tempdir();
    write_mnist(dir.path(), "train", 50, 8, 8, true);
    let path = dir.path().join("train-images-idx3-ubyte.gz");
    let gz = gzip(&idx_bytes(&[50, 8, 8], &[7; 3200]));
    std::fs::write(&path, &gz[..gz.len() / 2]).unwrap();
    let e = open_mnist(dir.path(), Split::Train, DatasetKind::Mnist).unwrap_err();
    assert_names(&e, &path, "gzip");
}

#[test]
fn missing_files_are_named() {
    let dir = tempdir();
    let e = open_mnist(dir.path(), Split::Test, DatasetKind::Mnist).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }), "{e}");
    assert!(e.to_string().contains("t10k-images-idx3-ubyte"), "{e}");
}

#[test]
fn open_dataset_by_name() {
    let dir = tempdir();
    write_mnist(dir.path(), "train", 3, 2, 2, true);
    let ds = open_dataset("MNIST", Some(dir.path()), Split::Train).unwrap();
    assert_eq!((ds.len(), ds.kind()), (3, DatasetKind::Mnist));
    let e = open_dataset("mnist", None, Split::Train).unwrap_err();
    assert!(matches!(e, DataError::MissingPath { .. }), "{e}");
    let e = open_dataset("svhn", None, Split::Train)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown data set 'svhn'")
            && e.contains("fashion_mnist, mnist, cifar10, imagenet, image_folder"),
        "{e}"
    );
}

/// The real Fashion-MNIST: sizes, balanced classes, names, and the statistics the
/// one-channel transform normalizes with.
#[test]
fn real_fashion_mnist() {
    assert!(
        Path::new(FASHION_MNIST_DIR).is_dir(),
        "{FASHION_MNIST_DIR} is missing: install Debian's dataset-fashion-mnist (scripts/setup.sh)"
    );
    let train = open_dataset("fashion-mnist", None, Split::Train).unwrap();
    let test = open_dataset("fashion_mnist", None, Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (60000, 10000));
    for ds in [&train, &test] {
        let im = ds.image(ds.len() - 1).unwrap();
        assert_eq!((im.height(), im.width(), im.channels()), (28, 28, 1));
        let mut counts = [0usize; 10];
        for l in ds.labels() {
            counts[l] += 1;
        }
        assert_eq!(counts, [ds.len() / 10; 10]);
        assert_eq!(ds.num_classes(), 10);
        assert_eq!(ds.class_names(), FASHION_MNIST_CLASSES);
    }
    // The first training image is an ankle boot, the first test image too.
    assert_eq!((train.label(0), test.label(0)), (9, 9));

    let (mut sum, mut sq, mut n) = (0f64, 0f64, 0f64);
    for i in 0..train.len() {
        for &v in train.image(i).unwrap().data() {
            let v = f64::from(v) / 255.0;
            sum += v;
            sq += v * v;
            n += 1.0;
        }
    }
    let mean = sum / n;
    let std = (sq / n - mean * mean).sqrt();
    assert!(
        (mean - f64::from(FASHION_MNIST_MEAN)).abs() < 5e-5,
        "mean {mean}"
    );
    assert!(
        (std - f64::from(FASHION_MNIST_STD)).abs() < 5e-5,
        "std {std}"
    );
}
