use saddle_engine::{Grads, Result, Tensor};

/// Scales the gradients of `params` so their joint L2 norm is at most `max_norm` (as PyTorch's
/// `clip_grad_norm_`, with its 1e-6 guard). Returns the norm before clipping.
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
