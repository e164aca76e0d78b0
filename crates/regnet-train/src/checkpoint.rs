//! Checkpoints: one safetensors file per finished epoch in `OUT_DIR/checkpoints/`
//! (`model_epoch_0001.safetensors`, as pycls names its `.pyth` files), written atomically, with
//! the model's tensors, the EMA's (`ema.`), the optimizer state (`momentum_buffer.`: SGD's
//! momentum buffers, or Adam's `exp_avg.`, `exp_avg_sq.` and `step.` entries), the spec and
//! the config; and `best.safetensors`, a copy of the checkpoint with the lowest
//! test error. `regnet forward`, `predict` and `test` read them directly.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use regnet_core::limits::MAX_EPOCHS;
use regnet_core::spec::NetSpec;
use regnet_nn::weights::{
    CHECKPOINT_FORMAT, ChannelOrder, META_CHANNELS, META_SPEC, read_safetensors_tensors,
    remove_stale_temps, write_groups,
};
use regnet_nn::{StateDict, WeightsError};

/// Everything needed to resume after an epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The epoch that finished (0-based); training resumes at `epoch + 1`.
    pub epoch: usize,
    /// Model weights and BN statistics.
    pub model: StateDict,
    /// EMA of the model (empty when EMA is off).
    pub ema: StateDict,
    /// Optimizer state: SGD momentum buffers, or Adam moments and steps
    /// ([`crate::optimizer::TrainOptimizer::state`]).
    pub momentum: StateDict,
    /// Lowest test top-1 error so far.
    pub best_err: f64,
    /// Test top-1 error of this epoch.
    pub test_err: f64,
}

/// The checkpoint directory of an output directory.
pub fn dir(out_dir: &Path) -> PathBuf {
    out_dir.join("checkpoints")
}

/// Path of the checkpoint of `epoch` (0-based).
pub fn path(out_dir: &Path, epoch: usize) -> PathBuf {
    dir(out_dir).join(format!("model_epoch_{:04}.safetensors", epoch + 1))
}

/// Removes the temporary files that a killed run left in `out_dir` and its checkpoint
/// directory (`.NAME.regnet-tmp.PID`, see [`regnet_nn::weights::temp_path`]); returns them.
pub fn remove_stale(out_dir: &Path) -> Result<Vec<PathBuf>, WeightsError> {
    let mut removed = remove_stale_temps(out_dir)?;
    removed.extend(remove_stale_temps(&dir(out_dir))?);
    Ok(removed)
}

/// The newest checkpoint, if any.
pub fn last(out_dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<(usize, PathBuf)> = std::fs::read_dir(dir(out_dir))
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let n = name
                .strip_prefix("model_epoch_")?
                .strip_suffix(".safetensors")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

/// Writes `ck` (and `best.safetensors` when `is_best`), atomically.
pub fn save(
    out_dir: &Path,
    ck: &Checkpoint,
    spec: &NetSpec,
    config_yaml: &str,
    channel_order: ChannelOrder,
    is_best: bool,
) -> Result<PathBuf, WeightsError> {
    std::fs::create_dir_all(dir(out_dir)).map_err(|e| WeightsError::File {
        path: dir(out_dir).display().to_string(),
        message: e.to_string(),
    })?;
    let meta = HashMap::from([
        ("format".to_string(), CHECKPOINT_FORMAT.to_string()),
        (META_SPEC.to_string(), spec.to_json()),
        (META_CHANNELS.to_string(), channel_order.name().to_string()),
        ("epoch".to_string(), ck.epoch.to_string()),
        ("best_err".to_string(), ck.best_err.to_string()),
        ("test_err".to_string(), ck.test_err.to_string()),
        ("config".to_string(), config_yaml.to_string()),
    ]);
    let groups = [
        ("", &ck.model),
        ("ema.", &ck.ema),
        ("momentum_buffer.", &ck.momentum),
    ];
    let p = path(out_dir, ck.epoch);
    write_groups(&p, &groups, meta.clone())?;
    if is_best {
        write_groups(&dir(out_dir).join("best.safetensors"), &groups, meta)?;
    }
    Ok(p)
}

/// Reads a checkpoint written by [`save`].
pub fn load(p: &Path) -> Result<Checkpoint, WeightsError> {
    let (all, meta) = read_safetensors_tensors(p)?;
    let err = |m: &str| WeightsError::File {
        path: p.display().to_string(),
        message: m.to_string(),
    };
    if meta.get("format").map(String::as_str) != Some(CHECKPOINT_FORMAT) {
        return Err(err("not a regnet training checkpoint"));
    }
    let num = |k: &str| -> Result<f64, WeightsError> {
        meta.get(k)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| err(&format!("metadata {k} missing")))
    };
    let epoch = num("epoch")?;
    if !(epoch >= 0.0 && epoch.fract() == 0.0 && epoch < MAX_EPOCHS as f64) {
        return Err(err(&format!(
            "metadata epoch {epoch} is not a whole number below {MAX_EPOCHS}"
        )));
    }
    let mut ck = Checkpoint {
        epoch: epoch as usize,
        model: StateDict::default(),
        ema: StateDict::default(),
        momentum: StateDict::default(),
        best_err: num("best_err")?,
        test_err: num("test_err")?,
    };
    for (k, v) in all.tensors {
        if let Some(r) = k.strip_prefix("ema.") {
            ck.ema.insert(r, v);
        } else if let Some(r) = k.strip_prefix("momentum_buffer.") {
            ck.momentum.insert(r, v);
        } else {
            ck.model.insert(k, v);
        }
    }
    Ok(ck)
}

