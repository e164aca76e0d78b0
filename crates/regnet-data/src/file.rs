//! Reading a whole data file into memory, with a size limit.
//!
//! Every reader of the crate reads its files through [`read_file`], so that no file can make
//! it allocate without bound: a device or a pipe given where a file is expected (a
//! `data_batch_2` that links to `/dev/zero`, a FIFO that would block forever) is refused
//! before it is opened, and a regular file larger than the reader's limit is refused before
//! it is read.

use std::io::Read;
use std::path::Path;

use crate::error::{DataError, Result};

/// The bytes of the regular file `path`, which must hold at most `limit` bytes.
///
/// # Errors
/// [`DataError::Io`] if it cannot be read or is not a regular file; [`DataError::Format`] if
/// it is larger than `limit` (what it is, and the limit, in the message).
pub(crate) fn read_file(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
    if !meta.is_file() {
        return Err(DataError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
        ));
    }
    if meta.len() > limit {
        return Err(too_large(path, meta.len(), limit, what));
    }
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut bytes = Vec::new();
    // One byte past the limit tells a file that grew since `metadata` from one that did not.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(path, bytes.len() as u64, limit, what));
    }
    Ok(bytes)
}

fn too_large(path: &Path, len: u64, limit: u64, what: &str) -> DataError {
    DataError::format(
        path,
        format!("{len} bytes is too large for {what} (the limit is {limit} bytes)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_devices_and_files_over_the_limit() {
        let e = read_file(Path::new("/dev/zero"), 10, "a test file").unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, [1u8; 11]).unwrap();
        let e = read_file(&p, 10, "a test file").unwrap_err();
        assert!(
            e.to_string()
                .contains("11 bytes is too large for a test file"),
            "{e}"
        );
        assert_eq!(read_file(&p, 11, "a test file").unwrap(), vec![1u8; 11]);
    }
}
