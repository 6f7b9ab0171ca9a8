//! Batch normalisation (training statistics and evaluation with given statistics) and L2
//! normalisation, each a fused op with a fused backward.

use super::axis;
use super::misc::with_contiguous_pair;
use crate::backend::backend;
use crate::{with_float, Element, Error, Float, Result, Tensor};
use saddle_kernels::cpu::lanes::Lanes;
use saddle_kernels::cpu::norm::{self, Channels};

/// What [`Tensor::batch_norm`] returns: the normalised (and affine-transformed) output and the
/// batch statistics per channel. The output, `mean` and `var` record autodiff history (a ladder
/// network normalises its reconstructions with the clean pass's statistics and differentiates
/// through them); `var_unbiased` does not (a layer only folds it into its running statistics).
#[derive(Clone, Debug)]
pub struct BatchNormOutput {
    /// `gamma * (x - mean) / sqrt(var + eps) + beta`, the shape of the input.
    pub output: Tensor,
    /// Batch mean per channel, `[C]`; differentiable with respect to the input.
    pub mean: Tensor,
    /// Biased (population) batch variance per channel, `[C]`: the one used to normalise;
    /// differentiable with respect to the input.
    pub var: Tensor,
    /// Unbiased batch variance per channel, `[C]` (`var * M / (M - 1)`, `M` values per channel):
    /// the one PyTorch folds into the running variance.
    pub var_unbiased: Tensor,
}

/// Checks a per-channel parameter (`gamma`, `beta`, `mean`, `var`) against `x`.
fn check_channel_param(op: &'static str, x: &Tensor, p: &Tensor, what: &str) -> Result<()> {
    x.check_same(op, p)?;
    if p.shape() != [x.shape()[1]] {
        return Err(Error::shape(
            op,
            x.shape(),
            p.shape(),
            format!("{what} must have shape [C] = [{}]", x.shape()[1]),
        ));
    }
    Ok(())
}

fn check_input(op: &'static str, x: &Tensor, eps: f64) -> Result<Channels> {
    if x.rank() < 2 {
        return Err(Error::bad_shape(
            op,
            x.shape(),
            "needs an input of shape [N, C, ...]",
        ));
    }
    if !(eps >= 0.0 && eps.is_finite()) {
        return Err(Error::arg(
            op,
            format!("eps must be finite and >= 0, got {eps}"),
        ));
    }
    Ok(Channels::of_shape(x.shape()))
}

/// The values of an optional per-channel parameter, or `fill` repeated.
fn param_values<T: Element>(p: Option<&Tensor>, channels: usize, fill: T) -> Result<Vec<T>> {
    match p {
        Some(t) => t.to_vec::<T>(),
        None => Ok(vec![fill; channels]),
    }
}

/// Positions of the optional inputs in a recorded input list `[x, gamma?, beta?]`, and the list.
fn recorded_inputs<'a>(
    x: &'a Tensor,
    gamma: Option<&'a Tensor>,
    beta: Option<&'a Tensor>,
) -> (Vec<&'a Tensor>, Option<usize>, Option<usize>) {
    let mut inputs = vec![x];
    let gi = gamma.map(|g| {
        inputs.push(g);
        inputs.len() - 1
    });
    let bi = beta.map(|b| {
        inputs.push(b);
        inputs.len() - 1
    });
    (inputs, gi, bi)
}

