//! The MNIST model of Generative Adversarial Nets (Goodfellow et al. 2014): an MLP generator
//! (100 -> 1200 ReLU -> 1200 ReLU -> 784 sigmoid, noise at the input only) against a maxout
//! discriminator with dropout (784 -> maxout 240 x 5 -> maxout 240 x 5 -> 1 sigmoid), trained
//! with SGD + momentum, batch 100.
//!
//! PAPERS.md gives the architecture, the optimiser family and the batch size. The numeric
//! settings it leaves open follow the paper's reference code (the pylearn2 `mnist.yaml` and
//! `AdversaryCost2` of github.com/goodfeli/adversarial, read for its settings), and are all
//! fields of [`Gan2014Config`]:
//! - noise U(-sqrt 3, sqrt 3) per unit: the reference's final `mnist.yaml` (its last change,
//!   2014-06-18, "uniform noise turned out to be ok") sets `noise: 'uniform'`, and its
//!   generator draws "uniform" noise with unit variance. N(0, 1), the reference's default
//!   before that change, and U(-1, 1) are options ([`Noise`]);
//! - weights U(-0.05, 0.05) in G and U(-0.005, 0.005) in D, biases 0 (pylearn2's `irange`);
//!   G's output bias set from the data's pixel marginals
//!   ([`Gan2014Trainer::init_output_bias_from_marginals`]);
//! - dropout: D's input units kept with probability 0.8, hidden units with 0.5, survivors
//!   scaled by 1 / keep (the reference's include probabilities and input scales 1.25 and 2);
//!   D's dropout is on in the pass that gives G its gradient too;
//! - SGD learning rate 0.1 for both players, divided by 1.000004 after every step down to
//!   1e-6; momentum 0.5 rising linearly to 0.7 between epochs 1 and 250 (500 steps per epoch:
//!   the reference trains on the first 50,000 images in batches of 100);
//! - **simultaneous updates**: one forward pass gives D's loss (the mean of its two
//!   cross-entropies) and G's non-saturating loss `-log D(G(z))` on the same samples and
//!   dropout masks, and both players step at once ([`Updates`]). Algorithm 1's alternating
//!   order is an option; with it, and the other settings equal, D wins outright within 1,000
//!   steps and G collapses (RESULTS.md);
//! - no max-norm constraint on D for MNIST (the reference uses one, 1.9365, only on its other
//!   datasets; an option here).
//!
//! D ends in a logit: its sigmoid is fused into the loss (the same function, computed without
//! overflow); [`Gan2014Discriminator::probability`] applies it for callers that want D(x).

use super::mlp_trainer::{
    discriminator_loss, mean_probability, rows, DropoutGenerators, MlpConfig, MlpTrainer,
};
use super::{DStepStats, StepStats};
use saddle_nn::engine::{no_grad, DType, Device, Error, Result, Rng, Tensor};
use saddle_nn::optim::{Optimizer, ParamGroup, Sgd, SgdConfig};
use saddle_nn::{
    child_name, init, Checkpoint, CheckpointError, Dropout, Linear, Module, ModuleExt, Slot,
};

/// G's loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeneratorLoss {
    /// `-log D(G(z))`: strong gradients early in training (what the paper uses in practice).
    NonSaturating,
    /// `log(1 - D(G(z)))`, the game's value function as written.
    Minimax,
}

/// The distribution of G's input noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noise {
    /// U(-sqrt 3, sqrt 3) per unit (unit variance): the reference code's final MNIST setting
    /// (`noise: 'uniform'` in its `mnist.yaml` from 2014-06-18 on). The default.
    UniformUnitVariance,
    /// N(0, 1) per unit: the reference's default, and its MNIST setting before 2014-06-18.
    Gaussian,
    /// U(-1, 1) per unit (the paper's text says only "uniform").
    UniformPlusMinusOne,
}

/// How G's and D's updates are ordered within one training step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Updates {
    /// One forward pass on one batch of samples, with one set of dropout masks, gives both
    /// players' gradients, and both are applied at once: G's gradient is taken against the D
    /// of before the step. This is what the reference code does (its cost returns D's and G's
    /// gradients together to one SGD update). Only k = 1.
    Simultaneous,
    /// Algorithm 1 as printed: k D updates, then a G update against the updated D on fresh
    /// noise.
    Alternating,
}

