//! DCGAN (Radford et al. 2016) as in PyTorch's reference example: transposed convolutions with
//! batch norm and ReLU in G (tanh out), strided convolutions with batch norm and LeakyReLU 0.2 in
//! D (a logit out; the sigmoid lives in the loss), no biases, N(0, 0.02) weights and N(1, 0.02)
//! batch-norm gains.

use super::read_scalars;
use crate::run::{BoxError, GanModel};
use saddle_nn::engine::no_grad;
use saddle_nn::engine::{
    Conv2dParams, ConvTranspose2dParams, DType, Device, Error, Result, Rng, Tensor,
};
use saddle_nn::optim::{Adam, AdamConfig, Optimizer};
use saddle_nn::{
    init, Activation, BatchNorm, Conv2d, ConvTranspose2d, Module, ModuleExt, Sequential,
};
use saddle_nn::{penalty, Checkpoint, CheckpointError};

/// Sizes of a DCGAN: latent size, widths and image shape (square, 4·2^k pixels with k >= 1: 8, 16,
/// 32, 64, ...; one up/down-sampling stage per doubling).
#[derive(Clone, Copy, Debug)]
pub struct DcganConfig {
    /// Size of the latent code (G's input channels).
    pub nz: usize,
    /// G's base width: its last hidden stage has `ngf` channels, doubling towards the input.
    pub ngf: usize,
    /// D's base width: its first stage has `ndf` channels, doubling towards the output.
    pub ndf: usize,
    /// Image channels (1 grey, 3 RGB).
    pub channels: usize,
    /// Image side in pixels.
    pub image_size: usize,
    /// Adam learning rate of both networks (the paper: 2e-4).
    pub lr: f64,
    /// Adam β1 (the paper: 0.5, down from the usual 0.9, which oscillated).
    pub beta1: f64,
    /// Adam β2 (0.999; WGAN-GP's paper uses 0.9).
    pub beta2: f64,
    /// What D (a critic under WGAN-GP) and G are trained on.
    pub loss: DcganLoss,
    /// D updates per G update, each on its own part of the step's real batch (1 for the paper;
    /// WGAN-GP's paper uses 5).
    pub n_critic: usize,
    /// R1's weight γ (Mescheder et al. 2018): `γ/2 · mean ‖∇D(x)‖²` on the real images is added
    /// to D's loss; 0 turns it off.
    pub r1_gamma: f64,
}

/// DCGAN's training objective.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DcganLoss {
    /// The paper's: binary cross-entropy on D's logit, the non-saturating G loss.
    Standard,
    /// WGAN-GP (Gulrajani et al. 2017): D is a critic without batch norm, trained on
    /// `D(fake) - D(real) + weight · (‖∇D(x̂)‖ - 1)²` at random interpolates `x̂`; G on `-D(G(z))`.
    WganGp {
        /// The penalty's weight (10 in the paper).
        gp_weight: f64,
    },
}

impl DcganConfig {
    /// The 32×32 single-channel variant (MNIST-sized): G widths 256-128-64.
    pub fn mnist32() -> Self {
        DcganConfig {
            nz: 100,
            ngf: 64,
            ndf: 64,
            channels: 1,
            image_size: 32,
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            loss: DcganLoss::Standard,
            n_critic: 1,
            r1_gamma: 0.0,
        }
    }
    /// The paper's 64×64 RGB model with ngf = ndf = 64: G widths 512-256-128-64.
    pub fn rgb64() -> Self {
        DcganConfig {
            nz: 100,
            ngf: 64,
            ndf: 64,
            channels: 3,
            image_size: 64,
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            loss: DcganLoss::Standard,
            n_critic: 1,
            r1_gamma: 0.0,
        }
    }
    /// A small model for the 8×8 digits shown at 16×16: G widths 64-32 (66k parameters), D
    /// 32-64 (35k), well under 0.1 s per training step at batch 64 on a CPU.
    pub fn digits16() -> Self {
        DcganConfig {
            nz: 32,
            ngf: 32,
            ndf: 32,
            channels: 1,
            image_size: 16,
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            loss: DcganLoss::Standard,
            n_critic: 1,
            r1_gamma: 0.0,
        }
    }
    /// Width multipliers from the 4×4 stage outwards (2, 1 at 16 px; 4, 2, 1 at 32 px; 8, 4, 2,
    /// 1 at 64 px).
    fn multipliers(&self) -> Result<Vec<usize>> {
        let size = self.image_size;
        if size < 8 || !size.is_power_of_two() {
            return Err(Error::InvalidArgument {
                op: "dcgan",
                reason: format!("image size {size} must be 4·2^k with k >= 1 (8, 16, 32, 64, ...)"),
            });
        }
        let stages = (size / 4).trailing_zeros();
        Ok((0..stages).rev().map(|s| 1 << s).collect())
    }
}

