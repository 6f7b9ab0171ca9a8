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

/// One group of values in a [`histogram_png`].
pub struct HistogramSeries<'a> {
    /// The legend's name for the series.
    pub label: String,
    /// The values binned.
    pub values: &'a [f64],
    /// The bars' colour, RGB.
    pub color: [u8; 3],
}

/// What a [`histogram_png`] drew: the bin edges (`bins + 1`) and each series' share of its
/// values per bin, in percent.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// `bins + 1` bin edges, ascending.
    pub edges: Vec<f64>,
    /// One row per series, in the order given: the percentage of its values in each bin.
    pub percent: Vec<Vec<f64>>,
}

/// Bins `series` over a shared range (from min(0, smallest value) to the largest, equal widths,
/// the last bin closed) as each series' percentage of its values, the way the EBGAN paper's
/// grid-search histograms compare families of runs with different counts.
pub fn histogram(series: &[HistogramSeries], bins: usize) -> Result<Histogram, String> {
    if bins == 0 || series.is_empty() || series.iter().any(|s| s.values.is_empty()) {
        return Err("a histogram needs at least one bin and one value in every series".into());
    }
    let all = series.iter().flat_map(|s| s.values.iter().copied());
    if let Some(bad) = all.clone().find(|v| !v.is_finite()) {
        return Err(format!("a histogram value is not finite ({bad})"));
    }
    let lo = all.clone().fold(0.0f64, f64::min);
    let mut hi = all.fold(f64::NEG_INFINITY, f64::max);
    if hi <= lo {
        hi = lo + 1.0;
    }
    let width = (hi - lo) / bins as f64;
    let edges = (0..=bins).map(|i| lo + i as f64 * width).collect();
    let percent = series
        .iter()
        .map(|s| {
            let mut counts = vec![0.0; bins];
            for v in s.values {
                let b = (((v - lo) / width) as usize).min(bins - 1);
                counts[b] += 100.0 / s.values.len() as f64;
            }
            counts
        })
        .collect();
    Ok(Histogram { edges, percent })
}

/// A tick step of 1, 2 or 5 times a power of ten giving at most `max_ticks` ticks over `span`.
pub(crate) fn tick_step(span: f64, max_ticks: usize) -> f64 {
    let raw = span / max_ticks.max(1) as f64;
    let pow = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * pow)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * pow)
}

/// `v` with as many decimals as a tick `step` needs (none for whole steps).
pub(crate) fn tick_label(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// Draws [`histogram`] of `series` as grouped bars (one colour per series, side by side in each
/// bin) with axis ticks, axis labels, a title and a legend (label and run count), and writes it
/// as a PNG of `width × height` pixels (at least 320 × 200). Returns the binned values.
pub fn histogram_png(
    series: &[HistogramSeries],
    bins: usize,
    title: &str,
    x_label: &str,
    size: (u32, u32),
    path: &Path,
) -> Result<Histogram, String> {
    use crate::font::{draw_text, text_width, GLYPH_H};
    let hist = histogram(series, bins)?;
    let (width, height) = (size.0.max(320), size.1.max(200));
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let ink = Rgb([30, 30, 30]);
    let (left, right, top, bottom) = (56i64, width as i64 - 16, 34i64, height as i64 - 44);
    let (plot_w, plot_h) = ((right - left) as f64, (bottom - top) as f64);
    let peak = hist.percent.iter().flatten().fold(0.0f64, |a, &b| a.max(b));
    let y_step = tick_step(peak.max(1.0), 5);
    let y_max = (peak / y_step).ceil().max(1.0) * y_step;
    let to_y = |p: f64| bottom - (p / y_max * plot_h).round() as i64;
    let fill = |img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb<u8>| {
        for y in y0.max(0)..y1.min(height as i64) {
            for x in x0.max(0)..x1.min(width as i64) {
                img.put_pixel(x as u32, y as u32, c);
            }
        }
    };
    // Grid lines and y ticks (percent of each series' runs).
    let mut tick = 0.0;
    while tick <= y_max + 1e-9 {
        let y = to_y(tick);
        fill(&mut img, left, y, right, y + 1, Rgb([225, 225, 225]));
        fill(&mut img, left - 4, y, left, y + 1, ink);
        let label = tick_label(tick, y_step);
        let tx = left - 6 - text_width(&label, 1) as i64;
        draw_text(&mut img, &label, tx, y - GLYPH_H as i64 / 2, 1, ink);
        tick += y_step;
    }
    // Bars.
    let bin_w = plot_w / bins as f64;
    let k = series.len() as f64;
    for (s, (ser, pct)) in series.iter().zip(&hist.percent).enumerate() {
        for (b, &p) in pct.iter().enumerate() {
            if p <= 0.0 {
                continue;
            }
            let x0 = left as f64 + b as f64 * bin_w + 1.0 + s as f64 * (bin_w - 2.0) / k;
            let x1 = x0 + ((bin_w - 2.0) / k).max(1.0);
            fill(
                &mut img,
                x0 as i64,
                to_y(p),
                x1 as i64,
                bottom,
                Rgb(ser.color),
            );
        }
    }
    // Axes and x ticks at bin edges (thinned to about 8 labels).
    fill(&mut img, left, top, left + 1, bottom + 1, ink);
    fill(&mut img, left, bottom, right, bottom + 1, ink);
    let every = bins.div_ceil(8).max(1);
    let x_step = (hist.edges[1] - hist.edges[0]) * every as f64;
    for (i, edge) in hist.edges.iter().enumerate().step_by(every) {
        let x = left + (i as f64 * bin_w).round() as i64;
        fill(&mut img, x, bottom, x + 1, bottom + 4, ink);
        let label = tick_label(*edge, x_step / 2.0);
        let tx = x - text_width(&label, 1) as i64 / 2;
        draw_text(&mut img, &label, tx, bottom + 7, 1, ink);
    }
    let cx = |w: u32| (width as i64 - w as i64) / 2;
    draw_text(
        &mut img,
        x_label,
        cx(text_width(x_label, 2)),
        height as i64 - 20,
        2,
        ink,
    );
    draw_text(&mut img, "% OF RUNS", 4, 14, 1, ink);
    draw_text(&mut img, title, cx(text_width(title, 2)), 6, 2, ink);
    // Legend, top right inside the plot.
    for (i, ser) in series.iter().enumerate() {
        let label = format!("{} ({})", ser.label, ser.values.len());
        let y = top + 6 + i as i64 * 14;
        let x = right - 20 - text_width(&label, 1) as i64;
        fill(&mut img, x, y, x + 10, y + 8, Rgb(ser.color));
        draw_text(&mut img, &label, x + 14, y, 1, ink);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    img.save(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(hist)
}
