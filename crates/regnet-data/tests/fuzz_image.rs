//! Fuzzing image decoding (the JPEG and PNG files of image folders, and `regnet predict`'s
//! input): mutated valid images (PNG chunks with their checksums recomputed, so that
//! mutations reach the decoder) and random bytes never panic, give an RGB image within the
//! size limits or a one-line error naming the file, and never make the decoder take more
//! than its memory limit (a small file claiming a huge image is a corrupt image).
//!
//! Cases: [`fuzz_support::DEFAULT_CASES`] per property, `PROPTEST_CASES` to change it
//! (`scripts/fuzz.sh` runs many).

mod fuzz_support;

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageFormat, RgbImage};
use proptest::prelude::*;
use regnet_data::image_folder::{MAX_IMAGE_DECODE_BYTES, MAX_IMAGE_SIDE};
use regnet_data::{decode_image, decode_image_file};

use fuzz_support::{
    CountingAlloc, assert_bounded, assert_names_once, assert_one_line, mutate, mutations,
    peak_during,
};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// A small valid image: RGB, gray or RGBA (PNG), RGB or gray (JPEG).
fn seed(which: usize, format: ImageFormat) -> Vec<u8> {
    let rgb = RgbImage::from_fn(9, 7, |x, y| {
        image::Rgb([(x * 28) as u8, (y * 36) as u8, 99])
    });
    let im = match which % 3 {
        0 => DynamicImage::ImageRgb8(rgb),
        1 => DynamicImage::ImageLuma8(DynamicImage::ImageRgb8(rgb).to_luma8()),
        _ if format == ImageFormat::Png => {
            DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(rgb).to_rgba8())
        }
        _ => DynamicImage::ImageRgb8(RgbImage::new(1, 1)),
    };
    let mut out = Cursor::new(Vec::new());
    im.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// Recomputes the CRC of every complete PNG chunk, so that a mutated chunk reaches the
/// decoder instead of failing its checksum.
fn fix_png_crcs(bytes: &mut [u8]) {
    let mut at = 8;
    while at + 12 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let Some(end) = (at + 8).checked_add(len).filter(|&e| e + 4 <= bytes.len()) else {
            return;
        };
        let mut crc = flate2::Crc::new();
        crc.update(&bytes[at + 4..end]);
        bytes[end..end + 4].copy_from_slice(&crc.sum().to_be_bytes());
        at = end + 4;
    }
}

/// Decodes `bytes` from a file: an RGB image within the limits, or a one-line error naming
/// the file once; the memory taken stays within the decoder's limit.
fn check_decode(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    let (result, peak) = peak_during(|| decode_image_file(path));
    let limit = 2 * MAX_IMAGE_DECODE_BYTES as usize + 16 * bytes.len() + (16 << 20);
    assert_bounded(peak, limit, bytes.len());
    match result {
        Ok(im) => {
            assert_eq!(im.channels(), 3);
            assert!(
                im.width() <= MAX_IMAGE_SIDE as usize && im.height() <= MAX_IMAGE_SIDE as usize
            );
            assert_eq!(im.data().len(), im.width() * im.height() * 3);
        }
        Err(e) => {
            let msg = e.to_string();
            assert_one_line(&msg);
            let name = path.display().to_string();
            assert!(msg.contains(&name), "{msg}");
            assert_names_once(&msg, &name);
        }
    }
    // The in-memory decoder agrees with the file one.
    assert_eq!(decode_image(bytes).is_ok(), decode_image_file(path).is_ok());
}

proptest! {
    #![proptest_config(fuzz_support::config("proptest-regressions/fuzz_image.txt"))]

    /// Mutated PNG files, most with their chunk checksums fixed.
    #[test]
    fn mutated_png(which in 0usize..3, m in mutations(6), fix_crc in prop::bool::weighted(0.8)) {
        let mut bytes = mutate(&seed(which, ImageFormat::Png), &m);
        if fix_crc {
            fix_png_crcs(&mut bytes);
        }
        let dir = tempfile::tempdir().unwrap();
        check_decode(&dir.path().join("x.png"), &bytes);
    }

    /// Mutated JPEG files (markers, table lengths, frame sizes, scan data).
    #[test]
    fn mutated_jpeg(which in 0usize..3, m in mutations(6)) {
        let bytes = mutate(&seed(which, ImageFormat::Jpeg), &m);
        let dir = tempfile::tempdir().unwrap();
        check_decode(&dir.path().join("x.jpg"), &bytes);
    }

    /// A valid PNG whose header claims any width and height (decompression bombs).
    #[test]
    fn png_claiming_any_size(w in any::<u32>(), h in any::<u32>(), which in 0usize..3) {
        let mut bytes = seed(which, ImageFormat::Png);
        // IHDR's data starts after the signature (8), the length (4) and the type (4).
        bytes[16..20].copy_from_slice(&w.to_be_bytes());
        bytes[20..24].copy_from_slice(&h.to_be_bytes());
        fix_png_crcs(&mut bytes);
        let dir = tempfile::tempdir().unwrap();
        check_decode(&dir.path().join("bomb.png"), &bytes);
    }

    /// Random bytes, some behind a PNG signature or a JPEG start marker.
    #[test]
    fn random_bytes(
        prefix in prop_oneof![
            Just(vec![]),
            Just(b"\x89PNG\r\n\x1a\n".to_vec()),
            Just(vec![0xff, 0xd8, 0xff]),
        ],
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let dir = tempfile::tempdir().unwrap();
        check_decode(&dir.path().join("r.jpeg"), &[prefix, body].concat());
    }
}

/// Found by `scripts/fuzz.sh`: a gray JPEG whose frame header claims a large image (within the
/// decode limit) took twice the limit once converted to RGB next to its decoded pixels.
#[test]
fn regression_jpeg_with_a_large_frame_stays_within_memory() {
    let mut bytes = seed(1, ImageFormat::Jpeg);
    // Mutation::SetU32 at the index proptest drew, written big-endian.
    let k = (((bytes.len() as u128 - 3) * 1332857230759360666u128) >> 64) as usize;
    bytes[k..k + 4].copy_from_slice(&999114204u32.to_be_bytes());
    let dir = tempfile::tempdir().unwrap();
    check_decode(&dir.path().join("x.jpg"), &bytes);
    // A 17884x15245 gray image: 273 MB decoded, 818 MB as RGB, over the limit together.
    let e = decode_image(&bytes).err().unwrap();
    assert!(e.contains("17884x15245 image as RGB"), "{e}");
}
