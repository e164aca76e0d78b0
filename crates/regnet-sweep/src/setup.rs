//! `regnet sweep setup`: sample configs by rejection and write them, as pycls's
//! `tools/sweep_setup.py`.
//!
//! A candidate is drawn by the design space (if any), then by each sampler in file order,
//! from one ChaCha8 stream seeded with `SETUP.RNG_SEED`. It is kept when it is new (its
//! `KEY VALUE ...` string differs from every kept one), its network can be built and it
//! meets the constraints. Drawing stops after `NUM_CONFIGS` kept or `NUM_SAMPLES` drawn.
//! (pycls draws all `NUM_SAMPLES`, then shuffles the unique valid ones and keeps
//! `NUM_CONFIGS`; stopping early gives the same law when duplicates are rare, and a
//! million draws are not needed for a 32-model sweep.)
//!
//! Candidates are evaluated in parallel, in chunks, and kept in draw order, so the result
//! depends only on the seed, not on the number of threads.
//!
//! The sweep folder `ROOT_DIR/NAME` gets:
//!
//! - `cfgs/000000.yaml, ...`: one full pycls config per model (`DESC` is its parameter
//!   string, as in pycls; `OUT_DIR` is `logs/000000`), each re-read after writing and its
//!   complexity checked against the sampler's;
//! - `sweep_cfg.yaml`: a copy of the sweep config;
//! - `setup.json`: a [`SetupSummary`]: the samplers, the constraints, the draw statistics,
//!   and each model's sampled parameters, stages and flops/params/acts.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use regnet_core::config::Config;
use regnet_core::error::Origin;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::apply::{self, Setter};
use crate::constraints::{Accepted, Constraints, Cx, Rejection, config_complexity};
use crate::design_space::{DesignSpace, PreparedSpace};
use crate::error::{Error, Result};
use crate::sampler::{Param, RegNetParams, params_key};
use crate::sweep_config::SweepConfig;

/// Candidates evaluated per parallel chunk.
const CHUNK: usize = 2048;

/// Options of [`run_with`].
#[derive(Clone, Debug, Default)]
pub struct SetupOptions {
    /// Overwrite the configs of an existing sweep.
    pub force: bool,
}

/// How the draws went.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleStats {
    /// Candidates drawn.
    pub drawn: usize,
    /// Candidates kept.
    pub accepted: usize,
    /// Repeats of a kept candidate.
    pub duplicates: usize,
    /// Networks that cannot be built.
    pub invalid: usize,
    /// RegNets with a bad number of stages.
    pub regnet_stages: usize,
    /// Flops out of range.
    pub flops: usize,
    /// Parameters out of range.
    pub params: usize,
    /// Activations out of range.
    pub acts: usize,
    /// The first reason a network could not be built.
    pub invalid_example: Option<String>,
    /// Seconds spent drawing and evaluating.
    pub seconds: f64,
    /// Candidates per second.
    pub draws_per_second: f64,
}

/// A kept candidate.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// The sampled `KEY VALUE` parameters, design space first, then samplers in order.
    pub params: Vec<Param>,
    /// The parameter string (identity for deduplication, and `DESC`).
    pub key: String,
    /// Complexity at `TRAIN.IM_SIZE`.
    pub cx: Cx,
}

/// Per-stage structure of a model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stages {
    /// Blocks per stage.
    pub depths: Vec<usize>,
    /// Width per stage.
    pub widths: Vec<usize>,
    /// Stride per stage.
    pub strides: Vec<usize>,
    /// Bottleneck multiplier per stage (pycls `BOT_MULS`).
    pub bot_muls: Vec<f64>,
    /// Group width per stage.
    pub group_ws: Vec<usize>,
}

impl Stages {
    /// The stages of the network `cfg` describes (EfficientNets: depths and widths only).
    pub fn of(cfg: &Config) -> regnet_core::Result<Stages> {
        let spec = cfg.spec()?;
        Ok(match spec.anynet()? {
            Some(a) => Stages {
                depths: a.stages.iter().map(|s| s.depth).collect(),
                widths: a.stages.iter().map(|s| s.width).collect(),
                strides: a.stages.iter().map(|s| s.stride).collect(),
                bot_muls: a.stages.iter().map(|s| s.bot_mul.unwrap_or(1.0)).collect(),
                group_ws: a.stages.iter().map(|s| s.group_w.unwrap_or(0)).collect(),
            },
            None => Stages {
                depths: cfg.en.depths.clone(),
                widths: cfg.en.widths.clone(),
                strides: cfg.en.strides.clone(),
                bot_muls: cfg.en.exp_ratios.clone(),
                group_ws: vec![1; cfg.en.depths.len()],
            },
        })
    }

