//! `saddle train ladder` and `saddle train ebgan-ln`: permutation-invariant semi-supervised MNIST
//! with a few labels per class (the EBGAN paper's Table 2 setting is 100 labels), the plain
//! ladder network as the baseline and EBGAN-LN (the ladder as EBGAN's discriminator). Both
//! report the error of the clean encoder on the test images; the output folder gets
//! `metrics.jsonl` (losses and periodic test errors), `result.json` and, for EBGAN-LN, a grid
//! of generated samples.

use crate::cli::{load_images, resolve_device, stop_flag, BoxError};
use clap::Args;
use saddle_engine::Tensor;
use saddle_gan::data::{ImageDataset, Loader, Scale, Split};
use saddle_gan::models::ladder::{
    EbganLnConfig, LadderConfig, SemiSupervised, SemiSupervisedConfig,
};
use saddle_gan::plot::save_image_grid;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Clone, Debug)]
pub struct SemiSupArgs {
    /// A folder with the four MNIST-format IDX files.
    #[arg(long)]
    pub data: String,
    /// Labelled training images per class (10: the paper's 100 labels); the rest are used
    /// without labels.
    #[arg(long, default_value_t = 10)]
    pub labels_per_class: usize,
    /// Seed of the labelled/unlabelled split.
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
    /// The paper trains 120,000 steps.
    #[arg(long, default_value_t = 6000)]
    pub steps: u64,
    /// Labelled and unlabelled images per step (each; the paper's batch is 100).
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Adam learning rate of the ladder (the paper searched 2e-3 ... 1e-4).
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.5)]
    pub beta1: f64,
    /// Share of the steps after which the learning rates fall linearly to 0.
    #[arg(long, default_value_t = 2.0 / 3.0)]
    pub decay_from: f64,
    /// Std of the corrupted encoder's Gaussian noise.
    #[arg(long, default_value_t = 0.3)]
    pub noise_std: f64,
    /// Denoising cost weights λ_0..λ_L, comma-separated (default: the EBGAN paper's bottom
    /// layer only, 1000,0,0,0,0,0,0; Rasmus et al.'s full ladder: 1000,10,0.1,0.1,0.1,0.1,0.1).
    #[arg(long)]
    pub denoise_weights: Option<String>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Measure the test error every this many steps (and at the end).
    #[arg(long, default_value_t = 1000)]
    pub eval_every: u64,
    /// Log losses every this many steps.
    #[arg(long, default_value_t = 50)]
    pub log_every: u64,
    /// Test only the first N test images (default: all 10,000).
    #[arg(long)]
    pub test_count: Option<usize>,
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// EBGAN-LN's generator and margin (PAPERS.md: margin 16 decayed to 0 over the first half).
#[derive(Args, Clone, Debug)]
pub struct EbganLnArgs {
    #[arg(long, default_value_t = 16.0)]
    pub margin: f64,
    /// Share of the steps over which the margin falls to 0.
    #[arg(long, default_value_t = 0.5)]
    pub margin_decay: f64,
    /// nLayerG of the MLP generator.
    #[arg(long, default_value_t = 3)]
    pub layers_g: usize,
    /// sizeG of the MLP generator.
    #[arg(long, default_value_t = 800)]
    pub size_g: usize,
    #[arg(long, default_value_t = 100)]
    pub nz: usize,
    /// Adam learning rate of G.
    #[arg(long, default_value_t = 5e-4)]
    pub lr_g: f64,
}

/// Images `[N, H*W]` in [0, 1] of a grey dataset, in its order.
fn flat(ds: &ImageDataset) -> Result<(Tensor, Option<Vec<usize>>), BoxError> {
    let mut loader = Loader::new(ds, ds.n, 0, Scale::ZeroToOne)?
        .with_shuffle(false)
        .with_drop_last(false);
    let b = loader.next_batch()?;
    let n = b.images.shape()[0];
    Ok((b.images.reshape(&[n, ds.image_len()])?, b.labels))
}

fn next_flat(loader: &mut Loader) -> Result<(Tensor, Option<Vec<usize>>), BoxError> {
    let b = loader.next_batch()?;
    let n = b.images.shape()[0];
    let d = b.images.numel() / n;
    Ok((b.images.reshape(&[n, d])?, b.labels))
}

