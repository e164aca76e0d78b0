//! The paper's sweeps: one sweep config per design space or ablation, embedded in the
//! binary (the files live in `crates/regnet-sweep/sweeps/paper/`), and their rendering with
//! the run's settings (models, epochs, data) into the sweep folder's config.

use std::path::Path;

use serde_norway::{Mapping, Value};

use crate::error::{Error, Result};
use crate::sweep_config::SweepConfig;

/// One of the paper's sweeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaperSweep {
    /// Sweep name (`NAME`, the folder under `OUT/sweeps`).
    pub key: &'static str,
    /// Short name accepted by `--only`.
    pub short: &'static str,
    /// Name shown in the report.
    pub label: &'static str,
    /// The embedded sweep config.
    pub yaml: &'static str,
}

macro_rules! sweep {
    ($key:literal, $short:literal, $label:literal) => {
        PaperSweep {
            key: $key,
            short: $short,
            label: $label,
            yaml: include_str!(concat!("../../sweeps/paper/", $key, ".yaml")),
        }
    };
}

/// Every sweep of `regnet paper`, in the report's order.
pub const SWEEPS: &[PaperSweep] = &[
    sweep!("anynetx_a", "A", "AnyNetX_A"),
    sweep!("anynetx_b", "B", "AnyNetX_B"),
    sweep!("anynetx_c", "C", "AnyNetX_C"),
    sweep!("anynetx_d", "D", "AnyNetX_D"),
    sweep!("anynetx_e", "E", "AnyNetX_E"),
    sweep!("regnetx", "X", "RegNetX"),
    sweep!("regnety", "Y", "RegNetY"),
    sweep!("regnetx_trends", "trends", "RegNetX (b, wm, d free)"),
    sweep!("regnetx_inverted", "inverted", "RegNetX b=1/4"),
    sweep!("regnetx_depthwise", "depthwise", "RegNetX g=1"),
    sweep!("regnetx_swish", "swish", "RegNetX Swish"),
    sweep!("regnetx_4stages", "stages4", "RegNetX 4 stages"),
];

/// The sweep whose key or short name is `name` (case ignored).
pub fn find(name: &str) -> Option<&'static PaperSweep> {
    SWEEPS
        .iter()
        .find(|s| s.key.eq_ignore_ascii_case(name) || s.short.eq_ignore_ascii_case(name))
}

/// The data set the sweeps train on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    /// Fashion-MNIST (28x28 gray) from `path`, or the default location.
    FashionMnist(Option<String>),
    /// CIFAR-10 (32x32 RGB) from `path`.
    Cifar10(String),
}

/// The settings a run applies to every embedded sweep config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Models per sweep (`SETUP.NUM_CONFIGS`); `None`: the config's (32).
    pub models: Option<usize>,
    /// Epochs per model (`OPTIM.MAX_EPOCH`); `None`: the config's (2).
    pub epochs: Option<usize>,
    /// Training images used (`EXT.TRAIN_SUBSET`, 0: all); `None`: the config's (10 000).
    pub train_subset: Option<usize>,
    /// Test images used (`EXT.TEST_SUBSET`, 0: all); `None`: all.
    pub test_subset: Option<usize>,
    /// Images for precise BN statistics (`BN.NUM_SAMPLES_PRECISE`); `None`: the config's.
    pub bn_samples: Option<usize>,
    /// The data set.
    pub data: Data,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            models: None,
            epochs: None,
            train_subset: None,
            test_subset: None,
            bn_samples: None,
            data: Data::FashionMnist(None),
        }
    }
}

fn child<'a>(m: &'a mut Mapping, key: &str, file: &str) -> Result<&'a mut Mapping> {
    match m.get_mut(key) {
        Some(Value::Mapping(c)) => Ok(c),
        _ => Err(Error::other(format!(
            "embedded sweep {file}: {key} is not a mapping"
        ))),
    }
}

fn set(m: &mut Mapping, key: &str, v: impl Into<Value>) {
    m.insert(Value::from(key), v.into());
}

