//! The op set. Each file holds one family of ops; every op has its backward beside its forward.
//!
//! Conventions: ops take `&self` and return `Result<Tensor>`; an error names the op and the
//! shapes. Backward closures capture detached copies of what they need (never the output itself
//! with its history, which would make a reference cycle).

mod attention;
mod binary;
pub mod conv;
mod dropout;
mod image;
mod index;
mod join;
mod loss;
mod matmul;
mod misc;
mod norm;
pub mod optim;
mod pool;
mod reduce;
mod softmax;
mod unary;
mod views;

pub(crate) use attention::distinct_dense;
pub(crate) use misc::with_contiguous_pair;

pub use norm::BatchNormOutput;

use crate::layout::broadcast_shapes;
use crate::{Element, Error, Result, Tensor};
use saddle_kernels::cpu::elementwise::{self, Strided};
use std::sync::Arc;

impl Tensor {
    /// Checks that `self` and `rhs` share dtype and device.
    pub(crate) fn check_same(&self, op: &'static str, rhs: &Tensor) -> Result<()> {
        if self.dtype() != rhs.dtype() {
            return Err(Error::DTypeMismatch {
                op,
                lhs: self.dtype(),
                rhs: rhs.dtype(),
            });
        }
        if self.device() != rhs.device() {
            return Err(Error::DeviceMismatch {
                op,
                lhs: self.device(),
                rhs: rhs.device(),
            });
        }
        Ok(())
    }

    /// A new tensor with `f` applied to every value (no history).
    pub(crate) fn map_values<T: Element>(
        &self,
        op: &'static str,
        f: impl Fn(T) -> T + Sync + Clone,
    ) -> Result<Tensor> {
        let data = self.with_contiguous(op, |x: &[T]| elementwise::map(x, f))?;
        Ok(Tensor::from_data(data, self.shape()))
    }

    /// Runs `f` on the raw storage of two tensors and their layouts. Takes one lock when both
    /// share storage (a second read lock on the same RwLock could deadlock behind a writer).
    pub(crate) fn with_two_strided<T: Element, R>(
        &self,
        other: &Tensor,
        op: &'static str,
        f: impl FnOnce(&[T], &[T]) -> R,
    ) -> Result<R> {
        if Arc::ptr_eq(&self.0.storage, &other.0.storage) {
            return self.with_strided(op, |d: &[T], _| f(d, d));
        }
        self.with_strided(op, |a: &[T], _| {
            other.with_strided(op, |b: &[T], _| f(a, b))
        })?
    }

    /// A new tensor `f(self, rhs)` elementwise with numpy broadcasting (no history).
    pub(crate) fn zip_values<T: Element>(
        &self,
        rhs: &Tensor,
        op: &'static str,
        f: impl Fn(T, T) -> T + Sync + Clone,
    ) -> Result<Tensor> {
        self.check_same(op, rhs)?;
        let shape = broadcast_shapes(op, self.shape(), rhs.shape())?;
        if self.shape() == rhs.shape() && self.is_contiguous() && rhs.is_contiguous() {
            let (oa, ob, n) = (self.layout().offset(), rhs.layout().offset(), self.numel());
            let data = self.with_two_strided(rhs, op, |a: &[T], b: &[T]| {
                elementwise::zip(&a[oa..oa + n], &b[ob..ob + n], f.clone())
            })?;
            return Ok(Tensor::from_data(data, &shape));
        }
        let la = self.layout().broadcast_to(op, &shape)?;
        let lb = rhs.layout().broadcast_to(op, &shape)?;
        let data = self.with_two_strided(rhs, op, |a: &[T], b: &[T]| {
            elementwise::zip_strided(
                &shape,
                Strided {
                    data: a,
                    strides: la.strides(),
                    offset: la.offset(),
                },
                Strided {
                    data: b,
                    strides: lb.strides(),
                    offset: lb.offset(),
                },
                &f,
            )
        })?;
        Ok(Tensor::from_data(data, &shape))
    }

    /// `f(x, y, g)` elementwise over three tensors of one shape (backward of unary ops).
    pub(crate) fn map3_values<T: Element>(
        x: &Tensor,
        y: &Tensor,
        g: &Tensor,
        op: &'static str,
        f: impl Fn(T, T, T) -> T + Sync + Clone,
    ) -> Result<Tensor> {
        if x.numel() != g.numel() || y.numel() != g.numel() {
            return Err(Error::shape(
                op,
                x.shape(),
                g.shape(),
                "gradient shape must match",
            ));
        }
        let shared = |a: &Tensor, b: &Tensor| Arc::ptr_eq(&a.0.storage, &b.0.storage);
        let data = if shared(x, y) || shared(x, g) || shared(y, g) {
            // One storage read-locked twice could wait behind a writer: copy instead.
            let (xs, ys, gs) = (x.to_vec::<T>()?, y.to_vec::<T>()?, g.to_vec::<T>()?);
            elementwise::zip3(&xs, &ys, &gs, f)
        } else {
            x.with_contiguous(op, |xs: &[T]| {
                y.with_contiguous(op, |ys: &[T]| {
                    g.with_contiguous(op, |gs: &[T]| elementwise::zip3(xs, ys, gs, f))
                })
            })???
        };
        Ok(Tensor::from_data(data, g.shape()))
    }

    /// Sums a broadcast gradient back down to `shape` (the inverse of broadcasting to
    /// `self.shape()`): leading dimensions `shape` lacks are summed away, and dimensions where
    /// `shape` has 1 are summed with the 1 kept. A bf16 or f16 gradient (of a batch-broadcast
    /// matmul) is summed in f32 and rounded back once. Fails when `self` does not broadcast
    /// from `shape`.
    ///
    /// ```
    /// # use saddle_engine::{DType, Device, Tensor};
    /// let g = Tensor::ones(&[4, 2, 3], DType::F32, Device::Cpu)?;
    /// let s = g.sum_to_shape(&[2, 1])?;
    /// assert_eq!(s.shape(), &[2, 1]);
    /// assert_eq!(s.to_vec::<f32>()?, vec![12.0, 12.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn sum_to_shape(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        if self.dtype().is_half() {
            return self
                .to_dtype(crate::DType::F32)?
                .sum_to_shape(shape)?
                .to_dtype(self.dtype());
        }
        let lead = self.rank().checked_sub(shape.len()).ok_or_else(|| {
            Error::shape(
                "sum_to_shape",
                self.shape(),
                shape,
                "target has more dimensions",
            )
        })?;
        let mut dims: Vec<usize> = (0..lead).collect();
        for (i, &n) in shape.iter().enumerate() {
            let own = self.shape()[lead + i];
            if n == 1 && own != 1 {
                dims.push(lead + i);
            } else if n != own {
                return Err(Error::shape(
                    "sum_to_shape",
                    self.shape(),
                    shape,
                    format!("dimension {i}"),
                ));
            }
        }
        self.sum(&dims, true)?.reshape(shape)
    }
}

/// Normalises a possibly negative axis against `rank`.
pub(crate) fn axis(op: &'static str, shape: &[usize], dim: isize) -> Result<usize> {
    let rank = shape.len() as isize;
    let d = if dim < 0 { dim + rank } else { dim };
    if d < 0 || d >= rank {
        return Err(Error::bad_shape(
            op,
            shape,
            format!("axis {dim} out of range for rank {rank}"),
        ));
    }
    Ok(d as usize)
}
