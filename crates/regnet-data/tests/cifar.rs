//! CIFAR-10: pickled batches (as Python 2 wrote them, and as Python 3 + numpy 2 write them
//! with protocols 2, 4 and 5: fixtures in tests/data), binary batches, class names, and
//! corrupt or malicious files.

mod common;

use std::path::Path;

use common::{cifar_bin, cifar_planes, cifar_py2_meta, cifar_py2_pickle, tempdir, write_cifar_py};
use regnet_data::{
    CIFAR10_CLASSES, CifarFormat, DataError, Dataset, DatasetKind, Split, locate_cifar10,
    open_cifar10, open_dataset,
};

/// Pixel (y, x, c) of test image `i` from its planes.
fn pixel(i: usize, y: usize, x: usize, c: usize) -> u8 {
    cifar_planes(i)[c * 1024 + y * 32 + x]
}

#[test]
fn python_batches_as_python2_wrote_them() {
    let dir = tempdir();
    let root = dir.path().join("cifar-10-batches-py");
    write_cifar_py(&root, 3);
    // Found from the parent directory too.
    assert_eq!(
        locate_cifar10(dir.path()).unwrap(),
        (root.clone(), CifarFormat::Python)
    );
    let train = open_cifar10(dir.path(), Split::Train).unwrap();
    let test = open_dataset("cifar10", Some(&root), Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (15, 3));
    assert_eq!(train.kind(), DatasetKind::Cifar10);
    assert_eq!(train.channels(), 3);
    // Image 13 is the second image of data_batch_5.
    let im = train.image(13).unwrap();
    assert_eq!((im.height(), im.width(), im.channels()), (32, 32, 3));
    for (y, x) in [(0, 0), (5, 17), (31, 31)] {
        for c in 0..3 {
            assert_eq!(im.get(y, x, c), pixel(13, y, x, c), "({y}, {x}, {c})");
        }
    }
    assert_eq!(train.label(13), 3);
    assert_eq!(test.label(2), 2);
    assert_eq!(train.class_names(), CIFAR10_CLASSES);
}

#[test]
fn fixtures_written_by_python3_numpy2() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for proto in [2, 4, 5] {
        let dir = tempdir();
        std::fs::copy(
            data.join(format!("cifar_py3_protocol{proto}.pickle")),
            dir.path().join("test_batch"),
        )
        .unwrap();
        std::fs::copy(
            data.join("cifar_meta_protocol2.pickle"),
            dir.path().join("batches.meta"),
        )
        .unwrap();
        let ds = open_cifar10(dir.path(), Split::Test).unwrap();
        assert_eq!(ds.len(), 2, "protocol {proto}");
        assert_eq!((ds.label(0), ds.label(1)), (3, 9));
        let im = ds.image(1).unwrap();
        for (y, x, c) in [(0, 0, 0), (7, 30, 1), (31, 2, 2)] {
            assert_eq!(im.get(y, x, c), pixel(1, y, x, c), "protocol {proto}");
        }
        assert_eq!(ds.class_names()[0], "plane");
        assert_eq!(ds.class_names()[9], "truck");
    }
}

#[test]
fn binary_batches_and_meta_txt() {
    let dir = tempdir();
    let root = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir_all(&root).unwrap();
    for b in 1..=5 {
        let idx = [2 * (b - 1), 2 * (b - 1) + 1];
        let planes: Vec<Vec<u8>> = idx.iter().map(|&i| cifar_planes(i)).collect();
        let labels: Vec<usize> = idx.iter().map(|i| 9 - i % 10).collect();
        std::fs::write(
            root.join(format!("data_batch_{b}.bin")),
            cifar_bin(&planes, &labels),
        )
        .unwrap();
    }
    let names: String = (0..10).map(|i| format!("class{i}\n")).collect();
    std::fs::write(root.join("batches.meta.txt"), format!("{names}\n\n")).unwrap();
    let train = open_dataset("cifar10", Some(dir.path()), Split::Train).unwrap();
    assert_eq!(train.len(), 10);
    assert_eq!(train.label(4), 5);
    assert_eq!(train.image(4).unwrap().get(3, 4, 2), pixel(4, 3, 4, 2));
    assert_eq!(train.class_names()[7], "class7");
    // The test split is missing: its file is named.
    let e = open_cifar10(dir.path(), Split::Test).unwrap_err();
    assert!(e.to_string().contains("test_batch.bin"), "{e}");
}

