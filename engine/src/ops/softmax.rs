//! Softmax and log-softmax along any axis: fused, numerically stable, with fused backward.

use super::axis;
use super::misc::with_contiguous_pair;
use crate::{with_float, Result, Tensor};
use saddle_kernels::cpu::lanes::Lanes;
use saddle_kernels::cpu::softmax;

impl Tensor {
    /// `exp(x - max) / sum(exp(x - max))` along `dim` (negative counts from the end), in the
    /// input's shape: each lane along `dim` sums to 1. Backward: `y * (g - sum(g * y))`. Fails
    /// when `dim` is out of range.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// # use saddle_engine::gradcheck::assert_close;
    /// let values = vec![0.0f64, 0.0, 2f64.ln(), 1.0, 1.0, 1.0];
    /// let x = Tensor::from_vec(values, &[2, 3], Device::Cpu)?;
    /// let third = 1.0 / 3.0;
    /// assert_close(&x.softmax(-1)?, &[0.25, 0.25, 0.5, third, third, third], 1e-12);
    /// let (q, h, t) = (0.25f64.ln(), 0.5f64.ln(), third.ln());
    /// assert_close(&x.log_softmax(1)?, &[q, q, h, t, t, t], 1e-12);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        const OP: &str = "softmax";
        let d = axis(OP, self.shape(), dim)?;
        let lanes = Lanes::along(self.shape(), d);
        let out = cuda_or!(
            self.is_cuda(),
            crate::cuda::ops::softmax(OP, self, lanes, false),
            with_float!(self, OP, |T| {
                Tensor::from_data(
                    self.with_contiguous(OP, |x: &[T]| softmax::softmax(x, lanes))?,
                    self.shape(),
                )
            })
        );
        Ok(out.record(OP, &[self], move |ctx| {
            let (y, g) = (ctx.output, ctx.g);
            if ctx.create_graph {
                // dx = y · (g - Σ g·y) along the axis.
                let dot = g.mul(y)?.sum(&[d], true)?;
                return Ok(vec![Some(y.mul(&g.sub(&dot)?)?)]);
            }
            on_cuda!(g.is_cuda(), {
                let dx = crate::cuda::ops::softmax_backward(OP, y, g, lanes, false)?;
                Ok(vec![Some(dx)])
            });
            let dx = with_float!(g, OP, |T| {
                let dx = with_contiguous_pair(y, g, OP, |y: &[T], g: &[T]| {
                    softmax::softmax_backward(y, g, lanes)
                })?;
                Tensor::from_data(dx, y.shape())
            });
            Ok(vec![Some(dx)])
        }))
    }

    /// `x - max - log(sum(exp(x - max)))` along `dim` (negative counts from the end), the log of
    /// [`Tensor::softmax`] without its underflow. Backward: `g - softmax * sum(g)`. Example:
    /// [`Tensor::softmax`].
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        const OP: &str = "log_softmax";
        let d = axis(OP, self.shape(), dim)?;
        let lanes = Lanes::along(self.shape(), d);
        let out = cuda_or!(
            self.is_cuda(),
            crate::cuda::ops::softmax(OP, self, lanes, true),
            with_float!(self, OP, |T| {
                Tensor::from_data(
                    self.with_contiguous(OP, |x: &[T]| softmax::log_softmax(x, lanes))?,
                    self.shape(),
                )
            })
        );
        Ok(out.record(OP, &[self], move |ctx| {
            let (y, g) = (ctx.output, ctx.g);
            if ctx.create_graph {
                // dx = g - e^y · Σ g along the axis.
                let total = g.sum(&[d], true)?;
                return Ok(vec![Some(g.sub(&y.exp()?.mul(&total)?)?)]);
            }
            on_cuda!(g.is_cuda(), {
                let dx = crate::cuda::ops::softmax_backward(OP, y, g, lanes, true)?;
                Ok(vec![Some(dx)])
            });
            let dx = with_float!(g, OP, |T| {
                let dx = with_contiguous_pair(y, g, OP, |y: &[T], g: &[T]| {
                    softmax::log_softmax_backward(y, g, lanes)
                })?;
                Tensor::from_data(dx, y.shape())
            });
            Ok(vec![Some(dx)])
        }))
    }
}
