//! `saddle train ...`: the training jobs. Each GAN writes a run folder (see `saddle_gan::run`)
//! and can be resumed with `--resume DIR`.

use crate::cli::{load_images, resolve_device, run_training, BoxError, RunArgs};
use crate::flags::{self, at_least, between, Utf8, MAX_BATCH, MAX_WIDTH};
use crate::label_source::{self, LabelMethod, LabelRequest};
use crate::resume::{apply_given, Changes};
use clap::{Args, Subcommand, ValueEnum};
use saddle_engine::{Device, Rng, Tensor};
use saddle_gan::data::{ImageDataset, Loader, Scale, Split};
use saddle_gan::evaluate::ClassifierScorer;
use saddle_gan::models::biggan::BigGanConfig;
use saddle_gan::models::biggan_trainer::{BigGanTrainConfig, BigGanTrainer};
use saddle_gan::models::classifier::Classifier;
use saddle_gan::models::dcgan::{DcganConfig, DcganLoss, DcganTrainer};
use saddle_gan::models::ebgan::{EbganConfig, EbganTrainer};
use saddle_gan::models::gan2014::{Gan2014Config, Gan2014Trainer, Noise, Updates};
use saddle_gan::models::labeller::LabellerConfig;
use saddle_gan::plot::scatter_png;
use saddle_gan::run::{read_config, Evaluation, GanModel, LoopOptions};
use saddle_gan::toy::{train_toy_gan, ToyConfig};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use crate::classify::ClassifierArgs;

/// The models `saddle train` trains, with their options.
#[derive(Subcommand, Clone, Debug)]
pub enum Model {
    /// DCGAN (Radford et al. 2016). With no --data it trains on the embedded 8x8 digits
    /// (shown at 16x16) and shows samples within a minute on a laptop CPU.
    Dcgan {
        /// The model's options.
        #[command(flatten)]
        spec: DcganSpec,
        /// The options every training run takes.
        #[command(flatten)]
        run: RunArgs,
    },
    /// The GAN of Goodfellow et al. (2014): MLP G, maxout D with dropout, SGD with momentum.
    /// Images in [0, 1], flattened (MNIST: 784; the embedded digits: 64).
    Gan2014 {
        /// The model's options.
        #[command(flatten)]
        spec: Gan2014Spec,
        /// The options every training run takes.
        #[command(flatten)]
        run: RunArgs,
    },
    /// EBGAN (Zhao et al. 2017): auto-encoder D, margin loss; --pt adds the pulling-away term.
    Ebgan {
        /// The model's options.
        #[command(flatten)]
        spec: EbganSpec,
        /// The options every training run takes.
        #[command(flatten)]
        run: RunArgs,
    },
    /// BigGAN (Brock et al. 2019) at reduced scale, the base of the fewer-labels paper
    /// (S2GAN / S3GAN): ResNet G and D with spectral norm, class-conditional batch norm and a
    /// projection D (`--unconditional` for neither), hinge loss, EMA of G. CPU only so far.
    /// `saddle train s3gan` is the same command: `--method` picks the paper's label source
    /// (S2GAN, S3GAN, their co-training forms and the baselines) and `--labels` the labelled
    /// share.
    #[command(visible_alias = "s3gan")]
    Biggan {
        /// The model's options.
        #[command(flatten)]
        spec: BigganSpec,
        /// The options every training run takes.
        #[command(flatten)]
        run: RunArgs,
    },
    /// BigBiGAN (Donahue & Simonyan 2019) at reduced scale: an encoder E trained with BigGAN's
    /// G against a joint discriminator of (image, latent) pairs; reconstructions G(E(x)) are
    /// saved beside the sample grids and `saddle probe --run` reads E's features.
    Bigbigan {
        /// The model's options.
        #[command(flatten)]
        spec: crate::bigbigan::BigbiganSpec,
        /// The options every training run takes.
        #[command(flatten)]
        run: RunArgs,
    },
    /// The ladder network (Rasmus et al. 2015) on MNIST with few labels: the baseline of
    /// EBGAN-LN (by default with only the bottom layer's denoising cost, as the EBGAN paper).
    Ladder(crate::semisup::SemiSupArgs),
    /// EBGAN-LN (Zhao et al. 2017): the ladder network as EBGAN's discriminator against an MLP
    /// generator, semi-supervised MNIST with few labels; reports the test error.
    EbganLn {
        /// The ladder network's options.
        #[command(flatten)]
        semi: crate::semisup::SemiSupArgs,
        /// The generator's and the margin's options.
        #[command(flatten)]
        gen: crate::semisup::EbganLnArgs,
    },
    /// The domain classifier whose features and class probabilities score generated MNIST /
    /// Fashion-MNIST images (FID, Inception-style scores, I').
    Classifier(ClassifierArgs),
    /// A GAN on 8 Gaussians on a ring (data generated in the program): prints progress and
    /// mode coverage, writes a scatter plot of samples.
    Ring {
        /// Training steps (one D and one G update each).
        #[arg(long, default_value_t = ToyConfig::default().steps, value_parser = at_least::<usize>(1))]
        steps: usize,
        /// Seed of the weights, the noise and the data.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Samples per training step.
        #[arg(long, default_value_t = ToyConfig::default().batch, value_parser = between::<usize>(1, MAX_BATCH))]
        batch_size: usize,
        /// Standard deviation of each Gaussian.
        #[arg(long, default_value_t = 0.05, value_parser = flags::positive)]
        std: f64,
        /// standard (non-saturating) or wgan-gp (a critic with a gradient penalty).
        #[arg(long, value_enum, default_value_t = GanLossArg::Standard)]
        loss: GanLossArg,
        /// The gradient penalty's weight under --loss wgan-gp (the paper's toy runs: 0.1).
        #[arg(long, default_value_t = 0.1, value_parser = flags::non_negative)]
        gp_weight: f64,
        /// Critic updates per G update under --loss wgan-gp.
        #[arg(long, default_value_t = 5, value_parser = between::<usize>(1, 100))]
        n_critic: usize,
        /// Folder for the outputs.
        #[arg(long, default_value = "runs/ring")]
        out: PathBuf,
    },
}

