//! Maxout, and the helper the fused nn ops share for reading two operands at once.

use crate::{with_float, Element, Error, Float, Result, Tensor};
use saddle_kernels::cpu::elementwise;
use std::sync::Arc;

/// Runs `f` on the row-major values of `a` and `b` (each borrowed when contiguous). When both
/// share storage, `a` is copied first: a second read lock on one RwLock could wait behind a writer.
pub(super) fn with_contiguous_pair<T: Element, R>(
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
    /// dimension shrinks from `size` to `size / pieces` (which must divide). The gradient goes to
    /// the first maximum of each group.
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
        let (outer, groups, inner) = (
            shape[..dim].iter().product::<usize>(),
            size / pieces,
            shape[dim + 1..].iter().product::<usize>(),
        );
        let mut out_shape = shape.to_vec();
        out_shape[dim] = groups;
        // Input index of piece `k` of output element `i` (laid out as [outer, groups, inner]).
        let source = move |i: usize, k: usize| {
            let (o, rest) = (i / (groups * inner), i % (groups * inner));
            let (j, s) = (rest / inner, rest % inner);
            ((o * groups + j) * pieces + k) * inner + s
        };
        let out_numel = outer * groups * inner;
        let (out, winners) = with_float!(self, OP, |T| {
            let (values, winners): (Vec<T>, Vec<u32>) = self.with_contiguous(OP, |x: &[T]| {
                let idx: Vec<usize> = (0..out_numel).collect();
                let best = elementwise::map(&idx, |i| {
                    let mut best = (x[source(i, 0)], 0u32);
                    for k in 1..pieces {
                        let v = x[source(i, k)];
                        if v > best.0 {
                            best = (v, k as u32);
                        }
                    }
                    best
                });
                best.into_iter().unzip()
            })?;
            (Tensor::from_data(values, &out_shape), winners)
        });
        let in_shape = shape.to_vec();
        Ok(out.record(OP, &[self], move |g, _| {
            // Each input element reads its group's gradient when it was the winner.
            let dx = with_float!(g, OP, |T| {
                let gs = g.to_vec::<T>()?;
                let idx: Vec<usize> = (0..in_shape.iter().product()).collect();
                let dx = elementwise::map(&idx, |p| {
                    let (o, rest) = (p / (size * inner), p % (size * inner));
                    let (jk, s) = (rest / inner, rest % inner);
                    let i = (o * groups + jk / pieces) * inner + s;
                    if winners[i] as usize == jk % pieces {
                        gs[i]
                    } else {
                        T::ZERO
                    }
                });
                Tensor::from_data(dx, &in_shape)
            });
            Ok(vec![Some(dx)])
        }))
    }
}
