//! `saddle eval`: scores a trained run. Image GANs on MNIST-format data get classifier-feature
//! FID and KID, the Inception-style score and EBGAN's I' (with a classifier trained by `saddle
//! train classifier`); the results go to the terminal and to `<run>/eval-<checkpoint>.json`.

use crate::classify::as_tensor;
use crate::cli::{load_images, BoxError};
use crate::sample::load_run_model;
use clap::Args;
use saddle_engine::{no_grad, Rng, Tensor};
use saddle_gan::data::Split;
use saddle_gan::evaluate::ClassifierScorer;
use saddle_gan::models::classifier::Classifier;
use saddle_gan::run::GanModel;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Clone, Debug)]
pub struct EvalArgs {
    /// The run folder.
    #[arg(long)]
    pub run: PathBuf,
    /// latest, best, or a .safetensors path.
    #[arg(long, default_value = "latest")]
    pub checkpoint: String,
    /// Classifier weights from `saddle train classifier` (trained on the same dataset).
    #[arg(long)]
    pub classifier: PathBuf,
    /// The MNIST-format folder whose test split is the reference set.
    #[arg(long)]
    pub data: String,
    /// Generated samples to score (FID is biased at small counts: compare at equal counts).
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `count` generated images mapped to [0, 1], in batches.
pub fn generate_unit(
    model: &mut dyn GanModel,
    count: usize,
    seed: u64,
) -> Result<Tensor, BoxError> {
    let mut rng = Rng::new(seed);
    let (lo, hi) = model.value_range();
    let mut parts = Vec::new();
    let mut done = 0;
    while done < count {
        let n = (count - done).min(500);
        let z = model.sample_latent(n, &mut rng)?;
        let images = no_grad(|| model.generate(&z))?;
        parts.push(
            images
                .sub_scalar(lo as f64)?
                .div_scalar((hi - lo) as f64)?
                .clamp(0.0, 1.0)?,
        );
        done += n;
    }
    Ok(Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0)?)
}

pub fn eval(args: EvalArgs) -> Result<(), BoxError> {
    let start = Instant::now();
    let mut model = load_run_model(&args.run, &args.checkpoint)?;
    let (classifier, meta) = Classifier::load(&args.classifier)?;
    let test = load_images(&args.data, Split::Test, 28)?;
    let (real, _) = as_tensor(&test)?;
    let scorer = ClassifierScorer::new(classifier, &real)?;
    let fake = generate_unit(model.as_mut(), args.count, args.seed)?;
    let scores = scorer.score(&fake)?;
    let mut report = serde_json::Map::new();
    report.insert("checkpoint".into(), args.checkpoint.clone().into());
    report.insert("samples".into(), args.count.into());
    report.insert("reference".into(), test.source.clone().into());
    report.insert(
        "classifier_test_accuracy".into(),
        meta.meta("classifier.test_accuracy").unwrap_or("?").into(),
    );
    // The same scores for real training images at the same count: the floor a perfect
    // generator would reach with this classifier and sample size (FID and KID here are in the
    // classifier's feature space, not Inception's: only comparable with each other).
    let train = load_images(&args.data, Split::Train, 28)?;
    let indices: Vec<usize> = (0..args.count.min(train.n)).collect();
    let (real_train, _) = as_tensor(&train.subset(&indices)?)?;
    let floor = scorer.score(&real_train)?;
    println!("{:>16}  {:>12}  {:>12}", "", "generated", "real train");
    for ((name, v), (_, r)) in scores.named().into_iter().zip(floor.named()) {
        println!("{name:>16}: {v:>12.4}  {r:>12.4}");
        report.insert(format!("real_train_{name}"), r.into());
        report.insert(name, v.into());
    }
    report.insert("seconds".into(), start.elapsed().as_secs_f64().into());
    let path = args.run.join(format!(
        "eval-{}.json",
        if matches!(args.checkpoint.as_str(), "latest" | "best") {
            args.checkpoint.as_str()
        } else {
            "custom"
        }
    ));
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!(
        "{} samples scored in {:.0} s; written to {}",
        args.count,
        start.elapsed().as_secs_f64(),
        path.display()
    );
    Ok(())
}
