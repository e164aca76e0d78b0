//! `regnet info` and `regnet zoo` end to end: pycls's numbers through the command line, and
//! clean one-line errors for bad configs.

mod common;

use common::{fails, ok, reference_dir};
use serde_json::Value;

fn info_json(args: &[&str]) -> Value {
    let mut all = vec!["info", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(&all)).unwrap()
}

fn cx(v: &Value) -> [u64; 3] {
    ["flops", "params", "acts"].map(|k| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}")))
}

#[test]
fn info_json_of_pycls_configs_matches_golden() {
    let reference = reference_dir().join("pycls");
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(reference.join("model_complexity.json")).unwrap(),
    )
    .unwrap();
    let mut n = 0;
    for (key, want) in golden.as_object().unwrap() {
        let path = reference.join(key);
        if !path.is_file() {
            continue; // archived ImageNet configs: covered by regnet-core's tests
        }
        let v = info_json(&["--cfg", path.to_str().unwrap()]);
        assert_eq!(cx(&v), cx(want), "{key}");
        n += 1;
    }
    assert!(n >= 41, "{n} configs checked");
}

#[test]
fn info_json_has_the_documented_fields() {
    let path =
        reference_dir().join("pycls/configs/dds_baselines/regnetx/RegNetX-200MF_dds_8gpu.yaml");
    let v = info_json(&["--cfg", path.to_str().unwrap()]);
    assert_eq!(v["num_classes"], 1000);
    let stages = v["stages"].as_array().unwrap();
    let widths: Vec<u64> = stages
        .iter()
        .map(|s| s["width"].as_u64().unwrap())
        .collect();
    assert_eq!(widths, [24, 56, 152, 368]);
    for s in stages {
        for k in ["depth", "width", "stride", "bot_mul", "group_w"] {
            assert!(s.get(k).is_some(), "stage lacks {k}: {s}");
        }
    }
    assert_eq!(v["regnet"]["ws_all"].as_array().unwrap().len(), 13);
}

#[test]
fn zoo_names_and_overrides() {
    // Overrides change the input size; complexity follows.
    let a = info_json(&["RegNetY-800MF"]);
    let b = info_json(&["RegNetY-800MF", "TRAIN.IM_SIZE", "160"]);
    assert_eq!(a["params"], b["params"]);
    assert!(b["flops"].as_u64() < a["flops"].as_u64());
    // torchvision rounding differs for regnet_y_800mf.
    let tv = info_json(&["regnet_y_800mf"]);
    assert_ne!(tv["stages"], a["stages"]);
    // Overrides without a model, and a file plus overrides.
    let v = info_json(&[
        "MODEL.TYPE",
        "regnet",
        "REGNET.DEPTH",
        "14",
        "MODEL.NUM_CLASSES",
        "10",
    ]);
    assert_eq!(v["num_classes"], 10);
    let layers = info_json(&["RegNetX-200MF", "--layers"]);
    let rows = layers["layers"].as_array().unwrap();
    let sum: u64 = rows.iter().map(|r| r["flops"].as_u64().unwrap()).sum();
    assert_eq!(sum, layers["flops"].as_u64().unwrap());
}

#[test]
fn random_pycls_configs_through_the_cli() {
    // Every 8th random case of regnet-core's pycls cases, as a file given to --cfg.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../regnet-core/tests/data/pycls_random_cases.json");
    let cases: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for (i, case) in cases.as_array().unwrap().iter().enumerate().step_by(8) {
        let file = dir.path().join(format!("case{i}.yaml"));
        std::fs::write(&file, case["yaml"].as_str().unwrap()).unwrap();
        let f = file.to_str().unwrap();
        if case["complexity"].is_object() {
            assert_eq!(
                cx(&info_json(&["--cfg", f])),
                cx(&case["complexity"]),
                "case {i}"
            );
            n += 1;
        } else {
            let err = fails(&["info", "--cfg", f]);
            assert!(err.contains(f), "error names the file: {err}");
        }
    }
    assert!(n > 20);
}