    /// Per-block widths (each stage's width repeated by its depth).
    pub fn block_widths(&self) -> Vec<usize> {
        self.depths
            .iter()
            .zip(&self.widths)
            .flat_map(|(&d, &w)| std::iter::repeat_n(w, d))
            .collect()
    }
}

/// One written model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampledModel {
    /// Index in the sweep.
    pub index: usize,
    /// Six-digit name (`000003`).
    pub name: String,
    /// Config file, relative to the sweep folder.
    pub cfg: String,
    /// The sampled parameters.
    pub sampled: serde_json::Map<String, Json>,
    /// Complexity at `TRAIN.IM_SIZE`.
    pub complexity: Cx,
    /// Stages of the network.
    pub stages: Stages,
    /// RegNet parameters, for `MODEL.TYPE: regnet`.
    pub regnet: Option<RegNetParams>,
}

/// A sampler, described.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplerInfo {
    /// Its key in `SETUP.SAMPLERS` (`SETUP.DESIGN_SPACE` for the design space).
    pub key: String,
    /// The config keys it sets.
    pub keys: Vec<String>,
    /// One-line description.
    pub description: String,
    /// Values are best shown on a log axis.
    pub log_scale: bool,
}

/// What `setup` did: written to `setup.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetupSummary {
    /// `NAME`.
    pub name: String,
    /// `DESC`.
    pub desc: String,
    /// The sweep config file.
    pub sweep_cfg: String,
    /// The sweep folder.
    pub sweep_dir: String,
    /// The design space, if any.
    pub design_space: Option<String>,
    /// Where the base config came from.
    pub base_cfg: String,
    /// `SETUP.RNG_SEED`.
    pub rng_seed: u64,
    /// `SETUP.NUM_CONFIGS`.
    pub num_configs: usize,
    /// `SETUP.NUM_SAMPLES`.
    pub num_samples: usize,
    /// Image size complexity is counted at.
    pub im_size: usize,
    /// The samplers.
    pub samplers: Vec<SamplerInfo>,
    /// The constraints.
    pub constraints: Constraints,
    /// Draw statistics.
    pub stats: SampleStats,
    /// The models written.
    pub models: Vec<SampledModel>,
}

/// The models' six-digit name.
pub fn model_name(index: usize) -> String {
    format!("{index:06}")
}

/// Draws candidates and evaluates them against the constraints.
struct Engine<'a> {
    sweep: &'a SweepConfig,
    space: Option<PreparedSpace<'a>>,
    setters: HashMap<String, Option<Setter>>,
    /// Which sampler sets each key, for error messages.
    origin: HashMap<String, String>,
}

impl<'a> Engine<'a> {
    fn new(sweep: &'a SweepConfig) -> Self {
        let mut setters = HashMap::new();
        let mut origin = HashMap::new();
        let s = &sweep.setup;
        if let Some(ds) = &s.design_space {
            for k in ds.keys() {
                origin.insert(k.clone(), "SETUP.DESIGN_SPACE".to_string());
                setters.insert(k.clone(), apply::setter(&k));
            }
        }
        for (param, sampler) in &s.samplers {
            for k in sampler.keys(param) {
                origin.insert(k.clone(), format!("SETUP.SAMPLERS.{param}"));
                setters.insert(k.clone(), apply::setter(&k));
            }
        }
        Engine {
            sweep,
            space: s.design_space.as_ref().map(DesignSpace::prepare),
            setters,
            origin,
        }
    }

    fn draw(&self, rng: &mut ChaCha8Rng) -> Vec<Param> {
        let s = &self.sweep.setup;
        let mut params = match &self.space {
            Some(ds) => ds.sample(rng),
            None => Vec::new(),
        };
        for (param, sampler) in &s.samplers {
            sampler.sample_into(param, rng, &mut params);
        }
        params
    }

