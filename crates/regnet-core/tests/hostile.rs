//! Hostile and broken input (issue 10): sizes from configs, overrides and spec metadata are
//! bounded before anything is allocated, complexity never wraps, YAML nesting is bounded in
//! time, and messages are one line without repeating themselves.

use std::time::{Duration, Instant};

use regnet_core::complexity::{complexity, try_complexity};
use regnet_core::config::Config;
use regnet_core::error::Origin;
use regnet_core::limits::{MAX_BLOCKS, MAX_IM_SIZE, MAX_WIDTH};
use regnet_core::network::Network;
use regnet_core::spec::NetSpec;
use regnet_core::zoo;

/// The error of applying `pairs` to a RegNet config and building its network.
fn override_err(pairs: &[&str]) -> String {
    let mut cfg = zoo::lookup("RegNetX-200MF").unwrap().config();
    let e = match cfg.merge_overrides(pairs) {
        Err(e) => e,
        Ok(()) => cfg.network().expect_err("must be refused"),
    };
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    msg
}

#[test]
fn huge_regnet_depth_is_an_error_naming_key_and_limit() {
    for depth in ["100000000", "1000000000000", "18446744073709551615"] {
        let e = override_err(&["REGNET.DEPTH", depth]);
        assert!(
            e.contains("REGNET.DEPTH") && e.contains(&MAX_BLOCKS.to_string()),
            "{e}"
        );
    }
}

#[test]
fn huge_anynet_and_resnet_counts_are_errors() {
    let cases: [(&str, &str, &str, &str); 5] = [
        ("[1000000000]", "[8]", "[1]", "depth"),
        ("[9000, 9000]", "[8, 8]", "[1, 1]", "total depth"),
        ("[1]", "[100000000]", "[1]", "width"),
        ("[1]", "[8]", "[1000]", "stride"),
        ("[1]", "[8]", "[1]", "MODEL.NUM_CLASSES"),
    ];
    for (depths, widths, strides, expect) in cases {
        let mut pairs = vec![
            "MODEL.TYPE",
            "anynet",
            "ANYNET.BLOCK_TYPE",
            "res_basic_block",
        ];
        pairs.extend(["ANYNET.DEPTHS", depths, "ANYNET.WIDTHS", widths]);
        pairs.extend(["ANYNET.STRIDES", strides]);
        if expect.starts_with("MODEL") {
            pairs.extend(["MODEL.NUM_CLASSES", "4000000000"]);
        }
        let e = override_err(&pairs);
        assert!(e.contains(expect) && e.contains("limit"), "{e}");
    }
    let e = override_err(&[
        "MODEL.TYPE",
        "resnet",
        "TRAIN.DATASET",
        "cifar10",
        "MODEL.DEPTH",
        "29000",
    ]);
    assert!(e.contains("total depth") && e.contains("limit"), "{e}");
}

#[test]
fn huge_regnet_slope_multiplier_and_bottleneck_are_errors() {
    for pairs in [
        ["REGNET.WA", "1e300"],
        ["REGNET.W0", "800000000"],
        ["REGNET.BOT_MUL", "1e300"],
        ["REGNET.BOT_MUL", "100000"],
        ["REGNET.GROUP_W", "100000000000"],
    ] {
        let e = override_err(&pairs);
        assert!(e.contains("limit"), "{pairs:?}: {e}");
    }
}

#[test]
fn spec_metadata_with_huge_depth_is_a_one_line_error() {
    let spec = zoo::lookup("RegNetX-200MF").unwrap().spec();
    let json = spec
        .to_json()
        .replace("\"depth\":13", "\"depth\":1000000000");
    assert_ne!(json, spec.to_json(), "the depth was replaced");
    let t = Instant::now();
    let e = NetSpec::from_json(&json).unwrap_err().to_string();
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(e.contains("depth 1000000000") && e.contains("limit"), "{e}");
    let any = r#"{"in_channels":3,"num_classes":10,"activation":"relu","arch":{"type":"any_net",
        "stem_type":"simple_stem_in","stem_w":8,"block_type":"res_basic_block","se_r":0.0,
        "head_w":0,"stages":[{"depth":18446744073709551615,"width":8,"stride":1,
        "bot_mul":null,"group_w":null},{"depth":18446744073709551615,"width":8,"stride":1,
        "bot_mul":null,"group_w":null}]}}"#;
    let e = NetSpec::from_json(any).unwrap_err().to_string();
    assert!(e.contains("limit"), "{e}");
}

/// A vanilla AnyNet of one stage of width `w` at stride 1 (two 3x3 convs `w x w`).
fn wide(w: usize) -> Network {
    let mut cfg = Config::default();
    let (w, s) = (format!("[{w}]"), w.to_string());
    cfg.merge_overrides(&[
        "MODEL.TYPE",
        "anynet",
        "ANYNET.STEM_TYPE",
        "res_stem_cifar",
        "ANYNET.STEM_W",
        &s,
        "ANYNET.BLOCK_TYPE",
        "vanilla_block",
        "ANYNET.DEPTHS",
        "[1]",
        "ANYNET.WIDTHS",
        &w,
        "ANYNET.STRIDES",
        "[1]",
    ])
    .unwrap();
    cfg.network().unwrap().1
}

