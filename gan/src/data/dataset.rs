//! Image datasets held in memory as f32 pixels in [0, 1]: MNIST-format IDX folders, the embedded
//! 8×8 UCI digits and folders of image files, with the splits the experiments need.

use super::idx::read_idx_pair;
use super::limits::PixelBudget;
use super::{DataError, DataLimits};
use flate2::read::GzDecoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader};
use rayon::prelude::*;
use saddle_engine::Rng;
use std::collections::HashSet;
use std::io::{BufRead, Cursor, Read, Seek};
use std::path::{Path, PathBuf};

/// Which half of MNIST / Fashion-MNIST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// `train-*`: 60,000 images.
    Train,
    /// `t10k-*`: 10,000 images.
    Test,
}

/// Colour layout of images read from files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channels {
    /// Three channels, red, green and blue.
    Rgb,
    /// One channel of grey levels.
    Grey,
}

impl Channels {
    /// Channels per pixel: 3 or 1.
    pub fn count(self) -> usize {
        match self {
            Channels::Rgb => 3,
            Channels::Grey => 1,
        }
    }
}

/// The label of an image whose class is hidden (the unlabelled part of a k% split that
/// co-training keeps in the same dataset as the labelled part).
pub const UNLABELLED: u8 = u8::MAX;

/// `n` images of `channels × height × width`, pixels in [0, 1], stored NCHW (image-major, then
/// channel, then row). `labels`, when present, holds one class in `0..num_classes` per image
/// (or [`UNLABELLED`] where a split hid it).
/// `source` says where the data came from and names the dataset in errors.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageDataset {
    /// Number of images.
    pub n: usize,
    /// Channels per image (1 or 3).
    pub channels: usize,
    /// Rows per image.
    pub height: usize,
    /// Columns per image.
    pub width: usize,
    /// `n · channels · height · width` values in [0, 1], NCHW.
    pub pixels: Vec<f32>,
    /// One class per image, when the data has labels.
    pub labels: Option<Vec<u8>>,
    /// Number of classes the labels range over.
    pub num_classes: usize,
    /// Where the data came from (a path, or the embedded digits).
    pub source: String,
}

// The UCI digits as shipped by scikit-learn; see gan/data/digits/PROVENANCE.md.
const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../data/digits/digits.csv.gz");
const DIGITS_SOURCE: &str = "embedded gan/data/digits/digits.csv.gz";

impl ImageDataset {
    /// Number of images (`n`).
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Values per image, `channels * height * width`.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The pixels of image `i`. Panics if `i >= n`, as slice indexing does.
    pub fn image(&self, i: usize) -> &[f32] {
        let len = self.image_len();
        &self.pixels[i * len..(i + 1) * len]
    }

    /// Images per class, when the dataset is labelled.
    pub fn label_counts(&self) -> Option<Vec<usize>> {
        let labels = self.labels.as_ref()?;
        let mut counts = vec![0; self.num_classes];
        // Images marked UNLABELLED (or out of range) are in no class.
        for &l in labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        Some(counts)
    }

    /// MNIST or Fashion-MNIST (the same format) from a folder holding the four standard files
    /// (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
    /// `t10k-labels-idx1-ubyte`), each with or without `.gz`, under the default
    /// [`DataLimits`].
    pub fn mnist(dir: impl AsRef<Path>, split: Split) -> Result<Self, DataError> {
        Self::mnist_with(dir, split, &DataLimits::default())
    }

    /// [`ImageDataset::mnist`] under the given limits ([`DataLimits::idx_max_bytes`] bounds each
    /// file). The two files' counts are compared from their headers, before any data is read.
    pub fn mnist_with(
        dir: impl AsRef<Path>,
        split: Split,
        limits: &DataLimits,
    ) -> Result<Self, DataError> {
        let dir = dir.as_ref();
        let prefix = match split {
            Split::Train => "train",
            Split::Test => "t10k",
        };
        let images_path = find_file(dir, &format!("{prefix}-images-idx3-ubyte"))?;
        let labels_path = find_file(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
        let (images, labels) = read_idx_pair(&images_path, &labels_path, limits)?;
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l > 9) {
            return Err(DataError::new(
                &labels_path,
                format!("label {l} at index {i} is outside the classes 0..=9"),
            ));
        }
        let lut: [f32; 256] = std::array::from_fn(|v| v as f32 / 255.0);
        let pixels = images.pixels().iter().map(|&b| lut[b as usize]).collect();
        Ok(ImageDataset {
            n: images.count,
            channels: 1,
            height: images.rows,
            width: images.cols,
            pixels,
            labels: Some(labels),
            num_classes: 10,
            source: images_path.display().to_string(),
        })
    }

