//! `regnet fit`: the quantized linear rule (w0, wa, wm) fitted to per-block widths.

use anyhow::{Result, bail};
use clap::Args;
use regnet_sweep::fit::{FitOptions, fit_widths_with};
use regnet_sweep::setup::Stages;

use crate::model_args::ModelArgs;

/// `regnet fit`.
#[derive(Args, Debug, Clone)]
pub struct FitArgs {
    /// Per-block widths, e.g. `24,56,152,152,152,152,368,...`.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["depths", "cfg", "rest"])]
    pub widths: Option<Vec<usize>>,
    /// Per-stage depths (with --stage-widths).
    #[arg(long, value_delimiter = ',', requires = "stage_widths")]
    pub depths: Option<Vec<usize>>,
    /// Per-stage widths (with --depths).
    #[arg(long, value_delimiter = ',', requires = "depths")]
    pub stage_widths: Option<Vec<usize>>,
    /// The model: a zoo name, `--cfg FILE`, then pycls-style overrides.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Smallest wm searched.
    #[arg(long, default_value_t = 1.5)]
    pub wm_min: f64,
    /// Largest wm searched.
    #[arg(long, default_value_t = 3.0)]
    pub wm_max: f64,
    /// Print the fit as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The generating parameters `(w0, wa, wm, depth)` of a RegNet config.
type RegNetParams = (usize, f64, f64, usize);

/// The per-block widths to fit, and the RegNet parameters that made them, if any.
fn widths(a: &FitArgs) -> Result<(Vec<usize>, Option<RegNetParams>)> {
    if let Some(ws) = &a.widths {
        return Ok((ws.clone(), None));
    }
    if let (Some(ds), Some(ws)) = (&a.depths, &a.stage_widths) {
        if ds.len() != ws.len() {
            bail!(
                "--depths has {} stages but --stage-widths {}",
                ds.len(),
                ws.len()
            );
        }
        let blocks = (ds.iter().zip(ws))
            .flat_map(|(&d, &w)| std::iter::repeat_n(w, d))
            .collect();
        return Ok((blocks, None));
    }
    if a.model.cfg.is_none() && a.model.rest.is_empty() {
        bail!(
            "nothing to fit: give --widths, --depths and --stage-widths, a zoo model, or --cfg FILE"
        );
    }
    let cfg = a.model.config()?;
    let stages = Stages::of(&cfg)?;
    let r = &cfg.regnet;
    let regnet = (cfg.model.ty == "regnet").then_some((r.w0, r.wa, r.wm, r.depth));
    Ok((stages.block_widths(), regnet))
}

fn list(xs: &[usize]) -> String {
    let items: Vec<String> = xs.iter().map(|x| x.to_string()).collect();
    format!("[{}]", items.join(", "))
}

/// Runs `regnet fit`.
pub fn run(a: FitArgs) -> Result<()> {
    let (widths, regnet) = widths(&a)?;
    let opts = FitOptions {
        wm_range: (a.wm_min, a.wm_max),
        ..FitOptions::default()
    };
    let f = fit_widths_with(&widths, &opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&f)?);
        return Ok(());
    }
    println!("blocks   {} (d = {})", list(&widths), f.depth);
    println!(
        "fit      w0 = {}, wa = {} (any in ({:.4}, {:.4})), wm = {}",
        f.w0, f.wa, f.wa_interval.0, f.wa_interval.1, f.wm
    );
    println!("widths   {}", list(&f.widths));
    println!(
        "stages   widths {}, depths {}",
        list(&f.stage_widths),
        list(&f.stage_depths)
    );
    println!("e_fit    {:.4}", f.e_fit);
    if let Some((w0, wa, wm, d)) = regnet {
        println!("config   w0 = {w0}, wa = {wa}, wm = {wm}, d = {d} (generating parameters)");
    }
    Ok(())
}
