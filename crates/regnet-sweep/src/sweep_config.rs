//! The sweep config: pycls's `sweep/config.py` keys, read from YAML.
//!
//! ```yaml
//! ROOT_DIR: sweeps            # relative paths are relative to this file's folder
//! NAME: cifar/regnet          # the sweep lives in ROOT_DIR/NAME
//! DESC: free text
//! SETUP:
//!   NUM_CONFIGS: 32           # configs to write (required)
//!   NUM_SAMPLES: 1000000      # most candidates drawn
//!   RNG_SEED: 0
//!   BASE_CFG: base.yaml       # a pycls config file (relative to this file), or a mapping
//!   DESIGN_SPACE: RegNetY     # optional, see design_space.rs
//!   SAMPLERS:
//!     REGNET: {TYPE: regnet_sampler, DEPTH: [6, 16]}
//!     OPTIM.BASE_LR: {TYPE: float_sampler, RAND_TYPE: log_uniform, RANGE: [0.1, 1.0], QUANTIZE: 1.0e-3}
//!   CONSTRAINTS:
//!     CX: {FLOPS: [0.12e+9, 0.13e+9], PARAMS: [0, 2.0e+6], ACTS: [0, 0]}
//!     REGNET: {NUM_STAGES: [2, 2]}
//! LAUNCH:
//!   PARALLEL_JOBS: 2
//!   MAX_RETRY: 3
//!   COMMAND: "regnet train --cfg {cfg} OUT_DIR {out_dir}"   # regnet's own key
//! ```
//!
//! The other keys of pycls's sweep config (`NUM_PROC`, `SETUP.CHUNK_SIZE`, `LAUNCH.*`,
//! `COLLECT.*`) are accepted; those that mean something here are used. `ANALYZE.*` drives
//! the report (see [`crate::analyze_cfg`]).

use std::path::{Path, PathBuf};

use regnet_core::config::Config;
use regnet_core::error::Origin;
use serde_norway::Value;

use crate::apply;
use crate::constraints::{Bound, Constraints};
use crate::design_space::DesignSpace;
use crate::error::{Error, Result};
use crate::sampler::Sampler;
use crate::yaml::{self, At};

/// `SETUP`.
#[derive(Clone, Debug)]
pub struct SetupCfg {
    /// Configs to write.
    pub num_configs: usize,
    /// Most candidates drawn.
    pub num_samples: usize,
    /// Seed of the sampling stream.
    pub rng_seed: u64,
    /// The base config: pycls defaults, `BASE_CFG`, then the design space's presets.
    pub base_cfg: Config,
    /// Where `BASE_CFG` came from (a path, or `inline`).
    pub base_cfg_source: String,
    /// The built-in design space, if any.
    pub design_space: Option<DesignSpace>,
    /// The samplers, in file order, keyed by config key or section.
    pub samplers: Vec<(String, Sampler)>,
    /// The constraints.
    pub constraints: Constraints,
}

/// `LAUNCH`.
#[derive(Clone, Debug, PartialEq)]
pub struct LaunchCfg {
    /// Concurrent jobs (pycls: 128 on a cluster; the local runner's default is its own).
    pub parallel_jobs: usize,
    /// Retries of a failed job.
    pub max_retry: usize,
    /// Command template (regnet's `LAUNCH.COMMAND`), if set.
    pub command: Option<String>,
    /// SLURM comment.
    pub comment: String,
    /// GPUs per job.
    pub num_gpus: usize,
    /// CPUs per GPU.
    pub cpus_per_gpu: usize,
    /// Memory per GPU, GB.
    pub mem_per_gpu: usize,
    /// SLURM partition.
    pub partition: String,
    /// GPU type for `--gres`.
    pub gpu_type: String,
    /// Time limit, minutes.
    pub time_limit: usize,
}

