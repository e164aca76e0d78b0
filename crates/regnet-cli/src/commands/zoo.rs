//! `regnet zoo`: the model zoo as a table (or JSON).

use anyhow::Result;
use regnet_core::complexity::complexity;
use regnet_core::network::Network;
use regnet_core::zoo;
use serde_json::json;

/// Arguments of `regnet zoo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `regnet zoo`.
pub fn run(args: Args) -> Result<()> {
    let mut rows = Vec::new();
    for m in zoo::models() {
        let cfg = m.config();
        let net = Network::from_spec(&cfg.spec()?)?;
        let cx = complexity(&net, cfg.im_size(), cfg.im_size());
        rows.push((m, cfg.im_size(), cx));
    }
    if args.json {
        let out: Vec<_> = rows
            .iter()
            .map(|(m, im, cx)| {
                json!({
                    "name": m.name,
                    "timm": m.timm,
                    "timm_tv": m.tv.0,
                    "torchvision": m.tv.1,
                    "im_size": im,
                    "flops": cx.flops,
                    "params": cx.params,
                    "acts": cx.acts,
                    "top1_err": m.top1_err,
                    "top5_err": m.top5_err,
                    "train_fw_bw_time": m.timing.train_fw_bw,
                    "test_fw_time": m.timing.test_fw,
                    "pycls_weights": format!("https://dl.fbaipublicfiles.com/pycls/{}", m.pycls_weights),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{:<16} {:>9} {:>10} {:>8} {:>7} {:>7} {:>9}  aliases",
        "model", "flops(B)", "params(M)", "acts(M)", "top1", "top5", "time(ms)"
    );
    for (m, _, cx) in &rows {
        let aliases: Vec<&str> = [m.timm, m.tv.0, m.tv.1].into_iter().flatten().collect();
        println!(
            "{:<16} {:>9.1} {:>10.1} {:>8.1} {:>7.2} {:>7.2} {:>9.1}  {}",
            m.name,
            cx.flops as f64 / 1e9,
            cx.params as f64 / 1e6,
            cx.acts as f64 / 1e6,
            m.top1_err,
            m.top5_err,
            m.timing.train_fw_bw * 1e3,
            aliases.join(", ")
        );
    }
    println!(
        "\nflops, params, acts at each model's TRAIN.IM_SIZE; top-1/top-5 ImageNet error (%) of \
         pycls's weights; time: pycls's fw+bw per iteration on a V100."
    );
    Ok(())
}
