//! BigBiGAN (Donahue & Simonyan 2019): BiGAN on the BigGAN core. An encoder E maps images to
//! latents; a joint discriminator scores pairs `(x, E(x))` of real images against pairs
//! `(G(z), z)` of generated ones.
//!
//! - **E**: BigGAN's down-blocks (the discriminator's body, spectrally normalised, pooled by a
//!   sum over positions) and a linear map to a Gaussian: mean `mu` and standard deviation
//!   `softplus(raw) + 1e-4`; `E(x) = mu + sigma * eps` (reparameterised, so gradients reach E).
//!   The encoder may see the images at a lower resolution than G makes them (average pooled).
//! - **G**: BigGAN's generator, unconditional.
//! - **D**: F (BigGAN's D body on x, whose own linear head gives the unary score `s_x`), H (an
//!   MLP on z, with a linear head giving `s_z`) and J (an MLP on the concatenation of F's and
//!   H's outputs, giving the joint `s_xz`); all layers spectrally normalised.
//! - **Losses**: D minimises the hinge of each score, summed: `mean(relu(1 - s(x, E(x)))) +
//!   mean(relu(1 + s(G(z), z)))` for each of `s_x`, `s_z`, `s_xz`; E and G together minimise the
//!   plain difference `mean(s(x, E(x))) - mean(s(G(z), z))` of the summed scores. Without the
//!   unary terms (the paper's ablation) only `s_xz` counts.

use super::biggan::{BigGanConfig, BigGanDiscriminator, BigGanGenerator};
use super::{DStepStats, StepStats};
use crate::run::{BoxError, GanModel};
use saddle_nn::engine::{no_grad, DType, Device, Error, Result, Rng, Tensor};
use saddle_nn::optim::{Adam, AdamConfig, Optimizer};
use saddle_nn::{
    child_name, standing_stats, Checkpoint, CheckpointError, Ema, Linear, Module, ModuleExt, Slot,
    SpectralNorm,
};

/// The smallest standard deviation E outputs (keeps `log sigma` finite).
pub const MIN_SIGMA: f64 = 1e-4;

/// BigBiGAN's architecture.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BigBiGanConfig {
    /// G's BigGAN configuration (unconditional: `num_classes` must be `None`); also F's, and
    /// E's at `encoder_resolution` and width `encoder_ch`.
    pub model: BigGanConfig,
    /// The resolution E sees (a power-of-two fraction of `model.resolution`, at least 32).
    pub encoder_resolution: usize,
    /// E's width `ch` (its pooled features have BigGAN's D width for it: `2 * encoder_ch` at
    /// 32x32). The paper's encoder is far wider than its generator's discriminator; a linear
    /// probe reads these features.
    pub encoder_ch: usize,
    /// Width of H's and J's hidden layers.
    pub mlp_width: usize,
    /// Whether D's unary scores `s_x` and `s_z` count (the paper's full model) or only `s_xz`.
    pub unary: bool,
}

impl BigBiGanConfig {
    fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::InvalidArgument {
                op: "BigBiGanConfig",
                reason,
            })
        };
        if self.model.num_classes.is_some() {
            return bad("BigBiGAN's G is unconditional: num_classes must be None".into());
        }
        let (r, e) = (self.model.resolution, self.encoder_resolution);
        if e == 0 || e > r || !(r / e).is_power_of_two() || r % e != 0 || e < 32 {
            return bad(format!(
                "the encoder's resolution {e} must be the image's {r} divided by a power of two, \
                 and at least 32 (BigGAN's smallest D)"
            ));
        }
        if self.encoder_ch == 0 {
            return bad("the encoder's width must be at least 1".into());
        }
        if self.mlp_width == 0 {
            return bad("the MLP width must be at least 1".into());
        }
        Ok(())
    }
}

/// E: images -> a Gaussian over latents.
pub struct Encoder {
    /// BigGAN's D body at the encoder's resolution (its one-logit head is not used).
    pub body: BigGanDiscriminator,
    /// Pooled features -> `[mu, raw sigma]` (`2 * z_dim`).
    pub head: Linear,
    /// How many times the images are halved (average pooled) before the body.
    pub halvings: u32,
    /// Size of the latents it encodes to.
    pub z_dim: usize,
}

