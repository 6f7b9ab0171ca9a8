//! Fused in-place optimiser updates (not recorded by autodiff). The engine owns them so each
//! device runs its own kernel: on the CPU, `saddle_kernels::cpu::optim`.

use crate::{with_float, Error, Result, Tensor};
use saddle_kernels::cpu::optim::{adam_update, sgd_update};
pub use saddle_kernels::cpu::optim::{AdamStep, SgdStep};

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
    /// AMSGrad maximum `vmax`) updated in place too.
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
        with_float!(self, OP, |T| {
            let g = grad.to_vec::<T>()?;
            self.with_values_mut(|p: &mut [T]| {
                m.with_values_mut(|m: &mut [T]| {
                    v.with_values_mut(|v: &mut [T]| match vmax {
                        Some(vm) => {
                            vm.with_values_mut(|vm: &mut [T]| adam_update(p, &g, m, v, Some(vm), h))
                        }
                        None => {
                            adam_update(p, &g, m, v, None, h);
                            Ok(())
                        }
                    })
                })
            })????; // one `?` per lock taken, innermost last
            Ok(())
        })
    }

    /// One SGD step on this parameter in place, with momentum buffer `buf` (any tensor of the
    /// parameter's shape; unused without momentum).
    pub fn sgd_step_(&self, grad: &Tensor, buf: &Tensor, h: SgdStep) -> Result<()> {
        const OP: &str = "sgd_step";
        check_state(OP, self, grad)?;
        check_state(OP, self, buf)?;
        with_float!(self, OP, |T| {
            let g = grad.to_vec::<T>()?;
            self.with_values_mut(|p: &mut [T]| {
                buf.with_values_mut(|b: &mut [T]| sgd_update(p, &g, b, h))
            })??;
            Ok(())
        })
    }
}
