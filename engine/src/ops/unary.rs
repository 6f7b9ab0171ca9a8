//! Elementwise unary ops: `y = f(x)` with `dx = f'(x, y) * g`.

use crate::{with_float, Float, Result, Tensor};

/// Defines `pub fn $name(&self, params...) -> Result<Tensor>` from a forward formula in `x` and a
/// backward formula in `x`, `y` (the output) and `g` (the output's gradient). Inside both, `T` is
/// the element type, so constants are written `T::from_f64(..)`.
macro_rules! unary_op {
    ($(#[$doc:meta])* $name:ident($($p:ident: $pt:ty),*), |$x:ident| $fwd:expr, |$bx:ident, $by:ident, $bg:ident| $bwd:expr) => {
        $(#[$doc])*
        pub fn $name(&self $(, $p: $pt)*) -> Result<Tensor> {
            const OP: &str = stringify!($name);
            let y = with_float!(self, OP, |T| self.map_values::<T>(OP, |$x: T| $fwd)?);
            let (xs, ys) = (self.detach(), y.detach());
            Ok(y.record(OP, &[self], move |g, _| {
                let dx = with_float!(g, OP, |T| {
                    Tensor::map3_values::<T>(&xs, &ys, g, OP, |$bx: T, $by: T, $bg: T| $bwd)?
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
        neg(), |x| -x, |x, y, g| -g
    );
    unary_op!(
        /// `e^x`
        exp(), |x| x.exp(), |x, y, g| g * y
    );
    unary_op!(
        /// Natural logarithm.
        log(), |x| x.ln(), |x, y, g| g / x
    );
    unary_op!(
        /// Square root.
        sqrt(), |x| x.sqrt(), |x, y, g| g / (T::from_f64(2.0) * y)
    );
    unary_op!(
        /// `x * x`
        square(), |x| x * x, |x, y, g| T::from_f64(2.0) * x * g
    );
    unary_op!(
        /// `|x|` (gradient 0 at 0, as PyTorch).
        abs(), |x| x.abs(), |x, y, g| if x > T::ZERO { g } else if x < T::ZERO { -g } else { T::ZERO }
    );
    unary_op!(
        /// `max(x, 0)` (gradient 0 at 0).
        relu(), |x| if x > T::ZERO { x } else { T::ZERO }, |x, y, g| if x > T::ZERO { g } else { T::ZERO }
    );
    unary_op!(
        /// `x` for positive x, `slope * x` otherwise.
        leaky_relu(slope: f64),
        |x| if x > T::ZERO { x } else { x * T::from_f64(slope) },
        |x, y, g| if x > T::ZERO { g } else { g * T::from_f64(slope) }
    );
    unary_op!(
        /// `1 / (1 + e^-x)`, computed without overflow for large |x|.
        sigmoid(),
        |x| if x >= T::ZERO { T::ONE / (T::ONE + (-x).exp()) } else { let e = x.exp(); e / (T::ONE + e) },
        |x, y, g| g * y * (T::ONE - y)
    );
    unary_op!(
        /// Hyperbolic tangent.
        tanh(), |x| x.tanh(), |x, y, g| g * (T::ONE - y * y)
    );
    unary_op!(
        /// `ln(1 + e^x)`, stable for large |x|.
        softplus(),
        |x| x.max(T::ZERO) + (-x.abs()).exp().ln_1p(),
        |x, y, g| g * (if x >= T::ZERO { T::ONE / (T::ONE + (-x).exp()) } else { let e = x.exp(); e / (T::ONE + e) })
    );
    unary_op!(
        /// `x` for positive x, `alpha * (e^x - 1)` otherwise.
        elu(alpha: f64),
        |x| if x > T::ZERO { x } else { T::from_f64(alpha) * (x.exp() - T::ONE) },
        |x, y, g| if x > T::ZERO { g } else { g * (y + T::from_f64(alpha)) }
    );
    unary_op!(
        /// `x^e` for a constant exponent.
        powf(e: f64), |x| x.powf(T::from_f64(e)), |x, y, g| g * T::from_f64(e) * x.powf(T::from_f64(e - 1.0))
    );
    unary_op!(
        /// `x` limited to `[min, max]` (gradient passes only strictly inside).
        clamp(min: f64, max: f64),
        |x| x.max(T::from_f64(min)).min(T::from_f64(max)),
        |x, y, g| if x >= T::from_f64(min) && x <= T::from_f64(max) { g } else { T::ZERO }
    );
    unary_op!(
        /// `x + c`
        add_scalar(c: f64), |x| x + T::from_f64(c), |x, y, g| g
    );
    unary_op!(
        /// `x * c`
        mul_scalar(c: f64), |x| x * T::from_f64(c), |x, y, g| g * T::from_f64(c)
    );
    unary_op!(
        /// `x - c`
        sub_scalar(c: f64), |x| x - T::from_f64(c), |x, y, g| g
    );
    unary_op!(
        /// `c - x`
        rsub_scalar(c: f64), |x| T::from_f64(c) - x, |x, y, g| -g
    );
    unary_op!(
        /// `x / c`
        div_scalar(c: f64), |x| x / T::from_f64(c), |x, y, g| g / T::from_f64(c)
    );
    unary_op!(
        /// `1 / x`
        recip(), |x| T::ONE / x, |x, y, g| -g * y * y
    );

    /// `1.0` where `x > c`, else `0.0` (a mask; not differentiable, no history).
    pub fn gt_scalar(&self, c: f64) -> Result<Tensor> {
        with_float!(self, "gt_scalar", |T| self.map_values::<T>("gt_scalar", |x| if x > T::from_f64(c) {
            T::ONE
        } else {
            T::ZERO
        }))
    }
}