impl Encoder {
    /// E for `cfg` (its layers' initialisation drawn from `rng`).
    pub fn new(cfg: &BigBiGanConfig, rng: &mut Rng) -> Result<Self> {
        cfg.validate()?;
        let model = BigGanConfig {
            resolution: cfg.encoder_resolution,
            ch: cfg.encoder_ch,
            ..cfg.model
        };
        let body = BigGanDiscriminator::new(model, DType::F32, rng)?;
        let width = body.linear.named_parameters()[0].1.shape()[1];
        let head = model
            .init
            .linear(width, 2 * model.z_dim, true, DType::F32, rng)?;
        Ok(Encoder {
            body,
            head,
            halvings: (cfg.model.resolution / cfg.encoder_resolution).trailing_zeros(),
            z_dim: model.z_dim,
        })
    }

    /// The pooled features `[N, C]` of images at G's resolution (what a linear probe reads).
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        for _ in 0..self.halvings {
            x = x.avg_pool2d(2, 2, 0)?;
        }
        self.body.features(&x)
    }

    /// The Gaussian's mean and standard deviation, each `[N, z_dim]`.
    pub fn gaussian(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let params = self.head.forward(&self.features(x)?)?;
        let mu = params.narrow(1, 0, self.z_dim)?;
        let sigma = params
            .narrow(1, self.z_dim, self.z_dim)?
            .softplus()?
            .add_scalar(MIN_SIGMA)?;
        Ok((mu, sigma))
    }

    /// `mu + sigma * eps` for `eps` `[N, z_dim]` drawn from N(0, 1) by the caller.
    pub fn sample(&self, x: &Tensor, eps: &Tensor) -> Result<Tensor> {
        let (mu, sigma) = self.gaussian(x)?;
        mu.add(&sigma.mul(eps)?)
    }
}

impl Module for Encoder {
    /// The Gaussian's mean (the deterministic code, used for reconstructions).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.gaussian(x)?.0)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        self.body.visit(&child_name(prefix, "body"), f);
        self.head.visit(&child_name(prefix, "head"), f);
    }

    fn set_training(&mut self, training: bool) {
        self.body.set_training(training);
    }
}

/// A spectrally normalised MLP: linear layers with ReLU between and after the hidden ones.
pub struct Mlp {
    /// The layers, in order.
    pub layers: Vec<SpectralNorm<Linear>>,
}

impl Mlp {
    fn new(widths: &[usize], init: saddle_nn::init::WeightInit, rng: &mut Rng) -> Result<Self> {
        let layers = widths
            .windows(2)
            .map(|w| SpectralNorm::new(init.linear(w[0], w[1], true, DType::F32, rng)?, rng))
            .collect::<Result<Vec<_>>>()?;
        Ok(Mlp { layers })
    }
}

impl Module for Mlp {
    /// Every layer, each followed by ReLU.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for layer in &self.layers {
            h = layer.forward(&h)?.relu()?;
        }
        Ok(h)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        for (i, layer) in self.layers.iter().enumerate() {
            layer.visit(&child_name(prefix, &i.to_string()), f);
        }
    }

    fn set_training(&mut self, training: bool) {
        for layer in &mut self.layers {
            layer.set_training(training);
        }
    }
}

/// D's three scores for a batch of pairs, each `[N]`.
pub struct JointScores {
    /// The unary score of the images (from F).
    pub s_x: Tensor,
    /// The unary score of the latents (from H).
    pub s_z: Tensor,
    /// The joint score of the pairs (from J).
    pub s_xz: Tensor,
}

impl JointScores {
    /// The scores that count: all three with the unary terms, else `s_xz` alone.
    pub fn terms(&self, unary: bool) -> Vec<&Tensor> {
        if unary {
            vec![&self.s_x, &self.s_z, &self.s_xz]
        } else {
            vec![&self.s_xz]
        }
    }
}

/// The joint discriminator: F on x, H on z, J on both.
pub struct JointDiscriminator {
    /// F: BigGAN's D body; its linear head gives `s_x`.
    pub f: BigGanDiscriminator,
    /// H: MLP on z (two hidden layers).
    pub h: Mlp,
    /// `s_z` from H's output.
    pub h_head: SpectralNorm<Linear>,
    /// J: MLP on `[F(x), H(z)]` (two hidden layers).
    pub j: Mlp,
    /// `s_xz` from J's output.
    pub j_head: SpectralNorm<Linear>,
}