/// Sizes and training settings (defaults: the paper's MNIST model, see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Gan2014Config {
    /// Size of G's noise input.
    pub nz: usize,
    /// Width of G's two hidden layers.
    pub g_hidden: usize,
    /// Pixels per (flattened) image.
    pub image_dim: usize,
    /// Maxout units in each of D's hidden layers.
    pub d_units: usize,
    /// Pieces per maxout unit.
    pub d_pieces: usize,
    /// Drop probability of D's input units.
    pub d_input_dropout: f64,
    /// Drop probability of D's hidden (maxout) units.
    pub d_hidden_dropout: f64,
    /// Half-width of G's uniform weight initialisation.
    pub g_init_range: f64,
    /// Half-width of D's uniform weight initialisation.
    pub d_init_range: f64,
    /// SGD's learning rate at the first step, for both players.
    pub lr: f64,
    /// The learning rate is divided by this after every step...
    pub lr_decay: f64,
    /// ...but not below this.
    pub min_lr: f64,
    /// SGD's momentum until the ramp starts.
    pub momentum: f64,
    /// SGD's momentum from the ramp's end on.
    pub final_momentum: f64,
    /// Steps between which momentum rises linearly from `momentum` to `final_momentum`.
    pub momentum_ramp: (u64, u64),
    /// k: D steps per G step. Each D step takes its own slice of the real batch.
    pub d_steps: usize,
    /// G's loss.
    pub g_loss: GeneratorLoss,
    /// The distribution of G's input noise.
    pub noise: Noise,
    /// Simultaneous or alternating updates.
    pub updates: Updates,
    /// After every D update, each of D's weight vectors into one unit (one piece of a maxout
    /// unit, or the output unit) is rescaled to at most this L2 norm (pylearn2's `max_col_norm`,
    /// 1.9365 in the reference's TFD and CIFAR-10 models, not its MNIST one). `None` disables
    /// it.
    pub d_max_norm: Option<f64>,
}

impl Default for Gan2014Config {
    fn default() -> Self {
        Gan2014Config {
            nz: 100,
            g_hidden: 1200,
            image_dim: 784,
            d_units: 240,
            d_pieces: 5,
            d_input_dropout: 0.2,
            d_hidden_dropout: 0.5,
            g_init_range: 0.05,
            d_init_range: 0.005,
            lr: 0.1,
            lr_decay: 1.000004,
            min_lr: 1e-6,
            momentum: 0.5,
            final_momentum: 0.7,
            momentum_ramp: (500, 250 * 500),
            d_steps: 1,
            g_loss: GeneratorLoss::NonSaturating,
            noise: Noise::UniformUnitVariance,
            updates: Updates::Simultaneous,
            d_max_norm: None,
        }
    }
}

impl MlpConfig for Gan2014Config {
    fn image_dim(&self) -> usize {
        self.image_dim
    }

    fn noise(&self, n: usize, device: Device, rng: &mut Rng) -> Result<Tensor> {
        let half_width = match self.noise {
            Noise::Gaussian => return super::gaussian_noise(n, self.nz, device, rng),
            Noise::UniformUnitVariance => 3f64.sqrt(),
            Noise::UniformPlusMinusOne => 1.0,
        };
        Tensor::rand(
            &[n, self.nz],
            -half_width,
            half_width,
            DType::F32,
            Device::Cpu,
            rng,
        )?
        .to_device(device)
    }
}

impl Gan2014Config {
    /// The learning rate used by step `step` (0-based).
    pub fn lr_at(&self, step: u64) -> f64 {
        // The floor never raises a rate that starts below it.
        let decayed = self.lr / self.lr_decay.powf(step as f64);
        decayed.max(self.min_lr.min(self.lr))
    }

    /// The momentum used by step `step` (0-based).
    pub fn momentum_at(&self, step: u64) -> f64 {
        let (start, end) = self.momentum_ramp;
        if step <= start {
            self.momentum
        } else if step >= end {
            self.final_momentum
        } else {
            let frac = (step - start) as f64 / (end - start) as f64;
            self.momentum + frac * (self.final_momentum - self.momentum)
        }
    }
}

fn uniform_linear(n_in: usize, n_out: usize, range: f64, rng: &mut Rng) -> Result<Linear> {
    Linear::from_weights(
        init::uniform(&[n_out, n_in], -range, range, DType::F32, rng)?,
        Some(Tensor::zeros(&[n_out], DType::F32, Device::Cpu)?),
    )
}

