//! CIFAR-10 in both of its distributed formats.
//!
//! - Python (`cifar-10-batches-py/`, what pycls reads): `data_batch_1` .. `data_batch_5` and
//!   `test_batch`, each a pickled dict whose `data` is a 10000x3072 `uint8` numpy array
//!   (one row per image: the R, G and B planes of 32x32 pixels) and whose `labels` is a list
//!   of ints; `batches.meta` holds `label_names`. They are read by `pickle.rs`, which
//!   never runs pickle code.
//! - Binary (`cifar-10-batches-bin/`): `data_batch_1.bin` .. `test_batch.bin`, records of one
//!   label byte and the same 3072 plane bytes; `batches.meta.txt` holds one class name a line.
//!
//! Images are turned from planes (CHW) into HWC once, when the batches are read.

use std::path::{Path, PathBuf};

use crate::dataset::{DatasetKind, Split};
use crate::error::{DataError, Result};
use crate::file::read_file;
use crate::in_memory::InMemoryDataset;
use crate::pickle::Pickle;

/// The CIFAR-10 class names, in label order (used when `batches.meta` is absent).
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Side of a CIFAR image.
pub const CIFAR_SIZE: usize = 32;

/// Bytes of one image: 3 planes of 32x32.
const IMAGE_BYTES: usize = 3 * CIFAR_SIZE * CIFAR_SIZE;

/// The largest batch file read: 1 GiB, 30 times a real batch (about 31 MB).
pub const MAX_CIFAR_BATCH_BYTES: u64 = 1 << 30;

/// The largest `batches.meta` read (the real one is 158 bytes).
const MAX_META_BYTES: u64 = 1 << 20;

/// Which of the two distributions a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarFormat {
    /// Pickled batches (`data_batch_1`, ...).
    Python,
    /// Binary batches (`data_batch_1.bin`, ...).
    Binary,
}

/// Finds the batches: in `path` itself, or in `path/cifar-10-batches-py` or
/// `path/cifar-10-batches-bin` (the directories the archives unpack to). The Python format
/// wins when both are present, since it is the one pycls reads.
pub fn locate_cifar10(path: &Path) -> Result<(PathBuf, CifarFormat)> {
    let candidates = [
        path.to_path_buf(),
        path.join("cifar-10-batches-py"),
        path.join("cifar-10-batches-bin"),
    ];
    for dir in &candidates {
        if dir.join("data_batch_1").is_file() || dir.join("test_batch").is_file() {
            return Ok((dir.clone(), CifarFormat::Python));
        }
        if dir.join("data_batch_1.bin").is_file() || dir.join("test_batch.bin").is_file() {
            return Ok((dir.clone(), CifarFormat::Binary));
        }
    }
    Err(DataError::io(
        path,
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no CIFAR-10 batches (data_batch_1, test_batch or their .bin forms) here or in \
             cifar-10-batches-py/ or cifar-10-batches-bin/",
        ),
    ))
}

/// Opens one split of CIFAR-10 (see [`locate_cifar10`] for where it looks).
///
/// # Errors
/// A missing batch file; a malformed pickle or binary batch; a label not below 10; a
/// malformed `batches.meta`. Each error names the file.
pub fn open_cifar10(path: &Path, split: Split) -> Result<InMemoryDataset> {
    let (dir, format) = locate_cifar10(path)?;
    let stems: Vec<String> = match split {
        Split::Train => (1..=5).map(|i| format!("data_batch_{i}")).collect(),
        Split::Test => vec!["test_batch".to_string()],
    };
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for stem in &stems {
        let file = match format {
            CifarFormat::Python => dir.join(stem),
            CifarFormat::Binary => dir.join(format!("{stem}.bin")),
        };
        let bytes = read_file(&file, MAX_CIFAR_BATCH_BYTES, "a CIFAR-10 batch")?;
        let (planes, batch_labels) = match format {
            CifarFormat::Python => parse_python_batch(&bytes),
            CifarFormat::Binary => parse_binary_batch(&bytes),
        }
        .map_err(|m| DataError::format(&file, m))?;
        pixels.extend(planes.chunks_exact(IMAGE_BYTES).flat_map(chw_to_hwc));
        labels.extend(batch_labels);
    }
    let class_names = class_names(&dir, format)?;
    InMemoryDataset::new(
        DatasetKind::Cifar10,
        CIFAR_SIZE,
        CIFAR_SIZE,
        3,
        pixels,
        labels,
        class_names,
        dir.join(&stems[0]).display().to_string(),
    )
}

/// One image's R, G, B planes as HWC pixels.
fn chw_to_hwc(planes: &[u8]) -> Vec<u8> {
    let plane = CIFAR_SIZE * CIFAR_SIZE;
    (0..plane)
        .flat_map(|p| [planes[p], planes[plane + p], planes[2 * plane + p]])
        .collect()
}

