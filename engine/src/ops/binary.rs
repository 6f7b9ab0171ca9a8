//! Broadcasting binary ops. The backward of each reduces the gradient back to each operand's
//! shape with [`Tensor::sum_to_shape`].

use crate::{with_float, Float, Result, Tensor};

/// The device kernel of a binary op (`saddle_kernels::cuda::ops::elementwise::BinaryOp`).
#[cfg(feature = "cuda")]
macro_rules! cuda_binary {
    ($kind:ident) => {
        saddle_kernels::cuda::ops::elementwise::BinaryOp::$kind
    };
}

impl Tensor {
    /// Records a binary op whose input gradients are computed from `[a, b, y, g]` (the operands,
    /// the output and its gradient) by `grads`, then summed down to each operand's shape.
    fn record_binary(
        out: Tensor,
        op: &'static str,
        a: &Tensor,
        b: &Tensor,
        grads: impl Fn([&Tensor; 4], &[bool]) -> Result<(Option<Tensor>, Option<Tensor>)>
            + Send
            + Sync
            + 'static,
    ) -> Tensor {
        // `grads` is written with ops, so it is differentiable as it stands.
        out.record(op, &[a, b], move |ctx| {
            let [sa, sb] = ctx.inputs else {
                unreachable!("a binary op records two inputs")
            };
            let (ga, gb) = grads([sa, sb, ctx.output, ctx.g], ctx.needs)?;
            let ga = ga.map(|t| t.sum_to_shape(sa.shape())).transpose()?;
            let gb = gb.map(|t| t.sum_to_shape(sb.shape())).transpose()?;
            Ok(vec![ga, gb])
        })
    }

