//! Image folders: class order, labels, decoding of PNG / JPEG / gray images, the classes of
//! the test split, and corrupt files.

mod common;

use common::{tempdir, write_folder, write_gray, write_rgb};
use regnet_data::{
    DataError, Dataset, DatasetKind, ImageFolder, Split, decode_image_file, open_dataset,
};

#[test]
fn classes_are_sorted_and_labels_follow_them() {
    let dir = tempdir();
    let root = write_folder(dir.path());
    let train = ImageFolder::open(&root, Split::Train).unwrap();
    assert_eq!(train.class_names(), ["ant", "bee", "cat"]);
    assert_eq!(train.len(), 12);
    assert_eq!(train.kind(), DatasetKind::ImageFolder);
    assert_eq!(train.channels(), 3);
    // Files sorted by name inside each class: img0.png, img1.JPEG, img2.png, img3.JPEG.
    assert!(train.path(0).ends_with("train/ant/img0.png"));
    assert!(train.path(5).ends_with("train/bee/img1.JPEG"));
    assert_eq!(train.labels(), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    // PNG pixels are exact: cat (class dir index 0 in the writer, v = 0), img2: 26 x 21.
    let im = train.image(10).unwrap();
    assert_eq!((im.height(), im.width(), im.channels()), (21, 26, 3));
    assert_eq!(im.get(4, 7, 1), (4 * 3 + 7 * 5 + 40) as u8);
    // A flat JPEG is within a step or two of its colour: bee (v = 160), img1.
    let im = train.image(5).unwrap();
    let v = im.get(5, 5, 2) as i32;
    assert!((v - 240).abs() <= 3, "{v}");
    assert!(train.describe(5).ends_with("img1.JPEG"));
}

#[test]
fn test_split_takes_the_training_classes() {
    let dir = tempdir();
    let root = write_folder(dir.path());
    // Remove a class from val: the others keep their training labels.
    std::fs::remove_dir_all(root.join("val/ant")).unwrap();
    let val = open_dataset("imagenet", Some(&root), Split::Test).unwrap();
    assert_eq!(val.num_classes(), 3);
    assert_eq!(val.labels(), [1, 1, 2, 2]);
    // A val class unknown to train is an error naming its directory.
    write_rgb(&root.join("val/zebra/z.png"), 4, 4, |_, _, _| 9);
    let e = ImageFolder::open(&root, Split::Test).unwrap_err();
    assert!(
        e.to_string().contains("val/zebra") && e.to_string().contains("not one of the 3"),
        "{e}"
    );
}

#[test]
fn test_split_falls_back_to_a_test_directory() {
    let dir = tempdir();
    write_rgb(&dir.path().join("test/b/1.png"), 3, 3, |_, _, _| 1);
    write_rgb(&dir.path().join("test/a/1.png"), 3, 3, |_, _, _| 1);
    let ds = ImageFolder::open(dir.path(), Split::Test).unwrap();
    assert_eq!(ds.labels(), [0, 1]);
    assert!(ds.dir().ends_with("test"));
}

#[test]
fn gray_images_become_rgb_and_other_files_are_ignored() {
    let dir = tempdir();
    write_gray(&dir.path().join("train/a/g.png"), 5, 4, |y, x| {
        (y * 10 + x) as u8
    });
    write_gray(&dir.path().join("train/a/g2.jpg"), 5, 4, |_, _| 77);
    std::fs::write(dir.path().join("train/a/notes.txt"), "not an image").unwrap();
    std::fs::create_dir_all(dir.path().join("train/a/nested")).unwrap();
    std::fs::write(dir.path().join("train/LICENSE"), "a file among the classes").unwrap();
    let ds = ImageFolder::open(dir.path(), Split::Train).unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds.class_names(), ["a"]);
    assert_eq!(ds.ignored_files().len(), 2);
    let im = ds.image(0).unwrap();
    assert_eq!((im.height(), im.width(), im.channels()), (4, 5, 3));
    assert_eq!(&im.data()[3 * (2 * 5 + 3)..][..3], &[23, 23, 23]);
    let im = ds.image(1).unwrap();
    assert_eq!(im.channels(), 3);
    assert!(im.data().iter().all(|&v| v.abs_diff(77) <= 2));
}