    fn key_error(&self, key: &str, v: &Json, e: impl std::fmt::Display) -> Error {
        let at = self
            .origin
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_string());
        Error::config(
            &self.sweep.file,
            at,
            format!("cannot set {key} to {v}: {e}"),
        )
    }

    /// The candidate's key and verdict; errors are values of the wrong type for a key.
    fn evaluate(&self, params: &[Param]) -> Result<(String, Result<Accepted, Rejection>)> {
        let mut cfg = self.sweep.setup.base_cfg.clone();
        for (k, v) in params {
            if let Some(Some(set)) = self.setters.get(k) {
                set(&mut cfg, v).map_err(|e| self.key_error(k, v, e))?;
            }
        }
        Ok((params_key(params), self.sweep.setup.constraints.check(&cfg)))
    }

    /// Draws until `NUM_CONFIGS` are kept or `NUM_SAMPLES` drawn.
    fn run(&self) -> Result<(Vec<Candidate>, SampleStats)> {
        let s = &self.sweep.setup;
        let start = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(s.rng_seed);
        let mut stats = SampleStats::default();
        let mut kept: Vec<Candidate> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        'draws: while stats.drawn < s.num_samples && kept.len() < s.num_configs {
            let n = CHUNK.min(s.num_samples - stats.drawn);
            let chunk: Vec<Vec<Param>> = (0..n).map(|_| self.draw(&mut rng)).collect();
            let verdicts: Vec<_> = chunk.par_iter().map(|p| self.evaluate(p)).collect();
            for (params, verdict) in chunk.into_iter().zip(verdicts) {
                stats.drawn += 1;
                let (key, verdict) = verdict?;
                if seen.contains(&key) {
                    stats.duplicates += 1;
                    continue;
                }
                match verdict {
                    Ok(a) => {
                        seen.insert(key.clone());
                        kept.push(Candidate {
                            params,
                            key,
                            cx: a.cx,
                        });
                        if kept.len() == s.num_configs {
                            break 'draws;
                        }
                    }
                    Err(Rejection::Invalid(msg)) => {
                        stats.invalid += 1;
                        stats.invalid_example.get_or_insert(msg);
                    }
                    Err(Rejection::RegNetStages) => stats.regnet_stages += 1,
                    Err(Rejection::Flops) => stats.flops += 1,
                    Err(Rejection::Params) => stats.params += 1,
                    Err(Rejection::Acts) => stats.acts += 1,
                }
            }
        }
        stats.accepted = kept.len();
        stats.seconds = start.elapsed().as_secs_f64();
        stats.draws_per_second = stats.drawn as f64 / stats.seconds.max(1e-9);
        Ok((kept, stats))
    }
}

/// Draws and evaluates candidates without writing anything: the kept candidates, in order,
/// and the statistics.
pub fn sample(sweep: &SweepConfig) -> Result<(Vec<Candidate>, SampleStats)> {
    Engine::new(sweep).run()
}

/// Sets up the sweep of the config at `path` (refusing to overwrite an existing one).
pub fn run(path: impl AsRef<Path>) -> Result<SetupSummary> {
    run_with(path, &SetupOptions::default())
}

/// Sets up the sweep of the config at `path`.
pub fn run_with(path: impl AsRef<Path>, opts: &SetupOptions) -> Result<SetupSummary> {
    let sweep = SweepConfig::load(path)?;
    setup(&sweep, opts)
}

