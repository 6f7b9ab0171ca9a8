//! Views and shape ops: reshape, permute/transpose, narrow, squeeze/unsqueeze, broadcast. Views
//! share storage; their backward maps the gradient back to the source's shape.

use super::axis;
use crate::layout::Layout;
use crate::{with_float, Error, Float, Result, Tensor};
use saddle_kernels::cpu::strided;

impl Tensor {
    /// The same values with a new shape of equal size. A view when `self` is contiguous, a copy
    /// otherwise.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let numel: usize = shape.iter().product();
        if numel != self.numel() {
            return Err(Error::shape(
                "reshape",
                self.shape(),
                shape,
                "element counts differ",
            ));
        }
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let src = if self.is_contiguous() {
            self.clone()
        } else {
            self.contiguous()?
        };
        let out = src.view_with(Layout::new(
            shape.to_vec(),
            crate::layout::contiguous_strides(shape),
            src.layout().offset(),
        ));
        let in_shape = self.shape().to_vec();
        Ok(out.record("reshape", &[self], move |g, _| {
            Ok(vec![Some(g.reshape(&in_shape)?)])
        }))
    }

    /// Collapses dimensions `start..=end` into one.
    pub fn flatten(&self, start: usize, end: usize) -> Result<Tensor> {
        if start > end || end >= self.rank() {
            return Err(Error::bad_shape(
                "flatten",
                self.shape(),
                format!("cannot flatten dims {start}..={end}"),
            ));
        }
        let s = self.shape();
        let mut shape = s[..start].to_vec();
        shape.push(s[start..=end].iter().product());
        shape.extend_from_slice(&s[end + 1..]);
        self.reshape(&shape)
    }

    /// Reorders dimensions: output dimension `i` is input dimension `dims[i]` (a view).
    pub fn permute(&self, dims: &[usize]) -> Result<Tensor> {
        let out = self.view_with(self.layout().permute("permute", dims)?);
        let mut inverse = vec![0; dims.len()];
        for (i, &d) in dims.iter().enumerate() {
            inverse[d] = i;
        }
        Ok(out.record("permute", &[self], move |g, _| {
            Ok(vec![Some(g.permute(&inverse)?)])
        }))
    }

    /// Swaps two dimensions (negative counts from the end); a view.
    pub fn transpose(&self, d0: isize, d1: isize) -> Result<Tensor> {
        let a = axis("transpose", self.shape(), d0)?;
        let b = axis("transpose", self.shape(), d1)?;
        let mut dims: Vec<usize> = (0..self.rank()).collect();
        dims.swap(a, b);
        self.permute(&dims)
    }

    /// Transpose of the last two dimensions.
    pub fn t(&self) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(Error::bad_shape(
                "t",
                self.shape(),
                "needs at least 2 dimensions",
            ));
        }
        self.transpose(-2, -1)
    }

    /// Elements `start..start+len` along `dim` (a view).
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Tensor> {
        let out = self.view_with(self.layout().narrow("narrow", dim, start, len)?);
        let in_shape = self.shape().to_vec();
        Ok(out.record("narrow", &[self], move |g, _| {
            // Gradient: zeros of the input's shape with `g` written into the narrowed window.
            on_cuda!(g.is_cuda(), {
                let full = Tensor::zeros(&in_shape, g.dtype(), g.device())?;
                let window = full.detach().narrow(dim, start, len)?;
                crate::cuda::copy_into("narrow backward", g, &window)?;
                drop(window);
                Ok(vec![Some(full)])
            });
            let full = with_float!(g, "narrow backward", |T| {
                let mut buf = vec![T::ZERO; in_shape.iter().product()];
                let window = Layout::contiguous(&in_shape).narrow("narrow", dim, start, len)?;
                let values = g.to_vec::<T>()?;
                strided::write_strided(
                    &mut buf,
                    window.shape(),
                    window.strides(),
                    window.offset(),
                    &values,
                );
                Tensor::from_data(buf, &in_shape)
            });
            Ok(vec![Some(full)])
        }))
    }

    /// Splits `dim` into pieces of `size` (the last may be shorter); views.
    pub fn split(&self, size: usize, dim: usize) -> Result<Vec<Tensor>> {
        let n = self.dim("split", dim)?;
        if size == 0 {
            return Err(Error::arg("split", "piece size must be positive"));
        }
        (0..n)
            .step_by(size)
            .map(|s| self.narrow(dim, s, size.min(n - s)))
            .collect()
    }

    /// Splits `dim` into pieces of the given sizes (which must add up to its length); views.
    pub fn split_sizes(&self, sizes: &[usize], dim: usize) -> Result<Vec<Tensor>> {
        let n = self.dim("split_sizes", dim)?;
        if sizes.iter().sum::<usize>() != n {
            return Err(Error::bad_shape(
                "split_sizes",
                self.shape(),
                format!("sizes {sizes:?} do not add up to dimension {dim}"),
            ));
        }
        let mut start = 0;
        sizes
            .iter()
            .map(|&len| {
                let piece = self.narrow(dim, start, len);
                start += len;
                piece
            })
            .collect()
    }

    /// Inserts a dimension of size 1 at `dim` (0..=rank).
    pub fn unsqueeze(&self, dim: usize) -> Result<Tensor> {
        if dim > self.rank() {
            return Err(Error::bad_shape(
                "unsqueeze",
                self.shape(),
                format!("position {dim} beyond rank"),
            ));
        }
        let mut shape = self.shape().to_vec();
        shape.insert(dim, 1);
        self.reshape(&shape)
    }

    /// Removes dimension `dim`, which must have size 1.
    pub fn squeeze(&self, dim: usize) -> Result<Tensor> {
        if self.dim("squeeze", dim)? != 1 {
            return Err(Error::bad_shape(
                "squeeze",
                self.shape(),
                format!("dimension {dim} is not 1"),
            ));
        }
        let mut shape = self.shape().to_vec();
        shape.remove(dim);
        self.reshape(&shape)
    }

    /// This tensor stretched to `shape` by broadcasting (a stride-0 view; alias `expand`).
    pub fn broadcast_as(&self, shape: &[usize]) -> Result<Tensor> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let out = self.view_with(self.layout().broadcast_to("broadcast_as", shape)?);
        let in_shape = self.shape().to_vec();
        Ok(out.record("broadcast_as", &[self], move |g, _| {
            Ok(vec![Some(g.sum_to_shape(&in_shape)?)])
        }))
    }

    /// Alias of [`Tensor::broadcast_as`], as in PyTorch.
    pub fn expand(&self, shape: &[usize]) -> Result<Tensor> {
        self.broadcast_as(shape)
    }
}