fn check_label(label: i64, i: usize) -> std::result::Result<u16, String> {
    if (0..CIFAR10_CLASSES.len() as i64).contains(&label) {
        Ok(label as u16)
    } else {
        Err(format!("label {label} of sample {i} is not in 0..10"))
    }
}

/// The planes (n x 3072 bytes) and labels of a pickled batch.
fn parse_python_batch(bytes: &[u8]) -> std::result::Result<(Vec<u8>, Vec<u16>), String> {
    let pk = Pickle::parse(bytes)?;
    let root = pk.root();
    let data = pk
        .dict_get(root, "data")
        .ok_or("not a CIFAR batch: no 'data' key in a top-level dict")?;
    let labels = pk
        .dict_get(root, "labels")
        .ok_or("not a CIFAR batch: no 'labels' key in a top-level dict")?;
    let (shape, data) = pk.u8_array(data).map_err(|m| format!("'data': {m}"))?;
    if shape.len() != 2 || shape[1] != IMAGE_BYTES {
        return Err(format!(
            "'data' has shape {shape:?}, expected (n, {IMAGE_BYTES})"
        ));
    }
    if shape[0] == 0 {
        return Err("no images: 'data' has shape (0, 3072)".into());
    }
    let labels = pk.int_list(labels).map_err(|m| format!("'labels': {m}"))?;
    if labels.len() != shape[0] {
        return Err(format!("{} labels for {} images", labels.len(), shape[0]));
    }
    let labels = labels
        .iter()
        .enumerate()
        .map(|(i, &l)| check_label(l, i))
        .collect::<std::result::Result<_, _>>()?;
    Ok((data.into_owned(), labels))
}

/// The planes and labels of a binary batch: records of a label byte and 3072 pixel bytes.
fn parse_binary_batch(bytes: &[u8]) -> std::result::Result<(Vec<u8>, Vec<u16>), String> {
    let record = 1 + IMAGE_BYTES;
    if bytes.is_empty() {
        return Err("no images: the file is empty".into());
    }
    if !bytes.len().is_multiple_of(record) {
        return Err(format!(
            "{} bytes is not a whole number of {record}-byte records (truncated?)",
            bytes.len()
        ));
    }
    let mut planes = Vec::with_capacity(bytes.len() / record * IMAGE_BYTES);
    let mut labels = Vec::with_capacity(bytes.len() / record);
    for (i, r) in bytes.chunks_exact(record).enumerate() {
        labels.push(check_label(i64::from(r[0]), i)?);
        planes.extend_from_slice(&r[1..]);
    }
    Ok((planes, labels))
}

/// The class names from `batches.meta` (Python) or `batches.meta.txt` (binary), or the
/// standard ones when that file is absent.
fn class_names(dir: &Path, format: CifarFormat) -> Result<Vec<String>> {
    let file = match format {
        CifarFormat::Python => dir.join("batches.meta"),
        CifarFormat::Binary => dir.join("batches.meta.txt"),
    };
    if !file.is_file() {
        return Ok(CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect());
    }
    let bytes = read_file(&file, MAX_META_BYTES, "a CIFAR-10 class list")?;
    let names = match format {
        CifarFormat::Python => {
            let pk = Pickle::parse(&bytes).map_err(|m| DataError::format(&file, m))?;
            let list = pk
                .dict_get(pk.root(), "label_names")
                .ok_or_else(|| DataError::format(&file, "no 'label_names' key"))?;
            pk.string_list(list, CIFAR10_CLASSES.len())
                .map_err(|m| DataError::format(&file, format!("'label_names': {m}")))?
        }
        CifarFormat::Binary => String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
    };
    if names.len() != CIFAR10_CLASSES.len() {
        return Err(DataError::format(
            &file,
            format!("{} class names, CIFAR-10 has 10", names.len()),
        ));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_become_hwc() {
        let mut planes = vec![0u8; IMAGE_BYTES];
        planes[5] = 1; // R of pixel 5
        planes[1024 + 5] = 2; // G
        planes[2048 + 5] = 3; // B
        let hwc = chw_to_hwc(&planes);
        assert_eq!(&hwc[15..18], &[1, 2, 3]);
        assert_eq!(hwc.iter().map(|&v| v as u32).sum::<u32>(), 6);
    }

    #[test]
    fn binary_batch_length_and_labels_are_checked() {
        let e = parse_binary_batch(&[0; 3074]).unwrap_err();
        assert!(e.contains("3074 bytes"), "{e}");
        let mut rec = vec![0u8; 3073];
        rec[0] = 10;
        let e = parse_binary_batch(&rec).unwrap_err();
        assert!(e.contains("label 10"), "{e}");
        rec[0] = 9;
        let (p, l) = parse_binary_batch(&rec).unwrap();
        assert_eq!((p.len(), l), (3072, vec![9]));
    }
}
