//! `saddle eval`: scores a trained run. Image GANs on MNIST-format data get classifier-feature
//! FID and KID, the Inception-style score and EBGAN's I' (with a classifier trained by `saddle
//! train classifier`); the results go to the terminal and to `<run>/eval-<checkpoint>.json`.

use crate::classify::as_tensor;
use crate::cli::{load_images, BoxError};
use crate::flags::{between, Utf8, MAX_SCORED};
use crate::sample::load_run_model;
use clap::Args;
use saddle_engine::Tensor;
use saddle_gan::data::Split;
use saddle_gan::evaluate::{inception_scores, parzen_protocol, ClassifierScorer, InceptionScores};
use saddle_gan::metrics::inception::InceptionV3;
use saddle_gan::metrics::Parzen;
use saddle_gan::models::classifier::Classifier;
use saddle_gan::run::GanModel;
use saddle_gan::run::{read_config, write_atomically};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `saddle eval`'s options: score a run, or compare two image sets with `saddle eval fid`.
#[derive(Args, Clone, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EvalArgs {
    /// `saddle eval fid A B`, when given instead of a run.
    #[command(subcommand)]
    pub compare: Option<EvalCommand>,
    /// The run folder.
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// latest, best, or a .safetensors path.
    #[arg(long, default_value = "latest")]
    pub checkpoint: String,
    /// Classifier weights from `saddle train classifier` (trained on the same dataset): FID,
    /// KID, Inception-style score and I'.
    #[arg(long)]
    pub classifier: Option<PathBuf>,
    /// The GAN paper's Parzen-window log-likelihood of the test set (sigma chosen on the last
    /// 10,000 training images); on by default for GAN 2014 runs.
    #[arg(long)]
    pub parzen: bool,
    /// Inception-v3 weights (pytorch-fid's FID network as safetensors; see README): FID, KID
    /// and Inception Score in Inception's pool3 space against --data's test split.
    #[arg(long)]
    pub inception: Option<PathBuf>,
    /// The MNIST-format folder whose test split is the reference set.
    #[arg(long, value_parser = Utf8)]
    pub data: Option<String>,
    /// Generated samples to score (FID is biased at small counts: compare at equal counts).
    #[arg(long, default_value_t = 10_000, value_parser = between::<usize>(2, MAX_SCORED))]
    pub count: usize,
    /// Seed of the generated samples' noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `saddle eval fid`: scores between two image sets.
#[derive(clap::Subcommand, Clone, Debug)]
pub enum EvalCommand {
    /// FID and KID between two image sets in Inception-v3's pool3 space (as pytorch-fid), and
    /// the Inception Score of the first. Each set: a folder of images, an MNIST-format folder
    /// (its test split), or a .npy file of float32 [N, C, H, W] in [0, 1] (`saddle sample
    /// --npy`).
    Fid(FidArgs),
}

/// `saddle eval fid`'s options.
#[derive(Args, Clone, Debug)]
pub struct FidArgs {
    /// Inception-v3 weights (safetensors; see README).
    #[arg(long)]
    pub inception: PathBuf,
    /// The first set (generated images, whose Inception Score is also given).
    pub first: PathBuf,
    /// The second set (the reference).
    pub second: PathBuf,
    /// The side folders of images are decoded at (centre-cropped and resized) before the
    /// network's own bilinear resize to 299x299; pass the images' own side for pytorch-fid's
    /// exact pipeline.
    #[arg(long, default_value_t = 299, value_parser = between::<usize>(8, 1024))]
    pub image_size: usize,
    /// The most images read from each set.
    #[arg(long, default_value_t = 50_000, value_parser = between::<usize>(2, MAX_SCORED))]
    pub max_images: usize,
    /// Channel-width divisor of the network the weights are for (1: the real network; the
    /// tests use narrower copies).
    #[arg(long, default_value_t = 1, hide = true)]
    pub inception_width_divisor: usize,
}

pub use saddle_gan::evaluate::generate_unit;

/// The settings a run's evaluation needs, once `--run` and `--data` are known to be given.
struct RunEval<'a> {
    run: &'a Path,
    data: &'a str,
}

