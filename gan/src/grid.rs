//! A reduced version of EBGAN's MNIST grid search (Zhao et al. 2017, Table 1 and Fig. 2):
//! configurations drawn at random from the paper's grid, each trained for a short fixed number
//! of steps and scored with I' from the project's MNIST classifier, so the distributions of I'
//! for EBGAN and GAN runs can be compared as the paper's histograms.
//!
//! The paper's grid: nLayerG ∈ {2,3,4,5}, nLayerD ∈ {2,3,4,5}, sizeG ∈ {400,800,1600,3200},
//! sizeD ∈ {128,256,512,1024}, dropoutD ∈ {true,false} (512 points), and for GAN also optimD,
//! optimG ∈ {Adam, SGD} and lr ∈ {1e-2, 1e-3, 1e-4} (6144 points). EBGAN runs all use Adam with
//! lr 1e-3 and margin 10. `EbganPt` is our addition: the EBGAN grid with the pulling-away term.
//!
//! Results are one JSON line per configuration, appended as each finishes, so an interrupted
//! grid resumes by skipping the configurations already in its file.

use crate::data::{ImageDataset, Loader, Scale};
use crate::evaluate::{features_and_probabilities, generate_unit};
use crate::metrics::ebgan_i_prime;
use crate::models::classifier::Classifier;
use crate::models::ebgan::{EbganConfig, EbganTrainer};
use crate::models::mlp_gan::{MlpGanConfig, MlpGanTrainer, OptimKind};
use crate::models::read_scalars;
use crate::run::{BoxError, GanModel};
use saddle_nn::engine::{Device, Rng};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// nLayerG and nLayerD: the layer counts of G and D.
pub const LAYERS: [usize; 4] = [2, 3, 4, 5];
/// sizeG: the width of G's hidden layers.
pub const SIZES_G: [usize; 4] = [400, 800, 1600, 3200];
/// sizeD: the width of D's hidden layers.
pub const SIZES_D: [usize; 4] = [128, 256, 512, 1024];
/// The GAN family's learning rates.
pub const LEARNING_RATES: [f64; 3] = [1e-2, 1e-3, 1e-4];
/// dropoutD "true": the drop probability of D's hidden units.
pub const DROPOUT: f64 = 0.5;
/// EBGAN's fixed grid-search settings: the learning rate.
pub const EBGAN_LR: f64 = 1e-3;
/// EBGAN's fixed grid-search settings: the margin of D's hinge on generated samples.
pub const EBGAN_MARGIN: f64 = 10.0;

/// Which family of runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// EBGAN.
    Ebgan,
    /// EBGAN with the pulling-away term.
    EbganPt,
    /// The GAN of Goodfellow et al. (2014) as an MLP.
    Gan,
}

impl Family {
    /// The family's name on the command line and in results files: `ebgan`, `ebgan-pt`, `gan`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Ebgan => "ebgan",
            Family::EbganPt => "ebgan-pt",
            Family::Gan => "gan",
        }
    }

    /// The family [`Family::name`] gives `s`, if any.
    pub fn parse(s: &str) -> Option<Family> {
        [Family::Ebgan, Family::EbganPt, Family::Gan]
            .into_iter()
            .find(|f| f.name() == s)
    }
}

/// One point of the grid.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridPoint {
    /// Which family's grid the point is from.
    pub family: Family,
    /// nLayerG.
    pub layers_g: usize,
    /// sizeG.
    pub size_g: usize,
    /// nLayerD.
    pub layers_d: usize,
    /// sizeD.
    pub size_d: usize,
    /// dropoutD: dropout of [`DROPOUT`] on D's hidden units.
    pub dropout_d: bool,
    /// optimD (always Adam for the EBGAN families).
    pub optim_d: OptimKind,
    /// optimG (always Adam for the EBGAN families).
    pub optim_g: OptimKind,
    /// The learning rate of both networks.
    pub lr: f64,
}