fn reinit(weight: &saddle_nn::engine::Tensor, mean: f64, rng: &mut Rng) -> Result<()> {
    weight.assign(&init::normal(
        weight.shape(),
        mean,
        0.02,
        weight.dtype(),
        rng,
    )?)
}

/// `z [N, nz, 1, 1] -> image [N, channels, size, size]` in [-1, 1].
///
/// An image size that is not 4·2^k (k >= 1) is an error.
///
/// ```
/// use saddle_gan::models::dcgan::{discriminator, generator, DcganConfig};
/// use saddle_gan::nn::engine::{DType, Device, Rng, Tensor};
/// use saddle_gan::nn::Module;
///
/// let cfg = DcganConfig { nz: 8, ngf: 4, ndf: 4, ..DcganConfig::digits16() };
/// let mut rng = Rng::new(0);
/// let (g, d) = (generator(cfg, &mut rng)?, discriminator(cfg, &mut rng)?);
/// let z = Tensor::randn(&[2, 8, 1, 1], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng)?;
/// let images = g.forward(&z)?;
/// assert_eq!(images.shape(), &[2, 1, 16, 16]);
/// assert!(images.to_vec::<f32>()?.iter().all(|v| v.abs() <= 1.0)); // tanh
/// assert_eq!(d.forward(&images)?.shape(), &[2, 1, 1, 1]);
/// # Ok::<(), saddle_gan::nn::engine::Error>(())
/// ```
pub fn generator(cfg: DcganConfig, rng: &mut Rng) -> Result<Sequential> {
    let up = ConvTranspose2dParams::default()
        .with_stride(2)
        .with_padding(1);
    let widths: Vec<usize> = cfg.multipliers()?.iter().map(|m| m * cfg.ngf).collect();
    let mut net = Sequential::new();
    let mut cin = cfg.nz;
    for (i, &w) in widths.iter().enumerate() {
        let p = if i == 0 {
            ConvTranspose2dParams::default()
        } else {
            up
        };
        let conv = ConvTranspose2d::new(cin, w, 4, p, false, DType::F32, rng)?;
        reinit(&conv.weight, 0.0, rng)?;
        let bn = BatchNorm::new_2d(w, true, DType::F32)?;
        reinit(bn.weight.as_ref().expect("affine"), 1.0, rng)?;
        net = net.push(conv).push(bn).push(Activation::Relu);
        cin = w;
    }
    let out = ConvTranspose2d::new(cin, cfg.channels, 4, up, false, DType::F32, rng)?;
    reinit(&out.weight, 0.0, rng)?;
    Ok(net.push(out).push(Activation::Tanh))
}

/// `image [N, channels, size, size] -> logit [N, 1, 1, 1]` (an error for an image size that is
/// not 4·2^k, k >= 1).
pub fn discriminator(cfg: DcganConfig, rng: &mut Rng) -> Result<Sequential> {
    let down = Conv2dParams::default().with_stride(2).with_padding(1);
    let widths: Vec<usize> = cfg
        .multipliers()?
        .iter()
        .rev()
        .map(|m| m * cfg.ndf)
        .collect();
    let mut net = Sequential::new();
    let mut cin = cfg.channels;
    for (i, &w) in widths.iter().enumerate() {
        let conv = Conv2d::new(cin, w, 4, down, false, DType::F32, rng)?;
        reinit(&conv.weight, 0.0, rng)?;
        net = net.push(conv);
        // A critic's penalty is per image, which batch statistics would couple: no batch norm
        // under WGAN-GP (the paper's advice).
        if i > 0 && cfg.loss == DcganLoss::Standard {
            let bn = BatchNorm::new_2d(w, true, DType::F32)?;
            reinit(bn.weight.as_ref().expect("affine"), 1.0, rng)?;
            net = net.push(bn);
        }
        net = net.push(Activation::LeakyRelu(0.2));
        cin = w;
    }
    let out = Conv2d::new(cin, 1, 4, Conv2dParams::default(), false, DType::F32, rng)?;
    reinit(&out.weight, 0.0, rng)?;
    Ok(net.push(out))
}