    /// The 1797 UCI 8×8 digits embedded in the binary (values 0..16 scaled to [0, 1]), labelled
    /// 0-9.
    pub fn digits() -> Result<Self, DataError> {
        let bad = |problem: String| DataError::new(DIGITS_SOURCE, problem);
        let mut text = String::new();
        GzDecoder::new(DIGITS_CSV_GZ)
            .read_to_string(&mut text)
            .map_err(|e| bad(format!("corrupt gzip data ({e})")))?;
        let mut pixels = Vec::with_capacity(1797 * 64);
        let mut labels = Vec::with_capacity(1797);
        for (line_no, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
            let values = line
                .split(',')
                .map(|v| v.trim().parse::<u8>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(format!("line {}: {e}", line_no + 1)))?;
            let [image @ .., label] = values.as_slice() else {
                return Err(bad(format!("line {}: empty row", line_no + 1)));
            };
            if image.len() != 64 || *label > 9 || image.iter().any(|&v| v > 16) {
                return Err(bad(format!(
                    "line {}: expected 64 values in 0..=16 and a label in 0..=9",
                    line_no + 1
                )));
            }
            pixels.extend(image.iter().map(|&v| v as f32 / 16.0));
            labels.push(*label);
        }
        Ok(ImageDataset {
            n: labels.len(),
            channels: 1,
            height: 8,
            width: 8,
            pixels,
            labels: Some(labels),
            num_classes: 10,
            source: DIGITS_SOURCE.to_string(),
        })
    }

    /// Every image file in `dir` and its subfolders (any format the `image` crate reads, chosen
    /// by extension, decoded by content), in path order, centre-cropped to a square and resized
    /// to `size × size`. Unlabelled. Files whose extension is not an image format's are skipped,
    /// as are hidden ones; an image file that does not decode is an error naming it, and so is a
    /// folder with no images. Images beyond the default [`DataLimits`] are refused (an error
    /// naming the file and the limit) before they are decoded.
    ///
    /// Symbolic links are followed, each folder once (a link back up, such as `ln -s . self`,
    /// adds nothing), and a file reached twice (through a link to it, or a hard link) counts
    /// once, under the first of its paths in the walk (which visits entries in name order).
    pub fn image_folder(
        dir: impl AsRef<Path>,
        size: usize,
        channels: Channels,
    ) -> Result<Self, DataError> {
        Self::image_folder_with(dir, size, channels, &DataLimits::default())
    }

    /// [`ImageDataset::image_folder`] under the given limits. Each image's declared size is
    /// checked against them before it is decoded; images are cropped before they are resized,
    /// so the work after decoding is bounded by the output size; and the images being decoded
    /// at once, across threads, hold at most [`DataLimits::image_max_pixels`] pixels together
    /// (a big image waits for room), so the parallel decoding does not multiply the cost.
    pub fn image_folder_with(
        dir: impl AsRef<Path>,
        size: usize,
        channels: Channels,
        limits: &DataLimits,
    ) -> Result<Self, DataError> {
        let dir = dir.as_ref();
        let side = output_side(dir, size, limits)?;
        let mut files = collect_image_files(dir)?;
        if files.is_empty() {
            return Err(DataError::new(
                dir,
                "no image files (png, jpeg, bmp, gif, webp, ...) in the folder or its subfolders",
            ));
        }
        files.sort();
        // Decoding dominates and is independent per file; the output order is the path order
        // whatever the thread count, and the first failing file in that order is reported.
        let budget = PixelBudget::new(limits.image_max_pixels);
        let decoded: Vec<Result<Vec<f32>, DataError>> = files
            .par_iter()
            .map(|path| {
                let reader = ImageReader::open(path)
                    .map_err(|e| DataError::new(path, format!("cannot read the file ({e})")))?;
                decode_square(reader, path, side, channels, limits, &budget)
            })
            .collect();
        let mut pixels = Vec::with_capacity(files.len() * channels.count() * size * size);
        for image in decoded {
            pixels.extend(image?);
        }
        Ok(ImageDataset {
            n: files.len(),
            channels: channels.count(),
            height: size,
            width: size,
            pixels,
            labels: None,
            num_classes: 0,
            source: dir.display().to_string(),
        })
    }

