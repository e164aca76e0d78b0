//! MNIST and Fashion-MNIST: IDX files, gzipped or not.
//!
//! A split is two files in one directory, `<prefix>-images-idx3-ubyte[.gz]` and
//! `<prefix>-labels-idx1-ubyte[.gz]`, with prefix `train` or `t10k`. An IDX file is a
//! big-endian header (two zero bytes, a type byte `0x08` for unsigned bytes, the number of
//! dimensions, then each dimension as a `u32`) followed by the values. Everything the
//! header promises is checked, so a truncated download is an error naming the file, not a
//! short or shifted data set.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::dataset::{DatasetKind, Split};
use crate::error::{DataError, Result};
use crate::in_memory::InMemoryDataset;

/// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The Fashion-MNIST class names, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// The MNIST class names: the digits.
pub const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// The IDX type byte of unsigned 8-bit values, the only type MNIST files use.
const IDX_UBYTE: u8 = 0x08;

/// An IDX array of unsigned bytes: its dimensions and its values in row-major order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions from the header, outermost first (`[n, rows, cols]` for images).
    pub dims: Vec<usize>,
    /// `dims.iter().product()` values.
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes, gunzipping it first when it starts with the gzip
/// magic number (whatever its name).
///
/// # Errors
/// [`DataError::Io`] if it cannot be read; [`DataError::Format`] if the gzip stream is corrupt
/// or truncated, the magic number is not that of unsigned bytes, or the length does not match
/// the header.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::format(path, format!("corrupt or truncated gzip data: {e}")))?;
        out
    } else {
        raw
    };
    parse_idx(&bytes).map_err(|m| DataError::format(path, m))
}

/// Parses the (uncompressed) bytes of an IDX file of unsigned bytes; the error is a message
/// without the file name.
fn parse_idx(bytes: &[u8]) -> std::result::Result<IdxArray, String> {
    if bytes.len() < 4 {
        return Err(format!(
            "truncated IDX file: {} bytes, shorter than the 4-byte magic number",
            bytes.len()
        ));
    }
    let (zeros, ty, ndims) = (&bytes[..2], bytes[2], usize::from(bytes[3]));
    if zeros != [0, 0] || ty != IDX_UBYTE || ndims == 0 {
        return Err(format!(
            "bad IDX magic number 0x{:02x}{:02x}{:02x}{:02x} (expected 0x000008NN: unsigned bytes, NN dimensions)",
            bytes[0], bytes[1], bytes[2], bytes[3]
        ));
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(format!(
            "truncated IDX header: {} bytes, {ndims} dimensions need {header}",
            bytes.len()
        ));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("IDX dimensions {dims:?} overflow"))?;
    let body = bytes.len() - header;
    if body < count {
        return Err(format!(
            "truncated IDX file: dimensions {dims:?} need {count} bytes of data, found {body}"
        ));
    }
    if body > count {
        return Err(format!(
            "IDX file longer than its dimensions {dims:?}: {} extra bytes",
            body - count
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// `dir/<name>` if it exists, else `dir/<name>.gz` if that exists.
fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DataError::io(
        plain,
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("not found (nor {name}.gz)"),
        ),
    ))
}

/// Opens one split of MNIST ([`DatasetKind::Mnist`]) or Fashion-MNIST
/// ([`DatasetKind::FashionMnist`]) from the directory that holds the IDX files.
///
/// # Errors
/// A missing, unreadable or malformed file; images that are not a 3-dimensional array;
/// labels that are not 1-dimensional, not as many as the images, or not below 10. Each error
/// names the file.
///
/// # Panics
/// If `kind` is not one of the two MNIST kinds.
pub fn open_mnist(dir: &Path, split: Split, kind: DatasetKind) -> Result<InMemoryDataset> {
    let names: &[&str] = match kind {
        DatasetKind::Mnist => &MNIST_CLASSES,
        DatasetKind::FashionMnist => &FASHION_MNIST_CLASSES,
        other => panic!("open_mnist opens MNIST data sets, not {other:?}"),
    };
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images_path = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = read_idx(&images_path)?;
    let labels = read_idx(&labels_path)?;
    let [n, rows, cols] = images.dims[..] else {
        return Err(DataError::format(
            &images_path,
            format!(
                "images must be a 3-dimensional IDX array, found dimensions {:?}",
                images.dims
            ),
        ));
    };
    if rows == 0 || cols == 0 {
        return Err(DataError::format(
            &images_path,
            format!("empty images of {rows}x{cols}"),
        ));
    }
    if labels.dims.len() != 1 {
        return Err(DataError::format(
            &labels_path,
            format!(
                "labels must be a 1-dimensional IDX array, found dimensions {:?}",
                labels.dims
            ),
        ));
    }
    if labels.dims[0] != n {
        return Err(DataError::format(
            &labels_path,
            format!(
                "{} labels for the {n} images of {}",
                labels.dims[0],
                images_path.display()
            ),
        ));
    }
    if let Some((i, &l)) = labels
        .data
        .iter()
        .enumerate()
        .find(|&(_, &l)| usize::from(l) >= names.len())
    {
        return Err(DataError::format(
            &labels_path,
            format!("label {l} of sample {i} is not below {}", names.len()),
        ));
    }
    InMemoryDataset::new(
        kind,
        rows,
        cols,
        1,
        images.data,
        labels.data.into_iter().map(u16::from).collect(),
        names.iter().map(|s| s.to_string()).collect(),
        images_path.display().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, IDX_UBYTE, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn parses_header_and_data() {
        let a = parse_idx(&idx(&[2, 1, 3], &[1, 2, 3, 4, 5, 6])).unwrap();
        assert_eq!(a.dims, vec![2, 1, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn rejects_bad_magic_truncation_and_trailing_bytes() {
        let mut bad = idx(&[2], &[1, 2]);
        bad[2] = 0x0d; // float
        assert!(parse_idx(&bad).unwrap_err().contains("magic"));
        let e = parse_idx(&idx(&[3], &[1, 2])).unwrap_err();
        assert!(e.contains("need 3 bytes of data, found 2"), "{e}");
        let e = parse_idx(&idx(&[1], &[1, 2])).unwrap_err();
        assert!(e.contains("1 extra bytes"), "{e}");
        let e = parse_idx(&[0, 0, 8, 3, 0, 0]).unwrap_err();
        assert!(e.contains("truncated IDX header"), "{e}");
        assert!(parse_idx(&[0, 0]).unwrap_err().contains("truncated"));
    }
}
