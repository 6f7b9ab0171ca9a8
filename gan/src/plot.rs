//! Pictures of results: scatter plots of 2-D samples (sample grids of images arrive with the
//! image models).

use image::{Rgb, RgbImage};
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