    /// `self + rhs` with numpy broadcasting: shapes are aligned at their last dimension and a
    /// dimension of 1 (or a missing leading one) stretches to the other's size. The output has
    /// the broadcast shape; each operand's gradient is summed back to its own shape. Fails when
    /// the shapes do not broadcast or the operands differ in dtype or device.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], Device::Cpu)?
    ///     .with_requires_grad(true);
    /// let b = Tensor::from_vec(vec![10.0f32, 20.0, 30.0], &[3], Device::Cpu)?
    ///     .with_requires_grad(true);
    /// let c = a.add(&b)?; // b is added to each row: [2, 3]
    /// assert_eq!(c.to_vec::<f32>()?, vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
    /// assert_eq!(a.sub(&b)?.to_vec::<f32>()?, vec![-9.0, -18.0, -27.0, -6.0, -15.0, -24.0]);
    ///
    /// let grads = c.sum_all()?.backward()?;
    /// let gb = grads.get(&b).unwrap(); // summed over the two rows b was broadcast to
    /// assert_eq!(gb.shape(), &[3]);
    /// assert_eq!(gb.to_vec::<f32>()?, vec![2.0, 2.0, 2.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = cuda_or!(
            self.is_cuda() || rhs.is_cuda(),
            crate::cuda::ops::binary("add", self, rhs, cuda_binary!(Add)),
            with_float!(self, "add", |T| self.zip_values::<T>(
                rhs,
                "add",
                |a, b| a + b
            )?)
        );
        Ok(Self::record_binary(
            out,
            "add",
            self,
            rhs,
            |[_, _, _, g], n| Ok((n[0].then(|| g.clone()), n[1].then(|| g.clone()))),
        ))
    }

    /// `self - rhs` with broadcasting, as [`Tensor::add`] (whose example shows it).
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = cuda_or!(
            self.is_cuda() || rhs.is_cuda(),
            crate::cuda::ops::binary("sub", self, rhs, cuda_binary!(Sub)),
            with_float!(self, "sub", |T| self.zip_values::<T>(
                rhs,
                "sub",
                |a, b| a - b
            )?)
        );
        Ok(Self::record_binary(
            out,
            "sub",
            self,
            rhs,
            |[_, _, _, g], n| {
                Ok((
                    n[0].then(|| g.clone()),
                    if n[1] { Some(g.neg()?) } else { None },
                ))
            },
        ))
    }

    /// `self * rhs` with broadcasting, as [`Tensor::add`].
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2], Device::Cpu)?
    ///     .with_requires_grad(true);
    /// let b = Tensor::from_vec(vec![2.0f32, 4.0], &[2, 1], Device::Cpu)?; // one value per row
    /// let y = a.mul(&b)?;
    /// assert_eq!(y.to_vec::<f32>()?, vec![2.0, 4.0, 12.0, 16.0]);
    /// assert_eq!(a.div(&b)?.to_vec::<f32>()?, vec![0.5, 1.0, 0.75, 1.0]);
    ///
    /// let grads = y.sum_all()?.backward()?; // d(a b)/da = b, broadcast
    /// assert_eq!(grads.get(&a).unwrap().to_vec::<f32>()?, vec![2.0, 2.0, 4.0, 4.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = cuda_or!(
            self.is_cuda() || rhs.is_cuda(),
            crate::cuda::ops::binary("mul", self, rhs, cuda_binary!(Mul)),
            with_float!(self, "mul", |T| self.zip_values::<T>(
                rhs,
                "mul",
                |a, b| a * b
            )?)
        );
        Ok(Self::record_binary(
            out,
            "mul",
            self,
            rhs,
            |[a, b, _, g], n| {
                let ga = if n[0] { Some(g.mul(b)?) } else { None };
                let gb = if n[1] { Some(g.mul(a)?) } else { None };
                Ok((ga, gb))
            },
        ))
    }

    /// `self / rhs` with broadcasting, as [`Tensor::add`]. Example: [`Tensor::mul`].
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = cuda_or!(
            self.is_cuda() || rhs.is_cuda(),
            crate::cuda::ops::binary("div", self, rhs, cuda_binary!(Div)),
            with_float!(self, "div", |T| self.zip_values::<T>(
                rhs,
                "div",
                |a, b| a / b
            )?)
        );
        Ok(Self::record_binary(
            out,
            "div",
            self,
            rhs,
            |[a, b, _, g], n| {
                let ga = if n[0] { Some(g.div(b)?) } else { None };
                // d(a/b)/db = -a / b^2
                let gb = if n[1] {
                    Some(g.mul(a)?.div(&b.square()?)?.neg()?)
                } else {
                    None
                };
                Ok((ga, gb))
            },
        ))
    }

    /// `self ^ rhs` elementwise with broadcasting, as [`Tensor::add`] (self > 0 where rhs is not
    /// an integer). The gradient with respect to `rhs` is `y · ln(self)`.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// # use saddle_engine::gradcheck::assert_close;
    /// let a = Tensor::from_vec(vec![2.0f64, 3.0], &[2], Device::Cpu)?.with_requires_grad(true);
    /// let e = Tensor::from_vec(vec![2.0f64], &[1], Device::Cpu)?;
    /// let y = a.pow(&e)?;
    /// assert_close(&y, &[4.0, 9.0], 1e-12);
    /// let grads = y.sum_all()?.backward()?; // e · a^(e - 1)
    /// assert_close(grads.get(&a).unwrap(), &[4.0, 6.0], 1e-12);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn pow(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = cuda_or!(
            self.is_cuda() || rhs.is_cuda(),
            crate::cuda::ops::binary("pow", self, rhs, cuda_binary!(Pow)),
            with_float!(self, "pow", |T| self.zip_values::<T>(
                rhs,
                "pow",
                |a, b| a.powf(b)
            )?)
        );
        Ok(Self::record_binary(
            out,
            "pow",
            self,
            rhs,
            move |[a, b, y, g], n| {
                let ga = if n[0] {
                    // b * a^(b-1)
                    Some(g.mul(&b.mul(&a.pow(&b.add_scalar(-1.0)?)?)?)?)
                } else {
                    None
                };
                let gb = if n[1] {
                    Some(g.mul(&y.mul(&a.log()?)?)?)
                } else {
                    None
                };
                Ok((ga, gb))
            },
        ))
    }

    /// Elementwise maximum with broadcasting, as [`Tensor::add`]; where the two are equal the
    /// gradient goes to `self`.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let a = Tensor::from_vec(vec![1.0f32, 5.0, 3.0], &[3], Device::Cpu)?
    ///     .with_requires_grad(true);
    /// let b = Tensor::from_vec(vec![4.0f32, 2.0, 3.0], &[3], Device::Cpu)?
    ///     .with_requires_grad(true);
    /// let m = a.maximum(&b)?;
    /// assert_eq!(m.to_vec::<f32>()?, vec![4.0, 5.0, 3.0]);
    /// assert_eq!(a.minimum(&b)?.to_vec::<f32>()?, vec![1.0, 2.0, 3.0]);
    ///
    /// let grads = m.sum_all()?.backward()?; // the tie at index 2 goes to `a`
    /// assert_eq!(grads.get(&a).unwrap().to_vec::<f32>()?, vec![0.0, 1.0, 1.0]);
    /// assert_eq!(grads.get(&b).unwrap().to_vec::<f32>()?, vec![1.0, 0.0, 0.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = cuda_or!(
            self.is_cuda() || rhs.is_cuda(),
            crate::cuda::ops::binary("maximum", self, rhs, cuda_binary!(Maximum)),
            with_float!(self, "maximum", |T| self.zip_values::<T>(
                rhs,
                "maximum",
                |a, b| if a >= b { a } else { b }
            )?)
        );
        Ok(Self::record_binary(
            out,
            "maximum",
            self,
            rhs,
            |[a, b, _, g], n| {
                let mask = a.ge(b)?;
                Self::split_by_mask(g, &mask, n)
            },
        ))
    }

    /// Elementwise minimum with broadcasting; where the two are equal the gradient goes to
    /// `self`. Example: [`Tensor::maximum`].
    pub fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = cuda_or!(
            self.is_cuda() || rhs.is_cuda(),
            crate::cuda::ops::binary("minimum", self, rhs, cuda_binary!(Minimum)),
            with_float!(self, "minimum", |T| self.zip_values::<T>(
                rhs,
                "minimum",
                |a, b| if a <= b { a } else { b }
            )?)
        );
        Ok(Self::record_binary(
            out,
            "minimum",
            self,
            rhs,
            |[a, b, _, g], n| {
                let mask = a.le(b)?;
                Self::split_by_mask(g, &mask, n)
            },
        ))
    }

    /// `(g * mask, g * (1 - mask))`: routes a gradient to whichever operand was selected.
    fn split_by_mask(
        g: &Tensor,
        mask: &Tensor,
        needs: &[bool],
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let ga = if needs[0] { Some(g.mul(mask)?) } else { None };
        let gb = if needs[1] {
            Some(g.mul(&mask.rsub_scalar(1.0)?)?)
        } else {
            None
        };
        Ok((ga, gb))
    }
}

