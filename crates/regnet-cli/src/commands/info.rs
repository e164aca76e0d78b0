//! `regnet info`: a model's stages, widths and complexity.

use anyhow::Result;
use regnet_core::complexity::{try_complexity, try_layer_complexity};
use regnet_core::network::Network;
use regnet_core::spec::Arch;
use serde_json::json;

use crate::model_args::ModelArgs;

/// Arguments of `regnet info`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// List every layer with its own flops, params and acts.
    #[arg(long)]
    layers: bool,
}

fn human(n: u64, unit: f64, suffix: &str) -> String {
    format!("{:.3}{suffix}", n as f64 / unit)
}

/// Runs `regnet info`.
pub fn run(args: Args) -> Result<()> {
    let cfg = args.model.config()?;
    let spec = cfg.spec()?;
    let net = Network::from_spec(&spec)?;
    let im = cfg.im_size();
    let cx = try_complexity(&net, im, im)?;
    let layers = match args.layers {
        true => Some(try_layer_complexity(&net, im, im)?),
        false => None,
    };
    let regnet = match &spec.arch {
        Arch::RegNet(r) => Some((r, r.widths()?)),
        _ => None,
    };
    let model_type = match &spec.arch {
        Arch::AnyNet(_) => "anynet",
        Arch::RegNet(_) => "regnet",
        Arch::EffNet(_) => "effnet",
    };

    if args.json {
        let mut out = json!({
            "model": args.model.model_name(),
            "model_type": model_type,
            "flops": cx.flops,
            "params": cx.params,
            "acts": cx.acts,
            "im_size": im,
            "num_classes": spec.num_classes,
            "in_channels": spec.in_channels,
            "activation": spec.activation.name(),
            "stages": net.stages,
            "spec": spec,
            "warnings": net.warnings,
        });
        if let Some((r, w)) = &regnet {
            out["regnet"] = json!({
                "depth": r.depth, "w0": r.w0, "wa": r.wa, "wm": r.wm, "group_w": r.group_w,
                "bot_mul": r.bot_mul, "se_r": r.se_r, "rounding": r.rounding,
                "ws_cont": w.ws_cont, "ws_all": w.ws_all,
                "num_stages": w.num_stages, "total_stages": w.total_stages,
            });
        }
        if let Some(layers) = &layers {
            out["layers"] = serde_json::to_value(layers)?;
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }

    let title = args
        .model
        .model_name()
        .map(str::to_string)
        .unwrap_or_else(|| cfg.origin.to_string());
    println!(
        "{title}: {model_type}, input {}x{im}x{im}, {} classes, {}",
        spec.in_channels,
        spec.num_classes,
        spec.activation.name()
    );
    if let Some((r, w)) = &regnet {
        println!(
            "RegNet d={} w0={} wa={} wm={} g={} b={} se_r={} ({} rounding), {} of {} possible stages",
            r.depth,
            r.w0,
            r.wa,
            r.wm,
            r.group_w,
            r.bot_mul,
            r.se_r,
            r.rounding.name(),
            w.num_stages,
            w.total_stages
        );
        let cont: Vec<String> = w.ws_cont.iter().map(|u| format!("{u:.1}")).collect();
        let quant: Vec<String> = w.ws_all.iter().map(|u| u.to_string()).collect();
        println!("  per-block widths, continuous: {}", cont.join(" "));
        println!("  per-block widths, quantized:  {}", quant.join(" "));
    }
    println!(
        "\n{:<6} {:>5} {:>6} {:>6} {:>7} {:>6} {:>7} {:>6} {:>5} {:>6}",
        "stage",
        "depth",
        "width",
        "stride",
        "bot_mul",
        "w_b",
        "group_w",
        "groups",
        "w_se",
        "kernel"
    );
    for (i, s) in net.stages.iter().enumerate() {
        println!(
            "{:<6} {:>5} {:>6} {:>6} {:>7} {:>6} {:>7} {:>6} {:>5} {:>6}",
            format!("s{}", i + 1),
            s.depth,
            s.width,
            s.stride,
            s.bot_mul,
            s.w_b,
            s.group_w,
            s.groups,
            s.w_se,
            s.kernel
        );
    }
    println!(
        "\nflops {} ({})  params {} ({})  acts {} ({})",
        human(cx.flops, 1e9, " GF"),
        cx.flops,
        human(cx.params, 1e6, " M"),
        cx.params,
        human(cx.acts, 1e6, " M"),
        cx.acts
    );
    for w in &net.warnings {
        println!("warning: {w}");
    }
    if let Some(layers) = layers {
        println!(
            "\n{:<24} {:<14} {:>6} {:>6} {:>9} {:>13} {:>10} {:>10}",
            "layer", "kind", "w_in", "w_out", "out", "flops", "params", "acts"
        );
        for l in layers {
            println!(
                "{:<24} {:<14} {:>6} {:>6} {:>9} {:>13} {:>10} {:>10}",
                l.name,
                l.kind,
                l.w_in,
                l.w_out,
                format!("{}x{}", l.h, l.w),
                l.flops,
                l.params,
                l.acts
            );
        }
    }
    Ok(())
}