#[test]
fn a_png_named_jpg_is_decoded_by_its_content() {
    let dir = tempdir();
    let png = dir.path().join("x.png");
    write_rgb(&png, 3, 2, |y, x, c| (y * 100 + x * 10 + c) as u8);
    let jpg = dir.path().join("x.jpg");
    std::fs::rename(&png, &jpg).unwrap();
    assert_eq!(decode_image_file(&jpg).unwrap().get(1, 2, 1), 121);
}

fn assert_decode_error(e: DataError, path: &std::path::Path, what: &str) {
    let msg = e.to_string();
    assert!(matches!(e, DataError::Decode { .. }), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(what), "{msg}");
    assert_eq!(e.path(), Some(path));
}

#[test]
fn a_text_file_named_jpg_is_an_error_naming_it() {
    let dir = tempdir();
    let path = dir.path().join("fake.jpg");
    std::fs::write(&path, "hello, I am not a JPEG").unwrap();
    assert_decode_error(
        decode_image_file(&path).unwrap_err(),
        &path,
        "unknown format",
    );
}

/// A 64x48 JPEG with some texture, so its scan has real data.
fn textured_jpeg(path: &std::path::Path) -> Vec<u8> {
    write_rgb(path, 64, 48, |y, x, c| {
        ((x * 7 + y * 13 + c * 50) % 256) as u8
    });
    std::fs::read(path).unwrap()
}

#[test]
fn a_truncated_jpeg_is_an_error_naming_it() {
    let dir = tempdir();
    let path = dir.path().join("cut.jpg");
    let bytes = textured_jpeg(&path);
    for keep in [bytes.len() - 2, bytes.len() * 2 / 3, 300, 30] {
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let e = decode_image_file(&path).unwrap_err();
        assert_decode_error(e, &path, "");
    }
    // The whole file decodes.
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(decode_image_file(&path).unwrap().width(), 64);
}

#[test]
fn a_truncated_png_is_an_error_naming_it() {
    let dir = tempdir();
    let path = dir.path().join("cut.png");
    write_rgb(&path, 40, 30, |y, x, c| {
        ((x * 7 + y * 13 + c * 50) % 256) as u8
    });
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_decode_error(decode_image_file(&path).unwrap_err(), &path, "");
}

#[test]
fn missing_or_empty_folders_are_errors() {
    let dir = tempdir();
    let e = ImageFolder::open(dir.path(), Split::Train).unwrap_err();
    assert!(
        matches!(e, DataError::Io { .. }) && e.to_string().contains("train"),
        "{e}"
    );
    std::fs::create_dir_all(dir.path().join("train/a")).unwrap();
    let e = ImageFolder::open(dir.path(), Split::Train).unwrap_err();
    assert!(e.to_string().contains("no images"), "{e}");
    let e = open_dataset("image_folder", None, Split::Train).unwrap_err();
    assert!(matches!(e, DataError::MissingPath { .. }), "{e}");
}

#[test]
fn exif_orientation_is_applied_as_imread_does() {
    use image::ImageEncoder;
    // A 32x16 JPEG, left half red, right half blue, tagged "rotate 90 degrees clockwise"
    // (EXIF orientation 6): upright it is 16 wide, 32 tall, red on top.
    let im = image::RgbImage::from_fn(32, 16, |x, _| {
        if x < 16 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    });
    let mut exif = b"II*\0\x08\0\0\0\x01\0".to_vec(); // TIFF header, IFD of 1 entry
    exif.extend_from_slice(b"\x12\x01\x03\0\x01\0\0\0\x06\0\0\0"); // 0x0112 SHORT 1 = 6
    exif.extend_from_slice(&[0; 4]); // no next IFD
    let mut bytes = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95);
    enc.set_exif_metadata(exif).unwrap();
    enc.write_image(im.as_raw(), 32, 16, image::ExtendedColorType::Rgb8)
        .unwrap();
    let dir = tempdir();
    let path = dir.path().join("rotated.jpg");
    std::fs::write(&path, bytes).unwrap();
    let im = decode_image_file(&path).unwrap();
    assert_eq!((im.width(), im.height()), (16, 32));
    assert!(im.get(2, 8, 0) > 200 && im.get(2, 8, 2) < 60, "red on top");
    assert!(
        im.get(29, 8, 2) > 200 && im.get(29, 8, 0) < 60,
        "blue at the bottom"
    );
}