#[cfg(test)]
mod tests {
    use super::*;
    use regnet_nn::TensorF32;

    #[test]
    fn round_trip_and_last() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = regnet_core::zoo::lookup("RegNetX-200MF").unwrap().spec();
        let mut model = StateDict::default();
        model.insert("a.weight", TensorF32::new(vec![2], vec![1.0, 2.0]));
        let mut ck = Checkpoint {
            epoch: 0,
            model: model.clone(),
            ema: model.clone(),
            momentum: model,
            best_err: 12.5,
            test_err: 12.5,
        };
        save(tmp.path(), &ck, &spec, "MODEL: {}", ChannelOrder::Rgb, true).unwrap();
        ck.epoch = 1;
        ck.test_err = 13.0;
        save(
            tmp.path(),
            &ck,
            &spec,
            "MODEL: {}",
            ChannelOrder::Rgb,
            false,
        )
        .unwrap();
        let last = last(tmp.path()).unwrap();
        assert!(last.ends_with("model_epoch_0002.safetensors"));
        assert_eq!(load(&last).unwrap(), ck);
        let best = load(&dir(tmp.path()).join("best.safetensors")).unwrap();
        assert_eq!((best.epoch, best.test_err), (0, 12.5));
        assert!(
            last.parent().unwrap().read_dir().unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp"))
        );
    }

    #[test]
    fn stale_temporary_files_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir(tmp.path())).unwrap();
        // A process that has exited: its id names no running process.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let ours = std::process::id();
        let files = [
            (
                dir(tmp.path()).join(format!(".model_epoch_0002.safetensors.regnet-tmp.{dead}")),
                false,
            ),
            (
                dir(tmp.path()).join(format!(".best.safetensors.tmp{dead}")),
                false,
            ),
            (
                tmp.path().join(format!(".config.yaml.regnet-tmp.{dead}")),
                false,
            ),
            (
                dir(tmp.path()).join(format!(".model_epoch_0003.safetensors.regnet-tmp.{ours}")),
                true,
            ),
            (dir(tmp.path()).join("model_epoch_0001.safetensors"), true),
            (tmp.path().join(".hidden.regnet-tmp.notapid"), true),
        ];
        for (f, _) in &files {
            std::fs::write(f, b"x").unwrap();
        }
        let removed = remove_stale(tmp.path()).unwrap();
        assert_eq!(removed.len(), 3, "{removed:?}");
        for (f, kept) in &files {
            assert_eq!(f.exists(), *kept, "{}", f.display());
        }
    }

    #[test]
    fn bad_epoch_metadata_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = regnet_core::zoo::lookup("RegNetX-200MF").unwrap().spec();
        let mut model = StateDict::default();
        model.insert("a.weight", TensorF32::new(vec![1], vec![1.0]));
        let ck = Checkpoint {
            epoch: 0,
            model,
            ema: StateDict::default(),
            momentum: StateDict::default(),
            best_err: 1.0,
            test_err: 1.0,
        };
        let p = save(tmp.path(), &ck, &spec, "", ChannelOrder::Rgb, false).unwrap();
        let (sd, mut meta) = read_safetensors_tensors(&p).unwrap();
        for bad in ["1e300", "-1", "2.5", "nan"] {
            meta.insert("epoch".into(), bad.into());
            write_groups(&p, &[("", &sd)], meta.clone()).unwrap();
            let e = load(&p).unwrap_err().to_string();
            assert!(e.contains("metadata epoch") && !e.contains('\n'), "{e}");
        }
    }
}