/// Records the batch statistics of `x` as functions of `x`: `d mean_c / d x = 1 / M` and
/// `d var_c / d x = 2 (x - mean_c) / M` on channel `c`'s values (the term through the mean
/// vanishes because deviations sum to zero). Built from dispatched ops, so it runs on every
/// device; nothing is recorded (and nothing costs) unless `x` requires a gradient.
fn differentiable_stats(
    x: &Tensor,
    mean: Tensor,
    var: Tensor,
    geo: Channels,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "batch_norm_stats";
    let mut channel_shape = vec![1; x.rank()];
    channel_shape[1] = geo.channels;
    let inv_m = 1.0 / geo.per_channel() as f64;
    let shape = x.shape().to_vec();
    let mean_grad = {
        let (channel_shape, shape) = (channel_shape.clone(), shape.clone());
        mean.record(OP, &[x], move |ctx| {
            let dx = ctx
                .g
                .reshape(&channel_shape)?
                .mul_scalar(inv_m)?
                .expand(&shape)?
                .contiguous()?;
            Ok(vec![Some(dx)])
        })
    };
    let saved_mean = mean_grad.detach();
    let dims: Vec<usize> = (0..x.rank()).filter(|&d| d != 1).collect();
    let var_grad = var.record(OP, &[x], move |ctx| {
        let x = &ctx.inputs[0];
        let mean = if ctx.create_graph {
            x.mean(&dims, true)?
        } else {
            saved_mean.reshape(&channel_shape)?
        };
        let dx = x
            .sub(&mean)?
            .mul(&ctx.g.reshape(&channel_shape)?.mul_scalar(2.0 * inv_m)?)?;
        Ok(vec![Some(dx)])
    });
    Ok((mean_grad, var_grad))
}

/// Batch norm's gradients written with recording ops, for [`Tensor::grad_with_graph`]:
/// `[dx, dgamma?, dbeta?]` for the recorded inputs `[x, gamma?, beta?]`. With `stats` None the
/// statistics are the batch's, recomputed from `x` (training: the input gradient includes the
/// paths through the mean and the variance); with `Some((mean, var))` they are constants
/// (evaluation).
fn batch_norm_graph_grads(
    ctx: &crate::autograd::GradCtx,
    eps: f64,
    (gi, bi): (Option<usize>, Option<usize>),
    stats: Option<(&Tensor, &Tensor)>,
) -> Result<Vec<Option<Tensor>>> {
    let (x, dy, needs) = (&ctx.inputs[0], ctx.g, ctx.needs);
    let c = x.shape()[1];
    let mut channel_shape = vec![1; x.rank()];
    channel_shape[1] = c;
    let dims: Vec<usize> = (0..x.rank()).filter(|&d| d != 1).collect();
    let (mean, var) = match stats {
        Some((mean, var)) => (mean.reshape(&channel_shape)?, var.reshape(&channel_shape)?),
        None => {
            let mean = x.mean(&dims, true)?;
            let var = x.sub(&mean)?.square()?.mean(&dims, true)?;
            (mean, var)
        }
    };
    let invstd = var.add_scalar(eps)?.sqrt()?.recip()?;
    let xhat = x.sub(&mean)?.mul(&invstd)?;
    let sum_dy = dy.sum(&dims, true)?;
    let sum_dy_xhat = dy.mul(&xhat)?.sum(&dims, true)?;
    let mut grads: Vec<Option<Tensor>> = vec![None; needs.len()];
    if needs[0] {
        let scale = match gi {
            Some(i) => ctx.inputs[i].reshape(&channel_shape)?.mul(&invstd)?,
            None => invstd.clone(),
        };
        let centred_dy = if stats.is_some() {
            dy.clone()
        } else {
            let m = (x.numel() / c) as f64;
            dy.sub(&sum_dy.div_scalar(m)?)?
                .sub(&xhat.mul(&sum_dy_xhat)?.div_scalar(m)?)?
        };
        grads[0] = Some(centred_dy.mul(&scale)?);
    }
    if let Some(i) = gi.filter(|&i| needs[i]) {
        grads[i] = Some(sum_dy_xhat.reshape(&[c])?);
    }
    if let Some(i) = bi.filter(|&i| needs[i]) {
        grads[i] = Some(sum_dy.reshape(&[c])?);
    }
    Ok(grads)
}

