//! A self-contained HTML report of a run: the configuration, a loss curve per logged quantity
//! (inline SVG), the sample grids (PNG embedded as data URIs) and the final metrics. One file, no
//! scripts, no network: it opens in any browser and can be mailed around.

use super::dir::{read_metrics, write_atomically, RunDir, RunError};
use crate::plot::{tick_label, tick_step};
use base64::Engine;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

/// Keys of a metrics record that are bookkeeping, not curves.
const NOT_CURVES: &[&str] = &["step", "time_s", "images_per_s"];
/// At most this many sample grids are embedded (evenly spaced, always including the last), to
/// keep the report small.
const MAX_GRIDS: usize = 8;

/// Writes `<run>/report.html` from the run's metrics log and sample grids.
pub fn write_report(
    run: &RunDir,
    title: &str,
    config: &Value,
    final_metrics: &[(String, String)],
) -> Result<PathBuf, RunError> {
    let records = read_metrics(&run.root().join("metrics.jsonl"))?;
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\
         body{{font-family:sans-serif;margin:2em;max-width:1100px}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}\
         .charts svg{{margin:0 1em 1em 0}}figure{{display:inline-block;margin:0 1em 1em 0}}\
         img{{image-rendering:pixelated}}</style></head><body>\n<h1>{t}</h1>\n",
        t = escape(title)
    );

    html.push_str("<h2>Final metrics</h2>\n");
    html.push_str(&table(
        final_metrics.iter().map(|(k, v)| (k.clone(), v.clone())),
    ));

    html.push_str("<h2>Curves</h2>\n<div class=\"charts\">\n");
    let curves = curves(&records);
    if curves.is_empty() {
        html.push_str("<p>No metrics logged yet.</p>\n");
    }
    for (name, points) in &curves {
        html.push_str(&line_chart(name, points));
    }
    html.push_str("</div>\n<h2>Samples (fixed noise)</h2>\n");
    let grids = run.sample_grids();
    if grids.is_empty() {
        html.push_str("<p>No sample grids written yet.</p>\n");
    }
    push_figures(&mut html, &grids)?;
    let reconstructions = run.grids("reconstructions_");
    if !reconstructions.is_empty() {
        html.push_str(
            "<h2>Reconstructions</h2>\n<p>Each row of real images above its reconstructions \
             G(E(x)).</p>\n",
        );
        push_figures(&mut html, &reconstructions)?;
    }
    html.push_str("<h2>Configuration</h2>\n");
    let mut config_rows = Vec::new();
    setting_rows("", config, &mut config_rows);
    html.push_str(&table(config_rows.into_iter()));
    html.push_str("</body></html>\n");
    let path = run.report_path();
    write_atomically(&path, html.as_bytes())?;
    Ok(path)
}

/// One row per setting: nested objects flattened to `spec.lr`, strings without quotes, a list
/// of plain values on one row.
fn setting_rows(prefix: &str, value: &Value, rows: &mut Vec<(String, String)>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                setting_rows(&key(k), v, rows);
            }
        }
        Value::Array(items) if items.iter().any(|v| v.is_object() || v.is_array()) => {
            for (i, v) in items.iter().enumerate() {
                setting_rows(&key(&i.to_string()), v, rows);
            }
        }
        Value::Array(items) => {
            let text: Vec<String> = items.iter().map(plain).collect();
            rows.push((prefix.to_string(), text.join(", ")));
        }
        other => rows.push((prefix.to_string(), plain(other))),
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "(default)".into(),
        other => other.to_string(),
    }
}

/// Every numeric key of the records except bookkeeping, as (step, value) series.
fn curves(records: &[Value]) -> BTreeMap<String, Vec<(f64, f64)>> {
    let mut out: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in records {
        let Some(step) = r.get("step").and_then(Value::as_f64) else {
            continue;
        };
        let Some(map) = r.as_object() else { continue };
        for (k, v) in map {
            if NOT_CURVES.contains(&k.as_str()) {
                continue;
            }
            if let Some(y) = v.as_f64().filter(|y| y.is_finite()) {
                out.entry(k.clone()).or_default().push((step, y));
            }
        }
    }
    out
}

fn pick_evenly<T>(items: &[T], max: usize) -> Vec<&T> {
    if items.len() <= max {
        return items.iter().collect();
    }
    let last = items.len() - 1;
    let mut idx: Vec<usize> = (0..max).map(|i| i * last / (max - 1)).collect();
    idx.dedup();
    idx.into_iter().map(|i| &items[i]).collect()
}