/// The reasons of the rejections, for the error when nothing is kept.
fn rejection_summary(st: &SampleStats) -> String {
    let mut parts = Vec::new();
    for (n, what) in [
        (st.duplicates, "duplicates"),
        (st.invalid, "invalid networks"),
        (
            st.regnet_stages,
            "RegNets outside CONSTRAINTS.REGNET.NUM_STAGES",
        ),
        (st.flops, "flops out of range"),
        (st.params, "params out of range"),
        (st.acts, "acts out of range"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    let mut s = parts.join(", ");
    if let Some(e) = &st.invalid_example {
        s += &format!(" (first invalid: {e})");
    }
    s
}

/// Sets up `sweep`: samples, writes the configs, `sweep_cfg.yaml` and `setup.json`.
pub fn setup(sweep: &SweepConfig, opts: &SetupOptions) -> Result<SetupSummary> {
    let dir = sweep.sweep_dir();
    let cfg_dir = dir.join("cfgs");
    if cfg_dir.is_dir() {
        let existing: Vec<PathBuf> = std::fs::read_dir(&cfg_dir)
            .map_err(|e| Error::io(&cfg_dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        if !existing.is_empty() {
            if !opts.force {
                return Err(Error::other(format!(
                    "{}: the sweep already has {} configs (use --force to sample them anew)",
                    cfg_dir.display(),
                    existing.len()
                )));
            }
            for p in existing {
                std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            }
        }
    }
    let engine = Engine::new(sweep);
    let (kept, stats) = engine.run()?;
    if kept.is_empty() {
        return Err(Error::config(
            &sweep.file,
            "SETUP",
            format!(
                "no config met the constraints in {} draws: {}",
                stats.drawn,
                rejection_summary(&stats)
            ),
        ));
    }
    let logs = std::path::absolute(dir.join("logs")).unwrap_or(dir.join("logs"));
    let mut models = Vec::with_capacity(kept.len());
    for (index, c) in kept.iter().enumerate() {
        let name = model_name(index);
        let mut cfg = sweep.setup.base_cfg.clone();
        cfg.merge_yaml(
            &apply::params_yaml(&c.params),
            Origin::File(sweep.file.display().to_string()),
        )
        .map_err(|e| match e {
            regnet_core::Error::Config { key, message, .. } => {
                let at = engine.origin.get(&key).cloned().unwrap_or(key.clone());
                Error::config(&sweep.file, at, format!("cannot set {key}: {message}"))
            }
            other => other.into(),
        })?;
        cfg.desc = c.key.clone();
        cfg.out_dir = logs.join(&name).display().to_string();
        let rel = format!("cfgs/{name}.yaml");
        let path = dir.join(&rel);
        crate::error::write(&path, cfg.to_yaml())?;
        // What training will read: the file, not the value in memory.
        let back = Config::load(&path.display().to_string())?;
        let cx = config_complexity(&back)?;
        if cx != c.cx {
            return Err(Error::other(format!(
                "{}: complexity {cx:?} of the written config differs from the sampled {:?}",
                path.display(),
                c.cx
            )));
        }
        let regnet = (back.model.ty == "regnet").then_some(RegNetParams {
            depth: back.regnet.depth,
            w0: back.regnet.w0,
            wa: back.regnet.wa,
            wm: back.regnet.wm,
            group_w: back.regnet.group_w,
            bot_mul: back.regnet.bot_mul,
        });
        models.push(SampledModel {
            index,
            name,
            cfg: rel,
            sampled: c.params.iter().cloned().collect(),
            complexity: cx,
            stages: Stages::of(&back)?,
            regnet,
        });
    }
    let s = &sweep.setup;
    let mut samplers = Vec::new();
    if let Some(ds) = &s.design_space {
        samplers.push(SamplerInfo {
            key: "SETUP.DESIGN_SPACE".into(),
            keys: ds.keys(),
            description: ds.name(),
            log_scale: false,
        });
    }
    for (param, sampler) in &s.samplers {
        samplers.push(SamplerInfo {
            key: param.clone(),
            keys: sampler.keys(param),
            description: sampler.describe(),
            log_scale: sampler.is_log(),
        });
    }
    let summary = SetupSummary {
        name: sweep.name.clone(),
        desc: sweep.desc.clone(),
        sweep_cfg: sweep.file.display().to_string(),
        sweep_dir: dir.display().to_string(),
        design_space: s.design_space.as_ref().map(|d| d.name()),
        base_cfg: s.base_cfg_source.clone(),
        rng_seed: s.rng_seed,
        num_configs: s.num_configs,
        num_samples: s.num_samples,
        im_size: s.base_cfg.im_size(),
        samplers,
        constraints: s.constraints.clone(),
        stats,
        models,
    };
    crate::error::write(&dir.join("sweep_cfg.yaml"), &sweep.text)?;
    crate::error::write_json(&dir.join("setup.json"), &summary)?;
    Ok(summary)
}

/// Reads the `setup.json` of a sweep folder.
pub fn load_summary(sweep_dir: &Path) -> Result<SetupSummary> {
    crate::error::read_json(&sweep_dir.join("setup.json"))
}