impl Default for LaunchCfg {
    fn default() -> Self {
        LaunchCfg {
            parallel_jobs: 128,
            max_retry: 3,
            command: None,
            comment: String::new(),
            num_gpus: 1,
            cpus_per_gpu: 10,
            mem_per_gpu: 60,
            partition: "learnfair".into(),
            gpu_type: "volta".into(),
            time_limit: 4200,
        }
    }
}

pub use crate::analyze_cfg::AnalyzeCfg;

/// A sweep config.
#[derive(Clone, Debug)]
pub struct SweepConfig {
    /// The file it was read from.
    pub file: PathBuf,
    /// Its text (copied into the sweep folder).
    pub text: String,
    /// `ROOT_DIR`, resolved against the file's folder.
    pub root_dir: PathBuf,
    /// `NAME`.
    pub name: String,
    /// `DESC`.
    pub desc: String,
    /// `SETUP`.
    pub setup: SetupCfg,
    /// `LAUNCH`.
    pub launch: LaunchCfg,
    /// `ANALYZE`.
    pub analyze: AnalyzeCfg,
}

const TOP_KEYS: &[&str] = &[
    "ROOT_DIR",
    "NAME",
    "DESC",
    "NUM_PROC",
    "SWEEP_CFG_FILE",
    "SETUP",
    "LAUNCH",
    "COLLECT",
    "ANALYZE",
];
const SETUP_KEYS: &[&str] = &[
    "NUM_CONFIGS",
    "NUM_SAMPLES",
    "CHUNK_SIZE",
    "RNG_SEED",
    "BASE_CFG",
    "SAMPLERS",
    "CONSTRAINTS",
    "DESIGN_SPACE",
];
const LAUNCH_KEYS: &[&str] = &[
    "MODE",
    "CONDA_ENV",
    "PARALLEL_JOBS",
    "MAX_RETRY",
    "COMMENT",
    "NUM_GPUS",
    "CPUS_PER_GPU",
    "MEM_PER_GPU",
    "PARTITION",
    "GPU_TYPE",
    "TIME_LIMIT",
    "COMMAND",
    "SCRIPT",
];

/// Most configs a sweep may ask for (`SETUP.NUM_CONFIGS`): each is a file and a training
/// job; pycls's largest published sweeps have a few thousand.
pub const MAX_NUM_CONFIGS: usize = 100_000;
/// Most candidates a sweep may draw (`SETUP.NUM_SAMPLES`): about a minute of sampling.
pub const MAX_NUM_SAMPLES: usize = 100_000_000;
/// Largest sweep config file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Longest `NAME`, in bytes.
const MAX_NAME_BYTES: usize = 1024;

/// Checks that `NAME` is a relative path of plain folder names, so that `ROOT_DIR/NAME`
/// stays inside `ROOT_DIR` (setup writes there, `--force` replaces its configs).
pub(crate) fn check_name(name: &str, at: &At) -> Result<()> {
    use std::path::Component;
    if name.trim().is_empty() {
        return Err(at.err("has to be specified"));
    }
    if name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(at.err(format!(
            "must be a folder name of printable characters, at most {MAX_NAME_BYTES} bytes"
        )));
    }
    let path = Path::new(name);
    if path.has_root() || path.is_absolute() {
        return Err(at.err(format!(
            "`{name}` is an absolute path; NAME must be relative to ROOT_DIR"
        )));
    }
    if !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(at.err(format!(
            "`{name}` leaves ROOT_DIR or is not a plain path (`..` and `.` are not allowed)"
        )));
    }
    Ok(())
}

