//! Hostile and broken data files, one test per kind: sizes taken from a file are checked
//! before anything is allocated (IDX headers, gzip bombs, pickle lengths and the memo, image
//! headers claiming huge sizes, devices given as files), empty splits are errors naming the
//! split and the path, and every message is one line naming its file once.

mod common;

use std::path::Path;
use std::sync::Arc;

use regnet_data::transforms::GrayTransform;
use regnet_data::{
    DataError, Dataset, DatasetKind, ImageFolder, InMemoryDataset, Loader, LoaderOptions,
    OnCorrupt, Split, decode_image_file, open_cifar10, open_dataset, open_mnist, read_idx,
};

use common::{gzip, idx_bytes, png_bomb, tempdir, write_cifar_py, write_mnist, write_rgb};

/// One line, naming `name` exactly once, and no inner error left to print a second time.
fn assert_clean(e: &DataError, name: &str) {
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "two lines: {msg}");
    assert_eq!(msg.matches(name).count(), 1, "{name} not named once: {msg}");
    assert!(std::error::Error::source(e).is_none(), "{msg}");
}

#[test]
fn idx_headers_promising_more_than_the_file_holds_are_refused() {
    let dir = tempdir();
    let raw = dir.path().join("raw-idx3-ubyte");
    std::fs::write(&raw, idx_bytes(&[u32::MAX, u32::MAX, 2], &[1, 2, 3])).unwrap();
    let e = read_idx(&raw).unwrap_err();
    assert!(e.to_string().contains("limit"), "{e}");
    assert_clean(&e, raw.to_str().unwrap());

    // 1 GB promised by a gzip file of a few dozen bytes: refused before decompressing.
    let gz = dir.path().join("claims-idx3-ubyte.gz");
    std::fs::write(&gz, gzip(&idx_bytes(&[1000, 1000, 1000], &[0; 100]))).unwrap();
    let e = read_idx(&gz).unwrap_err();
    assert!(e.to_string().contains("more than a gzip file of"), "{e}");
    assert_clean(&e, gz.to_str().unwrap());
}

#[test]
fn a_gzip_bomb_is_decompressed_only_as_far_as_the_header_promises() {
    // 64 MB of zeros (about 64 kB gzipped) behind a header promising 12 bytes.
    let dir = tempdir();
    let bomb = dir.path().join("bomb-idx1-ubyte.gz");
    std::fs::write(&bomb, gzip(&idx_bytes(&[12], &vec![0; 64 << 20]))).unwrap();
    let e = read_idx(&bomb).unwrap_err();
    assert!(e.to_string().contains("data goes on past 12 bytes"), "{e}");
}

#[test]
fn a_split_without_images_is_an_error_naming_the_file() {
    let dir = tempdir();
    write_mnist(dir.path(), "train", 0, 28, 28, true);
    let e = open_mnist(dir.path(), Split::Train, DatasetKind::Mnist).unwrap_err();
    assert!(e.to_string().contains("no images"), "{e}");
    assert_clean(&e, "train-images-idx3-ubyte.gz");

    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::write(bin.join("test_batch.bin"), b"").unwrap();
    let e = open_cifar10(&bin, Split::Test).unwrap_err();
    assert!(e.to_string().contains("no images"), "{e}");
}

#[test]
fn a_device_linked_in_place_of_a_batch_is_refused_without_reading_it() {
    let dir = tempdir();
    write_cifar_py(dir.path(), 1);
    let batch = dir.path().join("data_batch_2");
    std::fs::remove_file(&batch).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &batch).unwrap();
    let e = open_cifar10(dir.path(), Split::Train).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    assert_clean(&e, batch.to_str().unwrap());
}

/// A valid test batch and a `batches.meta` holding `meta`.
fn cifar_with_meta(dir: &Path, meta: &[u8]) -> regnet_data::Result<InMemoryDataset> {
    write_cifar_py(dir, 1);
    std::fs::write(dir.join("batches.meta"), meta).unwrap();
    open_cifar10(dir, Split::Test)
}

