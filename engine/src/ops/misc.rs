//! Maxout, and the helper the fused nn ops share for reading two operands at once.

use crate::{with_float, Element, Error, Result, Tensor};
use saddle_kernels::cpu::maxout::{self, MaxoutDims};
use std::sync::Arc;

/// Runs `f` on the row-major values of `a` and `b` (each borrowed when contiguous). When both
/// share storage, `a` is copied first: a second read lock on one RwLock could wait behind a writer.
pub(crate) fn with_contiguous_pair<T: Element, R>(
    a: &Tensor,
    b: &Tensor,
    op: &'static str,
    f: impl FnOnce(&[T], &[T]) -> R,
) -> Result<R> {
    if Arc::ptr_eq(&a.0.storage, &b.0.storage) {
        let av = a.to_vec::<T>()?;
        return b.with_contiguous(op, |bv: &[T]| f(&av, bv));
    }
    a.with_contiguous(op, |av: &[T]| b.with_contiguous(op, |bv: &[T]| f(av, bv)))?
}

impl Tensor {
    /// Maxout: the maximum over groups of `pieces` consecutive entries along `dim`, so that
    /// dimension shrinks from `size` to `size / pieces` (which must divide). Tied maxima share the
    /// gradient equally, on every device (as a max reduction's). Fails when `dim` is out of
    /// range or `pieces` is 0 or does not divide its size.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 4.0, 3.0, 2.0], &[1, 4], Device::Cpu)?
    ///     .with_requires_grad(true);
    /// let y = x.maxout(2, 1)?; // groups (1, 4) and (3, 2): [1, 4] -> [1, 2]
    /// assert_eq!(y.to_vec::<f32>()?, vec![4.0, 3.0]);
    /// let grads = y.sum_all()?.backward()?;
    /// assert_eq!(grads.get(&x).unwrap().to_vec::<f32>()?, vec![0.0, 1.0, 1.0, 0.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn maxout(&self, pieces: usize, dim: usize) -> Result<Tensor> {
        const OP: &str = "maxout";
        let size = self.dim(OP, dim)?;
        if pieces == 0 || size % pieces != 0 {
            return Err(Error::bad_shape(
                OP,
                self.shape(),
                format!("dimension {dim} of size {size} does not split into groups of {pieces}"),
            ));
        }
        let shape = self.shape();
        let dims = MaxoutDims {
            outer: shape[..dim].iter().product::<usize>(),
            groups: size / pieces,
            pieces,
            inner: shape[dim + 1..].iter().product::<usize>(),
        };
        let mut out_shape = shape.to_vec();
        out_shape[dim] = dims.groups;
        // On a device: a max over the pieces axis, whose backward shares the gradient among
        // tied maxima as the CPU kernel's does.
        on_cuda!(
            self.is_cuda(),
            self.reshape(&[dims.outer, dims.groups, dims.pieces, dims.inner])?
                .max(&[2], false)?
                .reshape(&out_shape)
        );
        let (out, winners) = with_float!(self, OP, |T| {
            let (values, winners) = self.with_contiguous(OP, |x: &[T]| maxout::maxout(x, dims))?;
            (Tensor::from_data(values, &out_shape), winners)
        });
        let in_shape = shape.to_vec();
        Ok(out.record(OP, &[self], move |ctx| {
            let (x, g) = (&ctx.inputs[0], ctx.g);
            if ctx.create_graph {
                // The max reduction's formula: a constant mask of the maxima, the gradient
                // shared among ties.
                let grouped = [dims.outer, dims.groups, dims.pieces, dims.inner];
                let kept = [dims.outer, dims.groups, 1, dims.inner];
                let hit = x.reshape(&grouped)?.eq(&ctx.output.reshape(&kept)?)?;
                let share = g.reshape(&kept)?.div(&hit.sum(&[2], true)?)?;
                return Ok(vec![Some(hit.mul(&share)?.reshape(&in_shape)?)]);
            }
            let dx = with_float!(g, OP, |T| {
                let dx = with_contiguous_pair(x, g, OP, |xs: &[T], gs: &[T]| {
                    maxout::maxout_backward(xs, gs, &winners, dims)
                })?;
                Tensor::from_data(dx, &in_shape)
            });
            Ok(vec![Some(dx)])
        }))
    }
}
