//! Elementwise unary ops: `y = f(x)` with `dx = f'(x, y) * g`.

use crate::{with_float, Float, Result, Tensor};

/// Defines `pub fn $name(&self, params...) -> Result<Tensor>` from a forward formula in `x` and a
/// backward formula in `x`, `y` (the output) and `g` (the output's gradient). Inside both, `T` is
/// the element type, so constants are written `T::from_f64(..)`.
///
/// `=> $cuda` names the kernel (`saddle_kernels::cuda::ops::elementwise::UnaryOp`) that computes
/// both formulas on a device.
macro_rules! unary_op {
    ($(#[$doc:meta])* $name:ident($($p:ident: $pt:ty),*) => $cuda:expr, |$x:ident| $fwd:expr, |$bx:ident, $by:ident, $bg:ident| $bwd:expr) => {
        $(#[$doc])*
        pub fn $name(&self $(, $p: $pt)*) -> Result<Tensor> {
            const OP: &str = stringify!($name);
            on_cuda!(self.is_cuda(), {
                use saddle_kernels::cuda::ops::elementwise::UnaryOp;
                let u: UnaryOp = $cuda;
                let y = crate::cuda::ops::unary(OP, self, u)?;
                let (xs, ys) = (self.detach(), y.detach());
                Ok(y.record(OP, &[self], move |g, _| {
                    Ok(vec![Some(crate::cuda::ops::unary_backward(OP, u, &xs, &ys, g)?)])
                }))
            });
            let y = with_float!(self, OP, |T| self.map_values::<T>(OP, move |$x: T| $fwd)?);
            let (xs, ys) = (self.detach(), y.detach());
            Ok(y.record(OP, &[self], move |g, _| {
                let dx = with_float!(g, OP, |T| {
                    Tensor::map3_values::<T>(&xs, &ys, g, OP, move |$bx: T, $by: T, $bg: T| $bwd)?
                });
                Ok(vec![Some(dx)])
            }))
        }
    };
}

#[allow(unused_variables)]
impl Tensor {
    unary_op!(
        /// `-x`
        neg() => UnaryOp::Neg, |x| -x, |x, y, g| -g
    );
    unary_op!(
        /// `e^x`
        exp() => UnaryOp::Exp, |x| x.exp(), |x, y, g| g * y
    );
    unary_op!(
        /// Natural logarithm.
        log() => UnaryOp::Log, |x| x.ln(), |x, y, g| g / x
    );
    unary_op!(
        /// Square root.
        sqrt() => UnaryOp::Sqrt, |x| x.sqrt(), |x, y, g| g / (T::from_f64(2.0) * y)
    );
    unary_op!(
        /// `x * x`
        square() => UnaryOp::Square, |x| x * x, |x, y, g| T::from_f64(2.0) * x * g
    );
    unary_op!(
        /// `|x|` (gradient 0 at 0, as PyTorch).
        abs() => UnaryOp::Abs, |x| x.abs(), |x, y, g| if x > T::ZERO { g } else if x < T::ZERO { -g } else { T::ZERO }
    );
    unary_op!(
        /// `max(x, 0)` (gradient 0 at 0).
        relu() => UnaryOp::Relu, |x| if x > T::ZERO { x } else { T::ZERO }, |x, y, g| if x > T::ZERO { g } else { T::ZERO }
    );
    unary_op!(
        /// `x` for positive x, `slope * x` otherwise.
        leaky_relu(slope: f64) => UnaryOp::LeakyRelu(slope),
        |x| if x > T::ZERO { x } else { x * T::from_f64(slope) },
        |x, y, g| if x > T::ZERO { g } else { g * T::from_f64(slope) }
    );
    unary_op!(
        /// `1 / (1 + e^-x)`, computed without overflow for large |x|.
        sigmoid() => UnaryOp::Sigmoid,
        |x| if x >= T::ZERO { T::ONE / (T::ONE + (-x).exp()) } else { let e = x.exp(); e / (T::ONE + e) },
        |x, y, g| g * y * (T::ONE - y)
    );
    unary_op!(
        /// Hyperbolic tangent.
        tanh() => UnaryOp::Tanh, |x| x.tanh(), |x, y, g| g * (T::ONE - y * y)
    );
    unary_op!(
        /// `ln(1 + e^x)`, stable for large |x|.
        softplus() => UnaryOp::Softplus,
        |x| x.max(T::ZERO) + (-x.abs()).exp().ln_1p(),
        |x, y, g| g * (if x >= T::ZERO { T::ONE / (T::ONE + (-x).exp()) } else { let e = x.exp(); e / (T::ONE + e) })
    );
    unary_op!(
        /// `x` for positive x, `alpha * (e^x - 1)` otherwise.
        elu(alpha: f64) => UnaryOp::Elu(alpha),
        |x| if x > T::ZERO { x } else { T::from_f64(alpha) * (x.exp() - T::ONE) },
        |x, y, g| if x > T::ZERO { g } else { g * (y + T::from_f64(alpha)) }
    );
    unary_op!(
        /// `x^e` for a constant exponent.
        powf(e: f64) => UnaryOp::Powf(e), |x| x.powf(T::from_f64(e)), |x, y, g| g * T::from_f64(e) * x.powf(T::from_f64(e - 1.0))
    );
    unary_op!(
        /// `x` limited to `[min, max]` (gradient passes only strictly inside).
        clamp(min: f64, max: f64) => UnaryOp::Clamp(min, max),
        |x| x.max(T::from_f64(min)).min(T::from_f64(max)),
        |x, y, g| if x >= T::from_f64(min) && x <= T::from_f64(max) { g } else { T::ZERO }
    );
    unary_op!(
        /// `x + c`
        add_scalar(c: f64) => UnaryOp::Affine(1.0, c), |x| x + T::from_f64(c), |x, y, g| g
    );
    unary_op!(
        /// `x * c`
        mul_scalar(c: f64) => UnaryOp::Affine(c, 0.0), |x| x * T::from_f64(c), |x, y, g| g * T::from_f64(c)
    );
    unary_op!(
        /// `x - c`
        sub_scalar(c: f64) => UnaryOp::Affine(1.0, -c), |x| x - T::from_f64(c), |x, y, g| g
    );
    unary_op!(
        /// `c - x`
        rsub_scalar(c: f64) => UnaryOp::Affine(-1.0, c), |x| T::from_f64(c) - x, |x, y, g| -g
    );
    unary_op!(
        /// `x / c`
        div_scalar(c: f64) => UnaryOp::Affine(1.0 / c, 0.0), |x| x / T::from_f64(c), |x, y, g| g / T::from_f64(c)
    );
    unary_op!(
        /// `1 / x`
        recip() => UnaryOp::Recip, |x| T::ONE / x, |x, y, g| -g * y * y
    );

    /// `1.0` where `x > c`, else `0.0` (a mask; not differentiable, no history).
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
