//! # regnet-sweep
//!
//! Design-space science for regnet, with no deep-learning dependency: the samplers and
//! sweeps of pycls (`pycls/sweep`, `tools/sweep_*.py`) and the analysis of "Designing
//! Network Design Spaces" (Radosavovic et al., CVPR 2020).
//!
//! A sweep goes through four steps, each a function the `regnet sweep` command calls:
//!
//! 1. [`setup::run`]: sample configs from a sweep config (samplers, a built-in
//!    [`design_space`], [`constraints`]) and write one pycls config per model;
//! 2. [`launch::run`]: train every config with a command template, N at a time, resuming
//!    and retrying; or [`slurm::script`] for a SLURM job array;
//! 3. [`collect::run`]: gather every job's `json_stats` log lines ([`logs`]) into one
//!    results file;
//! 4. [`analyze::run`]: error EDFs, normalized EDFs and bootstrap ranges ([`analysis`]),
//!    plotted as SVG ([`plot`]) into a self-contained HTML [`report`].
//!
//! [`fit::fit_widths`] fits the quantized linear rule to any per-block widths (`regnet
//! fit`). The command-line arguments and printing of both commands live in `regnet-cli`.

pub mod analysis;
pub mod analyze;
pub mod analyze_cfg;
pub mod apply;
pub mod collect;
pub mod constraints;
pub mod curves;
pub mod design_space;
pub mod error;
pub mod fast_path;
pub mod fit;
pub mod job_lock;
pub mod launch;
pub mod layout;
pub mod logs;
pub mod paper;
pub mod plot;
pub mod random;
pub mod report;
pub mod sampler;
pub mod setup;
pub mod slurm;
pub mod sweep_config;
pub mod template;
mod yaml;

pub use error::{Error, Result};
pub use sweep_config::SweepConfig;
