//! Pictures of results: scatter plots of 2-D samples and grids of image samples.

use crate::data::DataError;
use image::{Rgb, RgbImage};
use saddle_engine::Tensor;
use std::path::Path;

/// Draws `points` (grey) and `centers` (red crosses) on a white square of `size` pixels
/// covering `[-extent, extent]²`, and writes it as PNG.
pub fn scatter_png(
    points: &[[f64; 2]],
    centers: &[[f64; 2]],
    extent: f64,
    size: u32,
    path: &Path,
) -> Result<(), String> {
    let mut img = RgbImage::from_pixel(size, size, Rgb([255, 255, 255]));
    let to_px = |v: f64, flip: bool| -> Option<u32> {
        let t = (v + extent) / (2.0 * extent);
        let t = if flip { 1.0 - t } else { t };
        (0.0..1.0).contains(&t).then_some((t * size as f64) as u32)
    };
    for p in points {
        if let (Some(x), Some(y)) = (to_px(p[0], false), to_px(p[1], true)) {
            img.put_pixel(x, y, Rgb([60, 60, 60]));
        }
    }
    for c in centers {
        if let (Some(x), Some(y)) = (to_px(c[0], false), to_px(c[1], true)) {
            for d in -4i64..=4 {
                for (dx, dy) in [(d, 0), (0, d)] {
                    let (px, py) = (x as i64 + dx, y as i64 + dy);
                    if (0..size as i64).contains(&px) && (0..size as i64).contains(&py) {
                        img.put_pixel(px as u32, py as u32, Rgb([220, 30, 30]));
                    }
                }
            }
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    img.save(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Grey of the 1-pixel lines between grid cells: visible against both black and white
/// backgrounds.
const GRID_PAD: u8 = 128;

/// Writes images `[N, C, H, W]` (C = 1 grey or 3 RGB) as one PNG: `nrow` images per row, each
/// pixel drawn as an `upscale × upscale` block, 1-pixel grey lines around and between images.
/// `value_range = (lo, hi)` maps lo to black and hi to white (values outside are clamped, NaN is
/// black): `(-1.0, 1.0)` for tanh outputs, `(0.0, 1.0)` for data in [0, 1]. The file is PNG
/// whatever its extension; missing parent folders are created.
pub fn save_image_grid(
    path: impl AsRef<Path>,
    images: &Tensor,
    nrow: usize,
    value_range: (f32, f32),
    upscale: usize,
) -> Result<(), DataError> {
    let path = path.as_ref();
    let bad = |problem: String| DataError::new(path, problem);
    let &[n, c, h, w] = images.shape() else {
        return Err(bad(format!(
            "an image grid needs a [N, C, H, W] tensor; got shape {:?}",
            images.shape()
        )));
    };
    if n == 0 || h == 0 || w == 0 || !(c == 1 || c == 3) {
        return Err(bad(format!(
            "an image grid needs at least one image with 1 (grey) or 3 (RGB) channels; got shape {:?}",
            images.shape()
        )));
    }
    if nrow == 0 || upscale == 0 {
        return Err(bad(format!(
            "nrow ({nrow}) and upscale ({upscale}) must be positive"
        )));
    }
    let (lo, hi) = value_range;
    if !lo.is_finite() || !hi.is_finite() || lo >= hi {
        return Err(bad(format!(
            "value range ({lo}, {hi}) must be finite with low < high"
        )));
    }
    let values = images
        .to_vec_f64()
        .map_err(|e| bad(format!("cannot read the images ({e})")))?;
    let cols = nrow.min(n);
    let rows = n.div_ceil(cols);
    let (cell_h, cell_w) = (h * upscale, w * upscale);
    let width = cols * (cell_w + 1) + 1;
    let height = rows * (cell_h + 1) + 1;
    let (Ok(width32), Ok(height32)) = (u32::try_from(width), u32::try_from(height)) else {
        return Err(bad(format!(
            "a {width}x{height} grid is too large for a PNG"
        )));
    };
    let to_byte = |v: f64| -> u8 {
        let t = (v - lo as f64) / (hi as f64 - lo as f64);
        if t.is_nan() {
            0
        } else {
            (t.clamp(0.0, 1.0) * 255.0).round() as u8
        }
    };
    // Interleaved rows of `c` bytes per pixel: a grey grid stays a one-channel PNG (smaller).
    let mut grid = vec![GRID_PAD; height * width * c];
    for k in 0..n {
        let (x0, y0) = ((k % cols) * (cell_w + 1) + 1, (k / cols) * (cell_h + 1) + 1);
        let image = &values[k * c * h * w..(k + 1) * c * h * w];
        for gy in 0..cell_h {
            for gx in 0..cell_w {
                let (y, x) = (gy / upscale, gx / upscale);
                let at = ((y0 + gy) * width + x0 + gx) * c;
                for ch in 0..c {
                    grid[at + ch] = to_byte(image[(ch * h + y) * w + x]);
                }
            }
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| DataError::new(dir, format!("cannot create the folder ({e})")))?;
    }
    let color = if c == 1 {
        image::ExtendedColorType::L8
    } else {
        image::ExtendedColorType::Rgb8
    };
    image::save_buffer_with_format(
        path,
        &grid,
        width32,
        height32,
        color,
        image::ImageFormat::Png,
    )
    .map_err(|e| bad(format!("cannot write the PNG ({e})")))
}

/// Writes one image (`c × h × w` values in [0, 1], planar as in NCHW, c = 1 or 3) as a PNG at
/// its own size, for tools that score folders of samples.
pub fn save_image_png(
    path: impl AsRef<Path>,
    pixels: &[f32],
    c: usize,
    h: usize,
    w: usize,
) -> Result<(), DataError> {
    let path = path.as_ref();
    if pixels.len() != c * h * w || !(c == 1 || c == 3) {
        return Err(DataError::new(
            path,
            format!(
                "an image needs 1 or 3 channels and c*h*w values; got {} values for {c}x{h}x{w}",
                pixels.len()
            ),
        ));
    }
    let plane = h * w;
    let bytes: Vec<u8> = (0..plane)
        .flat_map(|p| (0..c).map(move |ch| (ch, p)))
        .map(|(ch, p)| (pixels[ch * plane + p].clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let color = if c == 1 {
        image::ExtendedColorType::L8
    } else {
        image::ExtendedColorType::Rgb8
    };
    image::save_buffer_with_format(
        path,
        &bytes,
        w as u32,
        h as u32,
        color,
        image::ImageFormat::Png,
    )
    .map_err(|e| DataError::new(path, format!("cannot write the PNG ({e})")))
}