#[test]
fn the_pickle_memo_cannot_multiply_a_string() {
    // label_names: one 512 kB string, then 200 000 references to it (100 GB if copied).
    let mut p = vec![0x80, 2, b'}', b'(', b'U', 11];
    p.extend_from_slice(b"label_names](T");
    p.extend_from_slice(&(1u32 << 19).to_le_bytes());
    p.extend(std::iter::repeat_n(b'a', 1 << 19));
    p.extend_from_slice(b"q\x01");
    for _ in 0..200_000 {
        p.extend_from_slice(b"h\x01");
    }
    p.extend_from_slice(b"eu.");
    let dir = tempdir();
    let e = cifar_with_meta(dir.path(), &p).unwrap_err();
    assert!(
        e.to_string()
            .contains("'label_names': a list of 200001 strings, expected at most 10"),
        "{e}"
    );
    assert_clean(&e, "batches.meta");
}

#[test]
fn a_pickle_cannot_grow_the_stack_without_bound() {
    // One object duplicated three million times: refused at the reader's limit.
    let mut p = vec![0x80, 2, b'N'];
    p.extend(std::iter::repeat_n(b'2', 3_000_000));
    p.push(b'.');
    let dir = tempdir();
    let e = cifar_with_meta(dir.path(), &p).unwrap_err();
    assert!(e.to_string().contains("too large"), "{e}");
    // As a batch (whose size limit is larger) it reaches the stack limit.
    std::fs::write(dir.path().join("test_batch"), &p).unwrap();
    std::fs::remove_file(dir.path().join("batches.meta")).unwrap();
    let e = open_cifar10(dir.path(), Split::Test).unwrap_err();
    assert!(e.to_string().contains("stack entries"), "{e}");
    assert_clean(&e, "test_batch");
}

#[test]
fn a_small_png_claiming_a_huge_image_is_a_corrupt_image() {
    let dir = tempdir();
    for (w, h) in [(100_000, 100_000), (30_000, 30_000), (u32::MAX, 1)] {
        let path = dir.path().join(format!("bomb_{w}x{h}.png"));
        let bytes = png_bomb(w, h);
        assert!(bytes.len() < 1024);
        std::fs::write(&path, &bytes).unwrap();
        let e = decode_image_file(&path).unwrap_err();
        assert!(matches!(e, DataError::Decode { .. }), "{e}");
        assert_clean(&e, path.to_str().unwrap());
    }
}

#[test]
fn a_jpeg_claiming_a_huge_image_is_a_corrupt_image() {
    let dir = tempdir();
    let path = dir.path().join("bomb.jpg");
    write_rgb(&path, 8, 8, |y, x, c| (y * 30 + x * 7 + c) as u8);
    let mut bytes = std::fs::read(&path).unwrap();
    // The frame header: FF C0, length, precision, height, width.
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bytes[sof + 5..sof + 9].copy_from_slice(&[0x75, 0x30, 0x75, 0x30]); // 30000 x 30000
    std::fs::write(&path, &bytes).unwrap();
    let e = decode_image_file(&path).unwrap_err();
    assert!(matches!(e, DataError::Decode { .. }), "{e}");
    assert_clean(&e, path.to_str().unwrap());
}

#[test]
fn an_image_file_over_the_size_limit_is_not_read() {
    let dir = tempdir();
    let path = dir.path().join("huge.png");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(regnet_data::image_folder::MAX_IMAGE_FILE_BYTES + 1)
        .unwrap(); // sparse: nothing written
    let e = decode_image_file(&path).unwrap_err();
    assert!(e.to_string().contains("too large for an image"), "{e}");
    assert_clean(&e, path.to_str().unwrap());
}

/// An image folder `train/a/` with `good` valid images and `bombs` PNG bombs.
fn folder(root: &Path, good: usize, bombs: usize) -> Arc<dyn Dataset> {
    let class = root.join("train/a");
    for i in 0..good {
        write_rgb(&class.join(format!("good{i}.png")), 5, 4, |y, x, c| {
            (y + x + c) as u8
        });
    }
    std::fs::create_dir_all(&class).unwrap();
    for i in 0..bombs {
        std::fs::write(
            class.join(format!("bomb{i}.png")),
            png_bomb(100_000, 100_000),
        )
        .unwrap();
    }
    Arc::new(ImageFolder::open(root, Split::Train).unwrap())
}

