//! The semi-supervised trainer of the ladder network (Rasmus et al. 2015) and of EBGAN-LN
//! (Zhao et al. 2017), which uses the ladder network as EBGAN's discriminator.
//!
//! EBGAN-LN ([`SemiSupervised`] with an [`EbganLnConfig`]): D's loss adds
//! `mean [m_t - E(G(z))]+` on generated images, with the energy `E(x) = λ_0 · mean_pixels (ẑ_0 -
//! x)²` of the corrupted-encoder/decoder pass, and the margin `m_t` decayed linearly to 0; G
//! minimises `mean E(G(z))`. Once the margin is 0 the generated images no longer enter D's loss,
//! so G's updates and the generated passes stop (the model is then a plain ladder network).

use super::ebgan::mlp_generator;
use super::ladder::{Ladder, LadderConfig};
use super::read_scalars;
use saddle_nn::engine::{no_grad, DType, Device, Error, Result, Rng, Tensor};
use saddle_nn::optim::{Adam, AdamConfig, Optimizer};
use saddle_nn::{Checkpoint, CheckpointError, Module, ModuleExt, Sequential};

/// The error of a generator asked of a plain ladder network (one built without EBGAN-LN's
/// settings, or whose G was not restored).
fn no_generator() -> Error {
    Error::InvalidArgument {
        op: "EBGAN-LN",
        reason: "this model is a ladder network without EBGAN-LN's generator".into(),
    }
}
/// EBGAN-LN's generator and margin.
#[derive(Clone, Copy, Debug)]
pub struct EbganLnConfig {
    /// Size of G's noise input.
    pub nz: usize,
    /// nLayerG / sizeG of the MLP generator (EBGAN's, tanh output mapped to [0, 1]).
    pub layers_g: usize,
    /// See `layers_g`.
    pub size_g: usize,
    /// G's Adam learning rate.
    pub lr_g: f64,
    /// Initial margin m.
    pub margin: f64,
    /// Steps over which the margin falls linearly to 0.
    pub margin_decay_steps: u64,
}

impl EbganLnConfig {
    /// The margin at step `step` (0-based).
    pub fn margin_at(&self, step: u64) -> f64 {
        if step >= self.margin_decay_steps {
            0.0
        } else {
            self.margin * (1.0 - step as f64 / self.margin_decay_steps as f64)
        }
    }
}

/// Optimisation of the ladder network (and EBGAN-LN's generator).
#[derive(Clone, Debug)]
pub struct SemiSupervisedConfig {
    /// The ladder network's sizes and costs.
    pub ladder: LadderConfig,
    /// The ladder's Adam learning rate before the decay.
    pub lr: f64,
    /// Adam's β1 (ladder and generator).
    pub beta1: f64,
    /// Total steps (for the learning-rate schedule).
    pub steps: u64,
    /// The learning rate stays at `lr` for this share of the steps, then falls linearly to 0.
    pub decay_from: f64,
    /// `Some`: EBGAN-LN; `None`: the plain ladder network.
    pub ebgan: Option<EbganLnConfig>,
}

impl SemiSupervisedConfig {
    /// The learning rate at step `step` for a base rate `lr`: `lr` until `decay_from` of the
    /// steps, then falling linearly to 0 at `steps`.
    pub fn lr_at(&self, lr: f64, step: u64) -> f64 {
        let start = (self.decay_from * self.steps as f64) as u64;
        if step < start || self.steps <= start {
            lr
        } else {
            lr * (self.steps.saturating_sub(step)) as f64 / (self.steps - start) as f64
        }
    }
}

/// What one semi-supervised step reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SemiSupervisedStats {
    /// Cross-entropy of the corrupted encoder on the labelled batch.
    pub supervised: f64,
    /// `Σ λ_l C_l` on the joint batch.
    pub denoising: f64,
    /// EBGAN-LN only (while the margin is positive): the margin, the mean energy of the
    /// generated batch before D's update, and G's loss.
    pub margin: Option<f64>,
    /// See `margin`.
    pub fake_energy: Option<f64>,
    /// See `margin`.
    pub g_loss: Option<f64>,
}

/// The ladder network (D), its Adam optimiser and, for EBGAN-LN, the generator with its own.
pub struct SemiSupervised {
    /// The settings.
    pub cfg: SemiSupervisedConfig,
    /// The ladder network (EBGAN-LN's D).
    pub ladder: Ladder,
    /// The ladder's optimiser.
    pub opt: Adam,
    /// EBGAN-LN's generator and its optimiser.
    pub g: Option<(Sequential, Adam)>,
    rng: Rng,
    steps: u64,
    device: Device,
}