    /// The images centred on a `size × size` canvas of zeros (the background of MNIST-like
    /// data), e.g. 28 -> 32 for the DCGAN architecture. An odd margin puts the extra row/column
    /// at the bottom/right.
    pub fn pad_to(&self, size: usize) -> Result<Self, DataError> {
        if size < self.height || size < self.width {
            return Err(DataError::new(
                &self.source,
                format!(
                    "cannot pad {}x{} images to {size}x{size}: the target is smaller",
                    self.height, self.width
                ),
            ));
        }
        let (top, left) = ((size - self.height) / 2, (size - self.width) / 2);
        let mut pixels = vec![0.0; self.n * self.channels * size * size];
        let src_planes = self.pixels.chunks_exact(self.height * self.width);
        for (dst, src) in pixels.chunks_exact_mut(size * size).zip(src_planes) {
            for (y, row) in src.chunks_exact(self.width).enumerate() {
                let at = (top + y) * size + left;
                dst[at..at + self.width].copy_from_slice(row);
            }
        }
        Ok(ImageDataset {
            height: size,
            width: size,
            pixels,
            ..self.header_clone()
        })
    }

    /// Every pixel repeated `factor × factor` times (nearest-neighbour upscaling), e.g. the 8×8
    /// digits shown to a 16×16 DCGAN.
    pub fn upscale_nearest(&self, factor: usize) -> Result<Self, DataError> {
        if factor == 0 {
            return Err(DataError::new(
                &self.source,
                "upscale factor must be positive",
            ));
        }
        let (h, w) = (self.height * factor, self.width * factor);
        let mut pixels = Vec::with_capacity(self.pixels.len() * factor * factor);
        for plane in self.pixels.chunks_exact(self.height * self.width) {
            for y in 0..h {
                let row = &plane[(y / factor) * self.width..][..self.width];
                pixels.extend(row.iter().flat_map(|&v| std::iter::repeat_n(v, factor)));
            }
        }
        Ok(ImageDataset {
            height: h,
            width: w,
            pixels,
            ..self.header_clone()
        })
    }

