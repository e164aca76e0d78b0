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
use crate::file::read_file;
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

/// The largest IDX file read, gzipped or not (its uncompressed size): 8 GiB, 170 times
/// Fashion-MNIST's training images, so that a header cannot make the reader allocate more.
pub const MAX_IDX_BYTES: u64 = 8 << 30;

/// Deflate's largest compression ratio (a run of one byte, 258 bytes per 2-bit code): a
/// gzip file of `n` bytes cannot hold more than about `1032 * n` bytes, so an IDX header in
/// a small gzip file that promises more is truncated, whatever the rest of the file says.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// The length of the IDX header of `ndims` dimensions: the magic number and one `u32` each.
fn header_len(ndims: usize) -> usize {
    4 + 4 * ndims
}

/// Reads an IDX file of unsigned bytes, gunzipping it first when it starts with the gzip
/// magic number (whatever its name).
///
/// Sizes are checked before anything is allocated for them: a file (or the uncompressed
/// data of a gzip file) is at most [`MAX_IDX_BYTES`], the header's dimensions must fit in
/// what the file can hold, and gzip data is decompressed only as far as the header promises
/// (plus one byte, to see that nothing follows), so a gzip bomb is refused early.
///
/// # Errors
/// [`DataError::Io`] if it cannot be read; [`DataError::Format`] if it is too large, the gzip
/// stream is corrupt or truncated, the magic number is not that of unsigned bytes, or the
/// length does not match the header.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let raw = read_file(path, MAX_IDX_BYTES, "an IDX file")?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        parse_idx_gz(&raw)
    } else {
        parse_idx(raw)
    }
    .map_err(|m| DataError::format(path, m))
}

/// Reads the magic number and the dimensions of an IDX header from `r`; returns the
/// dimensions and the number of values they promise.
fn read_header(r: &mut impl Read) -> std::result::Result<(Vec<usize>, u64), String> {
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic).map_err(|e| {
        header_error(
            e,
            "truncated IDX file: shorter than the 4-byte magic number",
        )
    })?;
    let ndims = usize::from(magic[3]);
    if magic[..2] != [0, 0] || magic[2] != IDX_UBYTE || ndims == 0 {
        return Err(format!(
            "bad IDX magic number 0x{:02x}{:02x}{:02x}{:02x} (expected 0x000008NN: unsigned bytes, NN dimensions)",
            magic[0], magic[1], magic[2], magic[3]
        ));
    }
    let mut raw_dims = vec![0u8; 4 * ndims];
    r.read_exact(&mut raw_dims).map_err(|e| {
        header_error(
            e,
            &format!(
                "truncated IDX header: {ndims} dimensions need {} bytes",
                header_len(ndims)
            ),
        )
    })?;
    let dims: Vec<usize> = raw_dims
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&n| n <= MAX_IDX_BYTES)
        .ok_or_else(|| {
            format!("IDX dimensions {dims:?} promise more than the {MAX_IDX_BYTES}-byte limit")
        })?;
    Ok((dims, count))
}

/// The message of a failed header read: `truncated` at the end of the data, the reader's
/// own error (a corrupt gzip stream) otherwise.
fn header_error(e: std::io::Error, truncated: &str) -> String {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        truncated.to_string()
    } else {
        format!("corrupt or truncated gzip data: {e}")
    }
}

/// Parses the (uncompressed) bytes of an IDX file of unsigned bytes, reusing their buffer
/// for the values; the error is a message without the file name.
fn parse_idx(mut bytes: Vec<u8>) -> std::result::Result<IdxArray, String> {
    let (dims, count) = read_header(&mut &bytes[..]).map_err(|m| {
        if m.starts_with("truncated") {
            format!("{m}, found {} bytes", bytes.len())
        } else {
            m
        }
    })?;
    let body = (bytes.len() - header_len(dims.len())) as u64;
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
    bytes.drain(..header_len(dims.len()));
    Ok(IdxArray { dims, data: bytes })
}

