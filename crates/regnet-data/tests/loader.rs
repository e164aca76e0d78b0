//! The loader: batch layout, orders, subsets, determinism across thread counts, corrupt
//! samples, bounded prefetching.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{tempdir, write_folder};
use regnet_data::transforms::{GrayAugment, GrayTransform};
use regnet_data::{
    Batch, DataError, Dataset, DatasetKind, Image, ImageFolder, InMemoryDataset, Loader,
    LoaderOptions, OnCorrupt, Split, Subset, Transform, TransformOptions, build_transform,
};

/// `n` flat 4x4 gray images; image i has value i % 256 and label i % 10.
fn numbered(n: usize) -> Arc<InMemoryDataset> {
    let pixels = (0..n).flat_map(|i| [(i % 256) as u8; 16]).collect();
    let labels = (0..n).map(|i| (i % 10) as u16).collect();
    let names = (0..10).map(|i| i.to_string()).collect();
    Arc::new(
        InMemoryDataset::new(DatasetKind::Mnist, 4, 4, 1, pixels, labels, names, "mem").unwrap(),
    )
}

/// Output = pixel / 255 (mean 0, std 1), no augmentation: the value tells the image.
fn identity() -> Arc<GrayTransform> {
    Arc::new(GrayTransform::new(4, 0.0, 1.0, None))
}

fn collect(loader: &Loader, epoch: u64) -> Vec<Batch> {
    loader.epoch(epoch).map(|b| b.unwrap()).collect()
}

#[test]
fn test_loader_is_sequential_and_keeps_the_last_batch() {
    let loader = Loader::new(numbered(23), identity(), LoaderOptions::test(10)).unwrap();
    assert_eq!((loader.num_batches(), loader.num_samples()), (3, 23));
    let batches = collect(&loader, 0);
    assert_eq!(batches.len(), 3);
    assert_eq!(batches[2].shape, [3, 1, 4, 4]);
    assert_eq!(batches[2].indices, [20, 21, 22]);
    for b in &batches {
        assert_eq!(b.images.len(), b.len() * 16);
        for (k, &i) in b.indices.iter().enumerate() {
            // Every pixel of image k is i / 255, and its label is i % 10.
            let img = &b.images[k * 16..(k + 1) * 16];
            assert!(img.iter().all(|&v| (v * 255.0 - i as f32).abs() < 1e-3));
            assert_eq!(b.labels[k], (i % 10) as i64);
        }
    }
    let all: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
    assert_eq!(all, (0..23).collect::<Vec<_>>());
}

#[test]
fn train_loader_shuffles_per_epoch_and_drops_the_last_batch() {
    let loader = Loader::new(numbered(23), identity(), LoaderOptions::train(10, 7)).unwrap();
    assert_eq!(loader.num_batches(), 2);
    let e0 = collect(&loader, 0);
    let e1 = collect(&loader, 1);
    assert_eq!(e0.len(), 2);
    let order0: Vec<usize> = e0.iter().flat_map(|b| b.indices.clone()).collect();
    let order1: Vec<usize> = e1.iter().flat_map(|b| b.indices.clone()).collect();
    assert_ne!(order0, order1, "each epoch has its own order");
    assert_ne!(order0, (0..20).collect::<Vec<_>>(), "shuffled");
    // The epoch order is a permutation of all samples; the batches take its first 20.
    let mut full = loader.epoch_order(0);
    assert_eq!(&full[..20], &order0[..]);
    full.sort_unstable();
    assert_eq!(full, (0..23).collect::<Vec<_>>());
    // Same seed and epoch: same batches; another seed: another order.
    assert_eq!(collect(&loader, 0), e0);
    let other = Loader::new(numbered(23), identity(), LoaderOptions::train(10, 8)).unwrap();
    assert_ne!(other.epoch_order(0), loader.epoch_order(0));
}

#[test]
fn subsets_and_start_batch() {
    let opts = |subset, start_batch| LoaderOptions {
        subset,
        start_batch,
        ..LoaderOptions::train(4, 3)
    };
    let first = Loader::new(numbered(50), identity(), opts(Subset::First(10), 0)).unwrap();
    let mut seen = first.epoch_order(5);
    seen.sort_unstable();
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    assert_eq!(first.num_batches(), 2);

    let random = Loader::new(numbered(50), identity(), opts(Subset::Random(10), 0)).unwrap();
    let mut a = random.epoch_order(0);
    let mut b = random.epoch_order(1);
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b, "the same subset in every epoch");
    assert_ne!(a, (0..10).collect::<Vec<_>>());
    a.dedup();
    assert_eq!(a.len(), 10);

    let resumed = Loader::new(numbered(50), identity(), opts(Subset::All, 3)).unwrap();
    let batches = collect(&resumed, 2);
    assert_eq!(batches.len(), 12 - 3);
    assert_eq!(batches[0].index, 3);
    assert_eq!(batches[0], resumed.load_batch(2, 3).unwrap());

    let e = Loader::new(numbered(5), identity(), opts(Subset::First(6), 0)).unwrap_err();
    assert!(
        e.to_string()
            .contains("subset of 6 samples of a data set of 5"),
        "{e}"
    );
    let e = Loader::new(numbered(5), identity(), LoaderOptions::test(0)).unwrap_err();
    assert!(matches!(e, DataError::InvalidOption(_)));
    let e = Loader::new(numbered(5), identity(), opts(Subset::All, 2)).unwrap_err();
    assert!(e.to_string().contains("start batch 2"), "{e}");
}

