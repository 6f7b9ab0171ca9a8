//! Reductions over any set of axes: sum, mean, max, min, var.

use crate::{with_float, Element, Error, Result, Tensor};
use saddle_kernels::cpu::reduce;

/// How a reduction lays out its work: which axes stay, the output shape with and without the
/// reduced axes, and the permutation that puts the reduced axes last.
struct ReducePlan {
    perm: Vec<usize>,
    keep_shape: Vec<usize>,
    out_shape: Vec<usize>,
    reduced: usize,
}

fn plan(op: &'static str, shape: &[usize], dims: &[usize], keepdim: bool) -> Result<ReducePlan> {
    if dims.is_empty() {
        return Err(Error::arg(
            op,
            "no axes to reduce (use the *_all variant to reduce everything)",
        ));
    }
    let mut reduce_mask = vec![false; shape.len()];
    for &d in dims {
        if d >= shape.len() || std::mem::replace(&mut reduce_mask[d], true) {
            return Err(Error::bad_shape(
                op,
                shape,
                format!("axes {dims:?} out of range or repeated"),
            ));
        }
    }
    let kept: Vec<usize> = (0..shape.len()).filter(|&d| !reduce_mask[d]).collect();
    let reduced_axes: Vec<usize> = (0..shape.len()).filter(|&d| reduce_mask[d]).collect();
    let keep_shape: Vec<usize> = (0..shape.len())
        .map(|d| if reduce_mask[d] { 1 } else { shape[d] })
        .collect();
    let out_shape = if keepdim {
        keep_shape.clone()
    } else {
        kept.iter().map(|&d| shape[d]).collect()
    };
    let reduced = reduced_axes.iter().map(|&d| shape[d]).product();
    let perm = kept.into_iter().chain(reduced_axes).collect();
    Ok(ReducePlan {
        perm,
        keep_shape,
        out_shape,
        reduced,
    })
}

impl Tensor {
    /// Applies a row reduction kernel after moving the reduced axes last.
    fn reduce_with<T: Element>(
        &self,
        op: &'static str,
        p: &ReducePlan,
        kernel: impl FnOnce(&[T], usize) -> Vec<T>,
    ) -> Result<Tensor> {
        if p.reduced == 0 {
            return Err(Error::bad_shape(
                op,
                self.shape(),
                "cannot reduce over an empty axis",
            ));
        }
        let moved = self.detach().permute(&p.perm)?;
        let data = moved.with_contiguous(op, |x: &[T]| kernel(x, p.reduced))?;
        Ok(Tensor::from_data(data, &p.out_shape))
    }

