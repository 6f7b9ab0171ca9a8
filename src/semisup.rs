//! `saddle train ladder` and `saddle train ebgan-ln`: permutation-invariant semi-supervised MNIST
//! with a few labels per class (the EBGAN paper's Table 2 setting is 100 labels), the plain
//! ladder network as the baseline and EBGAN-LN (the ladder as EBGAN's discriminator). Both
//! report the error of the clean encoder on the test images; the output folder gets
//! `metrics.jsonl` (losses and periodic test errors), `result.json` and, for EBGAN-LN, a grid
//! of generated samples.

use crate::cli::{load_images, resolve_device, step_bar, stop_flag, BoxError};
use crate::flags::{self, at_least, between, check_as_flags, Utf8, MAX_BATCH, MAX_WIDTH};
use crate::resume::{apply_given, Changes};
use clap::Args;
use saddle_engine::{DType, Device, Rng, Tensor};
use saddle_gan::data::{ImageDataset, Loader, LoaderState, Scale, Split};
use saddle_gan::models::ebgan_ln::{EbganLnConfig, SemiSupervised, SemiSupervisedConfig};
use saddle_gan::models::ladder::LadderConfig;
use saddle_gan::plot::save_image_grid;
use saddle_gan::run::{write_report, RunDir};
use saddle_nn::Checkpoint;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

/// The options of `saddle train ladder` and `saddle train ebgan-ln`.
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
pub struct SemiSupArgs {
    /// A folder with the four MNIST-format IDX files (on --resume, the run's own by default).
    #[arg(long, required_unless_present = "resume", value_parser = Utf8)]
    pub data: Option<String>,
    /// Labelled training images per class (10: the paper's 100 labels); the rest are used
    /// without labels.
    #[arg(long, default_value_t = 10, value_parser = between::<usize>(1, 100_000))]
    pub labels_per_class: usize,
    /// Seed of the labelled/unlabelled split.
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
    /// Training steps; the paper trains 120,000 [default: 6000]. On --resume, the new total
    /// (the learning-rate and margin schedules follow the total).
    #[arg(long, value_parser = at_least::<u64>(1))]
    pub steps: Option<u64>,
    /// Labelled and unlabelled images per step (each; the paper's batch is 100).
    #[arg(long, default_value_t = 100, value_parser = between::<usize>(1, MAX_BATCH))]
    pub batch_size: usize,
    /// Adam learning rate of the ladder (the paper searched 2e-3 ... 1e-4).
    #[arg(long, default_value_t = 2e-3, value_parser = flags::positive)]
    pub lr: f64,
    /// Adam's β1 (the ladder's and G's).
    #[arg(long, default_value_t = 0.5, value_parser = flags::below_one)]
    pub beta1: f64,
    /// Share of the steps after which the learning rates fall linearly to 0.
    #[arg(long, default_value_t = 2.0 / 3.0, value_parser = flags::share)]
    pub decay_from: f64,
    /// Std of the corrupted encoder's Gaussian noise.
    #[arg(long, default_value_t = 0.3, value_parser = flags::non_negative)]
    pub noise_std: f64,
    /// Denoising cost weights λ_0..λ_L, comma-separated (default: the EBGAN paper's bottom
    /// layer only, 1000,0,0,0,0,0,0; Rasmus et al.'s full ladder: 1000,10,0.1,0.1,0.1,0.1,0.1).
    #[arg(long)]
    pub denoise_weights: Option<String>,
    /// Seed of the weights, the noise and the data order (the split has --split-seed).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run folder [default: runs/ladder or runs/ebgan-ln].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Measure the test error every this many steps (and at the end).
    #[arg(long, default_value_t = 1000, value_parser = at_least::<u64>(1))]
    pub eval_every: u64,
    /// Log losses every this many steps.
    #[arg(long, default_value_t = 50, value_parser = at_least::<u64>(1))]
    pub log_every: u64,
    /// Test only the first N test images (default: all 10,000).
    #[arg(long, value_parser = at_least::<usize>(1))]
    pub test_count: Option<usize>,
    /// Write the checkpoint every this many steps (and on Ctrl-C and at the end).
    #[arg(long, default_value_t = 500, value_parser = at_least::<u64>(1))]
    pub checkpoint_every: u64,
    /// Continue the run in this folder from its checkpoint: its saved options are reused,
    /// except `--steps` (a new total), `--data` (if the data moved) and `--device`.
    #[arg(long, conflicts_with = "out")]
    #[serde(skip)]
    pub resume: Option<PathBuf>,
    /// auto, cpu or `cuda[:N]`.
    #[arg(long, default_value = "auto")]
    #[serde(skip)]
    pub device: String,
}

