//! Per-layer times: off by default, and when on, every conv of the plan is counted with the
//! multiply-adds the complexity count gives it.

mod common;

use common::random_state_dict;
use regnet_core::complexity::layer_complexity;
use regnet_core::network::Network;
use regnet_infer::CompiledNet;

#[test]
fn layer_times_count_every_conv_and_the_classifier() {
    let spec = regnet_core::zoo::lookup("RegNetX-200MF").unwrap().spec();
    let net = Network::from_spec(&spec).unwrap();
    let mut c = CompiledNet::compile(&net, &random_state_dict(&net, 3), 1e-5).unwrap();
    let (n, side) = (2, 40);
    let input = vec![0.5f32; n * 3 * side * side];
    c.forward(&input, [n, 3, side, side]).unwrap();
    assert!(c.layer_times().is_empty(), "off unless turned on");

    c.profile_layers(true);
    let forwards = 3;
    for _ in 0..forwards {
        c.forward(&input, [n, 3, side, side]).unwrap();
    }
    let layers = c.layer_times();
    assert!(
        layers.windows(2).all(|w| w[0].seconds >= w[1].seconds),
        "slowest first"
    );
    assert!(
        layers
            .iter()
            .all(|l| l.seconds > 0.0 && l.calls >= forwards)
    );
    assert!(
        layers
            .iter()
            .any(|l| l.layer == "conv 3x3 3->32 /2 at 40x40")
    );

    // Convs (no bias after BN folding in the count) and the fc, as regnet-core counts them.
    let rows = layer_complexity(&net, side, side);
    let conv_flops: u64 = rows
        .iter()
        .filter(|r| r.kind.starts_with("conv"))
        .map(|r| r.flops)
        .sum();
    let conv_macs: u64 = layers
        .iter()
        .filter(|l| l.layer.starts_with("conv"))
        .map(|l| l.macs)
        .sum();
    assert_eq!(conv_macs, forwards as u64 * n as u64 * conv_flops);
    let fc = rows.iter().find(|r| r.kind == "fc").unwrap();
    let head = layers
        .iter()
        .find(|l| l.layer.starts_with("pool + fc"))
        .unwrap();
    assert_eq!(head.calls, forwards);
    assert_eq!(head.macs, (forwards * n * fc.w_in * fc.w_out) as u64);

    c.profile_layers(false);
    assert!(c.layer_times().is_empty());
}