/// DCGAN's feature extractor for its linear-probe experiment: every D block's activation,
/// max-pooled to a 4×4 grid, flattened and concatenated (`[N, 16·(ndf + 2ndf + ...)]`).
pub fn discriminator_features(cfg: DcganConfig, d: &Sequential, x: &Tensor) -> Result<Tensor> {
    let outputs = no_grad(|| d.forward_all(x))?;
    // Block i is conv, batch norm (except the first), activation.
    let blocks = cfg.multipliers()?.len();
    let mut at = 0;
    let mut pieces = Vec::with_capacity(blocks);
    for i in 0..blocks {
        at += if i == 0 { 2 } else { 3 };
        let h = &outputs[at - 1];
        let side = h.shape()[2];
        let pooled = if side > 4 {
            h.max_pool2d(side / 4, side / 4, 0)?
        } else {
            h.clone()
        };
        pieces.push(pooled.flatten(1, 3)?);
    }
    Tensor::concat(&pieces.iter().collect::<Vec<_>>(), 1)
}

/// G, D and their Adam optimisers (the config's lr and β1), with one training step:
/// a D step on real and generated images (BCE), then a non-saturating G step.
pub struct DcganTrainer {
    /// The sizes and optimiser settings.
    pub cfg: DcganConfig,
    /// The generator ([`generator`]).
    pub g: Sequential,
    /// The discriminator ([`discriminator`]).
    pub d: Sequential,
    opt_g: Adam,
    opt_d: Adam,
    /// Where G, D, their optimiser state and every step's tensors live.
    device: Device,
}

impl DcganTrainer {
    /// G and D for `cfg` (see [`generator`] for the sizes it takes), initialised from `rng`,
    /// on the CPU.
    pub fn new(cfg: DcganConfig, rng: &mut Rng) -> Result<Self> {
        let g = generator(cfg, rng)?;
        let d = discriminator(cfg, rng)?;
        if cfg.n_critic == 0 {
            return Err(Error::InvalidArgument {
                op: "dcgan",
                reason: "n_critic must be at least 1".into(),
            });
        }
        let adam = AdamConfig {
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            ..AdamConfig::default()
        };
        let opt_g = Adam::with_lr(g.named_parameters(), cfg.lr, adam);
        let opt_d = Adam::with_lr(d.named_parameters(), cfg.lr, adam);
        Ok(DcganTrainer {
            cfg,
            g,
            d,
            opt_g,
            opt_d,
            device: Device::Cpu,
        })
    }

    /// One D step and one G step on a batch of real images; returns (loss D, loss G).
    pub fn step(&mut self, real: &Tensor, rng: &mut Rng) -> Result<(f64, f64)> {
        let (d, g) = self.step_unread(real, rng)?;
        let v = read_scalars(&[&d, &g])?;
        Ok((v[0], v[1]))
    }

    /// [`DcganTrainer::step`] with the losses left unread on the trainer's device.
    pub fn step_unread(&mut self, real: &Tensor, rng: &mut Rng) -> Result<(Tensor, Tensor)> {
        let report = self.step_report(real, rng)?;
        Ok((report[0].1.clone(), report[1].1.clone()))
    }

    /// One training step on `real`: `n_critic` D updates, each on its part of the batch (the
    /// rows divide evenly), then one G update. Returns the losses of the last D update and of
    /// G, and the penalties when they are on, as scalar tensors on the trainer's device.
    pub fn step_report(
        &mut self,
        real: &Tensor,
        rng: &mut Rng,
    ) -> Result<Vec<(&'static str, Tensor)>> {
        let (n, k) = (real.shape()[0], self.cfg.n_critic);
        if n == 0 || n % k != 0 {
            return Err(Error::bad_shape(
                "dcgan step",
                real.shape(),
                format!("{n} real images do not split into {k} equal D updates"),
            ));
        }
        let part = n / k;
        let real = &real.to_device(self.device)?;
        let mut report = Vec::new();
        let mut fake = None;
        for i in 0..k {
            let x = real.narrow(0, i * part, part)?;
            let z = self.latent(part, rng)?;
            // With one D update G's step reuses these fakes (through G, unlike D's step).
            let f = if k == 1 {
                self.g.forward(&z)?
            } else {
                no_grad(|| self.g.forward(&z))?
            };
            report = self.d_update(&x, &f, rng)?;
            fake = Some(f);
        }
        let fake = match fake {
            Some(f) if k == 1 => f,
            _ => self.g.forward(&self.latent(part, rng)?)?,
        };
        // G's step needs gradients through D, not for D's weights: frozen, D skips its weight
        // gradients (PyTorch's reference example computes and discards them).
        self.d.set_frozen(true)?;
        let g_pass = self.d.forward(&fake).and_then(|scores| {
            let loss = match self.cfg.loss {
                DcganLoss::Standard => {
                    scores.binary_cross_entropy_with_logits(&scores.ones_like()?)?
                }
                DcganLoss::WganGp { .. } => scores.mean_all()?.neg()?,
            };
            Ok((loss.backward()?, loss))
        });
        self.d.set_frozen(false)?;
        let (grads_g, loss_g) = g_pass?;
        self.opt_g.step(&grads_g)?;
        report.insert(1, ("g_loss", loss_g.detach()));
        Ok(report)
    }

