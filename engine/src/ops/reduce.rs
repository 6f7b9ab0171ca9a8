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

    /// Sum over `dims`.
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
        Ok(out.record("sum", &[self], move |g, _| {
            Ok(vec![Some(g.reshape(&keep_shape)?.broadcast_as(&in_shape)?)])
        }))
    }

    /// Mean over `dims`.
    pub fn mean(&self, dims: &[usize], keepdim: bool) -> Result<Tensor> {
        let p = plan("mean", self.shape(), dims, keepdim)?;
        let n = p.reduced as f64;
        self.sum(dims, keepdim)?.div_scalar(n)
    }

    /// Variance over `dims` with `correction` subtracted from the count (0: population variance
    /// as batch norm uses, 1: the unbiased estimate).
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
        let (xs, keep_shape) = (self.detach(), p.keep_shape);
        let (dims, denom) = (dims.to_vec(), (p.reduced - correction) as f64);
        Ok(out.record("var", &[self], move |g, _| {
            // d var / dx = 2 (x - mean) / (n - correction)
            let centred = xs.sub(&xs.mean(&dims, true)?)?;
            let scale = g.reshape(&keep_shape)?.mul_scalar(2.0 / denom)?;
            Ok(vec![Some(centred.mul(&scale)?)])
        }))
    }

    /// Maximum over `dims`; the gradient is shared equally among tied maxima.
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

    /// Minimum over `dims`; the gradient is shared equally among tied minima.
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
        let (xs, ys, dims) = (self.detach(), out.detach(), dims.to_vec());
        out.record(op, &[self], move |g, _| {
            let hit = xs.eq(&ys.reshape(&keep_shape)?)?;
            let count = hit.sum(&dims, true)?;
            let share = g.reshape(&keep_shape)?.div(&count)?;
            Ok(vec![Some(hit.mul(&share)?)])
        })
    }

    /// Sum of all elements (a 0-d tensor).
    pub fn sum_all(&self) -> Result<Tensor> {
        if self.rank() == 0 {
            return Ok(self.clone());
        }
        let dims: Vec<usize> = (0..self.rank()).collect();
        self.sum(&dims, false)
    }

    /// Mean of all elements (a 0-d tensor).
    pub fn mean_all(&self) -> Result<Tensor> {
        if self.rank() == 0 {
            return Ok(self.clone());
        }
        let dims: Vec<usize> = (0..self.rank()).collect();
        self.mean(&dims, false)
    }

    /// Maximum of all elements (a 0-d tensor).
    pub fn max_all(&self) -> Result<Tensor> {
        let dims: Vec<usize> = (0..self.rank()).collect();
        if dims.is_empty() {
            return Ok(self.clone());
        }
        self.max(&dims, false)
    }

    /// Index of the maximum along `dim` for each position of the other axes (no gradient).
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
