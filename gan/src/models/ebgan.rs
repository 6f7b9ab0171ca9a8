//! Energy-based GAN (Zhao, Mathieu & LeCun 2017) for MNIST: D is an auto-encoder whose energy
//! is the per-sample mean squared reconstruction error; D minimises
//! `D(x) + [m - D(G(z))]+`, G minimises `D(G(z))`, plus (EBGAN-PT) the pulling-away term on the
//! encoder's codes of the generated batch, weighted 0.1.
//!
//! Sizes follow the paper's MNIST experiments: `layers_g`/`size_g` (nLayerG/sizeG: linear
//! layers in G and their width) and `layers_d`/`size_d` (nLayerD counts the encoder's and the
//! decoder's layers together). The default is the margin sweep's model (nLayerG 5, nLayerD 2,
//! sizeG 1600, sizeD 1024, no dropout, Adam lr 1e-3) with the grid search's margin 10.
//! PAPERS.md leaves the rest open; our choices, all fields or documented here:
//! - G: each hidden layer linear -> batch norm -> ReLU, the output linear -> tanh (images in
//!   [-1, 1]); noise N(0, 1) of size 100; PyTorch's default linear initialisation everywhere.
//! - D: encoder layers linear -> ReLU (the last one's output is the code the pulling-away term
//!   sees), decoder layers linear -> ReLU except the last, which is linear; with `dropout_d`,
//!   dropout on every hidden activation after the code is taken.
//! - Adam β1 0.5 (the DCGAN-style value EBGAN's semi-supervised settings use), β2 0.999.

use super::mlp_trainer::{numbered_dropouts, rows, DropoutGenerators, MlpConfig, MlpTrainer};
use super::{DStepStats, StepStats};
use saddle_nn::engine::{no_grad, DType, Device, Error, Result, Rng, Tensor};
use saddle_nn::optim::{Adam, AdamConfig, Optimizer};
use saddle_nn::{
    child_name, Activation, BatchNorm, Checkpoint, CheckpointError, Dropout, Linear, Module,
    ModuleExt, Sequential, Slot,
};

/// Sizes and training settings (defaults in the module docs).
#[derive(Clone, Copy, Debug)]
pub struct EbganConfig {
    /// Size of G's noise input.
    pub nz: usize,
    /// Pixels per (flattened) image.
    pub image_dim: usize,
    /// nLayerG: linear layers in G (at least 1).
    pub layers_g: usize,
    /// sizeG: width of G's hidden layers.
    pub size_g: usize,
    /// nLayerD: linear layers in D's encoder and decoder together (at least 2; the encoder
    /// gets the extra one when odd).
    pub layers_d: usize,
    /// sizeD: width of D's hidden layers, the code included.
    pub size_d: usize,
    /// Drop probability of D's hidden units (0: no dropout; the grid's "dropoutD true" is 0.5).
    pub dropout_d: f64,
    /// m in `[m - D(G(z))]+`.
    pub margin: f64,
    /// Adam's learning rate for both networks.
    pub lr: f64,
    /// Adam's β1 for both networks.
    pub beta1: f64,
    /// Weight of the pulling-away term in G's loss (0: plain EBGAN, 0.1: EBGAN-PT).
    pub pt_weight: f64,
    /// D steps per G step; each takes its own slice of the real batch.
    pub d_steps: usize,
}

impl Default for EbganConfig {
    fn default() -> Self {
        EbganConfig {
            nz: 100,
            image_dim: 784,
            layers_g: 5,
            size_g: 1600,
            layers_d: 2,
            size_d: 1024,
            dropout_d: 0.0,
            margin: 10.0,
            lr: 1e-3,
            beta1: 0.5,
            pt_weight: 0.0,
            d_steps: 1,
        }
    }
}

impl MlpConfig for EbganConfig {
    fn image_dim(&self) -> usize {
        self.image_dim
    }

    /// z ~ N(0, 1)^nz.
    fn noise(&self, n: usize, device: Device, rng: &mut Rng) -> Result<Tensor> {
        super::gaussian_noise(n, self.nz, device, rng)
    }
}

impl EbganConfig {
    /// EBGAN-PT: the same model with the pulling-away term weighted 0.1, as the paper.
    pub fn with_pt(self) -> Self {
        EbganConfig {
            pt_weight: 0.1,
            ..self
        }
    }
}