impl JointDiscriminator {
    /// D for `cfg` (its layers' initialisation drawn from `rng`); an invalid configuration is
    /// an error.
    pub fn new(cfg: &BigBiGanConfig, rng: &mut Rng) -> Result<Self> {
        cfg.validate()?;
        let init = cfg.model.init;
        let f = BigGanDiscriminator::new(cfg.model, DType::F32, rng)?;
        let width = f.linear.named_parameters()[0].1.shape()[1];
        let m = cfg.mlp_width;
        let head =
            |rng: &mut Rng| SpectralNorm::new(init.linear(m, 1, true, DType::F32, rng)?, rng);
        Ok(JointDiscriminator {
            h: Mlp::new(&[cfg.model.z_dim, m, m], init, rng)?,
            h_head: head(rng)?,
            j: Mlp::new(&[width + m, m, m], init, rng)?,
            j_head: head(rng)?,
            f,
        })
    }

    /// The scores of pairs `(x [N, C, H, W], z [N, z_dim])`.
    pub fn scores(&self, x: &Tensor, z: &Tensor) -> Result<JointScores> {
        let n = x.shape().first().copied().unwrap_or(0);
        if z.rank() != 2 || z.shape()[0] != n {
            return Err(Error::BadShape {
                op: "JointDiscriminator",
                shape: z.shape().to_vec(),
                reason: format!("latents must be [{n}, z_dim] for {n} images"),
            });
        }
        let hx = self.f.features(x)?;
        let hz = self.h.forward(z)?;
        let joint = self.j.forward(&Tensor::concat(&[&hx, &hz], 1)?)?;
        Ok(JointScores {
            s_x: self.f.head(&hx, None)?,
            s_z: self.h_head.forward(&hz)?.reshape(&[n])?,
            s_xz: self.j_head.forward(&joint)?.reshape(&[n])?,
        })
    }
}

impl Module for JointDiscriminator {
    /// D scores pairs: use [`JointDiscriminator::scores`].
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Err(Error::InvalidArgument {
            op: "JointDiscriminator",
            reason: format!(
                "scores (image, latent) pairs: call scores(x, z) (given images {:?} alone)",
                x.shape()
            ),
        })
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        self.f.visit(&child_name(prefix, "f"), f);
        self.h.visit(&child_name(prefix, "h"), f);
        self.h_head.visit(&child_name(prefix, "h_head"), f);
        self.j.visit(&child_name(prefix, "j"), f);
        self.j_head.visit(&child_name(prefix, "j_head"), f);
    }

    fn set_training(&mut self, training: bool) {
        self.f.set_training(training);
        self.h.set_training(training);
        self.h_head.set_training(training);
        self.j.set_training(training);
        self.j_head.set_training(training);
    }
}

/// `term(real, fake)` of each counted score, summed: the joint score's, plus the unary ones'
/// when they count.
fn summed_terms(
    real: &JointScores,
    fake: &JointScores,
    unary: bool,
    term: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let mut total = term(&real.s_xz, &fake.s_xz)?;
    if unary {
        for (r, f) in [(&real.s_x, &fake.s_x), (&real.s_z, &fake.s_z)] {
            total = total.add(&term(r, f)?)?;
        }
    }
    Ok(total)
}

/// D's loss: the hinge of every counted score, summed (see the module docs).
pub fn d_joint_hinge_loss(real: &JointScores, fake: &JointScores, unary: bool) -> Result<Tensor> {
    summed_terms(real, fake, unary, |r, f| {
        r.hinge_loss_real()?.add(&f.hinge_loss_fake()?)
    })
}

/// E and G's loss: `mean(s(x, E(x))) - mean(s(G(z), z))` of the counted scores summed.
pub fn eg_loss(real: &JointScores, fake: &JointScores, unary: bool) -> Result<Tensor> {
    summed_terms(real, fake, unary, |r, f| r.mean_all()?.sub(&f.mean_all()?))
}

