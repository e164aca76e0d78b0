//! Data for training from a pycls config: the data sets named by `TRAIN.DATASET` and
//! `TEST.DATASET` (at `EXT.DATA_PATH`, or their default place), pycls's transforms, and
//! loaders with the batch sizes and seeds of the config.

use std::path::Path;
use std::sync::Arc;

use regnet_core::config::{self, Config};
use regnet_data::{
    ChannelOrder, Dataset, DatasetKind, Loader, LoaderOptions, OnCorrupt, Split, Subset,
    TransformOptions, build_transform, open_dataset,
};

/// A data error with the config key it came from.
///
/// The data error is part of the message and not a `source()`, so that a printer that walks
/// the chain of sources does not print it twice.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {error}")]
pub struct DataConfigError {
    /// The config key.
    pub key: &'static str,
    /// The error.
    pub error: regnet_data::DataError,
}

fn split_of(name: &str) -> Split {
    // pycls names the test split of ImageNet `val`; both mean the held-out split here.
    if name == "train" {
        Split::Train
    } else {
        Split::Test
    }
}

/// Opens the data set of one phase.
pub fn open(cfg: &Config, train: bool) -> Result<Arc<dyn Dataset>, DataConfigError> {
    let (key, name, split) = if train {
        ("TRAIN.DATASET", &cfg.train.dataset, &cfg.train.split)
    } else {
        ("TEST.DATASET", &cfg.test.dataset, &cfg.test.split)
    };
    let path = (!cfg.ext.data_path.is_empty()).then(|| Path::new(&cfg.ext.data_path));
    open_dataset(name, path, split_of(split)).map_err(|error| DataConfigError { key, error })
}

/// A loader for one phase.
pub fn loader(
    cfg: &Config,
    dataset: Arc<dyn Dataset>,
    train: bool,
) -> Result<Loader, DataConfigError> {
    let key = if train {
        "TRAIN.IM_SIZE"
    } else {
        "TEST.IM_SIZE"
    };
    let gray = matches!(
        dataset.kind(),
        DatasetKind::Mnist | DatasetKind::FashionMnist
    );
    let opts = TransformOptions {
        im_size: Some(cfg.train.im_size),
        test_im_size: Some(cfg.test.im_size),
        pca_std: cfg.train.pca_std,
        channel_order: match cfg.ext.channel_order {
            config::ChannelOrder::Bgr => ChannelOrder::Bgr,
            config::ChannelOrder::Rgb => ChannelOrder::Rgb,
        },
        augment: !gray || cfg.ext.gray_augment,
    };
    let split = if train { Split::Train } else { Split::Test };
    let transform = build_transform(dataset.kind(), split, &opts)
        .map_err(|error| DataConfigError { key, error })?;
    let mut lo = if train {
        LoaderOptions::train(cfg.train.batch_size / cfg.num_gpus.max(1), cfg.rng_seed)
    } else {
        LoaderOptions::test(cfg.test.batch_size / cfg.num_gpus.max(1))
    };
    lo.workers = cfg.ext.loader_threads;
    lo.on_corrupt = match cfg.ext.on_corrupt {
        config::OnCorrupt::Skip => OnCorrupt::Skip,
        config::OnCorrupt::Fail => OnCorrupt::Fail,
    };
    let subset = if train {
        cfg.ext.train_subset
    } else {
        cfg.ext.test_subset
    };
    if subset > 0 {
        lo.subset = Subset::First(subset.min(dataset.len()));
    }
    let (dataset_key, batch_key) = if train {
        ("TRAIN.DATASET", "TRAIN.BATCH_SIZE")
    } else {
        ("TEST.DATASET", "TEST.BATCH_SIZE")
    };
    let loader = Loader::new(dataset, transform, lo).map_err(|error| DataConfigError {
        key: batch_key,
        error,
    })?;
    // A split with no image, or (training) fewer images than one batch, would "train" zero
    // steps or "test" nothing and report a meaningless error of 0%: refuse it here.
    loader
        .check_not_empty(split)
        .map_err(|error| DataConfigError {
            key: if loader.num_samples() == 0 {
                dataset_key
            } else {
                batch_key
            },
            error,
        })?;
    Ok(loader)
}