/// DCGAN's options; the defaults are the paper's (Adam 2e-4, β1 0.5, batch 128 in the paper,
/// 64 here as in PyTorch's example) with sizes picked from the data.
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
pub struct DcganSpec {
    /// `digits` (embedded), a folder with MNIST-format IDX files, or a folder of images.
    #[arg(long, default_value = "digits", value_parser = Utf8)]
    pub data: String,
    /// Image side: 16 for the digits, 32 for MNIST-format data, 64 for image folders.
    #[arg(long, value_parser = flags::dcgan_image_size)]
    pub image_size: Option<usize>,
    /// Latent size (default 100; 32 for the digits).
    #[arg(long, value_parser = between::<usize>(1, 4096))]
    pub nz: Option<usize>,
    /// Generator width (default 64; 32 for the digits).
    #[arg(long, value_parser = between::<usize>(1, MAX_WIDTH))]
    pub ngf: Option<usize>,
    /// Discriminator width (default 64; 32 for the digits).
    #[arg(long, value_parser = between::<usize>(1, MAX_WIDTH))]
    pub ndf: Option<usize>,
    /// Adam learning rate of G and D [default: 2e-4; 1e-4 with --loss wgan-gp].
    #[arg(long, value_parser = flags::positive)]
    pub lr: Option<f64>,
    /// Adam β1 of G and D [default: 0.5; 0 with --loss wgan-gp].
    #[arg(long, value_parser = flags::below_one)]
    pub beta1: Option<f64>,
    /// Adam β2 of G and D [default: 0.999; 0.9 with --loss wgan-gp].
    #[arg(long, value_parser = flags::below_one)]
    #[serde(default)]
    pub beta2: Option<f64>,
    /// Real images per D update.
    #[arg(long, default_value_t = 64, value_parser = between::<usize>(1, MAX_BATCH))]
    pub batch_size: usize,
    /// standard (the paper's cross-entropy) or wgan-gp (Gulrajani et al. 2017: a critic without
    /// batch norm, a gradient penalty on random interpolates, Wasserstein losses).
    #[arg(long, value_enum, default_value_t = GanLossArg::Standard)]
    #[serde(default)]
    pub loss: GanLossArg,
    /// D updates per G update, each on its own --batch-size real images (a step reads
    /// n-critic x batch-size) [default: 1; 5 with --loss wgan-gp].
    #[arg(long, value_parser = between::<usize>(1, 100))]
    #[serde(default)]
    pub n_critic: Option<usize>,
    /// The gradient penalty's weight under --loss wgan-gp (the paper's 10).
    #[arg(long, default_value_t = 10.0, value_parser = flags::non_negative)]
    #[serde(default = "default_gp_weight")]
    pub gp_weight: f64,
    /// R1's γ (Mescheder et al. 2018): γ/2 · mean ||∇D(x)||² on real images added to D's loss;
    /// 0 (the default) leaves it out.
    #[arg(long, default_value_t = 0.0, value_parser = flags::non_negative)]
    #[serde(default)]
    pub r1: f64,
}

/// `--loss` of `saddle train dcgan` and `saddle train ring`.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GanLossArg {
    /// Binary cross-entropy on D's logit, non-saturating G loss (the paper).
    #[default]
    Standard,
    /// WGAN-GP.
    WganGp,
}

fn default_gp_weight() -> f64 {
    10.0
}

impl DcganSpec {
    /// The training images at the model's size and the full model configuration.
    fn prepare(&mut self) -> Result<(ImageDataset, DcganConfig), BoxError> {
        let digits = self.data == "digits";
        let raw = load_images(&self.data, Split::Train, self.image_size.unwrap_or(64))?;
        let mnist_like = !digits && raw.channels == 1 && raw.height == 28;
        let base = if digits {
            DcganConfig::digits16()
        } else if raw.channels == 1 {
            DcganConfig::mnist32()
        } else {
            DcganConfig::rgb64()
        };
        let size = *self.image_size.get_or_insert(if digits {
            16
        } else if mnist_like {
            32
        } else {
            raw.height
        });
        let data = if digits {
            // 8x8 -> 16x16 by pixel repetition (DCGAN needs at least one 8x8 -> 16x16 stage).
            raw.upscale_nearest(size / 8)?.pad_to(size)?
        } else if raw.height != size {
            raw.pad_to(size)?
        } else {
            raw
        };
        self.nz.get_or_insert(base.nz);
        self.ngf.get_or_insert(base.ngf);
        self.ndf.get_or_insert(base.ndf);
        let wgan = self.loss == GanLossArg::WganGp;
        self.lr.get_or_insert(if wgan { 1e-4 } else { base.lr });
        self.beta1
            .get_or_insert(if wgan { 0.0 } else { base.beta1 });
        self.beta2
            .get_or_insert(if wgan { 0.9 } else { base.beta2 });
        self.n_critic.get_or_insert(if wgan { 5 } else { 1 });
        let cfg = self.model_config(data.channels)?;
        Ok((data, cfg))
    }

    /// The model of a resolved spec (every size filled in, as saved in a run's config).
    pub fn model_config(&self, channels: usize) -> Result<DcganConfig, BoxError> {
        let missing = || "DCGAN spec with unresolved sizes".to_string();
        let cfg = DcganConfig {
            nz: self.nz.ok_or_else(missing)?,
            ngf: self.ngf.ok_or_else(missing)?,
            ndf: self.ndf.ok_or_else(missing)?,
            channels,
            image_size: self.image_size.ok_or_else(missing)?,
            lr: self.lr.ok_or_else(missing)?,
            beta1: self.beta1.ok_or_else(missing)?,
            // Runs from before the flag: Adam's usual 0.999, what they trained with.
            beta2: self.beta2.unwrap_or(0.999),
            loss: match self.loss {
                GanLossArg::Standard => DcganLoss::Standard,
                GanLossArg::WganGp => DcganLoss::WganGp {
                    gp_weight: self.gp_weight,
                },
            },
            n_critic: self.n_critic.unwrap_or(1),
            r1_gamma: self.r1,
        };
        if !(channels == 1 || channels == 3) {
            return Err(format!("DCGAN images have 1 or 3 channels, not {channels}").into());
        }
        // The widths multiply by 2 per stage: the 4x4 stage has width * size/8 channels.
        let widest = cfg.ngf.max(cfg.ndf).saturating_mul(cfg.image_size / 8);
        if widest > MAX_DCGAN_CHANNELS {
            return Err(format!(
                "--ngf {} / --ndf {} at --image-size {}: the widest layer would have {widest} \
                 channels (at most {MAX_DCGAN_CHANNELS}; the paper's 64x64 model has 512); lower \
                 the widths or the image size",
                cfg.ngf, cfg.ndf, cfg.image_size
            )
            .into());
        }
        Ok(cfg)
    }
}