const DEFAULT_STEPS: u64 = 6000;
/// Offset of the fixed sample-grid noise's seed from the run's seed.
const FIXED_NOISE_STREAM: u64 = 0x5eed_0f9a_1d00;

/// EBGAN-LN's generator and margin (PAPERS.md: margin 16 decayed to 0 over the first half).
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
pub struct EbganLnArgs {
    /// The margin m of D's loss on generated images, at the start.
    #[arg(long, default_value_t = 16.0, value_parser = flags::non_negative)]
    pub margin: f64,
    /// Share of the steps over which the margin falls to 0.
    #[arg(long, default_value_t = 0.5, value_parser = flags::share)]
    pub margin_decay: f64,
    /// nLayerG of the MLP generator.
    #[arg(long, default_value_t = 3, value_parser = between::<usize>(1, 64))]
    pub layers_g: usize,
    /// sizeG of the MLP generator.
    #[arg(long, default_value_t = 800, value_parser = between::<usize>(1, MAX_WIDTH))]
    pub size_g: usize,
    /// Size of G's noise input.
    #[arg(long, default_value_t = 100, value_parser = between::<usize>(1, 4096))]
    pub nz: usize,
    /// Adam learning rate of G.
    #[arg(long, default_value_t = 5e-4, value_parser = flags::positive)]
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

/// The saved options of a run folder and, when it is being resumed, what its command line
/// changed: a fresh run refuses a folder that holds one; `--resume` takes the saved options
/// (checking the model), with the flags given on the command line applied or refused.
fn run_options(
    name: &str,
    args: SemiSupArgs,
    ebgan: Option<EbganLnArgs>,
) -> Result<(RunDir, SemiSupArgs, Option<EbganLnArgs>, Option<Changes>), BoxError> {
    let Some(root) = args.resume.clone() else {
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("runs/{name}")));
        let mut args = args;
        args.steps.get_or_insert(DEFAULT_STEPS);
        args.out = Some(out.clone());
        let config = json!({ "model": name, "semi": args, "ebgan": ebgan });
        return Ok((RunDir::create(&out, &config)?, args, ebgan, None));
    };
    let (run, config) = RunDir::resume(&root)?;
    let saved = config["model"].as_str().unwrap_or("another model");
    if saved != name {
        return Err(format!(
            "--resume {}: that run trained `{saved}`, not `{name}`",
            root.display()
        )
        .into());
    }
    let bad = |e: serde_json::Error| format!("{}: {e}", root.join("config.json").display());
    // Flags given on the command line change the saved options where they may (see
    // crate::resume) and are refused where they may not.
    let mut changes = Changes::new();
    let mut semi = config["semi"].clone();
    apply_given(
        &mut semi,
        &json!(&args),
        &SEMI_MAY_CHANGE,
        &root,
        &mut changes,
    )?;
    let mut saved_ebgan = config["ebgan"].clone();
    if let Some(given) = &ebgan {
        apply_given(
            &mut saved_ebgan,
            &json!(given),
            &["lr_g"],
            &root,
            &mut changes,
        )?;
    }
    let mut saved_args: SemiSupArgs = serde_json::from_value(semi).map_err(bad)?;
    let saved_ebgan: Option<EbganLnArgs> = serde_json::from_value(saved_ebgan).map_err(bad)?;
    // A damaged or hand-edited config is refused as its values would be as flags.
    let file = root.join("config.json");
    let checked = check_as_flags(&saved_args).and_then(|_| match &saved_ebgan {
        Some(e) => check_as_flags(e),
        None => Ok(()),
    });
    checked.map_err(|e| format!("{}: {e}", file.display()))?;
    saved_args.out = Some(root);
    saved_args.device = args.device;
    if !changes.is_empty() {
        run.update_config(&json!({ "model": name, "semi": &saved_args, "ebgan": &saved_ebgan }))?;
        println!("resuming with {}", crate::resume::describe(&changes));
    }
    Ok((run, saved_args, saved_ebgan, Some(changes)))
}