#[test]
fn wide_network_params_are_exact_and_flops_never_wrap() {
    let net = wide(MAX_WIDTH);
    // The parameter count summed independently, in 128 bits, from the state-dict list.
    let params: u128 = net
        .parameters()
        .iter()
        .filter(|p| p.kind.trainable())
        .map(|p| p.numel() as u128)
        .sum();
    assert!(params > u32::MAX as u128, "wide enough to matter: {params}");
    let cx = try_complexity(&net, 32, 32).unwrap();
    assert_eq!(cx.params as u128, params);
    // Two 3x3 convs of 2^16 x 2^16 channels at 2^14 x 2^14: 18 * 2^60 flops > u64::MAX.
    let e = try_complexity(&net, MAX_IM_SIZE, MAX_IM_SIZE).unwrap_err();
    assert!(e.to_string().contains("64-bit"), "{e}");
    let cx = complexity(&net, MAX_IM_SIZE, MAX_IM_SIZE);
    assert_eq!(cx.flops, u64::MAX, "saturates, never wraps");
    assert_eq!(cx.params as u128, params);
    let e = try_complexity(&net, MAX_IM_SIZE + 1, 8).unwrap_err();
    assert!(e.to_string().contains("image height"), "{e}");
}

#[test]
fn deeply_nested_yaml_is_refused_fast() {
    for n in [40, 100_000, 500_000] {
        let flow = format!("MODEL:\n  TYPE: {}{}\n", "[".repeat(n), "]".repeat(n));
        let compact = format!("ANYNET:\n  DEPTHS:\n{}1\n", "- ".repeat(n));
        let map = format!("MODEL: {}{}\n", "{a: ".repeat(n), "}".repeat(n));
        for text in [flow, compact, map] {
            let t = Instant::now();
            let e = Config::default()
                .merge_yaml(&text, Origin::File("deep.yaml".into()))
                .unwrap_err()
                .to_string();
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "{n}: {:?}",
                t.elapsed()
            );
            assert!(
                e.starts_with("deep.yaml: <yaml>: line") && e.contains("nested"),
                "{e}"
            );
        }
    }
    let e = Config::default()
        .merge_overrides(&["ANYNET.DEPTHS", &"[".repeat(100_000)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("ANYNET.DEPTHS") && e.contains("nested"), "{e}");
}

#[test]
fn byte_order_mark_is_accepted() {
    let mut cfg = Config::default();
    cfg.merge_yaml(
        "\u{feff}MODEL:\n  TYPE: regnet\nREGNET:\n  DEPTH: 7\n",
        Origin::File("bom.yaml".into()),
    )
    .unwrap();
    assert_eq!((cfg.model.ty.as_str(), cfg.regnet.depth), ("regnet", 7));
    let dir = std::env::temp_dir().join(format!("regnet-bom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bom.yaml");
    std::fs::write(&path, b"\xef\xbb\xbfREGNET:\n  DEPTH: 9\n").unwrap();
    let cfg = Config::load(path.to_str().unwrap()).unwrap();
    assert_eq!(cfg.regnet.depth, 9);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn empty_override_key_has_a_clear_message() {
    for key in ["", ".", "REGNET.", ".DEPTH", "REGNET..DEPTH"] {
        let e = Config::default()
            .merge_overrides(&[key, "3"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("empty key") && !e.contains("did you mean"),
            "{e}"
        );
    }
}

#[test]
fn io_errors_say_the_path_once() {
    let path = "/nonexistent-regnet-dir/x.yaml";
    let e = Config::load(path).unwrap_err();
    let msg = e.to_string();
    assert_eq!(msg.matches(path).count(), 1, "{msg}");
    // The I/O error is part of the message, not a source that a chain printer repeats.
    assert!(std::error::Error::source(&e).is_none());
}

#[test]
fn oversized_lists_and_sizes_name_the_key() {
    let list = format!("[{}]", vec!["1"; 5000].join(", "));
    let e = Config::default()
        .merge_overrides(&["OPTIM.STEPS", &list])
        .unwrap_err()
        .to_string();
    assert!(e.contains("OPTIM.STEPS") && e.contains("limit"), "{e}");
    let huge = format!("# {}\n", "x".repeat(5 << 20));
    let e = Config::default()
        .merge_yaml(&huge, Origin::File("huge.yaml".into()))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("huge.yaml: <yaml>: larger than"), "{e}");
    for key in ["TRAIN.IM_SIZE", "TEST.BATCH_SIZE", "OPTIM.MAX_EPOCH"] {
        let e = Config::default()
            .merge_overrides(&[key, "100000000000"])
            .unwrap_err()
            .to_string();
        assert!(e.contains(key) && e.contains("limit"), "{e}");
    }
}

/// Found by `fuzz_config`: a key holding a newline was echoed into a two-line message.
#[test]
fn keys_with_newlines_are_escaped() {
    let e = Config::default()
        .merge_yaml("\"MODEL\\nX\": 1\n", Origin::File("fuzz.yaml".into()))
        .unwrap_err()
        .to_string();
    assert!(
        !e.contains('\n') && e.contains("MODEL\\nX: unknown key"),
        "{e}"
    );
}

/// Zero image and batch sizes, and more loader threads than can be started, are refused
/// when the config loads, naming the key (an image size of 0 was reported as a network of
/// no activations; 100000 loader threads failed to start with a panic).
#[test]
fn zero_sizes_and_too_many_loader_threads_are_errors() {
    let cases = [
        ("TRAIN.IM_SIZE", "0", "must be at least 1"),
        ("TEST.IM_SIZE", "0", "must be at least 1"),
        ("TRAIN.BATCH_SIZE", "0", "must be at least 1"),
        ("TEST.BATCH_SIZE", "0", "must be at least 1"),
        ("EXT.LOADER_THREADS", "100000", "above the limit of 256"),
    ];
    for (key, value, want) in cases {
        let e = override_err(&[key, value]);
        assert!(e.contains(key) && e.contains(want), "{e}");
    }
    let mut cfg = zoo::lookup("RegNetX-200MF").unwrap().config();
    assert!(
        cfg.merge_overrides(&["EXT.LOADER_THREADS", "256", "TRAIN.IM_SIZE", "1"])
            .is_ok()
    );
}
