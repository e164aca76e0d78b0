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
use std::path::Path;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use regnet_core::atomic_file::temp_path;
use regnet_core::config::Config;
use regnet_core::error::Origin;
use regnet_core::spec::AnyNet;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::apply::{self, Setter};
use crate::constraints::{Accepted, Constraints, Cx, Rejection, config_complexity};
use crate::design_space::{DesignSpace, PreparedSpace, SpaceDraw};
use crate::error::{Error, Result};
use crate::fast_path::{FastPath, NetDraw, NetSource};
use crate::sampler::{Param, RegNetParams, Sampler, params_key};
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

/// One sampler's draw for a candidate.
#[derive(Clone, Debug)]
enum SamplerDraw {
    /// A `regnet_sampler`'s parameters.
    RegNet(RegNetParams),
    /// Any other sampler's value.
    Value(Json),
}

/// One candidate as drawn, typed: the design space's values, then each sampler's. It
/// becomes `KEY VALUE` parameters only when it is kept (or judged the general way).
#[derive(Clone, Debug)]
struct Draw {
    space: Option<SpaceDraw>,
    samplers: Vec<SamplerDraw>,
}

/// Draws candidates and evaluates them against the constraints.
struct Engine<'a> {
    sweep: &'a SweepConfig,
    space: Option<PreparedSpace<'a>>,
    setters: HashMap<String, Option<Setter>>,
    /// Which sampler sets each key, for error messages.
    origin: HashMap<String, String>,
    /// The fast verdict, where the sweep allows it.
    fast: Option<FastPath>,
}

impl<'a> Engine<'a> {
    fn new(sweep: &'a SweepConfig, fast: bool) -> Self {
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
            fast: if fast { FastPath::new(sweep) } else { None },
        }
    }

    /// One candidate, from the design space, then each sampler in file order.
    fn draw(&self, rng: &mut ChaCha8Rng) -> Draw {
        let space = self.space.as_ref().map(|ds| ds.draw(rng));
        let samplers = (self.sweep.setup.samplers.iter())
            .map(|(_, sampler)| match sampler {
                Sampler::RegNet(r) => SamplerDraw::RegNet(r.sample(rng)),
                other => SamplerDraw::Value(other.sample(rng)),
            })
            .collect();
        Draw { space, samplers }
    }

    /// `n` candidates, in stream order.
    fn draw_chunk(&self, rng: &mut ChaCha8Rng, n: usize) -> Vec<Draw> {
        (0..n).map(|_| self.draw(rng)).collect()
    }

    /// The candidate's `KEY VALUE` parameters.
    fn params(&self, d: &Draw) -> Vec<Param> {
        let mut params = d
            .space
            .as_ref()
            .map(SpaceDraw::to_params)
            .unwrap_or_default();
        for ((param, _), sd) in self.sweep.setup.samplers.iter().zip(&d.samplers) {
            match sd {
                SamplerDraw::RegNet(p) => params.extend(p.to_params()),
                SamplerDraw::Value(v) => params.push((param.clone(), v.clone())),
            }
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

    /// The candidate's verdict through its full config and layer plan; errors are values
    /// of the wrong type for a key.
    fn evaluate(&self, params: &[Param]) -> Result<Verdict> {
        let mut cfg = self.sweep.setup.base_cfg.clone();
        for (k, v) in params {
            if let Some(Some(set)) = self.setters.get(k) {
                set(&mut cfg, v).map_err(|e| self.key_error(k, v, e))?;
            }
        }
        Ok(self.sweep.setup.constraints.check(&cfg))
    }

    /// The candidate's verdict: the fast path's where it answers, else the general one.
    fn judge(&self, d: &Draw, scratch: &mut Option<AnyNet>) -> Result<Verdict> {
        if let (Some(fast), Some(net)) = (&self.fast, scratch.as_mut()) {
            let net_draw = match (fast.source, &d.space) {
                (NetSource::DesignSpace, Some(s)) => Some(NetDraw::from(s)),
                (NetSource::Sampler(i), _) => match d.samplers.get(i) {
                    Some(SamplerDraw::RegNet(p)) => Some(NetDraw::RegNet(p)),
                    _ => None,
                },
                _ => None,
            };
            if let Some(v) = net_draw.and_then(|nd| fast.check(nd, net)) {
                return Ok(v);
            }
        }
        self.evaluate(&self.params(d))
    }

    /// Judges a chunk of draws, in parallel, in order.
    fn judge_all(&self, chunk: &[Draw]) -> Vec<Result<Verdict>> {
        chunk
            .par_iter()
            .map_init(
                || self.fast.as_ref().map(FastPath::scratch),
                |scratch, d| self.judge(d, scratch),
            )
            .collect()
    }

    /// Draws until `NUM_CONFIGS` are kept or `NUM_SAMPLES` drawn.
    fn run(&self) -> Result<(Vec<Candidate>, SampleStats)> {
        let s = &self.sweep.setup;
        let start = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(s.rng_seed);
        let mut stats = SampleStats::default();
        let mut kept: Vec<Candidate> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut next: Option<Vec<Draw>> = None;
        'draws: while stats.drawn < s.num_samples && kept.len() < s.num_configs {
            let chunk = match next.take() {
                Some(chunk) => chunk,
                None => self.draw_chunk(&mut rng, CHUNK.min(s.num_samples - stats.drawn)),
            };
            // Drawing is sequential (one stream); the next chunk is drawn while this one is
            // judged. Chunk sizes depend only on the counts, so the sweep stays the seed's.
            let n_next = CHUNK.min(s.num_samples - stats.drawn - chunk.len());
            let (verdicts, following) = rayon::join(
                || self.judge_all(&chunk),
                || (n_next > 0).then(|| self.draw_chunk(&mut rng, n_next)),
            );
            next = following;
            for (d, verdict) in chunk.iter().zip(verdicts) {
                stats.drawn += 1;
                // A repeat of a kept candidate has its verdict, so only kept candidates need
                // their parameter string (the identity deduplication compares).
                let a = match verdict? {
                    Ok(a) => a,
                    Err(r) => {
                        stats.reject(r);
                        continue;
                    }
                };
                let params = self.params(d);
                let key = params_key(&params);
                if !seen.insert(key.clone()) {
                    stats.duplicates += 1;
                    continue;
                }
                kept.push(Candidate {
                    params,
                    key,
                    cx: a.cx,
                });
                if kept.len() == s.num_configs {
                    break 'draws;
                }
            }
        }
        stats.accepted = kept.len();
        stats.seconds = start.elapsed().as_secs_f64();
        stats.draws_per_second = stats.drawn as f64 / stats.seconds.max(1e-9);
        Ok((kept, stats))
    }
}