/// BigGAN's options: compare_gan's optimiser settings (Adam β1 0, β2 0.999, lr G 1e-4 / D 5e-4,
/// 2 D steps per G step) with sizes scaled to 32x32 MNIST-like data.
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
pub struct BigganSpec {
    /// `digits` (embedded, shown at 32x32), a folder with MNIST-format IDX files, or a folder
    /// of images.
    #[arg(long, default_value = "digits", value_parser = Utf8)]
    pub data: String,
    /// Image side: 32, 64 or 128.
    #[arg(long, default_value_t = 32, value_parser = flags::biggan_resolution)]
    pub image_size: usize,
    /// Width: channels are multiples of it (BigGAN at 128x128: 96).
    #[arg(long, default_value_t = 16, value_parser = between::<usize>(1, 256))]
    pub ch: usize,
    /// Latent size, split evenly over G's blocks and its input [default: 20 per chunk, as the
    /// paper: 80 at 32x32, 100 at 64x64, 120 at 128x128].
    #[arg(long, value_parser = between::<usize>(1, 4096))]
    pub z_dim: Option<usize>,
    /// Size of the shared class embedding (the paper: 128).
    #[arg(long, default_value_t = 64, value_parser = between::<usize>(1, 4096))]
    pub shared_dim: usize,
    /// Resolution of the non-local (self-attention) block in G and D (none by default).
    #[arg(long, value_parser = between::<usize>(4, 128))]
    pub attention: Option<usize>,
    /// No class labels: plain batch norm in G, no projection in D.
    #[arg(long)]
    pub unconditional: bool,
    /// G's Adam learning rate.
    #[arg(long, default_value_t = 1e-4, value_parser = flags::positive)]
    pub lr_g: f64,
    /// D's Adam learning rate.
    #[arg(long, default_value_t = 5e-4, value_parser = flags::positive)]
    pub lr_d: f64,
    /// D steps per G step, each on its own part of the batch.
    #[arg(long, default_value_t = 2, value_parser = between::<usize>(1, 16))]
    pub d_steps: usize,
    /// Images per D step (a training step reads --d-steps times as many).
    #[arg(long, default_value_t = 32, value_parser = between::<usize>(1, MAX_BATCH))]
    pub batch_size: usize,
    /// Decay of G's moving average (the paper: 0.9999, started at step 20,000).
    #[arg(long, default_value_t = 0.999, value_parser = flags::below_one)]
    pub ema_decay: f64,
    /// Step at which G's moving average starts.
    #[arg(long, default_value_t = 1000)]
    pub ema_start: u64,
    /// S3GAN's self-supervision in D: a quarter of each batch also seen rotated by 90/180/270
    /// degrees by a 4-way rotation head (loss weight 1.0 on reals for D, 0.2 on fakes for G).
    /// Needs a --batch-size that is a multiple of 16.
    #[arg(long)]
    #[serde(default)]
    pub rotation: bool,
    /// Where the class labels come from (the fewer-labels paper's methods): `biggan` (the
    /// data's, all of them), `biggan-k` (only the labelled --labels percent is trained on),
    /// `single-label`, `random-label`, `clustering` (k-means on a rotation-trained network's
    /// features), `s2gan-co` / `s3gan-co` (a predictor on D's features trained on the
    /// labelled share labels the rest), `s2gan` / `s3gan` (a classifier pre-trained on the
    /// labelled share labels the rest); the `s3gan` ones add --rotation.
    #[arg(long, value_enum, default_value_t = LabelMethod::Biggan)]
    #[serde(default)]
    pub method: LabelMethod,
    /// The labelled share of the data, in percent (e.g. 10 or 10%), for the methods that use
    /// one (biggan-k, s2gan, s3gan and the -co ones).
    #[arg(long, default_value_t = 10.0, value_parser = flags::percent)]
    #[serde(default = "ten_percent")]
    pub labels: f64,
    /// Updates of the network that makes the labels of `clustering`, `s2gan` and `s3gan`
    /// [default: 1000; 200 on the embedded digits]. Batches of --batch-size, Adam lr 1e-3.
    #[arg(long, value_parser = between::<u64>(1, 10_000_000))]
    #[serde(default)]
    pub labeller_steps: Option<u64>,
    /// Reuse the pre-trained labels another run made (its `labels.json`), e.g. S3GAN with the
    /// labels of the S2GAN run at the same --labels and --seed, instead of training the
    /// labeller again.
    #[arg(long)]
    #[serde(default)]
    pub labels_from: Option<PathBuf>,
}

fn ten_percent() -> f64 {
    10.0
}

impl BigganSpec {
    /// The settings `saddle train biggan` runs with when given no flags (what `saddle bench
    /// train` times).
    pub fn cli_defaults() -> BigganSpec {
        #[derive(clap::Parser)]
        #[command(no_binary_name = true)]
        struct Flags {
            #[command(flatten)]
            spec: BigganSpec,
        }
        <Flags as clap::Parser>::parse_from(std::iter::empty::<String>()).spec
    }

    /// The training configuration for images of `channels` with `classes` classes.
    pub fn model_config(
        &self,
        channels: usize,
        classes: usize,
    ) -> Result<BigGanTrainConfig, BoxError> {
        let mut model = BigGanConfig {
            resolution: self.image_size,
            channels,
            ch: self.ch,
            num_classes: (!self.unconditional).then_some(classes),
            z_dim: 0,
            shared_dim: self.shared_dim,
            attention_resolution: self.attention,
            ..BigGanConfig::imagenet128()
        };
        // One 20-d chunk per G block plus the input (the paper's 120 at 128x128).
        let blocks = (self.image_size / 4).trailing_zeros() as usize;
        model.z_dim = self.z_dim.unwrap_or(20 * (blocks + 1));
        let rotation = self.rotation || self.method.rotates();
        if rotation && !self.batch_size.is_multiple_of(16) {
            let why = if self.rotation {
                "--rotation".to_string()
            } else {
                format!("--method {}", self.method.name())
            };
            return Err(format!(
                "{why} rotates a quarter of each batch 4 ways: --batch-size {} must be a \
                 multiple of 16",
                self.batch_size
            )
            .into());
        }
        if self.unconditional && self.method != LabelMethod::Biggan {
            return Err(format!(
                "--method {} gives the images labels for a conditional model: drop \
                 --unconditional",
                self.method.name()
            )
            .into());
        }
        Ok(BigGanTrainConfig {
            rotation,
            co_training: self.method.co_trains(),
            d_steps: self.d_steps,
            lr_g: self.lr_g,
            lr_d: self.lr_d,
            ema_decay: self.ema_decay,
            ema_start: self.ema_start,
            ..BigGanTrainConfig::new(model)
        })
    }