/// BigBiGAN's training settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BigBiGanTrainConfig {
    /// The architecture of E, G and D.
    pub model: BigBiGanConfig,
    /// Adam learning rate of E and G together (the paper: E's matches G's).
    pub lr_eg: f64,
    /// D's Adam learning rate.
    pub lr_d: f64,
    /// Adam β1 / β2 of every player (BigGAN's 0 / 0.999).
    pub beta1: f64,
    /// See `beta1`.
    pub beta2: f64,
    /// Decay and start step of the moving averages of G's and E's weights.
    pub ema_decay: f64,
    /// See `ema_decay`.
    pub ema_start: u64,
    /// Standing-statistics batches (and their size) before sampling from the averaged G.
    pub standing_batches: usize,
    /// See `standing_batches`.
    pub standing_batch_size: usize,
}

impl BigBiGanTrainConfig {
    /// BigGAN's optimiser (Adam β1 0, β2 0.999) at 2e-4 for every player, one D step per E/G
    /// step on the same real batch, the averages at 0.999 from step 1,000.
    pub fn new(model: BigBiGanConfig) -> Self {
        BigBiGanTrainConfig {
            model,
            lr_eg: 2e-4,
            lr_d: 2e-4,
            beta1: 0.0,
            beta2: 0.999,
            ema_decay: 0.999,
            ema_start: 1000,
            standing_batches: 16,
            standing_batch_size: 64,
        }
    }
}

/// The random draws of one step: G's latents and E's reparameterisation noise for D's update,
/// then for E/G's update (each `[N, z_dim]`).
pub struct Draws {
    /// G's latents for D's update.
    pub z_d: Tensor,
    /// E's noise for D's update.
    pub eps_d: Tensor,
    /// G's latents for E/G's update.
    pub z_eg: Tensor,
    /// E's noise for E/G's update.
    pub eps_eg: Tensor,
}

const RNG_TRAIN: &str = "bigbigan.train";
const META_STEP: &str = "bigbigan.step";
const STANDING_SEED: u64 = 0x5717_d1a9;

/// E, G, D, their optimisers and the averages of E and G.
pub struct BigBiGanTrainer {
    /// The training settings.
    pub cfg: BigBiGanTrainConfig,
    /// The trained encoder.
    pub e: Encoder,
    /// The trained generator.
    pub g: BigGanGenerator,
    /// The joint discriminator.
    pub d: JointDiscriminator,
    /// The evaluation copies: the averages' weights (G in eval mode, standing statistics).
    pub e_ema: Encoder,
    /// See `e_ema`.
    pub g_ema: BigGanGenerator,
    ema_e: Ema,
    ema_g: Ema,
    opt_eg: Adam,
    opt_d: Adam,
    rng: Rng,
    steps: u64,
    prepared_at: Option<u64>,
    /// Real images whose reconstructions the training loop saves (set by the caller).
    pub reconstruction_images: Option<Tensor>,
}

impl BigBiGanTrainer {
    /// Builds E, G and D from `seed`.
    pub fn new(cfg: BigBiGanTrainConfig, seed: u64) -> Result<Self> {
        let build = |seed: u64| -> Result<(Encoder, BigGanGenerator)> {
            let mut rng = Rng::new(seed);
            let g = BigGanGenerator::new(cfg.model.model, DType::F32, &mut rng)?;
            Ok((Encoder::new(&cfg.model, &mut rng)?, g))
        };
        let (e, g) = build(seed)?;
        let (e_ema, mut g_ema) = build(seed)?;
        g_ema.set_training(false);
        let d = JointDiscriminator::new(&cfg.model, &mut Rng::new(seed ^ 0xd15c))?;
        let adam = AdamConfig {
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            ..AdamConfig::default()
        };
        let mut eg_params: Vec<(String, Tensor)> = Vec::new();
        for (prefix, module) in [("e", &e as &dyn Module), ("g", &g as &dyn Module)] {
            let named = module.named_parameters().into_iter();
            eg_params.extend(named.map(|(n, t)| (format!("{prefix}.{n}"), t)));
        }
        Ok(BigBiGanTrainer {
            ema_e: Ema::new(&e, cfg.ema_decay, cfg.ema_start)?,
            ema_g: Ema::new(&g, cfg.ema_decay, cfg.ema_start)?,
            opt_eg: Adam::with_lr(eg_params, cfg.lr_eg, adam),
            opt_d: Adam::with_lr(d.named_parameters(), cfg.lr_d, adam),
            cfg,
            e,
            g,
            d,
            e_ema,
            g_ema,
            rng: Rng::new(seed ^ 0xb1_b16a),
            steps: 0,
            prepared_at: None,
            reconstruction_images: None,
        })
    }

