//! The pycls way of naming a model on the command line: an optional zoo name, an optional
//! `--cfg FILE`, then `KEY VALUE` overrides, applied in that order.

use anyhow::{Result, bail};
use clap::Args;
use regnet_core::config::Config;
use regnet_core::zoo;

/// Model selection shared by the subcommands.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// pycls config file (a `configs/` file or a `config.yaml` written by pycls or regnet).
    #[arg(long = "cfg", value_name = "FILE")]
    pub cfg: Option<String>,
    /// `[MODEL] [KEY VALUE ...]`: a zoo name (pycls, timm or torchvision), then pycls-style
    /// overrides such as `REGNET.DEPTH 14 TRAIN.IM_SIZE 160`.
    #[arg(value_name = "MODEL / KEY VALUE", allow_negative_numbers = true)]
    pub rest: Vec<String>,
}

impl ModelArgs {
    /// The zoo name, if one was given (an odd number of positional words).
    pub fn model_name(&self) -> Option<&str> {
        (self.rest.len() % 2 == 1).then(|| self.rest[0].as_str())
    }

    /// The `KEY VALUE` overrides.
    pub fn overrides(&self) -> &[String] {
        let skip = usize::from(self.model_name().is_some());
        &self.rest[skip..]
    }

    /// Builds the config: zoo model (or defaults), file, overrides.
    pub fn config(&self) -> Result<Config> {
        let mut cfg = match self.model_name() {
            Some(name) => zoo::lookup(name)?.config(),
            None => Config::default(),
        };
        if let Some(path) = &self.cfg {
            cfg.merge_file(path)?;
        }
        cfg.merge_overrides(self.overrides())?;
        if self.model_name().is_none() && self.cfg.is_none() && cfg.model.ty.is_empty() {
            bail!(
                "no model given: name a zoo model (see `regnet zoo`), or give --cfg FILE or MODEL.TYPE overrides"
            );
        }
        Ok(cfg)
    }
}

/// The spec to build: from the model arguments if any were given, else from the weights
/// file (regnet's safetensors metadata, or the config inside a pycls checkpoint).
pub fn resolve_spec(
    args: &ModelArgs,
    weights: &regnet_nn::weights::Weights,
    weights_path: &str,
) -> Result<regnet_core::spec::NetSpec> {
    if args.cfg.is_some() || !args.rest.is_empty() {
        return Ok(args.config()?.spec()?);
    }
    if let Some(spec) = &weights.spec {
        return Ok(spec.clone());
    }
    if let Some(yaml) = &weights.pycls_cfg {
        let mut cfg = Config::default();
        cfg.merge_yaml(
            yaml,
            regnet_core::error::Origin::File(format!("{weights_path} (cfg)")),
        )?;
        return Ok(cfg.spec()?);
    }
    bail!(
        "{weights_path}: the file does not say which model it holds: name a zoo model or give --cfg FILE"
    )
}
