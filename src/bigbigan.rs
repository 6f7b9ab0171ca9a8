//! `saddle train bigbigan`: BigBiGAN at reduced scale (see `saddle_gan::models::bigbigan`).

use crate::cli::{resolve_device, run_training, BoxError, RunArgs};
use crate::flags::{self, between, Utf8, MAX_BATCH};
use crate::train::{
    classifier_evaluation, images_at, intervals, loop_options, start_run, Settings,
};
use clap::Args;
use saddle_gan::data::{Loader, Scale, Split};
use saddle_gan::models::bigbigan::{BigBiGanConfig, BigBiGanTrainConfig, BigBiGanTrainer};
use saddle_gan::models::biggan::BigGanConfig;
use saddle_gan::run::LoopOptions;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// BigBiGAN's options: BigGAN's G and D body scaled to 32x32 MNIST-like data (as `saddle train
/// biggan`), an encoder of the same down-blocks, SN MLPs of --mlp-width in the joint D.
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
pub struct BigbiganSpec {
    /// `digits` (embedded, shown at 32x32), a folder with MNIST-format IDX files, or a folder
    /// of images.
    #[arg(long, default_value = "digits", value_parser = Utf8)]
    pub data: String,
    /// Image side: 32, 64 or 128.
    #[arg(long, default_value_t = 32, value_parser = flags::biggan_resolution)]
    pub image_size: usize,
    /// Width of G and F (and of E unless --encoder-ch): channels are multiples of it.
    #[arg(long, default_value_t = 16, value_parser = between::<usize>(1, 256))]
    pub ch: usize,
    /// Width of the encoder E (its pooled features, what `saddle probe` reads, have 2x this
    /// many channels at 32x32) [default: --ch].
    #[arg(long, value_parser = between::<usize>(1, 256))]
    // Runs from before the flag: E as wide as G.
    #[serde(default)]
    pub encoder_ch: Option<usize>,
    /// Latent size [default: 20 per G block plus 20: 80 at 32x32].
    #[arg(long, value_parser = between::<usize>(1, 4096))]
    pub z_dim: Option<usize>,
    /// The resolution the encoder sees (the image size halved a number of times, at least
    /// 32) [default: the image size].
    #[arg(long, value_parser = flags::biggan_resolution)]
    pub encoder_resolution: Option<usize>,
    /// Width of the hidden layers of D's MLPs on z (H) and on both (J).
    #[arg(long, default_value_t = 256, value_parser = between::<usize>(1, 8192))]
    pub mlp_width: usize,
    /// Drop D's unary scores s_x and s_z (the paper's ablation): only the joint s_xz counts.
    #[arg(long)]
    pub no_unary: bool,
    /// Adam learning rate of E and G.
    #[arg(long, default_value_t = 2e-4, value_parser = flags::positive)]
    pub lr_eg: f64,
    /// D's Adam learning rate.
    #[arg(long, default_value_t = 2e-4, value_parser = flags::positive)]
    pub lr_d: f64,
    /// Real images per training step.
    #[arg(long, default_value_t = 64, value_parser = between::<usize>(1, MAX_BATCH))]
    pub batch_size: usize,
    /// Decay of the moving averages of E's and G's weights.
    #[arg(long, default_value_t = 0.999, value_parser = flags::below_one)]
    pub ema_decay: f64,
    /// Step at which the averages start.
    #[arg(long, default_value_t = 1000)]
    pub ema_start: u64,
}

impl BigbiganSpec {
    /// The training configuration for images of `channels`.
    pub fn train_config(&self, channels: usize) -> Result<BigBiGanTrainConfig, BoxError> {
        let blocks = (self.image_size / 4).trailing_zeros() as usize;
        let model = BigGanConfig {
            resolution: self.image_size,
            channels,
            ch: self.ch,
            num_classes: None,
            z_dim: self.z_dim.unwrap_or(20 * (blocks + 1)),
            shared_dim: 1,
            attention_resolution: None,
            ..BigGanConfig::imagenet128()
        };
        Ok(BigBiGanTrainConfig {
            lr_eg: self.lr_eg,
            lr_d: self.lr_d,
            ema_decay: self.ema_decay,
            ema_start: self.ema_start,
            ..BigBiGanTrainConfig::new(BigBiGanConfig {
                model,
                encoder_resolution: self.encoder_resolution.unwrap_or(self.image_size),
                encoder_ch: self.encoder_ch.unwrap_or(self.ch),
                mlp_width: self.mlp_width,
                unary: !self.no_unary,
            })
        })
    }
}

/// How many test images the run reconstructs beside each sample grid (two rows of 8).
const RECONSTRUCTED: usize = 16;

/// `saddle train bigbigan`: trains (or with `--resume` continues) a BigBiGAN run in its run
/// folder.
pub fn train_bigbigan(spec: BigbiganSpec, mut run: RunArgs) -> Result<(), BoxError> {
    let device = resolve_device(&run.device)?;
    let default_steps = if spec.data == "digits" { 300 } else { 5000 };
    let Settings {
        spec,
        seed,
        steps,
        changes,
        root,
        resumed,
    } = start_run(
        spec,
        &mut run,
        "bigbigan",
        default_steps,
        &["lr_eg", "lr_d", "data"],
    )?;
    let data = images_at(&spec.data, Split::Train, spec.image_size)?;
    let cfg = spec.train_config(data.channels)?;
    let config = json!({
        "model": "bigbigan",
        "spec": &spec,
        "seed": seed,
        "steps": steps,
        "channels": data.channels,
        "intervals": intervals(&run),
    });
    println!(
        "BigBiGAN ({}) on {} ({} images of {}x{}x{}), batch {}, {steps} steps -> {}",
        if spec.no_unary {
            "joint score only"
        } else {
            "unary and joint scores"
        },
        data.source,
        data.n,
        data.channels,
        spec.image_size,
        spec.image_size,
        spec.batch_size,
        root.display()
    );
    if !device.is_cpu() {
        return Err(format!("BigBiGAN trains on the CPU only so far, not on {device}").into());
    }
    let mut model = BigBiGanTrainer::new(cfg, seed)?;
    // Reconstructions of the first test images (or training images where there is no test
    // split) are saved with every sample grid.
    let shown =
        images_at(&spec.data, Split::Test, spec.image_size).unwrap_or_else(|_| data.clone());
    let mut first = Loader::new(&shown, RECONSTRUCTED.min(shown.n), 0, Scale::MinusOneToOne)?
        .with_shuffle(false);
    model.reconstruction_images = Some(first.next_batch()?.images);
    let mut loader = Loader::new(&data, spec.batch_size, seed, Scale::MinusOneToOne)?;
    let opts = LoopOptions {
        resume_changes: changes,
        grid_upscale: 2,
        ..loop_options(&run, steps, seed, format!("BigBiGAN on {}", data.source))
    };
    let evaluation = classifier_evaluation::<BigBiGanTrainer>(&run, &spec.data, steps)?;
    run_training(
        "bigbigan",
        &mut model,
        &mut loader,
        &root,
        resumed,
        &config,
        &opts,
        evaluation,
    )
}
