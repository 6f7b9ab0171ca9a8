//! Gradients of gradients through the layers a discriminator is built from: a BigGAN-style
//! critic (spectrally normalised residual down-blocks, the non-local block, global sum pooling,
//! a spectrally normalised linear head), layer norm, and GAN 2014's maxout + dropout layers,
//! checked against finite differences of the first derivatives (f64).

use saddle_engine::gradcheck::check_second_derivatives;
use saddle_engine::{DType, Device, Result, Rng, Tensor};
use saddle_nn::init::WeightInit;
use saddle_nn::{LayerNorm, Linear, Module, ResBlockDown, SelfAttention, SpectralNorm};

fn input(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    Tensor::randn(shape, 0.0, 1.0, DType::F64, Device::Cpu, &mut rng)
        .unwrap()
        .with_requires_grad(true)
}

#[test]
fn biggan_style_critic() -> Result<()> {
    let mut rng = Rng::new(7);
    let init = WeightInit::Orthogonal;
    let mut first = ResBlockDown::new(1, 8, true, false, init, DType::F64, &mut rng)?;
    let mut attention = SelfAttention::new(8, DType::F64, &mut rng)?;
    // gamma starts at 0, which would leave the block out of the function.
    attention.gamma.assign(&Tensor::scalar(0.7f64))?;
    let mut second = ResBlockDown::new(8, 8, false, true, init, DType::F64, &mut rng)?;
    let mut head = SpectralNorm::new(Linear::new(8, 1, true, DType::F64, &mut rng)?, &mut rng)?;
    // Evaluation mode: no power iteration between the finite differences' forwards.
    first.set_training(false);
    attention.set_training(false);
    second.set_training(false);
    head.set_training(false);
    let critic = |x: &[Tensor]| -> Result<Tensor> {
        let h = first.forward(&x[0])?;
        let h = attention.forward(&h)?;
        let h = second.forward(&h)?.relu()?.global_sum_pool2d()?;
        head.forward(&h)
    };
    check_second_derivatives(critic, &[input(&[2, 1, 8, 8], 1)], 1e-5, 1e-6, 1e-4)
        .map_err(saddle_engine::Error::Autograd)
}

#[test]
fn layer_norm_maxout_and_dropout() -> Result<()> {
    let mut rng = Rng::new(3);
    let norm = LayerNorm::new(&[6], 1e-5, DType::F64)?;
    let linear = Linear::new(6, 8, true, DType::F64, &mut rng)?;
    let f = |x: &[Tensor]| -> Result<Tensor> {
        let h = linear.forward(&norm.forward(&x[0])?)?.maxout(2, 1)?;
        h.dropout(0.3, &mut Rng::new(11), true)?.tanh()
    };
    check_second_derivatives(f, &[input(&[3, 6], 2)], 1e-5, 1e-6, 1e-4)
        .map_err(saddle_engine::Error::Autograd)
}