    /// The images at `indices`, in that order (repeats allowed).
    pub fn subset(&self, indices: &[usize]) -> Result<Self, DataError> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.n) {
            return Err(DataError::new(
                &self.source,
                format!("index {bad} out of range for {} images", self.n),
            ));
        }
        let len = self.image_len();
        let mut pixels = Vec::with_capacity(indices.len() * len);
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        Ok(ImageDataset {
            n: indices.len(),
            pixels,
            labels: self
                .labels
                .as_ref()
                .map(|l| indices.iter().map(|&i| l[i]).collect()),
            ..self.header_clone()
        })
    }

    /// Splits into a labelled part with exactly `per_class` images of each class, drawn at
    /// random (seeded), and the rest with its labels removed, both in the original order. For
    /// semi-supervised training (e.g. 100 labels on MNIST = 10 per class). An error if the
    /// dataset is unlabelled or a class has fewer than `per_class` images.
    pub fn labelled_split(&self, per_class: usize, seed: u64) -> Result<(Self, Self), DataError> {
        let Some(labels) = &self.labels else {
            return Err(DataError::new(
                &self.source,
                "labelled_split needs a labelled dataset",
            ));
        };
        let mut by_class = vec![Vec::new(); self.num_classes];
        for (i, &l) in labels.iter().enumerate() {
            by_class[l as usize].push(i);
        }
        let mut rng = Rng::new(seed);
        let mut chosen = vec![false; self.n];
        for (class, members) in by_class.iter_mut().enumerate() {
            if members.len() < per_class {
                return Err(DataError::new(
                    &self.source,
                    format!(
                        "class {class} has {} images, fewer than the {per_class} per class asked for",
                        members.len()
                    ),
                ));
            }
            rng.shuffle(members);
            for &i in &members[..per_class] {
                chosen[i] = true;
            }
        }
        let (labelled, rest): (Vec<usize>, Vec<usize>) = (0..self.n).partition(|&i| chosen[i]);
        let mut unlabelled = self.subset(&rest)?;
        unlabelled.labels = None;
        Ok((self.subset(&labelled)?, unlabelled))
    }

    /// The k% labelled split of the fewer-labels experiments (S2GAN / S3GAN): a labelled part of
    /// exactly `round(N * percent / 100)` images (half rounds away from zero, computed as
    /// `N * percent / 100` in f64, exact for whole and half percents) and the rest with its labels
    /// removed, both in the original order; every image lands in exactly one of them.
    ///
    /// The labelled part is stratified: each class gets its proportional share of the total,
    /// `count_c * total / N`, rounded down, and the images still missing go one each to the
    /// classes with the largest remainders (ties to the lower class). Within a class the images
    /// are drawn at random (seeded). The paper draws a plain random subset; on ImageNet's
    /// 1.3 million images the two hardly differ, while at our scale (600 labels on
    /// Fashion-MNIST at 1%) stratifying keeps every class represented and removes one source
    /// of seed-to-seed variance. An error if the dataset is unlabelled or `percent` is not a
    /// finite number in [0, 100].
    pub fn percent_split(&self, percent: f64, seed: u64) -> Result<(Self, Self), DataError> {
        let (labelled, rest) = self.percent_split_indices(percent, seed)?;
        let mut unlabelled = self.subset(&rest)?;
        unlabelled.labels = None;
        Ok((self.subset(&labelled)?, unlabelled))
    }

    /// The indices behind [`ImageDataset::percent_split`]: `(labelled, unlabelled)`, each
    /// ascending, disjoint and together `0..N`.
    pub fn percent_split_indices(
        &self,
        percent: f64,
        seed: u64,
    ) -> Result<(Vec<usize>, Vec<usize>), DataError> {
        let Some(labels) = &self.labels else {
            return Err(DataError::new(
                &self.source,
                "percent_split needs a labelled dataset",
            ));
        };
        if !(percent.is_finite() && (0.0..=100.0).contains(&percent)) {
            return Err(DataError::new(
                &self.source,
                format!("the labelled share must be a percentage in [0, 100], got {percent}"),
            ));
        }
        let total = (self.n as f64 * percent / 100.0).round() as usize;
        let mut by_class = vec![Vec::new(); self.num_classes];
        for (i, &l) in labels.iter().enumerate() {
            by_class[l as usize].push(i);
        }
        // Largest-remainder apportionment of `total` over the classes, in integers.
        let n = self.n.max(1);
        let mut quota: Vec<usize> = by_class.iter().map(|m| m.len() * total / n).collect();
        let missing = total - quota.iter().sum::<usize>();
        let mut by_remainder: Vec<usize> = (0..by_class.len()).collect();
        by_remainder.sort_by_key(|&c| std::cmp::Reverse(by_class[c].len() * total % n));
        for &c in &by_remainder[..missing] {
            quota[c] += 1;
        }
        let mut rng = Rng::new(seed);
        let mut chosen = vec![false; self.n];
        for (members, &q) in by_class.iter_mut().zip(&quota) {
            rng.shuffle(members);
            for &i in &members[..q] {
                chosen[i] = true;
            }
        }
        Ok((0..self.n).partition(|&i| chosen[i]))
    }

    /// Moves `count` images chosen at random (seeded) out into a validation set, which is
    /// returned; `self` keeps the rest. Both keep the original order.
    pub fn split_off_validation(&mut self, count: usize, seed: u64) -> Result<Self, DataError> {
        if count > self.n {
            return Err(DataError::new(
                &self.source,
                format!(
                    "cannot hold out {count} validation images from {} images",
                    self.n
                ),
            ));
        }
        let mut order: Vec<usize> = (0..self.n).collect();
        Rng::new(seed).shuffle(&mut order);
        let mut held = vec![false; self.n];
        for &i in &order[..count] {
            held[i] = true;
        }
        let (validation, rest): (Vec<usize>, Vec<usize>) = (0..self.n).partition(|&i| held[i]);
        let validation = self.subset(&validation)?;
        *self = self.subset(&rest)?;
        Ok(validation)
    }

    /// Everything but the pixels, for building derived datasets.
    fn header_clone(&self) -> Self {
        ImageDataset {
            pixels: Vec::new(),
            labels: self.labels.clone(),
            source: self.source.clone(),
            ..*self
        }
    }
}