    /// The training images at the model's size, with the labels `--method` gives them
    /// (seeded by `seed`; a pre-trained method's labels recorded in, or on resume read from,
    /// the run folder `root`).
    fn images(&self, seed: u64, root: &Path, resumed: bool) -> Result<ImageDataset, BoxError> {
        let data = images_at(&self.data, Split::Train, self.image_size)?;
        if self.unconditional {
            return Ok(data);
        }
        let default_steps = if self.data == "digits" { 200 } else { 1000 };
        let model = self
            .model_config(data.channels, data.num_classes.max(1))?
            .model;
        label_source::apply(
            data,
            &LabelRequest {
                method: self.method,
                percent: self.labels,
                seed,
                labeller: LabellerConfig {
                    model,
                    classes: model.num_classes.unwrap_or(1),
                    steps: self.labeller_steps.unwrap_or(default_steps),
                    batch_size: self.batch_size,
                    lr: 1e-3,
                },
                labels_from: self.labels_from.as_deref(),
                root,
                resumed,
            },
        )
    }
}

/// The images of `data`'s `split` at `size`x`size` (BigGAN's sizes): the 8x8 digits scaled up
/// and padded, 28x28 MNIST-format images padded.
pub(crate) fn images_at(data: &str, split: Split, size: usize) -> Result<ImageDataset, BoxError> {
    let raw = load_images(data, split, size)?;
    Ok(if data == "digits" {
        raw.upscale_nearest(size / 8)?.pad_to(size)?
    } else if raw.height != size {
        raw.pad_to(size)?
    } else {
        raw
    })
}

/// GAN 2014's options; defaults are the paper's MNIST settings (see gan/src/models/gan2014.rs).
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
pub struct Gan2014Spec {
    /// `digits` (embedded, 8x8) or a folder with MNIST-format IDX files.
    #[arg(long, default_value = "digits", value_parser = Utf8)]
    pub data: String,
    /// Real images per training step.
    #[arg(long, default_value_t = 100, value_parser = between::<usize>(1, MAX_BATCH))]
    pub batch_size: usize,
    /// SGD learning rate (decayed by 1.000004 per step down to 1e-6).
    #[arg(long, default_value_t = 0.1, value_parser = flags::positive)]
    pub lr: f64,
    /// Initial momentum (rises linearly to --final-momentum).
    #[arg(long, default_value_t = 0.5, value_parser = flags::below_one)]
    pub momentum: f64,
    /// Momentum reached at the end of the ramp (step 125,000).
    #[arg(long, default_value_t = 0.7, value_parser = flags::below_one)]
    pub final_momentum: f64,
    /// k: D steps per G step (each on its own slice of the batch; alternating updates only).
    #[arg(long, default_value_t = 1, value_parser = between::<usize>(1, 100))]
    pub k: usize,
    /// G's input noise: uniform U(-sqrt 3, sqrt 3) (the reference code's final MNIST
    /// setting), gaussian N(0, 1) (its earlier one) or uniform-pm1 U(-1, 1).
    #[arg(long, value_enum, default_value_t = NoiseArg::Uniform)]
    // A config.json from before the flag existed: N(0, 1), what those runs drew.
    #[serde(default = "NoiseArg::gaussian")]
    pub noise: NoiseArg,
    /// simultaneous (the reference code: both players' gradients from one pass, applied at
    /// once) or alternating (Algorithm 1 as printed: k D steps, then a G step).
    #[arg(long, value_enum, default_value_t = UpdatesArg::Simultaneous)]
    #[serde(default = "UpdatesArg::simultaneous")]
    pub updates: UpdatesArg,
    /// Max L2 norm of each of D's weight vectors into one unit (none by default, as the
    /// reference's MNIST model; its other models use 1.9365).
    #[arg(long, value_parser = flags::positive)]
    #[serde(default)]
    pub d_max_norm: Option<f64>,
}

/// `--noise`: the distribution of GAN 2014's generator input.
///
/// config.json keeps the names runs wrote before U(-sqrt 3, sqrt 3) existed: `"uniform"` there
/// is U(-1, 1) (now `--noise uniform-pm1`), so that a resumed run draws what it drew before.
#[derive(ValueEnum, Clone, Copy, Debug, Serialize, Deserialize)]
pub enum NoiseArg {
    /// U(-sqrt 3, sqrt 3) per unit, unit variance (the reference code's final MNIST setting).
    // The alias is the name config.json holds: saved settings are checked as flags.
    #[value(alias = "uniform-sqrt3")]
    #[serde(rename = "uniform-sqrt3")]
    Uniform,
    /// N(0, 1) per unit (the reference code's MNIST setting before 2014-06-18).
    #[serde(rename = "gaussian")]
    Gaussian,
    /// U(-1, 1) per unit.
    #[value(name = "uniform-pm1")]
    #[serde(rename = "uniform")]
    UniformPm1,
}

impl NoiseArg {
    fn gaussian() -> Self {
        NoiseArg::Gaussian
    }
}

/// `--updates`: how GAN 2014's D and G updates are ordered in a step.
#[derive(ValueEnum, Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdatesArg {
    /// Both players' gradients from one pass, applied at once (the reference code).
    Simultaneous,
    /// k D steps, then a G step (Algorithm 1 as printed).
    Alternating,
}

impl UpdatesArg {
    fn simultaneous() -> Self {
        UpdatesArg::Simultaneous
    }
}

impl Gan2014Spec {
    fn model_config(&self, image_dim: usize) -> Gan2014Config {
        Gan2014Config {
            image_dim,
            lr: self.lr,
            momentum: self.momentum,
            final_momentum: self.final_momentum,
            d_steps: self.k,
            noise: match self.noise {
                NoiseArg::Uniform => Noise::UniformUnitVariance,
                NoiseArg::Gaussian => Noise::Gaussian,
                NoiseArg::UniformPm1 => Noise::UniformPlusMinusOne,
            },
            updates: match self.updates {
                UpdatesArg::Simultaneous => Updates::Simultaneous,
                UpdatesArg::Alternating => Updates::Alternating,
            },
            d_max_norm: self.d_max_norm,
            ..Gan2014Config::default()
        }
    }
}

/// What [`train_mlp`] needs of an MLP model's options besides the model itself.
trait MlpSpec: Args + Serialize + for<'de> Deserialize<'de> {
    /// The `--data` argument and the batch size.
    fn data_and_batch(&self) -> (&str, usize);
}

impl MlpSpec for Gan2014Spec {
    fn data_and_batch(&self) -> (&str, usize) {
        (&self.data, self.batch_size)
    }
}

impl MlpSpec for EbganSpec {
    fn data_and_batch(&self) -> (&str, usize) {
        (&self.data, self.batch_size)
    }
}