/// Writes a Python test split holding `bytes` and returns the open error.
fn open_test_batch(bytes: &[u8]) -> (DataError, std::path::PathBuf) {
    let dir = tempdir();
    let path = dir.path().join("test_batch");
    std::fs::write(&path, bytes).unwrap();
    (open_cifar10(dir.path(), Split::Test).unwrap_err(), path)
}

fn assert_names(e: &DataError, path: &Path, what: &str) {
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(what), "{msg}");
}

#[test]
fn truncated_pickle_is_an_error_naming_the_file() {
    let p = cifar_py2_pickle(&[cifar_planes(0), cifar_planes(1)], &[1, 2]);
    let (e, path) = open_test_batch(&p[..4000]);
    assert_names(&e, &path, "truncated pickle");
}

#[test]
fn label_count_and_range_are_checked() {
    let p = cifar_py2_pickle(&[cifar_planes(0), cifar_planes(1)], &[1]);
    let (e, path) = open_test_batch(&p);
    assert_names(&e, &path, "1 labels for 2 images");
    let p = cifar_py2_pickle(&[cifar_planes(0)], &[10]);
    let (e, path) = open_test_batch(&p);
    assert_names(&e, &path, "label 10 of sample 0");
}

#[test]
fn a_pickle_that_calls_code_is_refused_not_run() {
    // pickle.dumps of an object whose __reduce__ is os.system("touch <marker>").
    let dir = tempdir();
    let marker = dir.path().join("pwned");
    let cmd = format!("touch {}", marker.display());
    let mut p = b"\x80\x02cposix\nsystem\nq\x00X".to_vec();
    p.extend_from_slice(&(cmd.len() as u32).to_le_bytes());
    p.extend_from_slice(cmd.as_bytes());
    p.extend_from_slice(b"\x85Rq\x01.");
    let (e, path) = open_test_batch(&p);
    assert_names(&e, &path, "refusing pickle global posix.system");
    assert!(!marker.exists());
}

#[test]
fn not_a_cifar_dict_and_wrong_shape() {
    let (e, path) = open_test_batch(b"\x80\x02}q\x00.");
    assert_names(&e, &path, "no 'data' key");
    // The array's shape says (1, 4) but its data holds 3072 bytes.
    let mut p = cifar_py2_pickle(&[cifar_planes(0)], &[1]);
    let at = p
        .windows(6)
        .position(|w| w == b"K\x01M\x00\x0c\x86")
        .unwrap();
    p.splice(at..at + 6, *b"K\x01K\x04\x86");
    let (e, path) = open_test_batch(&p);
    assert_names(&e, &path, "array of shape [1, 4] with 3072 bytes");
}

#[test]
fn binary_batch_of_wrong_length_is_an_error_naming_the_file() {
    let dir = tempdir();
    let path = dir.path().join("test_batch.bin");
    let mut b = cifar_bin(&[cifar_planes(0), cifar_planes(1)], &[0, 1]);
    b.pop();
    std::fs::write(&path, b).unwrap();
    let e = open_cifar10(dir.path(), Split::Test).unwrap_err();
    assert_names(
        &e,
        &path,
        "6145 bytes is not a whole number of 3073-byte records",
    );
}

#[test]
fn meta_with_wrong_class_count_is_an_error() {
    let dir = tempdir();
    write_cifar_py(dir.path(), 1);
    let path = dir.path().join("batches.meta");
    std::fs::write(&path, cifar_py2_meta(&["a", "b"])).unwrap();
    let e = open_cifar10(dir.path(), Split::Test).unwrap_err();
    assert_names(&e, &path, "2 class names");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    std::fs::write(&path, cifar_py2_meta(&names)).unwrap();
    let ds = open_cifar10(dir.path(), Split::Test).unwrap();
    assert_eq!(ds.class_names()[9], "j");
}

#[test]
fn missing_directory_is_named() {
    let dir = tempdir();
    let e = open_cifar10(&dir.path().join("nowhere"), Split::Train).unwrap_err();
    assert!(e.to_string().contains("nowhere") && e.to_string().contains("no CIFAR-10 batches"));
}