    /// E/G updates taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The next step's draws for a batch of `n`, from the trainer's generator.
    pub fn draw(&mut self, n: usize) -> Result<Draws> {
        let z = self.cfg.model.model.z_dim;
        let mut next = || Tensor::randn(&[n, z], 0.0, 1.0, DType::F32, Device::Cpu, &mut self.rng);
        Ok(Draws {
            z_d: next()?,
            eps_d: next()?,
            z_eg: next()?,
            eps_eg: next()?,
        })
    }

    /// One step: D's update, then E and G's, on `real` `[N, C, H, W]` in [-1, 1].
    pub fn step(&mut self, real: &Tensor) -> Result<StepStats<Tensor>> {
        let n = real.shape().first().copied().unwrap_or(0);
        let draws = self.draw(n)?;
        self.step_with(real, &draws)
    }

    /// The step with its draws given (the seam the tests check a step through).
    pub fn step_with(&mut self, real: &Tensor, draws: &Draws) -> Result<StepStats<Tensor>> {
        let unary = self.cfg.model.unary;
        // D's update: E's codes and G's images without gradients.
        let (z_real, fake) = no_grad(|| {
            Ok::<_, Error>((
                self.e.sample(real, &draws.eps_d)?,
                self.g.forward(&draws.z_d, None)?,
            ))
        })?;
        let real_scores = self.d.scores(real, &z_real)?;
        let fake_scores = self.d.scores(&fake, &draws.z_d)?;
        let d_loss = d_joint_hinge_loss(&real_scores, &fake_scores, unary)?;
        self.opt_d.step(&d_loss.backward()?)?;
        let total = |s: &JointScores| -> Result<Tensor> {
            let terms = s.terms(unary);
            let mut sum = terms[0].detach();
            for t in &terms[1..] {
                sum = sum.add(&t.detach())?;
            }
            sum.mean_all()
        };
        let stats = DStepStats {
            loss: d_loss.detach(),
            real_score: total(&real_scores)?,
            fake_score: total(&fake_scores)?,
        };
        // E and G's update through the frozen D.
        self.d.set_frozen(true)?;
        let pass = (|| {
            let z_real = self.e.sample(real, &draws.eps_eg)?;
            let fake = self.g.forward(&draws.z_eg, None)?;
            let loss = eg_loss(
                &self.d.scores(real, &z_real)?,
                &self.d.scores(&fake, &draws.z_eg)?,
                unary,
            )?;
            Ok::<_, Error>((loss.backward()?, loss))
        })();
        self.d.set_frozen(false)?;
        let (grads, eg) = pass?;
        self.opt_eg.step(&grads)?;
        self.steps += 1;
        self.ema_e.update(&self.e, self.steps)?;
        self.ema_g.update(&self.g, self.steps)?;
        Ok(stats.with_g_loss(eg.detach(), None))
    }

    /// Copies the averages into the evaluation E and G and re-estimates G's batch-norm
    /// statistics (once per step).
    fn prepare(&mut self) -> Result<()> {
        if self.prepared_at == Some(self.steps) {
            return Ok(());
        }
        self.prepared_at = None;
        self.ema_e.copy_to(&self.e_ema)?;
        self.ema_g.copy_to(&self.g_ema)?;
        let (batches, size, z_dim) = (
            self.cfg.standing_batches,
            self.cfg.standing_batch_size,
            self.cfg.model.model.z_dim,
        );
        if batches > 0 {
            let mut rng = Rng::new(STANDING_SEED);
            standing_stats(&mut self.g_ema, batches, |g, _| {
                let z = Tensor::randn(&[size, z_dim], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng)?;
                g.forward(&z, None).map(|_| ())
            })?;
        }
        self.prepared_at = Some(self.steps);
        Ok(())
    }

    /// Images from the averaged G for latents `z`.
    pub fn sample(&mut self, z: &Tensor) -> Result<Tensor> {
        self.prepare()?;
        no_grad(|| self.g_ema.forward(z, None))
    }