/// EBGAN's options; defaults are the paper's MNIST margin-sweep model with margin 10.
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
pub struct EbganSpec {
    /// `digits` (embedded, 8x8) or a folder with MNIST-format IDX files.
    #[arg(long, default_value = "digits", value_parser = Utf8)]
    pub data: String,
    /// Real images per training step.
    #[arg(long, default_value_t = 64, value_parser = between::<usize>(1, MAX_BATCH))]
    pub batch_size: usize,
    /// EBGAN-PT: the pulling-away term with weight 0.1.
    #[arg(long)]
    pub pt: bool,
    /// The margin m in D's loss on generated images, [m - D(G(z))]+.
    #[arg(long, default_value_t = 10.0, value_parser = flags::positive)]
    pub margin: f64,
    /// Adam learning rate of G and D.
    #[arg(long, default_value_t = 1e-3, value_parser = flags::positive)]
    pub lr: f64,
    /// nLayerG: linear layers in G.
    #[arg(long, default_value_t = 5, value_parser = between::<usize>(1, 64))]
    pub layers_g: usize,
    /// sizeG: width of G's hidden layers.
    #[arg(long, default_value_t = 1600, value_parser = between::<usize>(1, MAX_WIDTH))]
    pub size_g: usize,
    /// nLayerD: linear layers in D's encoder and decoder together.
    #[arg(long, default_value_t = 2, value_parser = between::<usize>(2, 64))]
    pub layers_d: usize,
    /// sizeD: width of D's hidden layers.
    #[arg(long, default_value_t = 1024, value_parser = between::<usize>(1, MAX_WIDTH))]
    pub size_d: usize,
    /// Dropout probability of D's hidden units.
    #[arg(long, default_value_t = 0.0, value_parser = flags::below_one)]
    pub dropout_d: f64,
}

impl EbganSpec {
    /// Refuses sizes whose weights would not fit in a few GiB (a few hundred million
    /// parameters: the paper's largest MNIST model has 13 million).
    fn check_size(&self, image_dim: usize) -> Result<(), BoxError> {
        let mlp = |layers: usize, width: usize| {
            (layers as u128) * (width as u128).pow(2) + (width as u128) * (image_dim as u128)
        };
        let params = mlp(self.layers_g, self.size_g) + mlp(self.layers_d, self.size_d);
        if params > MAX_PARAMETERS as u128 {
            return Err(format!(
                "--layers-g {} --size-g {} --layers-d {} --size-d {}: about {params} weights \
                 (at most {MAX_PARAMETERS}); lower the sizes",
                self.layers_g, self.size_g, self.layers_d, self.size_d
            )
            .into());
        }
        Ok(())
    }

    fn model_config(&self, image_dim: usize) -> EbganConfig {
        let cfg = EbganConfig {
            image_dim,
            margin: self.margin,
            lr: self.lr,
            layers_g: self.layers_g,
            size_g: self.size_g,
            layers_d: self.layers_d,
            size_d: self.size_d,
            dropout_d: self.dropout_d,
            ..EbganConfig::default()
        };
        if self.pt {
            cfg.with_pt()
        } else {
            cfg
        }
    }
}

/// Rebuilds the model a run folder trained, from its config.json (weights not loaded). The
/// saved settings are checked by the command line's rules first (see
/// [`flags::check_as_flags`]): a damaged or hand-edited config gets the error its values would
/// get as flags, never a model of any size it asks for.
pub fn model_from_config(config: &serde_json::Value) -> Result<Box<dyn GanModel>, BoxError> {
    const FILE: &str = "config.json";
    let size = |key: &str, max: usize| {
        config[key]
            .as_u64()
            .filter(|v| (1..=max as u64).contains(v))
            .map(|v| v as usize)
            .ok_or_else(|| format!("{FILE}: `{key}` must be a whole number in 1..={max}"))
    };
    let in_file = |e: BoxError| -> BoxError { format!("{FILE}: {e}").into() };
    match config["model"].as_str() {
        Some("dcgan") => {
            let (spec, seed): (DcganSpec, u64) = parse_spec(config, FILE)?;
            let cfg = spec.model_config(size("channels", 3)?).map_err(in_file)?;
            Ok(Box::new(DcganTrainer::new(cfg, &mut Rng::new(seed))?))
        }
        Some("gan2014") => {
            let (spec, seed): (Gan2014Spec, u64) = parse_spec(config, FILE)?;
            let cfg = spec.model_config(size("image_dim", MAX_IMAGE_DIM)?);
            Ok(Box::new(Gan2014Trainer::new(cfg, seed)?))
        }
        Some("biggan") => {
            let (spec, seed): (BigganSpec, u64) = parse_spec(config, FILE)?;
            let classes = size("num_classes", 100_000)?;
            let cfg = spec
                .model_config(size("channels", 3)?, classes)
                .map_err(in_file)?;
            Ok(Box::new(BigGanTrainer::new(cfg, seed)?))
        }
        Some("bigbigan") => {
            let (spec, seed): (crate::bigbigan::BigbiganSpec, u64) = parse_spec(config, FILE)?;
            let cfg = spec.train_config(size("channels", 3)?).map_err(in_file)?;
            Ok(Box::new(
                saddle_gan::models::bigbigan::BigBiGanTrainer::new(cfg, seed)?,
            ))
        }
        Some("ebgan") => {
            let (spec, seed): (EbganSpec, u64) = parse_spec(config, FILE)?;
            let image_dim = size("image_dim", MAX_IMAGE_DIM)?;
            spec.check_size(image_dim).map_err(in_file)?;
            Ok(Box::new(EbganTrainer::new(
                spec.model_config(image_dim),
                seed,
            )?))
        }
        other => Err(format!("{FILE}: unknown model {other:?}").into()),
    }
}

/// The most channels a DCGAN layer may have.
const MAX_DCGAN_CHANNELS: usize = 4096;
/// The most weights an MLP model's settings may ask for (1 GiB of f32).
const MAX_PARAMETERS: usize = 1 << 28;
/// The largest flattened image an MLP model takes (1024 x 1024).
const MAX_IMAGE_DIM: usize = 1 << 20;

/// The `spec` and `seed` saved in a run's configuration (`file` names it in the error), checked
/// by the command line's rules. Runs before 2026-12 saved them together as
/// `"spec": [spec, seed]`.
pub fn parse_spec<S: Args + Serialize + for<'de> Deserialize<'de>>(
    config: &serde_json::Value,
    file: &str,
) -> Result<(S, u64), String> {
    let (spec, seed) = saved_spec(config, file)?;
    let spec: S = serde_json::from_value(spec).map_err(|e| format!("{file}: bad `spec`: {e}"))?;
    flags::check_as_flags(&spec).map_err(|e| format!("{file}: {e}"))?;
    Ok((spec, seed))
}