/// A candidate's verdict.
type Verdict = std::result::Result<Accepted, Rejection>;

impl SampleStats {
    /// Counts a rejection.
    fn reject(&mut self, r: Rejection) {
        match r {
            Rejection::Invalid(msg) => {
                self.invalid += 1;
                self.invalid_example.get_or_insert(msg);
            }
            Rejection::RegNetStages => self.regnet_stages += 1,
            Rejection::Flops => self.flops += 1,
            Rejection::Params => self.params += 1,
            Rejection::Acts => self.acts += 1,
        }
    }
}

/// Draws and evaluates candidates without writing anything: the kept candidates, in order,
/// and the statistics.
pub fn sample(sweep: &SweepConfig) -> Result<(Vec<Candidate>, SampleStats)> {
    Engine::new(sweep, true).run()
}

/// [`sample`] with every candidate judged through its full config and layer plan, never the
/// fast path: the reference the fast path is tested against (same candidates, same
/// statistics), and the baseline of the sampling benchmark.
pub fn sample_with_layer_plan(sweep: &SweepConfig) -> Result<(Vec<Candidate>, SampleStats)> {
    Engine::new(sweep, false).run()
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

/// The number of configs already in `SWEEP/cfgs`, an error unless `force`.
fn check_existing(cfg_dir: &Path, force: bool) -> Result<()> {
    if !cfg_dir.is_dir() {
        return Ok(());
    }
    let existing = std::fs::read_dir(cfg_dir)
        .map_err(|e| Error::io(cfg_dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .count();
    if existing > 0 && !force {
        return Err(Error::other(format!(
            "{}: the sweep already has {existing} configs (use --force to sample them anew)",
            cfg_dir.display()
        )));
    }
    Ok(())
}

/// Writes the kept candidates' configs into `staging` (named for their final place in
/// `dir`), re-reads each and checks its complexity; returns the models.
fn write_models(
    sweep: &SweepConfig,
    engine: &Engine<'_>,
    kept: &[Candidate],
    dir: &Path,
    staging: &Path,
) -> Result<Vec<SampledModel>> {
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
        let path = staging.join(format!("{name}.yaml"));
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
            cfg: format!("cfgs/{}.yaml", model_name(index)),
            sampled: c.params.iter().cloned().collect(),
            complexity: cx,
            stages: Stages::of(&back)?,
            regnet,
        });
    }
    Ok(models)
}

/// Moves the configs written to `staging` into `SWEEP/cfgs`, replacing any there: two
/// renames, so a reader sees the old configs or the new ones, never a mix.
fn install(cfg_dir: &Path, staging: &Path) -> Result<()> {
    let dir = cfg_dir.parent().unwrap_or(Path::new("."));
    let old = temp_path(&dir.join("cfgs-old"));
    if cfg_dir.exists() {
        std::fs::rename(cfg_dir, &old).map_err(|e| Error::io(cfg_dir, e))?;
    }
    std::fs::rename(staging, cfg_dir).map_err(|e| Error::io(cfg_dir, e))?;
    // Best effort: not every file system can sync a folder.
    let _ = regnet_core::atomic_file::sync_dir(dir);
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    Ok(())
}

/// The samplers of a sweep, described.
fn sampler_infos(sweep: &SweepConfig) -> Vec<SamplerInfo> {
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
    samplers
}

/// Sets up `sweep`: samples, writes the configs, `sweep_cfg.yaml` and `setup.json`.
///
/// Nothing is written until sampling has succeeded: a sweep whose constraints no candidate
/// meets is an error that leaves the folder as it was. The configs are written to a
/// temporary folder and moved into place at once (an existing sweep's configs, with
/// `force`, are replaced only then); `setup.json`, written last, marks a complete setup.
pub fn setup(sweep: &SweepConfig, opts: &SetupOptions) -> Result<SetupSummary> {
    let dir = sweep.sweep_dir();
    let cfg_dir = dir.join("cfgs");
    check_existing(&cfg_dir, opts.force)?;
    let engine = Engine::new(sweep, true);
    let (kept, stats) = engine.run()?;
    if kept.is_empty() {
        return Err(Error::config(
            &sweep.file,
            "SETUP.CONSTRAINTS",
            format!(
                "no candidate met the constraints in {} draws (NUM_SAMPLES), nothing was \
                 written: {}",
                stats.drawn,
                rejection_summary(&stats)
            ),
        ));
    }
    crate::error::remove_stale_temps(&dir);
    let staging = temp_path(&cfg_dir);
    let written = write_models(sweep, &engine, &kept, &dir, &staging)
        .and_then(|models| install(&cfg_dir, &staging).map(|()| models));
    let models = match written {
        Ok(models) => models,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let s = &sweep.setup;
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
        samplers: sampler_infos(sweep),
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
