//! Matrix product and batched matrix product with broadcast batch dimensions.

use crate::layout::broadcast_shapes;
use crate::{with_float, Element, Error, Result, Tensor};
use rayon::prelude::*;
use saddle_kernels::cpu::gemm::{gemm, MatRef};

impl Tensor {
    /// `self @ rhs` for `[..., m, k] @ [..., k, n] -> [..., m, n]`; the batch dimensions (all but
    /// the last two) broadcast. Transposed views are multiplied without copying.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        const OP: &str = "matmul";
        self.check_same(OP, rhs)?;
        let (sa, sb) = (self.shape(), rhs.shape());
        if sa.len() < 2 || sb.len() < 2 {
            return Err(Error::shape(OP, sa, sb, "both operands need at least 2 dimensions"));
        }
        let (m, k) = (sa[sa.len() - 2], sa[sa.len() - 1]);
        let (k2, n) = (sb[sb.len() - 2], sb[sb.len() - 1]);
        if k != k2 {
            return Err(Error::shape(OP, sa, sb, format!("inner dimensions differ: {k} vs {k2}")));
        }
        let batch = broadcast_shapes(OP, &sa[..sa.len() - 2], &sb[..sb.len() - 2])?;
        let out = with_float!(self, OP, |T| self.matmul_values::<T>(rhs, &batch, m, k, n)?);
        let (a, b) = (self.detach(), rhs.detach());
        Ok(out.record(OP, &[self, rhs], move |g, needs| {
            let ga = if needs[0] { Some(g.matmul(&b.t()?)?.sum_to_shape(a.shape())?) } else { None };
            let gb = if needs[1] { Some(a.t()?.matmul(g)?.sum_to_shape(b.shape())?) } else { None };
            Ok(vec![ga, gb])
        }))
    }

    fn matmul_values<T: Element>(&self, rhs: &Tensor, batch: &[usize], m: usize, k: usize, n: usize) -> Result<Tensor> {
        let mut full_a = batch.to_vec();
        full_a.extend([m, k]);
        let mut full_b = batch.to_vec();
        full_b.extend([k, n]);
        let la = self.layout().broadcast_to("matmul", &full_a)?;
        let lb = rhs.layout().broadcast_to("matmul", &full_b)?;
        let nb: usize = batch.iter().product();
        let mut out = vec![T::ZERO; nb * m * n];
        // Offset of matrix `i` of the batch in a layout whose last two dims are the matrix.
        let batch_offset = |strides: &[usize], base: usize, i: usize| {
            let mut rem = i;
            let mut off = base;
            for d in (0..batch.len()).rev() {
                off += (rem % batch[d]) * strides[d];
                rem /= batch[d];
            }
            off
        };
        let r = batch.len();
        self.with_two_strided(rhs, "matmul", |a: &[T], b: &[T]| {
            let one = |(i, c): (usize, &mut [T])| {
                let oa = batch_offset(la.strides(), la.offset(), i);
                let ob = batch_offset(lb.strides(), lb.offset(), i);
                let am = MatRef { data: &a[oa..], rows: m, cols: k, rs: la.strides()[r], cs: la.strides()[r + 1] };
                let bm = MatRef { data: &b[ob..], rows: k, cols: n, rs: lb.strides()[r], cs: lb.strides()[r + 1] };
                gemm(am, bm, T::ZERO, c, n);
            };
            if m * n == 0 {
                return;
            }
            // Many small products: spread the batch over threads; a few large ones: let the
            // GEMM parallelise inside each product.
            if nb > 1 && m * n * k < (1 << 18) {
                out.par_chunks_mut(m * n).enumerate().for_each(one);
            } else {
                out.chunks_mut(m * n).enumerate().for_each(one);
            }
        })?;
        let mut shape = batch.to_vec();
        shape.extend([m, n]);
        Ok(Tensor::from_data(out, &shape))
    }
}