/// The pulling-away term of a batch of representations `s` (`[N, ...]`, N >= 2, each row
/// flattened): the mean over ordered pairs i != j of the squared cosine similarity,
/// `1/(N(N-1)) Σ_{i≠j} (s_iᵀ s_j / (|s_i| |s_j|))²`. Built from engine ops (row normalisation,
/// Gram matrix, a mask removing the diagonal), so it is differentiable in `s`. An all-zero row
/// has cosine 0 with every other row.
pub fn pulling_away_term(s: &Tensor) -> Result<Tensor> {
    const OP: &str = "pulling_away_term";
    if s.rank() == 0 || s.shape()[0] < 2 {
        return Err(Error::BadShape {
            op: OP,
            shape: s.shape().to_vec(),
            reason: "needs a batch of at least 2 representations".into(),
        });
    }
    let n = s.shape()[0];
    let flat = s.reshape(&[n, s.numel() / n])?;
    let unit = flat.l2_normalize(1, 1e-12)?;
    let cos = unit.matmul(&unit.t()?)?;
    let off_diagonal: Vec<f64> = (0..n * n)
        .map(|i| if i / n == i % n { 0.0 } else { 1.0 })
        .collect();
    let mask = Tensor::from_vec(off_diagonal, &[n, n], s.device())?.to_dtype(s.dtype())?;
    cos.square()?
        .mul(&mask)?
        .sum_all()?
        .div_scalar((n * (n - 1)) as f64)
}

/// `z [N, nz] -> images [N, image_dim]` in [-1, 1]: a [`Sequential`] of (linear, batch norm,
/// ReLU) hidden layers and a linear + tanh output (PyTorch `nn.Sequential` names `0.weight`,
/// `1.running_mean`, ...).
pub fn generator(cfg: &EbganConfig, rng: &mut Rng) -> Result<Sequential> {
    mlp_generator(cfg.nz, cfg.layers_g, cfg.size_g, cfg.image_dim, rng)
}

/// The generator of [`generator`] from its sizes alone: `layers` linear layers (nLayerG), the
/// hidden ones `size` wide (sizeG). The grid search's GAN baseline uses it too, so both families
/// share G exactly.
pub fn mlp_generator(
    nz: usize,
    layers: usize,
    size: usize,
    image_dim: usize,
    rng: &mut Rng,
) -> Result<Sequential> {
    if layers == 0 {
        return Err(Error::InvalidArgument {
            op: "ebgan::generator",
            reason: "layers_g must be at least 1".into(),
        });
    }
    let mut net = Sequential::new();
    let mut width = nz;
    for _ in 1..layers {
        net = net
            .push(Linear::new(width, size, true, DType::F32, rng)?)
            .push(BatchNorm::new_1d(size, true, DType::F32)?)
            .push(Activation::Relu);
        width = size;
    }
    Ok(net
        .push(Linear::new(width, image_dim, true, DType::F32, rng)?)
        .push(Activation::Tanh))
}

/// The auto-encoder discriminator: `enc.i` and `dec.i` linear layers (PyTorch `ModuleList`
/// names). Its forward gives the energy `[N]`.
pub struct EbganDiscriminator {
    /// The encoder's layers, image to code.
    pub enc: Vec<Linear>,
    /// The decoder's layers, code to image.
    pub dec: Vec<Linear>,
    /// One per hidden activation after the code (empty without dropout).
    pub drops: Vec<Dropout>,
}

/// The discriminator of `cfg`; its dropout generators are seeded from `rng`.
pub fn discriminator(cfg: &EbganConfig, rng: &mut Rng) -> Result<EbganDiscriminator> {
    if cfg.layers_d < 2 {
        return Err(Error::InvalidArgument {
            op: "ebgan::discriminator",
            reason: "layers_d must be at least 2 (an encoder and a decoder layer)".into(),
        });
    }
    let n_dec = cfg.layers_d / 2;
    let n_enc = cfg.layers_d - n_dec;
    let mut width = cfg.image_dim;
    let mut enc = Vec::with_capacity(n_enc);
    for _ in 0..n_enc {
        enc.push(Linear::new(width, cfg.size_d, true, DType::F32, rng)?);
        width = cfg.size_d;
    }
    let mut dec = Vec::with_capacity(n_dec);
    for i in 0..n_dec {
        let out = if i + 1 == n_dec {
            cfg.image_dim
        } else {
            cfg.size_d
        };
        dec.push(Linear::new(width, out, true, DType::F32, rng)?);
    }
    let drops = if cfg.dropout_d > 0.0 {
        (0..n_dec)
            .map(|_| Dropout::new(cfg.dropout_d, rng.next_u64()))
            .collect::<Result<_>>()?
    } else {
        Vec::new()
    };
    Ok(EbganDiscriminator { enc, dec, drops })
}

impl EbganDiscriminator {
    /// The encoder's representation of `x` (`[N, image_dim]` -> `[N, size_d]`).
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for layer in &self.enc {
            h = layer.forward(&h)?.relu()?;
        }
        Ok(h)
    }

    /// The reconstruction of a code.
    pub fn decode(&self, code: &Tensor) -> Result<Tensor> {
        let mut h = code.clone();
        for (i, layer) in self.dec.iter().enumerate() {
            if let Some(drop) = self.drops.get(i) {
                h = drop.forward(&h)?;
            }
            h = layer.forward(&h)?;
            if i + 1 < self.dec.len() {
                h = h.relu()?;
            }
        }
        Ok(h)
    }

    /// The energy (per-sample mean squared reconstruction error, `[N]`) and the code of `x`.
    pub fn energy_and_code(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let code = self.encode(x)?;
        let energy = self.decode(&code)?.sub(x)?.square()?.mean(&[1], false)?;
        Ok((energy, code))
    }
}

