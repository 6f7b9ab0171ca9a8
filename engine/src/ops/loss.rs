//! Losses with mean reduction, returning 0-d tensors: binary cross-entropy with logits,
//! cross-entropy with integer labels, MSE, L1 (fused, stable, fused backward) and the hinge
//! losses GANs use (compositions).

use super::misc::with_contiguous_pair;
use crate::backend::backend;
use crate::{with_float, Element, Error, Float, Result, Tensor};
use saddle_kernels::cpu::lanes::Lanes;
use saddle_kernels::cpu::{elementwise, loss, softmax};

/// A fused elementwise loss `mean(f(x, t))` with `df/dx` and `df/dt` given per element.
struct Pointwise<F, DX, DT> {
    value: F,
    dx: DX,
    dt: DT,
    /// `(dx, dt)` as tensor ops on `(x, t)`, for [`Tensor::grad_with_graph`].
    graph: GraphDerivatives,
}

/// A pointwise loss's derivatives in `x` and `t` per element, written with ops that record.
type GraphDerivatives = fn(&Tensor, &Tensor) -> Result<[Tensor; 2]>;

/// The gradients of a mean loss with per-element derivatives `graph(x, t)`: each times `g / n`.
fn graph_loss_grads(
    graph: GraphDerivatives,
    ctx: &crate::autograd::GradCtx,
) -> Result<Vec<Option<Tensor>>> {
    let (x, t) = (&ctx.inputs[0], &ctx.inputs[1]);
    let scale = ctx.g.div_scalar(x.numel() as f64)?;
    let [dx, dt] = graph(x, t)?;
    Ok(vec![
        ctx.needs[0].then(|| dx.mul(&scale)).transpose()?,
        ctx.needs[1].then(|| dt.mul(&scale)).transpose()?,
    ])
}

fn bce_with_logits_graph(x: &Tensor, t: &Tensor) -> Result<[Tensor; 2]> {
    Ok([x.sigmoid()?.sub(t)?, x.neg()?])
}

impl Tensor {
    /// What every pointwise loss checks: same dtype, device and shape, and not empty.
    fn check_pointwise_operands(&self, op: &'static str, target: &Tensor) -> Result<()> {
        self.check_same(op, target)?;
        if self.shape() != target.shape() {
            return Err(Error::shape(
                op,
                self.shape(),
                target.shape(),
                "input and target must have the same shape",
            ));
        }
        if self.numel() == 0 {
            return Err(Error::bad_shape(
                op,
                self.shape(),
                "the mean of an empty tensor is undefined",
            ));
        }
        Ok(())
    }

    fn pointwise_loss<T, F, DX, DT>(
        &self,
        target: &Tensor,
        op: &'static str,
        f: Pointwise<F, DX, DT>,
    ) -> Result<Tensor>
    where
        T: Element,
        F: Fn(T, T) -> T + Sync,
        DX: Fn(T, T) -> T + Send + Sync + 'static,
        DT: Fn(T, T) -> T + Send + Sync + 'static,
    {
        self.check_pointwise_operands(op, target)?;
        let n = self.numel();
        let sum = with_contiguous_pair(self, target, op, |x: &[T], t: &[T]| {
            loss::sum_zip(x, t, &f.value)
        })?;
        let out = Tensor::scalar(sum / T::from_usize(n));
        let Pointwise { dx, dt, graph, .. } = f;
        Ok(out.record(op, &[self, target], move |ctx| {
            if ctx.create_graph {
                return graph_loss_grads(graph, ctx);
            }
            let (xs, ts, g, needs) = (&ctx.inputs[0], &ctx.inputs[1], ctx.g, ctx.needs);
            let scale = T::from_f64(g.to_scalar()?) / T::from_usize(n);
            let shape = xs.shape();
            let grad = |d: &(dyn Fn(T, T) -> T + Sync)| -> Result<Tensor> {
                let v = with_contiguous_pair(xs, ts, op, |x: &[T], t: &[T]| {
                    elementwise::zip(x, t, |a, b| d(a, b) * scale)
                })?;
                Ok(Tensor::from_data(v, shape))
            };
            let gx = if needs[0] { Some(grad(&dx)?) } else { None };
            let gt = if needs[1] { Some(grad(&dt)?) } else { None };
            Ok(vec![gx, gt])
        }))
    }