/// `dir/stem.gz`, else `dir/stem`; the error names the compressed form.
fn find_file(dir: &Path, stem: &str) -> Result<PathBuf, DataError> {
    let gz = dir.join(format!("{stem}.gz"));
    let raw = dir.join(stem);
    if gz.is_file() {
        Ok(gz)
    } else if raw.is_file() {
        Ok(raw)
    } else {
        Err(DataError::new(
            &gz,
            format!(
                "file not found (nor {stem} without .gz); a MNIST-format folder holds \
                 train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and \
                 t10k-labels-idx1-ubyte, each optionally gzipped"
            ),
        ))
    }
}

/// The output side as the decoders' u32, positive and within the side limit.
fn output_side(source: &Path, size: usize, limits: &DataLimits) -> Result<u32, DataError> {
    if size == 0 {
        return Err(DataError::new(source, "image size must be positive"));
    }
    match u32::try_from(size) {
        Ok(side) if side <= limits.image_max_side => Ok(side),
        _ => Err(DataError::new(
            source,
            format!(
                "image size {size} is over the limit of {} pixels a side \
                 (DataLimits::image_max_side, saddle's --max-image-side)",
                limits.image_max_side
            ),
        )),
    }
}

/// What identifies a file or folder whatever the path it is reached by.
#[cfg(unix)]
type FileId = (u64, u64);
#[cfg(not(unix))]
type FileId = PathBuf;

