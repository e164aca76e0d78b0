//! ImageNet-style image folders: `root/{train,val}/<class>/<image>`.
//!
//! Classes are the sub-directories, sorted by name (so `n01440764` is label 0 in ImageNet,
//! as in pycls); images are the JPEG and PNG files inside them, sorted by name so the order
//! does not depend on the file system. (pycls keeps only directories named like
//! `n01440764`; every directory is a class here, which is the same for ImageNet and lets any
//! image-folder data set be used.) Only the list of files is read when a folder is
//! opened: each image is decoded when the loader asks for it, since ImageNet does not fit in
//! memory.
//!
//! Decoding follows OpenCV's `imread` (what pycls uses) where it matters: the EXIF
//! orientation is applied, gray images become RGB by repeating the value, and alpha is
//! dropped. Where `imread` would silently return a partial image (a truncated JPEG) this is
//! an error, so that a damaged file is seen and skipped or fixed.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ColorType, DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use crate::dataset::{Dataset, DatasetKind, Image, Split};
use crate::error::{DataError, Result, one_line, show_path};
use crate::file::read_file;

/// The file extensions listed as images (compared without case).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// The largest image file read: 256 MiB (a 100-megapixel JPEG is about 50 MB).
pub const MAX_IMAGE_FILE_BYTES: u64 = 256 << 20;

/// The longest side of an image decoded: 2^15 pixels, the most JPEG allows (65 535) halved;
/// an ImageNet image has at most a few thousand.
pub const MAX_IMAGE_SIDE: u32 = 1 << 15;

/// The most memory the decoder may use for one image (what `image` takes as its default):
/// 512 MiB, room for a 12 000 x 12 000 RGB image. A header that promises more (a small
/// file claiming 100 000 x 100 000 pixels, say) makes the image corrupt, not the process
/// abort.
pub const MAX_IMAGE_DECODE_BYTES: u64 = 512 << 20;

/// A folder of class directories of images.
#[derive(Clone)]
pub struct ImageFolder {
    dir: PathBuf,
    classes: Vec<String>,
    samples: Vec<(PathBuf, u32)>,
    ignored: Vec<PathBuf>,
}

/// The entries of `dir` that are not hidden, sorted by name.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            entries.push(entry.path());
        }
    }
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

impl ImageFolder {
    /// Opens split `split` of the image folder at `root`: `root/train` for training,
    /// `root/val` (or `root/test` when there is no `val`) for testing.
    ///
    /// The test split takes its classes from `root/train` when that exists, so that a class
    /// missing from `val` cannot shift the labels of the classes after it; a `val` class that
    /// is not a train class is then an error.
    ///
    /// # Errors
    /// A missing split directory, an unreadable directory, a `val` class unknown to `train`,
    /// or a split without images.
    pub fn open(root: &Path, split: Split) -> Result<Self> {
        let train = root.join("train");
        match split {
            Split::Train => Self::open_dir(&train),
            Split::Test => {
                let val = root.join("val");
                let dir = if val.is_dir() || !root.join("test").is_dir() {
                    val
                } else {
                    root.join("test")
                };
                if train.is_dir() {
                    let classes = Self::class_dirs(&train)?
                        .iter()
                        .map(|p| file_name(p))
                        .collect();
                    Self::open_dir_with_classes(&dir, classes)
                } else {
                    Self::open_dir(&dir)
                }
            }
        }
    }

    /// Opens the class directories in `dir`, whose sorted names are the classes.
    ///
    /// # Errors
    /// As [`ImageFolder::open`].
    pub fn open_dir(dir: &Path) -> Result<Self> {
        let classes = Self::class_dirs(dir)?
            .iter()
            .map(|p| file_name(p))
            .collect();
        Self::open_dir_with_classes(dir, classes)
    }

    /// Opens the class directories in `dir` with the given classes (label = position in
    /// `classes`); every class directory must be one of them, and some may be absent.
    ///
    /// # Errors
    /// As [`ImageFolder::open`].
    pub fn open_dir_with_classes(dir: &Path, classes: Vec<String>) -> Result<Self> {
        let mut samples = Vec::new();
        let mut ignored = Vec::new();
        for class_dir in Self::class_dirs(dir)? {
            let name = file_name(&class_dir);
            let label = classes.iter().position(|c| *c == name).ok_or_else(|| {
                DataError::format(
                    &class_dir,
                    format!(
                        "class directory '{name}' is not one of the {} classes of the training split",
                        classes.len()
                    ),
                )
            })?;
            for path in sorted_entries(&class_dir)? {
                if path.is_file() && is_image_file(&path) {
                    samples.push((path, label as u32));
                } else {
                    ignored.push(path);
                }
            }
        }
        if samples.is_empty() {
            return Err(DataError::format(
                dir,
                format!(
                    "no images (*.{}) in class directories",
                    IMAGE_EXTENSIONS.join(", *.")
                ),
            ));
        }
        Ok(ImageFolder {
            dir: dir.to_path_buf(),
            classes,
            samples,
            ignored,
        })
    }