/// Parses a gzipped IDX file, decompressing no more than its header promises.
fn parse_idx_gz(gz: &[u8]) -> std::result::Result<IdxArray, String> {
    let mut decoder = MultiGzDecoder::new(gz);
    // A gzip stream cut short ends like a short file: say which it may be.
    let (dims, count) = read_header(&mut decoder).map_err(|m| {
        if m.starts_with("truncated") {
            format!("{m}, after gunzipping (truncated gzip data?)")
        } else {
            m
        }
    })?;
    let most = (gz.len() as u64).saturating_mul(MAX_DEFLATE_RATIO);
    if count > most {
        return Err(format!(
            "truncated IDX file: dimensions {dims:?} need {count} bytes of data, more than a \
             gzip file of {} bytes can hold",
            gz.len()
        ));
    }
    let mut data = Vec::new();
    decoder
        .take(count + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("corrupt or truncated gzip data: {e}"))?;
    let found = data.len() as u64;
    if found < count {
        return Err(format!(
            "truncated IDX file: dimensions {dims:?} need {count} bytes of data, found {found}"
        ));
    }
    if found > count {
        return Err(format!(
            "IDX file longer than its dimensions {dims:?}: data goes on past {count} bytes"
        ));
    }
    Ok(IdxArray { dims, data })
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
    if n == 0 {
        return Err(DataError::format(
            &images_path,
            "no images: the IDX header says 0",
        ));
    }
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
        let a = parse_idx(idx(&[2, 1, 3], &[1, 2, 3, 4, 5, 6])).unwrap();
        assert_eq!(a.dims, vec![2, 1, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn rejects_bad_magic_truncation_and_trailing_bytes() {
        let mut bad = idx(&[2], &[1, 2]);
        bad[2] = 0x0d; // float
        assert!(parse_idx(bad).unwrap_err().contains("magic"));
        let e = parse_idx(idx(&[3], &[1, 2])).unwrap_err();
        assert!(e.contains("need 3 bytes of data, found 2"), "{e}");
        let e = parse_idx(idx(&[1], &[1, 2])).unwrap_err();
        assert!(e.contains("1 extra bytes"), "{e}");
        let e = parse_idx(vec![0, 0, 8, 3, 0, 0]).unwrap_err();
        assert!(e.contains("truncated IDX header"), "{e}");
        assert!(parse_idx(vec![0, 0]).unwrap_err().contains("truncated"));
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_is_decompressed_only_as_far_as_the_header_promises() {
        let a = parse_idx_gz(&gz(&idx(&[2, 3], &[1, 2, 3, 4, 5, 6]))).unwrap();
        assert_eq!((a.dims, a.data), (vec![2, 3], vec![1, 2, 3, 4, 5, 6]));
        // A header promising 4 GB in a tiny file: refused without decompressing.
        let e = parse_idx_gz(&gz(&idx(&[65536, 65536], &[0; 10]))).unwrap_err();
        assert!(e.contains("more than a gzip file of"), "{e}");
        // 10 MB of zeros behind a header promising 10 bytes: stops after 11.
        let e = parse_idx_gz(&gz(&idx(&[10], &vec![0; 10 << 20]))).unwrap_err();
        assert!(e.contains("data goes on past 10 bytes"), "{e}");
        let e = parse_idx_gz(&gz(&idx(&[10], &[0; 9]))).unwrap_err();
        assert!(e.contains("need 10 bytes of data, found 9"), "{e}");
        let mut cut = gz(&idx(&[10], &[7; 10]));
        cut.truncate(cut.len() - 3);
        let e = parse_idx_gz(&cut).unwrap_err();
        assert!(e.contains("gzip"), "{e}");
    }

    #[test]
    fn dimensions_past_the_limit_are_refused_before_reading() {
        let e = parse_idx(idx(&[u32::MAX, u32::MAX, u32::MAX], &[])).unwrap_err();
        assert!(e.contains("limit"), "{e}");
    }
}