impl SemiSupervised {
    /// The model of `cfg`, initialised from `seed`, on the CPU. EBGAN-LN with a zero bottom
    /// cost weight (λ_0) is an error.
    pub fn new(cfg: SemiSupervisedConfig, seed: u64) -> Result<Self> {
        if cfg.ebgan.is_some() && cfg.ladder.denoise_weights[0] <= 0.0 {
            return Err(Error::InvalidArgument {
                op: "SemiSupervised::new",
                reason: "EBGAN-LN's energy is the bottom-layer cost: λ_0 must be positive".into(),
            });
        }
        let mut rng = Rng::new(seed);
        let ladder = Ladder::new(cfg.ladder.clone(), &mut rng)?;
        let adam = AdamConfig {
            beta1: cfg.beta1,
            ..AdamConfig::default()
        };
        let opt = Adam::with_lr(ladder.named_parameters(), cfg.lr, adam);
        let g = match &cfg.ebgan {
            Some(e) => {
                let g = mlp_generator(e.nz, e.layers_g, e.size_g, cfg.ladder.sizes[0], &mut rng)?;
                let opt_g = Adam::with_lr(g.named_parameters(), e.lr_g, adam);
                Some((g, opt_g))
            }
            None => None,
        };
        Ok(SemiSupervised {
            cfg,
            ladder,
            opt,
            g,
            rng,
            steps: 0,
            device: Device::Cpu,
        })
    }

    /// Moves the ladder and G (parameters and statistics) to `device`; every step then runs
    /// there (batches are moved on entry, noise is drawn on the host and moved). The optimisers'
    /// state follows on the first step. Call before training or restoring.
    pub fn to_device(&mut self, device: Device) -> Result<()> {
        self.ladder.to_device(device)?;
        if let Some((g, _)) = &self.g {
            g.to_device(device)?;
        }
        self.device = device;
        Ok(())
    }

    /// Where the model and every step's tensors live.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Training steps taken (restored with a checkpoint).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The whole training state: the ladder (`d.*`, with its batch-norm statistics) and its
    /// Adam moments (`opt_d.*`), for EBGAN-LN G and its moments (`g.*`, `opt_g.*`), the noise
    /// generator and the step count, so that a restored model continues exactly as this one.
    pub fn checkpoint(&self) -> Checkpoint {
        let mut ck = Checkpoint::new();
        ck.add_module("d", &self.ladder);
        ck.add_optimizer("opt_d", &self.opt);
        if let Some((g, opt_g)) = &self.g {
            ck.add_module("g", g);
            ck.add_optimizer("opt_g", opt_g);
        }
        ck.set_rng("model", &self.rng);
        ck.set_meta("model.step", self.steps);
        ck
    }

    /// Restores a state saved by [`SemiSupervised::checkpoint`] from a model of the same
    /// configuration.
    pub fn restore(&mut self, ck: &Checkpoint) -> std::result::Result<(), CheckpointError> {
        let step = ck.meta("model.step").and_then(|s| s.parse().ok());
        let step = step.ok_or_else(|| CheckpointError {
            path: ck.path().to_path_buf(),
            reason: "no step count `model.step`".into(),
        })?;
        let rng = ck.rng("model")?;
        ck.restore_module("d", &self.ladder)?;
        ck.restore_optimizer("opt_d", &mut self.opt)?;
        if let Some((g, opt_g)) = &mut self.g {
            ck.restore_module("g", g)?;
            ck.restore_optimizer("opt_g", opt_g)?;
        }
        self.rng = rng;
        self.steps = step;
        Ok(())
    }

    /// `n` generated images in [0, 1], `[n, sizes[0]]`, with gradients to G when `track`.
    fn generate(&mut self, n: usize, track: bool) -> Result<Tensor> {
        let z = self.latent(n)?;
        self.generate_from(&z, track)
    }

    /// `n` latent vectors of G, N(0, 1), drawn on the host from the model's generator.
    fn latent(&mut self, n: usize) -> Result<Tensor> {
        let e = self.cfg.ebgan.ok_or_else(no_generator)?;
        Tensor::randn(&[n, e.nz], 0.0, 1.0, DType::F32, Device::Cpu, &mut self.rng)
    }

    /// G's images in [0, 1] of the latent vectors `z` (any device), on the model's device.
    fn generate_from(&self, z: &Tensor, track: bool) -> Result<Tensor> {
        let z = z.to_device(self.device)?;
        let (g, _) = self.g.as_ref().ok_or_else(no_generator)?;
        let run = || g.forward(&z)?.add_scalar(1.0)?.mul_scalar(0.5);
        if track {
            run()
        } else {
            no_grad(run)
        }
    }