/// Sets the data keys of a base config.
fn set_data(base: &mut Mapping, data: &Data, file: &str) -> Result<()> {
    let (name, path, size, channels) = match data {
        Data::FashionMnist(p) => ("fashion_mnist", p.clone(), 28, 1),
        Data::Cifar10(p) => ("cifar10", Some(p.clone()), 32, 3),
    };
    for split in ["TRAIN", "TEST"] {
        let m = child(base, split, file)?;
        set(m, "DATASET", name);
        set(m, "IM_SIZE", size);
    }
    let ext = child(base, "EXT", file)?;
    set(ext, "IN_CHANNELS", channels);
    if let Some(p) = path {
        set(ext, "DATA_PATH", p);
    }
    Ok(())
}

/// The YAML text of `sweep` with `settings` applied and `ROOT_DIR` set to `root_dir`.
pub fn render(sweep: &PaperSweep, settings: &Settings, root_dir: &Path) -> Result<String> {
    let file = sweep.key;
    let mut tree: Value = serde_norway::from_str(sweep.yaml)
        .map_err(|e| Error::other(format!("embedded sweep {file}: {e}")))?;
    let Value::Mapping(top) = &mut tree else {
        return Err(Error::other(format!(
            "embedded sweep {file}: not a mapping"
        )));
    };
    set(top, "ROOT_DIR", root_dir.display().to_string());
    let setup = child(top, "SETUP", file)?;
    if let Some(n) = settings.models {
        set(setup, "NUM_CONFIGS", n);
    }
    let base = child(setup, "BASE_CFG", file)?;
    if let Some(e) = settings.epochs {
        set(child(base, "OPTIM", file)?, "MAX_EPOCH", e);
    }
    if let Some(n) = settings.bn_samples {
        set(child(base, "BN", file)?, "NUM_SAMPLES_PRECISE", n);
    }
    set_data(base, &settings.data, file)?;
    let ext = child(base, "EXT", file)?;
    if let Some(n) = settings.train_subset {
        set(ext, "TRAIN_SUBSET", n);
    }
    if let Some(n) = settings.test_subset {
        set(ext, "TEST_SUBSET", n);
    }
    let body = serde_norway::to_string(&tree)
        .map_err(|e| Error::other(format!("embedded sweep {file}: {e}")))?;
    Ok(format!(
        "# Written by `regnet paper` from its embedded {file}.yaml and the run's options.\n{body}"
    ))
}

/// Renders `sweep` and parses it as read from `path` (where the caller writes it).
pub fn load(
    sweep: &PaperSweep,
    settings: &Settings,
    root_dir: &Path,
    path: &Path,
) -> Result<SweepConfig> {
    let text = render(sweep, settings, root_dir)?;
    SweepConfig::from_yaml(&text, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_sweep_parses_with_overrides() {
        let settings = Settings {
            models: Some(5),
            epochs: Some(1),
            train_subset: Some(300),
            test_subset: Some(200),
            bn_samples: Some(64),
            data: Data::Cifar10("/data/cifar".into()),
        };
        for s in SWEEPS {
            let cfg = load(s, &settings, Path::new("/tmp/x"), Path::new("/tmp/c.yaml")).unwrap();
            assert_eq!(cfg.name, s.key);
            assert_eq!(cfg.setup.num_configs, 5, "{}", s.key);
            let b = &cfg.setup.base_cfg;
            assert_eq!(b.optim.max_epoch, 1);
            assert_eq!((b.ext.train_subset, b.ext.test_subset), (300, 200));
            assert_eq!(b.ext.data_path, "/data/cifar");
            assert_eq!((b.train.dataset.as_str(), b.train.im_size), ("cifar10", 32));
            assert_eq!(b.ext.in_channels, 3);
            assert_eq!(cfg.sweep_dir(), Path::new("/tmp/x").join(s.key));
            assert!(cfg.setup.design_space.is_some());
        }
        // Defaults keep the files' values.
        let cfg = load(
            &SWEEPS[0],
            &Settings::default(),
            Path::new("r"),
            Path::new("c.yaml"),
        )
        .unwrap();
        assert_eq!(cfg.setup.num_configs, 32);
        assert_eq!(cfg.setup.base_cfg.optim.max_epoch, 2);
        assert_eq!(cfg.setup.base_cfg.train.dataset, "fashion_mnist");
    }

    #[test]
    fn names_resolve() {
        assert_eq!(find("x").unwrap().key, "regnetx");
        assert_eq!(find("AnyNetX_C").unwrap().short, "C");
        assert!(find("Z").is_none());
        let mut keys: Vec<&str> = SWEEPS.iter().flat_map(|s| [s.key, s.short]).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 2 * SWEEPS.len(), "names are unique");
    }
}
