//! `saddle grid ebgan|ebgan-pt|gan`: the reduced EBGAN grid search (see `saddle_gan::grid`).
//! Each family's results go to `<out>/<family>.jsonl` (resumable: finished configurations are
//! skipped), then `<out>/histogram.png` and `<out>/summary.json` are redrawn from every family
//! file in the folder, so running `grid ebgan` and `grid gan` into one folder compares them.

use crate::cli::{load_images, resolve_device, BoxError};
use crate::flags::{at_least, between, Utf8, MAX_BATCH, MAX_SCORED};
use clap::Args;
use saddle_gan::data::Split;
use saddle_gan::grid::{draw, quartiles, read_results, run_grid, Family, GridSettings};
use saddle_gan::models::classifier::Classifier;
use saddle_gan::plot::{histogram_png, HistogramSeries};
use saddle_nn::ModuleExt;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `saddle grid`'s options.
#[derive(Args, Clone, Debug)]
pub struct GridArgs {
    /// ebgan, ebgan-pt or gan.
    pub family: String,
    /// Configurations drawn from the family's grid (the paper ran all 512 EBGAN and 6144 GAN).
    #[arg(long, default_value_t = 24, value_parser = between::<usize>(1, 100_000))]
    pub configs: usize,
    /// Training steps per configuration.
    #[arg(long, default_value_t = 300, value_parser = at_least::<u64>(1))]
    pub steps: u64,
    /// Images per training step.
    #[arg(long, default_value_t = 64, value_parser = between::<usize>(1, MAX_BATCH))]
    pub batch_size: usize,
    /// Generated samples scored with I' per configuration.
    #[arg(long, default_value_t = 2000, value_parser = between::<usize>(2, MAX_SCORED))]
    pub samples: usize,
    /// Seed of the draw and (plus the configuration's index) of each run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// MNIST classifier weights (`saddle train classifier`).
    #[arg(long)]
    pub classifier: PathBuf,
    /// A folder with MNIST-format IDX files (28x28 grey images).
    #[arg(long, value_parser = Utf8)]
    pub data: String,
    /// Output folder (results in `<family>.jsonl`, histogram.png, summary.json).
    #[arg(long, default_value = "runs/grid")]
    pub out: PathBuf,
    /// Histogram bins.
    #[arg(long, default_value_t = 12, value_parser = between::<usize>(1, 1000))]
    pub bins: usize,
    /// auto, cpu or `cuda[:N]`.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

const FAMILIES: [(Family, [u8; 3]); 3] = [
    (Family::Ebgan, [40, 110, 200]),
    (Family::EbganPt, [60, 170, 90]),
    (Family::Gan, [220, 90, 40]),
];

/// `saddle grid`: trains and scores the drawn configurations (skipping those already in the
/// results file), then summarises the results.
pub fn grid(args: GridArgs) -> Result<(), BoxError> {
    let device = resolve_device(&args.device)?;
    let family = Family::parse(&args.family).ok_or_else(|| {
        format!(
            "grid family `{}`: expected ebgan, ebgan-pt or gan",
            args.family
        )
    })?;
    let data = load_images(&args.data, Split::Train, 28)?;
    let (classifier, _) = Classifier::load(&args.classifier)?;
    // Scoring moves each slice of samples next to the weights.
    classifier.to_device(device)?;
    let points = draw(family, args.configs, args.seed)?;
    crate::cli::create_out_dir(&args.out)?;
    let path = args.out.join(format!("{}.jsonl", family.name()));
    let settings = GridSettings {
        steps: args.steps,
        batch_size: args.batch_size,
        samples: args.samples,
        seed: args.seed,
        device,
    };
    println!(
        "grid {}: {} configurations x {} steps (batch {}) on {}, I' from {} samples -> {}",
        family.name(),
        points.len(),
        args.steps,
        args.batch_size,
        data.source,
        args.samples,
        path.display()
    );
    let start = Instant::now();
    let total = points.len();
    let mut finished = 0;
    run_grid(
        &points,
        &data,
        &classifier,
        &settings,
        &path,
        &mut |r, skipped| {
            finished += 1;
            let c = &r.config;
            println!(
                "[{finished}/{total}] {} G {}x{} D {}x{} drop {} {:?}/{:?} lr {:e}: I' {:.3}{} ({:.0} s{})",
                c.family.name(),
                c.layers_g,
                c.size_g,
                c.layers_d,
                c.size_d,
                c.dropout_d,
                c.optim_d,
                c.optim_g,
                c.lr,
                r.i_prime,
                if r.diverged { " DIVERGED" } else { "" },
                r.wall_s,
                if skipped { ", from an earlier run" } else { "" }
            );
        },
    )?;
    println!("grid done in {:.0} s", start.elapsed().as_secs_f64());
    summarise(&args.out, args.bins, args.steps)
}

/// Redraws `<out>/histogram.png` and `<out>/summary.json` from the family files in `out`.
pub fn summarise(out: &Path, bins: usize, steps: u64) -> Result<(), BoxError> {
    let mut present = Vec::new();
    for (family, color) in FAMILIES {
        let results = read_results(&out.join(format!("{}.jsonl", family.name())))?;
        if !results.is_empty() {
            present.push((family, color, results));
        }
    }
    let mut summary = serde_json::Map::new();
    let values: Vec<Vec<f64>> = present
        .iter()
        .map(|(_, _, rs)| rs.iter().map(|r| r.i_prime).collect())
        .collect();
    for ((family, _, rs), v) in present.iter().zip(&values) {
        let [q1, median, q3] = quartiles(v).expect("non-empty");
        let diverged = rs.iter().filter(|r| r.diverged).count();
        let wall: f64 = rs.iter().map(|r| r.wall_s).sum();
        println!(
            "{:>8}: {} runs, I' median {median:.3} (quartiles {q1:.3} - {q3:.3}), min {:.3}, max {:.3}, {diverged} diverged, {wall:.0} s",
            family.name(),
            v.len(),
            v.iter().copied().fold(f64::INFINITY, f64::min),
            v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        );
        summary.insert(
            family.name().into(),
            json!({
                "runs": v.len(),
                "q1": q1,
                "median": median,
                "q3": q3,
                "min": v.iter().copied().fold(f64::INFINITY, f64::min),
                "max": v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                "diverged": diverged,
                "wall_s": wall,
            }),
        );
    }
    let series: Vec<HistogramSeries> = present
        .iter()
        .zip(&values)
        .map(|((family, color, _), v)| HistogramSeries {
            label: family.name().to_uppercase(),
            values: v,
            color: *color,
        })
        .collect();
    if !series.is_empty() {
        let png = out.join("histogram.png");
        histogram_png(
            &series,
            bins,
            &format!("I' OF GRID RUNS, {steps} STEPS EACH"),
            "I'",
            (640, 400),
            &png,
        )?;
        println!("histogram: {}", png.display());
    }
    let path = out.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)?)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}
