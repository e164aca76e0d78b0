//! Data for regnet: data sets, pycls's transforms and a parallel batch loader, with no
//! deep-learning dependency. Batches are plain `Vec<f32>` images (NCHW) and `Vec<i64>`
//! labels, for any training code to wrap in its own tensors.
//!
//! ```no_run
//! use regnet_data::{LoaderOptions, Split, TransformOptions, build_transform, open_dataset, Loader};
//!
//! # fn main() -> regnet_data::Result<()> {
//! let dataset = open_dataset("fashion_mnist", None, Split::Train)?;
//! let transform = build_transform(dataset.kind(), Split::Train, &TransformOptions::default())?;
//! let loader = Loader::new(dataset, transform, LoaderOptions::train(128, 0))?;
//! for batch in loader.epoch(0) {
//!     let batch = batch?;
//!     let (images, labels, [n, c, h, w]) = (&batch.images, &batch.labels, batch.shape);
//!     # let _ = (images, labels, n, c, h, w);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! | concept | file |
//! |---|---|
//! | the [`Dataset`] trait, [`Image`], [`Split`], [`DatasetKind`] | `dataset.rs` |
//! | opening a data set by name: [`open_dataset`] | `open.rs` |
//! | MNIST / Fashion-MNIST IDX files | `mnist.rs` |
//! | CIFAR-10 Python and binary batches | `cifar.rs`, `pickle.rs` (safe pickle reader) |
//! | ImageNet-style folders, image decoding | `image_folder.rs` |
//! | equally sized images in memory | `in_memory.rs` |
//! | transforms, chosen by [`build_transform`] | `transforms.rs`, `transforms/*.rs` |
//! | seeded randomness per sample | `rng.rs` |
//! | batches, prefetching, corrupt samples | `loader.rs` |
//! | reading files with a size limit | `file.rs` |
//! | errors | `error.rs` |

#![warn(missing_docs)]

pub mod cifar;
pub mod dataset;
pub mod error;
mod file;
pub mod image_folder;
pub mod in_memory;
pub mod loader;
pub mod mnist;
pub mod open;
mod pickle;
pub mod rng;
pub mod transforms;

pub use cifar::{CIFAR10_CLASSES, CifarFormat, locate_cifar10, open_cifar10};
pub use dataset::{Dataset, DatasetKind, Image, Split};
pub use error::{DataError, Result};
pub use image_folder::{ImageFolder, decode_image, decode_image_file};
pub use in_memory::InMemoryDataset;
pub use loader::{
    Batch, EpochIter, Loader, LoaderOptions, MAX_BATCH_BYTES, OnCorrupt, Skipped, Subset,
};
pub use mnist::{
    FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, MAX_IDX_BYTES, MNIST_CLASSES, open_mnist, read_idx,
};
pub use open::{DATASET_NAMES, open_dataset};
pub use rng::{SampleRng, sample_rng};
pub use transforms::{ChannelOrder, Transform, TransformOptions, build_transform};

/// The 1000 ImageNet-1k class names, in label order.
pub fn imagenet_classes() -> Vec<&'static str> {
    include_str!("imagenet_classes.txt").lines().collect()
}
