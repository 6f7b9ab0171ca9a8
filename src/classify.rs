//! `saddle train classifier`: trains the domain classifier that scores generated images (FID,
//! Inception-style scores, I'), on MNIST-format data, and saves it with its test accuracy.

use crate::cli::{create_out_dir, load_images, resolve_device, BoxError};
use crate::flags::{between, Utf8, MAX_BATCH};
use clap::Args;
use saddle_engine::Rng;
use saddle_gan::data::{ImageDataset, Loader, Scale, Split};
use saddle_gan::models::classifier::Classifier;
use saddle_nn::ModuleExt;
use std::path::PathBuf;
use std::time::Instant;

/// `saddle train classifier`'s options.
#[derive(Args, Clone, Debug)]
pub struct ClassifierArgs {
    /// A folder holding the four MNIST-format IDX files (MNIST or Fashion-MNIST).
    #[arg(long, value_parser = Utf8)]
    pub data: String,
    /// Passes over the training split.
    #[arg(long, default_value_t = 3, value_parser = between::<usize>(1, 10_000))]
    pub epochs: usize,
    /// Images per training step.
    #[arg(long, default_value_t = 64, value_parser = between::<usize>(1, MAX_BATCH))]
    pub batch_size: usize,
    /// Seed of the weights and the data order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the weights go.
    #[arg(long, default_value = "runs/classifier/classifier.safetensors")]
    pub out: PathBuf,
    /// auto, cpu or `cuda[:N]`.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// All images of a dataset as one `[N, 1, H, W]` tensor with their labels.
pub fn as_tensor(ds: &ImageDataset) -> Result<(saddle_engine::Tensor, Vec<usize>), BoxError> {
    let mut loader = Loader::new(ds, ds.n, 0, Scale::ZeroToOne)?
        .with_shuffle(false)
        .with_drop_last(false);
    let batch = loader.next_batch()?;
    let labels = batch
        .labels
        .ok_or_else(|| format!("{}: no labels", ds.source))?;
    Ok((batch.images, labels))
}

/// Every image of `ds` as one `[N, C, H, W]` tensor in [0, 1] (labels not needed).
pub fn unit_images(ds: &ImageDataset) -> Result<saddle_engine::Tensor, BoxError> {
    let mut loader = Loader::new(ds, ds.n, 0, Scale::ZeroToOne)?
        .with_shuffle(false)
        .with_drop_last(false);
    Ok(loader.next_batch()?.images)
}

/// `saddle train classifier`: trains the domain classifier on `--data`'s training split,
/// reports its test accuracy and writes its weights to `--out`.
pub fn train_classifier(args: ClassifierArgs) -> Result<(), BoxError> {
    let device = resolve_device(&args.device)?;
    // The output folder first: a bad --out must not cost the training.
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_out_dir(dir)?;
    }
    let train = load_images(&args.data, Split::Train, 28)?;
    let test = load_images(&args.data, Split::Test, 28)?;
    if train.labels.is_none() || train.channels != 1 || train.height != 28 {
        return Err(format!(
            "--data {}: the classifier needs labelled 28x28 grey images (MNIST-format IDX files)",
            args.data
        )
        .into());
    }
    let (test_x, test_y) = as_tensor(&test)?;
    let model = Classifier::new(train.num_classes, &mut Rng::new(args.seed))?;
    // Adam's moments are created next to the weights on the first step; each batch (and each
    // slice of the test set) is moved there by the model.
    model.to_device(device)?;
    let mut opt = model.optimizer();
    let mut loader = Loader::new(&train, args.batch_size, args.seed, Scale::ZeroToOne)?;
    let steps = loader.batches_per_epoch() * args.epochs;
    println!(
        "classifier on {} ({} train / {} test images), {} epochs of {} steps",
        train.source,
        train.n,
        test.n,
        args.epochs,
        loader.batches_per_epoch()
    );
    let bar = crate::cli::step_bar(steps as u64);
    let start = Instant::now();
    let mut accuracy = 0.0;
    for epoch in 1..=args.epochs {
        let mut loss_sum = 0.0;
        for _ in 0..loader.batches_per_epoch() {
            let batch = loader.next_batch()?;
            let labels = batch.labels.expect("checked above");
            loss_sum += model.train_step(&mut opt, &batch.images, &labels)?;
            bar.inc(1);
        }
        accuracy = model.accuracy(&test_x, &test_y, 500)?;
        // Not bar.println: that prints nothing when output is not a terminal (logs).
        bar.suspend(|| {
            println!(
                "epoch {epoch}: mean loss {:.4}, test accuracy {:.2}%",
                loss_sum / loader.batches_per_epoch() as f64,
                100.0 * accuracy
            )
        });
    }
    bar.finish_and_clear();
    model.save(
        &args.out,
        &[
            ("classifier.dataset", train.source.clone()),
            ("classifier.test_accuracy", format!("{accuracy:.6}")),
            ("classifier.epochs", args.epochs.to_string()),
            ("classifier.seed", args.seed.to_string()),
        ],
    )?;
    println!(
        "test accuracy {:.2}% after {} epochs ({:.0} s); weights in {}",
        100.0 * accuracy,
        args.epochs,
        start.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}