pub fn train_semisupervised(args: SemiSupArgs, ebgan: Option<EbganLnArgs>) -> Result<(), BoxError> {
    resolve_device(&args.device)?;
    let name = if ebgan.is_some() {
        "ebgan-ln"
    } else {
        "ladder"
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{name}")));
    let train = load_images(&args.data, Split::Train, 28)?;
    let test = load_images(&args.data, Split::Test, 28)?;
    if train.labels.is_none() || train.channels != 1 {
        return Err(format!(
            "--data {}: needs labelled grey MNIST-format images",
            args.data
        )
        .into());
    }
    let (labelled, unlabelled) = train.labelled_split(args.labels_per_class, args.split_seed)?;
    let (test_x, test_y) = flat(&test)?;
    let test_y = test_y.ok_or("the test split has no labels")?;
    let test_n = args.test_count.unwrap_or(test.n).min(test.n);
    let test_x = test_x.narrow(0, 0, test_n)?;
    let test_y = &test_y[..test_n];

    let mut ladder = LadderConfig::bottom_cost();
    ladder.sizes[0] = train.image_len();
    let top = ladder.sizes.len() - 1;
    ladder.sizes[top] = train.num_classes;
    ladder.noise_std = args.noise_std;
    if let Some(w) = &args.denoise_weights {
        ladder.denoise_weights = w
            .split(',')
            .map(|v| v.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("--denoise-weights {w}: {e}"))?;
        if ladder.denoise_weights.len() != ladder.sizes.len() {
            return Err(format!(
                "--denoise-weights {w}: needs {} values (input and every layer)",
                ladder.sizes.len()
            )
            .into());
        }
    }
    let cfg = SemiSupervisedConfig {
        ladder,
        lr: args.lr,
        beta1: args.beta1,
        steps: args.steps,
        decay_from: args.decay_from,
        ebgan: ebgan.as_ref().map(|e| EbganLnConfig {
            nz: e.nz,
            layers_g: e.layers_g,
            size_g: e.size_g,
            lr_g: e.lr_g,
            margin: e.margin,
            margin_decay_steps: (e.margin_decay * args.steps as f64) as u64,
        }),
    };
    let mut model = SemiSupervised::new(cfg.clone(), args.seed)?;
    let batch_l = args.batch_size.min(labelled.n);
    let mut lab_loader = Loader::new(&labelled, batch_l, args.seed, Scale::ZeroToOne)?;
    let mut unl_loader = Loader::new(
        &unlabelled,
        args.batch_size,
        args.seed + 1,
        Scale::ZeroToOne,
    )?;
    let mut stats_loader = Loader::new(
        &unlabelled,
        args.batch_size * 2,
        args.seed + 2,
        Scale::ZeroToOne,
    )?;
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let metrics_path = out.join("metrics.jsonl");
    let mut metrics = std::fs::File::create(&metrics_path)
        .map_err(|e| format!("{}: {e}", metrics_path.display()))?;
    println!(
        "{name} on {}: {} labelled + {} unlabelled images, {} test images, {} steps of batch {batch_l}+{} -> {}",
        train.source,
        labelled.n,
        unlabelled.n,
        test_n,
        args.steps,
        args.batch_size,
        out.display()
    );
    let start = Instant::now();
    let stop = stop_flag();
    let mut evaluate = |model: &mut SemiSupervised| -> Result<f64, BoxError> {
        // Clean-encoder statistics for evaluation mode from 20 unlabelled batches.
        let mut batches = Vec::new();
        for _ in 0..20 {
            batches.push(next_flat(&mut stats_loader)?.0);
        }
        model
            .ladder
            .estimate_statistics(batches.len(), |i| Ok(batches[i].clone()))?;
        Ok(model.ladder.error_rate(&test_x, test_y, 500)?)
    };
    let mut test_error = f64::NAN;
    let mut first_supervised = None;
    let mut last_supervised = f64::NAN;
    for step in 0..args.steps {
        let (xl, yl) = next_flat(&mut lab_loader)?;
        let (xu, _) = next_flat(&mut unl_loader)?;
        let s = model.step(&xl, &yl.ok_or("labelled batch without labels")?, &xu)?;
        if !s.supervised.is_finite() || !s.denoising.is_finite() {
            return Err(format!(
                "step {}: the loss is not finite (supervised {}, denoising {}); stopping",
                step + 1,
                s.supervised,
                s.denoising
            )
            .into());
        }
        first_supervised.get_or_insert(s.supervised);
        last_supervised = s.supervised;
        let done = step + 1;
        let eval_now = done == args.steps || (args.eval_every > 0 && done % args.eval_every == 0);
        if eval_now {
            test_error = evaluate(&mut model)?;
        }
        if done % args.log_every.max(1) == 0 || eval_now {
            let mut line = json!({
                "step": done,
                "supervised": s.supervised,
                "denoising": s.denoising,
                "elapsed_s": start.elapsed().as_secs_f64(),
            });
            for (k, v) in [
                ("margin", s.margin),
                ("fake_energy", s.fake_energy),
                ("g_loss", s.g_loss),
            ] {
                if let Some(v) = v {
                    line[k] = v.into();
                }
            }
            if eval_now {
                line["test_error"] = test_error.into();
            }
            writeln!(metrics, "{line}")?;
        }
        if eval_now {
            println!(
                "step {done}/{}: supervised {:.4}, denoising {:.4}{}, test error {:.2}% ({:.0} s)",
                args.steps,
                s.supervised,
                s.denoising,
                s.fake_energy
                    .map(|e| format!(", generated energy {e:.3}"))
                    .unwrap_or_default(),
                100.0 * test_error,
                start.elapsed().as_secs_f64()
            );
        }
        if stop.should_stop() {
            test_error = evaluate(&mut model)?;
            println!(
                "interrupted at step {done}: test error {:.2}%",
                100.0 * test_error
            );
            break;
        }
    }
    if let Some(samples) = model.samples(64)? {
        let side = (train.height, train.width);
        save_image_grid(
            out.join("samples.png"),
            &samples.reshape(&[64, 1, side.0, side.1])?,
            8,
            (0.0, 1.0),
            1,
        )?;
    }
    let wall = start.elapsed().as_secs_f64();
    let result = json!({
        "model": name,
        "labels": labelled.n,
        "steps": model.steps(),
        "test_images": test_n,
        "test_error": test_error,
        "first_supervised_loss": first_supervised,
        "last_supervised_loss": last_supervised,
        "wall_s": wall,
        "config": format!("{cfg:?}"),
        "seed": args.seed,
        "split_seed": args.split_seed,
    });
    std::fs::write(
        out.join("result.json"),
        serde_json::to_string_pretty(&result)?,
    )?;
    println!(
        "{name}: test error {:.2}% on {test_n} test images with {} labels after {} steps ({wall:.0} s)",
        100.0 * test_error,
        labelled.n,
        model.steps()
    );
    Ok(())
}
