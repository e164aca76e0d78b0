//! Hostile and broken input through the command line (issue 10): huge counts, deep YAML and
//! spec bombs are one-line errors; `test` reads the config inside a pycls checkpoint; a run
//! killed while it writes a checkpoint leaves no temporary file once resumed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fails, ok};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn pycls(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/pycls_checkpoints")
        .join(name)
}

#[test]
fn huge_counts_and_deep_yaml_are_one_line_errors() {
    let e = fails(&["info", "RegNetX-200MF", "REGNET.DEPTH", "100000000"]);
    assert!(e.contains("REGNET.DEPTH") && e.contains("limit"), "{e}");
    let e = fails(&[
        "info",
        "RegNetX-200MF",
        "REGNET.DEPTH",
        "1000000000000000000000",
    ]);
    assert!(e.contains("REGNET.DEPTH"), "{e}");
    let e = fails(&["info", "RegNetX-200MF", "", "3"]);
    assert!(e.contains("empty key"), "{e}");
    let tmp = tempfile::tempdir().unwrap();
    let deep = tmp.path().join("deep.yaml");
    let text = format!(
        "MODEL:\n  TYPE: {}{}\n",
        "[".repeat(200_000),
        "]".repeat(200_000)
    );
    std::fs::write(&deep, text).unwrap();
    let t = Instant::now();
    let e = fails(&["info", "--cfg", s(&deep)]);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(e.contains("deep.yaml") && e.contains("nested"), "{e}");
    let e = fails(&["info", "--cfg", s(&tmp.path().join("missing.yaml"))]);
    assert_eq!(e.matches("missing.yaml").count(), 1, "said once: {e}");
}

#[test]
fn spec_bomb_in_safetensors_metadata_is_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path().join("small.safetensors");
    let cfg = pycls("anynet_vanilla_cifar");
    ok(&[
        "export",
        "--cfg",
        s(&cfg.join("config.yaml")),
        "--weights",
        s(&cfg.join("model.pyth")),
        "--output",
        s(&w),
    ]);
    let bytes = std::fs::read(&w).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[8..8 + n].to_vec()).unwrap();
    let mut bomb = header.replacen("\\\"depth\\\":1,", "\\\"depth\\\":1000000000,", 1);
    assert_ne!(bomb, header, "the spec has a stage of depth 1: {header}");
    while !bomb.len().is_multiple_of(8) {
        bomb.push(' ');
    }
    let mut out = (bomb.len() as u64).to_le_bytes().to_vec();
    out.extend(bomb.bytes());
    out.extend(&bytes[8 + n..]);
    let bad = tmp.path().join("bomb.safetensors");
    std::fs::write(&bad, out).unwrap();
    let io = cfg.join("io.safetensors");
    let t = Instant::now();
    let e = fails(&[
        "forward",
        "--weights",
        s(&bad),
        "--input",
        s(&io),
        "--output",
        s(&tmp.path().join("o.safetensors")),
    ]);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(
        e.contains("bomb.safetensors") && e.contains("1000000000") && e.contains("limit"),
        "{e}"
    );
    assert_eq!(e.matches("bomb.safetensors").count(), 1, "said once: {e}");
}

/// A CIFAR-10 binary test split of `n` images at `dir`.
fn fake_cifar(dir: &Path, n: usize) {
    let bin = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let records: Vec<u8> = (0..n)
        .flat_map(|i| {
            let label = (i % 10) as u8;
            std::iter::once(label).chain((0..3072).map(move |p| ((p * 7 + i * 13) % 251) as u8))
        })
        .collect();
    std::fs::write(bin.join("test_batch.bin"), records).unwrap();
}

#[test]
fn test_reads_the_config_inside_a_pycls_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    fake_cifar(tmp.path(), 20);
    let dir = pycls("anynet_vanilla_cifar");
    let weights = dir.join("model.pyth");
    let data = [
        "TEST.DATASET",
        "cifar10",
        "EXT.DATA_PATH",
        s(tmp.path()),
        "TEST.IM_SIZE",
        "32",
        "TRAIN.IM_SIZE",
        "32",
        "TEST.BATCH_SIZE",
        "10",
    ];
    let top1 = |extra: &[&str]| -> f64 {
        let mut args = vec!["test", "--json", "--weights", s(&weights)];
        args.extend(extra);
        args.extend(data);
        let out = ok(&args);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["images"], 20, "{out}");
        v["top1_err"].as_f64().unwrap()
    };
    // Without --cfg the model comes from the checkpoint's own config, and tests as with it.
    let embedded = top1(&[]);
    let explicit = top1(&["--cfg", s(&dir.join("config.yaml"))]);
    assert_eq!(embedded, explicit);
    // A data set of the wrong number of channels is an error naming both.
    let e = fails(&["test", "--weights", s(&weights), "EXT.TRAIN_SUBSET", "10"]);
    assert!(
        e.contains("input channels") || e.contains("channels"),
        "{e}"
    );
}

fn temps(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .filter(|n| n.contains(".regnet-tmp.") || n.contains(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

/// A tiny RegNet on 256 Fashion-MNIST images, with a 100000-class head so that each
/// checkpoint is tens of MB and takes long enough to write to be killed in the middle.
fn train_args(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = vec!["train".into(), "--quiet".into()];
    for (k, val) in [
        ("OUT_DIR", s(out)),
        ("OPTIM.MAX_EPOCH", "2"),
        ("REGNET.DEPTH", "2"),
        ("REGNET.W0", "8"),
        ("REGNET.WA", "8"),
        ("REGNET.WM", "2.0"),
        ("REGNET.GROUP_W", "4"),
        ("REGNET.STEM_W", "8"),
        ("MODEL.NUM_CLASSES", "100000"),
        ("TRAIN.BATCH_SIZE", "64"),
        ("EXT.TRAIN_SUBSET", "256"),
        ("EXT.TEST_SUBSET", "64"),
        ("BN.NUM_SAMPLES_PRECISE", "64"),
    ] {
        v.push(k.into());
        v.push(val.into());
    }
    v
}

/// Starts the run and kills it with SIGKILL as soon as a temporary checkpoint file appears;
/// returns whether one was left behind.
fn kill_during_write(args: &[String], ckpt: &Path) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_regnet"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while temps(ckpt).is_empty() {
        if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    !temps(ckpt).is_empty()
}

#[test]
fn kill_during_checkpoint_write_then_resume_leaves_no_temporary_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let ckpt = out.join("checkpoints");
    let args = train_args(&out);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    // The write must be caught in the middle; a few tries make a missed moment unlikely.
    let caught = (0..4).any(|_| kill_during_write(&args, &ckpt));
    assert!(caught, "never caught a checkpoint write in progress");
    ok(&argv);
    assert!(temps(&ckpt).is_empty(), "{:?}", temps(&ckpt));
    assert!(temps(&out).is_empty(), "{:?}", temps(&out));
    let log = std::fs::read_to_string(out.join("stdout.log")).unwrap();
    assert!(log.contains("Removed stale temporary file"), "{log}");
    assert!(ckpt.join("model_epoch_0002.safetensors").exists());
}
