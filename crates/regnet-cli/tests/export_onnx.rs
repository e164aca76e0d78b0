//! `regnet export --format onnx`: pycls checkpoints of every block type, stem, SE, ResNet and
//! EfficientNet, exported through the command line (BN kept and folded) and run in ONNX
//! Runtime (`target/onnx-venv`, made by `scripts/onnx-venv.sh`), give PyTorch's logits;
//! exports without weights match `regnet forward`; bad requests get one-line errors and leave
//! no file behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fails, ok};
use regnet_nn::weights::read_safetensors_tensors;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn checkpoints() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pycls_checkpoints")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
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

/// Runs `model` in ONNX Runtime (after `onnx.checker` with full checks) on the tensor
/// `input` of the safetensors file `io`; returns the logits.
fn ort_logits(model: &Path, io: &Path) -> Vec<f32> {
    ort_run(model, io).0
}

/// [`ort_logits`], and the model's metadata as `run_onnx.py` reports it.
fn ort_run(model: &Path, io: &Path) -> (Vec<f32>, serde_json::Value) {
    let (sd, _) = read_safetensors_tensors(io).unwrap();
    let x = sd.get("input").unwrap();
    let dir = model.parent().unwrap();
    let (input, output) = (dir.join("x.bin"), dir.join("y.bin"));
    let bytes: Vec<u8> = x.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&input, bytes).unwrap();
    let shape: Vec<String> = x.shape.iter().map(|d| d.to_string()).collect();
    let out = Command::new(python())
        .arg(workspace().join("tools/onnx/run_onnx.py"))
        .args([model, &input])
        .arg(shape.join(","))
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logits = std::fs::read(&output)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (logits, summary["metadata"].clone())
}

fn tensor(path: &Path, name: &str) -> Vec<f32> {
    let (sd, _) = read_safetensors_tensors(path).unwrap();
    sd.get(name).unwrap().data.clone()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
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

#[test]
fn pycls_checkpoints_run_in_onnxruntime() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(checkpoints())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 7);
    for dir in dirs {
        let io = dir.join("io.safetensors");
        let want = tensor(&io, "logits");
        let pyth = dir.join("model.pyth");
        for fold in [false, true] {
            let model = tmp.path().join("m.onnx");
            let mut args = vec!["export", "--weights", s(&pyth)];
            args.extend(["--format", "onnx", "--output", s(&model)]);
            if fold {
                args.push("--fold-bn");
            }
            let out = ok(&args);
            assert!(out.contains("ONNX opset 13"), "{out}");
            let d = max_diff(&ort_logits(&model, &io), &want);
            assert!(d < 1e-4, "{} (fold {fold}): max |diff| {d}", dir.display());
        }
    }
}

#[test]
fn initialised_export_matches_regnet_forward() {
    let tmp = tempfile::tempdir().unwrap();
    let t = |n: &str| tmp.path().join(n);
    let io = checkpoints().join("regnety_small/io.safetensors");
    let cfg = checkpoints().join("regnety_small/config.yaml");
    // The same initialisation (seed 3) as safetensors for `regnet forward` and as ONNX.
    let common = ["export", "--cfg", s(&cfg), "--seed", "3", "--output"];
    ok(&[&common[..], &[s(&t("w.safetensors"))]].concat());
    ok(&[
        &common[..],
        &[s(&t("m.onnx")), "--format", "onnx", "--image-size", "32"],
    ]
    .concat());
    let out = t("out.safetensors");
    ok(&[
        "forward",
        "--weights",
        s(&t("w.safetensors")),
        "--input",
        s(&io),
        "--output",
        s(&out),
    ]);
    let want = tensor(&out, "logits");
    let (got, meta) = ort_run(&t("m.onnx"), &io);
    let d = max_diff(&got, &want);
    assert!(d < 1e-4, "max |diff| {d}");
    // No data set in the config, three channels: ImageNet's normalization.
    assert_eq!(meta["mean"], "[0.485, 0.456, 0.406]");
    assert_eq!(meta["pixel_max"], "1");
    assert_eq!(meta["image_size"], "32");
    assert_eq!(meta["batch_norm"], "kept");
    // CIFAR-10 training data: pycls's CIFAR normalization, on the 0-255 scale.
    let cifar = t("cifar.onnx");
    ok(&[
        &common[..],
        &[s(&cifar), "--format", "onnx", "TRAIN.DATASET", "cifar10"],
    ]
    .concat());
    let (_, meta) = ort_run(&cifar, &io);
    assert_eq!(meta["mean"], "[125.3, 123, 113.9]");
    assert_eq!(meta["std"], "[63, 62.1, 66.7]");
    assert_eq!(meta["pixel_max"], "255");
    assert_eq!(meta["image_size"], "any");
}

#[test]
fn bad_requests_get_one_line_errors_and_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("m.onnx");
    let pyth = checkpoints().join("anynet_vanilla_cifar/model.pyth");

    let err = fails(&[
        "export",
        "RegNetX-200MF",
        "--format",
        "tflite",
        "--output",
        s(&model),
    ]);
    assert!(err.contains("unknown export format `tflite`"), "{err}");

    let nowhere = tmp.path().join("no/such/dir/m.onnx");
    let err = fails(&[
        "export",
        "RegNetX-200MF",
        "--format",
        "onnx",
        "--output",
        s(&nowhere),
    ]);
    assert!(
        err.contains(s(&nowhere)) && err.contains("No such file"),
        "{err}"
    );

    let err = fails(&[
        "export",
        "RegNetX-200MF",
        "--weights",
        s(&pyth),
        "--format",
        "onnx",
        "--output",
        s(&model),
    ]);
    assert!(
        err.contains(s(&pyth)) && err.contains("do not match"),
        "{err}"
    );

    let err = fails(&[
        "export",
        "RegNetX-200MF",
        "--fold-bn",
        "--output",
        s(&model),
    ]);
    assert!(err.contains("--format onnx only"), "{err}");

    // Nothing was written, not even a temporary file.
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
