//! `regnet forward` and `regnet export` against PyTorch: pycls checkpoints of every block
//! type, stem, SE, bottleneck multipliers below and above 1, the ResNet and EfficientNet
//! model types; plus the error cases.

mod common;

use std::path::{Path, PathBuf};

use common::{fails, ok};
use regnet_nn::weights::read_safetensors_tensors;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pycls_checkpoints")
}

fn models() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    assert_eq!(v.len(), 7);
    v
}

fn tensor(path: &Path, name: &str) -> Vec<f32> {
    let (sd, _) = read_safetensors_tensors(path).unwrap();
    sd.get(name)
        .unwrap_or_else(|| panic!("{name} in {}", path.display()))
        .data
        .clone()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn pycls_checkpoints_give_pytorch_logits() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in models() {
        let name = dir.file_name().unwrap().to_str().unwrap();
        let io = dir.join("io.safetensors");
        let out = tmp.path().join(format!("{name}.safetensors"));
        // The model from the config inside the checkpoint ...
        ok(&[
            "forward",
            "--weights",
            s(&dir.join("model.pyth")),
            "--input",
            s(&io),
            "--output",
            s(&out),
        ]);
        let d = max_diff(&tensor(&out, "logits"), &tensor(&io, "logits"));
        assert!(d < 1e-4, "{name}: max |diff| {d}");
        // ... and from the config.yaml pycls wrote next to it, with the EMA weights.
        let cfg = dir.join("config.yaml");
        ok(&[
            "forward",
            "--cfg",
            s(&cfg),
            "--weights",
            s(&dir.join("model.pyth")),
            "--ema",
            "--input",
            s(&io),
            "--output",
            s(&out),
        ]);
        let d = max_diff(&tensor(&out, "logits"), &tensor(&io, "logits_ema"));
        assert!(d < 1e-4, "{name} (ema): max |diff| {d}");
    }
}

#[test]
fn exported_safetensors_reload_without_config() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data().join("anynet_bottleneck_se_resstem");
    let exported = tmp.path().join("model.safetensors");
    ok(&[
        "export",
        "--weights",
        s(&dir.join("model.pyth")),
        "--output",
        s(&exported),
    ]);
    let out = tmp.path().join("out.safetensors");
    let io = dir.join("io.safetensors");
    ok(&[
        "forward",
        "--weights",
        s(&exported),
        "--input",
        s(&io),
        "--output",
        s(&out),
    ]);
    assert!(max_diff(&tensor(&out, "logits"), &tensor(&io, "logits")) < 1e-4);
    // BGR weights exported for RGB input: feeding channel-reversed input gives the same logits.
    let rgb = tmp.path().join("rgb.safetensors");
    ok(&[
        "export",
        "--weights",
        s(&dir.join("model.pyth")),
        "--bgr",
        "--output",
        s(&rgb),
    ]);
    let (io_sd, _) = read_safetensors_tensors(&io).unwrap();
    let x = io_sd.get("input").unwrap();
    let (n, c, hw) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3]);
    let mut flipped = x.clone();
    for i in 0..n {
        for ch in 0..c {
            let src = (i * c + ch) * hw;
            let dst = (i * c + (c - 1 - ch)) * hw;
            flipped.data[dst..dst + hw].copy_from_slice(&x.data[src..src + hw]);
        }
    }
    let mut sd = regnet_nn::StateDict::default();
    sd.insert("input", flipped);
    let flipped_in = tmp.path().join("flipped.safetensors");
    write(&flipped_in, &sd);
    ok(&[
        "forward",
        "--weights",
        s(&rgb),
        "--input",
        s(&flipped_in),
        "--output",
        s(&out),
    ]);
    assert!(max_diff(&tensor(&out, "logits"), &tensor(&io, "logits")) < 1e-4);
}

fn write(path: &Path, sd: &regnet_nn::StateDict) {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = sd
        .tensors
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                t.data.iter().flat_map(|x| x.to_le_bytes()).collect(),
                t.shape.clone(),
            )
        })
        .collect();
    let views: Vec<_> = bytes
        .iter()
        .map(|(n, b, s)| {
            (
                n.as_str(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// The error of `regnet forward [model] --weights weights --input input --output out`.
fn forward_error(model: Option<&str>, weights: &Path, input: &Path, out: &Path) -> String {
    let mut args = vec!["forward"];
    args.extend(model);
    args.extend([
        "--weights",
        s(weights),
        "--input",
        s(input),
        "--output",
        s(out),
    ]);
    fails(&args)
}

#[test]
fn errors_name_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data().join("anynet_vanilla_cifar");
    let pyth = dir.join("model.pyth");
    let io = dir.join("io.safetensors");
    let out = tmp.path().join("o.safetensors");

    // The wrong model for the weights: missing, unexpected and wrongly shaped keys, with shapes.
    let err = forward_error(Some("RegNetX-200MF"), &pyth, &io, &out);
    assert!(
        err.contains(s(&pyth)) && err.contains("missing") && err.contains("unexpected"),
        "{err}"
    );
    assert!(
        err.contains("wrongly shaped")
            && err.contains("stem.conv.weight model [32, 3, 3, 3] file [16, 3, 3, 3]"),
        "{err}"
    );

    // Truncated checkpoint, random bytes, empty file.
    let bytes = std::fs::read(&pyth).unwrap();
    let truncated = tmp.path().join("truncated.pyth");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = forward_error(None, &truncated, &io, &out);
    assert!(err.contains(s(&truncated)), "{err}");
    let random = tmp.path().join("random.bin");
    std::fs::write(
        &random,
        (0..5000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let err = forward_error(None, &random, &io, &out);
    assert!(
        err.contains(s(&random)) && err.contains("not a safetensors file or a PyTorch checkpoint"),
        "{err}"
    );
    let truncated_st = tmp.path().join("truncated.safetensors");
    let st = std::fs::read(&io).unwrap();
    std::fs::write(&truncated_st, &st[..st.len() - 100]).unwrap();
    let err = forward_error(None, &pyth, &truncated_st, &out);
    assert!(err.contains(s(&truncated_st)), "{err}");

    // An input file without `input`.
    let mut sd = regnet_nn::StateDict::default();
    sd.insert(
        "x",
        regnet_nn::TensorF32::new(vec![1, 3, 32, 32], vec![0.0; 3 * 32 * 32]),
    );
    let no_input = tmp.path().join("noinput.safetensors");
    write(&no_input, &sd);
    let err = forward_error(None, &pyth, &no_input, &out);
    assert!(err.contains("no tensor named `input`"), "{err}");
    assert!(!out.exists(), "nothing is written on error");

    // A state dict with no config needs a model name.
    let effnet = data()
        .join("../../../../regnet-cli/tests/data/pycls_checkpoints/effnet_small/io.safetensors");
    let err = forward_error(None, &effnet, &io, &out);
    assert!(err.contains("does not say which model"), "{err}");
}