/// Comparison ops: 1.0 where the relation holds, else 0.0, broadcast; no history.
macro_rules! comparison {
    ($($(#[$doc:meta])* $name:ident: $rel:tt => $kind:ident;)*) => {
        impl Tensor {
            $(
                $(#[$doc])*
                pub fn $name(&self, rhs: &Tensor) -> Result<Tensor> {
                    on_cuda!(
                        self.is_cuda() || rhs.is_cuda(),
                        crate::cuda::ops::binary(stringify!($name), self, rhs, cuda_binary!($kind))
                    );
                    with_float!(self, stringify!($name), |T| self.zip_values::<T>(rhs, stringify!($name), |a, b| {
                        if a $rel b { T::ONE } else { T::ZERO }
                    }))
                }
            )*
        }
    };
}

comparison! {
    /// `self > rhs` as a 0/1 mask of the broadcast shape (see [`Tensor::add`]), in the
    /// operands' dtype. Not differentiable: the result has no history.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3], Device::Cpu)?;
    /// let b = Tensor::from_vec(vec![2.0f32], &[1], Device::Cpu)?; // broadcast
    /// assert_eq!(a.gt(&b)?.to_vec::<f32>()?, vec![0.0, 0.0, 1.0]);
    /// assert_eq!(a.ge(&b)?.to_vec::<f32>()?, vec![0.0, 1.0, 1.0]);
    /// assert_eq!(a.lt(&b)?.to_vec::<f32>()?, vec![1.0, 0.0, 0.0]);
    /// assert_eq!(a.le(&b)?.to_vec::<f32>()?, vec![1.0, 1.0, 0.0]);
    /// assert_eq!(a.eq(&b)?.to_vec::<f32>()?, vec![0.0, 1.0, 0.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    gt: > => Gt;
    /// `self >= rhs` as a 0/1 mask (no history). Example: [`Tensor::gt`].
    ge: >= => Ge;
    /// `self < rhs` as a 0/1 mask (no history). Example: [`Tensor::gt`].
    lt: < => Lt;
    /// `self <= rhs` as a 0/1 mask (no history). Example: [`Tensor::gt`].
    le: <= => Le;
    /// `self == rhs` as a 0/1 mask (no history). Example: [`Tensor::gt`].
    eq: == => Eq;
}