    /// One step on a labelled batch (`[n_l, d]` in [0, 1] with `labels`) and an unlabelled one
    /// (`[n_u, d]`): the ladder's update from both batches (plus, for EBGAN-LN while the margin
    /// is positive, the hinge on as many generated images as unlabelled ones), then G's update.
    pub fn step(
        &mut self,
        labelled: &Tensor,
        labels: &[usize],
        unlabelled: &Tensor,
    ) -> Result<SemiSupervisedStats> {
        let n_l = labelled.shape()[0];
        if labels.len() != n_l || n_l == 0 {
            return Err(Error::InvalidArgument {
                op: "SemiSupervised::step",
                reason: format!("{} labels for {n_l} labelled images", labels.len()),
            });
        }
        if labels.iter().any(|&l| l >= self.ladder.classes()) {
            return Err(Error::InvalidArgument {
                op: "SemiSupervised::step",
                reason: format!("a label is not below {}", self.ladder.classes()),
            });
        }
        let lr = self.cfg.lr_at(self.cfg.lr, self.steps);
        self.opt.set_lr(0, lr);
        // The labelled and the unlabelled batch each go through the network with their own
        // batch statistics (as the public ladder implementations normalise the two halves of
        // their batch separately): the supervised cost from the corrupted encoder on the
        // labelled batch, the denoising costs on the unlabelled one. Normalising the two
        // together, the same 100 labelled images weigh on every step's statistics; measured on
        // MNIST with 100 labels (400 steps, full per-layer costs), the joint batch ends at
        // 32-34% test error, the separate ones at 18% and still falling.
        let supervised_only = vec![false; self.cfg.ladder.sizes.len()];
        let supervised = self
            .ladder
            .pass(labelled, &supervised_only, &mut self.rng)?
            .noisy_logits
            .cross_entropy(labels)?;
        let denoising = self
            .ladder
            .training_pass(unlabelled, &mut self.rng)?
            .denoising_cost(&self.cfg.ladder.denoise_weights)?;
        let mut loss = supervised.add(&denoising)?;
        let margin = self
            .cfg
            .ebgan
            .map(|e| e.margin_at(self.steps))
            .filter(|m| *m > 0.0);
        let mut fake_energy = None;
        if let Some(m) = margin {
            let fake = self.generate(unlabelled.shape()[0].max(2), false)?;
            let e_fake = self.ladder.energy(&fake, &mut self.rng)?;
            fake_energy = Some(no_grad(|| e_fake.mean_all())?);
            loss = loss.add(&e_fake.rsub_scalar(m)?.relu()?.mean_all()?)?;
        }
        self.opt.step(&loss.backward()?)?;
        let mut g_loss = None;
        if margin.is_some() {
            let e = self.cfg.ebgan.ok_or_else(no_generator)?;
            let n = unlabelled.shape()[0].max(2);
            self.ladder.set_frozen(true)?;
            let g_step = (|| -> Result<_> {
                let fake = self.generate(n, true)?;
                let loss = self.ladder.energy(&fake, &mut self.rng)?.mean_all()?;
                let grads = loss.backward()?;
                Ok((loss, grads))
            })();
            self.ladder.set_frozen(false)?;
            let (loss_g, grads) = g_step?;
            let (_, opt_g) = self.g.as_mut().ok_or_else(no_generator)?;
            opt_g.set_lr(0, self.cfg.lr_at(e.lr_g, self.steps));
            opt_g.step(&grads)?;
            g_loss = Some(loss_g.detach());
        }
        self.steps += 1;
        // One transfer for all the numbers (each read waits for the device).
        let optional = [&fake_energy, &g_loss];
        let mut scalars = vec![&supervised, &denoising];
        scalars.extend(optional.iter().filter_map(|t| t.as_ref()));
        let mut values = read_scalars(&scalars)?.into_iter();
        let mut next = || values.next().expect("one value per scalar");
        let (supervised, denoising) = (next(), next());
        let [fake_energy, g_loss] = optional.map(|t| t.as_ref().map(|_| next()));
        Ok(SemiSupervisedStats {
            supervised,
            denoising,
            margin,
            fake_energy,
            g_loss,
        })
    }

    /// `n` samples of G in [0, 1] (evaluation mode), `[n, sizes[0]]` on the CPU; `None` for the
    /// plain ladder.
    pub fn samples(&mut self, n: usize) -> Result<Option<Tensor>> {
        if self.g.is_none() {
            return Ok(None);
        }
        let z = self.latent(n)?;
        self.samples_from(&z)
    }

    /// G's images of the latent vectors `z` (`[n, nz]`, e.g. a fixed batch for sample grids) in
    /// evaluation mode, on the CPU, without touching the training's random streams; `None` for
    /// the plain ladder.
    pub fn samples_from(&mut self, z: &Tensor) -> Result<Option<Tensor>> {
        let Some((g, _)) = self.g.as_mut() else {
            return Ok(None);
        };
        g.set_training(false);
        let out = self.generate_from(z, false);
        if let Some((g, _)) = self.g.as_mut() {
            g.set_training(true);
        }
        Ok(Some(out?.to_device(Device::Cpu)?))
    }

    /// G's latent width; `None` for the plain ladder.
    pub fn latent_size(&self) -> Option<usize> {
        self.cfg.ebgan.map(|e| e.nz)
    }
}