    fn class_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
        Ok(sorted_entries(dir)?
            .into_iter()
            .filter(|p| p.is_dir())
            .collect())
    }

    /// The split directory that holds the class directories.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The image file of sample `index`.
    pub fn path(&self, index: usize) -> &Path {
        &self.samples[index].0
    }

    /// Entries of class directories that were not listed: other files (not `.jpg`,
    /// `.jpeg` or `.png`) and sub-directories.
    pub fn ignored_files(&self) -> &[PathBuf] {
        &self.ignored
    }
}

impl std::fmt::Debug for ImageFolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageFolder")
            .field("dir", &self.dir)
            .field("len", &self.samples.len())
            .field("classes", &self.classes.len())
            .field("ignored", &self.ignored.len())
            .finish()
    }
}

impl Dataset for ImageFolder {
    fn kind(&self) -> DatasetKind {
        DatasetKind::ImageFolder
    }

    fn len(&self) -> usize {
        self.samples.len()
    }

    fn channels(&self) -> usize {
        3
    }

    fn class_names(&self) -> &[String] {
        &self.classes
    }

    fn label(&self, index: usize) -> usize {
        self.samples[index].1 as usize
    }

    fn image(&self, index: usize) -> Result<Image> {
        decode_image_file(self.path(index))
    }

    fn describe(&self, index: usize) -> String {
        show_path(self.path(index))
    }

    fn source(&self) -> String {
        show_path(&self.dir)
    }
}

/// Reads and decodes a JPEG or PNG file into an RGB [`Image`] (see the module docs).
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read, [`DataError::Decode`] if it is not a
/// complete JPEG or PNG image; both name the file.
pub fn decode_image_file(path: &Path) -> Result<Image> {
    let bytes = read_file(path, MAX_IMAGE_FILE_BYTES, "an image")?;
    decode_image(&bytes).map_err(|message| DataError::Decode {
        path: path.to_path_buf(),
        message: one_line(&message),
    })
}

/// The decoder's limits: [`MAX_IMAGE_SIDE`] and [`MAX_IMAGE_DECODE_BYTES`].
fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_DECODE_BYTES);
    limits
}

/// Decodes JPEG or PNG bytes (the format is guessed from the content, not the name) into an
/// RGB [`Image`]; the error is the decoder's message.
///
/// The header's size is checked against [`MAX_IMAGE_SIDE`] and [`MAX_IMAGE_DECODE_BYTES`]
/// before the pixels are allocated (`ImageReader::into_decoder` sets the limits but leaves
/// that check to `ImageReader::decode`, which cannot read the EXIF orientation).
pub fn decode_image(bytes: &[u8]) -> std::result::Result<Image, String> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut limits = limits();
    reader.limits(limits.clone());
    let format = reader
        .format()
        .ok_or("unknown format (not a JPEG or PNG file)")?;
    if format == ImageFormat::Jpeg && !jpeg_has_end(bytes) {
        return Err("truncated JPEG: no end-of-image marker after the last scan".into());
    }
    let mut decoder = reader.into_decoder().map_err(|e| e.to_string())?;
    let (w, h) = decoder.dimensions();
    limits
        .reserve(decoder.total_bytes())
        .map_err(|e| format!("{w}x{h} image: {e}"))?;
    if decoder.color_type() != ColorType::Rgb8 {
        // `into_rgb8` below fills a second buffer (3 bytes a pixel) while the decoded one is
        // alive: a gray image is 3 times larger as RGB, so both count against the limit.
        let rgb = u64::from(w) * u64::from(h) * 3;
        limits
            .reserve(rgb)
            .map_err(|e| format!("{w}x{h} image as RGB: {e}"))?;
    }
    let orientation = decoder.orientation().map_err(|e| e.to_string())?;
    let mut im = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    im.apply_orientation(orientation);
    let rgb = im.into_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    if w == 0 || h == 0 {
        return Err(format!("empty image {w}x{h}"));
    }
    Ok(Image::new(h, w, 3, rgb.into_raw()))
}

/// Whether a JPEG stream has its end-of-image marker (`FF D9`) after its last start-of-scan
/// marker (`FF DA`). Inside entropy-coded data a `FF` byte is always followed by `00` or a
/// restart marker, so an `FF D9` there can only be the real end; a file cut anywhere in or
/// before its last scan has none. (The JPEG decoder returns a cut-off scan as a complete
/// image without an error, as libjpeg does with only a warning.)
fn jpeg_has_end(bytes: &[u8]) -> bool {
    let Some(sos) = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]) else {
        return true; // no scan at all: the decoder reports it
    };
    bytes[sos + 2..].windows(2).any(|w| w == [0xFF, 0xD9])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_end_marker_after_last_scan() {
        assert!(jpeg_has_end(&[0xFF, 0xD8, 0xFF, 0xDA, 1, 2, 0xFF, 0xD9]));
        assert!(!jpeg_has_end(&[0xFF, 0xD8, 0xFF, 0xDA, 1, 2, 0xFF]));
        // An end marker before the last scan (an EXIF thumbnail's) does not count.
        assert!(!jpeg_has_end(&[0xFF, 0xDA, 0xFF, 0xD9, 0xFF, 0xDA, 3]));
    }

    #[test]
    fn extensions_are_case_insensitive() {
        assert!(is_image_file(Path::new("a/b.JPEG")));
        assert!(is_image_file(Path::new("b.png")));
        assert!(!is_image_file(Path::new("b.txt")));
        assert!(!is_image_file(Path::new("jpg")));
    }
}
