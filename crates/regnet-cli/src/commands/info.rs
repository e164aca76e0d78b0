//! `regnet info`: a model's stages, widths and complexity.

use anyhow::Result;
use regnet_core::complexity::{Complexity, LayerComplexity, try_complexity, try_layer_complexity};
use regnet_core::network::Network;
use regnet_core::regnet::RegNet;
use regnet_core::spec::{Arch, NetSpec};
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

/// Everything `regnet info` prints, computed once for both output forms.
struct Info<'a> {
    title: String,
    name: Option<&'a str>,
    model_type: &'static str,
    im: usize,
    spec: NetSpec,
    net: Network,
    cx: Complexity,
    layers: Option<Vec<LayerComplexity>>,
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
    let model_type = match &spec.arch {
        Arch::AnyNet(_) => "anynet",
        Arch::RegNet(_) => "regnet",
        Arch::EffNet(_) => "effnet",
    };
    let name = args.model.model_name();
    let info = Info {
        title: name.map_or_else(|| cfg.origin.to_string(), str::to_string),
        name,
        model_type,
        im,
        spec,
        net,
        cx,
        layers,
    };
    if args.json {
        print_json(&info)
    } else {
        print_text(&info)
    }
}

fn print_json(info: &Info) -> Result<()> {
    let (spec, net, cx) = (&info.spec, &info.net, &info.cx);
    let mut out = json!({
        "model": info.name,
        "model_type": info.model_type,
        "flops": cx.flops,
        "params": cx.params,
        "acts": cx.acts,
        "im_size": info.im,
        "num_classes": spec.num_classes,
        "in_channels": spec.in_channels,
        "activation": spec.activation.name(),
        "stages": net.stages,
        "spec": spec,
        "warnings": net.warnings,
    });
    if let Arch::RegNet(r) = &spec.arch {
        let w = r.widths()?;
        out["regnet"] = json!({
            "depth": r.depth, "w0": r.w0, "wa": r.wa, "wm": r.wm, "group_w": r.group_w,
            "bot_mul": r.bot_mul, "se_r": r.se_r, "rounding": r.rounding,
            "ws_cont": w.ws_cont, "ws_all": w.ws_all,
            "num_stages": w.num_stages, "total_stages": w.total_stages,
        });
    }
    if let Some(layers) = &info.layers {
        out["layers"] = serde_json::to_value(layers)?;
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn print_text(info: &Info) -> Result<()> {
    let (spec, cx, im) = (&info.spec, &info.cx, info.im);
    println!(
        "{}: {}, input {}x{im}x{im}, {} classes, {}",
        info.title,
        info.model_type,
        spec.in_channels,
        spec.num_classes,
        spec.activation.name()
    );
    if let Arch::RegNet(r) = &spec.arch {
        print_regnet(r)?;
    }
    print_stages(&info.net);
    println!(
        "\nflops {} ({})  params {} ({})  acts {} ({})",
        human(cx.flops, 1e9, " GF"),
        cx.flops,
        human(cx.params, 1e6, " M"),
        cx.params,
        human(cx.acts, 1e6, " M"),
        cx.acts
    );
    for w in &info.net.warnings {
        println!("warning: {w}");
    }
    if let Some(layers) = &info.layers {
        print_layers(layers);
    }
    Ok(())
}

/// The RegNet parameters and the per-block widths before and after quantization.
fn print_regnet(r: &RegNet) -> Result<()> {
    let w = r.widths()?;
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
    Ok(())
}

fn print_stages(net: &Network) {
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
}

fn print_layers(layers: &[LayerComplexity]) {
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
