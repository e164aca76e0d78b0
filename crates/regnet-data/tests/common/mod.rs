//! Writers of tiny data files for the tests: IDX (raw and gzipped), CIFAR-10 batches (a
//! pickle laid out the way Python 2's cPickle wrote the real files, and binary records) and
//! image folders.
#![allow(dead_code)] // each test file uses some of these

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// The bytes of an IDX file of unsigned bytes.
pub fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Writes `<prefix>-images-idx3-ubyte[.gz]` and `<prefix>-labels-idx1-ubyte[.gz]` holding
/// `n` images of `rows x cols`, pixel `(i, p)` = `(i * 31 + p) % 256`, label `i % 10`.
pub fn write_mnist(dir: &Path, prefix: &str, n: usize, rows: usize, cols: usize, gz: bool) {
    let pixels: Vec<u8> = (0..n * rows * cols)
        .map(|k| ((k / (rows * cols)) * 31 + k % (rows * cols)) as u8)
        .collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let images = idx_bytes(&[n as u32, rows as u32, cols as u32], &pixels);
    let labels = idx_bytes(&[n as u32], &labels);
    let ext = if gz { ".gz" } else { "" };
    let (images, labels) = if gz {
        (gzip(&images), gzip(&labels))
    } else {
        (images, labels)
    };
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte{ext}")), images).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte{ext}")), labels).unwrap();
}

/// The 3072 plane bytes (R, G, B planes) of test CIFAR image `i`.
pub fn cifar_planes(i: usize) -> Vec<u8> {
    (0..3072).map(|k| ((i * 7 + k * 13) % 256) as u8).collect()
}

fn pickle_int(out: &mut Vec<u8>, v: usize) {
    if v < 256 {
        out.extend_from_slice(&[b'K', v as u8]);
    } else if v < 65536 {
        out.push(b'M');
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else {
        out.push(b'J');
        out.extend_from_slice(&(v as i32).to_le_bytes());
    }
}

fn pickle_str(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() < 256 {
        out.extend_from_slice(&[b'U', s.len() as u8]);
    } else {
        out.push(b'T');
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(s);
}

/// A CIFAR batch pickled as Python 2's cPickle (protocol 2) wrote `data_batch_1`: a dict of
/// `str` keys, the array through `numpy.core.multiarray._reconstruct` and `BUILD`, the labels
/// as a list of small ints, with memo puts along the way.
pub fn cifar_py2_pickle(planes: &[Vec<u8>], labels: &[usize]) -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'q', 1, b'('];
    pickle_str(&mut p, b"data");
    p.extend_from_slice(b"q\x02cnumpy.core.multiarray\n_reconstruct\nq\x03cnumpy\nndarray\nq\x04");
    p.extend_from_slice(b"K\x00\x85U\x01b\x87Rq\x05(K\x01");
    pickle_int(&mut p, planes.len());
    pickle_int(&mut p, 3072);
    p.extend_from_slice(b"\x86cnumpy\ndtype\nq\x06U\x02u1K\x00K\x01\x87Rq\x07");
    p.extend_from_slice(b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89");
    pickle_str(&mut p, &planes.concat());
    p.extend_from_slice(b"tb");
    pickle_str(&mut p, b"labels");
    p.extend_from_slice(b"q\x08]q\x09(");
    for &l in labels {
        pickle_int(&mut p, l);
    }
    p.push(b'e');
    pickle_str(&mut p, b"batch_label");
    pickle_str(&mut p, b"training batch 1 of 5");
    pickle_str(&mut p, b"filenames");
    p.extend_from_slice(b"](");
    for i in 0..labels.len() {
        pickle_str(&mut p, format!("image_{i}.png").as_bytes());
    }
    p.extend_from_slice(b"eu.");
    p
}

/// `batches.meta` as Python 2 wrote it.
pub fn cifar_py2_meta(names: &[&str]) -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'q', 1, b'('];
    pickle_str(&mut p, b"num_cases_per_batch");
    pickle_int(&mut p, 10000);
    pickle_str(&mut p, b"label_names");
    p.extend_from_slice(b"]q\x02(");
    for n in names {
        pickle_str(&mut p, n.as_bytes());
    }
    p.push(b'e');
    pickle_str(&mut p, b"num_vis");
    pickle_int(&mut p, 3072);
    p.extend_from_slice(b"u.");
    p
}

/// A binary CIFAR batch: records of a label byte and the planes.
pub fn cifar_bin(planes: &[Vec<u8>], labels: &[usize]) -> Vec<u8> {
    planes
        .iter()
        .zip(labels)
        .flat_map(|(p, &l)| std::iter::once(l as u8).chain(p.iter().copied()))
        .collect()
}

/// Writes a CIFAR-10 Python directory whose train split has `per_batch` images in each of the
/// 5 batches and whose test split has `per_batch` images; image `i` of the split has planes
/// `cifar_planes(i)` and label `i % 10`.
pub fn write_cifar_py(dir: &Path, per_batch: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, first) in (1..=5)
        .map(|b| (format!("data_batch_{b}"), (b - 1) * per_batch))
        .chain([("test_batch".to_string(), 0)])
    {
        let idx: Vec<usize> = (first..first + per_batch).collect();
        let planes: Vec<Vec<u8>> = idx.iter().map(|&i| cifar_planes(i)).collect();
        let labels: Vec<usize> = idx.iter().map(|i| i % 10).collect();
        std::fs::write(dir.join(name), cifar_py2_pickle(&planes, &labels)).unwrap();
    }
}

/// Writes an RGB image (pixel value from `f(y, x, c)`) in the format its extension names.
pub fn write_rgb(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32, u32) -> u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let im = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([f(y, x, 0), f(y, x, 1), f(y, x, 2)])
    });
    im.save(path).unwrap();
}

/// Writes a gray image in the format its extension names.
pub fn write_gray(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let im = image::GrayImage::from_fn(w, h, |x, y| image::Luma([f(y, x)]));
    im.save(path).unwrap();
}

/// An image folder `root/{train,val}/{cat,ant,bee}` (classes sorted: ant, bee, cat) with
/// PNG and JPEG files of varied sizes; returns the root.
pub fn write_folder(root: &Path) -> PathBuf {
    for (split, n) in [("train", 4u32), ("val", 2)] {
        for (ci, class) in ["cat", "ant", "bee"].iter().enumerate() {
            for k in 0..n {
                let dir = root.join(split).join(class);
                let (w, h) = (20 + 3 * k + ci as u32, 17 + 2 * k);
                let v = (ci * 80) as u8;
                if k % 2 == 0 {
                    write_rgb(&dir.join(format!("img{k}.png")), w, h, |y, x, c| {
                        v.wrapping_add((y * 3 + x * 5 + c * 40) as u8)
                    });
                } else {
                    write_rgb(&dir.join(format!("img{k}.JPEG")), w, h, |_, _, c| {
                        v.wrapping_add((c * 40) as u8)
                    });
                }
            }
        }
    }
    root.to_path_buf()
}

/// A PNG file of a few dozen bytes whose header claims `w x h` RGB pixels (a decompression
/// bomb): a valid 1x1 PNG with its IHDR size patched and the chunk's CRC recomputed.
pub fn png_bomb(w: u32, h: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::RgbImage::new(1, 1)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    let mut bytes = out.into_inner();
    // IHDR: signature (8), length (4), "IHDR" (4), width, height, 5 more bytes, CRC.
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    bytes
}
