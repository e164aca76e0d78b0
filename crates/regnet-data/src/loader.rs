//! The batch loader: an epoch as an iterator of [`Batch`]es of plain `Vec<f32>` images
//! (NCHW) and `Vec<i64>` labels, built in parallel and prefetched with bounded memory.
//!
//! - Order: a permutation of the samples drawn from `(seed, epoch)` when shuffling (pycls's
//!   training loader), the data set's order otherwise (its test loader).
//! - Batches: consecutive runs of `batch_size` samples of that order; with `drop_last` the
//!   last partial one is left out (pycls drops it in training, keeps it in testing).
//! - Work: the samples of a batch are decoded and transformed on a `rayon` pool of
//!   `workers` threads; each sample draws its augmentation from
//!   [`sample_rng`]`(seed, epoch, index)`, so a batch is the same whatever the number of
//!   threads and whichever thread did what.
//! - Memory: a background thread builds the batches in order and hands them over through a
//!   channel of `prefetch` places; it waits when the channel is full, so at most
//!   `prefetch + 2` batches exist at once (queued, being built, and the one the caller holds)
//!   whatever the size of the data set.
//! - Corrupt samples ([`OnCorrupt`]): stop with the error, or drop the sample from its batch
//!   (which is then shorter) and record it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rand::seq::SliceRandom;
use rayon::prelude::*;

use crate::dataset::{Dataset, Split};
use crate::error::{DataError, Result};
use crate::rng::{sample_rng, shuffle_rng, subset_rng};
use crate::transforms::Transform;

/// What to do with a sample whose image cannot be read or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnCorrupt {
    /// Stop: the epoch iterator yields the error (naming the file) and ends.
    #[default]
    Fail,
    /// Leave the sample out of its batch, which is then shorter (a batch whose samples are
    /// all corrupt is left out of the epoch), and record it in [`Batch::skipped`] and
    /// [`Loader::skipped`].
    ///
    /// Dropping rather than replacing the sample keeps the epoch a partition of the data
    /// set: no sample is seen twice, every label stays with its own image, and batch `i` of
    /// an epoch holds the same samples whatever else is corrupt.
    Skip,
}

/// Which samples of the data set an epoch uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Subset {
    /// All of them.
    #[default]
    All,
    /// The first `n`, in data set order.
    First(usize),
    /// `n` drawn at random from the seed (the same `n` in every epoch), kept in data set
    /// order.
    Random(usize),
}

/// How the loader cuts, orders and builds batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoaderOptions {
    /// Samples per batch (pycls's `TRAIN.BATCH_SIZE` / `TEST.BATCH_SIZE` per device).
    pub batch_size: usize,
    /// Shuffle each epoch (training) or keep the data set's order (testing).
    pub shuffle: bool,
    /// Leave out the last batch when it is partial.
    pub drop_last: bool,
    /// The seed of the shuffle, the random subset and every augmentation.
    pub seed: u64,
    /// Threads that decode and transform samples (a pool of the loader's own, so the
    /// training code's thread pool is left alone); 0 is rayon's default (`RAYON_NUM_THREADS`,
    /// else one per core).
    pub workers: usize,
    /// Batches built ahead of the caller and queued (0: the next batch is built while the
    /// caller works on the current one, and handed over directly).
    pub prefetch: usize,
    /// The samples used.
    pub subset: Subset,
    /// The first batch of each epoch (to skip batches already done).
    pub start_batch: usize,
    /// What to do with a corrupt sample.
    pub on_corrupt: OnCorrupt,
}

impl LoaderOptions {
    /// pycls's training loader: shuffled, last partial batch dropped.
    pub fn train(batch_size: usize, seed: u64) -> Self {
        LoaderOptions {
            batch_size,
            shuffle: true,
            drop_last: true,
            seed,
            workers: 0,
            prefetch: 2,
            subset: Subset::All,
            start_batch: 0,
            on_corrupt: OnCorrupt::Fail,
        }
    }

