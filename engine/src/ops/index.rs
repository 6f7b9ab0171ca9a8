//! Indexing ops: index_select (embedding look-ups), gather (torch.gather), where_cond and
//! masked_select. Indices are plain `usize` slices checked against the axis they index; masks and
//! conditions are float tensors where any non-zero value means true.

use crate::layout::broadcast_shapes;
use crate::{with_float, Error, Float, Result, Tensor};
use saddle_kernels::cpu::index;

/// Fails with an error naming `op`, the first out-of-range index and the axis size.
fn check_indices(
    op: &'static str,
    indices: &[usize],
    size: usize,
    shape: &[usize],
    dim: usize,
) -> Result<()> {
    match indices.iter().position(|&i| i >= size) {
        Some(pos) => Err(Error::arg(
            op,
            format!(
                "index {} (at position {pos}) out of range for size {size} of dimension {dim} of shape {shape:?}",
                indices[pos]
            ),
        )),
        None => Ok(()),
    }
}

impl Tensor {
    /// Entries `indices` along `dim`, in that order (indices may repeat): the output has
    /// `indices.len()` in place of `shape[dim]`. With a `[vocab, dim]` table and `dim = 0` this is
    /// an embedding look-up; the backward adds the gradient rows of repeated indices together.
    /// Fails when `dim` is out of range or an index is not below `shape[dim]`.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let table = Tensor::from_vec(vec![0.0f32, 0.5, 1.0, 1.5, 2.0, 2.5], &[3, 2], Device::Cpu)?
    ///     .with_requires_grad(true); // 3 entries of width 2
    /// let rows = table.index_select(0, &[2, 0, 2])?; // [3, 2]
    /// assert_eq!(rows.to_vec::<f32>()?, vec![2.0, 2.5, 0.0, 0.5, 2.0, 2.5]);
    /// let grads = rows.sum_all()?.backward()?; // entry 2 was read twice
    /// assert_eq!(grads.get(&table).unwrap().to_vec::<f32>()?, vec![1.0, 1.0, 0.0, 0.0, 2.0, 2.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn index_select(&self, dim: usize, indices: &[usize]) -> Result<Tensor> {
        const OP: &str = "index_select";
        let n = self.dim(OP, dim)?;
        check_indices(OP, indices, n, self.shape(), dim)?;
        let s = self.shape();
        let (outer, inner): (usize, usize) =
            (s[..dim].iter().product(), s[dim + 1..].iter().product());
        let mut shape = s.to_vec();
        shape[dim] = indices.len();
        // On a device the indices are uploaded once and shared with the backward, whose
        // scatter-add accumulates repeated indices by atomics.
        on_cuda!(self.is_cuda(), {
            use crate::cuda::ops as dev;
            let lanes = saddle_kernels::geometry::Lanes { outer, n, inner };
            let idx = dev::upload_indices(OP, self.device(), indices, n)?;
            let out = dev::index_select(OP, self, lanes, &idx, &shape)?;
            let in_shape = s.to_vec();
            Ok(out.record(OP, &[self], move |g, _| {
                Ok(vec![Some(dev::index_add(OP, g, lanes, &idx, &in_shape)?)])
            }))
        });
        let out = with_float!(self, OP, |T| {
            let data = self.with_contiguous(OP, |x: &[T]| {
                index::index_select(x, outer, n, inner, indices)
            })?;
            Tensor::from_data(data, &shape)
        });
        let idx = indices.to_vec();
        let in_shape = s.to_vec();
        Ok(out.record(OP, &[self], move |g, _| {
            let dx = with_float!(g, OP, |T| {
                let data =
                    g.with_contiguous(OP, |gs: &[T]| index::index_add(gs, outer, n, inner, &idx))?;
                Tensor::from_data(data, &in_shape)
            });
            Ok(vec![Some(dx)])
        }))
    }

    /// `torch.gather(self, dim, index)`: `index` (row-major values) has shape `index_shape`, of
    /// the same rank as `self` and no larger than `self` in every dimension but `dim`. The output
    /// has shape `index_shape`; at coordinates `c` it holds `self` at `c` with `c[dim]` replaced
    /// by `index[c]`. The backward scatter-adds the gradient to the positions read. Fails when
    /// the shapes do not fit as above, `index` does not have `index_shape`'s element count, or
    /// an index is out of range.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], Device::Cpu)?;
    /// // One entry per row: out[i][0] = x[i][index[i][0]].
    /// let picked = x.gather(1, &[2, 0], &[2, 1])?;
    /// assert_eq!(picked.shape(), &[2, 1]);
    /// assert_eq!(picked.to_vec::<f32>()?, vec![3.0, 4.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn gather(&self, dim: usize, index: &[usize], index_shape: &[usize]) -> Result<Tensor> {
        const OP: &str = "gather";
        let n = self.dim(OP, dim)?;
        let s = self.shape();
        if index_shape.len() != s.len() {
            return Err(Error::shape(
                OP,
                s,
                index_shape,
                "index must have the same rank as the input",
            ));
        }
        if let Some(d) = (0..s.len()).find(|&d| d != dim && index_shape[d] > s[d]) {
            return Err(Error::shape(
                OP,
                s,
                index_shape,
                format!("index is larger than the input in dimension {d}"),
            ));
        }
        let count: usize = index_shape.iter().product();
        if count != index.len() {
            return Err(Error::bad_shape(
                OP,
                index_shape,
                format!("index shape needs {count} values, got {}", index.len()),
            ));
        }
        check_indices(OP, index, n, s, dim)?;
        on_cuda!(self.is_cuda(), {
            use crate::cuda::ops as dev;
            let idx = dev::upload_indices(OP, self.device(), index, n)?;
            let out = dev::gather(OP, self, dim, &idx, index_shape)?;
            let in_shape = s.to_vec();
            Ok(out.record(OP, &[self], move |g, _| {
                Ok(vec![Some(dev::scatter_add(OP, g, &in_shape, dim, &idx)?)])
            }))
        });
        let out = with_float!(self, OP, |T| {
            let data =
                self.with_contiguous(OP, |x: &[T]| index::gather(x, s, dim, index, index_shape))?;
            Tensor::from_data(data, index_shape)
        });
        let (idx, idx_shape, in_shape) = (index.to_vec(), index_shape.to_vec(), s.to_vec());
        Ok(out.record(OP, &[self], move |g, _| {
            let dx = with_float!(g, OP, |T| {
                let data = g.with_contiguous(OP, |gs: &[T]| {
                    index::scatter_add(gs, &in_shape, dim, &idx, &idx_shape)
                })?;
                Tensor::from_data(data, &in_shape)
            });
            Ok(vec![Some(dx)])
        }))
    }

    /// `cond ? a : b` elementwise, with `cond`, `a` and `b` broadcast together (`cond` is a 0/1
    /// float mask, any dtype; non-zero selects `a`). The gradient goes to `a` where `cond` holds
    /// and to `b` elsewhere, summed back to each operand's shape; `cond` gets none. The output
    /// has the broadcast shape. Fails when the shapes do not broadcast, `a` and `b` differ in
    /// dtype, or the three are not on one device.
    ///
    /// ```
    /// # use saddle_engine::{DType, Device, Tensor};
    /// let cond = Tensor::from_vec(vec![1.0f32, 0.0, 1.0], &[3], Device::Cpu)?;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3], Device::Cpu)?
    ///     .with_requires_grad(true);
    /// let b = Tensor::zeros(&[1], DType::F32, Device::Cpu)?; // broadcast
    /// let y = Tensor::where_cond(&cond, &a, &b)?;
    /// assert_eq!(y.to_vec::<f32>()?, vec![1.0, 0.0, 3.0]);
    /// let grads = y.sum_all()?.backward()?;
    /// assert_eq!(grads.get(&a).unwrap().to_vec::<f32>()?, vec![1.0, 0.0, 1.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn where_cond(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        const OP: &str = "where_cond";
        a.check_same(OP, b)?;
        if cond.device() != a.device() {
            return Err(Error::DeviceMismatch {
                op: OP,
                lhs: cond.device(),
                rhs: a.device(),
            });
        }
        let ab = broadcast_shapes(OP, a.shape(), b.shape())?;
        let shape = broadcast_shapes(OP, cond.shape(), &ab)?;
        // On a device: a dense mask of the operands' dtype, selected from by one kernel; the
        // backward selects between the gradient and a broadcast zero with the same mask.
        on_cuda!(a.is_cuda(), {
            use crate::cuda::ops as dev;
            let mask = dev::mask_as(OP, cond, &shape, a.dtype())?;
            let out = dev::select(OP, &mask, a, b, &shape)?;
            let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
            Ok(out.record(OP, &[cond, a, b], move |g, needs| {
                let zero = Tensor::zeros(&[], g.dtype(), g.device())?;
                let ga = if needs[1] {
                    Some(dev::select(OP, &mask, g, &zero, g.shape())?.sum_to_shape(&sa)?)
                } else {
                    None
                };
                let gb = if needs[2] {
                    Some(dev::select(OP, &mask, &zero, g, g.shape())?.sum_to_shape(&sb)?)
                } else {
                    None
                };
                Ok(vec![None, ga, gb])
            }))
        });
        let mask = cond.mask_as(OP, &shape)?;
        let out = with_float!(a, OP, |T| {
            let x = a.detach().broadcast_as(&shape)?.to_vec::<T>()?;
            let y = b.detach().broadcast_as(&shape)?.to_vec::<T>()?;
            let data: Vec<T> = mask
                .iter()
                .zip(x.into_iter().zip(y))
                .map(|(&c, (u, v))| if c { u } else { v })
                .collect();
            Tensor::from_data(data, &shape)
        });
        let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
        Ok(out.record(OP, &[cond, a, b], move |g, needs| {
            // The gradient where the mask equals `side`, zeros elsewhere, summed to `to`.
            let part = |side: bool, to: &[usize]| -> Result<Tensor> {
                let kept = with_float!(g, OP, |T| {
                    let gs = g.to_vec::<T>()?;
                    let data: Vec<T> = gs
                        .into_iter()
                        .zip(&mask)
                        .map(|(v, &c)| if c == side { v } else { T::ZERO })
                        .collect();
                    Tensor::from_data(data, g.shape())
                });
                kept.sum_to_shape(to)
            };
            let ga = if needs[1] {
                Some(part(true, &sa)?)
            } else {
                None
            };
            let gb = if needs[2] {
                Some(part(false, &sb)?)
            } else {
                None
            };
            Ok(vec![None, ga, gb])
        }))
    }

    /// The values of `self` where `mask` (a 0/1 float tensor; non-zero selects) is set, in
    /// row-major order, as a 1-D tensor. `mask` and `self` broadcast together as in PyTorch. The
    /// backward scatters the gradient back to the selected positions (zeros elsewhere). Fails
    /// when the shapes do not broadcast or the two are on different devices.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2], Device::Cpu)?;
    /// let mask = Tensor::from_vec(vec![0.0f32, 1.0], &[2], Device::Cpu)?; // the second column
    /// assert_eq!(x.masked_select(&mask)?.to_vec::<f32>()?, vec![2.0, 4.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn masked_select(&self, mask: &Tensor) -> Result<Tensor> {
        const OP: &str = "masked_select";
        if mask.device() != self.device() {
            return Err(Error::DeviceMismatch {
                op: OP,
                lhs: self.device(),
                rhs: mask.device(),
            });
        }
        let shape = broadcast_shapes(OP, self.shape(), mask.shape())?;
        // On a device: a count pass, one read of the per-chunk counts back to the host (the
        // output's length depends on the mask's values), then an ordered compaction. The
        // counts' prefix sums are kept for the backward, which needs no host read.
        on_cuda!(self.is_cuda(), {
            use crate::cuda::ops as dev;
            let m = dev::mask_as(OP, mask, &shape, self.dtype())?;
            let at = dev::mask_offsets(OP, &m)?;
            let out = dev::mask_compact(OP, &at, &m, self)?;
            let in_shape = self.shape().to_vec();
            Ok(out.record(OP, &[self, mask], move |g, needs| {
                if !needs[0] {
                    return Ok(vec![None, None]);
                }
                let full = dev::mask_expand(OP, &at, &m, g)?;
                Ok(vec![Some(full.sum_to_shape(&in_shape)?), None])
            }))
        });
        let m = mask.mask_as(OP, &shape)?;
        let out = with_float!(self, OP, |T| {
            let values = self
                .detach()
                .broadcast_as(&shape)?
                .with_contiguous(OP, |x: &[T]| {
                    x.iter()
                        .zip(&m)
                        .filter(|(_, keep)| **keep)
                        .map(|(&v, _)| v)
                        .collect::<Vec<T>>()
                })?;
            let n = values.len();
            Tensor::from_data(values, &[n])
        });
        let in_shape = self.shape().to_vec();
        Ok(out.record(OP, &[self, mask], move |g, needs| {
            if !needs[0] {
                return Ok(vec![None, None]);
            }
            let full = with_float!(g, OP, |T| {
                let gs = g.to_vec::<T>()?;
                let mut buf = vec![T::ZERO; m.len()];
                for (slot, v) in buf
                    .iter_mut()
                    .zip(&m)
                    .filter(|(_, keep)| **keep)
                    .map(|(s, _)| s)
                    .zip(gs)
                {
                    *slot = v;
                }
                Tensor::from_data(buf, &shape)
            });
            Ok(vec![Some(full.sum_to_shape(&in_shape)?), None])
        }))
    }

    /// This tensor broadcast to `shape` as booleans (non-zero is true).
    fn mask_as(&self, op: &'static str, shape: &[usize]) -> Result<Vec<bool>> {
        let view = self.detach().broadcast_as(shape)?;
        with_float!(self, op, |T| view.with_contiguous(op, |x: &[T]| x
            .iter()
            .map(|&v| v != T::ZERO)
            .collect()))
    }
}