/// `LAUNCH`.
fn read_launch(v: &Value, at_launch: &At) -> Result<LaunchCfg> {
    let mut launch = LaunchCfg::default();
    let m = yaml::mapping(v, at_launch)?;
    yaml::check_keys(m, LAUNCH_KEYS, at_launch)?;
    let u = |key: &str, dflt: usize| -> Result<usize> {
        yaml::get(m, key)
            .map_or(Ok(dflt as u64), |v| yaml::uint(v, &at_launch.child(key)))
            .map(|x| x as usize)
    };
    launch.parallel_jobs = u("PARALLEL_JOBS", launch.parallel_jobs)?;
    launch.max_retry = u("MAX_RETRY", launch.max_retry)?;
    launch.num_gpus = u("NUM_GPUS", launch.num_gpus)?;
    launch.cpus_per_gpu = u("CPUS_PER_GPU", launch.cpus_per_gpu)?;
    launch.mem_per_gpu = u("MEM_PER_GPU", launch.mem_per_gpu)?;
    launch.time_limit = u("TIME_LIMIT", launch.time_limit)?;
    if let Some(s) = get_str(m, "COMMENT", at_launch)? {
        launch.comment = s;
    }
    if let Some(s) = get_str(m, "PARTITION", at_launch)? {
        launch.partition = s;
    }
    if let Some(s) = get_str(m, "GPU_TYPE", at_launch)? {
        launch.gpu_type = s;
    }
    launch.command = get_str(m, "COMMAND", at_launch)?;
    if let Some(mode) = get_str(m, "MODE", at_launch)?
        && mode != "train"
    {
        return Err(at_launch
            .child("MODE")
            .err(format!("`{mode}` is not supported (train)")));
    }
    Ok(launch)
}

/// `COLLECT`: only `CHECKPOINTS_KEEP`, checked (regnet's jobs keep their checkpoints).
fn read_collect(v: &Value, at_c: &At) -> Result<()> {
    let m = yaml::mapping(v, at_c)?;
    yaml::check_keys(m, &["CHECKPOINTS_KEEP"], at_c)?;
    if let Some(s) = get_str(m, "CHECKPOINTS_KEEP", at_c)?
        && !["all", "last", "none"].contains(&s.as_str())
    {
        return Err(at_c
            .child("CHECKPOINTS_KEEP")
            .err("has to be one of all, last, none"));
    }
    Ok(())
}

/// The string under `key` of `m`, if any.
fn get_str(m: &serde_norway::Mapping, key: &str, at: &At) -> Result<Option<String>> {
    yaml::get(m, key)
        .map(|v| yaml::string(v, &at.child(key)))
        .transpose()
}

/// `SETUP.BASE_CFG`: pycls defaults, then a config file or an inline mapping; and where it
/// came from.
fn read_base_cfg(m: &serde_norway::Mapping, at: &At, dir: &Path) -> Result<(Config, String)> {
    let mut base_cfg = Config::default();
    let at_base = at.child("BASE_CFG");
    let base_cfg_source = match yaml::get(m, "BASE_CFG") {
        None => "pycls defaults".to_string(),
        Some(Value::String(p)) => {
            let path = resolve(dir, p);
            if !path.is_file() {
                return Err(at_base.err(format!("config file {} not found", path.display())));
            }
            base_cfg.merge_file(&path.display().to_string())?;
            path.display().to_string()
        }
        Some(v @ Value::Mapping(_)) => {
            // A value read from YAML need not write back out (e.g. an odd tag): an error.
            let text = serde_norway::to_string(v)
                .map_err(|e| at_base.err(format!("cannot be read as config keys: {e}")))?;
            base_cfg
                .merge_yaml(&text, Origin::File(at.file.display().to_string()))
                .map_err(|e| core_err(e, &at_base))?;
            "inline".to_string()
        }
        Some(Value::Null) => "pycls defaults".to_string(),
        Some(v) => {
            return Err(at_base.err(format!(
                "must be a config file path or a mapping of config keys, got {}",
                yaml::show(v)
            )));
        }
    };
    Ok((base_cfg, base_cfg_source))
}