impl Module for EbganDiscriminator {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.energy_and_code(x)?.0)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        for (part, layers) in [("enc", &self.enc), ("dec", &self.dec)] {
            let part = child_name(prefix, part);
            for (i, layer) in layers.iter().enumerate() {
                layer.visit(&child_name(&part, &i.to_string()), f);
            }
        }
    }

    fn set_training(&mut self, training: bool) {
        for drop in &mut self.drops {
            drop.set_training(training);
        }
    }
}

impl DropoutGenerators for EbganDiscriminator {
    fn dropout_generators(&self) -> Vec<(String, &Dropout)> {
        numbered_dropouts(&self.drops)
    }
}

/// G, D, their Adam optimisers and the noise generator, with EBGAN's training step.
pub type EbganTrainer = MlpTrainer<EbganConfig, Sequential, EbganDiscriminator, Adam>;

impl EbganTrainer {
    /// Builds and initialises both networks from `seed`.
    pub fn new(cfg: EbganConfig, seed: u64) -> Result<Self> {
        if cfg.d_steps == 0 {
            return Err(Error::InvalidArgument {
                op: "EbganTrainer::new",
                reason: "d_steps must be at least 1".into(),
            });
        }
        let mut rng = Rng::new(seed);
        let g = generator(&cfg, &mut rng)?;
        let d = discriminator(&cfg, &mut rng)?;
        let adam = AdamConfig {
            beta1: cfg.beta1,
            ..AdamConfig::default()
        };
        let opt_g = Adam::with_lr(g.named_parameters(), cfg.lr, adam);
        let opt_d = Adam::with_lr(d.named_parameters(), cfg.lr, adam);
        Ok(Self::from_parts(cfg, g, d, opt_g, opt_d, rng))
    }

    /// k D steps, each on its own slice of `real` (`[k * m, ...]` images in [-1, 1]) and m
    /// fresh samples, then one G step on m fresh samples.
    pub fn step(&mut self, real: &Tensor) -> Result<StepStats> {
        self.step_unread(real)?.read()
    }

    /// [`EbganTrainer::step`] with its numbers left unread on the trainer's device.
    pub fn step_unread(&mut self, real: &Tensor) -> Result<StepStats<Tensor>> {
        // The pulling-away term compares the samples of a minibatch pairwise.
        let min_rows = if self.cfg.pt_weight > 0.0 { 2 } else { 1 };
        let (real, m) = self.real_batch(real, self.cfg.d_steps, min_rows, "EbganTrainer::step")?;
        let d = self.d_updates(&real, m, Self::d_step_unread)?;
        let (g_loss, pt) = self.g_step(m)?;
        self.steps += 1;
        Ok(d.with_g_loss(g_loss, pt))
    }

    /// One update of D on `real` and as many fresh samples: loss `mean E(x) + mean [m -
    /// E(G(z))]+`. The scores are the mean energies before the update.
    pub fn d_step(&mut self, real: &Tensor) -> Result<DStepStats> {
        self.d_step_unread(real)?.read()
    }

    /// [`EbganTrainer::d_step`] with its numbers left unread on the trainer's device.
    fn d_step_unread(&mut self, real: &Tensor) -> Result<DStepStats<Tensor>> {
        let real =
            rows(real, self.cfg.image_dim, "EbganTrainer::d_step")?.to_device(self.device)?;
        let fake = self.sample(real.shape()[0])?;
        let e_real = self.d.forward(&real)?;
        let e_fake = self.d.forward(&fake)?;
        let hinge = e_fake.rsub_scalar(self.cfg.margin)?.relu()?.mean_all()?;
        let loss = e_real.mean_all()?.add(&hinge)?;
        self.opt_d.step(&loss.backward()?)?;
        no_grad(|| {
            Ok(DStepStats {
                loss: loss.detach(),
                real_score: e_real.mean_all()?,
                fake_score: e_fake.mean_all()?,
            })
        })
    }

    /// One update of G on `m` fresh noise vectors: loss `mean E(G(z))`, plus `pt_weight` times
    /// the pulling-away term of the codes when that weight is positive. Returns the loss and
    /// the term (unweighted), both before the update (unread).
    pub fn g_step(&mut self, m: usize) -> Result<(Tensor, Option<Tensor>)> {
        let z = self.noise(m)?;
        self.g_update(|t| {
            let (energy, code) = t.d.energy_and_code(&t.g.forward(&z)?)?;
            let mut loss = energy.mean_all()?;
            let mut pt = None;
            if t.cfg.pt_weight > 0.0 {
                let term = pulling_away_term(&code)?;
                loss = loss.add(&term.mul_scalar(t.cfg.pt_weight)?)?;
                pt = Some(term.detach());
            }
            Ok((loss, pt))
        })
    }
}

crate::impl_gan_model_for_mlp_trainer!(EbganTrainer, (-1.0, 1.0));