#[test]
fn zoo_lists_every_model() {
    let out = ok(&["zoo"]);
    for name in [
        "RegNetX-200MF",
        "RegNetY-32GF",
        "ResNeXt-152",
        "EfficientNet-B5",
    ] {
        assert!(out.contains(name), "{name} missing");
    }
    let v: Value = serde_json::from_str(&ok(&["zoo", "--json"])).unwrap();
    let models = v.as_array().unwrap();
    assert_eq!(models.len(), 36);
    let x200 = &models[0];
    assert_eq!(x200["name"], "RegNetX-200MF");
    assert_eq!(cx(x200), [199_040_872, 2_684_792, 2_164_056]);
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn bad_configs_give_one_line_errors_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let regnet = "MODEL:\n  TYPE: regnet\nREGNET:\n";
    let cases: &[(&str, String, &[&str])] = &[
        ("typo.yaml", format!("{regnet}  DEPHT: 13\n"), &["REGNET.DEPHT", "did you mean REGNET.DEPTH"]),
        ("type.yaml", format!("{regnet}  DEPTH: thirteen\n"), &["REGNET.DEPTH", "invalid type"]),
        ("w0.yaml", format!("{regnet}  W0: 20\n"), &["REGNET", "w0 = 20", "multiple of 8"]),
        ("wm.yaml", format!("{regnet}  WM: 1.0\n"), &["REGNET", "wm = 1"]),
        ("wa.yaml", format!("{regnet}  WA: -3.0\n"), &["REGNET", "wa = -3"]),
        ("depth.yaml", format!("{regnet}  DEPTH: 0\n"), &["REGNET", "depth"]),
        ("stem.yaml", format!("{regnet}  STEM_TYPE: res_stem\n"), &["REGNET.STEM_TYPE", "res_stem"]),
        (
            "groups.yaml",
            "MODEL:\n  TYPE: anynet\nANYNET:\n  BLOCK_TYPE: res_bottleneck_block\n  DEPTHS: [1]\n  WIDTHS: [64]\n  STRIDES: [2]\n  BOT_MULS: [0.25]\n  GROUP_WS: [24]\n".into(),
            &["ANYNET", "group width 24", "bottleneck width 16"],
        ),
        (
            "zerodepth.yaml",
            "MODEL:\n  TYPE: anynet\nANYNET:\n  BLOCK_TYPE: vanilla_block\n  DEPTHS: [1, 0]\n  WIDTHS: [16, 32]\n  STRIDES: [1, 2]\n".into(),
            &["ANYNET", "stage 2", "depth"],
        ),
        (
            "lengths.yaml",
            "MODEL:\n  TYPE: anynet\nANYNET:\n  DEPTHS: [1, 2]\n  WIDTHS: [16]\n  STRIDES: [1, 2]\n".into(),
            &["ANYNET.WIDTHS", "1 entries"],
        ),
        ("width.yaml", "MODEL:\n  TYPE: anynet\nANYNET:\n  BLOCK_TYPE: vanilla_block\n  DEPTHS: [1]\n  WIDTHS: [0]\n  STRIDES: [1]\n".into(), &["ANYNET", "width"]),
        ("syntax.yaml", "MODEL: [regnet\n".into(), &["<yaml>"]),
        ("notype.yaml", "REGNET:\n  DEPTH: 13\n".into(), &["MODEL.TYPE"]),
        ("act.yaml", "MODEL:\n  TYPE: regnet\n  ACTIVATION_FUN: gelu\n".to_string(), &["MODEL.ACTIVATION_FUN", "gelu"]),
    ];
    for (name, text, needles) in cases {
        let f = write(&dir, name, text);
        let err = fails(&["info", "--cfg", &f]);
        assert!(
            err.contains(&f),
            "{name}: error does not name the file: {err}"
        );
        for n in *needles {
            assert!(err.contains(n), "{name}: error lacks `{n}`: {err}");
        }
    }
    let err = fails(&["info", "--cfg", "/nonexistent/x.yaml"]);
    assert!(err.contains("/nonexistent/x.yaml"), "{err}");
    let err = fails(&["info", "RegNetX-200MF", "REGNET.DEPTH"]);
    assert!(
        err.contains("REGNET.DEPTH") || err.contains("RegNetX-200MF"),
        "{err}"
    );
    let err = fails(&["info", "RegNetZ-200MF"]);
    assert!(
        err.contains("RegNetZ-200MF") && err.contains("did you mean"),
        "{err}"
    );
    let err = fails(&["info", "RegNetX-200MF", "REGNET.W0", "12"]);
    assert!(
        err.contains("command line") && err.contains("w0 = 12"),
        "{err}"
    );
}