/// `z [N, nz] -> images [N, image_dim]` in (0, 1). Parameters `h0`, `h1`, `y` (pylearn2's layer
/// names), so a PyTorch module with those three `nn.Linear` attributes has the same state dict.
pub struct Gan2014Generator {
    /// `nz -> g_hidden`, ReLU after it.
    pub h0: Linear,
    /// `g_hidden -> g_hidden`, ReLU after it.
    pub h1: Linear,
    /// `g_hidden -> image_dim`, sigmoid after it.
    pub y: Linear,
}

/// The generator of `cfg`, initialised as the reference.
pub fn generator(cfg: &Gan2014Config, rng: &mut Rng) -> Result<Gan2014Generator> {
    Ok(Gan2014Generator {
        h0: uniform_linear(cfg.nz, cfg.g_hidden, cfg.g_init_range, rng)?,
        h1: uniform_linear(cfg.g_hidden, cfg.g_hidden, cfg.g_init_range, rng)?,
        y: uniform_linear(cfg.g_hidden, cfg.image_dim, cfg.g_init_range, rng)?,
    })
}

impl Module for Gan2014Generator {
    fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let h = self.h0.forward(z)?.relu()?;
        let h = self.h1.forward(&h)?.relu()?;
        self.y.forward(&h)?.sigmoid()
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        self.h0.visit(&child_name(prefix, "h0"), f);
        self.h1.visit(&child_name(prefix, "h1"), f);
        self.y.visit(&child_name(prefix, "y"), f);
    }
}

/// `images [N, image_dim] -> logits [N, 1]`: dropout, then two maxout layers each followed by
/// dropout, then a linear unit. Parameters `h0`, `h1` (each `[units * pieces, in]`, pieces of a
/// unit consecutive) and `y`.
pub struct Gan2014Discriminator {
    /// Pieces per maxout unit.
    pub pieces: usize,
    /// Dropout on the input pixels.
    pub drop_in: Dropout,
    /// First maxout layer's linear map, `image_dim -> units · pieces`.
    pub h0: Linear,
    /// Dropout after the first maxout layer.
    pub drop_h0: Dropout,
    /// Second maxout layer's linear map, `units -> units · pieces`.
    pub h1: Linear,
    /// Dropout after the second maxout layer.
    pub drop_h1: Dropout,
    /// The output unit, `units -> 1` (a logit).
    pub y: Linear,
}

/// The discriminator of `cfg`; its dropout generators are seeded from `rng`.
pub fn discriminator(cfg: &Gan2014Config, rng: &mut Rng) -> Result<Gan2014Discriminator> {
    let width = cfg.d_units * cfg.d_pieces;
    Ok(Gan2014Discriminator {
        pieces: cfg.d_pieces,
        drop_in: Dropout::new(cfg.d_input_dropout, rng.next_u64())?,
        h0: uniform_linear(cfg.image_dim, width, cfg.d_init_range, rng)?,
        drop_h0: Dropout::new(cfg.d_hidden_dropout, rng.next_u64())?,
        h1: uniform_linear(cfg.d_units, width, cfg.d_init_range, rng)?,
        drop_h1: Dropout::new(cfg.d_hidden_dropout, rng.next_u64())?,
        y: uniform_linear(cfg.d_units, 1, cfg.d_init_range, rng)?,
    })
}

impl Gan2014Discriminator {
    /// D(x): the probability that `x` is real.
    pub fn probability(&self, x: &Tensor) -> Result<Tensor> {
        self.forward(x)?.sigmoid()
    }

    fn dropouts(&self) -> [(&'static str, &Dropout); 3] {
        [
            ("drop_in", &self.drop_in),
            ("drop_h0", &self.drop_h0),
            ("drop_h1", &self.drop_h1),
        ]
    }
}

/// Checkpoints name D's dropout generators by field (`d.drop_in`, ...).
impl DropoutGenerators for Gan2014Discriminator {
    fn dropout_generators(&self) -> Vec<(String, &Dropout)> {
        self.dropouts()
            .into_iter()
            .map(|(name, drop)| (name.to_string(), drop))
            .collect()
    }
}

impl Module for Gan2014Discriminator {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.drop_in.forward(x)?;
        let h = self.h0.forward(&h)?.maxout(self.pieces, 1)?;
        let h = self.drop_h0.forward(&h)?;
        let h = self.h1.forward(&h)?.maxout(self.pieces, 1)?;
        let h = self.drop_h1.forward(&h)?;
        self.y.forward(&h)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        self.h0.visit(&child_name(prefix, "h0"), f);
        self.h1.visit(&child_name(prefix, "h1"), f);
        self.y.visit(&child_name(prefix, "y"), f);
    }

