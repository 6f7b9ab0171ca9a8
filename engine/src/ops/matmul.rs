//! Matrix product and batched matrix product with broadcast batch dimensions.

use crate::layout::broadcast_shapes;
use crate::{with_float, DType, Element, Error, Result, Tensor};
use rayon::prelude::*;
use saddle_kernels::cpu::elementwise;
use saddle_kernels::cpu::gemm::{gemm_uninit, MatRef};
use saddle_kernels::cpu::{assume_init, uninit_vec};
use std::mem::MaybeUninit;

impl Tensor {
    /// `self @ rhs` for `[..., m, k] @ [..., k, n] -> [..., m, n]`; the batch dimensions (all but
    /// the last two) broadcast. Transposed views are multiplied without copying.
    ///
    /// bf16 and f16 operands give a result of their dtype: the exact products summed in f32,
    /// each result rounded once to the dtype, as PyTorch. On the CPU that is the f32 GEMM of the
    /// widened operands; on a device, the tensor-core kernel (compute capability 8.0 or newer).
    ///
    /// Fails when an operand has rank below 2, the inner dimensions differ, the batch
    /// dimensions do not broadcast, or dtypes or devices differ.
    ///
    /// ```
    /// # use saddle_engine::{DType, Device, Tensor};
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], Device::Cpu)?
    ///     .with_requires_grad(true);
    /// let b = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 2], Device::Cpu)?;
    /// let c = a.matmul(&b)?; // [2, 3] @ [3, 2] -> [2, 2]
    /// assert_eq!(c.to_vec::<f32>()?, vec![4.0, 5.0, 10.0, 11.0]);
    /// // d sum(a b) / da = 1 bᵀ: every row holds b's row sums.
    /// let grads = c.sum_all()?.backward()?;
    /// assert_eq!(grads.get(&a).unwrap().to_vec::<f32>()?, vec![1.0, 1.0, 2.0, 1.0, 1.0, 2.0]);
    ///
    /// // Batch dimensions broadcast: [4, 2, 3] @ [3, 2] -> [4, 2, 2].
    /// let batch = Tensor::ones(&[4, 2, 3], DType::F32, Device::Cpu)?;
    /// assert_eq!(batch.matmul(&b)?.shape(), &[4, 2, 2]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        const OP: &str = "matmul";
        self.check_same(OP, rhs)?;
        let (sa, sb) = (self.shape(), rhs.shape());
        if sa.len() < 2 || sb.len() < 2 {
            return Err(Error::shape(
                OP,
                sa,
                sb,
                "both operands need at least 2 dimensions",
            ));
        }
        let (m, k) = (sa[sa.len() - 2], sa[sa.len() - 1]);
        let (k2, n) = (sb[sb.len() - 2], sb[sb.len() - 1]);
        if k != k2 {
            return Err(Error::shape(
                OP,
                sa,
                sb,
                format!("inner dimensions differ: {k} vs {k2}"),
            ));
        }
        let batch = broadcast_shapes(OP, &sa[..sa.len() - 2], &sb[..sb.len() - 2])?;
        let out = cuda_or!(
            self.is_cuda(),
            crate::cuda::ops::matmul(OP, self, rhs, &batch, (m, k, n)),
            if self.dtype().is_half() {
                let wide = |t: &Tensor| t.detach().to_dtype(DType::F32);
                wide(self)?
                    .matmul_values::<f32>(&wide(rhs)?, &batch, m, k, n)?
                    .to_dtype(self.dtype())?
            } else {
                with_float!(self, OP, |T| self
                    .matmul_values::<T>(rhs, &batch, m, k, n)?)
            }
        );
        Ok(out.record(OP, &[self, rhs], move |ctx| {
            let ([a, b], g, needs) = (ctx.inputs, ctx.g, ctx.needs) else {
                unreachable!("matmul records two inputs")
            };
            let ga = if needs[0] {
                Some(g.matmul(&b.t()?)?.sum_to_shape(a.shape())?)
            } else {
                None
            };
            let gb = if needs[1] {
                Some(a.t()?.matmul(g)?.sum_to_shape(b.shape())?)
            } else {
                None
            };
            Ok(vec![ga, gb])
        }))
    }

    fn matmul_values<T: Element>(
        &self,
        rhs: &Tensor,
        batch: &[usize],
        m: usize,
        k: usize,
        n: usize,
    ) -> Result<Tensor> {
        let mut full_a = batch.to_vec();
        full_a.extend([m, k]);
        let mut full_b = batch.to_vec();
        full_b.extend([k, n]);
        let la = self.layout().broadcast_to("matmul", &full_a)?;
        let lb = rhs.layout().broadcast_to("matmul", &full_b)?;
        let nb: usize = batch.iter().product();
        if nb * m * n == 0 {
            let mut shape = batch.to_vec();
            shape.extend([m, n]);
            return Ok(Tensor::from_data(Vec::<T>::new(), &shape));
        }
        // Every element is written by its product (k = 0 writes zeros).
        let mut out = uninit_vec::<T>(nb * m * n);
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
            let one = |(i, c): (usize, &mut [MaybeUninit<T>])| {
                let oa = batch_offset(la.strides(), la.offset(), i);
                let ob = batch_offset(lb.strides(), lb.offset(), i);
                let am = MatRef {
                    data: &a[oa..],
                    rows: m,
                    cols: k,
                    rs: la.strides()[r],
                    cs: la.strides()[r + 1],
                };
                let bm = MatRef {
                    data: &b[ob..],
                    rows: k,
                    cols: n,
                    rs: lb.strides()[r],
                    cs: lb.strides()[r + 1],
                };
                gemm_uninit(am, bm, c, n);
            };
            // Many small products: spread the batch over threads; a few large ones: let the
            // GEMM parallelise inside each product.
            if nb > 1 && m * n * k < (1 << 18) {
                out.par_chunks_mut(m * n).enumerate().for_each(one);
            } else {
                out.chunks_mut(m * n).enumerate().for_each(one);
            }
        })?;
        // SAFETY: the products wrote every element (one per chunk of m·n).
        let out = unsafe { assume_init(out) };
        let mut shape = batch.to_vec();
        shape.extend([m, n]);
        Ok(Tensor::from_data(out, &shape))
    }
}

