//! The first end-to-end training: a small MLP GAN on a 2-D Gaussian mixture, scored by mode
//! coverage. Small enough to run in a test in seconds.

use crate::data::Mixture2d;
use crate::metrics::{mode_coverage, ModeCoverage};
use saddle_nn::engine::{no_grad, DType, Device, Result, Rng, Tensor};
use saddle_nn::optim::{Adam, AdamConfig, Optimizer};
use saddle_nn::penalty::gradient_penalty;
use saddle_nn::{Activation, Linear, Module, ModuleExt, Sequential, SpectralNorm};

/// Settings of the toy run.
#[derive(Clone, Debug)]
pub struct ToyConfig {
    /// Training steps (one D and one G update each).
    pub steps: usize,
    /// Samples per batch.
    pub batch: usize,
    /// Width of both hidden layers of G and D.
    pub hidden: usize,
    /// Size of G's noise input.
    pub latent: usize,
    /// Adam's learning rate for both networks.
    pub lr: f64,
    /// Seeds initialisation, noise and data.
    pub seed: u64,
    /// Spectral normalisation on D's layers (Miyato et al.), which keeps D smooth enough that G
    /// spreads over every mode instead of chasing a few.
    pub spectral_norm: bool,
    /// WGAN-GP (Gulrajani et al. 2017) with this penalty weight instead of the non-saturating
    /// loss: D is a critic trained `n_critic` times per G step on `D(fake) - D(real) + weight ·
    /// (‖∇D(x̂)‖ - 1)²`, G on `-D(G(z))`, Adam β = (0.5, 0.9) as the paper's toy runs.
    pub wgan_gp: Option<f64>,
    /// D updates per G update under WGAN-GP (the paper's 5); the standard loss uses 1.
    pub n_critic: usize,
}

impl Default for ToyConfig {
    fn default() -> Self {
        ToyConfig {
            steps: 2500,
            batch: 256,
            hidden: 128,
            latent: 8,
            lr: 1e-3,
            seed: 0,
            spectral_norm: false,
            wgan_gp: None,
            n_critic: 5,
        }
    }
}

fn mlp(
    sizes: &[usize],
    activation: Activation,
    spectral_norm: bool,
    rng: &mut Rng,
) -> Result<Sequential> {
    let mut net = Sequential::new();
    for (i, w) in sizes.windows(2).enumerate() {
        let layer = Linear::new(w[0], w[1], true, DType::F32, rng)?;
        net = if spectral_norm {
            net.push(SpectralNorm::new(layer, rng)?)
        } else {
            net.push(layer)
        };
        if i + 2 < sizes.len() {
            net = net.push(activation);
        }
    }
    Ok(net)
}

/// Losses after one training step, for progress reports.
#[derive(Clone, Copy, Debug)]
pub struct ToyProgress {
    /// The step just finished (from 1).
    pub step: usize,
    /// D's loss at that step.
    pub loss_d: f64,
    /// G's loss at that step.
    pub loss_g: f64,
}

/// Trains a GAN (non-saturating loss, one D step per G step, Adam β1 = 0.5; or WGAN-GP, see
/// [`ToyConfig::wgan_gp`]) on `mixture` and
/// scores 2,000 samples drawn after training. `progress` is called every `report_every` steps.
pub fn train_toy_gan(
    mixture: &Mixture2d,
    cfg: &ToyConfig,
    report_every: usize,
    progress: &mut dyn FnMut(ToyProgress),
) -> Result<(Vec<[f64; 2]>, ModeCoverage)> {
    let mut rng = Rng::new(cfg.seed);
    let g = mlp(
        &[cfg.latent, cfg.hidden, cfg.hidden, 2],
        Activation::Relu,
        false,
        &mut rng,
    )?;
    let d = mlp(
        &[2, cfg.hidden, cfg.hidden, 1],
        Activation::LeakyRelu(0.2),
        cfg.spectral_norm,
        &mut rng,
    )?;
    let adam = AdamConfig {
        beta1: 0.5,
        beta2: if cfg.wgan_gp.is_some() { 0.9 } else { 0.999 },
        ..AdamConfig::default()
    };
    let mut opt_g = Adam::with_lr(g.named_parameters(), cfg.lr, adam);
    let mut opt_d = Adam::with_lr(d.named_parameters(), cfg.lr, adam);
    let ones = Tensor::ones(&[cfg.batch, 1], DType::F32, Device::Cpu)?;
    let zeros = Tensor::zeros(&[cfg.batch, 1], DType::F32, Device::Cpu)?;
    let noise = |rng: &mut Rng, n: usize| {
        Tensor::randn(&[n, cfg.latent], 0.0, 1.0, DType::F32, Device::Cpu, rng)
    };
    let critic_steps = if cfg.wgan_gp.is_some() {
        cfg.n_critic.max(1)
    } else {
        1
    };
    for step in 1..=cfg.steps {
        let mut loss_d = None;
        for _ in 0..critic_steps {
            let real = mixture.sample(cfg.batch, DType::F32, &mut rng)?;
            let fake = g.forward(&noise(&mut rng, cfg.batch)?)?.detach();
            let loss = match cfg.wgan_gp {
                // Critic: fake scores down, real scores up, unit gradient norm in between.
                Some(weight) => {
                    let gp = gradient_penalty(|x| d.forward(x), &real, &fake, &mut rng)?;
                    d.forward(&fake)?
                        .mean_all()?
                        .sub(&d.forward(&real)?.mean_all()?)?
                        .add(&gp.mul_scalar(weight)?)?
                }
                // D: real -> 1, fake -> 0.
                None => d
                    .forward(&real)?
                    .binary_cross_entropy_with_logits(&ones)?
                    .add(&d.forward(&fake)?.binary_cross_entropy_with_logits(&zeros)?)?,
            };
            opt_d.step(&loss.backward()?)?;
            loss_d = Some(loss);
        }
        let loss_d = loss_d.expect("at least one D update");
        // G step: the non-saturating fake -> 1, or the critic's score up. Only G's parameters
        // are updated.
        let scores = d.forward(&g.forward(&noise(&mut rng, cfg.batch)?)?)?;
        let loss_g = match cfg.wgan_gp {
            Some(_) => scores.mean_all()?.neg()?,
            None => scores.binary_cross_entropy_with_logits(&ones)?,
        };
        opt_g.step(&loss_g.backward()?)?;
        if report_every > 0 && (step % report_every == 0 || step == cfg.steps) {
            let (loss_d, loss_g) = (loss_d.to_scalar()?, loss_g.to_scalar()?);
            if !loss_d.is_finite() || !loss_g.is_finite() {
                return Err(saddle_nn::engine::Error::InvalidArgument {
                    op: "train_toy_gan",
                    reason: format!(
                        "loss became non-finite at step {step} (D {loss_d}, G {loss_g})"
                    ),
                });
            }
            progress(ToyProgress {
                step,
                loss_d,
                loss_g,
            });
        }
    }
    let samples = no_grad(|| g.forward(&noise(&mut rng, 2000)?))?.to_vec_f64()?;
    let points: Vec<[f64; 2]> = samples.chunks(2).map(|p| [p[0], p[1]]).collect();
    let coverage = mode_coverage(mixture, &points, 0.25);
    Ok((points, coverage))
}
