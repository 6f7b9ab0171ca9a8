//! Fused in-place optimiser updates (not recorded by autodiff). The engine owns them so each
//! device runs its own kernel: on the CPU, `saddle_kernels::cpu::optim`.

use crate::{with_float, Element, Error, Result, Tensor};
use saddle_kernels::cpu::optim::{adam_update, sgd_update};
pub use saddle_kernels::cpu::optim::{AdamStep, SgdStep};
use std::sync::Arc;

/// Runs `f` on the gradient's values: borrowed (under a read lock) unless its storage is one of
/// the tensors the update writes, whose write lock would then wait on that read lock forever.
fn with_grad<T: Element, R>(
    op: &'static str,
    grad: &Tensor,
    written: &[&Tensor],
    f: impl FnOnce(&[T]) -> Result<R>,
) -> Result<R> {
    if written
        .iter()
        .any(|t| Arc::ptr_eq(&t.0.storage, &grad.0.storage))
    {
        let g = grad.to_vec::<T>()?;
        return f(&g);
    }
    grad.with_contiguous(op, f)?
}

fn check_state(op: &'static str, param: &Tensor, other: &Tensor) -> Result<()> {
    param.check_same(op, other)?;
    if other.shape() != param.shape() {
        return Err(Error::shape(
            op,
            param.shape(),
            other.shape(),
            "optimiser state must match the parameter",
        ));
    }
    Ok(())
}

impl Tensor {
    /// One Adam/AdamW step on this parameter in place, with moment buffers `m`, `v` (and the
    /// AMSGrad maximum `vmax`) updated in place too; the formulas are PyTorch's `Adam`/`AdamW`.
    /// Fails when a state tensor or the gradient differs from the parameter in shape, dtype or
    /// device, or a tensor written is not contiguous.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// # use saddle_engine::gradcheck::assert_close;
    /// use saddle_engine::ops::optim::AdamStep;
    /// let p = Tensor::from_vec(vec![1.0f64], &[1], Device::Cpu)?;
    /// let g = Tensor::from_vec(vec![2.0f64], &[1], Device::Cpu)?;
    /// let (m, v) = (p.zeros_like()?, p.zeros_like()?);
    /// let h = AdamStep {
    ///     lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 0.0,
    ///     weight_decay: 0.0, decoupled: false, step: 1,
    /// };
    /// p.adam_step_(&g, &m, &v, None, h)?;
    /// // The first bias-corrected step moves by lr against the gradient's sign.
    /// assert_close(&p, &[0.9], 1e-12);
    /// assert_close(&m, &[0.2], 1e-12); // (1 - beta1) g
    /// assert_close(&v, &[0.004], 1e-12); // (1 - beta2) g²
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn adam_step_(
        &self,
        grad: &Tensor,
        m: &Tensor,
        v: &Tensor,
        vmax: Option<&Tensor>,
        h: AdamStep,
    ) -> Result<()> {
        const OP: &str = "adam_step";
        for t in [grad, m, v].into_iter().chain(vmax) {
            check_state(OP, self, t)?;
        }
        on_cuda!(
            self.is_cuda(),
            crate::cuda::ops::adam_step(OP, self, grad, m, v, vmax, h)
        );
        let mut written = vec![self, m, v];
        written.extend(vmax);
        with_float!(self, OP, |T| {
            with_grad(OP, grad, &written, |g: &[T]| {
                self.with_values_mut(|p: &mut [T]| {
                    m.with_values_mut(|m: &mut [T]| {
                        v.with_values_mut(|v: &mut [T]| match vmax {
                            Some(vm) => vm.with_values_mut(|vm: &mut [T]| {
                                adam_update(p, g, m, v, Some(vm), h)
                            }),
                            None => {
                                adam_update(p, g, m, v, None, h);
                                Ok(())
                            }
                        })
                    })
                })??? // one `?` per inner lock taken
            })
        })
    }

    /// One SGD step on this parameter in place, with momentum buffer `buf` (any tensor of the
    /// parameter's shape; unused without momentum), with PyTorch's `SGD` formulas. Fails as
    /// [`Tensor::adam_step_`].
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// # use saddle_engine::gradcheck::assert_close;
    /// use saddle_engine::ops::optim::SgdStep;
    /// let p = Tensor::from_vec(vec![1.0f32, 2.0], &[2], Device::Cpu)?;
    /// let g = Tensor::from_vec(vec![0.5f32, -1.0], &[2], Device::Cpu)?;
    /// let buf = p.zeros_like()?;
    /// let h = SgdStep {
    ///     lr: 0.1, momentum: 0.0, dampening: 0.0,
    ///     weight_decay: 0.0, nesterov: false, first: true,
    /// };
    /// p.sgd_step_(&g, &buf, h)?; // p -= lr g
    /// assert_close(&p, &[0.95, 2.1], 1e-6);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn sgd_step_(&self, grad: &Tensor, buf: &Tensor, h: SgdStep) -> Result<()> {
        const OP: &str = "sgd_step";
        check_state(OP, self, grad)?;
        check_state(OP, self, buf)?;
        on_cuda!(
            self.is_cuda(),
            crate::cuda::ops::sgd_step(OP, self, grad, buf, h)
        );
        with_float!(self, OP, |T| {
            with_grad(OP, grad, &[self, buf], |g: &[T]| {
                self.with_values_mut(|p: &mut [T]| {
                    buf.with_values_mut(|b: &mut [T]| sgd_update(p, g, b, h))
                })?
            })
        })
    }
}
