//! The GAN baseline of EBGAN's MNIST grid search (Zhao et al. 2017, Table 1): the same MLP
//! generator as EBGAN ([`super::ebgan::mlp_generator`]) against an MLP discriminator with a
//! sigmoid head, each network with its own optimiser (Adam or SGD) at the grid's learning rate.
//!
//! The grid fixes nLayerG, sizeG, nLayerD, sizeD, dropoutD, optimD, optimG and lr; the rest are
//! our choices, all fields here or stated: D's hidden layers are linear -> ReLU (as EBGAN's
//! encoder), with dropout after each hidden activation when `dropout_d > 0`; D's loss is the mean
//! of its two cross-entropies, G's the non-saturating `-log D(G(z))`; Adam has β1 0.5 (as our
//! EBGAN), SGD no momentum (Torch7's `optim.sgd` default, which the paper's code used).

use super::ebgan::mlp_generator;
use super::mlp_trainer::{numbered_dropouts, DropoutGenerators, MlpConfig, MlpTrainer};
use super::{DStepStats, StepStats};
use saddle_nn::engine::{no_grad, DType, Device, Error, Result, Rng, Tensor};
use saddle_nn::optim::{Adam, AdamConfig, Optimizer, ParamGroup, Sgd, SgdConfig};
use saddle_nn::{
    child_name, Checkpoint, CheckpointError, Dropout, Linear, Module, ModuleExt, Sequential, Slot,
};
use serde::{Deserialize, Serialize};

/// The grid's optimiser choice for one network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimKind {
    /// Adam with the configuration's β1.
    Adam,
    /// Plain SGD (no momentum).
    Sgd,
}

impl OptimKind {
    /// The optimiser over `params` with learning rate `lr` (Adam β1 `beta1`).
    pub fn build(
        self,
        params: Vec<(String, Tensor)>,
        lr: f64,
        beta1: f64,
    ) -> Result<Box<dyn Optimizer>> {
        Ok(match self {
            OptimKind::Adam => Box::new(Adam::with_lr(
                params,
                lr,
                AdamConfig {
                    beta1,
                    ..AdamConfig::default()
                },
            )),
            OptimKind::Sgd => Box::new(Sgd::new(
                vec![ParamGroup::new(params, lr)],
                SgdConfig::default(),
            )?),
        })
    }
}

/// Sizes and training settings of one grid point.
#[derive(Clone, Copy, Debug)]
pub struct MlpGanConfig {
    /// Size of G's noise input.
    pub nz: usize,
    /// Pixels per (flattened) image.
    pub image_dim: usize,
    /// nLayerG: linear layers in G, as EBGAN's.
    pub layers_g: usize,
    /// sizeG: width of G's hidden layers, as EBGAN's.
    pub size_g: usize,
    /// nLayerD: D's linear layers, the output unit's included (at least 1).
    pub layers_d: usize,
    /// sizeD: width of D's hidden layers.
    pub size_d: usize,
    /// Drop probability of D's hidden units (0: no dropout).
    pub dropout_d: f64,
    /// D's optimiser.
    pub optim_d: OptimKind,
    /// G's optimiser.
    pub optim_g: OptimKind,
    /// The learning rate of both optimisers.
    pub lr: f64,
    /// Adam's β1 (for whichever network uses Adam).
    pub beta1: f64,
}

impl Default for MlpGanConfig {
    fn default() -> Self {
        MlpGanConfig {
            nz: 100,
            image_dim: 784,
            layers_g: 5,
            size_g: 1600,
            layers_d: 2,
            size_d: 1024,
            dropout_d: 0.0,
            optim_d: OptimKind::Adam,
            optim_g: OptimKind::Adam,
            lr: 1e-3,
            beta1: 0.5,
        }
    }
}

impl MlpConfig for MlpGanConfig {
    fn image_dim(&self) -> usize {
        self.image_dim
    }

    /// z ~ N(0, 1)^nz, as EBGAN's.
    fn noise(&self, n: usize, device: Device, rng: &mut Rng) -> Result<Tensor> {
        super::gaussian_noise(n, self.nz, device, rng)
    }
}

/// `images [N, image_dim] -> logits [N, 1]`: `layers.i` linear layers with ReLU between them.
pub struct MlpDiscriminator {
    /// The linear layers, the output unit last.
    pub layers: Vec<Linear>,
    /// One per hidden activation (empty without dropout).
    pub drops: Vec<Dropout>,
}

