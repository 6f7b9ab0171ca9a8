//! Views and shape ops: reshape, permute/transpose, narrow, squeeze/unsqueeze, broadcast. Views
//! share storage; their backward maps the gradient back to the source's shape.

use super::axis;
use crate::layout::Layout;
use crate::{with_float, Error, Float, Result, Tensor};
use saddle_kernels::cpu::strided;

impl Tensor {
    /// The same values in row-major order with a new shape of equal size. A view when `self` is
    /// contiguous, a copy otherwise. Fails when the element counts differ.
    ///
    /// ```
    /// # use saddle_engine::{DType, Device, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], Device::Cpu)?;
    /// let y = x.reshape(&[3, 2])?;
    /// assert_eq!(y.shape(), &[3, 2]);
    /// assert_eq!(y.to_vec::<f32>()?, x.to_vec::<f32>()?);
    ///
    /// let images = Tensor::zeros(&[8, 3, 4, 4], DType::F32, Device::Cpu)?;
    /// assert_eq!(images.flatten(1, 3)?.shape(), &[8, 48]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
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
        Ok(out.record("reshape", &[self], move |ctx| {
            Ok(vec![Some(ctx.g.reshape(&in_shape)?)])
        }))
    }

    /// Collapses dimensions `start..=end` into one (a [`Tensor::reshape`], whose example shows
    /// it). Fails unless `start <= end < rank`.
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

    /// Reorders dimensions: output dimension `i` is input dimension `dims[i]` (a view, no
    /// copy). Fails unless `dims` is a permutation of `0..rank`.
    ///
    /// ```
    /// # use saddle_engine::{DType, Device, Tensor};
    /// let x = Tensor::zeros(&[2, 3, 4], DType::F32, Device::Cpu)?;
    /// assert_eq!(x.permute(&[2, 0, 1])?.shape(), &[4, 2, 3]);
    ///
    /// let m = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], Device::Cpu)?;
    /// let t = m.t()?; // [3, 2]
    /// assert_eq!(t.to_vec::<f32>()?, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    /// assert_eq!(m.transpose(0, -1)?.to_vec::<f32>()?, t.to_vec::<f32>()?);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn permute(&self, dims: &[usize]) -> Result<Tensor> {
        let out = self.view_with(self.layout().permute("permute", dims)?);
        let mut inverse = vec![0; dims.len()];
        for (i, &d) in dims.iter().enumerate() {
            inverse[d] = i;
        }
        Ok(out.record("permute", &[self], move |ctx| {
            Ok(vec![Some(ctx.g.permute(&inverse)?)])
        }))
    }

    /// Swaps two dimensions (negative counts from the end); a view. Example:
    /// [`Tensor::permute`].
    pub fn transpose(&self, d0: isize, d1: isize) -> Result<Tensor> {
        let a = axis("transpose", self.shape(), d0)?;
        let b = axis("transpose", self.shape(), d1)?;
        let mut dims: Vec<usize> = (0..self.rank()).collect();
        dims.swap(a, b);
        self.permute(&dims)
    }

    /// Transpose of the last two dimensions (`[..., m, n] -> [..., n, m]`, a view); fails below
    /// rank 2. Example: [`Tensor::permute`].
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

    /// Elements `start..start+len` along `dim` (a view); the gradient is zero outside the
    /// window. Fails when the window does not fit in the dimension.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], Device::Cpu)?
    ///     .with_requires_grad(true);
    /// let w = x.narrow(1, 1, 2)?; // columns 1 and 2
    /// assert_eq!(w.shape(), &[2, 2]);
    /// assert_eq!(w.to_vec::<f32>()?, vec![2.0, 3.0, 5.0, 6.0]);
    /// let grads = w.sum_all()?.backward()?;
    /// assert_eq!(grads.get(&x).unwrap().to_vec::<f32>()?, vec![0.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Tensor> {
        let out = self.view_with(self.layout().narrow("narrow", dim, start, len)?);
        let in_shape = self.shape().to_vec();
        Ok(out.record("narrow", &[self], move |ctx| {
            let g = ctx.g;
            if ctx.create_graph {
                // The window between zeros, as a concatenation (which records).
                let zeros = |n: usize| -> Result<Option<Tensor>> {
                    if n == 0 {
                        return Ok(None);
                    }
                    let mut shape = in_shape.clone();
                    shape[dim] = n;
                    Tensor::zeros(&shape, g.dtype(), g.device()).map(Some)
                };
                let (before, after) = (zeros(start)?, zeros(in_shape[dim] - start - len)?);
                let parts: Vec<&Tensor> = before.iter().chain([g]).chain(after.iter()).collect();
                return Ok(vec![Some(Tensor::concat(&parts, dim)?)]);
            }
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

    /// Splits `dim` into pieces of `size` (the last may be shorter); views, as
    /// [`Tensor::narrow`]. Fails for `size` 0 or `dim` out of range.
    ///
    /// ```
    /// # use saddle_engine::{DType, Device, Tensor};
    /// let x = Tensor::arange(0.0, 5.0, 1.0, DType::F32, Device::Cpu)?; // [0, 1, 2, 3, 4]
    /// let lens: Vec<usize> = x.split(2, 0)?.iter().map(|p| p.numel()).collect();
    /// assert_eq!(lens, vec![2, 2, 1]);
    /// let parts = x.split_sizes(&[1, 4], 0)?;
    /// assert_eq!(parts[1].to_vec::<f32>()?, vec![1.0, 2.0, 3.0, 4.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
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
    /// Example: [`Tensor::split`].
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

    /// Inserts a dimension of size 1 at `dim` (0..=rank; fails beyond).
    ///
    /// ```
    /// # use saddle_engine::{DType, Device, Tensor};
    /// let x = Tensor::zeros(&[2, 3], DType::F32, Device::Cpu)?;
    /// let y = x.unsqueeze(1)?;
    /// assert_eq!(y.shape(), &[2, 1, 3]);
    /// assert_eq!(y.squeeze(1)?.shape(), &[2, 3]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
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

    /// Removes dimension `dim`, which must have size 1 (it fails otherwise). Example:
    /// [`Tensor::unsqueeze`].
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

    /// This tensor stretched to `shape` by broadcasting (a stride-0 view; alias `expand`): the
    /// rules of [`Tensor::add`], with only `self` stretching. The gradient is summed back to
    /// the original shape. Fails when the shape cannot be reached.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0], &[2, 1], Device::Cpu)?.with_requires_grad(true);
    /// let y = x.broadcast_as(&[2, 3])?;
    /// assert_eq!(y.to_vec::<f32>()?, vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
    /// assert_eq!(x.expand(&[4, 2, 3])?.shape(), &[4, 2, 3]);
    /// let grads = y.sum_all()?.backward()?;
    /// assert_eq!(grads.get(&x).unwrap().to_vec::<f32>()?, vec![3.0, 3.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn broadcast_as(&self, shape: &[usize]) -> Result<Tensor> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let out = self.view_with(self.layout().broadcast_to("broadcast_as", shape)?);
        let in_shape = self.shape().to_vec();
        Ok(out.record("broadcast_as", &[self], move |ctx| {
            Ok(vec![Some(ctx.g.sum_to_shape(&in_shape)?)])
        }))
    }

    /// Alias of [`Tensor::broadcast_as`] (whose example shows it), as in PyTorch.
    pub fn expand(&self, shape: &[usize]) -> Result<Tensor> {
        self.broadcast_as(shape)
    }
}
