//! Elementwise unary ops: `y = f(x)` with `dx = f'(x, y) * g`. Every op keeps the input's
//! shape, works on f32 and f64 (other dtypes fail with `Error::Unsupported`) and is
//! differentiable except [`Tensor::gt_scalar`]. Examples are grouped: [`Tensor::exp`] (the
//! arithmetic functions), [`Tensor::relu`] (piecewise activations), [`Tensor::sigmoid`] (smooth
//! activations) and [`Tensor::add_scalar`] (arithmetic with a constant).

use crate::{with_float, Float, Result, Tensor};
#[cfg(feature = "cuda")]
use saddle_kernels::cuda::ops::elementwise::UnaryOp;

/// Defines `pub fn $name(&self, params...) -> Result<Tensor>` from a forward formula in `x` and a
/// backward formula in `x`, `y` (the output) and `g` (the output's gradient). Inside both, `T` is
/// the element type, so constants are written `T::from_f64(..)`.
///
/// `=> $cuda` names the kernel (`saddle_kernels::cuda::ops::elementwise::UnaryOp`) that computes
/// both formulas on a device. `graph |x, y, g| ..` is the same backward written with tensor ops
/// (`Result<Tensor>`), used by [`Tensor::grad_with_graph`] so the gradient can be differentiated
/// again; masks from [`Tensor::gt_scalar`] count as constants.
macro_rules! unary_op {
    ($(#[$doc:meta])* $name:ident($($p:ident: $pt:ty),*) => $cuda:expr, |$x:ident| $fwd:expr, |$bx:ident, $by:ident, $bg:ident| $bwd:expr, graph |$gx:ident, $gy:ident, $gg:ident| $graph:expr) => {
        $(#[$doc])*
        pub fn $name(&self $(, $p: $pt)*) -> Result<Tensor> {
            const OP: &str = stringify!($name);
            let y = cuda_or!(
                self.is_cuda(),
                crate::cuda::ops::unary(OP, self, $cuda),
                with_float!(self, OP, |T| self.map_values::<T>(OP, move |$x: T| $fwd)?)
            );
            Ok(y.record(OP, &[self], move |ctx| {
                let (xs, ys, g) = (&ctx.inputs[0], ctx.output, ctx.g);
                if ctx.create_graph {
                    let ($gx, $gy, $gg) = (xs, ys, g);
                    return Ok(vec![Some($graph)]);
                }
                on_cuda!(g.is_cuda(), {
                    let dx = crate::cuda::ops::unary_backward(OP, $cuda, xs, ys, g)?;
                    Ok(vec![Some(dx)])
                });
                let dx = with_float!(g, OP, |T| {
                    Tensor::map3_values::<T>(xs, ys, g, OP, move |$bx: T, $by: T, $bg: T| $bwd)?
                });
                Ok(vec![Some(dx)])
            }))
        }
    };
}

#[allow(unused_variables)]
impl Tensor {
    unary_op!(
        /// `-x`. Example: [`Tensor::exp`].
        neg() => UnaryOp::Neg, |x| -x, |x, y, g| -g,
        graph |x, y, g| g.neg()?
    );
    unary_op!(
        /// `e^x`.
        ///
        /// ```
        /// # use saddle_engine::{Device, Tensor};
        /// # use saddle_engine::gradcheck::assert_close;
        /// let x = Tensor::from_vec(vec![1.0f32, 4.0], &[2], Device::Cpu)?
        ///     .with_requires_grad(true);
        /// assert_close(&x.exp()?, &[1f64.exp(), 4f64.exp()], 1e-6);
        /// assert_close(&x.log()?, &[0.0, 4f64.ln()], 1e-6);
        /// assert_eq!(x.sqrt()?.to_vec::<f32>()?, vec![1.0, 2.0]);
        /// assert_eq!(x.square()?.to_vec::<f32>()?, vec![1.0, 16.0]);
        /// assert_eq!(x.recip()?.to_vec::<f32>()?, vec![1.0, 0.25]);
        /// assert_close(&x.powf(1.5)?, &[1.0, 8.0], 1e-6);
        /// assert_eq!(x.neg()?.to_vec::<f32>()?, vec![-1.0, -4.0]);
        ///
        /// // d/dx ln x = 1 / x
        /// let grads = x.log()?.sum_all()?.backward()?;
        /// assert_eq!(grads.get(&x).unwrap().to_vec::<f32>()?, vec![1.0, 0.25]);
        /// # Ok::<(), saddle_engine::Error>(())
        /// ```
        exp() => UnaryOp::Exp, |x| x.exp(), |x, y, g| g * y,
        graph |x, y, g| g.mul(y)?
    );
    unary_op!(
        /// Natural logarithm (NaN below 0, -inf at 0). Example: [`Tensor::exp`].
        log() => UnaryOp::Log, |x| x.ln(), |x, y, g| g / x,
        graph |x, y, g| g.div(x)?
    );
    unary_op!(
        /// Square root (NaN below 0). Example: [`Tensor::exp`].
        sqrt() => UnaryOp::Sqrt, |x| x.sqrt(), |x, y, g| g / (T::from_f64(2.0) * y),
        graph |x, y, g| g.div(&y.mul_scalar(2.0)?)?
    );
    unary_op!(
        /// `x * x`. Example: [`Tensor::exp`].
        square() => UnaryOp::Square, |x| x * x, |x, y, g| T::from_f64(2.0) * x * g,
        graph |x, y, g| g.mul(&x.mul_scalar(2.0)?)?
    );
    unary_op!(
        /// `|x|` (gradient 0 at 0, as PyTorch). Example: [`Tensor::relu`].
        abs() => UnaryOp::Abs, |x| x.abs(), |x, y, g| if x > T::ZERO { g } else if x < T::ZERO { -g } else { T::ZERO },
        graph |x, y, g| g.mul(&x.gt_scalar(0.0)?.sub(&x.neg()?.gt_scalar(0.0)?)?)?
    );
    unary_op!(
        /// `max(x, 0)` (gradient 0 at 0).
        ///
        /// ```
        /// # use saddle_engine::{Device, Tensor};
        /// # use saddle_engine::gradcheck::assert_close;
        /// let x = Tensor::from_vec(vec![-2.0f32, 0.0, 3.0], &[3], Device::Cpu)?
        ///     .with_requires_grad(true);
        /// let y = x.relu()?;
        /// assert_eq!(y.to_vec::<f32>()?, vec![0.0, 0.0, 3.0]);
        /// let grads = y.sum_all()?.backward()?;
        /// assert_eq!(grads.get(&x).unwrap().to_vec::<f32>()?, vec![0.0, 0.0, 1.0]);
        ///
        /// assert_eq!(x.leaky_relu(0.5)?.to_vec::<f32>()?, vec![-1.0, 0.0, 3.0]);
        /// assert_close(&x.elu(1.0)?, &[(-2f64).exp() - 1.0, 0.0, 3.0], 1e-6);
        /// assert_eq!(x.abs()?.to_vec::<f32>()?, vec![2.0, 0.0, 3.0]);
        /// assert_eq!(x.clamp(-1.0, 1.0)?.to_vec::<f32>()?, vec![-1.0, 0.0, 1.0]);
        /// # Ok::<(), saddle_engine::Error>(())
        /// ```
        relu() => UnaryOp::Relu, |x| if x > T::ZERO { x } else { T::ZERO }, |x, y, g| if x > T::ZERO { g } else { T::ZERO },
        graph |x, y, g| g.mul(&x.gt_scalar(0.0)?)?
    );
    unary_op!(
        /// `x` for positive x, `slope * x` otherwise. Example: [`Tensor::relu`].
        leaky_relu(slope: f64) => UnaryOp::LeakyRelu(slope),
        |x| if x > T::ZERO { x } else { x * T::from_f64(slope) },
        |x, y, g| if x > T::ZERO { g } else { g * T::from_f64(slope) },
        graph |x, y, g| g.mul(&x.gt_scalar(0.0)?.mul_scalar(1.0 - slope)?.add_scalar(slope)?)?
    );
    unary_op!(
        /// `1 / (1 + e^-x)`, computed without overflow for large |x|.
        ///
        /// ```
        /// # use saddle_engine::{Device, Tensor};
        /// # use saddle_engine::gradcheck::assert_close;
        /// let x = Tensor::from_vec(vec![0.0f64, 2.0], &[2], Device::Cpu)?
        ///     .with_requires_grad(true);
        /// let s2 = 1.0 / (1.0 + (-2f64).exp());
        /// let s = x.sigmoid()?;
        /// assert_close(&s, &[0.5, s2], 1e-12);
        /// // σ' = σ (1 - σ): 0.25 at 0.
        /// let grads = s.sum_all()?.backward()?;
        /// assert_close(grads.get(&x).unwrap(), &[0.25, s2 * (1.0 - s2)], 1e-12);
        ///
        /// assert_close(&x.tanh()?, &[0.0, 2f64.tanh()], 1e-12);
        /// assert_close(&x.softplus()?, &[2f64.ln(), (1.0 + 2f64.exp()).ln()], 1e-12);
        /// # Ok::<(), saddle_engine::Error>(())
        /// ```
        sigmoid() => UnaryOp::Sigmoid,
        |x| if x >= T::ZERO { T::ONE / (T::ONE + (-x).exp()) } else { let e = x.exp(); e / (T::ONE + e) },
        |x, y, g| g * y * (T::ONE - y),
        graph |x, y, g| g.mul(&y.mul(&y.rsub_scalar(1.0)?)?)?
    );
    unary_op!(
        /// Hyperbolic tangent. Example: [`Tensor::sigmoid`].
        tanh() => UnaryOp::Tanh, |x| x.tanh(), |x, y, g| g * (T::ONE - y * y),
        graph |x, y, g| g.mul(&y.square()?.rsub_scalar(1.0)?)?
    );
    unary_op!(
        /// `ln(1 + e^x)`, stable for large |x|. Example: [`Tensor::sigmoid`].
        softplus() => UnaryOp::Softplus,
        |x| x.max(T::ZERO) + (-x.abs()).exp().ln_1p(),
        |x, y, g| g * (if x >= T::ZERO { T::ONE / (T::ONE + (-x).exp()) } else { let e = x.exp(); e / (T::ONE + e) }),
        graph |x, y, g| g.mul(&x.sigmoid()?)?
    );
    unary_op!(
        /// `x` for positive x, `alpha * (e^x - 1)` otherwise. Example: [`Tensor::relu`].
        elu(alpha: f64) => UnaryOp::Elu(alpha),
        |x| if x > T::ZERO { x } else { T::from_f64(alpha) * (x.exp() - T::ONE) },
        |x, y, g| if x > T::ZERO { g } else { g * (y + T::from_f64(alpha)) },
        graph |x, y, g| { let pos = x.gt_scalar(0.0)?; g.mul(&pos.add(&pos.rsub_scalar(1.0)?.mul(&y.add_scalar(alpha)?)?)?)? }
    );
    unary_op!(
        /// `x^e` for a constant exponent. Example: [`Tensor::exp`].
        powf(e: f64) => UnaryOp::Powf(e), |x| x.powf(T::from_f64(e)), |x, y, g| g * T::from_f64(e) * x.powf(T::from_f64(e - 1.0)),
        graph |x, y, g| g.mul(&x.powf(e - 1.0)?.mul_scalar(e)?)?
    );
    unary_op!(
        /// `x` limited to `[min, max]`; the gradient passes where `min <= x <= max` and is 0
        /// outside. Example: [`Tensor::relu`].
        clamp(min: f64, max: f64) => UnaryOp::Clamp(min, max),
        |x| x.max(T::from_f64(min)).min(T::from_f64(max)),
        |x, y, g| if x >= T::from_f64(min) && x <= T::from_f64(max) { g } else { T::ZERO },
        graph |x, y, g| g.mul(&x.neg()?.gt_scalar(-min)?.rsub_scalar(1.0)?.mul(&x.gt_scalar(max)?.rsub_scalar(1.0)?)?)?
    );
    unary_op!(
        /// `x + c`.
        ///
        /// ```
        /// # use saddle_engine::{Device, Tensor};
        /// let x = Tensor::from_vec(vec![1.0f32, 2.0], &[2], Device::Cpu)?;
        /// assert_eq!(x.add_scalar(1.0)?.to_vec::<f32>()?, vec![2.0, 3.0]);
        /// assert_eq!(x.sub_scalar(1.0)?.to_vec::<f32>()?, vec![0.0, 1.0]);
        /// assert_eq!(x.mul_scalar(3.0)?.to_vec::<f32>()?, vec![3.0, 6.0]);
        /// assert_eq!(x.div_scalar(2.0)?.to_vec::<f32>()?, vec![0.5, 1.0]);
        /// assert_eq!(x.rsub_scalar(1.0)?.to_vec::<f32>()?, vec![0.0, -1.0]);
        /// # Ok::<(), saddle_engine::Error>(())
        /// ```
        add_scalar(c: f64) => UnaryOp::Affine(1.0, c), |x| x + T::from_f64(c), |x, y, g| g,
        graph |x, y, g| g.clone()
    );
    unary_op!(
        /// `x * c`. Example: [`Tensor::add_scalar`].
        mul_scalar(c: f64) => UnaryOp::Affine(c, 0.0), |x| x * T::from_f64(c), |x, y, g| g * T::from_f64(c),
        graph |x, y, g| g.mul_scalar(c)?
    );
    unary_op!(
        /// `x - c`. Example: [`Tensor::add_scalar`].
        sub_scalar(c: f64) => UnaryOp::Affine(1.0, -c), |x| x - T::from_f64(c), |x, y, g| g,
        graph |x, y, g| g.clone()
    );
    unary_op!(
        /// `c - x`. Example: [`Tensor::add_scalar`].
        rsub_scalar(c: f64) => UnaryOp::Affine(-1.0, c), |x| T::from_f64(c) - x, |x, y, g| -g,
        graph |x, y, g| g.neg()?
    );
    unary_op!(
        /// `x / c`. Example: [`Tensor::add_scalar`].
        div_scalar(c: f64) => UnaryOp::Affine(1.0 / c, 0.0), |x| x / T::from_f64(c), |x, y, g| g / T::from_f64(c),
        graph |x, y, g| g.div_scalar(c)?
    );
    unary_op!(
        /// `1 / x`. Example: [`Tensor::exp`].
        recip() => UnaryOp::Recip, |x| T::ONE / x, |x, y, g| -g * y * y,
        graph |x, y, g| g.neg()?.mul(&y.square()?)?
    );

    /// `1.0` where `x > c`, else `0.0`, in the input's shape (a mask; not differentiable, no
    /// history).
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![-1.0f32, 0.5, 2.0], &[3], Device::Cpu)?;
    /// assert_eq!(x.gt_scalar(0.5)?.to_vec::<f32>()?, vec![0.0, 0.0, 1.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn gt_scalar(&self, c: f64) -> Result<Tensor> {
        on_cuda!(
            self.is_cuda(),
            crate::cuda::ops::unary(
                "gt_scalar",
                self,
                saddle_kernels::cuda::ops::elementwise::UnaryOp::GtScalar(c)
            )
        );
        with_float!(self, "gt_scalar", |T| self.map_values::<T>(
            "gt_scalar",
            move |x| if x > T::from_f64(c) { T::ONE } else { T::ZERO }
        ))
    }
}
