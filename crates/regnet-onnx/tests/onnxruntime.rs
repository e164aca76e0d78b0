//! Exported models of every family, run in ONNX Runtime (the Python wheel in
//! `target/onnx-venv`, made by `scripts/onnx-venv.sh`): `onnx.checker` with full checks
//! passes, and the logits are within 1e-4 of regnet's own burn forward, with the batch norms
//! kept and folded; on the shared PyTorch fixtures, within 1e-4 of PyTorch's float64 logits.

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use regnet_core::network::{Network, ParamKind};
use regnet_core::spec::{Activation, AnyNet, Arch, BlockType, NetSpec, Stage, StemType};
use regnet_nn::conv::{from_tensor, to_tensor};
use regnet_nn::init::init_state_dict;
use regnet_nn::layers::BnSettings;
use regnet_nn::weights::read_safetensors_tensors;
use regnet_nn::{Model, StateDict, TensorF32, device};
use regnet_onnx::{BatchNorm, ExportOptions, InputConvention, to_onnx, write_onnx};
use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's Python; fails (never skips) with how to create it when it is missing.
fn python() -> PathBuf {
    let py = workspace().join("target/onnx-venv/bin/python");
    let works = Command::new(&py)
        .args(["-c", "import onnx, onnxruntime, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        works,
        "ONNX Runtime venv missing or broken at {}: create it with scripts/onnx-venv.sh \
         (or scripts/setup.sh --no-build)",
        py.display()
    );
    py
}

/// What the Python side reports, and the logits it computed.
struct OrtRun {
    summary: Value,
    logits: Vec<f32>,
}

/// Runs `model` on `x` in ONNX Runtime (graph optimisations on or off).
fn run_ort(model: &Path, x: &TensorF32, optimize: bool) -> OrtRun {
    let dir = model.parent().unwrap();
    let input = dir.join("input.bin");
    let output = dir.join("logits.bin");
    let bytes: Vec<u8> = x.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&input, bytes).unwrap();
    let shape: Vec<String> = x.shape.iter().map(|d| d.to_string()).collect();
    let out = Command::new(python())
        .arg(workspace().join("tools/onnx/run_onnx.py"))
        .args([model, &input])
        .arg(shape.join(","))
        .arg(&output)
        .args(["--optimize", if optimize { "all" } else { "none" }])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        model.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let logits = std::fs::read(&output)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    OrtRun {
        summary: serde_json::from_slice(&out.stdout).unwrap(),
        logits,
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    // f32::max ignores NaN: a non-finite logit must fail, not compare as equal.
    assert!(
        a.iter().chain(b).all(|v| v.is_finite()),
        "non-finite logits"
    );
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// pycls-initialised weights with non-trivial BN statistics and fc bias, so that folding and
/// every BN input matter, and an fc 10 times pycls's N(0, 0.01), so that the logits are of
/// order 1 and a 1e-4 tolerance is tight. The final BN of each residual branch gets a small
/// gamma (as in the zero-init-gamma practice) so that deep ResNets do not blow up.
fn weights(spec: &NetSpec, seed: u64) -> StateDict {
    let net = Network::from_spec(spec).unwrap();
    let mut sd = init_state_dict(&net, seed, false);
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 1);
    for p in net.parameters() {
        let range = match p.kind {
            ParamKind::BnWeight { final_bn: true } => 0.2..0.6,
            ParamKind::BnWeight { .. } => 0.5..1.5,
            ParamKind::BnBias | ParamKind::BnRunningMean | ParamKind::FcBias => -0.2..0.2,
            ParamKind::BnRunningVar => 0.5..2.0,
            ParamKind::FcWeight => {
                let t = sd.tensors.get_mut(&p.name).unwrap();
                t.data.iter_mut().for_each(|v| *v *= 30.0);
                continue;
            }
            _ => continue,
        };
        let t = sd.tensors.get_mut(&p.name).unwrap();
        t.data
            .iter_mut()
            .for_each(|v| *v = rng.random_range(range.clone()));
    }
    sd
}

fn random_input(shape: [usize; 4], seed: u64) -> TensorF32 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = shape.iter().product();
    let data = (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect();
    TensorF32::new(shape.to_vec(), data)
}

/// regnet's own eval-mode logits.
fn burn_logits(spec: &NetSpec, sd: &StateDict, x: &TensorF32) -> TensorF32 {
    let dev = device::cpu();
    let model = Model::from_state_dict(spec, sd, BnSettings::default(), &dev, "test").unwrap();
    from_tensor(model.forward(to_tensor::<4>(x, &dev)))
}

/// Exports `spec` with BN kept and folded, runs both in ONNX Runtime on `x`, compares with
/// `want`, and checks the declared shapes, opset, operators and metadata.
fn check(
    name: &str,
    spec: &NetSpec,
    sd: &StateDict,
    x: &TensorF32,
    want: &[f32],
    opts: ExportOptions,
) {
    let tmp = tempfile::tempdir().unwrap();
    for bn in [BatchNorm::Keep, BatchNorm::Fold] {
        let opts = ExportOptions {
            batch_norm: bn,
            ..opts.clone()
        };
        let model = to_onnx(spec, sd, &opts, name).unwrap();
        let path = tmp.path().join(format!("{name}.onnx"));
        write_onnx(&path, &model).unwrap();
        // Kept BNs run unoptimised (ONNX Runtime would fuse them); folded ones as deployed.
        let run = run_ort(&path, x, bn == BatchNorm::Fold);
        let d = max_abs_diff(&run.logits, want);
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        eprintln!("{name} ({bn:?}): max |logit| {scale:.3}, max |diff| {d:.2e}");
        assert!(d < 1e-4, "{name} ({bn:?}): max |diff| {d}");
        let s = &run.summary;
        assert_eq!(s["opset"], serde_json::json!([["", 13]]), "{name}");
        assert_eq!(s["ir_version"], 7);
        let hw = match opts.image_size {
            Some(n) => serde_json::json!([n, n]),
            None => serde_json::json!(["height", "width"]),
        };
        let c = spec.in_channels;
        assert_eq!(
            s["input"],
            serde_json::json!(["input", ["batch", c, hw[0], hw[1]]])
        );
        assert_eq!(
            s["output"],
            serde_json::json!(["logits", ["batch", spec.num_classes]])
        );
        assert_eq!(
            s["logits_shape"],
            serde_json::json!([x.shape[0], spec.num_classes])
        );
        let meta = &s["metadata"];
        let back: NetSpec = serde_json::from_str(meta["regnet_spec"].as_str().unwrap()).unwrap();
        assert_eq!(&back, spec, "{name}: spec in the metadata");
        assert_eq!(meta["channel_order"], "rgb");
        let kept = bn == BatchNorm::Keep;
        assert_eq!(meta["batch_norm"], if kept { "kept" } else { "folded" });
        let ops: Vec<&str> = s["ops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap())
            .collect();
        assert_eq!(ops.contains(&"BatchNormalization"), kept, "{name}: {ops:?}");
    }
}

/// Checks a spec against regnet's own forward on `batch` random images of side `size`.
fn against_burn(name: &str, spec: &NetSpec, size: usize, opts: ExportOptions) {
    let sd = weights(spec, 3);
    let x = random_input([2, spec.in_channels, size, size], 5);
    let want = burn_logits(spec, &sd, &x);
    assert_eq!(want.shape, [2, spec.num_classes]);
    check(name, spec, &sd, &x, &want.data, opts);
}

fn zoo(name: &str) -> NetSpec {
    regnet_core::zoo::lookup(name).unwrap().spec()
}

#[allow(clippy::too_many_arguments)]
fn anynet(
    stem: StemType,
    block: BlockType,
    act: Activation,
    c: usize,
    classes: usize,
    bot_mul: Option<f64>,
    group_w: Option<usize>,
    se_r: f64,
) -> NetSpec {
    let stage = |depth, width, stride| Stage {
        depth,
        width,
        stride,
        bot_mul,
        group_w,
    };
    NetSpec {
        in_channels: c,
        num_classes: classes,
        activation: act,
        arch: Arch::AnyNet(AnyNet {
            stem_type: stem,
            stem_w: 16,
            block_type: block,
            stages: vec![stage(1, 16, 1), stage(2, 32, 2), stage(1, 48, 2)],
            se_r,
            head_w: 0,
            stride_1x1: false,
        }),
    }
}

#[test]
fn regnetx_and_regnety() {
    against_burn(
        "regnetx_200mf",
        &zoo("RegNetX-200MF"),
        64,
        ExportOptions::default(),
    );
    against_burn(
        "regnety_200mf",
        &zoo("RegNetY-200MF"),
        64,
        ExportOptions::default(),
    );
}

#[test]
fn resnet_and_resnext() {
    against_burn("resnet50", &zoo("ResNet-50"), 64, ExportOptions::default());
    against_burn(
        "resnext50",
        &zoo("ResNeXt-50"),
        64,
        ExportOptions::default(),
    );
}

#[test]
fn efficientnet_silu_depthwise() {
    against_burn(
        "effnet_b0",
        &zoo("EfficientNet-B0"),
        64,
        ExportOptions::default(),
    );
}

#[test]
fn anynet_every_stem_and_block() {
    use BlockType::*;
    use StemType::*;
    let relu = Activation::Relu;
    let cases = [
        (
            "vanilla_cifar",
            anynet(ResStemCifar, VanillaBlock, relu, 3, 10, None, None, 0.0),
        ),
        (
            "basic_simple_silu",
            anynet(
                SimpleStemIn,
                ResBasicBlock,
                Activation::Silu,
                3,
                10,
                None,
                None,
                0.0,
            ),
        ),
        (
            "bottleneck_res_se",
            anynet(
                ResStemIn,
                ResBottleneckBlock,
                relu,
                3,
                10,
                Some(0.5),
                Some(8),
                0.25,
            ),
        ),
        (
            "linear_bottleneck",
            anynet(
                SimpleStemIn,
                ResBottleneckLinearBlock,
                relu,
                3,
                10,
                Some(2.0),
                Some(16),
                0.0,
            ),
        ),
    ];
    for (name, spec) in cases {
        against_burn(name, &spec, 32, ExportOptions::default());
    }
}

#[test]
fn stride_1x1_head_conv_one_channel_odd_classes() {
    let mut spec = anynet(
        StemType::SimpleStemIn,
        BlockType::ResBottleneckBlock,
        Activation::Silu,
        1,
        7,
        Some(1.0),
        Some(4),
        0.25,
    );
    if let Arch::AnyNet(a) = &mut spec.arch {
        a.stride_1x1 = true;
        a.head_w = 40;
    }
    let input = InputConvention {
        mean: vec![0.286],
        std: vec![0.353],
        ..InputConvention::imagenet()
    };
    let opts = ExportOptions {
        input,
        ..ExportOptions::default()
    };
    against_burn("gray_7_classes", &spec, 28, opts);
}

#[test]
fn fixed_image_size() {
    let spec = anynet(
        StemType::ResStemCifar,
        BlockType::ResBasicBlock,
        Activation::Relu,
        3,
        10,
        None,
        None,
        0.0,
    );
    let opts = ExportOptions {
        image_size: Some(32),
        ..ExportOptions::default()
    };
    against_burn("fixed_32", &spec, 32, opts);
}

/// A shared fixture (`../shared/reference/fixtures`): spec, weights, input, PyTorch's f64
/// logits.
fn fixture(file: &str, spec: NetSpec) {
    let dir = std::env::var("REGNET_REFERENCE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("../shared/reference"));
    let (mut sd, _) = read_safetensors_tensors(&dir.join("fixtures").join(file))
        .unwrap_or_else(|e| panic!("{e} (set REGNET_REFERENCE)"));
    let x = sd.tensors.remove("input").unwrap();
    let want = sd.tensors.remove("logits_f64").unwrap();
    sd.tensors.retain(|k, _| !k.starts_with("logits"));
    check(file, &spec, &sd, &x, &want.data, ExportOptions::default());
}

#[test]
fn pytorch_fixtures() {
    fixture("regnetx_200mf.safetensors", zoo("RegNetX-200MF"));
    fixture("regnety_200mf.safetensors", zoo("RegNetY-200MF"));
    let stage = |width, stride| Stage {
        depth: 1,
        width,
        stride,
        bot_mul: Some(1.0),
        group_w: Some(8),
    };
    let tiny = NetSpec {
        in_channels: 3,
        num_classes: 10,
        activation: Activation::Relu,
        arch: Arch::AnyNet(AnyNet {
            stem_type: StemType::ResStemCifar,
            stem_w: 16,
            block_type: BlockType::ResBottleneckBlock,
            stages: vec![stage(16, 1), stage(32, 2), stage(64, 2)],
            se_r: 0.0,
            head_w: 0,
            stride_1x1: false,
        }),
    };
    fixture("tiny_cifar_anynet.safetensors", tiny);
}

#[test]
fn bad_requests_are_errors() {
    let spec = zoo("RegNetX-200MF");
    let other = weights(&zoo("RegNetY-200MF"), 1);
    let opts = ExportOptions::default();
    let err = to_onnx(&spec, &other, &opts, "y.pyth")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("y.pyth: weights do not match"), "{err}");
    let sd = weights(&spec, 1);
    let bad_input = InputConvention {
        mean: vec![0.5, 0.5],
        ..InputConvention::imagenet()
    };
    let opts = ExportOptions {
        input: bad_input,
        ..ExportOptions::default()
    };
    let err = to_onnx(&spec, &sd, &opts, "w").unwrap_err().to_string();
    assert!(
        err.contains("2 means and 3 stds for 3 input channels"),
        "{err}"
    );
    let opts = ExportOptions {
        image_size: Some(0),
        ..ExportOptions::default()
    };
    assert!(to_onnx(&spec, &sd, &opts, "w").is_err());
    // An unwritable path is an error naming it, and leaves nothing behind.
    let model = to_onnx(&spec, &sd, &ExportOptions::default(), "w").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("missing/m.onnx");
    let err = write_onnx(&path, &model).unwrap_err().to_string();
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