    /// pycls's test loader: in order, last partial batch kept.
    pub fn test(batch_size: usize) -> Self {
        LoaderOptions {
            shuffle: false,
            drop_last: false,
            ..Self::train(batch_size, 0)
        }
    }
}

/// A sample left out of a batch under [`OnCorrupt::Skip`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its index in the data set.
    pub index: usize,
    /// The file at fault, when the error names one.
    pub path: Option<PathBuf>,
    /// The full error message.
    pub message: String,
}

/// A batch: images and labels of `len()` samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The position of the batch in its epoch.
    pub index: usize,
    /// `shape.iter().product()` floats, NCHW.
    pub images: Vec<f32>,
    /// One label per image.
    pub labels: Vec<i64>,
    /// `[n, channels, height, width]`.
    pub shape: [usize; 4],
    /// The data set index of each image.
    pub indices: Vec<usize>,
    /// The samples of this batch that were left out ([`OnCorrupt::Skip`]).
    pub skipped: Vec<Skipped>,
}

impl Batch {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when every sample was left out.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

struct Inner {
    dataset: Arc<dyn Dataset>,
    transform: Arc<dyn Transform>,
    options: LoaderOptions,
    /// The data set indices in use, in data set order.
    samples: Vec<usize>,
    pool: rayon::ThreadPool,
    skipped: Mutex<Vec<Skipped>>,
}

/// Builds the batches of a data set through a transform. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Loader {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("samples", &self.inner.samples.len())
            .field("transform", &self.inner.transform)
            .field("options", &self.inner.options)
            .finish()
    }
}

impl Loader {
    /// A loader of `dataset` through `transform`.
    ///
    /// # Errors
    /// [`DataError::InvalidOption`] for a batch size of 0, a subset larger than the data set,
    /// a start batch past the end, or worker threads that cannot be started.
    pub fn new(
        dataset: Arc<dyn Dataset>,
        transform: Arc<dyn Transform>,
        options: LoaderOptions,
    ) -> Result<Self> {
        let bad = |m: String| Err(DataError::InvalidOption(m));
        if options.batch_size == 0 {
            return bad("batch size 0".into());
        }
        let len = dataset.len();
        let samples: Vec<usize> = match options.subset {
            Subset::All => (0..len).collect(),
            Subset::First(n) | Subset::Random(n) if n > len => {
                return bad(format!("a subset of {n} samples of a data set of {len}"));
            }
            Subset::First(n) => (0..n).collect(),
            Subset::Random(n) => {
                let mut v =
                    rand::seq::index::sample(&mut subset_rng(options.seed), len, n).into_vec();
                v.sort_unstable();
                v
            }
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(options.workers)
            .thread_name(|i| format!("regnet-data-{i}"))
            .build()
            .map_err(|e| DataError::InvalidOption(format!("cannot start worker threads: {e}")))?;
        let loader = Loader {
            inner: Arc::new(Inner {
                dataset,
                transform,
                options,
                samples,
                pool,
                skipped: Mutex::new(Vec::new()),
            }),
        };
        if loader.inner.options.start_batch > loader.num_batches() {
            return bad(format!(
                "start batch {} of an epoch of {} batches",
                loader.inner.options.start_batch,
                loader.num_batches()
            ));
        }
        Ok(loader)
    }

    /// The data set.
    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.inner.dataset
    }

    /// The transform.
    pub fn transform(&self) -> &Arc<dyn Transform> {
        &self.inner.transform
    }

    /// The options.
    pub fn options(&self) -> &LoaderOptions {
        &self.inner.options
    }

    /// Samples in an epoch (the subset's size).
    pub fn num_samples(&self) -> usize {
        self.inner.samples.len()
    }

    /// Batches in an epoch, counted from batch 0 (the start batch does not change it).
    pub fn num_batches(&self) -> usize {
        self.inner.num_batches()
    }