fn skipping_loader(ds: Arc<dyn Dataset>, batch: usize) -> Loader {
    let t = Arc::new(GrayTransform::mnist(4, false)); // any transform; never reached
    let opts = LoaderOptions {
        on_corrupt: OnCorrupt::Skip,
        ..LoaderOptions::test(batch)
    };
    let t: Arc<dyn regnet_data::Transform> = if ds.channels() == 3 {
        regnet_data::build_transform(
            ds.kind(),
            Split::Test,
            &regnet_data::TransformOptions {
                im_size: Some(4),
                ..Default::default()
            },
        )
        .unwrap()
    } else {
        t
    };
    Loader::new(ds, t, opts).unwrap()
}

#[test]
fn bombs_in_an_image_folder_are_skipped_as_corrupt() {
    let dir = tempdir();
    let loader = skipping_loader(folder(dir.path(), 1, 2), 4);
    let batches: Vec<_> = loader.epoch(0).map(Result::unwrap).collect();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].len(), 1);
    assert_eq!(batches[0].skipped.len(), 2);
    for s in &batches[0].skipped {
        assert!(
            s.message.contains("bomb") && !s.message.contains('\n'),
            "{}",
            s.message
        );
    }
}

#[test]
fn a_split_whose_images_are_all_corrupt_is_an_error_naming_split_and_path() {
    let dir = tempdir();
    let loader = skipping_loader(folder(dir.path(), 0, 3), 2);
    loader.check_not_empty(Split::Train).unwrap();
    assert_eq!(loader.epoch(0).count(), 0, "no batch comes out");
    let e = loader.all_skipped_error(Split::Train, 0);
    let msg = e.to_string();
    let train = dir.path().join("train");
    assert!(
        msg.starts_with(&format!(
            "the train split at {} gave no image in epoch 1",
            train.display()
        )),
        "{msg}"
    );
    assert!(msg.contains("all 3 were skipped as corrupt"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
}

fn gray_set(n: usize) -> Arc<dyn Dataset> {
    let names = (0..10).map(|i| i.to_string()).collect();
    Arc::new(
        InMemoryDataset::new(
            DatasetKind::Mnist,
            2,
            2,
            1,
            vec![7; 4 * n],
            vec![1; n],
            names,
            "/data/mnist/t10k-images-idx3-ubyte",
        )
        .unwrap(),
    )
}

#[test]
fn empty_splits_and_splits_smaller_than_a_batch_are_errors() {
    let t = Arc::new(GrayTransform::mnist(2, false));
    let train = |n, bs| Loader::new(gray_set(n), t.clone(), LoaderOptions::train(bs, 0)).unwrap();
    let e = train(0, 8).check_not_empty(Split::Train).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the train split at /data/mnist/t10k-images-idx3-ubyte has no images"
    );
    let e = train(3, 8).check_not_empty(Split::Train).unwrap_err();
    assert!(
        e.to_string().contains(
            "has 3 images, fewer than one batch of 8 (the last partial batch is dropped)"
        ),
        "{e}"
    );
    train(8, 8).check_not_empty(Split::Train).unwrap();
    // Testing keeps the last partial batch: 3 images are a batch.
    let test = Loader::new(gray_set(3), t, LoaderOptions::test(8)).unwrap();
    test.check_not_empty(Split::Test).unwrap();
}

#[test]
fn a_batch_too_large_for_memory_is_an_error_not_an_abort() {
    // 65536 x 65536 floats per image: 16 GiB for one image.
    let t = Arc::new(GrayTransform::mnist(1 << 16, false));
    let loader = Loader::new(gray_set(2), t, LoaderOptions::test(2)).unwrap();
    let e = loader.load_batch(0, 0).unwrap_err();
    assert!(e.to_string().contains("larger than the"), "{e}");
}

#[test]
fn file_system_errors_name_the_file_once() {
    let e = open_dataset("mnist", Some(Path::new("/nonexistent/mnist")), Split::Train).unwrap_err();
    assert_clean(&e, "/nonexistent/mnist/train-images-idx3-ubyte");
    let e = open_dataset("cifar10", Some(Path::new("/nonexistent/c")), Split::Test).unwrap_err();
    assert_clean(&e, "/nonexistent/c");
    let e = open_dataset(
        "image_folder",
        Some(Path::new("/nonexistent/f")),
        Split::Train,
    )
    .unwrap_err();
    assert_clean(&e, "/nonexistent/f/train");
}
