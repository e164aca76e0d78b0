//! What every data set offers: the [`Dataset`] trait, the decoded [`Image`] it hands out,
//! the [`Split`] it was opened for and its [`DatasetKind`] (which picks the transforms).

use std::fmt;

use crate::error::Result;

/// Which half of a data set: pycls's `train`, and its `test` / `val`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training images (`train-*`, `data_batch_*`, `train/`).
    Train,
    /// The evaluation images (`t10k-*`, `test_batch`, `val/` or `test/`).
    Test,
}

impl Split {
    /// `"train"` or `"test"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The family a data set belongs to. Transforms are chosen from it
/// ([`build_transform`](crate::build_transform)), since pycls treats each family differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// MNIST digits: 28x28 gray.
    Mnist,
    /// Fashion-MNIST: 28x28 gray clothing, same file format as MNIST.
    FashionMnist,
    /// CIFAR-10: 32x32 RGB.
    Cifar10,
    /// ImageNet-style folders of JPEG/PNG images of any size, RGB.
    ImageFolder,
}

/// A decoded image: 8-bit pixels in HWC order (row after row, the channels of a pixel
/// together), 1 channel (gray) or 3 (RGB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    height: usize,
    width: usize,
    channels: usize,
    data: Vec<u8>,
}

impl Image {
    /// Wraps HWC pixels.
    ///
    /// # Panics
    /// If `channels` is not 1 or 3, a side is 0, or `data.len() != height * width * channels`.
    pub fn new(height: usize, width: usize, channels: usize, data: Vec<u8>) -> Self {
        assert!(
            channels == 1 || channels == 3,
            "an image has 1 or 3 channels, not {channels}"
        );
        assert!(height > 0 && width > 0, "empty image {height}x{width}");
        assert_eq!(
            data.len(),
            height * width * channels,
            "{height}x{width}x{channels} image with {} bytes",
            data.len()
        );
        Image {
            height,
            width,
            channels,
            data,
        }
    }

    /// Rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Columns.
    pub fn width(&self) -> usize {
        self.width
    }

    /// 1 (gray) or 3 (RGB).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The HWC pixels.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The HWC pixels, by value.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// Channel `c` of the pixel at row `y`, column `x`.
    pub fn get(&self, y: usize, x: usize, c: usize) -> u8 {
        self.data[(y * self.width + x) * self.channels + c]
    }

    /// The same image with 3 channels: a gray value is repeated in R, G and B (what
    /// OpenCV's `imread` does with a gray JPEG); an RGB image is returned as is.
    pub fn into_rgb(self) -> Image {
        if self.channels == 3 {
            return self;
        }
        let data = self.data.iter().flat_map(|&v| [v, v, v]).collect();
        Image::new(self.height, self.width, 3, data)
    }
}

/// A data set: a fixed list of labelled images.
///
/// Labels are cheap to get (for class counts, balanced subsets, ...), images may be costly:
/// an image folder decodes a file on each call, which is why [`Dataset::image`] can fail and
/// the loader calls it from its worker threads. `Debug` should print a summary, not the
/// samples.
pub trait Dataset: Send + Sync + fmt::Debug {
    /// The family, which picks the transforms.
    fn kind(&self) -> DatasetKind;

    /// Number of samples.
    fn len(&self) -> usize;

    /// True when there is no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of classes; every label is below it.
    fn num_classes(&self) -> usize {
        self.class_names().len()
    }

    /// Channels of the images [`Dataset::image`] returns: 1 or 3.
    fn channels(&self) -> usize;

    /// The class names, in label order.
    fn class_names(&self) -> &[String];

    /// The label of sample `index`, without decoding its image.
    ///
    /// # Panics
    /// If `index >= len()`.
    fn label(&self, index: usize) -> usize;

    /// The decoded image of sample `index`.
    ///
    /// # Errors
    /// When the image cannot be read or decoded; the error names its file.
    ///
    /// # Panics
    /// If `index >= len()`.
    fn image(&self, index: usize) -> Result<Image>;

    /// Names sample `index` for messages: its file, or the file it sits in and its position.
    fn describe(&self, index: usize) -> String {
        format!("sample {index}")
    }

    /// Names where the images come from, for messages about the whole data set (a split
    /// with no images, say): a file or a directory.
    fn source(&self) -> String {
        format!("{:?}", self.kind())
    }

    /// Every label, in sample order.
    fn labels(&self) -> Vec<usize> {
        (0..self.len()).map(|i| self.label(i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_to_rgb_repeats_the_value() {
        let im = Image::new(1, 2, 1, vec![7, 200]).into_rgb();
        assert_eq!(im.channels(), 3);
        assert_eq!(im.data(), &[7, 7, 7, 200, 200, 200]);
        assert_eq!(im.get(0, 1, 2), 200);
    }

    #[test]
    #[should_panic(expected = "bytes")]
    fn wrong_length_panics() {
        Image::new(2, 2, 3, vec![0; 11]);
    }
}