/// `SETUP.DESIGN_SPACE`, checked against the base config, whose model keys it presets.
fn read_design_space(
    m: &serde_norway::Mapping,
    at: &At,
    base_cfg: &mut Config,
) -> Result<Option<DesignSpace>> {
    let at_ds = at.child("DESIGN_SPACE");
    let design_space = match yaml::get(m, "DESIGN_SPACE") {
        None | Some(Value::Null) => None,
        Some(v) => Some(DesignSpace::from_yaml(v, &at_ds)?),
    };
    if let Some(ds) = &design_space {
        ds.validate(&at_ds)?;
        let presets = ds.presets(base_cfg);
        let want = presets[0].1.as_str().unwrap_or_default().to_string();
        if !base_cfg.model.ty.is_empty() && base_cfg.model.ty != want {
            return Err(at_ds.err(format!(
                "{} is a {want} design space but SETUP.BASE_CFG sets MODEL.TYPE {}",
                ds.name(),
                base_cfg.model.ty
            )));
        }
        for (key, v) in &presets {
            let set = apply::setter(key).expect("presets are model keys");
            set(base_cfg, v).expect("presets have the fields' types");
        }
    }
    Ok(design_space)
}

/// `SETUP.SAMPLERS`, keyed by config key (or `REGNET` for `regnet_sampler`): every key a
/// config key, sampled once.
fn read_samplers(
    m: &serde_norway::Mapping,
    at: &At,
    design_space: Option<&DesignSpace>,
) -> Result<Vec<(String, Sampler)>> {
    let at_s = at.child("SAMPLERS");
    let mut samplers: Vec<(String, Sampler)> = Vec::new();
    let mut set_by: Vec<(String, String)> = Vec::new();
    if let Some(ds) = design_space {
        for k in ds.keys() {
            set_by.push((k, "SETUP.DESIGN_SPACE".into()));
        }
    }
    let known = apply::config_keys();
    match yaml::get(m, "SAMPLERS") {
        None | Some(Value::Null) => {}
        Some(v) => {
            for (k, sv) in yaml::mapping(v, &at_s)? {
                let Some(param) = yaml::key_str(k) else {
                    return Err(at_s.err(format!("key {k:?} is not a string")));
                };
                let at_p = at_s.child(param);
                let sampler = Sampler::from_yaml(param, sv, &at_p)?;
                for key in sampler.keys(param) {
                    if !known.contains(&key) {
                        let hint =
                            regnet_core::error::closest(&key, known.iter().map(String::as_str))
                                .map(|c| format!(" (did you mean {c}?)"))
                                .unwrap_or_default();
                        return Err(at_p.err(format!("`{key}` is not a config key{hint}")));
                    }
                    if let Some((_, by)) = set_by.iter().find(|(s, _)| *s == key) {
                        return Err(at_p.err(format!("{key} is also sampled by {by}")));
                    }
                    set_by.push((key, at_p.key.clone()));
                }
                samplers.push((param.to_string(), sampler));
            }
        }
    }
    // A RegNet design space without its own regnet_sampler uses the space's.
    if let Some(DesignSpace::RegNet(r)) = design_space
        && let Some(i) = samplers
            .iter()
            .position(|(_, s)| matches!(s, Sampler::RegNet(_)))
    {
        return Err(at_s.child(&samplers[i].0).err(format!(
            "the {} design space samples REGNET itself; set its ranges under \
             SETUP.DESIGN_SPACE (DEPTH, W0, WA, WM, GROUP_W, BOT_MUL) instead (now {})",
            if r.se { "RegNetY" } else { "RegNetX" },
            r.sampler.describe()
        )));
    }
    Ok(samplers)
}

