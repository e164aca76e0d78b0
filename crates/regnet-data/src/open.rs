//! Opening a data set by name: what a command line or a config (`TRAIN.DATASET`) gives.

use std::path::Path;
use std::sync::Arc;

use crate::cifar::open_cifar10;
use crate::dataset::{Dataset, DatasetKind, Split};
use crate::error::{DataError, Result};
use crate::image_folder::ImageFolder;
use crate::mnist::{FASHION_MNIST_DIR, open_mnist};

/// The names [`open_dataset`] knows (`-` may be written for `_`, in any case).
pub const DATASET_NAMES: [&str; 5] = [
    "fashion_mnist",
    "mnist",
    "cifar10",
    "imagenet",
    "image_folder",
];

/// Opens split `split` of the data set called `name`, from `path`.
///
/// - `fashion_mnist`: the IDX files in `path`, by default [`FASHION_MNIST_DIR`] (Debian's
///   `dataset-fashion-mnist`).
/// - `mnist`: the IDX files in `path`.
/// - `cifar10`: the Python or binary batches in `path` (or its `cifar-10-batches-py/` or
///   `cifar-10-batches-bin/`).
/// - `imagenet`, `image_folder`: `path/train` or `path/val` (see [`ImageFolder::open`]).
///
/// # Errors
/// [`DataError::UnknownDataset`] listing the choices; [`DataError::MissingPath`] when a data
/// set with no default location has no path; any error opening the files.
pub fn open_dataset(name: &str, path: Option<&Path>, split: Split) -> Result<Arc<dyn Dataset>> {
    let key = name.to_ascii_lowercase().replace('-', "_");
    let need_path = || {
        path.ok_or_else(|| DataError::MissingPath {
            name: name.to_string(),
        })
    };
    Ok(match key.as_str() {
        "fashion_mnist" => {
            let dir = path.unwrap_or(Path::new(FASHION_MNIST_DIR));
            Arc::new(open_mnist(dir, split, DatasetKind::FashionMnist)?)
        }
        "mnist" => Arc::new(open_mnist(need_path()?, split, DatasetKind::Mnist)?),
        "cifar10" => Arc::new(open_cifar10(need_path()?, split)?),
        "imagenet" | "image_folder" => Arc::new(ImageFolder::open(need_path()?, split)?),
        _ => {
            return Err(DataError::UnknownDataset {
                name: name.to_string(),
                choices: DATASET_NAMES.to_vec(),
            });
        }
    })
}
