//! Pieces every `saddle` sub-command shares: the device option, the data option, the run-loop
//! glue (progress bar, Ctrl-C handling, run folder creation or resumption).

use crate::flags::{at_least, between, MAX_SCORED};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use saddle_engine::Device;
use saddle_gan::data::{Channels, DataLimits, ImageDataset, Split};
use saddle_gan::run::{
    train, BatchSource, DivergedError, Evaluation, GanModel, LoopOptions, Outcome, RunDir, StopFlag,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The commands' error type: the library's (any error, with its message for the user).
pub use saddle_gan::run::BoxError;

/// `--device auto|cpu|cuda[:N]`: `auto` takes the GPU when a driver, a device and NVRTC are
/// present and the CPU otherwise, saying which and why in one line; `cuda[:N]` fails with the
/// reason when that device cannot be used, rather than falling back silently.
pub fn resolve_device(spec: &str) -> Result<Device, BoxError> {
    match spec {
        "auto" => Ok(Device::best()),
        "cpu" => Ok(Device::Cpu),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let ordinal = match s.strip_prefix("cuda:") {
                None => 0,
                Some(n) => n
                    .parse()
                    .map_err(|_| format!("--device {s}: expected cuda:N with N a number"))?,
            };
            let device = Device::Cuda(ordinal);
            device
                .check_available("--device")
                .map_err(|e| format!("--device {s}: {e}"))?;
            Ok(device)
        }
        other => Err(format!("--device {other}: expected auto, cpu or cuda[:N]").into()),
    }
}

/// Options every training command takes.
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
pub struct RunArgs {
    /// Training steps (one D and one G update each). On --resume, the new total.
    #[arg(long, value_parser = at_least::<u64>(1))]
    pub steps: Option<u64>,
    /// Seed of every random choice (weights, noise, data order).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run folder (config, metrics, sample grids, checkpoints, report.html).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this folder from its latest checkpoint (its config is reused).
    #[arg(long, conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// auto, cpu or `cuda[:N]`.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Log losses every this many steps.
    #[arg(long, default_value_t = 10, value_parser = at_least::<u64>(1))]
    pub log_every: u64,
    /// Write a sample grid every this many steps.
    #[arg(long, default_value_t = 250, value_parser = at_least::<u64>(1))]
    pub sample_every: u64,
    /// Write the latest checkpoint every this many steps.
    #[arg(long, default_value_t = 250, value_parser = at_least::<u64>(1))]
    pub checkpoint_every: u64,
    /// Evaluate (and keep the best checkpoint) every this many steps (0: only at the end).
    #[arg(long, default_value_t = 0)]
    pub eval_every: u64,
    /// Classifier weights (`saddle train classifier`) for the periodic evaluation of image
    /// GANs on MNIST-format data (FID etc. against the test split).
    #[arg(long)]
    pub classifier: Option<PathBuf>,
    /// Samples per periodic evaluation (`saddle eval` scores 10,000).
    #[arg(long, default_value_t = 2000, value_parser = between::<usize>(2, MAX_SCORED))]
    pub eval_count: usize,
}

/// The limits on what a data file may declare (saddle_gan::data::DataLimits), as flags every
/// command takes (global: before or after the sub-command). Checked before anything is
/// allocated; raise them for datasets beyond the defaults (EMNIST byclass, huge photos).
#[derive(Args, Clone, Debug)]
pub struct DataLimitArgs {
    /// Most bytes of pixel data one IDX file may declare [default: 256 MiB].
    #[arg(long, global = true, value_parser = at_least::<u64>(1))]
    pub max_idx_bytes: Option<u64>,
    /// Longest side of an image file, in pixels [default: 16384].
    #[arg(long, global = true, value_parser = between::<u32>(1, u32::MAX as u64))]
    pub max_image_side: Option<u32>,
    /// Most pixels in one image file [default: 67108864, 8192 x 8192].
    #[arg(long, global = true, value_parser = at_least::<u64>(1))]
    pub max_image_pixels: Option<u64>,
    /// Most times an image's long side may exceed its short side [default: 16].
    #[arg(long, global = true, value_parser = between::<u32>(1, u32::MAX as u64))]
    pub max_image_aspect: Option<u32>,
}

static DATA_LIMITS: OnceLock<DataLimits> = OnceLock::new();

/// Sets the data limits from the command line (once, by `main`; the defaults otherwise).
pub fn set_data_limits(args: &DataLimitArgs) {
    let d = DataLimits::default();
    let _ = DATA_LIMITS.set(DataLimits {
        idx_max_bytes: args.max_idx_bytes.unwrap_or(d.idx_max_bytes),
        image_max_side: args.max_image_side.unwrap_or(d.image_max_side),
        image_max_pixels: args.max_image_pixels.unwrap_or(d.image_max_pixels),
        image_max_aspect: args.max_image_aspect.unwrap_or(d.image_max_aspect),
    });
}

fn data_limits() -> DataLimits {
    DATA_LIMITS.get().copied().unwrap_or_default()
}

