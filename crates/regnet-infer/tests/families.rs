//! The compiled path against the burn model's eval forward, for every model family, stem,
//! block type and activation, batch 1 and odd input sizes, at every SIMD level this CPU
//! supports (portable always). Metric: `max |compiled - burn| / max |burn|` over all logits
//! of a batch, below 1e-5.

mod common;

use common::check_spec;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use regnet_core::spec::{Activation, AnyNet, Arch, BlockType, NetSpec, Stage, StemType};

fn zoo(name: &str, shapes: &[[usize; 4]]) {
    let spec = regnet_core::zoo::lookup(name).unwrap().spec();
    let e = check_spec(&spec, shapes, 7);
    eprintln!("{name}: worst relative error {e:e}");
}

/// The batch of 8 at 112x112 runs its 7x7 grouped convs with Winograd's F(4x4, 3x3)
/// (the smaller ones with F(2x2, 3x3)).
#[test]
fn regnetx() {
    zoo(
        "RegNetX-200MF",
        &[[1, 3, 33, 33], [2, 3, 57, 45], [8, 3, 112, 112]],
    );
}

/// A batch whose stem output exceeds the one-image threshold (65x65x32 values per image):
/// the leading blocks run image by image, the rest on the whole batch (even and odd batches).
#[test]
fn regnetx_batch_with_per_image_front() {
    zoo("RegNetX-200MF", &[[2, 3, 130, 129], [3, 3, 131, 130]]);
}

/// The batch of 8 at 100x100 runs its 7x7 grouped convs with F(4x4, 3x3).
#[test]
fn regnety_with_se() {
    zoo(
        "RegNetY-200MF",
        &[[1, 3, 57, 57], [3, 3, 33, 40], [8, 3, 100, 100]],
    );
}

#[test]
fn resnet() {
    zoo("ResNet-50", &[[1, 3, 33, 33], [2, 3, 45, 38]]);
}

#[test]
fn resnext() {
    zoo("ResNeXt-50", &[[1, 3, 33, 33]]);
}

#[test]
fn efficientnet() {
    zoo("EfficientNet-B0", &[[1, 3, 33, 33], [2, 3, 57, 41]]);
}

/// A small random AnyNet of the given stem, block and activation.
fn random_anynet(
    stem: StemType,
    block: BlockType,
    act: Activation,
    rng: &mut ChaCha8Rng,
) -> NetSpec {
    let group_ws = [1usize, 2, 3, 4, 8, 16, 24];
    let n_stages = rng.random_range(1..=3);
    let mut stages = Vec::new();
    let mut width = 8;
    for _ in 0..n_stages {
        width += 8 * rng.random_range(0..=3);
        let bot_mul = [0.25, 0.5, 1.0, 2.0][rng.random_range(0..4)];
        let w_b = ((width as f64) * bot_mul).round() as usize;
        let candidates: Vec<usize> = group_ws
            .iter()
            .copied()
            .filter(|g| w_b.is_multiple_of(*g))
            .collect();
        stages.push(Stage {
            depth: rng.random_range(1..=2),
            width,
            stride: rng.random_range(1..=2),
            bot_mul: Some(bot_mul),
            group_w: Some(candidates[rng.random_range(0..candidates.len())]),
        });
    }
    let bottleneck = matches!(
        block,
        BlockType::ResBottleneckBlock | BlockType::ResBottleneckLinearBlock
    );
    NetSpec {
        in_channels: 3,
        num_classes: rng.random_range(2..20),
        activation: act,
        arch: Arch::AnyNet(AnyNet {
            stem_type: stem,
            stem_w: 8 * rng.random_range(1..=3),
            block_type: block,
            stages,
            se_r: if bottleneck && rng.random_bool(0.5) {
                0.25
            } else {
                0.0
            },
            head_w: if rng.random_bool(0.3) { 24 } else { 0 },
            stride_1x1: bottleneck && rng.random_bool(0.3),
        }),
    }
}

#[test]
fn random_anynets_every_stem_block_and_activation() {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let stems = [
        StemType::SimpleStemIn,
        StemType::ResStemIn,
        StemType::ResStemCifar,
    ];
    let blocks = [
        BlockType::VanillaBlock,
        BlockType::ResBasicBlock,
        BlockType::ResBottleneckBlock,
        BlockType::ResBottleneckLinearBlock,
    ];
    let mut cases = 0;
    for stem in stems {
        for block in blocks {
            for act in [Activation::Relu, Activation::Silu] {
                let spec = random_anynet(stem, block, act, &mut rng);
                let seed = rng.random_range(0..1000);
                check_spec(&spec, &[[1, 3, 33, 33], [3, 3, 21, 26]], seed);
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 24);
}