/// `saddle eval`: scores a run's samples with the chosen metrics, prints the scores and writes
/// them to `eval-<checkpoint>.json` in the run folder; or runs `saddle eval fid`.
pub fn eval(args: EvalArgs) -> Result<(), BoxError> {
    if let Some(EvalCommand::Fid(fid)) = &args.compare {
        return compare_sets(fid);
    }
    let (Some(run), Some(data)) = (&args.run, &args.data) else {
        return Err("saddle eval: give --run DIR and --data DIR (or `saddle eval fid A B`)".into());
    };
    let ctx = RunEval { run, data };
    let start = Instant::now();
    let mut model = load_run_model(ctx.run, &args.checkpoint)?;
    let parzen = args.parzen || read_config(ctx.run)?["model"].as_str() == Some("gan2014");
    if !parzen && args.classifier.is_none() && args.inception.is_none() {
        return Err(
            "nothing to evaluate: give --classifier FILE (FID, KID, IS, I'), \
                    --inception FILE (Inception-v3 FID, KID, IS) or --parzen"
                .into(),
        );
    }
    let mut report = serde_json::Map::new();
    report.insert("checkpoint".into(), args.checkpoint.clone().into());
    report.insert("samples".into(), args.count.into());
    if parzen {
        let (p, real) = parzen_scores(model.as_mut(), &args, &ctx)?;
        println!(
            "Parzen log-likelihood of the test set: {:.1} +- {:.1} nats (sigma {:.4} chosen on 10,000 training images)",
            p.mean, p.std_err, p.sigma
        );
        println!(
            "  the same protocol with {} real training images as the samples: {:.1} +- {:.1} nats (sigma {:.4})",
            args.count, real.mean, real.std_err, real.sigma
        );
        for (prefix, score) in [("parzen", &p), ("real_train_parzen", &real)] {
            report.insert(format!("{prefix}_mean"), score.mean.into());
            report.insert(format!("{prefix}_std_err"), score.std_err.into());
            report.insert(format!("{prefix}_sigma"), score.sigma.into());
        }
    }
    if let Some(path) = &args.classifier {
        classifier_scores(model.as_mut(), path, &args, &ctx, &mut report)?;
    }
    if let Some(path) = &args.inception {
        let net = InceptionV3::load(path, 1)?;
        let fake = generate_unit(model.as_mut(), args.count, args.seed)?;
        let (real, _) = as_tensor(&load_images(ctx.data, Split::Test, 28)?)?;
        let scores = scored_with_progress(&net, &fake, &real)?;
        for (name, v) in scores.named() {
            println!("{name:>16}: {v:>12.4}");
            report.insert(name, v.into());
        }
    }
    report.insert("seconds".into(), start.elapsed().as_secs_f64().into());
    let path = ctx.run.join(format!(
        "eval-{}.json",
        if matches!(args.checkpoint.as_str(), "latest" | "best") {
            args.checkpoint.as_str()
        } else {
            "custom"
        }
    ));
    write_atomically(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!(
        "{} samples scored in {:.0} s; written to {}",
        args.count,
        start.elapsed().as_secs_f64(),
        path.display()
    );
    Ok(())
}

/// Flattened pixel rows of a `[N, ...]` tensor, f64.
fn pixel_rows(t: &Tensor) -> Result<(Vec<f64>, usize), BoxError> {
    let dim = t.shape()[1..].iter().product();
    Ok((t.to_vec_f64()?, dim))
}

/// How many of the last training images choose the Parzen window's sigma (the reference's
/// MNIST split: the last 10,000 of 60,000, which its GAN never trains on).
pub fn parzen_validation_count(train_images: usize) -> usize {
    10_000.min(train_images / 2)
}

/// The Parzen protocol on the model's samples, and on as many real training images from the
/// start of the set (the images a GAN 2014 run trains on; the sigma-choosing images are the
/// last ones) as a reference point: what the estimate gives for the data distribution itself.
fn parzen_scores(
    model: &mut dyn GanModel,
    args: &EvalArgs,
    ctx: &RunEval,
) -> Result<(Parzen, Parzen), BoxError> {
    let train = load_images(ctx.data, Split::Train, 28)?;
    let test = load_images(ctx.data, Split::Test, 28)?;
    let valid_count = parzen_validation_count(train.n);
    let valid_idx: Vec<usize> = (train.n - valid_count..train.n).collect();
    let (valid, _) = pixel_rows(&as_tensor(&train.subset(&valid_idx)?)?.0)?;
    let (test, dim) = pixel_rows(&as_tensor(&test)?.0)?;
    let (samples, sample_dim) = pixel_rows(&generate_unit(model, args.count, args.seed)?)?;
    if sample_dim != dim {
        return Err(format!("Parzen: samples have {sample_dim} pixels, the data {dim}").into());
    }
    let real_count = args.count.min(train.n - valid_count);
    let real_idx: Vec<usize> = (0..real_count).collect();
    let (real, _) = pixel_rows(&as_tensor(&train.subset(&real_idx)?)?.0)?;
    Ok((
        parzen_protocol(&samples, &valid, &test, dim)?,
        parzen_protocol(&real, &valid, &test, dim)?,
    ))
}

fn classifier_scores(
    model: &mut dyn GanModel,
    classifier_path: &Path,
    args: &EvalArgs,
    ctx: &RunEval,
    report: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<(), BoxError> {
    let (classifier, meta) = Classifier::load(classifier_path)?;
    let test = load_images(ctx.data, Split::Test, 28)?;
    let (real, _) = as_tensor(&test)?;
    let scorer = ClassifierScorer::new(classifier, &real)?;
    let fake = generate_unit(model, args.count, args.seed)?;
    let scores = scorer.score(&fake)?;
    report.insert("reference".into(), test.source.clone().into());
    report.insert(
        "classifier_test_accuracy".into(),
        meta.meta("classifier.test_accuracy").unwrap_or("?").into(),
    );
    // The same scores for real training images at the same count: the floor a perfect
    // generator would reach with this classifier and sample size (FID and KID here are in the
    // classifier's feature space, not Inception's: only comparable with each other).
    let train = load_images(ctx.data, Split::Train, 28)?;
    let indices: Vec<usize> = (0..args.count.min(train.n)).collect();
    let (real_train, _) = as_tensor(&train.subset(&indices)?)?;
    let floor = scorer.score(&real_train)?;
    println!("{:>16}  {:>12}  {:>12}", "", "generated", "real train");
    for ((name, v), (_, r)) in scores.named().into_iter().zip(floor.named()) {
        println!("{name:>16}: {v:>12.4}  {r:>12.4}");
        report.insert(format!("real_train_{name}"), r.into());
        report.insert(name, v.into());
    }
    Ok(())
}

/// Inception scores of `a` against `b` with a progress bar over both sets.
fn scored_with_progress(
    net: &InceptionV3,
    a: &Tensor,
    b: &Tensor,
) -> Result<InceptionScores, BoxError> {
    let total = a.shape()[0] + b.shape()[0];
    let bar = crate::cli::count_bar(total as u64, "images through Inception-v3");
    let scores = inception_scores(net, a, b, |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    Ok(scores)
}

/// An image set for `saddle eval fid`: a .npy file of float32 `[N, C, H, W]` in [0, 1], or a
/// folder (MNIST-format: its test split; else its images at `size`), at most `max` images.
fn image_set(path: &Path, size: usize, max: usize) -> Result<Tensor, BoxError> {
    let images = if path.extension().is_some_and(|e| e == "npy") {
        crate::sample::read_npy_images(path)?
    } else {
        let text = path
            .to_str()
            .ok_or_else(|| format!("{}: not a UTF-8 path", path.display()))?;
        let ds = load_images(text, Split::Test, size)?;
        crate::classify::unit_images(&ds)?
    };
    let n = images.shape()[0];
    if n < 2 {
        return Err(format!("{}: {n} image(s); FID needs at least 2", path.display()).into());
    }
    Ok(images.narrow(0, 0, n.min(max))?)
}

fn compare_sets(args: &FidArgs) -> Result<(), BoxError> {
    let start = Instant::now();
    let net = InceptionV3::load(&args.inception, args.inception_width_divisor)?;
    let a = image_set(&args.first, args.image_size, args.max_images)?;
    let b = image_set(&args.second, args.image_size, args.max_images)?;
    let scores = scored_with_progress(&net, &a, &b)?;
    println!(
        "{} vs {} ({} and {} images): FID {:.4}, KID {:.6}, IS of the first {:.4} ({:.0} s)",
        args.first.display(),
        args.second.display(),
        scores.samples[0],
        scores.samples[1],
        scores.fid,
        scores.kid,
        scores.inception_score,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