#[cfg(unix)]
fn file_id(_path: &Path, meta: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn file_id(path: &Path, _meta: &std::fs::Metadata) -> FileId {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The image files under `root`, following links but entering each folder once and listing
/// each file once (see [`ImageDataset::image_folder`]). Entries are visited in name order, so
/// which path a file reached twice keeps does not depend on the order the system lists them.
fn collect_image_files(root: &Path) -> Result<Vec<PathBuf>, DataError> {
    let cannot_list =
        |dir: &Path, e: std::io::Error| DataError::new(dir, format!("cannot list ({e})"));
    let root_meta = std::fs::metadata(root).map_err(|e| cannot_list(root, e))?;
    let mut seen_dirs = HashSet::from([file_id(root, &root_meta)]);
    let mut seen_files = HashSet::new();
    let mut files = Vec::new();
    // Depth first without recursion: a deep tree cannot overflow the stack.
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let mut entries = std::fs::read_dir(&dir)
            .and_then(|list| {
                list.map(|e| e.map(|e| e.path()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| cannot_list(&dir, e))?;
        entries.sort();
        let mut subdirs = Vec::new();
        for path in entries {
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            let is_image = image::ImageFormat::from_path(&path).is_ok();
            // Follows links. An entry that cannot be looked at (a dangling link) is kept when
            // its name is an image's, so that decoding it reports the problem.
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_dir() => {
                    if seen_dirs.insert(file_id(&path, &meta)) {
                        subdirs.push(path);
                    }
                }
                Ok(meta) => {
                    if is_image && seen_files.insert(file_id(&path, &meta)) {
                        files.push(path);
                    }
                }
                Err(_) if is_image => files.push(path),
                Err(_) => {}
            }
        }
        pending.extend(subdirs.into_iter().rev());
    }
    Ok(files)
}

/// The bytes of one image file (any format the folder loader reads, told by content, else by
/// `name`'s extension) as the folder loader prepares it: checked against `limits` before
/// decoding, centre-cropped to a square, resized to `size × size` (triangle filter), as CHW
/// floats in [0, 1]. `name` names the image in errors. The image-folder loader's entry point
/// for fuzzing: no file needed.
pub fn decode_square_image(
    bytes: &[u8],
    name: &Path,
    size: usize,
    channels: Channels,
    limits: &DataLimits,
) -> Result<Vec<f32>, DataError> {
    let side = output_side(name, size, limits)?;
    let mut reader = ImageReader::new(Cursor::new(bytes));
    if let Ok(format) = image::ImageFormat::from_path(name) {
        reader.set_format(format);
    }
    let budget = PixelBudget::new(limits.image_max_pixels);
    decode_square(reader, name, side, channels, limits, &budget)
}

fn decode_square<R: BufRead + Seek>(
    reader: ImageReader<R>,
    path: &Path,
    size: u32,
    channels: Channels,
    limits: &DataLimits,
    budget: &PixelBudget,
) -> Result<Vec<f32>, DataError> {
    let cannot_decode = |e: image::ImageError| {
        // Only PNG is always compiled in: say which feature brings the other formats.
        let hint =
            if cfg!(feature = "image-formats") || !matches!(e, image::ImageError::Unsupported(_)) {
                ""
            } else {
                "; JPEG, BMP, GIF and WebP need saddle-gan's `image-formats` feature"
            };
        DataError::new(path, format!("cannot decode the image ({e}{hint})"))
    };
    let mut reader = reader
        .with_guessed_format()
        .map_err(|e| DataError::new(path, format!("cannot read the file ({e})")))?;
    // While the header is read: the decoder's own allocations (metadata chunks and the like)
    // are bounded, the declared size is not checked yet, so that the check below words it.
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(limits.decoder_alloc());
    reader.limits(decoder_limits.clone());
    let mut decoder = reader.into_decoder().map_err(cannot_decode)?;
    let (width, height) = decoder.dimensions();
    limits.check_image(path, width, height)?;
    // Then the decoder is held to the checked size, and the pixels it will allocate are
    // counted against its allocation limit, as `ImageReader::decode` does.
    decoder_limits.max_image_width = Some(limits.image_max_side);
    decoder_limits.max_image_height = Some(limits.image_max_side);
    decoder_limits
        .reserve(decoder.total_bytes())
        .map_err(cannot_decode)?;
    decoder.set_limits(decoder_limits).map_err(cannot_decode)?;
    // Room in the budget until only the small output is left.
    let _room = budget.acquire(width as u64 * height as u64);
    let image = DynamicImage::from_decoder(decoder).map_err(cannot_decode)?;
    Ok(square_pixels(crop_to_square(image), size, channels))
}

/// The centred square of side `min(width, height)`; an odd margin leaves the extra row or
/// column at the bottom or right. The full image is freed before this returns.
fn crop_to_square(image: DynamicImage) -> DynamicImage {
    let (w, h) = (image.width(), image.height());
    if w == h {
        return image;
    }
    let side = w.min(h);
    image.crop_imm((w - side) / 2, (h - side) / 2, side, side)
}

/// A square image resized to `size × size` in its own pixel type (a greyscale image is not
/// widened to RGB before it is small), then converted, as CHW floats in [0, 1].
fn square_pixels(square: DynamicImage, size: u32, channels: Channels) -> Vec<f32> {
    let small = if square.width() == size {
        square
    } else {
        square.resize_exact(size, size, FilterType::Triangle)
    };
    let to_unit = |v: &u8| *v as f32 / 255.0;
    match channels {
        Channels::Grey => small.to_luma8().as_raw().iter().map(to_unit).collect(),
        Channels::Rgb => {
            // HWC (interleaved) -> CHW (planar).
            let plane = (size * size) as usize;
            let mut out = vec![0.0; 3 * plane];
            for (p, rgb) in small.to_rgb8().as_raw().chunks_exact(3).enumerate() {
                for (c, v) in rgb.iter().enumerate() {
                    out[c * plane + p] = to_unit(v);
                }
            }
            out
        }
    }
}