    fn set_training(&mut self, training: bool) {
        self.drop_in.set_training(training);
        self.drop_h0.set_training(training);
        self.drop_h1.set_training(training);
    }
}

/// Rescales each row of `weight` (`[out, in]`: the weights into one unit) to L2 norm at most
/// `max`, in place.
pub fn clip_row_norms(weight: &Tensor, max: f64) -> Result<()> {
    no_grad(|| {
        let norms = weight.square()?.sum(&[1], true)?.sqrt()?;
        let scale = norms.recip()?.mul_scalar(max)?.clamp(0.0, 1.0)?;
        weight.assign(&weight.mul(&scale)?)
    })
}

/// G, D, their SGD optimisers and the noise generator, with Algorithm 1's training step.
pub type Gan2014Trainer = MlpTrainer<Gan2014Config, Gan2014Generator, Gan2014Discriminator, Sgd>;

impl Gan2014Trainer {
    /// Builds and initialises both networks from `seed` (weights, dropout masks and noise all
    /// follow from it).
    pub fn new(cfg: Gan2014Config, seed: u64) -> Result<Self> {
        if cfg.d_steps == 0 {
            return Err(Error::InvalidArgument {
                op: "Gan2014Trainer::new",
                reason: "d_steps (k) must be at least 1".into(),
            });
        }
        let mut rng = Rng::new(seed);
        let g = generator(&cfg, &mut rng)?;
        let d = discriminator(&cfg, &mut rng)?;
        let sgd = |m: &dyn Module| {
            Sgd::new(
                vec![ParamGroup::new(m.named_parameters(), cfg.lr)],
                SgdConfig {
                    momentum: cfg.momentum,
                    ..SgdConfig::default()
                },
            )
        };
        let opt_g = sgd(&g)?;
        let opt_d = sgd(&d)?;
        Ok(Self::from_parts(cfg, g, d, opt_g, opt_d, rng))
    }

    /// Sets G's output bias to the logit of the mean of each pixel over `images` (`[N, ...]`
    /// in [0, 1]), so G starts out drawing the average digit. Means are clipped to
    /// [1e-4, 1 - 1e-4] so always-black pixels get a finite bias (our choice).
    pub fn init_output_bias_from_marginals(&self, images: &Tensor) -> Result<()> {
        let x = rows(
            images,
            self.cfg.image_dim,
            "init_output_bias_from_marginals",
        )?;
        // In f64: 1 - p near 1 loses most of its digits in f32.
        let p = x
            .to_dtype(DType::F64)?
            .mean(&[0], false)?
            .clamp(1e-4, 1.0 - 1e-4)?;
        let logit = p.log()?.sub(&p.rsub_scalar(1.0)?.log()?)?;
        let bias = self.g.y.bias.as_ref().expect("G's output layer has a bias");
        bias.assign(&logit.to_dtype(bias.dtype())?)
    }

    /// One training step on `real` (`[k * m, ...]` images in [0, 1]), in the configured
    /// [`Updates`] order. The learning rate and momentum of step `steps()` are applied first.
    pub fn step(&mut self, real: &Tensor) -> Result<StepStats> {
        self.step_unread(real)?.read()
    }

    /// [`Gan2014Trainer::step`] with its numbers left unread on the trainer's device.
    pub fn step_unread(&mut self, real: &Tensor) -> Result<StepStats<Tensor>> {
        let (real, m) = self.real_batch(real, self.cfg.d_steps, 1, "Gan2014Trainer::step")?;
        if self.cfg.updates == Updates::Simultaneous && self.cfg.d_steps != 1 {
            return Err(Error::InvalidArgument {
                op: "Gan2014Trainer::step",
                reason: format!(
                    "simultaneous updates take one D step per G step, not k = {}",
                    self.cfg.d_steps
                ),
            });
        }
        let (lr, momentum) = (self.cfg.lr_at(self.steps), self.cfg.momentum_at(self.steps));
        for opt in [&mut self.opt_g, &mut self.opt_d] {
            opt.set_lr(0, lr);
            opt.set_momentum(momentum);
        }
        let stats = match self.cfg.updates {
            Updates::Simultaneous => self.simultaneous_step(&real)?,
            Updates::Alternating => {
                let d = self.d_updates(&real, m, Self::d_step_unread)?;
                d.with_g_loss(self.g_step(m)?, None)
            }
        };
        self.steps += 1;
        Ok(stats)
    }