/// Where training images come from: `digits` (embedded, the default), or a folder holding
/// MNIST-format IDX files (MNIST, Fashion-MNIST) or image files.
pub fn load_images(data: &str, split: Split, folder_size: usize) -> Result<ImageDataset, BoxError> {
    if data == "digits" {
        return Ok(ImageDataset::digits()?);
    }
    let dir = Path::new(data);
    if !dir.is_dir() {
        return Err(format!(
            "--data {data}: not a folder (expected `digits`, a folder with the four MNIST IDX \
             files, or a folder of images)"
        )
        .into());
    }
    let has_idx = ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"]
        .iter()
        .any(|f| dir.join(f).exists());
    let limits = data_limits();
    if has_idx {
        Ok(ImageDataset::mnist_with(dir, split, &limits)?)
    } else {
        Ok(ImageDataset::image_folder_with(
            dir,
            folder_size,
            Channels::Rgb,
            &limits,
        )?)
    }
}

/// Ctrl-C (and SIGTERM) raise the returned flag: the loop finishes its step, writes the latest
/// checkpoint and the report, and exits; a second Ctrl-C exits at once (the previous checkpoint
/// is intact: checkpoints are written atomically).
pub fn stop_flag() -> StopFlag {
    static FLAG: OnceLock<StopFlag> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = StopFlag::new();
        let handler_flag = flag.clone();
        let installed = ctrlc::set_handler(move || {
            if handler_flag.should_stop() {
                eprintln!("\nsaddle: second interrupt, exiting now");
                std::process::exit(130);
            }
            eprintln!("\nsaddle: interrupt: saving a checkpoint after this step (Ctrl-C again to quit now)");
            handler_flag.request_stop();
        });
        if let Err(e) = installed {
            eprintln!("saddle: cannot catch Ctrl-C ({e}); an interrupt loses work since the last checkpoint");
        }
        flag
    })
    .clone()
}

/// A progress bar over `steps` training steps: position, rate, ETA and a message (losses).
pub fn step_bar(steps: u64) -> ProgressBar {
    let bar = ProgressBar::new(steps);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  ETA {eta}  {msg}")
            .expect("static template"),
    );
    bar
}

/// A progress bar over `len` items of work other than training steps (samples, images).
pub fn count_bar(len: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!("{{bar:30}} {{pos}}/{{len}} {unit}  ETA {{eta}}"))
            .expect("template with a literal unit"),
    );
    bar
}

/// Creates the `--out` folder (and its parents), naming it in the error (the bare OS error,
/// "File exists (os error 17)", says neither which path nor which flag).
pub fn create_out_dir(dir: &Path) -> Result<(), BoxError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        let why = if dir.exists() && !dir.is_dir() {
            "exists and is not a folder".to_string()
        } else {
            format!("cannot create the folder: {e}")
        };
        format!("--out {}: {why}", dir.display()).into()
    })
}

/// Creates the run folder (or reopens it with `resume`), then trains `model_name` with a
/// progress bar.
#[allow(clippy::too_many_arguments)]
pub fn run_training<M: GanModel + ?Sized>(
    model_name: &str,
    model: &mut M,
    data: &mut (dyn BatchSource + Send),
    root: &Path,
    resume: bool,
    config: &serde_json::Value,
    opts: &LoopOptions,
    evaluation: Option<Evaluation<'_, M>>,
) -> Result<(), BoxError> {
    let mut run = if resume {
        let run = RunDir::resume(root)?.0;
        if !opts.resume_changes.is_empty() {
            // The next resume starts from the changed settings; the log says when they changed.
            run.update_config(config)?;
            println!(
                "resuming with {}",
                crate::resume::describe(&opts.resume_changes)
            );
        }
        run
    } else {
        RunDir::create(root, config)?
    };
    let bar = step_bar(opts.steps);
    let stop = stop_flag();
    let outcome = train(
        model,
        data,
        &mut run,
        opts,
        config,
        evaluation,
        resume,
        &stop,
        &mut |p| {
            bar.set_position(p.step);
            if p.step % opts.log_every.max(1) == 0 {
                let losses: Vec<String> = p
                    .losses
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.4}"))
                    .collect();
                bar.set_message(losses.join("  "));
            }
        },
    );
    bar.finish();
    let outcome = outcome.map_err(|e| -> BoxError {
        if e.is::<DivergedError>() {
            return e; // says which checkpoint is kept and what to try
        }
        // Any other failure of a step (out of GPU memory, a bad batch) left the latest
        // checkpoint as it was.
        format!(
            "{e}\n(the run's latest checkpoint is kept: after fixing the cause, continue with \
             saddle train {model_name} --resume {})",
            root.display()
        )
        .into()
    });
    match outcome? {
        Outcome::Finished { step } => println!(
            "finished {step} steps: {} (report: {})",
            root.display(),
            run.report_path().display()
        ),
        Outcome::Interrupted { step } => println!(
            "stopped at step {step}; continue with: saddle train {model_name} --resume {}",
            root.display()
        ),
    }
    Ok(())
}
