//! [`InMemoryDataset`]: equally sized images held in one buffer. MNIST, Fashion-MNIST and
//! CIFAR-10 are small enough (at most 180 MB) to be decoded once and kept like this; it is
//! also the way to feed synthetic data to the loader.

use std::fmt;

use crate::dataset::{Dataset, DatasetKind, Image};
use crate::error::{DataError, Result};

/// Equally sized 8-bit images, HWC, back to back in one buffer, with their labels.
#[derive(Clone)]
pub struct InMemoryDataset {
    kind: DatasetKind,
    height: usize,
    width: usize,
    channels: usize,
    pixels: Vec<u8>,
    labels: Vec<u16>,
    class_names: Vec<String>,
    source: String,
}

impl InMemoryDataset {
    /// Builds a data set from `labels.len()` images of `height x width x channels` bytes
    /// stored back to back in `pixels` (HWC each). `source` names where the data came from
    /// (a file or directory), for messages.
    ///
    /// # Errors
    /// [`DataError::InvalidOption`] if the sizes do not agree, `channels` is not 1 or 3, or a
    /// label is not below `class_names.len()`.
    #[allow(clippy::too_many_arguments)] // every argument is a distinct, required fact
    pub fn new(
        kind: DatasetKind,
        height: usize,
        width: usize,
        channels: usize,
        pixels: Vec<u8>,
        labels: Vec<u16>,
        class_names: Vec<String>,
        source: impl Into<String>,
    ) -> Result<Self> {
        let source = source.into();
        let bad = |m: String| Err(DataError::InvalidOption(format!("{source}: {m}")));
        if channels != 1 && channels != 3 {
            return bad(format!("images have 1 or 3 channels, not {channels}"));
        }
        if height == 0 || width == 0 {
            return bad(format!("empty image size {height}x{width}"));
        }
        let per_image = height * width * channels;
        if pixels.len() != per_image * labels.len() {
            return bad(format!(
                "{} bytes of pixels for {} images of {height}x{width}x{channels}",
                pixels.len(),
                labels.len()
            ));
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| usize::from(l) >= class_names.len())
        {
            return bad(format!(
                "label {l} of sample {i} is not below the {} classes",
                class_names.len()
            ));
        }
        Ok(InMemoryDataset {
            kind,
            height,
            width,
            channels,
            pixels,
            labels,
            class_names,
            source,
        })
    }

    /// Image height.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Image width.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The HWC pixels of sample `index`, without copying.
    pub fn pixels(&self, index: usize) -> &[u8] {
        let n = self.height * self.width * self.channels;
        &self.pixels[index * n..(index + 1) * n]
    }
}

impl fmt::Debug for InMemoryDataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryDataset")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .field("len", &self.labels.len())
            .field("shape", &[self.height, self.width, self.channels])
            .field("classes", &self.class_names.len())
            .finish()
    }
}

impl Dataset for InMemoryDataset {
    fn kind(&self) -> DatasetKind {
        self.kind
    }

    fn len(&self) -> usize {
        self.labels.len()
    }

    fn channels(&self) -> usize {
        self.channels
    }

    fn class_names(&self) -> &[String] {
        &self.class_names
    }

    fn label(&self, index: usize) -> usize {
        usize::from(self.labels[index])
    }

    fn image(&self, index: usize) -> Result<Image> {
        Ok(Image::new(
            self.height,
            self.width,
            self.channels,
            self.pixels(index).to_vec(),
        ))
    }

    fn describe(&self, index: usize) -> String {
        format!("{} #{index}", self.source)
    }

    fn source(&self) -> String {
        self.source.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| i.to_string()).collect()
    }

    #[test]
    fn stores_and_returns_images() {
        let ds = InMemoryDataset::new(
            DatasetKind::Mnist,
            1,
            2,
            1,
            vec![1, 2, 3, 4],
            vec![0, 1],
            names(2),
            "mem",
        )
        .unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.image(1).unwrap().data(), &[3, 4]);
        assert_eq!(ds.label(1), 1);
        assert_eq!(ds.describe(1), "mem #1");
    }

    #[test]
    fn rejects_labels_out_of_range_and_wrong_sizes() {
        let e = InMemoryDataset::new(
            DatasetKind::Mnist,
            1,
            1,
            1,
            vec![1],
            vec![2],
            names(2),
            "mem",
        )
        .unwrap_err();
        assert!(e.to_string().contains("label 2"), "{e}");
        let e = InMemoryDataset::new(
            DatasetKind::Mnist,
            1,
            1,
            1,
            vec![1, 2, 3],
            vec![0],
            names(2),
            "mem",
        )
        .unwrap_err();
        assert!(e.to_string().contains("3 bytes"), "{e}");
    }
}