    /// Latent codes for `n` images.
    fn latent(&self, n: usize, rng: &mut Rng) -> Result<Tensor> {
        Tensor::randn(
            &[n, self.cfg.nz, 1, 1],
            0.0,
            1.0,
            DType::F32,
            self.device,
            rng,
        )
    }

    /// One D update on real images `x` and generated ones `fake` (detached here); returns D's
    /// loss and the penalties that are on.
    fn d_update(
        &mut self,
        x: &Tensor,
        fake: &Tensor,
        rng: &mut Rng,
    ) -> Result<Vec<(&'static str, Tensor)>> {
        let d = &self.d;
        let critic = |t: &Tensor| d.forward(t);
        let real_scores = critic(x)?;
        let fake_scores = critic(&fake.detach())?;
        let mut report = Vec::new();
        let mut loss = match self.cfg.loss {
            DcganLoss::Standard => real_scores
                .binary_cross_entropy_with_logits(&real_scores.ones_like()?)?
                .add(&fake_scores.binary_cross_entropy_with_logits(&fake_scores.zeros_like()?)?)?,
            DcganLoss::WganGp { gp_weight } => {
                let gp = penalty::gradient_penalty(critic, x, fake, rng)?;
                report.push(("gradient_penalty", gp.detach()));
                fake_scores
                    .mean_all()?
                    .sub(&real_scores.mean_all()?)?
                    .add(&gp.mul_scalar(gp_weight)?)?
            }
        };
        if self.cfg.r1_gamma > 0.0 {
            let r1 = penalty::r1_penalty(critic, x)?;
            report.push(("r1", r1.detach()));
            loss = loss.add(&r1.mul_scalar(self.cfg.r1_gamma / 2.0)?)?;
        }
        self.opt_d.step(&loss.backward()?)?;
        report.insert(0, ("d_loss", loss.detach()));
        Ok(report)
    }
}

impl DcganTrainer {
    /// Both networks (`g.*`, `d.*`) and both optimisers' moments (`opt_g.*`, `opt_d.*`).
    pub fn checkpoint(&self) -> Checkpoint {
        let mut ck = Checkpoint::new();
        super::save_players(&mut ck, (&self.g, &self.d), (&self.opt_g, &self.opt_d));
        ck
    }

    /// Restores a state saved by [`DcganTrainer::checkpoint`].
    pub fn restore(&mut self, ck: &Checkpoint) -> std::result::Result<(), CheckpointError> {
        super::restore_players(ck, (&self.g, &self.d), (&mut self.opt_g, &mut self.opt_d))
    }
}

impl GanModel for DcganTrainer {
    fn train_step(
        &mut self,
        real: &Tensor,
        _labels: Option<&[usize]>,
        rng: &mut Rng,
    ) -> std::result::Result<Vec<(&'static str, Tensor)>, BoxError> {
        Ok(self.step_report(real, rng)?)
    }

    fn sample_latent(&self, n: usize, rng: &mut Rng) -> std::result::Result<Tensor, BoxError> {
        Ok(self.latent(n, rng)?)
    }

    /// Samples with G in eval mode (batch norm from running statistics), so an image does not
    /// depend on the rest of its batch. `z` may be on any device; the images come back on the
    /// CPU, where grids, metrics and files are made.
    fn generate(&mut self, z: &Tensor) -> std::result::Result<Tensor, BoxError> {
        let z = z.to_device(self.device)?;
        self.g.set_training(false);
        let images = no_grad(|| self.g.forward(&z));
        self.g.set_training(true);
        Ok(images?.to_device(Device::Cpu)?)
    }

    fn value_range(&self) -> (f32, f32) {
        (-1.0, 1.0)
    }

    fn checkpoint(&self) -> Checkpoint {
        DcganTrainer::checkpoint(self)
    }

    fn restore(&mut self, ck: &Checkpoint) -> std::result::Result<(), CheckpointError> {
        DcganTrainer::restore(self, ck)
    }

    fn device(&self) -> Device {
        self.device
    }

    fn to_device(&mut self, device: Device) -> std::result::Result<(), BoxError> {
        Ok(DcganTrainer::to_device(self, device)?)
    }
}

impl_trainer_device!(DcganTrainer);
