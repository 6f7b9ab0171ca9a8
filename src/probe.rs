//! `saddle probe`: the DCGAN paper's test of what a discriminator learned. D's activations
//! (every block max-pooled to 4x4, concatenated) feed an L2-regularised linear classifier trained
//! on a few labels per class; its test accuracy is compared with the same probe on a randomly
//! initialised D of the same shape.

use crate::cli::{load_images, BoxError};
use crate::flags::{between, Utf8};
use clap::Args;
use saddle_engine::{Rng, Tensor};
use saddle_gan::data::{ImageDataset, Loader, Scale, Split};
use saddle_gan::metrics::{linear_probe, ProbeConfig, ProbeResult};
use saddle_gan::models::dcgan::{discriminator_features, DcganTrainer};
use saddle_gan::run::{checkpoint_path, read_config};
use saddle_nn::{Checkpoint, Module};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Clone, Debug)]
pub struct ProbeArgs {
    /// A DCGAN run folder.
    #[arg(long)]
    pub run: PathBuf,
    #[arg(long, default_value = "latest")]
    pub checkpoint: String,
    /// The labelled MNIST-format folder (e.g. Fashion-MNIST).
    #[arg(long, value_parser = Utf8)]
    pub data: String,
    /// Labelled training examples per class (the 1000 labels = 100 per class).
    #[arg(long, default_value_t = 100, value_parser = between::<usize>(1, 100_000))]
    pub labels_per_class: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// D features of every image of `ds` (padded to D's size, scaled to [-1, 1]).
fn features(trainer: &mut DcganTrainer, ds: &ImageDataset) -> Result<(Vec<f64>, usize), BoxError> {
    let size = trainer.cfg.image_size;
    let ds = if ds.height == size {
        ds.clone()
    } else {
        ds.pad_to(size)?
    };
    trainer.d.set_training(false);
    let mut loader = Loader::new(&ds, 500.min(ds.n), 0, Scale::MinusOneToOne)?
        .with_shuffle(false)
        .with_drop_last(false);
    let mut rows = Vec::new();
    let mut dim = 0;
    for _ in 0..loader.batches_per_epoch() {
        let batch = loader.next_batch()?;
        let f: Tensor = discriminator_features(trainer.cfg, &trainer.d, &batch.images)?;
        dim = f.shape()[1];
        rows.extend(f.to_vec_f64()?);
    }
    Ok((rows, dim))
}

fn labels(ds: &ImageDataset) -> Vec<usize> {
    ds.labels
        .as_ref()
        .map(|l| l.iter().map(|&c| c as usize).collect())
        .unwrap_or_default()
}

fn probe_one(
    trainer: &mut DcganTrainer,
    train: &ImageDataset,
    test: &ImageDataset,
) -> Result<ProbeResult, BoxError> {
    let (train_f, dim) = features(trainer, train)?;
    let (test_f, _) = features(trainer, test)?;
    Ok(linear_probe(
        &train_f,
        &labels(train),
        &test_f,
        &labels(test),
        dim,
        train.num_classes,
        &ProbeConfig::default(),
    )?)
}

pub fn probe(args: ProbeArgs) -> Result<(), BoxError> {
    let start = Instant::now();
    let config = read_config(&args.run)?;
    if config["model"].as_str() != Some("dcgan") {
        return Err(format!(
            "{}: the probe reads a DCGAN's discriminator; this run trained {}",
            args.run.display(),
            config["model"]
        )
        .into());
    }
    let (spec, seed): (crate::train::DcganSpec, u64) =
        crate::train::parse_spec(&config, &format!("{}/config.json", args.run.display()))?;
    let channels = config["channels"].as_u64().unwrap_or(1) as usize;
    let cfg = spec.model_config(channels)?;
    let mut trained = DcganTrainer::new(cfg, &mut Rng::new(seed))?;
    let path = match args.checkpoint.as_str() {
        "latest" | "best" => checkpoint_path(&args.run, &args.checkpoint),
        other => PathBuf::from(other),
    };
    trained.restore(&Checkpoint::load(&path)?)?;
    let mut random = DcganTrainer::new(cfg, &mut Rng::new(seed ^ 0xfeed))?;

    let full_train = load_images(&args.data, Split::Train, cfg.image_size)?;
    let (labelled, _) = full_train.labelled_split(args.labels_per_class, args.seed)?;
    let test = load_images(&args.data, Split::Test, cfg.image_size)?;
    let mut report = serde_json::Map::new();
    for (name, trainer) in [("trained_d", &mut trained), ("random_d", &mut random)] {
        let r = probe_one(trainer, &labelled, &test)?;
        println!(
            "{name:>10}: test accuracy {:.2}% (train {:.2}%, {} labels, {} L-BFGS iterations)",
            100.0 * r.test_accuracy,
            100.0 * r.train_accuracy,
            labelled.n,
            r.iterations
        );
        report.insert(format!("{name}_test_accuracy"), r.test_accuracy.into());
        report.insert(format!("{name}_train_accuracy"), r.train_accuracy.into());
    }
    report.insert("labels".into(), labelled.n.into());
    report.insert("seconds".into(), start.elapsed().as_secs_f64().into());
    let out = args.run.join("probe.json");
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    println!(
        "written to {} ({:.0} s)",
        out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
