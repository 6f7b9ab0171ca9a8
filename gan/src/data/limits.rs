//! Bounds on what the data readers accept. Every reader checks the sizes a file *declares* (an
//! IDX header's dimensions, an image header's width and height) against these before anything
//! of that size is allocated, so a small corrupt or hostile file cannot cost gigabytes.

use super::DataError;
use std::path::Path;
use std::sync::{Condvar, Mutex, PoisonError};

/// The largest inputs the data readers accept; [`DataLimits::default`] suits every dataset this
/// project uses with a wide margin. A user with bigger data raises a field and passes the limits
/// to [`ImageDataset::mnist_with`](super::ImageDataset::mnist_with),
/// [`ImageDataset::image_folder_with`](super::ImageDataset::image_folder_with) or the
/// `*_with` readers of [`idx`](super::idx):
///
/// ```
/// use saddle_gan::data::DataLimits;
/// let limits = DataLimits { image_max_pixels: 256 << 20, ..DataLimits::default() };
/// ```
///
/// Errors from a limit name the file, what it declares, the limit and the field that sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataLimits {
    /// Most bytes of data (after the header) one IDX file may declare. Default 256 MiB: five
    /// times MNIST's 47 MB of training images, enough for MNIST, Fashion-MNIST, KMNIST and the
    /// EMNIST balanced, letters and digits splits (EMNIST byclass / bymerge, 547 MB, need more).
    /// The dataset holds the pixels as f32, so a file at the limit costs 1.25 GiB in all.
    pub idx_max_bytes: u64,
    /// Longest side of an image file, in pixels. Default 16,384: the largest texture side of
    /// most GPUs and beyond any camera; long panoramas fit.
    pub image_max_side: u32,
    /// Most pixels in one image file. Default 64 Mi (8192 x 8192): above the largest camera
    /// sensors in common use (61 Mpixel); decoded at up to 8 bytes a pixel (16-bit RGBA, the
    /// widest these decoders produce) that is 512 MiB, the `image` crate's own default
    /// allocation limit. The same figure bounds the pixels being decoded at once across the
    /// folder loader's threads, so parallel decoding does not multiply the cost.
    pub image_max_pixels: u64,
    /// Most times the long side of an image may exceed its short side. Default 16: images are
    /// centre-cropped to a square, so at 16:1 only a sixteenth of the picture is kept; wider
    /// files are strips, not training pictures (the 1 x 200,000 PNG of issue 14), while 2:1
    /// panoramas and 4:1 banners pass.
    pub image_max_aspect: u32,
}

impl Default for DataLimits {
    fn default() -> Self {
        DataLimits {
            idx_max_bytes: 256 << 20,
            image_max_side: 16_384,
            image_max_pixels: 64 << 20,
            image_max_aspect: 16,
        }
    }
}

/// Most room for an image decoder's own buffers (zlib window, rows, frames, metadata chunks)
/// on top of the decoded pixels.
const DECODER_OVERHEAD: u64 = 16 << 20;
/// Bytes per pixel of the widest layout the enabled decoders produce (16-bit RGBA).
const MAX_BYTES_PER_PIXEL: u64 = 8;

impl DataLimits {
    /// The `image` crate's allocation limit for one decoder: the largest allowed image at the
    /// widest pixel layout, plus as much again, at most 16 MiB, for the decoder's own buffers
    /// (a GIF frame, for one, may declare itself larger than the image). 528 MiB by default.
    pub fn decoder_alloc(&self) -> u64 {
        let pixels = self.image_max_pixels.saturating_mul(MAX_BYTES_PER_PIXEL);
        pixels.saturating_add(pixels.min(DECODER_OVERHEAD))
    }

    /// An error naming `path` if an image of `width x height` is beyond a limit.
    pub(crate) fn check_image(
        &self,
        path: &Path,
        width: u32,
        height: u32,
    ) -> Result<(), DataError> {
        let is = format!("is {width}x{height} pixels");
        let refuse = |problem: String| Err(DataError::new(path, problem));
        if width == 0 || height == 0 {
            return refuse(format!("{is}: an image needs at least one pixel"));
        }
        let (long, short) = (width.max(height), width.min(height));
        if long > self.image_max_side {
            return refuse(format!(
                "{is}, over the limit of {} pixels a side (DataLimits::image_max_side, saddle's --max-image-side)",
                self.image_max_side
            ));
        }
        let pixels = width as u64 * height as u64;
        if pixels > self.image_max_pixels {
            return refuse(format!(
                "{is} ({pixels} in all), over the limit of {} pixels (DataLimits::image_max_pixels, saddle's --max-image-pixels)",
                self.image_max_pixels
            ));
        }
        if long as u64 > short as u64 * self.image_max_aspect as u64 {
            let ratio = (long as f64 / short as f64 * 10.0).round() / 10.0;
            return refuse(format!(
                "{is}, an aspect ratio of {ratio}:1, over the limit of {}:1 \
                 (DataLimits::image_max_aspect, saddle's --max-image-aspect); the centre crop would keep 1/{ratio} of it",
                self.image_max_aspect
            ));
        }
        Ok(())
    }
}

/// Pixels being decoded at once, across threads, held under a budget: a decode waits until the
/// others leave room for its image (one always proceeds, so nothing waits forever).
pub(crate) struct PixelBudget {
    capacity: u64,
    in_flight: Mutex<u64>,
    freed: Condvar,
}

pub(crate) struct PixelPermit<'a> {
    budget: &'a PixelBudget,
    pixels: u64,
}

impl PixelBudget {
    pub(crate) fn new(capacity: u64) -> Self {
        PixelBudget {
            capacity,
            in_flight: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    pub(crate) fn acquire(&self, pixels: u64) -> PixelPermit<'_> {
        let mut used = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while *used > 0 && used.saturating_add(pixels) > self.capacity {
            used = self
                .freed
                .wait(used)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *used += pixels;
        PixelPermit {
            budget: self,
            pixels,
        }
    }
}

impl Drop for PixelPermit<'_> {
    fn drop(&mut self) {
        let mut used = self
            .budget
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *used -= self.pixels;
        self.budget.freed.notify_all();
    }
}