/// Every point of `family`'s grid (512 for the EBGAN families, 6144 for GAN), in a fixed order.
pub fn full_grid(family: Family) -> Vec<GridPoint> {
    let optims: &[OptimKind] = match family {
        Family::Gan => &[OptimKind::Adam, OptimKind::Sgd],
        _ => &[OptimKind::Adam],
    };
    let lrs: &[f64] = match family {
        Family::Gan => &LEARNING_RATES,
        _ => &[EBGAN_LR],
    };
    let mut grid = Vec::new();
    for &layers_g in &LAYERS {
        for &layers_d in &LAYERS {
            for &size_g in &SIZES_G {
                for &size_d in &SIZES_D {
                    for dropout_d in [false, true] {
                        for &optim_d in optims {
                            for &optim_g in optims {
                                for &lr in lrs {
                                    grid.push(GridPoint {
                                        family,
                                        layers_g,
                                        size_g,
                                        layers_d,
                                        size_d,
                                        dropout_d,
                                        optim_d,
                                        optim_g,
                                        lr,
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    grid
}

/// `count` distinct points of `family`'s grid drawn uniformly at random (seeded): the first
/// `count` of a seeded shuffle, so a larger count extends a smaller one's draw.
pub fn draw(family: Family, count: usize, seed: u64) -> Result<Vec<GridPoint>, BoxError> {
    let mut grid = full_grid(family);
    if count > grid.len() {
        return Err(format!(
            "{} grid has {} points; cannot draw {count}",
            family.name(),
            grid.len()
        )
        .into());
    }
    Rng::new(seed).shuffle(&mut grid);
    grid.truncate(count);
    Ok(grid)
}

/// The model of a grid point for images of `image_dim` pixels, on `device`.
pub fn build(
    point: &GridPoint,
    image_dim: usize,
    seed: u64,
    device: Device,
) -> Result<Box<dyn GanModel>, BoxError> {
    let dropout_d = if point.dropout_d { DROPOUT } else { 0.0 };
    let mut model: Box<dyn GanModel> = match point.family {
        Family::Ebgan | Family::EbganPt => {
            let cfg = EbganConfig {
                image_dim,
                layers_g: point.layers_g,
                size_g: point.size_g,
                layers_d: point.layers_d,
                size_d: point.size_d,
                dropout_d,
                margin: EBGAN_MARGIN,
                lr: point.lr,
                ..EbganConfig::default()
            };
            let cfg = if point.family == Family::EbganPt {
                cfg.with_pt()
            } else {
                cfg
            };
            Box::new(EbganTrainer::new(cfg, seed)?)
        }
        Family::Gan => Box::new(MlpGanTrainer::new(
            MlpGanConfig {
                image_dim,
                layers_g: point.layers_g,
                size_g: point.size_g,
                layers_d: point.layers_d,
                size_d: point.size_d,
                dropout_d,
                optim_d: point.optim_d,
                optim_g: point.optim_g,
                lr: point.lr,
                ..MlpGanConfig::default()
            },
            seed,
        )?),
    };
    model.to_device(device)?;
    Ok(model)
}

/// How one configuration was trained and scored: the JSON line of the results file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridResult {
    /// Position in the draw (0-based).
    pub index: usize,
    /// The configuration trained.
    pub config: GridPoint,
    /// Seed of the weights, noise and data order.
    pub seed: u64,
    /// Steps taken (fewer than asked when the run diverged).
    pub steps: u64,
    /// Images per training batch.
    pub batch_size: usize,
    /// EBGAN's I' of the samples, from the classifier's predictions.
    pub i_prime: f64,
    /// Samples scored.
    pub samples: usize,
    /// A loss or a sample became NaN/inf: training stopped there and the run scores I' = 0 if
    /// its samples are not finite (the I' of a classifier that sees the same thing in every
    /// sample).
    pub diverged: bool,
    /// D's loss as last read (NaN if none was read).
    pub d_loss: f64,
    /// G's loss as last read (NaN if none was read).
    pub g_loss: f64,
    /// Training and scoring, seconds.
    pub wall_s: f64,
}

/// Settings shared by every run of a grid.
#[derive(Clone, Debug)]
pub struct GridSettings {
    /// Training steps per run.
    pub steps: u64,
    /// Images per training batch.
    pub batch_size: usize,
    /// Samples scored per run.
    pub samples: usize,
    /// Run `index` is seeded with `seed + index`.
    pub seed: u64,
    /// Where each model trains (the classifier scores wherever its weights are).
    pub device: Device,
}

/// How often a grid run on a GPU reads its losses (to stop a diverged run early).
const DEVICE_READ_EVERY: u64 = 100;

/// Trains `point` on `data` (28×28 grey images; scaled to [-1, 1]) for `settings.steps` steps and
/// scores `settings.samples` samples of G (evaluation mode) with I' from `classifier`.
pub fn train_and_score(
    index: usize,
    point: &GridPoint,
    data: &ImageDataset,
    classifier: &Classifier,
    settings: &GridSettings,
) -> Result<GridResult, BoxError> {
    let start = Instant::now();
    let seed = settings.seed.wrapping_add(index as u64);
    let image_dim = data.height * data.width * data.channels;
    let mut model = build(point, image_dim, seed, settings.device)?;
    let mut loader = Loader::new(data, settings.batch_size, seed, Scale::MinusOneToOne)?;
    let mut rng = Rng::new(seed);
    let (mut d_loss, mut g_loss, mut steps, mut diverged) = (f64::NAN, f64::NAN, 0, false);
    while steps < settings.steps {
        let batch = loader.next_batch()?;
        let unread = model.train_step(&batch.images, None, &mut rng)?;
        steps += 1;
        // Reading waits for the device: every step on the CPU (free), else every
        // `DEVICE_READ_EVERY` steps and at the end.
        if !(settings.device.is_cpu()
            || steps.is_multiple_of(DEVICE_READ_EVERY)
            || steps == settings.steps)
        {
            continue;
        }
        let values = read_scalars(&unread.iter().map(|(_, t)| t).collect::<Vec<_>>())?;
        for ((name, _), v) in unread.iter().zip(&values) {
            match *name {
                "d_loss" => d_loss = *v,
                "g_loss" => g_loss = *v,
                _ => {}
            }
        }
        if values.iter().any(|v| !v.is_finite()) {
            diverged = true;
            break;
        }
    }
    let images = generate_unit(model.as_mut(), settings.samples, seed ^ 0x5a5a)?;
    let (_, probs) = features_and_probabilities(classifier, &images)?;
    let i_prime = if probs.iter().all(|p| p.is_finite()) {
        ebgan_i_prime(&probs, classifier.num_classes)?
    } else {
        diverged = true;
        0.0
    };
    Ok(GridResult {
        index,
        config: *point,
        seed,
        steps,
        batch_size: settings.batch_size,
        i_prime,
        samples: settings.samples,
        diverged,
        d_loss,
        g_loss,
        wall_s: start.elapsed().as_secs_f64(),
    })
}

/// The results in a JSON-lines file (none if it does not exist). A line that does not parse
/// (a write cut short by a kill) is skipped with a warning on stderr, so its configuration runs
/// again.
pub fn read_results(path: &Path) -> Result<Vec<GridResult>, BoxError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display()).into()),
    };
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str(line) {
            Ok(r) => out.push(r),
            Err(e) => eprintln!(
                "{}: line {} is not a grid result ({e}); it will be run again",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(out)
}

/// Appends one result as a line (one write call, then flushed to disk).
pub fn append_result(path: &Path, result: &GridResult) -> Result<(), BoxError> {
    let mut line = serde_json::to_string(result)?;
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(line.as_bytes())
        .and_then(|_| file.sync_data())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

/// Runs the configurations of `draw` that `done` does not hold yet (same index and config),
/// appending each result to `path` as it finishes; `progress` hears about every finished run.
/// Returns every result, earlier and new, in draw order.
pub fn run_grid(
    points: &[GridPoint],
    data: &ImageDataset,
    classifier: &Classifier,
    settings: &GridSettings,
    path: &Path,
    progress: &mut dyn FnMut(&GridResult, bool),
) -> Result<Vec<GridResult>, BoxError> {
    if data.channels != 1 || data.height != 28 || data.width != 28 {
        return Err(format!(
            "{}: the grid scores samples with an MNIST classifier and needs 28x28 grey images, got {}x{}x{}",
            data.source, data.channels, data.height, data.width
        )
        .into());
    }
    let done = read_results(path)?;
    let mut out = Vec::with_capacity(points.len());
    for (index, point) in points.iter().enumerate() {
        let previous = done
            .iter()
            .find(|r| r.index == index && r.config == *point && r.steps_asked_match(settings));
        if let Some(r) = previous {
            progress(r, true);
            out.push(r.clone());
            continue;
        }
        let r = train_and_score(index, point, data, classifier, settings)?;
        append_result(path, &r)?;
        progress(&r, false);
        out.push(r);
    }
    Ok(out)
}

impl GridResult {
    /// Whether this result was made with `settings` (a diverged run stopped early but was asked
    /// for the same steps, so only its batch, samples and seed are compared, plus its steps when
    /// it finished).
    fn steps_asked_match(&self, settings: &GridSettings) -> bool {
        self.batch_size == settings.batch_size
            && self.samples == settings.samples
            && self.seed == settings.seed.wrapping_add(self.index as u64)
            && (self.diverged || self.steps == settings.steps)
    }
}

/// Median and quartiles (linear interpolation between order statistics, numpy's default).
pub fn quartiles(values: &[f64]) -> Option<[f64; 3]> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let pos = q * (v.len() - 1) as f64;
        let (i, frac) = (pos.floor() as usize, pos.fract());
        let next = v[(i + 1).min(v.len() - 1)];
        v[i] + frac * (next - v[i])
    };
    Some([at(0.25), at(0.5), at(0.75)])
}