fn with_workers(mut o: LoaderOptions, workers: usize) -> LoaderOptions {
    o.workers = workers;
    o
}

#[test]
fn same_batches_with_one_or_two_threads_in_memory() {
    let aug = Arc::new(GrayTransform::new(
        6,
        0.5,
        0.25,
        Some(GrayAugment { pad: 2, flip: true }),
    ));
    let run = |workers| {
        let pixels = (0..40 * 16).map(|i| (i * 7 % 256) as u8).collect();
        let labels = (0..40).map(|i| (i % 10) as u16).collect();
        let names = (0..10).map(|i| i.to_string()).collect();
        let ds = InMemoryDataset::new(DatasetKind::Mnist, 4, 4, 1, pixels, labels, names, "m");
        let opts = with_workers(LoaderOptions::train(8, 11), workers);
        let loader = Loader::new(Arc::new(ds.unwrap()), aug.clone(), opts).unwrap();
        (collect(&loader, 0), collect(&loader, 1))
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one, two);
    assert_ne!(one.0[0].images, one.1[0].images);
}

#[test]
fn same_batches_with_one_or_two_threads_from_an_image_folder() {
    let dir = tempdir();
    let root = write_folder(dir.path());
    let run = |workers| {
        let ds: Arc<dyn Dataset> = Arc::new(ImageFolder::open(&root, Split::Train).unwrap());
        let opts = TransformOptions {
            im_size: Some(16),
            ..TransformOptions::default()
        };
        let t = build_transform(ds.kind(), Split::Train, &opts).unwrap();
        let loader = Loader::new(ds, t, with_workers(LoaderOptions::train(5, 1), workers));
        collect(&loader.unwrap(), 4)
    };
    let one = run(1);
    assert_eq!(one.len(), 2);
    assert_eq!(one[0].shape, [5, 3, 16, 16]);
    assert!(one[0].images.iter().all(|v| v.is_finite()));
    assert_eq!(one, run(2));
}

/// An image folder whose second image of class `bee` (label 1) is a text file.
fn folder_with_a_corrupt_image() -> (tempfile::TempDir, Arc<dyn Dataset>, std::path::PathBuf) {
    let dir = tempdir();
    let root = write_folder(dir.path());
    let bad = root.join("train/bee/img1.JPEG");
    std::fs::write(&bad, "this is not a JPEG").unwrap();
    let ds: Arc<dyn Dataset> = Arc::new(ImageFolder::open(&root, Split::Train).unwrap());
    (dir, ds, bad)
}

fn small_transform(ds: &Arc<dyn Dataset>) -> Arc<dyn Transform> {
    let opts = TransformOptions {
        im_size: Some(8),
        ..TransformOptions::default()
    };
    build_transform(ds.kind(), Split::Test, &opts).unwrap()
}

#[test]
fn skip_mode_drops_the_corrupt_sample_from_its_batch() {
    let (_dir, ds, bad) = folder_with_a_corrupt_image();
    let t = small_transform(&ds);
    let opts = LoaderOptions {
        on_corrupt: OnCorrupt::Skip,
        ..LoaderOptions::test(4)
    };
    let loader = Loader::new(ds, t, opts).unwrap();
    let batches = collect(&loader, 0);
    assert_eq!(batches.len(), 3);
    // Sample 5 (bee/img1.JPEG) sits in batch 1 (samples 4..8).
    assert_eq!(batches[1].indices, [4, 6, 7]);
    assert_eq!(batches[1].labels, [1, 1, 1]);
    assert_eq!(batches[1].shape, [3, 3, 8, 8]);
    assert_eq!(batches[1].images.len(), 3 * 3 * 64);
    assert_eq!(batches[1].skipped.len(), 1);
    let s = &batches[1].skipped[0];
    assert_eq!((s.index, s.path.as_deref()), (5, Some(bad.as_path())));
    assert!(s.message.contains("img1.JPEG") && s.message.contains("cannot decode"));
    assert_eq!(batches[0].len() + batches[2].len(), 8);
    assert_eq!(loader.skipped(), batches[1].skipped);
    // A second epoch skips it again, and the log says so.
    collect(&loader, 1);
    assert_eq!(loader.skipped().len(), 2);
}

