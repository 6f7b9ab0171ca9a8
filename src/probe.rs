//! `saddle probe`: the DCGAN and BigBiGAN papers' test of what a network learned. A DCGAN D's
//! activations (every block max-pooled to 4x4, concatenated), or a BigBiGAN encoder's pooled
//! features, feed an L2-regularised linear classifier trained on a few labels per class; its
//! test accuracy is compared with the same probe on a randomly initialised network of the same
//! shape.

use crate::cli::{load_images, BoxError};
use crate::flags::{between, Utf8};
use clap::Args;
use saddle_engine::{Rng, Tensor};
use saddle_gan::data::{ImageDataset, Loader, Scale, Split};
use saddle_gan::metrics::{linear_probe, ProbeConfig, ProbeResult};
use saddle_gan::models::bigbigan::BigBiGanTrainer;
use saddle_gan::models::dcgan::{discriminator_features, DcganTrainer};
use saddle_gan::run::{checkpoint_path, read_config, write_atomically};
use saddle_nn::{Checkpoint, Module};
use std::path::PathBuf;
use std::time::Instant;

/// `saddle probe`'s options.
#[derive(Args, Clone, Debug)]
pub struct ProbeArgs {
    /// A DCGAN run folder (D's features) or a BigBiGAN one (the encoder's).
    #[arg(long)]
    pub run: PathBuf,
    /// latest, best, or a .safetensors path.
    #[arg(long, default_value = "latest")]
    pub checkpoint: String,
    /// The labelled MNIST-format folder (e.g. Fashion-MNIST).
    #[arg(long, value_parser = Utf8)]
    pub data: String,
    /// Labelled training examples per class (the 1000 labels = 100 per class).
    #[arg(long, default_value_t = 100, value_parser = between::<usize>(1, 100_000))]
    pub labels_per_class: usize,
    /// Seed of the choice of labelled examples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// A trained or randomly initialised network whose features the probe reads: a DCGAN's D
/// (every block max-pooled to 4x4) or a BigBiGAN's encoder (its pooled features).
enum Probed {
    Dcgan(Box<DcganTrainer>),
    Bigbigan(Box<BigBiGanTrainer>),
}

impl Probed {
    fn image_size(&self) -> usize {
        match self {
            Probed::Dcgan(t) => t.cfg.image_size,
            Probed::Bigbigan(t) => t.cfg.model.model.resolution,
        }
    }

    fn features(&mut self, x: &Tensor) -> Result<Tensor, BoxError> {
        Ok(match self {
            Probed::Dcgan(t) => {
                t.d.set_training(false);
                discriminator_features(t.cfg, &t.d, x)?
            }
            Probed::Bigbigan(t) => t.features(x)?,
        })
    }
}

/// The features of every image of `ds` (padded to the network's size, scaled to [-1, 1]).
fn features(net: &mut Probed, ds: &ImageDataset) -> Result<(Vec<f64>, usize), BoxError> {
    let size = net.image_size();
    let ds = if ds.height == size {
        ds.clone()
    } else {
        ds.pad_to(size)?
    };
    let mut loader = Loader::new(&ds, 500.min(ds.n), 0, Scale::MinusOneToOne)?
        .with_shuffle(false)
        .with_drop_last(false);
    let mut rows = Vec::new();
    let mut dim = 0;
    for _ in 0..loader.batches_per_epoch() {
        let batch = loader.next_batch()?;
        let f = net.features(&batch.images)?;
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
    net: &mut Probed,
    train: &ImageDataset,
    test: &ImageDataset,
) -> Result<ProbeResult, BoxError> {
    let (train_f, dim) = features(net, train)?;
    let (test_f, _) = features(net, test)?;
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

/// The run's trained network (restored from `checkpoint`) and a randomly initialised one of
/// the same shape, with the names the report gives them.
fn trained_and_random(
    run: &std::path::Path,
    checkpoint: &std::path::Path,
) -> Result<[(&'static str, Probed); 2], BoxError> {
    let config = read_config(run)?;
    let file = format!("{}/config.json", run.display());
    let channels = config["channels"].as_u64().unwrap_or(1) as usize;
    let ck = Checkpoint::load(checkpoint)?;
    match config["model"].as_str() {
        Some("dcgan") => {
            let (spec, seed): (crate::train::DcganSpec, u64) =
                crate::train::parse_spec(&config, &file)?;
            let cfg = spec.model_config(channels)?;
            let mut trained = DcganTrainer::new(cfg, &mut Rng::new(seed))?;
            trained.restore(&ck)?;
            let random = DcganTrainer::new(cfg, &mut Rng::new(seed ^ 0xfeed))?;
            Ok([
                ("trained_d", Probed::Dcgan(Box::new(trained))),
                ("random_d", Probed::Dcgan(Box::new(random))),
            ])
        }
        Some("bigbigan") => {
            let (spec, seed): (crate::bigbigan::BigbiganSpec, u64) =
                crate::train::parse_spec(&config, &file)?;
            let cfg = spec.train_config(channels)?;
            let mut trained = BigBiGanTrainer::new(cfg, seed)?;
            trained.restore(&ck)?;
            let random = BigBiGanTrainer::new(cfg, seed ^ 0xfeed)?;
            Ok([
                ("trained_e", Probed::Bigbigan(Box::new(trained))),
                ("random_e", Probed::Bigbigan(Box::new(random))),
            ])
        }
        other => Err(format!(
            "{}: the probe reads a DCGAN's discriminator or a BigBiGAN's encoder; this run \
             trained {}",
            run.display(),
            other.unwrap_or("an unknown model")
        )
        .into()),
    }
}

/// `saddle probe`: fits a linear classifier on the run's features of `--labels-per-class`
/// labelled training images and reports its test accuracy, beside the same probe on a
/// randomly initialised network; the figures also go to `probe.json` in the run folder.
pub fn probe(args: ProbeArgs) -> Result<(), BoxError> {
    let start = Instant::now();
    let path = match args.checkpoint.as_str() {
        "latest" | "best" => checkpoint_path(&args.run, &args.checkpoint),
        other => PathBuf::from(other),
    };
    let mut nets = trained_and_random(&args.run, &path)?;
    let size = nets[0].1.image_size();
    // A BigBiGAN saw its images as `saddle train bigbigan` prepares them (the digits scaled
    // up); a DCGAN's are padded by `features`.
    let load = |split| match &nets[0].1 {
        Probed::Bigbigan(_) => crate::train::images_at(&args.data, split, size),
        Probed::Dcgan(_) => load_images(&args.data, split, size),
    };
    let full_train = load(Split::Train)?;
    let (labelled, _) = full_train.labelled_split(args.labels_per_class, args.seed)?;
    let test = load(Split::Test)?;
    let mut report = serde_json::Map::new();
    for (name, net) in &mut nets {
        let r = probe_one(net, &labelled, &test)?;
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
    write_atomically(&out, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!(
        "written to {} ({:.0} s)",
        out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