/// An SVG line chart with labelled axes.
fn line_chart(name: &str, points: &[(f64, f64)]) -> String {
    const W: f64 = 480.0;
    const H: f64 = 260.0;
    const LEFT: f64 = 60.0;
    const RIGHT: f64 = 15.0;
    const TOP: f64 = 28.0;
    const BOTTOM: f64 = 36.0;
    let (x0, x1) = range(points.iter().map(|p| p.0));
    let (y0, y1) = range(points.iter().map(|p| p.1));
    let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let sy = |y: f64| H - BOTTOM - (y - y0) / (y1 - y0) * (H - TOP - BOTTOM);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-size=\"11\">\
         <rect width=\"{W}\" height=\"{H}\" fill=\"white\" stroke=\"#ddd\"/>\
         <text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">{}</text>",
        W / 2.0,
        escape(name)
    );
    // Ticks at round values: whole numbers on the step axis.
    let x_step = tick_step(x1 - x0, 5).max(1.0);
    for x in ticks(x0, x1, x_step) {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            sx(x),
            H - BOTTOM + 14.0,
            tick_label(x, x_step),
        );
    }
    let y_step = tick_step(y1 - y0, 5);
    for y in ticks(y0, y1, y_step) {
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{py:.1}\" y2=\"{py:.1}\" stroke=\"#eee\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 4.0,
            sy(y) + 4.0,
            y_tick(y, y_step),
            py = sy(y),
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">step</text><polyline fill=\"none\" \
         stroke=\"#1f77b4\" stroke-width=\"1.2\" points=\"",
        W / 2.0,
        H - 6.0
    );
    for &(x, y) in points {
        let _ = write!(svg, "{:.1},{:.1} ", sx(x), sy(y));
    }
    svg.push_str("\"/></svg>\n");
    svg
}

/// The span of the values, widened when degenerate so the chart never divides by zero.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 * lo.abs().max(1.0) {
        return (lo - 0.5, hi + 0.5);
    }
    (lo, hi)
}

/// The multiples of `step` in `[lo, hi]` (a tick step from [`tick_step`]: at most a handful).
fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// A value-axis label: as many decimals as the tick step needs, or powers of ten for very
/// large or small values.
fn y_tick(v: f64, step: f64) -> String {
    if !(1e-4..1e6).contains(&step) {
        format!("{v:.2e}")
    } else {
        tick_label(v, step)
    }
}

fn table(rows: impl Iterator<Item = (String, String)>) -> String {
    let mut t = String::from("<table>\n");
    let mut any = false;
    for (k, v) in rows {
        any = true;
        let _ = writeln!(t, "<tr><th>{}</th><td>{}</td></tr>", escape(&k), escape(&v));
    }
    if !any {
        t.push_str("<tr><td>(none)</td></tr>\n");
    }
    t.push_str("</table>\n");
    t
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Up to [`MAX_GRIDS`] of `grids` (evenly picked), embedded with their names as captions.
fn push_figures(html: &mut String, grids: &[std::path::PathBuf]) -> Result<(), RunError> {
    for path in pick_evenly(grids, MAX_GRIDS) {
        let bytes = std::fs::read(path).map_err(|e| RunError {
            path: path.clone(),
            problem: e.to_string(),
        })?;
        let label = path
            .file_stem()
            .map(|s| s.to_string_lossy().replace('_', " "))
            .unwrap_or_default();
        let _ = writeln!(
            html,
            "<figure><img src=\"data:image/png;base64,{}\" width=\"256\"><figcaption>{}</figcaption></figure>",
            base64::engine::general_purpose::STANDARD.encode(bytes),
            escape(&label)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_step_axis_has_whole_round_ticks() {
        // Logged steps 10..=30: the old axis read "10.000", "15.000", ...
        let svg = line_chart("d_loss", &[(10.0, 0.5), (20.0, 0.25), (30.0, 0.125)]);
        for label in [">10<", ">15<", ">20<", ">25<", ">30<"] {
            assert!(svg.contains(label), "no tick {label} in {svg}");
        }
        assert!(!svg.contains("10.0"), "{svg}");
        // The value axis: round values with the decimals their step needs.
        for label in [">0.2<", ">0.3<", ">0.5<"] {
            assert!(svg.contains(label), "no tick {label} in {svg}");
        }
        assert_eq!(
            ticks(3.0, 1001.0, 200.0),
            [200.0, 400.0, 600.0, 800.0, 1000.0]
        );
        assert_eq!(y_tick(2.5e-6, 1e-6), "2.50e-6");
    }

    #[test]
    fn the_configuration_has_one_row_per_setting() {
        let config = json!({
            "model": "dcgan",
            "spec": {"lr": 0.0002, "nz": 32, "data": "digits", "image_size": null},
            "intervals": {"log_every": 10},
            "sizes": [784, 500, 10],
            "runs": [{"seed": 1}],
        });
        let mut rows = Vec::new();
        setting_rows("", &config, &mut rows);
        let rows: Vec<(&str, &str)> = rows.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        assert_eq!(
            rows,
            [
                ("intervals.log_every", "10"),
                ("model", "dcgan"),
                ("runs.0.seed", "1"),
                ("sizes", "784, 500, 10"),
                ("spec.data", "digits"),
                ("spec.image_size", "(default)"),
                ("spec.lr", "0.0002"),
                ("spec.nz", "32"),
            ]
        );
    }
}
