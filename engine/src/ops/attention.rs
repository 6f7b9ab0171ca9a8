//! Fused scaled dot-product attention: `softmax(scale · q kᵀ) v` as one recorded op.

use crate::backend::backend;
use crate::{Element, Error, Result, Tensor};
use saddle_kernels::geometry::AttentionDims;
use std::sync::Arc;

/// Checks the operands of `attention` and returns their sizes.
fn attention_dims(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<AttentionDims> {
    const OP: &str = "attention";
    q.check_same(OP, k)?;
    q.check_same(OP, v)?;
    let (sq, sk, sv) = (q.shape(), k.shape(), v.shape());
    if sq.len() != 3 || sk.len() != 3 || sv.len() != 3 {
        return Err(Error::arg(
            OP,
            format!(
                "expects q [B, Nq, d], k [B, Nk, d], v [B, Nk, dv]; got {sq:?}, {sk:?}, {sv:?}"
            ),
        ));
    }
    if sk[0] != sq[0] || sv[0] != sq[0] || sk[2] != sq[2] || sv[1] != sk[1] {
        return Err(Error::arg(
            OP,
            format!(
                "q [B, Nq, d], k [B, Nk, d] and v [B, Nk, dv] disagree: {sq:?}, {sk:?}, {sv:?}"
            ),
        ));
    }
    Ok(AttentionDims {
        batch: sq[0],
        nq: sq[1],
        nk: sk[1],
        d: sq[2],
        dv: sv[2],
    })
}

/// Row-major tensors with the values of `ts`, no two sharing a storage (so all can be
/// read-locked at once without a second read lock on one lock waiting behind a writer): each is
/// the tensor itself (detached) when it already is one, else a copy.
pub(crate) fn distinct_dense<T: Element>(op: &'static str, ts: &[&Tensor]) -> Result<Vec<Tensor>> {
    let mut out: Vec<Tensor> = Vec::with_capacity(ts.len());
    for t in ts {
        let shared = out.iter().any(|o| Arc::ptr_eq(&o.0.storage, &t.0.storage));
        if t.is_contiguous() && t.layout().offset() == 0 && !shared {
            out.push(t.detach());
        } else {
            let values = t.with_contiguous(op, |x: &[T]| x.to_vec())?;
            out.push(Tensor::from_data(values, t.shape()));
        }
    }
    Ok(out)
}

impl Tensor {
    /// Scaled dot-product attention in one op: `softmax(scale · self kᵀ) v` with the softmax
    /// over the keys, for `self` (the queries) `[B, Nq, d]`, `k` `[B, Nk, d]` and `v`
    /// `[B, Nk, dv]`; the result is `[B, Nq, dv]`. `scale` is 1 for SAGAN's and BigGAN's
    /// non-local block and `1/√d` for a transformer's attention.
    ///
    /// The same values as `self.matmul(&k.t()?)?.mul_scalar(scale)?.softmax(-1)?.matmul(v)`,
    /// without keeping the `Nq × Nk` probabilities: the forward saves each query's log-sum-exp
    /// and the backward recomputes the probabilities from it. On the CPU each batch item is two
    /// GEMMs and a row softmax; on a CUDA device one tiled kernel with an online softmax (f32;
    /// f64 and widths the kernel does not take run as the composite ops above). Any views are
    /// accepted. Under [`Tensor::grad_with_graph`] the backward is built from the composite ops
    /// (the probabilities recomputed), so second derivatives work too.
    ///
    /// Fails when an operand is not rank 3, the sizes disagree, or dtypes or devices differ.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// # use saddle_engine::gradcheck::assert_close;
    /// // One query and two keys with scores 0 and ln 3: weights 1/4 and 3/4.
    /// let q = Tensor::from_vec(vec![1.0f64], &[1, 1, 1], Device::Cpu)?; // [B, Nq, d]
    /// let k = Tensor::from_vec(vec![0.0f64, 3f64.ln()], &[1, 2, 1], Device::Cpu)?; // [B, Nk, d]
    /// let v = Tensor::from_vec(vec![10.0f64, 20.0, 0.0, 4.0], &[1, 2, 2], Device::Cpu)?
    ///     .with_requires_grad(true); // [B, Nk, dv]
    /// let out = q.attention(&k, &v, 1.0)?; // [B, Nq, dv]
    /// assert_eq!(out.shape(), &[1, 1, 2]);
    /// assert_close(&out, &[2.5, 8.0], 1e-12);
    /// // Each value row receives its weight.
    /// let grads = out.sum_all()?.backward()?;
    /// assert_close(grads.get(&v).unwrap(), &[0.25, 0.25, 0.75, 0.75], 1e-12);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn attention(&self, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
        const OP: &str = "attention";
        let dims = attention_dims(self, k, v)?;
        let Some((out, lse)) = backend(self.device()).attention(OP, self, k, v, dims, scale)?
        else {
            // No fused kernel for these operands on this device: the same values from ops.
            return self
                .matmul(&k.transpose(1, 2)?)?
                .mul_scalar(scale)?
                .softmax(-1)?
                .matmul(v);
        };
        let saved = [self.detach(), k.detach(), v.detach(), out.detach(), lse];
        Ok(out.record(OP, &[self, k, v], move |ctx| {
            if ctx.create_graph {
                return attention_graph_grads(ctx, scale);
            }
            let [q, k, v, o, lse] = &saved;
            backend(q.device()).attention_backward(
                OP,
                [q, k, v, o, lse],
                ctx.g,
                dims,
                scale,
                ctx.needs,
            )
        }))
    }
}

/// Attention's gradients written with recording ops, for [`Tensor::grad_with_graph`]: with
/// `P = softmax(scale · q kᵀ)` recomputed from the inputs, `dv = Pᵀ g`, `dS = P ⊙ (g vᵀ -
/// rowsum(g vᵀ ⊙ P))`, `dq = scale · dS k`, `dk = scale · dSᵀ q`.
fn attention_graph_grads(
    ctx: &crate::autograd::GradCtx,
    scale: f64,
) -> Result<Vec<Option<Tensor>>> {
    let [q, k, v] = ctx.inputs else {
        unreachable!("attention records three inputs")
    };
    let (g, needs) = (ctx.g, ctx.needs);
    let p = q
        .matmul(&k.transpose(1, 2)?)?
        .mul_scalar(scale)?
        .softmax(-1)?;
    let dp = g.matmul(&v.transpose(1, 2)?)?;
    let ds = p.mul(&dp.sub(&dp.mul(&p)?.sum(&[2], true)?)?)?;
    let dq = needs[0]
        .then(|| ds.matmul(k)?.mul_scalar(scale))
        .transpose()?;
    let dk = needs[1]
        .then(|| ds.transpose(1, 2)?.matmul(q)?.mul_scalar(scale))
        .transpose()?;
    let dv = needs[2].then(|| p.transpose(1, 2)?.matmul(g)).transpose()?;
    Ok(vec![dq, dk, dv])
}