/// [`parse_spec`] before the spec is read as a type.
fn saved_spec(config: &serde_json::Value, file: &str) -> Result<(serde_json::Value, u64), String> {
    let (spec, seed) = match &config["spec"] {
        serde_json::Value::Array(pair) if pair.len() == 2 => (pair[0].clone(), pair[1].as_u64()),
        spec => (spec.clone(), config["seed"].as_u64()),
    };
    Ok((spec, seed.ok_or_else(|| format!("{file}: no `seed`"))?))
}

/// Where a run goes: its folder and, on --resume, its saved config.json (checked to be a run of
/// `model`, so that the error names both models before the saved spec is read as this one's).
fn run_folder(
    run: &RunArgs,
    model: &str,
    default_out: &str,
) -> Result<(PathBuf, Option<serde_json::Value>), BoxError> {
    match &run.resume {
        Some(dir) => {
            let config = read_config(dir)?;
            let saved = config["model"].as_str().unwrap_or("?");
            if saved != model {
                return Err(format!(
                    "--resume {}: that run trained `{saved}`, not `{model}`",
                    dir.display()
                )
                .into());
            }
            Ok((dir.clone(), Some(config)))
        }
        None => Ok((
            run.out
                .clone()
                .unwrap_or_else(|| PathBuf::from(default_out)),
            None,
        )),
    }
}

/// The logging, sampling, checkpoint and evaluation intervals, saved with a run.
pub(crate) fn intervals(run: &RunArgs) -> serde_json::Value {
    intervals_object([
        run.log_every,
        run.sample_every,
        run.checkpoint_every,
        run.eval_every,
    ])
}

fn intervals_object(values: [u64; 4]) -> serde_json::Value {
    json!(INTERVAL_FLAGS
        .iter()
        .zip(values)
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect::<serde_json::Map<_, _>>())
}

/// The spec's settings a resumed GAN may change: the learning rate (the divergence message
/// advises a lower one) and where the data lives (if it moved).
const SPEC_MAY_CHANGE: [&str; 2] = ["lr", "data"];

const INTERVAL_FLAGS: [&str; 4] = [
    "log_every",
    "sample_every",
    "checkpoint_every",
    "eval_every",
];

/// A run's settings: the model's spec, the seed and the step total.
pub(crate) struct Settings<S> {
    /// The run folder (`--out`, or `--resume`'s).
    pub(crate) root: PathBuf,
    /// Whether the run continues one saved in `root`.
    pub(crate) resumed: bool,
    pub(crate) spec: S,
    pub(crate) seed: u64,
    pub(crate) steps: u64,
    /// What the command line of a resumed run changed (empty for a new run).
    pub(crate) changes: Changes,
}

/// Where a run of `model` goes and its settings: [`run_folder`] then [`settings`] (the folder
/// first: on --resume it checks that the run trained this model before its spec is read as
/// this model's).
pub(crate) fn start_run<S: Args + Serialize + for<'de> Deserialize<'de>>(
    cli_spec: S,
    run: &mut RunArgs,
    model: &str,
    default_steps: u64,
    spec_may_change: &[&str],
) -> Result<Settings<S>, BoxError> {
    let (root, saved) = run_folder(run, model, &format!("runs/{model}"))?;
    let mut s = settings(
        cli_spec,
        run,
        saved.as_ref(),
        default_steps,
        spec_may_change,
    )?;
    s.root = root;
    s.resumed = saved.is_some();
    Ok(s)
}

/// The settings of a new run (the command line's), or of a resumed run: those saved in its
/// `config`, with the flags given on the command line applied where they may change (the
/// spec's `spec_may_change`, the step total, the intervals) and refused where they may not
/// (see [`crate::resume`]). `run`'s intervals are set to the run's.
fn settings<S: Args + Serialize + for<'de> Deserialize<'de>>(
    cli_spec: S,
    run: &mut RunArgs,
    saved: Option<&serde_json::Value>,
    default_steps: u64,
    spec_may_change: &[&str],
) -> Result<Settings<S>, BoxError> {
    let Some(config) = saved else {
        return Ok(Settings {
            root: PathBuf::new(),
            resumed: false,
            spec: cli_spec,
            seed: run.seed,
            steps: run.steps.unwrap_or(default_steps),
            changes: Changes::new(),
        });
    };
    let dir = run.resume.clone().unwrap_or_default();
    let file = format!("{}/config.json", dir.display());
    let mut changes = Changes::new();
    let (mut spec, seed) = saved_spec(config, &file)?;
    apply_given(
        &mut spec,
        &json!(cli_spec),
        spec_may_change,
        &dir,
        &mut changes,
    )?;
    let spec: S = serde_json::from_value(spec).map_err(|e| format!("{file}: bad `spec`: {e}"))?;
    flags::check_as_flags(&spec).map_err(|e| format!("{file}: {e}"))?;
    apply_given(
        &mut json!({ "seed": seed }),
        &json!({ "seed": run.seed }),
        &[],
        &dir,
        &mut changes,
    )?;
    let mut totals = json!({ "steps": config["steps"].as_u64().unwrap_or(default_steps) });
    apply_given(
        &mut totals,
        &json!({ "steps": run.steps }),
        &["steps"],
        &dir,
        &mut changes,
    )?;
    // Runs saved before the intervals were recorded keep the command line's; runs before
    // 2026-12 saved them as an array in INTERVAL_FLAGS's order.
    let saved_intervals = match serde_json::from_value::<[u64; 4]>(config["intervals"].clone()) {
        Ok(values) => Some(intervals_object(values)),
        Err(_) => config["intervals"]
            .as_object()
            .map(|_| config["intervals"].clone()),
    };
    if let Some(mut merged) = saved_intervals {
        apply_given(
            &mut merged,
            &intervals(run),
            &INTERVAL_FLAGS,
            &dir,
            &mut changes,
        )?;
        let [log, sample, checkpoint, eval] =
            INTERVAL_FLAGS.map(|k| merged[k].as_u64().unwrap_or(1));
        (
            run.log_every,
            run.sample_every,
            run.checkpoint_every,
            run.eval_every,
        ) = (log, sample, checkpoint, eval);
    }
    Ok(Settings {
        root: PathBuf::new(),
        resumed: false,
        spec,
        seed,
        steps: totals["steps"].as_u64().unwrap_or(default_steps),
        changes,
    })
}