/// The discriminator of `cfg`; its dropout generators are seeded from `rng`.
pub fn discriminator(cfg: &MlpGanConfig, rng: &mut Rng) -> Result<MlpDiscriminator> {
    if cfg.layers_d == 0 {
        return Err(Error::InvalidArgument {
            op: "mlp_gan::discriminator",
            reason: "layers_d must be at least 1".into(),
        });
    }
    let mut layers = Vec::with_capacity(cfg.layers_d);
    let mut width = cfg.image_dim;
    for i in 0..cfg.layers_d {
        let out = if i + 1 == cfg.layers_d { 1 } else { cfg.size_d };
        layers.push(Linear::new(width, out, true, DType::F32, rng)?);
        width = out;
    }
    let drops = if cfg.dropout_d > 0.0 {
        (1..cfg.layers_d)
            .map(|_| Dropout::new(cfg.dropout_d, rng.next_u64()))
            .collect::<Result<_>>()?
    } else {
        Vec::new()
    };
    Ok(MlpDiscriminator { layers, drops })
}

impl Module for MlpDiscriminator {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h)?;
            if i < last {
                h = h.relu()?;
                if let Some(drop) = self.drops.get(i) {
                    h = drop.forward(&h)?;
                }
            }
        }
        Ok(h)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        let part = child_name(prefix, "layers");
        for (i, layer) in self.layers.iter().enumerate() {
            layer.visit(&child_name(&part, &i.to_string()), f);
        }
    }

    fn set_training(&mut self, training: bool) {
        for drop in &mut self.drops {
            drop.set_training(training);
        }
    }
}

impl DropoutGenerators for MlpDiscriminator {
    fn dropout_generators(&self) -> Vec<(String, &Dropout)> {
        numbered_dropouts(&self.drops)
    }
}

/// G, D, their optimisers and the noise generator, with the standard GAN step.
pub type MlpGanTrainer = MlpTrainer<MlpGanConfig, Sequential, MlpDiscriminator, Box<dyn Optimizer>>;

impl MlpGanTrainer {
    /// Builds and initialises both networks from `seed`.
    pub fn new(cfg: MlpGanConfig, seed: u64) -> Result<Self> {
        let mut rng = Rng::new(seed);
        let g = mlp_generator(cfg.nz, cfg.layers_g, cfg.size_g, cfg.image_dim, &mut rng)?;
        let d = discriminator(&cfg, &mut rng)?;
        let opt_g = cfg.optim_g.build(g.named_parameters(), cfg.lr, cfg.beta1)?;
        let opt_d = cfg.optim_d.build(d.named_parameters(), cfg.lr, cfg.beta1)?;
        Ok(Self::from_parts(cfg, g, d, opt_g, opt_d, rng))
    }

    /// One D update on `real` (`[m, ...]` in [-1, 1]) and m fresh samples, then one G update on
    /// m fresh samples. Scores are D's mean probabilities before its update.
    pub fn step(&mut self, real: &Tensor) -> Result<StepStats> {
        self.step_unread(real)?.read()
    }

    /// [`MlpGanTrainer::step`] with its numbers left unread on the trainer's device.
    pub fn step_unread(&mut self, real: &Tensor) -> Result<StepStats<Tensor>> {
        let (real, m) = self.real_batch(real, 1, 1, "MlpGanTrainer::step")?;
        let d = self.logistic_d_update(&real)?;
        let g_loss = self.g_step(m)?;
        self.steps += 1;
        Ok(d.with_g_loss(g_loss, None))
    }

    /// One update of D on `real` and as many fresh samples: the mean of its two
    /// cross-entropies. The scores are D's mean probabilities before the update.
    pub fn d_step(&mut self, real: &Tensor) -> Result<DStepStats> {
        self.logistic_d_update(real)?.read()
    }

    /// One update of G on `m` fresh noise vectors (`-log D(G(z))`); returns its loss (unread).
    pub fn g_step(&mut self, m: usize) -> Result<Tensor> {
        let z = self.noise(m)?;
        let (loss, ()) = self.g_update(|t| {
            let logits = t.d.forward(&t.g.forward(&z)?)?;
            let ones = Tensor::ones(&[m, 1], DType::F32, t.device)?;
            Ok((logits.binary_cross_entropy_with_logits(&ones)?, ()))
        })?;
        Ok(loss)
    }
}

crate::impl_gan_model_for_mlp_trainer!(MlpGanTrainer, (-1.0, 1.0));