impl Tensor {
    /// A fully connected layer in one op: `self @ weightᵀ + bias` over the last dimension of
    /// `self` (`[..., in]`, `weight` `[out, in]` as PyTorch, `bias` `[out]`).
    ///
    /// The same values as `self.matmul(&weight.t()?)?.add(bias)`, without the intermediate
    /// tensors: the bias is added in place, and the backward produces each gradient contiguous
    /// in its final layout (`dW = gᵀ x` directly as `[out, in]`, `db` the column sums of `g`),
    /// so accumulating and applying them reads memory in order.
    ///
    /// The output is `[..., out]`. Fails when the shapes do not fit, or dtypes or devices
    /// differ.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2], Device::Cpu)?; // [batch, in]
    /// let w = Tensor::from_vec(vec![1.0f32, 1.0, 0.0, 2.0, 3.0, -1.0], &[3, 2], Device::Cpu)?
    ///     .with_requires_grad(true); // [out, in]
    /// let b = Tensor::from_vec(vec![0.5f32, 0.0, 1.0], &[3], Device::Cpu)?;
    /// let y = x.linear(&w, Some(&b))?; // [1, 3]
    /// assert_eq!(y.to_vec::<f32>()?, vec![3.5, 4.0, 2.0]);
    /// let grads = y.sum_all()?.backward()?; // dW = gᵀ x: each row is x
    /// assert_eq!(grads.get(&w).unwrap().to_vec::<f32>()?, vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        const OP: &str = "linear";
        self.check_same(OP, weight)?;
        if weight.rank() != 2
            || self.rank() == 0
            || self.shape()[self.rank() - 1] != weight.shape()[1]
        {
            return Err(Error::shape(
                OP,
                self.shape(),
                weight.shape(),
                "expects x [..., in] and weight [out, in]",
            ));
        }
        let (out_f, in_f) = (weight.shape()[0], weight.shape()[1]);
        if let Some(b) = bias {
            self.check_same(OP, b)?;
            if b.shape() != [out_f] {
                return Err(Error::shape(
                    OP,
                    weight.shape(),
                    b.shape(),
                    "bias must be [out]",
                ));
            }
        }
        let rows: usize = self.shape()[..self.rank() - 1].iter().product();
        let mut out_shape = self.shape().to_vec();
        *out_shape.last_mut().expect("rank >= 1") = out_f;
        // On a device: the same product as recorded ops (the GEMM reads the weight transposed in
        // place), so the backward runs the device GEMM too.
        on_cuda!(self.is_cuda(), {
            let y = self.reshape(&[rows, in_f])?.matmul(&weight.t()?)?;
            let y = match bias {
                Some(b) => y.add(b)?,
                None => y,
            };
            y.reshape(&out_shape)
        });
        // Values only: the graph goes through `self`.
        let x = self.detach().contiguous()?;
        let out = with_float!(self, OP, |T| {
            let mut out = uninit_vec::<T>(rows * out_f);
            if rows > 0 && out_f > 0 {
                let (lx, lw) = (x.layout().offset(), weight.layout().clone());
                x.with_two_strided(weight, OP, |xd: &[T], wd: &[T]| {
                    let a = MatRef {
                        data: &xd[lx..],
                        rows,
                        cols: in_f,
                        rs: in_f,
                        cs: 1,
                    };
                    // weightᵀ as a view: swap the strides.
                    let b = MatRef {
                        data: &wd[lw.offset()..],
                        rows: in_f,
                        cols: out_f,
                        rs: lw.strides()[1],
                        cs: lw.strides()[0],
                    };
                    gemm_uninit(a, b, &mut out, out_f);
                })?;
            }
            // SAFETY: the product wrote all rows·out_f elements (there are none when it did not
            // run).
            let mut out = unsafe { assume_init(out) };
            if let Some(b) = bias.filter(|_| !out.is_empty()) {
                b.with_contiguous(OP, |bv: &[T]| elementwise::add_row_vector(&mut out, bv))?;
            }
            Tensor::from_data(out, &out_shape)
        });
        let x_shape = self.shape().to_vec();
        // The contiguous copy made above, kept for the weight's gradient (the graph's own input
        // is used instead when the gradient must record).
        let x2 = x.reshape(&[rows, in_f])?;
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        Ok(out.record(OP, &inputs, move |ctx| {
            let (g, needs, w) = (ctx.g, ctx.needs, &ctx.inputs[1]);
            let g2 = g.reshape(&[rows, out_f])?;
            let gx = if needs[0] {
                Some(g2.matmul(w)?.reshape(&x_shape)?)
            } else {
                None
            };
            let gw = if needs[1] {
                let x2 = if ctx.create_graph {
                    &ctx.inputs[0].reshape(&[rows, in_f])?
                } else {
                    &x2
                };
                Some(g2.t()?.matmul(x2)?)
            } else {
                None
            };
            let mut grads = vec![gx, gw];
            if needs.len() > 2 {
                grads.push(if needs[2] {
                    Some(g2.sum(&[0], false)?)
                } else {
                    None
                });
            }
            Ok(grads)
        }))
    }
}