impl Tensor {
    /// Batch normalisation with batch statistics, as in training: normalises over every dimension
    /// but dimension 1 (`[N, C]`, `[N, C, L]`, `[N, C, H, W]`, ...) using the biased batch
    /// variance, then applies `gamma * xhat + beta` when given (`[C]` each).
    ///
    /// One fused op: statistics, normalisation and affine in two passes over `x`; its backward is
    /// the closed form `dx = gamma / sigma / M * (M dy - sum(dy) - xhat * sum(dy * xhat))`,
    /// `dgamma = sum(dy * xhat)`, `dbeta = sum(dy)`, with both sums taken per channel in one pass.
    /// Needs more than one value per channel (as PyTorch in training mode); also fails for an
    /// input of rank below 2, a negative or non-finite `eps`, or a `gamma`/`beta` that is not
    /// `[C]`.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// # use saddle_engine::gradcheck::assert_close;
    /// // [N = 2, C = 2]: channel 0 holds 1 and 3, channel 1 holds 10 and 30.
    /// let x = Tensor::from_vec(vec![1.0f64, 10.0, 3.0, 30.0], &[2, 2], Device::Cpu)?;
    /// let bn = x.batch_norm(None, None, 0.0)?;
    /// assert_close(&bn.mean, &[2.0, 20.0], 1e-12);
    /// assert_close(&bn.var, &[1.0, 100.0], 1e-12); // divided by M = 2
    /// assert_close(&bn.var_unbiased, &[2.0, 200.0], 1e-12); // divided by M - 1
    /// assert_close(&bn.output, &[-1.0, -1.0, 1.0, 1.0], 1e-12);
    ///
    /// let gamma = Tensor::from_vec(vec![2.0f64, 1.0], &[2], Device::Cpu)?;
    /// let beta = Tensor::from_vec(vec![0.0f64, 5.0], &[2], Device::Cpu)?;
    /// let bn = x.batch_norm(Some(&gamma), Some(&beta), 0.0)?;
    /// assert_close(&bn.output, &[-2.0, 4.0, 2.0, 6.0], 1e-12);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn batch_norm(
        &self,
        gamma: Option<&Tensor>,
        beta: Option<&Tensor>,
        eps: f64,
    ) -> Result<BatchNormOutput> {
        const OP: &str = "batch_norm";
        let geo = check_input(OP, self, eps)?;
        for (p, what) in [(gamma, "gamma"), (beta, "beta")] {
            if let Some(p) = p {
                check_channel_param(OP, self, p, what)?;
            }
        }
        let m = geo.per_channel();
        if m <= 1 {
            return Err(Error::bad_shape(
                OP,
                self.shape(),
                format!("needs more than 1 value per channel, got {m}"),
            ));
        }
        let device = backend(self.device());
        let values = device.batch_norm(OP, self, gamma, beta, eps, geo)?;
        let var_unbiased = values.var.mul_scalar(m as f64 / (m - 1) as f64)?;
        let (inputs, gi, bi) = recorded_inputs(self, gamma, beta);
        let (saved_mean, invstd) = (values.mean.clone(), values.invstd);
        let gamma_values = gamma.map(Tensor::detach);
        let output = values.output.record(OP, &inputs, move |ctx| {
            if ctx.create_graph {
                return batch_norm_graph_grads(ctx, eps, (gi, bi), None);
            }
            let (xs, dy, needs) = (&ctx.inputs[0], ctx.g, ctx.needs);
            let grads = backend(xs.device()).batch_norm_backward(
                OP,
                xs,
                dy,
                &saved_mean,
                &invstd,
                gamma_values.as_ref(),
                geo,
                needs[0],
            )?;
            let mut out: Vec<Option<Tensor>> = vec![None; needs.len()];
            out[0] = grads.dx;
            if let Some(i) = gi.filter(|&i| needs[i]) {
                out[i] = Some(grads.sum_dy_xhat);
            }
            if let Some(i) = bi.filter(|&i| needs[i]) {
                out[i] = Some(grads.sum_dy);
            }
            Ok(out)
        });
        let (mean, var) = differentiable_stats(self, values.mean, values.var, geo)?;
        Ok(BatchNormOutput {
            output,
            mean,
            var,
            var_unbiased,
        })
    }

    /// Batch normalisation with given statistics (evaluation mode, running statistics):
    /// `gamma * (x - mean) / sqrt(var + eps) + beta` per channel (dimension 1). Differentiable
    /// with respect to `x`, `gamma` and `beta`; `mean` and `var` are treated as constants. The
    /// output has the input's shape. Fails for an input of rank below 2, a parameter that is
    /// not `[C]`, a negative or non-finite `eps`, or `var + eps <= 0` (on every device).
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// # use saddle_engine::gradcheck::assert_close;
    /// let x = Tensor::from_vec(vec![0.0f64, 4.0, 2.0, 6.0], &[2, 2], Device::Cpu)?; // [N, C]
    /// let mean = Tensor::from_vec(vec![1.0f64, 5.0], &[2], Device::Cpu)?;
    /// let var = Tensor::from_vec(vec![4.0f64, 1.0], &[2], Device::Cpu)?;
    /// let beta = Tensor::from_vec(vec![0.0f64, 1.0], &[2], Device::Cpu)?;
    /// let y = x.batch_norm_eval(&mean, &var, None, Some(&beta), 0.0)?;
    /// assert_close(&y, &[-0.5, 0.0, 0.5, 2.0], 1e-12);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn batch_norm_eval(
        &self,
        mean: &Tensor,
        var: &Tensor,
        gamma: Option<&Tensor>,
        beta: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor> {
        const OP: &str = "batch_norm_eval";
        let geo = check_input(OP, self, eps)?;
        check_channel_param(OP, self, mean, "mean")?;
        check_channel_param(OP, self, var, "var")?;
        for (p, what) in [(gamma, "gamma"), (beta, "beta")] {
            if let Some(p) = p {
                check_channel_param(OP, self, p, what)?;
            }
        }
        let c = geo.channels;
        // var + eps must be positive on every device (C values read back: on a device this
        // waits for the work that made them, acceptable in evaluation).
        if let Some(v) = var
            .to_vec_f64()?
            .into_iter()
            .find(|v| (v + eps).partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater))
        {
            return Err(Error::arg(
                OP,
                format!("var + eps must be positive, got var {v} with eps {eps}"),
            ));
        }
        // On a device: the same per-channel affine map as dispatched broadcasting ops (mean and
        // var detached: constants, as on the CPU).
        on_cuda!(self.is_cuda(), {
            let mut shape = vec![1; self.rank()];
            shape[1] = c;
            let invstd = var.detach().add_scalar(eps)?.sqrt()?.recip()?;
            let mut y = self
                .sub(&mean.detach().reshape(&shape)?)?
                .mul(&invstd.reshape(&shape)?)?;
            if let Some(g) = gamma {
                y = y.mul(&g.reshape(&shape)?)?;
            }
            if let Some(b) = beta {
                y = y.add(&b.reshape(&shape)?)?;
            }
            Ok(y)
        });
        with_float!(self, OP, |T| {
            let mean = mean.to_vec::<T>()?;
            let var = var.to_vec::<T>()?;
            let invstd: Vec<T> = var
                .iter()
                .map(|&v| T::ONE / (v + T::from_f64(eps)).sqrt())
                .collect();
            let g = param_values::<T>(gamma, c, T::ONE)?;
            let scale: Vec<T> = invstd.iter().zip(&g).map(|(&s, &g)| s * g).collect();
            let shift = param_values::<T>(beta, c, T::ZERO)?;
            let y = self.with_contiguous(OP, |x: &[T]| {
                norm::channel_affine(x, geo, &mean, &scale, &shift)
            })?;
            let (inputs, gi, bi) = recorded_inputs(self, gamma, beta);
            let stats = (
                Tensor::from_data(mean.clone(), &[c]),
                Tensor::from_data(var.clone(), &[c]),
            );
            Ok(
                Tensor::from_data(y, self.shape()).record(OP, &inputs, move |ctx| {
                    if ctx.create_graph {
                        return batch_norm_graph_grads(
                            ctx,
                            eps,
                            (gi, bi),
                            Some((&stats.0, &stats.1)),
                        );
                    }
                    let (xs, dy, needs) = (&ctx.inputs[0], ctx.g, ctx.needs);
                    let mut grads: Vec<Option<Tensor>> = vec![None; needs.len()];
                    if needs[0] {
                        // dx = dy * gamma / sigma per channel.
                        let zeros = vec![T::ZERO; c];
                        let dx = dy.with_contiguous(OP, |dy: &[T]| {
                            norm::channel_affine(dy, geo, &zeros, &scale, &zeros)
                        })?;
                        grads[0] = Some(Tensor::from_data(dx, xs.shape()));
                    }
                    if gi.is_some_and(|i| needs[i]) || bi.is_some_and(|i| needs[i]) {
                        let (sum_dy, sum_dy_xhat) =
                            with_contiguous_pair(xs, dy, OP, |x: &[T], dy: &[T]| {
                                norm::channel_grad_sums(x, dy, geo, &mean, &invstd)
                            })?;
                        if let Some(i) = gi.filter(|&i| needs[i]) {
                            grads[i] = Some(Tensor::from_data(sum_dy_xhat, &[c]));
                        }
                        if let Some(i) = bi.filter(|&i| needs[i]) {
                            grads[i] = Some(Tensor::from_data(sum_dy, &[c]));
                        }
                    }
                    Ok(grads)
                }),
            )
        })
    }

    /// `x / max(||x||_2, eps)` along `dim` (negative counts from the end), as PyTorch's
    /// `F.normalize(x, p=2, dim, eps)`, in the input's shape. Fused, with a fused backward. Fails
    /// when `dim` is out of range or `eps` is negative or not finite.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// # use saddle_engine::gradcheck::assert_close;
    /// let x = Tensor::from_vec(vec![3.0f64, 4.0, 0.0, 0.0], &[2, 2], Device::Cpu)?;
    /// // Each row scaled to unit length; the zero row stays zero (divided by eps).
    /// assert_close(&x.l2_normalize(-1, 1e-12)?, &[0.6, 0.8, 0.0, 0.0], 1e-12);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn l2_normalize(&self, dim: isize, eps: f64) -> Result<Tensor> {
        const OP: &str = "l2_normalize";
        let d = axis(OP, self.shape(), dim)?;
        if !(eps >= 0.0 && eps.is_finite()) {
            return Err(Error::arg(
                OP,
                format!("eps must be finite and >= 0, got {eps}"),
            ));
        }
        // On a device: x / max(||x||, eps) from dispatched ops, values only; the recorded
        // backward below is one formula for every device.
        let lanes = Lanes::along(self.shape(), d);
        let out = cuda_or!(
            self.is_cuda(),
            crate::no_grad(|| {
                let norm = self
                    .square()?
                    .sum(&[d], true)?
                    .sqrt()?
                    .clamp(eps, f64::INFINITY)?;
                self.div(&norm)
            }),
            with_float!(self, OP, |T| {
                let y = self.with_contiguous(OP, |x: &[T]| {
                    norm::l2_normalize(x, lanes, T::from_f64(eps))
                })?;
                Tensor::from_data(y, self.shape())
            })
        );
        Ok(out.record(OP, &[self], move |ctx| {
            let (x, g) = (&ctx.inputs[0], ctx.g);
            if ctx.create_graph || g.is_cuda() {
                // r = ||x||: dx = (g - y·Σ g·y) / r where r >= eps, g / eps below it (finite at a
                // zero norm, as the CPU kernel's).
                let r = x.square()?.sum(&[d], true)?.sqrt()?;
                let above = r.rsub_scalar(eps)?.gt_scalar(0.0)?.rsub_scalar(1.0)?;
                let y = ctx.output;
                let dot = g.mul(y)?.sum(&[d], true)?.mul(&above)?;
                let dx = g.sub(&y.mul(&dot)?)?.div(&r.clamp(eps, f64::INFINITY)?)?;
                return Ok(vec![Some(dx)]);
            }
            let dx = with_float!(g, OP, |T| {
                let dx = with_contiguous_pair(x, g, OP, |x: &[T], g: &[T]| {
                    norm::l2_normalize_backward(x, g, lanes, T::from_f64(eps))
                })?;
                Tensor::from_data(dx, x.shape())
            });
            Ok(vec![Some(dx)])
        }))
    }
}
