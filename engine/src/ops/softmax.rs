//! Softmax and log-softmax along any axis: fused, numerically stable, with fused backward.

use super::axis;
use super::misc::with_contiguous_pair;
use crate::{with_float, Result, Tensor};
use saddle_kernels::cpu::lanes::Lanes;
use saddle_kernels::cpu::softmax;

impl Tensor {
    /// `exp(x - max) / sum(exp(x - max))` along `dim` (negative counts from the end). Backward:
    /// `y * (g - sum(g * y))`.
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        const OP: &str = "softmax";
        let lanes = Lanes::along(self.shape(), axis(OP, self.shape(), dim)?);
        on_cuda!(self.is_cuda(), {
            let out = crate::cuda::ops::softmax(OP, self, lanes, false)?;
            let ys = out.detach();
            Ok(out.record(OP, &[self], move |g, _| {
                Ok(vec![Some(crate::cuda::ops::softmax_backward(
                    OP, &ys, g, lanes, false,
                )?)])
            }))
        });
        let out = with_float!(self, OP, |T| {
            Tensor::from_data(
                self.with_contiguous(OP, |x: &[T]| softmax::softmax(x, lanes))?,
                self.shape(),
            )
        });
        let ys = out.detach();
        Ok(out.record(OP, &[self], move |g, _| {
            let dx = with_float!(g, OP, |T| {
                let dx = with_contiguous_pair(&ys, g, OP, |y: &[T], g: &[T]| {
                    softmax::softmax_backward(y, g, lanes)
                })?;
                Tensor::from_data(dx, ys.shape())
            });
            Ok(vec![Some(dx)])
        }))
    }

    /// `x - max - log(sum(exp(x - max)))` along `dim` (negative counts from the end). Backward:
    /// `g - softmax * sum(g)`.
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        const OP: &str = "log_softmax";
        let lanes = Lanes::along(self.shape(), axis(OP, self.shape(), dim)?);
        on_cuda!(self.is_cuda(), {
            let out = crate::cuda::ops::softmax(OP, self, lanes, true)?;
            let ys = out.detach();
            Ok(out.record(OP, &[self], move |g, _| {
                Ok(vec![Some(crate::cuda::ops::softmax_backward(
                    OP, &ys, g, lanes, true,
                )?)])
            }))
        });
        let out = with_float!(self, OP, |T| {
            Tensor::from_data(
                self.with_contiguous(OP, |x: &[T]| softmax::log_softmax(x, lanes))?,
                self.shape(),
            )
        });
        let ys = out.detach();
        Ok(out.record(OP, &[self], move |g, _| {
            let dx = with_float!(g, OP, |T| {
                let dx = with_contiguous_pair(&ys, g, OP, |y: &[T], g: &[T]| {
                    softmax::log_softmax_backward(y, g, lanes)
                })?;
                Tensor::from_data(dx, ys.shape())
            });
            Ok(vec![Some(dx)])
        }))
    }
}