/// `SETUP.CONSTRAINTS`: `CX` bounds and `REGNET.NUM_STAGES`.
fn read_constraints(m: &serde_norway::Mapping, at: &At) -> Result<Constraints> {
    let mut constraints = Constraints::default();
    let at_c = at.child("CONSTRAINTS");
    if let Some(v) = yaml::get(m, "CONSTRAINTS") {
        let cm = yaml::mapping(v, &at_c)?;
        yaml::check_keys(cm, &["CX", "REGNET"], &at_c)?;
        if let Some(v) = yaml::get(cm, "CX") {
            let at_cx = at_c.child("CX");
            let cx = yaml::mapping(v, &at_cx)?;
            yaml::check_keys(cx, &["FLOPS", "PARAMS", "ACTS"], &at_cx)?;
            for (key, slot) in [
                ("FLOPS", &mut constraints.flops),
                ("PARAMS", &mut constraints.params),
                ("ACTS", &mut constraints.acts),
            ] {
                if let Some(v) = yaml::get(cx, key) {
                    let at_k = at_cx.child(key);
                    let (low, high) = yaml::pair(v, &at_k)?;
                    if low < 0.0 || high < 0.0 || (high != 0.0 && low > high) {
                        return Err(at_k.err(format!(
                            "[{low}, {high}] must have 0 <= LOW <= HIGH (0: no bound)"
                        )));
                    }
                    *slot = Bound { low, high };
                }
            }
        }
        if let Some(v) = yaml::get(cm, "REGNET") {
            let at_r = at_c.child("REGNET");
            let rm = yaml::mapping(v, &at_r)?;
            yaml::check_keys(rm, &["NUM_STAGES"], &at_r)?;
            if let Some(v) = yaml::get(rm, "NUM_STAGES") {
                let at_n = at_r.child("NUM_STAGES");
                let (lo, hi) = yaml::pair(v, &at_n)?;
                if lo < 1.0 || lo > hi || lo.fract() != 0.0 || hi.fract() != 0.0 {
                    return Err(at_n.err("must be [LOW, HIGH] integers with 1 <= LOW <= HIGH"));
                }
                constraints.num_stages = (lo as usize, hi as usize);
            }
        }
    }
    Ok(constraints)
}

/// `SETUP.NUM_CONFIGS` and `SETUP.NUM_SAMPLES`, checked against their limits and each other.
fn read_counts(m: &serde_norway::Mapping, at: &At) -> Result<(usize, usize)> {
    let uint = |key: &str| -> Result<Option<u64>> {
        yaml::get(m, key)
            .map(|v| yaml::uint(v, &at.child(key)))
            .transpose()
    };
    let num_configs = uint("NUM_CONFIGS")?.unwrap_or(0);
    if num_configs == 0 {
        return Err(at.child("NUM_CONFIGS").err("has to be specified (> 0)"));
    }
    let num_samples = uint("NUM_SAMPLES")?.unwrap_or(1_000_000);
    for (key, n, max) in [
        ("NUM_CONFIGS", num_configs, MAX_NUM_CONFIGS),
        ("NUM_SAMPLES", num_samples, MAX_NUM_SAMPLES),
    ] {
        if n > max as u64 {
            return Err(at
                .child(key)
                .err(format!("{n} is above the limit of {max}")));
        }
    }
    if num_configs > num_samples {
        return Err(at.child("NUM_CONFIGS").err(format!(
            "{num_configs} configs cannot be found in NUM_SAMPLES = {num_samples} draws"
        )));
    }
    Ok((num_configs as usize, num_samples as usize))
}

/// Resolves `p` against `dir` unless absolute.
fn resolve(dir: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        normalize(&dir.join(p))
    }
}

/// `a/b/../c` as `a/c`, lexically (as Python's `os.path.normpath`), so that the paths a
/// sweep prints and records stay readable; a leading `..` is kept.
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

/// Rewrites a core config error so that it names the sweep file and the sweep key.
fn core_err(e: regnet_core::Error, at: &At) -> Error {
    match e {
        regnet_core::Error::Config { key, message, .. } => {
            let inner = if key == "<yaml>" {
                at.clone()
            } else {
                at.child(&key)
            };
            inner.err(message)
        }
        other => at.err(other.to_string()),
    }
}