    /// Mean binary cross-entropy between `sigmoid(self)` and `target` (same shape, values in
    /// `[0, 1]`), computed from the logits without overflow:
    /// `max(x, 0) - x t + log(1 + exp(-|x|))`, as a 0-d tensor. Differentiable in both: the
    /// gradient of the logits is `(sigmoid(x) - t) / N`. Fails when the shapes differ, the input
    /// is empty, or dtypes or devices differ; [`Tensor::mse_loss`] and [`Tensor::l1_loss`]
    /// likewise.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// # use saddle_engine::gradcheck::assert_close;
    /// let x = Tensor::from_vec(vec![0.0f64, 2.0], &[2], Device::Cpu)?.with_requires_grad(true);
    /// let t = Tensor::from_vec(vec![1.0f64, 0.0], &[2], Device::Cpu)?;
    /// let loss = x.binary_cross_entropy_with_logits(&t)?;
    /// // mean(-ln sigmoid(0), -ln(1 - sigmoid(2)))
    /// assert_close(&loss, &[(2f64.ln() + (1.0 + 2f64.exp()).ln()) / 2.0], 1e-12);
    /// let grads = loss.backward()?;
    /// let s2 = 1.0 / (1.0 + (-2f64).exp());
    /// assert_close(grads.get(&x).unwrap(), &[(0.5 - 1.0) / 2.0, s2 / 2.0], 1e-12);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn binary_cross_entropy_with_logits(&self, target: &Tensor) -> Result<Tensor> {
        const OP: &str = "binary_cross_entropy_with_logits";
        self.check_pointwise_operands(OP, target)?;
        let out = backend(self.device()).bce_with_logits(OP, self, target)?;
        let n = self.numel() as f64;
        Ok(out.record(OP, &[self, target], move |ctx| {
            if ctx.create_graph {
                return graph_loss_grads(bce_with_logits_graph, ctx);
            }
            let (xs, ts, g, needs) = (&ctx.inputs[0], &ctx.inputs[1], ctx.g, ctx.needs);
            let gx = needs[0]
                .then(|| backend(xs.device()).bce_with_logits_grad(OP, xs, ts, g))
                .transpose()?;
            // d/dt = -x per element, times g / n.
            let gt = needs[1]
                .then(|| xs.mul(g)?.mul_scalar(-1.0 / n))
                .transpose()?;
            Ok(vec![gx, gt])
        }))
    }

    /// Mean squared error `mean((self - target)^2)` (same shapes), as a 0-d tensor.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// # use saddle_engine::gradcheck::assert_close;
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0, 4.0], &[3], Device::Cpu)?
    ///     .with_requires_grad(true);
    /// let t = Tensor::from_vec(vec![1.0f64, 0.0, 1.0], &[3], Device::Cpu)?;
    /// let mse = x.mse_loss(&t)?;
    /// assert_close(&mse, &[(0.0 + 4.0 + 9.0) / 3.0], 1e-12);
    /// assert_close(&x.l1_loss(&t)?, &[(0.0 + 2.0 + 3.0) / 3.0], 1e-12);
    /// let grads = mse.backward()?; // 2 (x - t) / N
    /// assert_close(grads.get(&x).unwrap(), &[0.0, 4.0 / 3.0, 2.0], 1e-12);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn mse_loss(&self, target: &Tensor) -> Result<Tensor> {
        const OP: &str = "mse_loss";
        // On a device: the same mean as dispatched ops (their recorded backward is the same
        // gradient).
        on_cuda!(self.is_cuda() || target.is_cuda(), {
            self.check_pointwise_operands(OP, target)?;
            self.sub(target)?.square()?.mean_all()
        });
        with_float!(self, OP, |T| self.pointwise_loss::<T, _, _, _>(
            target,
            OP,
            Pointwise {
                value: |x: T, t: T| (x - t) * (x - t),
                dx: |x: T, t: T| T::from_f64(2.0) * (x - t),
                dt: |x: T, t: T| T::from_f64(2.0) * (t - x),
                graph: |x, t| {
                    let dx = x.sub(t)?.mul_scalar(2.0)?;
                    Ok([dx.clone(), dx.neg()?])
                },
            }
        ))
    }

    /// Mean absolute error `mean(|self - target|)` (same shapes; subgradient 0 where equal), as
    /// a 0-d tensor. Example: [`Tensor::mse_loss`].
    pub fn l1_loss(&self, target: &Tensor) -> Result<Tensor> {
        const OP: &str = "l1_loss";
        on_cuda!(self.is_cuda() || target.is_cuda(), {
            self.check_pointwise_operands(OP, target)?;
            self.sub(target)?.abs()?.mean_all()
        });
        with_float!(self, OP, |T| self.pointwise_loss::<T, _, _, _>(
            target,
            OP,
            Pointwise {
                value: |x: T, t: T| (x - t).abs(),
                dx: |x: T, t: T| loss::sign(x - t),
                dt: |x: T, t: T| loss::sign(t - x),
                graph: |x, t| {
                    // sign(x - t), a constant.
                    let dx = x.gt(t)?.sub(&t.gt(x)?)?;
                    Ok([dx.clone(), dx.neg()?])
                },
            }
        ))
    }

    /// Mean cross-entropy of logits `[N, C]` against integer class labels (one per row, each
    /// `< C`): `mean(logsumexp(x_n) - x_n[label_n])`, as a 0-d tensor. Backward:
    /// `(softmax - onehot) / N`. Fails unless the logits are `[N, C]` with `N, C > 0`, there is
    /// one label per row, and every label is below `C`.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// # use saddle_engine::gradcheck::assert_close;
    /// let logits = Tensor::from_vec(vec![0.0f64, 0.0, 2f64.ln(), 0.0], &[2, 2], Device::Cpu)?
    ///     .with_requires_grad(true);
    /// let loss = logits.cross_entropy(&[0, 0])?;
    /// // Row 0: softmax (1/2, 1/2); row 1: (2/3, 1/3). Loss mean(ln 2, ln 3/2) = ln 3 / 2.
    /// assert_close(&loss, &[3f64.ln() / 2.0], 1e-12);
    /// let grads = loss.backward()?;
    /// let sixth = 1.0 / 6.0;
    /// assert_close(grads.get(&logits).unwrap(), &[-0.25, 0.25, -sixth, sixth], 1e-12);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn cross_entropy(&self, labels: &[usize]) -> Result<Tensor> {
        const OP: &str = "cross_entropy";
        if self.rank() != 2 {
            return Err(Error::bad_shape(
                OP,
                self.shape(),
                "logits must have shape [N, C]",
            ));
        }
        let (n, c) = (self.shape()[0], self.shape()[1]);
        if labels.len() != n {
            return Err(Error::shape(
                OP,
                self.shape(),
                &[labels.len()],
                format!("{} labels for {n} rows", labels.len()),
            ));
        }
        if n == 0 || c == 0 {
            return Err(Error::bad_shape(
                OP,
                self.shape(),
                "needs at least one row and one class",
            ));
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l >= c) {
            return Err(Error::arg(
                OP,
                format!("label {l} at position {i} is out of range for {c} classes"),
            ));
        }
        let lanes = Lanes {
            outer: n,
            n: c,
            inner: 1,
        };
        // On a device: -mean(log_softmax(x) · onehot(labels)), the one-hot mask uploaded (N × C
        // values); the recorded backward is (softmax - onehot) / N as on the CPU.
        on_cuda!(self.is_cuda(), {
            let mut onehot = vec![0.0f64; n * c];
            for (row, &l) in labels.iter().enumerate() {
                onehot[row * c + l] = 1.0;
            }
            let onehot =
                Tensor::from_vec(onehot, &[n, c], self.device())?.to_dtype(self.dtype())?;
            self.log_softmax(1)?
                .mul(&onehot)?
                .sum_all()?
                .mul_scalar(-1.0 / n as f64)
        });
        let labels = labels.to_vec();
        with_float!(self, OP, |T| {
            let logp = self.with_contiguous(OP, |x: &[T]| softmax::log_softmax(x, lanes))?;
            let total = labels
                .iter()
                .enumerate()
                .fold(T::ZERO, |s, (row, &l)| s - logp[row * c + l]);
            let out = Tensor::scalar(total / T::from_usize(n));
            Ok(out.record(OP, &[self], move |ctx| {
                let g = ctx.g;
                if ctx.create_graph {
                    // (softmax(x) - onehot) · g / N
                    let mut onehot = vec![T::ZERO; n * c];
                    for (row, &l) in labels.iter().enumerate() {
                        onehot[row * c + l] = T::ONE;
                    }
                    let onehot = Tensor::from_data(onehot, &[n, c]);
                    let p = ctx.inputs[0].softmax(1)?;
                    let scale = g.div_scalar(n as f64)?;
                    return Ok(vec![Some(p.sub(&onehot)?.mul(&scale)?)]);
                }
                let scale = T::from_f64(g.to_scalar()?) / T::from_usize(n);
                let mut dx: Vec<T> = elementwise::map(&logp, move |v| v.exp() * scale);
                for (row, &l) in labels.iter().enumerate() {
                    dx[row * c + l] -= scale;
                }
                Ok(vec![Some(Tensor::from_data(dx, &[n, c]))])
            }))
        })
    }

    /// Hinge loss on a discriminator's outputs for real samples: `mean(relu(1 - x))`, as a 0-d
    /// tensor (built from differentiable ops).
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// # use saddle_engine::gradcheck::assert_close;
    /// let scores = Tensor::from_vec(vec![2.0f32, 0.5, -1.0], &[3], Device::Cpu)?;
    /// assert_close(&scores.hinge_loss_real()?, &[(0.0 + 0.5 + 2.0) / 3.0], 1e-6);
    /// assert_close(&scores.hinge_loss_fake()?, &[(3.0 + 1.5 + 0.0) / 3.0], 1e-6);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn hinge_loss_real(&self) -> Result<Tensor> {
        self.rsub_scalar(1.0)?.relu()?.mean_all()
    }

    /// Hinge loss on a discriminator's outputs for generated samples: `mean(relu(1 + x))`, as a
    /// 0-d tensor. Example: [`Tensor::hinge_loss_real`].
    pub fn hinge_loss_fake(&self) -> Result<Tensor> {
        self.add_scalar(1.0)?.relu()?.mean_all()
    }
}
