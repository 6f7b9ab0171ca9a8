//! A GAN of your own: a model type holding G, D and their optimisers, trained on a ring of 8
//! Gaussians, scored by the modes it covers. `cargo run --release --example custom_gan`

use saddle_engine::{no_grad, DType, Device, Result, Rng, Tensor};
use saddle_gan::{data::Mixture2d, metrics::mode_coverage};
use saddle_nn::optim::{Adam, AdamConfig, Optimizer};
use saddle_nn::{Activation, Linear, Module, ModuleExt, Sequential, SpectralNorm};

/// G's input: 8 standard normal numbers per sample.
fn noise(n: usize, rng: &mut Rng) -> Result<Tensor> {
    Tensor::randn(&[n, 8], 0.0, 1.0, DType::F32, Device::Cpu, rng)
}

struct RingGan {
    g: Sequential,
    d: Sequential,
    opt_g: Adam,
    opt_d: Adam,
}

/// Linear layers and leaky ReLUs; D's spectrally normalised, so that G spreads over every mode.
fn mlp(sizes: &[usize], spectral_norm: bool, rng: &mut Rng) -> Result<Sequential> {
    let mut net = Sequential::new();
    for (i, pair) in sizes.windows(2).enumerate() {
        let layer = Linear::new(pair[0], pair[1], true, DType::F32, rng)?;
        net = match spectral_norm {
            true => net.push(SpectralNorm::new(layer, rng)?),
            false => net.push(layer),
        };
        if i + 2 < sizes.len() {
            net = net.push(Activation::LeakyRelu(0.2));
        }
    }
    Ok(net)
}

impl RingGan {
    fn new(rng: &mut Rng) -> Result<Self> {
        let g = mlp(&[8, 128, 128, 2], false, rng)?;
        let d = mlp(&[2, 128, 128, 1], true, rng)?;
        let adam = AdamConfig {
            beta1: 0.5,
            ..AdamConfig::default()
        };
        let opt_g = Adam::with_lr(g.named_parameters(), 1e-3, adam);
        let opt_d = Adam::with_lr(d.named_parameters(), 1e-3, adam);
        Ok(RingGan { g, d, opt_g, opt_d })
    }

    /// D minimises softplus(-D(x)) + softplus(D(G(z))), then G softplus(-D(G(z))).
    fn step(&mut self, real: &Tensor, rng: &mut Rng) -> Result<(f64, f64)> {
        let n = real.shape()[0];
        let fake = no_grad(|| self.g.forward(&noise(n, rng)?))?;
        let real_term = self.d.forward(real)?.neg()?.softplus()?.mean_all()?;
        let loss_d = real_term.add(&self.d.forward(&fake)?.softplus()?.mean_all()?)?;
        self.opt_d.step(&loss_d.backward()?)?;
        let fake = self.g.forward(&noise(n, rng)?)?;
        let loss_g = self.d.forward(&fake)?.neg()?.softplus()?.mean_all()?;
        self.opt_g.step(&loss_g.backward()?)?; // D's weights get gradients too; only G's step
        Ok((loss_d.to_scalar()?, loss_g.to_scalar()?))
    }
}

fn main() -> Result<()> {
    let (mut rng, ring) = (Rng::new(0), Mixture2d::ring(8, 2.0, 0.05));
    let mut gan = RingGan::new(&mut rng)?;
    for step in 1..=3000 {
        let (loss_d, loss_g) = gan.step(&ring.sample(256, DType::F32, &mut rng)?, &mut rng)?;
        if step % 1000 == 0 {
            println!("step {step}: loss D {loss_d:.3}, G {loss_g:.3}");
        }
    }
    let samples = no_grad(|| gan.g.forward(&noise(2000, &mut rng)?))?.to_vec_f64()?;
    let points: Vec<[f64; 2]> = samples.chunks(2).map(|p| [p[0], p[1]]).collect();
    let c = mode_coverage(&ring, &points, 0.25); // a mode needs a quarter of an equal share
    let (covered, share) = (c.covered, 100.0 * c.high_quality);
    println!("modes covered: {covered} of 8; samples within 3 sigma of one: {share:.1}%");
    Ok(())
}