impl SweepConfig {
    /// Reads and checks the sweep config at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<SweepConfig> {
        let path = path.as_ref();
        let text = crate::error::read_limited(path, MAX_FILE_BYTES)?;
        SweepConfig::from_yaml(&text, path)
    }

    /// The sweep folder, `ROOT_DIR/NAME`.
    pub fn sweep_dir(&self) -> PathBuf {
        self.root_dir.join(&self.name)
    }

    /// The sweep folders `analyze` compares: this one, then `ANALYZE.EXTRA_SWEEP_NAMES`
    /// under `ROOT_DIR`.
    pub fn analysis_dirs(&self) -> Vec<PathBuf> {
        std::iter::once(&self.name)
            .chain(&self.analyze.extra_sweep_names)
            .map(|n| self.root_dir.join(n))
            .collect()
    }

    /// Parses sweep YAML `text` read from `path` (relative paths resolve against its folder).
    pub fn from_yaml(text: &str, path: &Path) -> Result<SweepConfig> {
        let root = At::root(path);
        // The YAML parser's time grows faster than linearly with nesting: refuse deep
        // nesting before parsing (sweep configs need 4 levels).
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        regnet_core::limits::check_yaml_nesting(text).map_err(|e| root.err(e))?;
        let tree: Value =
            serde_norway::from_str(text).map_err(|e| root.err(e.to_string().replace('\n', " ")))?;
        let empty = serde_norway::Mapping::new();
        let top = match &tree {
            Value::Null => &empty,
            v => yaml::mapping(v, &root)?,
        };
        yaml::check_keys(top, TOP_KEYS, &root)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = get_str(top, "NAME", &root)?.unwrap_or_default();
        check_name(&name, &root.child("NAME"))?;
        let root_dir = resolve(
            dir,
            &get_str(top, "ROOT_DIR", &root)?.unwrap_or("sweeps".into()),
        );
        let desc = get_str(top, "DESC", &root)?.unwrap_or_default();

        let at_setup = root.child("SETUP");
        let setup_map = match yaml::get(top, "SETUP") {
            Some(v) => yaml::mapping(v, &at_setup)?,
            None => &empty,
        };
        let setup = Self::read_setup(setup_map, &at_setup, dir)?;

        let launch = match yaml::get(top, "LAUNCH") {
            Some(v) => read_launch(v, &root.child("LAUNCH"))?,
            None => LaunchCfg::default(),
        };

        let analyze = match yaml::get(top, "ANALYZE") {
            Some(v) => crate::analyze_cfg::read(v, &root.child("ANALYZE"))?,
            None => AnalyzeCfg::default(),
        };
        if let Some(v) = yaml::get(top, "COLLECT") {
            read_collect(v, &root.child("COLLECT"))?;
        }
        Ok(SweepConfig {
            file: path.to_path_buf(),
            text: text.to_string(),
            root_dir,
            name,
            desc,
            setup,
            launch,
            analyze,
        })
    }

    fn read_setup(m: &serde_norway::Mapping, at: &At, dir: &Path) -> Result<SetupCfg> {
        yaml::check_keys(m, SETUP_KEYS, at)?;
        let (num_configs, num_samples) = read_counts(m, at)?;
        let rng_seed = yaml::get(m, "RNG_SEED")
            .map(|v| yaml::uint(v, &at.child("RNG_SEED")))
            .transpose()?
            .unwrap_or(0);
        let (mut base_cfg, base_cfg_source) = read_base_cfg(m, at, dir)?;
        let design_space = read_design_space(m, at, &mut base_cfg)?;
        let samplers = read_samplers(m, at, design_space.as_ref())?;
        let mut constraints = read_constraints(m, at)?;
        if let Some(DesignSpace::RegNet(r)) = &design_space
            && let Some(n) = r.num_stages
        {
            constraints.num_stages = n;
        }
        Ok(SetupCfg {
            num_configs,
            num_samples,
            rng_seed,
            base_cfg,
            base_cfg_source,
            design_space,
            samplers,
            constraints,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_roots_are_normalized() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            resolve(Path::new("crates/x/sweeps"), "../../../target/s"),
            p("target/s")
        );
        assert_eq!(resolve(Path::new("a/b"), "./c/../d"), p("a/b/d"));
        assert_eq!(resolve(Path::new("a"), ".."), p("."));
        assert_eq!(resolve(Path::new(""), "../s"), p("../s"));
        assert_eq!(resolve(Path::new("a"), "/abs/x"), p("/abs/x"));
    }
}