    /// Sum over the axes `dims`. The output drops those axes, or keeps them with size 1 when
    /// `keepdim`. Fails when `dims` is empty, repeats an axis or names one out of range, or a
    /// reduced axis is empty (use [`Tensor::sum_all`] to reduce everything).
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], Device::Cpu)?
    ///     .with_requires_grad(true);
    /// let rows = x.sum(&[1], false)?; // [2]
    /// assert_eq!(rows.to_vec::<f32>()?, vec![6.0, 15.0]);
    /// let cols = x.sum(&[0], true)?; // [1, 3]
    /// assert_eq!(cols.shape(), &[1, 3]);
    /// assert_eq!(cols.to_vec::<f32>()?, vec![5.0, 7.0, 9.0]);
    ///
    /// let grads = rows.sum_all()?.backward()?; // every element counted once
    /// assert_eq!(grads.get(&x).unwrap().to_vec::<f32>()?, vec![1.0; 6]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn sum(&self, dims: &[usize], keepdim: bool) -> Result<Tensor> {
        let p = plan("sum", self.shape(), dims, keepdim)?;
        let out = cuda_or!(
            self.is_cuda(),
            crate::cuda::ops::reduce(
                "sum",
                self,
                dims,
                saddle_kernels::cuda::ops::reduce::ReduceOp::Sum,
                &p.out_shape
            ),
            with_float!(self, "sum", |T| self.reduce_with::<T>(
                "sum",
                &p,
                reduce::sum_rows
            )?)
        );
        let (in_shape, keep_shape) = (self.shape().to_vec(), p.keep_shape);
        Ok(out.record("sum", &[self], move |ctx| {
            Ok(vec![Some(
                ctx.g.reshape(&keep_shape)?.broadcast_as(&in_shape)?,
            )])
        }))
    }

    /// Mean over the axes `dims`, with shapes and errors as [`Tensor::sum`].
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2], Device::Cpu)?;
    /// assert_eq!(x.mean(&[0], false)?.to_vec::<f32>()?, vec![2.0, 3.0]);
    /// let all = x.mean(&[0, 1], true)?;
    /// assert_eq!(all.shape(), &[1, 1]);
    /// assert_eq!(all.to_scalar()?, 2.5);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn mean(&self, dims: &[usize], keepdim: bool) -> Result<Tensor> {
        let p = plan("mean", self.shape(), dims, keepdim)?;
        let n = p.reduced as f64;
        self.sum(dims, keepdim)?.div_scalar(n)
    }

    /// Variance over `dims` with `correction` subtracted from the count (0: population variance
    /// as batch norm uses, 1: the unbiased estimate). Shapes and errors as [`Tensor::sum`];
    /// also fails when a group has no more than `correction` values.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// # use saddle_engine::gradcheck::assert_close;
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[1, 4], Device::Cpu)?;
    /// // Squared deviations from 2.5 add up to 5.
    /// assert_eq!(x.var(&[1], false, 0)?.to_vec::<f64>()?, vec![1.25]);
    /// assert_close(&x.var(&[1], false, 1)?, &[5.0 / 3.0], 1e-12);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn var(&self, dims: &[usize], keepdim: bool, correction: usize) -> Result<Tensor> {
        let p = plan("var", self.shape(), dims, keepdim)?;
        if p.reduced <= correction {
            return Err(Error::bad_shape(
                "var",
                self.shape(),
                format!("needs more than {correction} elements per group"),
            ));
        }
        // On a device: the same value as a composition of dispatched ops, whose recorded
        // backward is the same gradient 2 (x - mean) / (n - correction).
        on_cuda!(self.is_cuda(), {
            let centred = self.sub(&self.mean(dims, true)?)?;
            centred
                .square()?
                .sum(dims, keepdim)?
                .div_scalar((p.reduced - correction) as f64)
        });
        let out = with_float!(self, "var", |T| self.reduce_with::<T>(
            "var",
            &p,
            |x, len| reduce::var_rows(x, len, correction)
        )?);
        let keep_shape = p.keep_shape;
        let (dims, denom) = (dims.to_vec(), (p.reduced - correction) as f64);
        Ok(out.record("var", &[self], move |ctx| {
            // d var / dx = 2 (x - mean) / (n - correction)
            let x = &ctx.inputs[0];
            let centred = x.sub(&x.mean(&dims, true)?)?;
            let scale = ctx.g.reshape(&keep_shape)?.mul_scalar(2.0 / denom)?;
            Ok(vec![Some(centred.mul(&scale)?)])
        }))
    }

    /// Maximum over `dims` (shapes and errors as [`Tensor::sum`]); the gradient is shared
    /// equally among tied maxima.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 3.0, 3.0, 0.0, 2.0, 1.0], &[2, 3], Device::Cpu)?
    ///     .with_requires_grad(true);
    /// let m = x.max(&[1], false)?; // [2]
    /// assert_eq!(m.to_vec::<f32>()?, vec![3.0, 2.0]);
    /// assert_eq!(x.min(&[0], false)?.to_vec::<f32>()?, vec![0.0, 2.0, 1.0]);
    ///
    /// let grads = m.sum_all()?.backward()?; // row 0's two maxima share its gradient
    /// assert_eq!(grads.get(&x).unwrap().to_vec::<f32>()?, vec![0.0, 0.5, 0.5, 0.0, 1.0, 0.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn max(&self, dims: &[usize], keepdim: bool) -> Result<Tensor> {
        let p = plan("max", self.shape(), dims, keepdim)?;
        let out = cuda_or!(
            self.is_cuda(),
            crate::cuda::ops::reduce(
                "max",
                self,
                dims,
                saddle_kernels::cuda::ops::reduce::ReduceOp::Max,
                &p.out_shape
            ),
            with_float!(self, "max", |T| self.reduce_with::<T>(
                "max",
                &p,
                reduce::max_rows
            )?)
        );
        Ok(self.record_extremum("max", out, dims, p.keep_shape))
    }

    /// Minimum over `dims` (shapes and errors as [`Tensor::sum`]); the gradient is shared
    /// equally among tied minima. Example: [`Tensor::max`].
    pub fn min(&self, dims: &[usize], keepdim: bool) -> Result<Tensor> {
        let p = plan("min", self.shape(), dims, keepdim)?;
        let out = cuda_or!(
            self.is_cuda(),
            crate::cuda::ops::reduce(
                "min",
                self,
                dims,
                saddle_kernels::cuda::ops::reduce::ReduceOp::Min,
                &p.out_shape
            ),
            with_float!(self, "min", |T| self.reduce_with::<T>(
                "min",
                &p,
                reduce::min_rows
            )?)
        );
        Ok(self.record_extremum("min", out, dims, p.keep_shape))
    }

    fn record_extremum(
        &self,
        op: &'static str,
        out: Tensor,
        dims: &[usize],
        keep_shape: Vec<usize>,
    ) -> Tensor {
        let dims = dims.to_vec();
        out.record(op, &[self], move |ctx| {
            // The mask of the maxima (a constant) shares the gradient among ties.
            let hit = ctx.inputs[0].eq(&ctx.output.reshape(&keep_shape)?)?;
            let count = hit.sum(&dims, true)?;
            let share = ctx.g.reshape(&keep_shape)?.div(&count)?;
            Ok(vec![Some(hit.mul(&share)?)])
        })
    }

    /// Sum of all elements, as a 0-d tensor (shape `[]`); a 0-d input is returned as it is.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2], Device::Cpu)?;
    /// let s = x.sum_all()?;
    /// assert!(s.shape().is_empty());
    /// assert_eq!(s.to_scalar()?, 10.0);
    /// assert_eq!(x.mean_all()?.to_scalar()?, 2.5);
    /// assert_eq!(x.max_all()?.to_scalar()?, 4.0);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn sum_all(&self) -> Result<Tensor> {
        if self.rank() == 0 {
            return Ok(self.clone());
        }
        let dims: Vec<usize> = (0..self.rank()).collect();
        self.sum(&dims, false)
    }

    /// Mean of all elements, as a 0-d tensor. Example: [`Tensor::sum_all`].
    pub fn mean_all(&self) -> Result<Tensor> {
        if self.rank() == 0 {
            return Ok(self.clone());
        }
        let dims: Vec<usize> = (0..self.rank()).collect();
        self.mean(&dims, false)
    }

    /// Maximum of all elements, as a 0-d tensor (gradient shared among ties). Example:
    /// [`Tensor::sum_all`].
    pub fn max_all(&self) -> Result<Tensor> {
        let dims: Vec<usize> = (0..self.rank()).collect();
        if dims.is_empty() {
            return Ok(self.clone());
        }
        self.max(&dims, false)
    }

    /// Index of the maximum along `dim` for each position of the other axes, in row-major order
    /// of those positions (the first index on ties; no gradient). Fails when `dim` is out of
    /// range or empty.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 7.0, 3.0, 9.0, 2.0, 4.0], &[2, 3], Device::Cpu)?;
    /// assert_eq!(x.argmax(1)?, vec![1, 0]); // per row
    /// assert_eq!(x.argmax(0)?, vec![1, 0, 1]); // per column
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn argmax(&self, dim: usize) -> Result<Vec<usize>> {
        let n = self.dim("argmax", dim)?;
        let mut perm: Vec<usize> = (0..self.rank()).filter(|&d| d != dim).collect();
        perm.push(dim);
        let moved = self.detach().permute(&perm)?;
        let values = moved.to_vec_f64()?;
        if n == 0 {
            return Err(Error::bad_shape("argmax", self.shape(), "empty axis"));
        }
        Ok(values
            .chunks(n)
            .map(|row| {
                row.iter()
                    .enumerate()
                    .fold(0, |best, (i, &v)| if v > row[best] { i } else { best })
            })
            .collect())
    }
}
