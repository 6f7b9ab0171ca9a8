use saddle_engine::{Grads, Result, Tensor};

/// Scales the gradients of `params` so their joint L2 norm is at most `max_norm` (as PyTorch's
/// `clip_grad_norm_`, with its 1e-6 guard). Returns the norm before clipping.
///
/// ```
/// use saddle_nn::engine::{Device, Tensor};
/// use saddle_nn::optim::clip_grad_norm;
///
/// let p = Tensor::from_vec(vec![3.0f64, 4.0], &[2], Device::Cpu)?.with_requires_grad(true);
/// // loss = p · p / 2 has gradient p, of norm 5.
/// let mut grads = p.square()?.sum_all()?.mul_scalar(0.5)?.backward()?;
/// let params = vec![("p".to_string(), p.clone())];
/// assert_eq!(clip_grad_norm(&mut grads, &params, 1.0)?, 5.0);
/// let g = grads.get(&p).unwrap().to_vec::<f64>()?;
/// assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub fn clip_grad_norm(
    grads: &mut Grads,
    params: &[(String, Tensor)],
    max_norm: f64,
) -> Result<f64> {
    let mut total = 0.0;
    for (_, p) in params {
        if let Some(g) = grads.get(p) {
            total += g.to_vec_f64()?.iter().map(|v| v * v).sum::<f64>();
        }
    }
    let norm = total.sqrt();
    let scale = max_norm / (norm + 1e-6);
    if scale < 1.0 {
        for (_, p) in params {
            if let Some(g) = grads.get(p) {
                let scaled = g.mul_scalar(scale)?;
                grads.insert(p, scaled);
            }
        }
    }
    Ok(norm)
}