    /// Both players' gradients from one batch of samples seen through one set of dropout
    /// masks, then both updates. Our tape is freed by a backward pass, so D's pass over the
    /// samples runs twice, once for each player's loss, with D's dropout generators rewound
    /// in between so both passes draw the same masks.
    fn simultaneous_step(&mut self, real: &Tensor) -> Result<StepStats<Tensor>> {
        let m = real.shape()[0];
        let z = self.noise(m)?;
        let fake = self.g.forward(&z)?;
        let masks = self.d.dropouts().map(|(_, drop)| drop.rng());

        self.d.set_frozen(true)?;
        let g_pass = self
            .d
            .forward(&fake)
            .and_then(|logits| self.generator_loss(&logits));
        self.d.set_frozen(false)?;
        let g_loss = g_pass?;
        let g_grads = g_loss.backward()?;

        for ((_, drop), rng) in self.d.dropouts().into_iter().zip(masks) {
            drop.set_rng(rng);
        }
        let logit_fake = self.d.forward(&fake.detach())?;
        let logit_real = self.d.forward(real)?;
        let d_loss = discriminator_loss(&logit_real, &logit_fake)?;
        let d_grads = d_loss.backward()?;

        self.opt_d.step(&d_grads)?;
        self.clip_d()?;
        self.opt_g.step(&g_grads)?;
        Ok(StepStats {
            d_loss: d_loss.detach(),
            g_loss: g_loss.detach(),
            real_score: mean_probability(&logit_real)?,
            fake_score: mean_probability(&logit_fake)?,
            pt: None,
        })
    }

    /// G's loss given D's logits on G's samples.
    fn generator_loss(&self, logits: &Tensor) -> Result<Tensor> {
        let target = match self.cfg.g_loss {
            GeneratorLoss::NonSaturating => 1.0,
            GeneratorLoss::Minimax => 0.0,
        };
        let target = Tensor::full(target, logits.shape(), DType::F32, logits.device())?;
        let bce = logits.binary_cross_entropy_with_logits(&target)?;
        match self.cfg.g_loss {
            GeneratorLoss::NonSaturating => Ok(bce),
            // log(1 - D) = -BCE(logit, 0)
            GeneratorLoss::Minimax => bce.neg(),
        }
    }

    /// D's max-norm constraint, if configured.
    fn clip_d(&self) -> Result<()> {
        if let Some(max) = self.cfg.d_max_norm {
            for layer in [&self.d.h0, &self.d.h1, &self.d.y] {
                clip_row_norms(&layer.weight, max)?;
            }
        }
        Ok(())
    }

    /// One update of D on `real` (images in [0, 1]) and as many fresh samples of G, at the
    /// optimiser's current settings. The scores are D's mean probabilities before the update.
    pub fn d_step(&mut self, real: &Tensor) -> Result<DStepStats> {
        self.d_step_unread(real)?.read()
    }

    /// [`Gan2014Trainer::d_step`] with its numbers left unread on the trainer's device.
    fn d_step_unread(&mut self, real: &Tensor) -> Result<DStepStats<Tensor>> {
        let real = rows(real, self.cfg.image_dim, "Gan2014Trainer::d_step")?;
        let stats = self.logistic_d_update(&real)?;
        self.clip_d()?;
        Ok(stats)
    }

    /// One update of G on `m` fresh noise vectors; returns G's loss before the update (unread).
    pub fn g_step(&mut self, m: usize) -> Result<Tensor> {
        let z = self.noise(m)?;
        let (loss, ()) =
            self.g_update(|t| Ok((t.generator_loss(&t.d.forward(&t.g.forward(&z)?)?)?, ())))?;
        Ok(loss)
    }
}

crate::impl_gan_model_for_mlp_trainer!(Gan2014Trainer, (0.0, 1.0));