    /// The data set indices of epoch `epoch`, in the order batches take them.
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        self.inner.order(epoch)
    }

    /// Builds batch `batch` of epoch `epoch` here and now (on the worker pool).
    ///
    /// # Errors
    /// The first failing sample's error under [`OnCorrupt::Fail`]; a transform error in
    /// any mode (a transform that does not fit the data is not a corrupt sample).
    ///
    /// # Panics
    /// If `batch >= num_batches()`.
    pub fn load_batch(&self, epoch: u64, batch: usize) -> Result<Batch> {
        self.inner.load(epoch, batch, &self.epoch_order(epoch))
    }

    /// The batches of epoch `epoch` from the start batch on, built ahead on a background
    /// thread (see the module docs). Dropping the iterator stops that thread.
    pub fn epoch(&self, epoch: u64) -> EpochIter {
        let inner = Arc::clone(&self.inner);
        let (tx, rx) = sync_channel(inner.options.prefetch);
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let batches = self.num_batches();
        let start = inner.options.start_batch;
        let handle = std::thread::Builder::new()
            .name("regnet-data-prefetch".into())
            .spawn(move || produce(&inner, epoch, &thread_stop, &tx))
            .expect("cannot start the prefetch thread");
        EpochIter {
            rx: Some(rx),
            handle: Some(handle),
            stop,
            remaining: batches - start,
        }
    }

    /// Every sample left out so far (all epochs), in the order they were met.
    pub fn skipped(&self) -> Vec<Skipped> {
        self.inner.skipped.lock().expect("skip log").clone()
    }

    /// Checks that an epoch has something to give: at least one sample, and at least one
    /// batch (with `drop_last`, a data set smaller than a batch has none).
    ///
    /// # Errors
    /// [`DataError::EmptySplit`] naming `split` and the data set's
    /// [`source`](Dataset::source).
    pub fn check_not_empty(&self, split: Split) -> Result<()> {
        let (n, bs) = (self.num_samples(), self.inner.options.batch_size);
        let problem = if n == 0 {
            "has no images".to_string()
        } else if self.num_batches() == 0 {
            format!(
                "has {n} images, fewer than one batch of {bs} (the last partial batch is \
                 dropped): an epoch would take no step"
            )
        } else {
            return Ok(());
        };
        Err(DataError::empty_split(
            split,
            self.inner.dataset.source(),
            problem,
        ))
    }

    /// The error for an epoch that gave no sample because every one was skipped as corrupt
    /// ([`OnCorrupt::Skip`]): what a caller reports instead of the statistics of nothing.
    pub fn all_skipped_error(&self, split: Split, epoch: u64) -> DataError {
        let last = self
            .inner
            .skipped
            .lock()
            .expect("skip log")
            .last()
            .map(|s| format!("; the last: {}", s.message))
            .unwrap_or_default();
        DataError::empty_split(
            split,
            self.inner.dataset.source(),
            format!(
                "gave no image in epoch {}: all {} were skipped as corrupt{last}",
                epoch + 1,
                self.num_samples()
            ),
        )
    }
}

/// The prefetch thread: builds the batches in order and sends them until the end, an error,
/// or the receiver going away.
fn produce(inner: &Inner, epoch: u64, stop: &AtomicBool, tx: &SyncSender<Result<Batch>>) {
    let order = inner.order(epoch);
    for b in inner.options.start_batch..inner.num_batches() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let result = inner.load(epoch, b, &order);
        let failed = result.is_err();
        if matches!(&result, Ok(batch) if batch.is_empty()) {
            continue;
        }
        if tx.send(result).is_err() || failed {
            return;
        }
    }
}