#[test]
fn fail_mode_stops_with_the_path() {
    let (_dir, ds, bad) = folder_with_a_corrupt_image();
    let t = small_transform(&ds);
    let loader = Loader::new(ds, t, LoaderOptions::test(4)).unwrap();
    let items: Vec<_> = loader.epoch(0).collect();
    assert_eq!(items.len(), 2, "batch 0, then the error, then nothing");
    assert!(items[0].is_ok());
    let e = items[1].as_ref().unwrap_err();
    assert_eq!(e.path(), Some(bad.as_path()));
    assert!(e.to_string().contains("img1.JPEG"), "{e}");
    assert!(loader.load_batch(0, 1).is_err());
}

#[test]
fn transform_errors_are_not_skipped() {
    // A colour data set through the one-channel transform.
    let ds = InMemoryDataset::new(
        DatasetKind::Cifar10,
        2,
        2,
        3,
        vec![0; 24],
        vec![0, 1],
        vec!["a".into(), "b".into()],
        "rgb",
    );
    let opts = LoaderOptions {
        on_corrupt: OnCorrupt::Skip,
        ..LoaderOptions::test(2)
    };
    let loader = Loader::new(Arc::new(ds.unwrap()), identity(), opts).unwrap();
    let e = loader.load_batch(0, 0).unwrap_err();
    assert!(matches!(e, DataError::Transform { .. }));
    assert!(
        e.to_string().contains("rgb #0") && e.to_string().contains("3 channels"),
        "{e}"
    );
}

/// A data set that counts the images it decoded.
#[derive(Debug)]
struct Counting {
    inner: Arc<InMemoryDataset>,
    decoded: Arc<AtomicUsize>,
}

impl Dataset for Counting {
    fn kind(&self) -> DatasetKind {
        self.inner.kind()
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn channels(&self) -> usize {
        1
    }
    fn class_names(&self) -> &[String] {
        self.inner.class_names()
    }
    fn label(&self, index: usize) -> usize {
        self.inner.label(index)
    }
    fn image(&self, index: usize) -> regnet_data::Result<Image> {
        self.decoded.fetch_add(1, Ordering::SeqCst);
        self.inner.image(index)
    }
}

#[test]
fn prefetching_is_bounded_and_stops_when_dropped() {
    let decoded = Arc::new(AtomicUsize::new(0));
    let ds = Counting {
        inner: numbered(2000),
        decoded: decoded.clone(),
    };
    let opts = LoaderOptions {
        prefetch: 2,
        ..LoaderOptions::test(4)
    };
    let loader = Loader::new(Arc::new(ds), identity(), opts).unwrap();
    let mut epoch = loader.epoch(0);
    let first = epoch.next().unwrap().unwrap();
    assert_eq!(first.indices, [0, 1, 2, 3]);
    // Let the producer run as far as it can: the batch held here, 2 queued, 1 built and
    // waiting to be queued.
    std::thread::sleep(Duration::from_millis(300));
    let n = decoded.load(Ordering::SeqCst);
    assert!(n <= 4 * 4, "{n} images decoded ahead");
    drop(epoch); // must not hang
    let after = decoded.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        decoded.load(Ordering::SeqCst),
        after,
        "the producer has stopped"
    );
}

/// A data set whose image 3 panics (a bug, not a corrupt file).
#[derive(Debug)]
struct Buggy(Arc<InMemoryDataset>);

impl Dataset for Buggy {
    fn kind(&self) -> DatasetKind {
        self.0.kind()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn channels(&self) -> usize {
        1
    }
    fn class_names(&self) -> &[String] {
        self.0.class_names()
    }
    fn label(&self, index: usize) -> usize {
        self.0.label(index)
    }
    fn image(&self, index: usize) -> regnet_data::Result<Image> {
        assert_ne!(index, 3, "bug in the data set");
        self.0.image(index)
    }
}

#[test]
#[should_panic(expected = "bug in the data set")]
fn a_panic_in_a_worker_reaches_the_caller() {
    let loader = Loader::new(
        Arc::new(Buggy(numbered(8))),
        identity(),
        LoaderOptions::test(2),
    );
    for b in loader.unwrap().epoch(0) {
        b.unwrap();
    }
}

#[test]
fn loaders_and_epochs_can_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Loader>();
    send_sync::<Batch>();
    send::<regnet_data::EpochIter>();
    // An epoch consumed on another thread than the one that started it.
    let loader = Loader::new(numbered(10), identity(), LoaderOptions::test(3)).unwrap();
    let epoch = loader.epoch(0);
    let n = std::thread::spawn(move || epoch.map(|b| b.unwrap().len()).sum::<usize>());
    assert_eq!(n.join().unwrap(), 10);
}