    /// Reconstructions `G(E(x))` by the averaged E (its mean code) and G.
    pub fn reconstruct(&mut self, x: &Tensor) -> Result<Tensor> {
        self.prepare()?;
        no_grad(|| self.g_ema.forward(&self.e_ema.forward(x)?, None))
    }

    /// The averaged E's pooled features of `x` (what the linear probe reads).
    pub fn features(&mut self, x: &Tensor) -> Result<Tensor> {
        self.prepare()?;
        no_grad(|| self.e_ema.features(x))
    }

    /// E, G, D, both optimisers, the averages, the step count and the generator.
    pub fn checkpoint(&self) -> Checkpoint {
        let mut ck = Checkpoint::new();
        ck.add_module("e", &self.e);
        ck.add_module("g", &self.g);
        ck.add_module("d", &self.d);
        ck.add_optimizer("opt_eg", &self.opt_eg);
        ck.add_optimizer("opt_d", &self.opt_d);
        for (prefix, ema) in [("e_ema", &self.ema_e), ("g_ema", &self.ema_g)] {
            for (name, t) in ema.named_tensors() {
                ck.add_tensor(format!("{prefix}.{name}"), &t);
            }
        }
        ck.set_rng(RNG_TRAIN, &self.rng);
        ck.set_meta(META_STEP, self.steps);
        ck
    }

    /// Restores what [`BigBiGanTrainer::checkpoint`] saved.
    pub fn restore(&mut self, ck: &Checkpoint) -> std::result::Result<(), CheckpointError> {
        self.prepared_at = None;
        ck.restore_module("e", &self.e)?;
        ck.restore_module("g", &self.g)?;
        ck.restore_module("d", &self.d)?;
        ck.restore_optimizer("opt_eg", &mut self.opt_eg)?;
        ck.restore_optimizer("opt_d", &mut self.opt_d)?;
        ck.restore_module("e_ema", &self.e_ema)?;
        ck.restore_module("g_ema", &self.g_ema)?;
        let (decay, start) = (self.cfg.ema_decay, self.cfg.ema_start);
        let average = |m: &dyn Module| {
            Ema::new(m, decay, start).map_err(|e| CheckpointError {
                path: ck.path().to_path_buf(),
                reason: format!("an average: {e}"),
            })
        };
        self.ema_e = average(&self.e_ema)?;
        self.ema_g = average(&self.g_ema)?;
        self.rng = ck.rng(RNG_TRAIN)?;
        let step = ck.meta(META_STEP).unwrap_or("");
        self.steps = step.parse().map_err(|_| CheckpointError {
            path: ck.path().to_path_buf(),
            reason: format!("malformed or missing `{META_STEP}`: {step:?}"),
        })?;
        Ok(())
    }
}

impl GanModel for BigBiGanTrainer {
    /// Ignores the loop's generator and labels: the trainer draws from its own generator.
    fn train_step(
        &mut self,
        real: &Tensor,
        _labels: Option<&[usize]>,
        _rng: &mut Rng,
    ) -> std::result::Result<Vec<(&'static str, Tensor)>, BoxError> {
        Ok(self.step(real)?.named())
    }

    fn sample_latent(&self, n: usize, rng: &mut Rng) -> std::result::Result<Tensor, BoxError> {
        let z = self.cfg.model.model.z_dim;
        Ok(Tensor::randn(
            &[n, z],
            0.0,
            1.0,
            DType::F32,
            Device::Cpu,
            rng,
        )?)
    }

    fn generate(&mut self, z: &Tensor) -> std::result::Result<Tensor, BoxError> {
        Ok(self.sample(z)?)
    }

    fn value_range(&self) -> (f32, f32) {
        (-1.0, 1.0)
    }

    fn reconstruct(&mut self, x: &Tensor) -> std::result::Result<Tensor, BoxError> {
        Ok(BigBiGanTrainer::reconstruct(self, x)?)
    }

    fn reconstruction_source(&self) -> Option<&Tensor> {
        self.reconstruction_images.as_ref()
    }

    fn checkpoint(&self) -> Checkpoint {
        BigBiGanTrainer::checkpoint(self)
    }

    fn restore(&mut self, ck: &Checkpoint) -> std::result::Result<(), CheckpointError> {
        BigBiGanTrainer::restore(self, ck)
    }
}
