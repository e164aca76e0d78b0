//! Data for training from a pycls config: the data sets named by `TRAIN.DATASET` and
//! `TEST.DATASET` (at `EXT.DATA_PATH`, or their default place), pycls's transforms, and
//! loaders with the batch sizes and seeds of the config.

use std::path::Path;
use std::sync::Arc;

use regnet_core::config::Config;
use regnet_data::{
    ChannelOrder, Dataset, DatasetKind, Loader, LoaderOptions, OnCorrupt, Split, Subset,
    TransformOptions, build_transform, open_dataset,
};

/// A data error with the config key it came from.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {source}")]
pub struct DataConfigError {
    /// The config key.
    pub key: &'static str,
    /// The error.
    pub source: regnet_data::DataError,
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
    open_dataset(name, path, split_of(split)).map_err(|source| DataConfigError { key, source })
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
        channel_order: if cfg.ext.channel_order == "bgr" {
            ChannelOrder::Bgr
        } else {
            ChannelOrder::Rgb
        },
        augment: !gray || cfg.ext.gray_augment,
    };
    let split = if train { Split::Train } else { Split::Test };
    let transform = build_transform(dataset.kind(), split, &opts)
        .map_err(|source| DataConfigError { key, source })?;
    let mut lo = if train {
        LoaderOptions::train(cfg.train.batch_size / cfg.num_gpus.max(1), cfg.rng_seed)
    } else {
        LoaderOptions::test(cfg.test.batch_size / cfg.num_gpus.max(1))
    };
    lo.workers = cfg.ext.loader_threads;
    lo.on_corrupt = if cfg.ext.on_corrupt == "skip" {
        OnCorrupt::Skip
    } else {
        OnCorrupt::Fail
    };
    let subset = if train {
        cfg.ext.train_subset
    } else {
        cfg.ext.test_subset
    };
    if subset > 0 {
        lo.subset = Subset::First(subset.min(dataset.len()));
    }
    Loader::new(dataset, transform, lo).map_err(|source| DataConfigError {
        key: "TRAIN.BATCH_SIZE",
        source,
    })
}
