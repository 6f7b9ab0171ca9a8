//! Joining tensors: concat along an existing axis and stack along a new one. The backward of
//! each hands every operand its slice of the output gradient (a view, no copy).

use crate::{with_float, Element, Error, Result, Tensor};
use saddle_kernels::cpu::index::copy_into_columns;

/// Checks a non-empty list of same-dtype, same-device tensors whose shapes agree everywhere except
/// (when `skip` is given) along that axis.
fn check_operands(op: &'static str, tensors: &[&Tensor], skip: Option<usize>) -> Result<()> {
    let first = tensors
        .first()
        .ok_or_else(|| Error::arg(op, "needs at least one tensor, got an empty list"))?;
    for (i, t) in tensors.iter().enumerate().skip(1) {
        first.check_same(op, t)?;
        let (a, b) = (first.shape(), t.shape());
        let agree = a.len() == b.len()
            && a.iter()
                .zip(b)
                .enumerate()
                .all(|(d, (x, y))| Some(d) == skip || x == y);
        if !agree {
            let reason = match skip {
                Some(d) => format!("tensor {i} differs from tensor 0 outside dimension {d}"),
                None => format!("tensor {i} differs from tensor 0 (stack needs equal shapes)"),
            };
            return Err(Error::shape(op, a, b, reason));
        }
    }
    Ok(())
}

impl Tensor {
    /// Concatenates `tensors` along the existing axis `dim`; all other dimensions must agree.
    /// The output's `dim` is the sum of theirs; each operand's gradient is its slice of the
    /// output's. Fails for an empty list, `dim` out of range, shapes that disagree elsewhere, or
    /// mixed dtypes or devices.
    ///
    /// ```
    /// use saddle_engine::{Device, Tensor};
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2], Device::Cpu)?.with_requires_grad(true);
    /// let b = Tensor::from_vec(vec![3.0f32, 4.0, 5.0, 6.0], &[2, 2], Device::Cpu)?;
    /// let c = Tensor::concat(&[&a, &b], 0)?;
    /// assert_eq!(c.shape(), &[3, 2]);
    /// assert_eq!(c.to_vec::<f32>()?, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    /// let grads = c.sum_all()?.backward()?;
    /// assert_eq!(grads.get(&a).unwrap().shape(), &[1, 2]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn concat(tensors: &[&Tensor], dim: usize) -> Result<Tensor> {
        const OP: &str = "concat";
        check_operands(OP, tensors, Some(dim))?;
        let first = tensors[0];
        first.dim(OP, dim)?;
        let lens: Vec<usize> = tensors.iter().map(|t| t.shape()[dim]).collect();
        let mut shape = first.shape().to_vec();
        shape[dim] = lens.iter().sum();
        let out = cuda_or!(
            first.is_cuda(),
            Self::join_device(OP, tensors, dim, &shape, false),
            with_float!(first, OP, |T| Self::join_values::<T>(
                OP, tensors, dim, &shape
            )?)
        );
        Ok(out.record(OP, tensors, move |ctx| {
            let mut start = 0;
            let mut grads = Vec::with_capacity(lens.len());
            for (&len, &need) in lens.iter().zip(ctx.needs) {
                grads.push(if need {
                    Some(ctx.g.narrow(dim, start, len)?)
                } else {
                    None
                });
                start += len;
            }
            Ok(grads)
        }))
    }

    /// Stacks equally shaped `tensors` along a new axis inserted at `dim` (`0..=rank`), whose
    /// size is the number of tensors. Fails for an empty list, unequal shapes, `dim` beyond the
    /// rank, or mixed dtypes or devices.
    ///
    /// ```
    /// use saddle_engine::{Device, Tensor};
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0], &[2], Device::Cpu)?;
    /// let b = Tensor::from_vec(vec![3.0f32, 4.0], &[2], Device::Cpu)?;
    /// assert_eq!(Tensor::stack(&[&a, &b], 0)?.to_vec::<f32>()?, vec![1.0, 2.0, 3.0, 4.0]);
    /// let s = Tensor::stack(&[&a, &b], 1)?;
    /// assert_eq!(s.shape(), &[2, 2]);
    /// assert_eq!(s.to_vec::<f32>()?, vec![1.0, 3.0, 2.0, 4.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn stack(tensors: &[&Tensor], dim: usize) -> Result<Tensor> {
        const OP: &str = "stack";
        check_operands(OP, tensors, None)?;
        let first = tensors[0];
        if dim > first.rank() {
            return Err(Error::bad_shape(
                OP,
                first.shape(),
                format!("new axis {dim} beyond rank {}", first.rank()),
            ));
        }
        let in_shape = first.shape().to_vec();
        let mut shape = in_shape.clone();
        shape.insert(dim, tensors.len());
        // Each operand is the `[.., 1, ..]` slice at its position along the new axis.
        let out = cuda_or!(
            first.is_cuda(),
            Self::join_device(OP, tensors, dim, &shape, true),
            with_float!(first, OP, |T| Self::join_values::<T>(
                OP, tensors, dim, &shape
            )?)
        );
        Ok(out.record(OP, tensors, move |ctx| {
            let g = ctx.g;
            ctx.needs
                .iter()
                .enumerate()
                .map(|(i, &need)| {
                    if need {
                        g.narrow(dim, i, 1)?.reshape(&in_shape).map(Some)
                    } else {
                        Ok(None)
                    }
                })
                .collect()
        }))
    }

    /// [`Tensor::concat`] / [`Tensor::stack`] (`stacked`) on a device: each operand copied into
    /// its window of the output by the strided-copy kernel (no history).
    #[cfg(feature = "cuda")]
    fn join_device(
        op: &'static str,
        tensors: &[&Tensor],
        dim: usize,
        out_shape: &[usize],
        stacked: bool,
    ) -> Result<Tensor> {
        let first = tensors[0];
        let out = crate::cuda::empty(op, first.device(), out_shape, first.dtype())?;
        let mut start = 0;
        for t in tensors {
            let src = t.detach();
            let (src, len) = if stacked {
                // The operand with the new axis (size 1, any stride) inserted.
                let l = src.layout();
                let (mut shape, mut strides) = (l.shape().to_vec(), l.strides().to_vec());
                shape.insert(dim, 1);
                strides.insert(dim, 1);
                let offset = l.offset();
                (src.view_with(crate::Layout::new(shape, strides, offset)), 1)
            } else {
                let len = t.shape()[dim];
                (src, len)
            };
            let window = out.narrow(dim, start, len)?;
            crate::cuda::copy_into(op, &src, &window)?;
            start += len;
        }
        Ok(out)
    }

    /// Values of `tensors` laid side by side along `dim` of `out_shape`: each operand fills a
    /// window of every row of `prod(out_shape[dim..])` values. For stack, `dim` is the new axis
    /// and each operand's window has `prod(out_shape[dim+1..])` values.
    fn join_values<T: Element>(
        op: &'static str,
        tensors: &[&Tensor],
        dim: usize,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        let numel: usize = out_shape.iter().product();
        let row_len: usize = out_shape[dim..].iter().product();
        let outer: usize = out_shape[..dim].iter().product();
        let mut out = vec![T::ZERO; numel];
        let mut col = 0;
        for t in tensors {
            let slab = t.numel().checked_div(outer).unwrap_or(0);
            t.with_contiguous(op, |src: &[T]| {
                copy_into_columns(&mut out, row_len, col, src, slab)
            })?;
            col += slab;
        }
        Ok(Tensor::from_data(out, out_shape))
    }
}
