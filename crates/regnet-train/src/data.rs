//! Data for training from a pycls config: the data sets named by `TRAIN.DATASET` and
//! `TEST.DATASET` (at `EXT.DATA_PATH`, or their default place), pycls's transforms, and
//! loaders with the batch sizes and seeds of the config.

use std::path::Path;
use std::sync::Arc;

use regnet_core::config::{self, Config};
use regnet_data::{
    ChannelOrder, Dataset, DatasetKind, Loader, LoaderOptions, OnCorrupt, Split, Subset,
    TransformOptions, build_transform, open_dataset, transforms::AugmentPolicy,
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
    let opts = transform_options(cfg, dataset.kind());
    let split = if train { Split::Train } else { Split::Test };
    let transform = build_transform(dataset.kind(), split, &opts)
        .map_err(|error| DataConfigError { key, error })?;
    check_batch_split(cfg, train)?;
    // One loader batch is one optimizer step of all NUM_GPUS processes (pycls's per-process
    // batch times NUM_GPUS): `data_parallel::gradients` splits it into their micro-batches.
    // Testing runs in eval mode, where the split changes no number: one batch of the total.
    let mut lo = if train {
        LoaderOptions::train(cfg.train.batch_size, cfg.rng_seed)
    } else {
        LoaderOptions::test(cfg.test.batch_size)
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

/// The transform settings of a config for a data set of `kind`.
fn transform_options(cfg: &Config, kind: DatasetKind) -> TransformOptions {
    let gray = matches!(kind, DatasetKind::Mnist | DatasetKind::FashionMnist);
    TransformOptions {
        im_size: Some(cfg.train.im_size),
        test_im_size: Some(cfg.test.im_size),
        pca_std: cfg.train.pca_std,
        channel_order: match cfg.ext.channel_order {
            config::ChannelOrder::Bgr => ChannelOrder::Bgr,
            config::ChannelOrder::Rgb => ChannelOrder::Rgb,
        },
        augment: !gray || cfg.ext.gray_augment,
        augment_policy: match cfg.train.augment {
            config::Augment::None => None,
            config::Augment::AutoAugment => Some(AugmentPolicy::AutoAugment),
            config::Augment::RandAugment {
                n_ops,
                magnitude,
                prob,
            } => Some(AugmentPolicy::RandAugment {
                n_ops,
                magnitude,
                prob,
            }),
        },
    }
}

/// pycls's `assert_and_infer_cfg`: each of the `NUM_GPUS` processes takes an equal share of
/// `TRAIN.BATCH_SIZE` and of `TEST.BATCH_SIZE`.
fn check_batch_split(cfg: &Config, train: bool) -> Result<(), DataConfigError> {
    let (key, batch) = if train {
        ("TRAIN.BATCH_SIZE", cfg.train.batch_size)
    } else {
        ("TEST.BATCH_SIZE", cfg.test.batch_size)
    };
    let gpus = crate::data_parallel::replicas(cfg);
    if batch.is_multiple_of(gpus) {
        return Ok(());
    }
    Err(DataConfigError {
        key,
        error: regnet_data::DataError::InvalidOption(format!(
            "{batch} is not a multiple of NUM_GPUS {gpus} (pycls splits each batch equally \
             between its NUM_GPUS processes)"
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use regnet_data::InMemoryDataset;

    fn mnist(n: usize) -> Arc<dyn Dataset> {
        let classes = (0..10).map(|c| c.to_string()).collect();
        let labels = (0..n as u16).map(|i| i % 10).collect();
        let ds = InMemoryDataset::new(
            DatasetKind::Mnist,
            28,
            28,
            1,
            vec![0; n * 28 * 28],
            labels,
            classes,
            "memory",
        );
        Arc::new(ds.unwrap())
    }

    #[test]
    fn one_batch_is_one_step_of_all_processes() {
        let mut cfg = Config::default();
        cfg.train.im_size = 28;
        cfg.test.im_size = 28;
        cfg.num_gpus = 4;
        cfg.train.batch_size = 16;
        cfg.test.batch_size = 8;
        let train = loader(&cfg, mnist(40), true).unwrap();
        assert_eq!(train.options().batch_size, 16);
        assert_eq!(train.num_batches(), 2);
        let test = loader(&cfg, mnist(40), false).unwrap();
        assert_eq!(test.options().batch_size, 8);
    }

    #[test]
    fn batch_sizes_not_shared_equally_are_refused() {
        let mut cfg = Config::default();
        cfg.train.im_size = 28;
        cfg.test.im_size = 28;
        cfg.num_gpus = 4;
        cfg.train.batch_size = 18;
        let e = loader(&cfg, mnist(40), true).err().unwrap().to_string();
        assert!(e.starts_with("TRAIN.BATCH_SIZE: "), "{e}");
        assert!(e.contains("18 is not a multiple of NUM_GPUS 4"), "{e}");
        cfg.test.batch_size = 10;
        let e = loader(&cfg, mnist(40), false).err().unwrap().to_string();
        assert!(e.starts_with("TEST.BATCH_SIZE: "), "{e}");
    }
}