/// The options a resumed ladder / EBGAN-LN run may change: the step total, where the data
/// lives, the learning rate and the evaluation, logging and checkpoint cadence.
const SEMI_MAY_CHANGE: [&str; 7] = [
    "steps",
    "data",
    "lr",
    "eval_every",
    "log_every",
    "checkpoint_every",
    "test_count",
];

/// The three data streams of a run, saved in its checkpoint so a resumed run sees the batches
/// the uninterrupted one would have.
struct Streams<'a> {
    labelled: Loader<'a>,
    unlabelled: Loader<'a>,
    /// Batches for the evaluation-mode batch-norm statistics.
    stats: Loader<'a>,
}

impl<'a> Streams<'a> {
    fn each(&mut self) -> [(&'static str, &mut Loader<'a>); 3] {
        [
            ("labelled", &mut self.labelled),
            ("unlabelled", &mut self.unlabelled),
            ("stats", &mut self.stats),
        ]
    }

    fn save(&mut self, ck: &mut Checkpoint) {
        for (key, loader) in self.each() {
            let s = loader.state();
            ck.set_meta(
                format!("loader.{key}"),
                format!("{} {}", s.epoch, s.position),
            );
        }
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<(), BoxError> {
        for (key, loader) in self.each() {
            let text = ck.meta(&format!("loader.{key}")).unwrap_or("");
            let parts: Vec<u64> = text.split(' ').filter_map(|p| p.parse().ok()).collect();
            let &[epoch, position] = parts.as_slice() else {
                return Err(format!(
                    "{}: malformed data position `loader.{key}` = {text:?}",
                    ck.path().display()
                )
                .into());
            };
            loader.restore(LoaderState {
                epoch,
                position: position as usize,
            })?;
        }
        Ok(())
    }
}

/// `saddle train ladder` (`ebgan` None) or `saddle train ebgan-ln`: trains (or with
/// `--resume` continues) the semi-supervised run and reports its test error.
pub fn train_semisupervised(args: SemiSupArgs, ebgan: Option<EbganLnArgs>) -> Result<(), BoxError> {
    let device = resolve_device(&args.device)?;
    let name = if ebgan.is_some() {
        "ebgan-ln"
    } else {
        "ladder"
    };
    let (mut run, args, ebgan, resumed) = run_options(name, args, ebgan)?;
    let resume = resumed.is_some();
    let out = run.root().to_path_buf();
    let steps = args.steps.unwrap_or(DEFAULT_STEPS);
    let data_dir = args.data.clone().ok_or("--data is required")?;
    let train = load_images(&data_dir, Split::Train, 28)?;
    let test = load_images(&data_dir, Split::Test, 28)?;
    if train.labels.is_none() || train.channels != 1 {
        return Err(format!("--data {data_dir}: needs labelled grey MNIST-format images").into());
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
        steps,
        decay_from: args.decay_from,
        ebgan: ebgan.as_ref().map(|e| EbganLnConfig {
            nz: e.nz,
            layers_g: e.layers_g,
            size_g: e.size_g,
            lr_g: e.lr_g,
            margin: e.margin,
            margin_decay_steps: (e.margin_decay * steps as f64) as u64,
        }),
    };
    let mut model = SemiSupervised::new(cfg.clone(), args.seed)?;
    model.to_device(device)?;
    // EBGAN-LN's sample grids (one per evaluation, and samples.png at the end) use one fixed
    // batch of latent vectors, from a stream of their own.
    let fixed_z = match model.latent_size() {
        Some(nz) => Some(Tensor::randn(
            &[64, nz],
            0.0,
            1.0,
            DType::F32,
            Device::Cpu,
            &mut Rng::new(args.seed.wrapping_add(FIXED_NOISE_STREAM)),
        )?),
        None => None,
    };
    let side = (train.height, train.width);
    let save_grid = |model: &mut SemiSupervised, path: PathBuf| -> Result<(), BoxError> {
        let Some(z) = &fixed_z else {
            return Ok(());
        };
        if let Some(samples) = model.samples_from(z)? {
            let images = samples.reshape(&[64, 1, side.0, side.1])?;
            save_image_grid(path, &images, 8, (0.0, 1.0), 1)?;
        }
        Ok(())
    };
    let batch_l = args.batch_size.min(labelled.n);
    let mut data = Streams {
        labelled: Loader::new(&labelled, batch_l, args.seed, Scale::ZeroToOne)?,
        unlabelled: Loader::new(
            &unlabelled,
            args.batch_size,
            args.seed + 1,
            Scale::ZeroToOne,
        )?,
        stats: Loader::new(
            &unlabelled,
            args.batch_size * 2,
            args.seed + 2,
            Scale::ZeroToOne,
        )?,
    };
    let checkpoint_path = run.latest_checkpoint();
    // A run killed before its first checkpoint starts again from step 0.
    let resume = resume && checkpoint_path.exists();
    if !resume {
        run.drop_metrics_after(0)?;
    }
    // Wall time and the first loss of the steps before a resume.
    let mut elapsed_before = 0.0;
    let mut first_supervised: Option<f64> = None;
    if resume {
        let ck = Checkpoint::load(&checkpoint_path)?;
        model.restore(&ck)?;
        data.restore(&ck)?;
        elapsed_before = ck
            .meta("elapsed_s")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        first_supervised = ck.meta("first_supervised").and_then(|v| v.parse().ok());
        run.drop_metrics_after(model.steps())?;
        if let Some(changes) = resumed.filter(|c| !c.is_empty()) {
            let mut record = serde_json::Map::new();
            record.insert("step".into(), model.steps().into());
            record.insert("resumed".into(), changes.into());
            run.log(&record)?;
        }
    }
    println!(
        "{name} on {}: {} labelled + {} unlabelled images, {} test images, {} steps of batch {batch_l}+{} -> {}{}",
        train.source,
        labelled.n,
        unlabelled.n,
        test_n,
        steps,
        args.batch_size,
        out.display(),
        if resume { format!(" (resumed at step {})", model.steps()) } else { String::new() }
    );
    let start = Instant::now();
    let elapsed = || elapsed_before + start.elapsed().as_secs_f64();
    let save =
        |model: &SemiSupervised, data: &mut Streams, first: Option<f64>| -> Result<(), BoxError> {
            let mut ck = model.checkpoint();
            data.save(&mut ck);
            ck.set_meta("elapsed_s", elapsed());
            if let Some(f) = first {
                ck.set_meta("first_supervised", f);
            }
            ck.save(&checkpoint_path)?;
            Ok(())
        };
    if !resume {
        // A run that diverges before its first periodic checkpoint can be resumed from its
        // start (with a lower --lr).
        save(&model, &mut data, first_supervised)?;
    }
    let stop = stop_flag();
    let bar = step_bar(steps);
    bar.set_position(model.steps());
    let evaluate = |model: &mut SemiSupervised, stats: &mut Loader| -> Result<f64, BoxError> {
        // Clean-encoder statistics for evaluation mode from 20 unlabelled batches.
        let mut batches = Vec::new();
        for _ in 0..20 {
            batches.push(next_flat(stats)?.0);
        }
        model
            .ladder
            .estimate_statistics(batches.len(), |i| Ok(batches[i].clone()))?;
        Ok(model.ladder.error_rate(&test_x, test_y, 500)?)
    };
    let mut test_error = f64::NAN;
    let mut last_supervised = f64::NAN;
    let mut interrupted = false;
    let mut last_saved = model.steps();
    for step in model.steps()..steps {
        let (xl, yl) = next_flat(&mut data.labelled)?;
        let (xu, _) = next_flat(&mut data.unlabelled)?;
        let s = model.step(&xl, &yl.ok_or("labelled batch without labels")?, &xu)?;
        if !s.supervised.is_finite() || !s.denoising.is_finite() {
            return Err(format!(
                "step {}: the loss is not finite (supervised {}, denoising {}); stopping (the checkpoint of step {} is kept)",
                step + 1,
                s.supervised,
                s.denoising,
                last_saved
            )
            .into());
        }
        first_supervised.get_or_insert(s.supervised);
        last_supervised = s.supervised;
        let done = step + 1;
        bar.set_position(done);
        let eval_now = done == steps || (args.eval_every > 0 && done % args.eval_every == 0);
        if eval_now {
            test_error = evaluate(&mut model, &mut data.stats)?;
            save_grid(&mut model, run.samples_path(done))?;
        }
        if done % args.log_every.max(1) == 0 || eval_now {
            let mut line = json!({
                "step": done,
                "supervised": s.supervised,
                "denoising": s.denoising,
                "time_s": elapsed(),
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
            let serde_json::Value::Object(record) = line else {
                unreachable!("json! of an object literal")
            };
            run.log(&record)?;
        }
        if done % args.log_every.max(1) == 0 {
            let measured = if test_error.is_nan() {
                String::new()
            } else {
                format!("  test error {:.2}%", 100.0 * test_error)
            };
            bar.set_message(format!(
                "supervised {:.4}  denoising {:.4}{measured}",
                s.supervised, s.denoising
            ));
        }
        // Not bar.println: that prints nothing when output is not a terminal (logs).
        if eval_now {
            bar.suspend(|| println!(
                "step {done}/{steps}: supervised {:.4}, denoising {:.4}{}, test error {:.2}% ({:.0} s)",
                s.supervised,
                s.denoising,
                s.fake_energy
                    .map(|e| format!(", generated energy {e:.3}"))
                    .unwrap_or_default(),
                100.0 * test_error,
                elapsed()
            ));
        }
        interrupted = stop.should_stop();
        if done == steps
            || interrupted
            || (args.checkpoint_every > 0 && done % args.checkpoint_every == 0)
        {
            save(&model, &mut data, first_supervised)?;
            last_saved = done;
        }
        if interrupted {
            break;
        }
    }
    bar.finish_and_clear();
    if test_error.is_nan() || interrupted {
        // Interrupted between evaluations, or resumed at its end: measure the model as it is
        // (after the checkpoint, which the evaluation's statistics batches do not change).
        test_error = evaluate(&mut model, &mut data.stats)?;
    }
    if interrupted {
        println!(
            "interrupted at step {}: test error {:.2}%; continue with: saddle train {name} --resume {}",
            model.steps(),
            100.0 * test_error,
            out.display()
        );
    }
    save_grid(&mut model, out.join("samples.png"))?;
    let wall = elapsed();
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
    let final_metrics = [
        (
            "test error".to_string(),
            format!("{:.2}%", 100.0 * test_error),
        ),
        ("test images".to_string(), test_n.to_string()),
        ("labels".to_string(), labelled.n.to_string()),
        ("steps".to_string(), model.steps().to_string()),
        ("wall time".to_string(), format!("{wall:.0} s")),
    ];
    let config = json!({ "model": name, "semi": args, "ebgan": ebgan });
    write_report(
        &run,
        &format!("saddle train {name}"),
        &config,
        &final_metrics,
    )?;
    println!(
        "{name}: test error {:.2}% on {test_n} test images with {} labels after {} steps ({wall:.0} s)",
        100.0 * test_error,
        labelled.n,
        model.steps()
    );
    Ok(())
}
