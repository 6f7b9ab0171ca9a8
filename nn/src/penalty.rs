//! Gradient penalties on a discriminator's input gradient, the regularisers built on
//! [`Tensor::grad_with_graph`]: WGAN-GP's two-sided penalty on random interpolates (Gulrajani et
//! al. 2017) and R1 on real data (Mescheder et al. 2018). Each returns a 0-d tensor whose
//! backward reaches the discriminator's parameters through its input gradient.

use saddle_engine::{Error, Result, Rng, Tensor};

/// Per-row gradient of `critic`'s summed scores at `x`, flattened to `[N, numel / N]`, with
/// history (so a penalty on it can be backpropagated).
fn input_gradients(critic: impl Fn(&Tensor) -> Result<Tensor>, x: &Tensor) -> Result<Tensor> {
    let n = *x.shape().first().ok_or_else(|| {
        Error::bad_shape("gradient penalty", x.shape(), "needs a batch dimension")
    })?;
    if n == 0 {
        return Err(Error::bad_shape(
            "gradient penalty",
            x.shape(),
            "needs at least one row",
        ));
    }
    let x = x.detach().with_requires_grad(true);
    let scores = critic(&x)?.sum_all()?;
    let g = scores.grad_with_graph(&[&x])?.remove(0);
    g.reshape(&[n, x.numel() / n])
}

/// WGAN-GP's penalty `mean((‖∇D(x̂)‖₂ - 1)²)` over the rows, with `x̂ = ε·real + (1 - ε)·fake`
/// and one `ε ~ U(0, 1)` per row drawn from `rng`. Multiply by the weight (10 in the paper) and
/// add to the critic's loss. `real` and `fake` must have the same shape; `fake` is detached (the
/// penalty trains the critic only). The norm is `sqrt(Σ g² + 1e-12)`, finite where a gradient
/// is exactly zero.
///
/// ```
/// use saddle_nn::engine::{Device, Rng, Tensor};
/// use saddle_nn::penalty::gradient_penalty;
/// // A linear critic D(x) = 2·Σx has input gradient 2 everywhere: ‖∇D‖ = 2·√4 = 4 per row.
/// let real = Tensor::zeros(&[3, 4], saddle_nn::engine::DType::F64, Device::Cpu)?;
/// let fake = Tensor::ones(&[3, 4], saddle_nn::engine::DType::F64, Device::Cpu)?;
/// let gp = gradient_penalty(|x| x.sum(&[1], false)?.mul_scalar(2.0), &real, &fake, &mut Rng::new(0))?;
/// assert!((gp.to_scalar()? - 9.0).abs() < 1e-9); // (4 - 1)²
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub fn gradient_penalty(
    critic: impl Fn(&Tensor) -> Result<Tensor>,
    real: &Tensor,
    fake: &Tensor,
    rng: &mut Rng,
) -> Result<Tensor> {
    if real.shape() != fake.shape() {
        return Err(Error::shape(
            "gradient_penalty",
            real.shape(),
            fake.shape(),
            "real and fake batches must have the same shape",
        ));
    }
    let n = *real.shape().first().ok_or_else(|| {
        Error::bad_shape("gradient_penalty", real.shape(), "needs a batch dimension")
    })?;
    let mut eps_shape = vec![1; real.rank()];
    eps_shape[0] = n;
    let eps = Tensor::rand(&eps_shape, 0.0, 1.0, real.dtype(), real.device(), rng)?;
    let fake = fake.detach();
    let mixed = eps
        .mul(&real.detach())?
        .add(&eps.rsub_scalar(1.0)?.mul(&fake)?)?;
    let g = input_gradients(critic, &mixed)?;
    let norms = g.square()?.sum(&[1], false)?.add_scalar(1e-12)?.sqrt()?;
    norms.sub_scalar(1.0)?.square()?.mean_all()
}

/// R1's penalty `mean(‖∇D(x)‖₂²)` over the rows of `real` (not halved, not weighted: the
/// paper's term is `γ/2` times this). Added to D's loss it pulls D's gradient on real data to
/// zero.
///
/// ```
/// use saddle_nn::engine::{DType, Device, Tensor};
/// use saddle_nn::penalty::r1_penalty;
/// // D(x) = Σ x²: ∇D = 2x, so ‖∇D‖² = 4·Σx² per row.
/// let real = Tensor::from_vec(vec![1.0f64, 2.0, 0.0, 3.0], &[2, 2], Device::Cpu)?;
/// let r1 = r1_penalty(|x| x.square()?.sum(&[1], false), &real)?;
/// assert!((r1.to_scalar()? - (4.0 * 5.0 + 4.0 * 9.0) / 2.0).abs() < 1e-9);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub fn r1_penalty(critic: impl Fn(&Tensor) -> Result<Tensor>, real: &Tensor) -> Result<Tensor> {
    input_gradients(critic, real)?
        .square()?
        .sum(&[1], false)?
        .mean_all()
}