/// Periodic FID (and KID, IS, I') with a domain classifier, when `--classifier` is given; the
/// best checkpoint is the one with the lowest FID.
pub(crate) fn classifier_evaluation<'a, M: GanModel + 'a>(
    run: &RunArgs,
    data: &str,
    steps: u64,
) -> Result<Option<Evaluation<'a, M>>, BoxError> {
    let Some(path) = &run.classifier else {
        return Ok(None);
    };
    let (classifier, _) = Classifier::load(path)?;
    let test = load_images(data, Split::Test, 28)?;
    let (real, _) = crate::classify::as_tensor(&test)?;
    let scorer = ClassifierScorer::new(classifier, &real)?;
    let count = run.eval_count;
    Ok(Some(Evaluation {
        every: if run.eval_every == 0 {
            steps
        } else {
            run.eval_every
        },
        run: Box::new(move |model: &mut M| {
            let images = crate::eval::generate_unit(model, count, 1)?;
            Ok(scorer.score(&images)?.named())
        }),
        key: "fid".into(),
        higher_is_better: false,
    }))
}

pub(crate) fn loop_options(run: &RunArgs, steps: u64, seed: u64, title: String) -> LoopOptions {
    LoopOptions {
        steps,
        log_every: run.log_every,
        sample_every: run.sample_every,
        checkpoint_every: run.checkpoint_every,
        grid_count: 64,
        grid_rows: 8,
        grid_upscale: 2,
        seed,
        title,
        resume_changes: Default::default(),
    }
}

fn train_dcgan(spec: DcganSpec, mut run: RunArgs) -> Result<(), BoxError> {
    let device = resolve_device(&run.device)?;
    let default_steps = if spec.data == "digits" { 1500 } else { 20_000 };
    let Settings {
        mut spec,
        seed,
        steps,
        changes,
        root,
        resumed,
    } = start_run(spec, &mut run, "dcgan", default_steps, &SPEC_MAY_CHANGE)?;
    let (data, cfg) = spec.prepare()?;
    let config = json!({
        "model": "dcgan",
        "spec": &spec,
        "seed": seed,
        "steps": steps,
        "channels": cfg.channels,
        "intervals": intervals(&run),
    });
    let objective = match cfg.loss {
        DcganLoss::Standard => String::new(),
        DcganLoss::WganGp { gp_weight } => format!(", WGAN-GP (penalty weight {gp_weight})"),
    };
    let r1 = if cfg.r1_gamma > 0.0 {
        format!(", R1 gamma {}", cfg.r1_gamma)
    } else {
        String::new()
    };
    println!(
        "DCGAN on {} ({} images of {}x{}x{}){objective}{r1}, {} D update(s) of {} images per G \
         update, {steps} steps -> {}",
        data.source,
        data.n,
        data.channels,
        cfg.image_size,
        cfg.image_size,
        cfg.n_critic,
        spec.batch_size,
        root.display()
    );
    let mut model = DcganTrainer::new(cfg, &mut Rng::new(seed))?;
    model.to_device(device)?;
    let step_batch = spec.batch_size * cfg.n_critic;
    let mut loader = Loader::new(&data, step_batch, seed, Scale::MinusOneToOne)?;
    let opts = LoopOptions {
        resume_changes: changes,
        ..loop_options(&run, steps, seed, format!("DCGAN on {}", data.source))
    };
    let evaluation = classifier_evaluation(&run, &spec.data, steps)?;
    run_training(
        "dcgan",
        &mut model,
        &mut loader,
        &root,
        resumed,
        &config,
        &opts,
        evaluation,
    )
}

fn train_biggan(spec: BigganSpec, mut run: RunArgs) -> Result<(), BoxError> {
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
        "biggan",
        default_steps,
        &["lr_g", "lr_d", "data"],
    )?;
    let data = spec.images(seed, &root, resumed)?;
    if !spec.unconditional && data.labels.is_none() {
        return Err(format!(
            "--data {}: a conditional BigGAN needs class labels (MNIST-format data or the \
             digits); add --unconditional for unlabelled images",
            spec.data
        )
        .into());
    }
    let cfg = spec.model_config(data.channels, data.num_classes)?;
    let config = json!({
        "model": "biggan",
        "spec": &spec,
        "seed": seed,
        "steps": steps,
        "channels": data.channels,
        "num_classes": data.num_classes,
        "intervals": intervals(&run),
    });
    println!(
        "BigGAN ({}) on {} ({} images of {}x{}x{}), {} D steps of {} images per G step, {steps} \
         steps -> {}",
        if spec.unconditional {
            "unconditional"
        } else {
            "class-conditional"
        },
        data.source,
        data.n,
        data.channels,
        spec.image_size,
        spec.image_size,
        spec.d_steps,
        spec.batch_size,
        root.display()
    );
    let mut model = BigGanTrainer::new(cfg, seed)?;
    model.to_device(device)?;
    let batch = spec.batch_size * spec.d_steps;
    let mut loader = Loader::new(&data, batch, seed, Scale::MinusOneToOne)?;
    let opts = LoopOptions {
        resume_changes: changes,
        // A conditional model's grid has one row of 8 per class (the loop's rule).
        grid_count: if spec.unconditional {
            64
        } else {
            8 * data.num_classes.clamp(1, 16)
        },
        grid_upscale: 2,
        ..loop_options(&run, steps, seed, format!("BigGAN on {}", data.source))
    };
    let evaluation = classifier_evaluation(&run, &spec.data, steps)?;
    run_training(
        "biggan",
        &mut model,
        &mut loader,
        &root,
        resumed,
        &config,
        &opts,
        evaluation,
    )
}