impl Inner {
    fn num_batches(&self) -> usize {
        let (n, b) = (self.samples.len(), self.options.batch_size);
        if self.options.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    fn order(&self, epoch: u64) -> Vec<usize> {
        let mut order = self.samples.clone();
        if self.options.shuffle {
            order.shuffle(&mut shuffle_rng(self.options.seed, epoch));
        }
        order
    }

    fn load(&self, epoch: u64, batch: usize, order: &[usize]) -> Result<Batch> {
        let bs = self.options.batch_size;
        let start = batch * bs;
        assert!(
            start < order.len(),
            "batch {batch} past the end of the epoch"
        );
        let indices = &order[start..(start + bs).min(order.len())];
        let [c, h, w] = self.transform.output_shape();
        let mut images = batch_buffer(indices.len(), [c, h, w])?;
        let per = c * h * w; // no overflow: `batch_buffer` checked the product
        let results: Vec<Result<()>> = self.pool.install(|| {
            images
                .par_chunks_mut(per)
                .zip(indices.par_iter())
                .map(|(out, &index)| self.load_sample(epoch, index, out))
                .collect()
        });

        let mut kept = Vec::with_capacity(indices.len());
        let mut skipped = Vec::new();
        for (slot, (result, &index)) in results.into_iter().zip(indices).enumerate() {
            match result {
                Ok(()) => {
                    let to = kept.len();
                    if to != slot {
                        images.copy_within(slot * per..(slot + 1) * per, to * per);
                    }
                    kept.push(index);
                }
                Err(e @ DataError::Transform { .. }) => return Err(e),
                Err(e) if self.options.on_corrupt == OnCorrupt::Fail => return Err(e),
                Err(e) => skipped.push(Skipped {
                    index,
                    path: e.path().map(PathBuf::from),
                    message: e.to_string(),
                }),
            }
        }
        images.truncate(kept.len() * per);
        if !skipped.is_empty() {
            self.skipped
                .lock()
                .expect("skip log")
                .extend(skipped.iter().cloned());
        }
        Ok(Batch {
            index: batch,
            labels: kept.iter().map(|&i| self.dataset.label(i) as i64).collect(),
            shape: [kept.len(), c, h, w],
            images,
            indices: kept,
            skipped,
        })
    }

    fn load_sample(&self, epoch: u64, index: usize, out: &mut [f32]) -> Result<()> {
        let image = self.dataset.image(index)?;
        let mut rng = sample_rng(self.options.seed, epoch, index as u64);
        self.transform
            .apply(&image, &mut rng, out)
            .map_err(|message| DataError::Transform {
                sample: self.dataset.describe(index),
                message,
            })
    }
}

/// The most memory one batch of images may take: 8 GiB, 50 times a batch of 256 ImageNet
/// images of 224x224 (a batch that large would not fit on a device either).
pub const MAX_BATCH_BYTES: usize = 8 << 30;

/// A zeroed buffer for `n` images of `shape`, or an error when it is over
/// [`MAX_BATCH_BYTES`] or cannot be had: a batch size or image size from a config can ask
/// for more memory than there is, which is a bad option, not a reason to abort.
fn batch_buffer(n: usize, shape: [usize; 3]) -> Result<Vec<f32>> {
    let [c, h, w] = shape;
    let too_big = || {
        DataError::InvalidOption(format!(
            "a batch of {n} images of {c}x{h}x{w} floats is larger than the \
             {MAX_BATCH_BYTES}-byte limit (lower the batch size or the image size)"
        ))
    };
    let len = [n, c, h, w, std::mem::size_of::<f32>()]
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&bytes| bytes <= MAX_BATCH_BYTES)
        .ok_or_else(too_big)?
        / std::mem::size_of::<f32>();
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| too_big())?;
    v.resize(len, 0.0);
    Ok(v)
}

/// The batches of one epoch (see [`Loader::epoch`]). Yields `Err` once, as its last item,
/// when a sample fails under [`OnCorrupt::Fail`].
pub struct EpochIter {
    rx: Option<Receiver<Result<Batch>>>,
    handle: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    remaining: usize,
}

impl Iterator for EpochIter {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.rx.as_ref()?.recv() {
            Ok(item) => {
                self.remaining = self.remaining.saturating_sub(1);
                Some(item)
            }
            Err(_) => {
                // The producer is done; if it panicked (a bug in a data set or transform),
                // carry the panic over instead of ending the epoch early in silence.
                self.rx = None;
                if let Some(handle) = self.handle.take()
                    && let Err(panic) = handle.join()
                {
                    std::panic::resume_unwind(panic);
                }
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Batches whose samples are all skipped are left out, so this is an upper bound.
        (0, Some(self.remaining))
    }
}

impl Drop for EpochIter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Dropping the receiver makes a blocked `send` fail, so the producer ends.
        self.rx = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
