//! saddle's GAN models, data loaders, metrics and training loops.
//!
//! This crate holds what the papers' experiments share, on top of the layer library
//! ([`nn`], re-exported, with the tensor engine as `nn::engine`):
//!
//! - [`models`]: the papers' networks and their trainers (GAN 2014, DCGAN, EBGAN and EBGAN-LN,
//!   BigGAN with S3GAN's additions, BigBiGAN, the ladder network, the scoring classifier).
//!   Each trainer implements [`run::GanModel`], which the training loop, sampling and evaluation
//!   work through.
//! - [`data`]: MNIST-format IDX folders, the embedded 8×8 digits, image folders and 2-D
//!   Gaussian mixtures, with a seeded, resumable batch [`data::Loader`].
//! - [`run`]: the run folder ([`run::RunDir`]), the shared training loop ([`run::train`]) with
//!   checkpoints, sample grids, interruption and divergence handling, and the HTML report.
//! - [`metrics`]: FID and KID, Inception-style scores, EBGAN's I', Parzen-window likelihood,
//!   mode coverage, the linear probe and k-means; [`evaluate`] applies them to a model.
//! - [`plot`] (PNG grids and histograms), [`grid`] (EBGAN's reduced grid search) and [`toy`]
//!   (a GAN on a 2-D mixture).
//!
//! # Open a run folder and sample from a trained generator
//!
//! A run folder holds `config.json` and `checkpoints/latest.safetensors` (see [`run::RunDir`]).
//! To sample, build the model the configuration describes, restore the checkpoint into it and
//! call [`GanModel::sample_latent`](run::GanModel::sample_latent) and
//! [`GanModel::generate`](run::GanModel::generate); this is what `saddle sample --run DIR`
//! does, through the command line's `saddle::sample::load_run_model`, which knows the
//! configuration of every model `saddle train` writes. The example first trains a tiny run of
//! two steps into a temporary folder:
//!
//! ```
//! use saddle_gan::data::{ImageDataset, Loader, Scale};
//! use saddle_gan::models::dcgan::{DcganConfig, DcganTrainer};
//! use saddle_gan::nn::engine::Rng;
//! use saddle_gan::nn::Checkpoint;
//! use saddle_gan::plot::save_image_grid;
//! use saddle_gan::run::{
//!     checkpoint_path, read_config, train, GanModel, LoopOptions, RunDir, StopFlag,
//! };
//!
//! let dir = std::env::temp_dir().join(format!("saddle-doc-gan-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! // A tiny DCGAN, two steps on the embedded digits padded to 16x16.
//! {
//!     let config = serde_json::json!({"model": "dcgan", "nz": 8, "ngf": 4, "ndf": 4});
//!     let cfg = DcganConfig { nz: 8, ngf: 4, ndf: 4, ..DcganConfig::digits16() };
//!     let mut model = DcganTrainer::new(cfg, &mut Rng::new(0))?;
//!     let digits = ImageDataset::digits()?.pad_to(16)?;
//!     let mut loader = Loader::new(&digits, 16, 0, Scale::MinusOneToOne)?;
//!     let mut run = RunDir::create(&dir, &config)?;
//!     let opts = LoopOptions {
//!         steps: 2,
//!         log_every: 1,
//!         sample_every: 2,
//!         checkpoint_every: 2,
//!         grid_count: 4,
//!         grid_rows: 2,
//!         grid_upscale: 1,
//!         seed: 0,
//!         title: "tiny".into(),
//!         resume_changes: Default::default(),
//!     };
//!     let (stop, mut progress) = (StopFlag::new(), |_: &_| {});
//!     train(
//!         &mut model, &mut loader, &mut run, &opts, &config,
//!         None,  // no periodic evaluation
//!         false, // a new run, not a resumed one
//!         &stop, &mut progress,
//!     )?;
//! } // dropping the RunDir releases the folder's lock
//!
//! // Open the run: the configuration says which model to build...
//! let config = read_config(&dir)?;
//! let size = |key: &str| config[key].as_u64().map(|v| v as usize).ok_or("bad config.json");
//! let cfg = DcganConfig {
//!     nz: size("nz")?,
//!     ngf: size("ngf")?,
//!     ndf: size("ndf")?,
//!     ..DcganConfig::digits16()
//! };
//! let mut model = DcganTrainer::new(cfg, &mut Rng::new(0))?;
//! // ...and the latest checkpoint holds its trained weights.
//! model.restore(&Checkpoint::load(checkpoint_path(&dir, "latest"))?)?;
//!
//! let z = model.sample_latent(4, &mut Rng::new(42))?;
//! let images = model.generate(&z)?; // G in evaluation mode, images on the CPU
//! assert_eq!(images.shape(), &[4, 1, 16, 16]);
//! save_image_grid(dir.join("my_samples.png"), &images, 2, model.value_range(), 4)?;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), saddle_gan::run::BoxError>(())
//! ```

#![warn(missing_docs)]

pub mod data;
pub mod evaluate;
mod font;
pub mod grid;
pub mod metrics;
pub mod models;
pub mod plot;
pub mod toy;

pub use saddle_nn as nn;
pub mod run;