/// Trains one of the MLP models (GAN 2014, EBGAN) on grey images, flattened, on `run.device`:
/// `build` makes the model from the options (on --resume, those saved in the run), the training
/// images and the seed.
fn train_mlp<S: MlpSpec, M: GanModel>(
    name: &str,
    spec: S,
    mut run: RunArgs,
    build: impl Fn(&S, &ImageDataset, u64) -> Result<M, BoxError>,
    (scale, hold_out_parzen_validation): (Scale, bool),
) -> Result<(), BoxError> {
    // The folder first: on --resume it checks that the run trained this model before its spec
    // is read as this model's.
    let device = resolve_device(&run.device)?;
    let default_steps = if spec.data_and_batch().0 == "digits" {
        3000
    } else {
        50_000
    };
    let Settings {
        spec,
        seed,
        steps,
        changes,
        root,
        resumed,
    } = start_run(spec, &mut run, name, default_steps, &SPEC_MAY_CHANGE)?;
    let (data_arg, batch_size) = spec.data_and_batch();
    let mut data = load_images(data_arg, Split::Train, 28)?;
    if hold_out_parzen_validation {
        // `saddle eval` picks the Parzen sigma on these; the model must not have seen them.
        let keep = data.n - crate::eval::parzen_validation_count(data.n);
        data = data.subset(&(0..keep).collect::<Vec<_>>())?;
    }
    if data.channels != 1 {
        return Err(format!(
            "--data {data_arg}: {name} takes grey images (MNIST-format or digits)"
        )
        .into());
    }
    let image_dim = data.height * data.width;
    let config = json!({
        "model": name,
        "spec": &spec,
        "seed": seed,
        "steps": steps,
        "image_dim": image_dim,
        "intervals": intervals(&run),
    });
    println!(
        "{name} on {} ({} images of {}x{}), batch {batch_size}, {steps} steps -> {}",
        data.source,
        data.n,
        data.height,
        data.width,
        root.display()
    );
    let mut model = build(&spec, &data, seed)?;
    model.to_device(device)?;
    let mut loader = Loader::new(&data, batch_size, seed, scale)?;
    let opts = LoopOptions {
        grid_upscale: if data.height <= 8 { 4 } else { 2 },
        resume_changes: changes,
        ..loop_options(&run, steps, seed, format!("{name} on {}", data.source))
    };
    let evaluation = if run.classifier.is_some() && data.height == 28 {
        classifier_evaluation(&run, data_arg, steps)?
    } else {
        None
    };
    run_training(
        name,
        &mut model,
        &mut loader,
        &root,
        resumed,
        &config,
        &opts,
        evaluation,
    )
}

/// `saddle train <model>`: trains (or with `--resume` continues) a run of `model`.
pub fn run(model: Model) -> Result<(), BoxError> {
    match model {
        Model::Gan2014 { spec, run } => train_mlp(
            "gan2014",
            spec,
            run,
            |spec: &Gan2014Spec, data, seed| {
                let dim = data.height * data.width;
                let trainer = Gan2014Trainer::new(spec.model_config(dim), seed)?;
                // As the paper's reference: G starts out drawing the mean image.
                let pixels = Tensor::from_vec(data.pixels.clone(), &[data.n, dim], Device::Cpu)?;
                trainer.init_output_bias_from_marginals(&pixels)?;
                Ok(trainer)
            },
            // Pixels in [0, 1]; the Parzen validation images held out.
            (Scale::ZeroToOne, true),
        ),
        Model::Ebgan { spec, run } => train_mlp(
            "ebgan",
            spec,
            run,
            |spec: &EbganSpec, data, seed| {
                let image_dim = data.height * data.width;
                spec.check_size(image_dim)?;
                Ok(EbganTrainer::new(spec.model_config(image_dim), seed)?)
            },
            (Scale::MinusOneToOne, false),
        ),
        Model::Dcgan { spec, run } => train_dcgan(spec, run),
        Model::Biggan { spec, run } => train_biggan(spec, run),
        Model::Bigbigan { spec, run } => crate::bigbigan::train_bigbigan(spec, run),
        Model::Classifier(args) => crate::classify::train_classifier(args),
        Model::Ladder(args) => crate::semisup::train_semisupervised(args, None),
        Model::EbganLn { semi, gen } => crate::semisup::train_semisupervised(semi, Some(gen)),
        Model::Ring {
            steps,
            seed,
            batch_size,
            std,
            loss,
            gp_weight,
            n_critic,
            out,
        } => {
            let cfg = ToyConfig {
                steps,
                seed,
                batch: batch_size,
                wgan_gp: (loss == GanLossArg::WganGp).then_some(gp_weight),
                n_critic,
                ..ToyConfig::default()
            };
            train_ring(cfg, std, &out)
        }
    }
}

fn train_ring(cfg: ToyConfig, std: f64, out: &Path) -> Result<(), BoxError> {
    let ring = saddle_gan::data::Mixture2d::ring(8, 2.0, std);
    let (steps, batch_size) = (cfg.steps, cfg.batch);
    let objective = match cfg.wgan_gp {
        Some(w) => format!(
            "WGAN-GP (penalty weight {w}, {} critic updates per G update)",
            cfg.n_critic
        ),
        None => "a GAN".to_string(),
    };
    println!("saddle: training {objective} on 8 Gaussians on a ring (std {std}) for {steps} steps, batch {batch_size}, on the CPU");
    let start = Instant::now();
    let (points, cov) = train_toy_gan(&ring, &cfg, (steps / 10).max(1), &mut |p| {
        let rate = p.step as f64 / start.elapsed().as_secs_f64();
        let eta = (steps - p.step) as f64 / rate;
        println!(
            "  step {:>6}/{steps}  loss D {:.4}  loss G {:.4}  {rate:.0} steps/s  ETA {eta:.0} s",
            p.step, p.loss_d, p.loss_g
        );
    })?;
    let png = out.join("samples.png");
    scatter_png(&points, &ring.centers, 3.0, 512, &png)?;
    println!(
        "modes covered: {}/8, high-quality samples: {:.1}% (within 3 std of a mode), per mode {:?}",
        cov.covered,
        100.0 * cov.high_quality,
        cov.counts
    );
    println!(
        "samples plotted in {} ({:.1} s)",
        png.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::NoiseArg;
    use clap::ValueEnum;

    /// A run folder written before U(-sqrt 3, sqrt 3) existed says "uniform" for U(-1, 1): read
    /// back, it must draw U(-1, 1) again; the new default is written under a name of its own.
    #[test]
    fn noise_names_in_config_json_keep_their_meaning() {
        let read = |name: &str| serde_json::from_str::<NoiseArg>(&format!("\"{name}\"")).unwrap();
        assert!(matches!(read("uniform"), NoiseArg::UniformPm1));
        assert!(matches!(read("gaussian"), NoiseArg::Gaussian));
        assert!(matches!(read("uniform-sqrt3"), NoiseArg::Uniform));
        for arg in NoiseArg::value_variants() {
            let written = serde_json::to_string(arg).unwrap();
            assert_eq!(read(written.trim_matches('"')) as u8, *arg as u8);
        }
        // On the command line, `uniform` is the final reference's unit-variance noise.
        assert!(matches!(
            NoiseArg::from_str("uniform", false).unwrap(),
            NoiseArg::Uniform
        ));
        assert!(matches!(
            NoiseArg::from_str("uniform-pm1", false).unwrap(),
            NoiseArg::UniformPm1
        ));
        // Every name config.json holds passes the check of saved settings as flags.
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            spec: super::Gan2014Spec,
        }
        for arg in NoiseArg::value_variants() {
            let mut spec = <Defaults as clap::Parser>::parse_from(["defaults"]).spec;
            spec.noise = *arg;
            crate::flags::check_as_flags(&spec).unwrap();
        }
    }
}
