//! Device implementations of the engine's ops: values only. The public ops in `crate::ops`
//! dispatch here on their operands' device and record autodiff history exactly as on the CPU,
//! so a backward pass through device tensors runs these too.

use super::{
    alloc_out, copy, cu, dense, tf32_enabled, view, with_buf_mut, with_bufs, wrap, DevStore,
};
use crate::layout::{broadcast_shapes, Layout};
use crate::{with_float, DType, Error, Result, Tensor};
use saddle_kernels::cpu::optim::{AdamStep, SgdStep};
use saddle_kernels::cuda::ops::elementwise::{self, BinaryOp, UnaryOp};
use saddle_kernels::cuda::ops::gemm::{self, GemmPrecision, GemmShape};
use saddle_kernels::cuda::ops::index::{self, DeviceIndices, MaskOffsets};
use saddle_kernels::cuda::ops::reduce::{self, ReduceOp};
use saddle_kernels::cuda::ops::{attention, conv, loss, norm, optim, pool, softmax};
use saddle_kernels::cuda::{Bf16, CudaHalf, DeviceBuffer, F16};
use saddle_kernels::geometry::AttentionDims;
use saddle_kernels::geometry::Channels;
use saddle_kernels::geometry::Conv2dGeometry;
use saddle_kernels::geometry::Lanes;
use std::sync::Arc;

// ---------------------------------------------------------------------------- elementwise

/// `y = u(x)` over any view of `x`.
pub(crate) fn unary(op: &'static str, x: &Tensor, u: UnaryOp) -> Result<Tensor> {
    let l = x.layout();
    with_float!(x, op, |T| with_bufs::<T, _>(op, &[x], |dev, b| {
        let mut y = alloc_out::<T>(op, dev, x.numel())?;
        elementwise::unary(dev, u, b[0], view(l), &mut y).map_err(cu(op))?;
        Ok(wrap(dev, y, l.shape()))
    }))
}

/// `dx = u'(x, y) · g` from the forward's input `x` and output `y`.
pub(crate) fn unary_backward(
    op: &'static str,
    u: UnaryOp,
    x: &Tensor,
    y: &Tensor,
    g: &Tensor,
) -> Result<Tensor> {
    x.check_same(op, g)?;
    let (x, y, gd) = (dense(op, x)?, dense(op, y)?, dense(op, g)?);
    let n = g.numel();
    with_float!(g, op, |T| with_bufs::<T, _>(
        op,
        &[&x, &y, &gd],
        |dev, b| {
            let mut dx = alloc_out::<T>(op, dev, n)?;
            elementwise::unary_backward(dev, u, b[0], b[1], b[2], &mut dx, n).map_err(cu(op))?;
            Ok(wrap(dev, dx, g.shape()))
        }
    ))
}

/// `k(a, b)` with NumPy broadcasting, any views.
pub(crate) fn binary(op: &'static str, a: &Tensor, b: &Tensor, k: BinaryOp) -> Result<Tensor> {
    a.check_same(op, b)?;
    let shape = broadcast_shapes(op, a.shape(), b.shape())?;
    let n: usize = shape.iter().product();
    let (la, lb) = (a.layout(), b.layout());
    with_float!(a, op, |T| with_bufs::<T, _>(op, &[a, b], |dev, bufs| {
        let mut y = alloc_out::<T>(op, dev, n)?;
        elementwise::binary(dev, k, bufs[0], view(la), bufs[1], view(lb), &shape, &mut y)
            .map_err(cu(op))?;
        Ok(wrap(dev, y, &shape))
    }))
}

// ----------------------------------------------------------------------------- reductions

/// `r` over the axes `dims` (distinct, in range, none empty), shaped `out_shape`.
pub(crate) fn reduce(
    op: &'static str,
    x: &Tensor,
    dims: &[usize],
    r: ReduceOp,
    out_shape: &[usize],
) -> Result<Tensor> {
    let shape = x.shape();
    let mut sorted = dims.to_vec();
    sorted.sort_unstable();
    let prod = |s: &[usize]| s.iter().product::<usize>();
    let (first, last) = (sorted[0], sorted[sorted.len() - 1]);
    // Reduced axes next to each other are the middle axis of [outer, n, inner] of the dense
    // tensor as it is; otherwise they are moved last by one strided copy.
    let (src, lanes) = if last - first + 1 == sorted.len() {
        let lanes = Lanes {
            outer: prod(&shape[..first]),
            n: prod(&shape[first..=last]),
            inner: prod(&shape[last + 1..]),
        };
        (dense(op, x)?, lanes)
    } else {
        let kept: Vec<usize> = (0..shape.len()).filter(|d| !dims.contains(d)).collect();
        let lanes = Lanes {
            outer: kept.iter().map(|&d| shape[d]).product(),
            n: sorted.iter().map(|&d| shape[d]).product(),
            inner: 1,
        };
        let perm: Vec<usize> = kept.into_iter().chain(sorted).collect();
        (copy(op, &x.detach().permute(&perm)?)?, lanes)
    };
    if lanes.n == 0 {
        return Err(Error::bad_shape(
            op,
            shape,
            "cannot reduce over an empty axis",
        ));
    }
    with_float!(x, op, |T| with_bufs::<T, _>(op, &[&src], |dev, b| {
        let mut y = alloc_out::<T>(op, dev, lanes.outer * lanes.inner)?;
        reduce::reduce(dev, r, b[0], lanes, &mut y).map_err(cu(op))?;
        Ok(wrap(dev, y, out_shape))
    }))
}

// ----------------------------------------------------------------------------- products

/// How a GEMM reads one operand: the tensor whose buffer it reads, transposed or not, leading
/// dimension and batch stride.
struct GemmOperand {
    t: Tensor,
    trans: bool,
    ld: usize,
    stride: usize,
}

/// The single stride that steps through the batch dimensions of `l` (all but the last two) in
/// row-major order, if there is one (0 when the operand is broadcast over the whole batch).
fn batch_stride(l: &Layout) -> Option<usize> {
    let r = l.rank() - 2;
    let (shape, strides) = (&l.shape()[..r], &l.strides()[..r]);
    let inner = (0..r).rev().find(|&d| shape[d] != 1);
    let Some(inner) = inner else {
        return Some(0);
    };
    let s = strides[inner];
    let mut span = 1;
    for d in (0..r).rev() {
        if shape[d] != 1 && strides[d] != s * span {
            return None;
        }
        span *= shape[d];
    }
    Some(s)
}

/// `t` viewed as `l` (its broadcast to the product's batch) as a GEMM operand of `rows × cols`
/// matrices: read in place when its matrices are row- or column-major with one batch stride,
/// else copied dense (materialising any broadcast).
fn gemm_operand(
    op: &'static str,
    t: &Tensor,
    l: &Layout,
    rows: usize,
    cols: usize,
) -> Result<GemmOperand> {
    let r = l.rank();
    let (rs, cs) = (l.strides()[r - 2], l.strides()[r - 1]);
    if l.offset() == 0 {
        if let Some(stride) = batch_stride(l) {
            if cs == 1 || cols == 1 {
                let ld = if rows == 1 { cols } else { rs };
                if ld >= cols {
                    return Ok(GemmOperand {
                        t: t.detach(),
                        trans: false,
                        ld,
                        stride,
                    });
                }
            }
            if rs == 1 || rows == 1 {
                let ld = if cols == 1 { rows } else { cs };
                if ld >= rows {
                    return Ok(GemmOperand {
                        t: t.detach(),
                        trans: true,
                        ld,
                        stride,
                    });
                }
            }
        }
    }
    let d = copy(op, &t.detach().view_with(l.clone()))?;
    Ok(GemmOperand {
        t: d,
        trans: false,
        ld: cols,
        stride: rows * cols,
    })
}

/// `[batch.., m, k] @ [batch.., k, n]` with both operands broadcast to `batch` (f32: the tuned
/// SGEMM or, when enabled, TF32 tensor cores; f64: the simple DGEMM; bf16 and f16: tensor cores
/// accumulating in f32, the result rounded to the operands' dtype).
pub(crate) fn matmul(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    batch: &[usize],
    (m, k, n): (usize, usize, usize),
) -> Result<Tensor> {
    let full = |x: usize, y: usize| {
        let mut s = batch.to_vec();
        s.extend([x, y]);
        s
    };
    let la = a.layout().broadcast_to(op, &full(m, k))?;
    let lb = b.layout().broadcast_to(op, &full(k, n))?;
    let nb: usize = batch.iter().product();
    let ga = gemm_operand(op, a, &la, m, k)?;
    let gb = gemm_operand(op, b, &lb, k, n)?;
    let shape = GemmShape {
        m,
        n,
        k,
        trans_a: ga.trans,
        trans_b: gb.trans,
        lda: ga.ld,
        ldb: gb.ld,
        ldc: n,
        batch: nb,
        stride_a: ga.stride,
        stride_b: gb.stride,
        stride_c: m * n,
    };
    let ops = [&ga.t, &gb.t];
    let out_shape = full(m, n);
    match a.dtype() {
        DType::F64 => with_bufs::<f64, _>(op, &ops, |dev, bufs| {
            let mut c = alloc_out::<f64>(op, dev, nb * m * n)?;
            gemm::dgemm(dev, shape, 1.0, bufs[0], bufs[1], 0.0, &mut c).map_err(cu(op))?;
            Ok(wrap(dev, c, &out_shape))
        }),
        DType::F32 => {
            let precision = if tf32_enabled() {
                GemmPrecision::Tf32
            } else {
                GemmPrecision::F32
            };
            with_bufs::<f32, _>(op, &ops, |dev, bufs| {
                let mut c = alloc_out::<f32>(op, dev, nb * m * n)?;
                gemm::gemm(dev, precision, shape, 1.0, bufs[0], bufs[1], 0.0, &mut c)
                    .map_err(cu(op))?;
                Ok(wrap(dev, c, &out_shape))
            })
        }
        DType::BF16 => half_matmul::<Bf16>(op, &ops, shape, &out_shape),
        DType::F16 => half_matmul::<F16>(op, &ops, shape, &out_shape),
    }
}

/// The tensor-core product of two 16-bit operands laid out as `shape` says.
fn half_matmul<T: DevStore + CudaHalf>(
    op: &'static str,
    ops: &[&Tensor],
    shape: GemmShape,
    out_shape: &[usize],
) -> Result<Tensor> {
    with_bufs::<T, _>(op, ops, |dev, bufs| {
        let mut c = alloc_out::<T>(op, dev, shape.batch * shape.m * shape.n)?;
        gemm::gemm_half(dev, shape, 1.0, bufs[0], bufs[1], 0.0, &mut c).map_err(cu(op))?;
        Ok(wrap(dev, c, out_shape))
    })
}

// ---------------------------------------------------------------------------- convolution

/// Convolution forward (f32 or f64): `x`, `w`, `bias` made dense; output `out_shape`.
pub(crate) fn conv2d(
    op: &'static str,
    g: &Conv2dGeometry,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    out_shape: &[usize],
) -> Result<Tensor> {
    let (x, w) = (dense(op, x)?, dense(op, w)?);
    let bias = bias.map(|b| dense(op, b)).transpose()?;
    let mut ts = vec![&x, &w];
    ts.extend(bias.as_ref());
    with_float!(x, op, |T| with_bufs::<T, _>(op, &ts, |dev, b| {
        let mut y = alloc_out::<T>(op, dev, g.batch * g.out_image())?;
        conv::conv2d_forward(dev, g, b[0], b[1], b.get(2).copied().map(|v| &**v), &mut y)
            .map_err(cu(op))?;
        Ok(wrap(dev, y, out_shape))
    }))
}

/// Input and weight gradients of a convolution (each when asked for).
pub(crate) fn conv2d_backward(
    op: &'static str,
    g: &Conv2dGeometry,
    x: &Tensor,
    w: &Tensor,
    gy: &Tensor,
    needs: (bool, bool),
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let (x, w, gy) = (dense(op, x)?, dense(op, w)?, dense(op, gy)?);
    with_float!(x, op, |T| with_bufs::<T, _>(
        op,
        &[&x, &w, &gy],
        |dev, b| {
            let gx = if needs.0 {
                let mut gx = alloc_out::<T>(op, dev, g.batch * g.in_image())?;
                conv::conv2d_backward_data(dev, g, b[2], b[1], &mut gx).map_err(cu(op))?;
                Some(wrap(dev, gx, x.shape()))
            } else {
                None
            };
            let gw = if needs.1 {
                let mut gw = alloc_out::<T>(op, dev, g.weight_len())?;
                conv::conv2d_backward_weight(dev, g, b[0], b[2], &mut gw).map_err(cu(op))?;
                Some(wrap(dev, gw, w.shape()))
            } else {
                None
            };
            Ok((gx, gw))
        }
    ))
}

/// Transposed convolution forward (`g` is the underlying convolution's geometry).
pub(crate) fn conv_transpose2d(
    op: &'static str,
    g: &Conv2dGeometry,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    out_shape: &[usize],
) -> Result<Tensor> {
    let (x, w) = (dense(op, x)?, dense(op, w)?);
    let bias = bias.map(|b| dense(op, b)).transpose()?;
    let mut ts = vec![&x, &w];
    ts.extend(bias.as_ref());
    with_float!(x, op, |T| with_bufs::<T, _>(op, &ts, |dev, b| {
        let mut y = alloc_out::<T>(op, dev, g.batch * g.in_image())?;
        conv::conv_transpose2d_forward(dev, g, b[0], b[1], b.get(2).copied().map(|v| &**v), &mut y)
            .map_err(cu(op))?;
        Ok(wrap(dev, y, out_shape))
    }))
}

/// Input and weight gradients of a transposed convolution.
pub(crate) fn conv_transpose2d_backward(
    op: &'static str,
    g: &Conv2dGeometry,
    x: &Tensor,
    w: &Tensor,
    gy: &Tensor,
    needs: (bool, bool),
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let (x, w, gy) = (dense(op, x)?, dense(op, w)?, dense(op, gy)?);
    with_float!(x, op, |T| with_bufs::<T, _>(
        op,
        &[&x, &w, &gy],
        |dev, b| {
            let mut gx = if needs.0 {
                Some(alloc_out::<T>(op, dev, g.batch * g.out_image())?)
            } else {
                None
            };
            let mut gw = if needs.1 {
                Some(alloc_out::<T>(op, dev, g.weight_len())?)
            } else {
                None
            };
            conv::conv_transpose2d_backward(
                dev,
                g,
                b[0],
                b[1],
                b[2],
                gx.as_deref_mut(),
                gw.as_deref_mut(),
            )
            .map_err(cu(op))?;
            Ok((
                gx.map(|v| wrap(dev, v, x.shape())),
                gw.map(|v| wrap(dev, v, w.shape())),
            ))
        }
    ))
}

// ----------------------------------------------------------------------------- batch norm

/// Forward of training-mode batch norm: `(y, mean, biased var, invstd)`.
pub(crate) fn batch_norm(
    op: &'static str,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    eps: f64,
    geo: Channels,
) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
    let c = geo.channels;
    let xd = dense(op, x)?;
    with_float!(x, op, |T| {
        let (mean, var) = with_bufs::<T, _>(op, &[&xd], |dev, b| {
            let mut mean = alloc_out::<T>(op, dev, c)?;
            let mut var = alloc_out::<T>(op, dev, c)?;
            norm::batch_norm_stats(dev, b[0], geo, &mut mean, &mut var).map_err(cu(op))?;
            Ok((wrap(dev, mean, &[c]), wrap(dev, var, &[c])))
        })?;
        // As the CPU: invstd = 1 / sqrt(var + eps), scale = invstd * gamma.
        let invstd = unary(
            op,
            &unary(op, &var, UnaryOp::Affine(1.0, eps))?,
            UnaryOp::Sqrt,
        )?;
        let invstd = unary(op, &invstd, UnaryOp::Recip)?;
        let scale = match gamma {
            Some(g) => binary(op, &invstd, g, BinaryOp::Mul)?,
            None => invstd.clone(),
        };
        let shift = match beta {
            Some(b) => dense(op, b)?,
            None => super::full(op, x.device(), 0.0, &[c], x.dtype())?,
        };
        let y = with_bufs::<T, _>(op, &[&xd, &mean, &scale, &shift], |dev, b| {
            let mut y = alloc_out::<T>(op, dev, geo.numel())?;
            norm::batch_norm_apply(dev, b[0], geo, b[1], b[2], b[3], &mut y).map_err(cu(op))?;
            Ok(wrap(dev, y, x.shape()))
        })?;
        Ok((y, mean, var, invstd))
    })
}

#[allow(clippy::too_many_arguments)]
/// Backward of training-mode batch norm: `(dx when asked for, sum(dy), sum(dy · xhat))` per
/// channel.
pub(crate) fn batch_norm_backward(
    op: &'static str,
    x: &Tensor,
    dy: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    gamma: Option<&Tensor>,
    geo: Channels,
    need_dx: bool,
) -> Result<(Option<Tensor>, Tensor, Tensor)> {
    let c = geo.channels;
    let (xd, dyd) = (dense(op, x)?, dense(op, dy)?);
    let gamma = gamma.map(|g| dense(op, g)).transpose()?;
    with_float!(x, op, |T| {
        let mut ts = vec![&xd, &dyd, mean, invstd];
        ts.extend(gamma.as_ref());
        with_bufs::<T, _>(op, &ts, |dev, b| {
            let mut sum_dy = alloc_out::<T>(op, dev, c)?;
            let mut sum_dy_xhat = alloc_out::<T>(op, dev, c)?;
            norm::batch_norm_grad_sums(
                dev,
                b[0],
                b[1],
                geo,
                b[2],
                b[3],
                &mut sum_dy,
                &mut sum_dy_xhat,
            )
            .map_err(cu(op))?;
            let dx = if need_dx {
                let mut dx = alloc_out::<T>(op, dev, geo.numel())?;
                norm::batch_norm_input_grad(
                    dev,
                    b[0],
                    b[1],
                    geo,
                    b[2],
                    b[3],
                    b.get(4).copied().map(|v| &**v),
                    &sum_dy,
                    &sum_dy_xhat,
                    &mut dx,
                )
                .map_err(cu(op))?;
                Some(wrap(dev, dx, x.shape()))
            } else {
                None
            };
            Ok((dx, wrap(dev, sum_dy, &[c]), wrap(dev, sum_dy_xhat, &[c])))
        })
    })
}

// -------------------------------------------------------------------------------- softmax

/// Softmax (or log-softmax) along the lanes.
pub(crate) fn softmax(op: &'static str, x: &Tensor, lanes: Lanes, log: bool) -> Result<Tensor> {
    let xd = dense(op, x)?;
    with_float!(x, op, |T| with_bufs::<T, _>(op, &[&xd], |dev, b| {
        let mut y = alloc_out::<T>(op, dev, x.numel())?;
        softmax::softmax(dev, b[0], lanes, log, &mut y).map_err(cu(op))?;
        Ok(wrap(dev, y, x.shape()))
    }))
}

/// Input gradient of softmax (or log-softmax) from its output `y`.
pub(crate) fn softmax_backward(
    op: &'static str,
    y: &Tensor,
    g: &Tensor,
    lanes: Lanes,
    log: bool,
) -> Result<Tensor> {
    y.check_same(op, g)?;
    let (yd, gd) = (dense(op, y)?, dense(op, g)?);
    with_float!(y, op, |T| with_bufs::<T, _>(op, &[&yd, &gd], |dev, b| {
        let mut dx = alloc_out::<T>(op, dev, y.numel())?;
        softmax::softmax_backward(dev, b[0], b[1], lanes, log, &mut dx).map_err(cu(op))?;
        Ok(wrap(dev, dx, y.shape()))
    }))
}

// --------------------------------------------------------------------------------- losses

/// Mean binary cross-entropy with logits (a 0-d tensor), without leaving the device.
pub(crate) fn bce_with_logits(op: &'static str, x: &Tensor, t: &Tensor) -> Result<Tensor> {
    let (xd, td) = (dense(op, x)?, dense(op, t)?);
    let n = x.numel();
    with_float!(x, op, |T| with_bufs::<T, _>(op, &[&xd, &td], |dev, b| {
        let mut out = alloc_out::<T>(op, dev, 1)?;
        loss::bce_with_logits_mean(dev, b[0], b[1], n, &mut out).map_err(cu(op))?;
        Ok(wrap(dev, out, &[]))
    }))
}

/// Gradient of the mean BCE with respect to the logits: `(sigmoid(x) − t) · g / n`, with the
/// upstream gradient `g` (one element) read on the device.
pub(crate) fn bce_with_logits_grad(
    op: &'static str,
    x: &Tensor,
    t: &Tensor,
    g: &Tensor,
) -> Result<Tensor> {
    let (xd, td, gd) = (dense(op, x)?, dense(op, t)?, dense(op, g)?);
    let n = x.numel();
    with_float!(x, op, |T| with_bufs::<T, _>(
        op,
        &[&xd, &td, &gd],
        |dev, b| {
            let mut dx = alloc_out::<T>(op, dev, n)?;
            let scale = <T as crate::Float>::from_f64(1.0 / n as f64);
            loss::bce_with_logits_grad(dev, b[0], b[1], b[2], scale, n, &mut dx).map_err(cu(op))?;
            Ok(wrap(dev, dx, x.shape()))
        }
    ))
}

// ----------------------------------------------------------------------------- optimisers

/// `grad` itself, or a device copy when its storage is one the update writes (its read lock
/// would then wait on the write lock forever).
fn unaliased_grad(op: &'static str, grad: &Tensor, written: &[&Tensor]) -> Result<Tensor> {
    if written
        .iter()
        .any(|t| Arc::ptr_eq(&t.0.storage, &grad.0.storage))
    {
        copy(op, grad)
    } else {
        dense(op, grad)
    }
}

/// One fused Adam step in place (all operands contiguous, on one device).
pub(crate) fn adam_step(
    op: &'static str,
    p: &Tensor,
    grad: &Tensor,
    m: &Tensor,
    v: &Tensor,
    vmax: Option<&Tensor>,
    h: AdamStep,
) -> Result<()> {
    let mut written = vec![p, m, v];
    written.extend(vmax);
    for (i, a) in written.iter().enumerate() {
        if !a.is_contiguous() || a.layout().offset() != 0 {
            return Err(Error::arg(op, "optimiser tensors must be contiguous"));
        }
        if written[..i]
            .iter()
            .any(|b| Arc::ptr_eq(&a.0.storage, &b.0.storage))
        {
            return Err(Error::arg(
                op,
                "parameter and state tensors must not share storage",
            ));
        }
    }
    let g = unaliased_grad(op, grad, &written)?;
    let n = p.numel();
    with_float!(p, op, |T| with_bufs::<T, _>(op, &[&g], |_, gb| {
        with_buf_mut::<T, _>(op, p, |dev, pb| {
            with_buf_mut::<T, _>(op, m, |_, mb| {
                with_buf_mut::<T, _>(op, v, |_, vb| match vmax {
                    Some(vm) => with_buf_mut::<T, _>(op, vm, |_, vmb| {
                        optim::adam_update(dev, pb, gb[0], mb, vb, Some(vmb), h, n).map_err(cu(op))
                    }),
                    None => optim::adam_update(dev, pb, gb[0], mb, vb, None, h, n).map_err(cu(op)),
                })
            })
        })
    }))
}

/// One fused SGD step in place.
pub(crate) fn sgd_step(
    op: &'static str,
    p: &Tensor,
    grad: &Tensor,
    buf: &Tensor,
    h: SgdStep,
) -> Result<()> {
    for a in [p, buf] {
        if !a.is_contiguous() || a.layout().offset() != 0 {
            return Err(Error::arg(op, "optimiser tensors must be contiguous"));
        }
    }
    if Arc::ptr_eq(&p.0.storage, &buf.0.storage) {
        return Err(Error::arg(
            op,
            "parameter and momentum buffer must not share storage",
        ));
    }
    let g = unaliased_grad(op, grad, &[p, buf])?;
    let n = p.numel();
    with_float!(p, op, |T| with_bufs::<T, _>(op, &[&g], |_, gb| {
        with_buf_mut::<T, _>(op, p, |dev, pb| {
            with_buf_mut::<T, _>(op, buf, |_, bb| {
                optim::sgd_update(dev, pb, gb[0], bb, h, n).map_err(cu(op))
            })
        })
    }))
}

// ------------------------------------------------------------------------------- indexing

/// `indices` (each below `bound`) on `device`, for the index kernels; shared by a forward and
/// its recorded backward so they are uploaded once.
pub(crate) fn upload_indices(
    op: &'static str,
    device: crate::Device,
    indices: &[usize],
    bound: usize,
) -> Result<Arc<DeviceIndices>> {
    let dev = super::handle(op, device)?;
    Ok(Arc::new(
        DeviceIndices::upload(&dev, indices, bound).map_err(cu(op))?,
    ))
}

/// `index_select` of `x` viewed as `lanes`, shaped `out_shape`.
pub(crate) fn index_select(
    op: &'static str,
    x: &Tensor,
    lanes: Lanes,
    idx: &DeviceIndices,
    out_shape: &[usize],
) -> Result<Tensor> {
    let xd = dense(op, x)?;
    with_float!(x, op, |T| with_bufs::<T, _>(op, &[&xd], |dev, b| {
        let mut y = alloc_out::<T>(op, dev, out_shape.iter().product())?;
        index::index_select(dev, b[0], lanes, idx, &mut y).map_err(cu(op))?;
        Ok(wrap(dev, y, out_shape))
    }))
}

/// The backward of [`index_select`]: `g` added into zeros of `in_shape` at the selected rows.
pub(crate) fn index_add(
    op: &'static str,
    g: &Tensor,
    lanes: Lanes,
    idx: &DeviceIndices,
    in_shape: &[usize],
) -> Result<Tensor> {
    let gd = dense(op, g)?;
    with_float!(g, op, |T| with_bufs::<T, _>(op, &[&gd], |dev, b| {
        let mut dx = alloc_out::<T>(op, dev, lanes.numel())?;
        index::index_add(dev, b[0], lanes, idx, &mut dx).map_err(cu(op))?;
        Ok(wrap(dev, dx, in_shape))
    }))
}

/// `torch.gather(x, dim, idx)` with the index shaped `index_shape`.
pub(crate) fn gather(
    op: &'static str,
    x: &Tensor,
    dim: usize,
    idx: &DeviceIndices,
    index_shape: &[usize],
) -> Result<Tensor> {
    let xd = dense(op, x)?;
    with_float!(x, op, |T| with_bufs::<T, _>(op, &[&xd], |dev, b| {
        let mut y = alloc_out::<T>(op, dev, idx.len())?;
        index::gather(dev, b[0], x.shape(), dim, idx, index_shape, &mut y).map_err(cu(op))?;
        Ok(wrap(dev, y, index_shape))
    }))
}

/// The backward of [`gather`]: `g` (shaped like the index) added into zeros of `src_shape`
/// where it was read from.
pub(crate) fn scatter_add(
    op: &'static str,
    g: &Tensor,
    src_shape: &[usize],
    dim: usize,
    idx: &DeviceIndices,
) -> Result<Tensor> {
    let gd = dense(op, g)?;
    with_float!(g, op, |T| with_bufs::<T, _>(op, &[&gd], |dev, b| {
        let mut dx = alloc_out::<T>(op, dev, src_shape.iter().product())?;
        index::scatter_add(dev, b[0], src_shape, dim, idx, g.shape(), &mut dx).map_err(cu(op))?;
        Ok(wrap(dev, dx, src_shape))
    }))
}

/// `cond` broadcast to `shape` as a dense mask of `dtype` for the select and mask kernels (which
/// test `!= 0`). A mask of another dtype is first turned into exact 0/1 flags (`1 − (cond == 0)`,
/// so NaN stays set) and cast, since a cast alone could round a tiny non-zero f64 to zero.
pub(crate) fn mask_as(
    op: &'static str,
    cond: &Tensor,
    shape: &[usize],
    dtype: DType,
) -> Result<Tensor> {
    let cond = cond.detach();
    let flags = if cond.dtype() == dtype {
        cond
    } else {
        let zero = super::full(op, cond.device(), 0.0, &[], cond.dtype())?;
        let is_zero = binary(op, &cond, &zero, BinaryOp::Eq)?;
        let set = unary(op, &is_zero, UnaryOp::Affine(-1.0, 1.0))?;
        super::cast(op, &set, dtype)?
    };
    dense(op, &flags.broadcast_as(shape)?)
}

/// `mask != 0 ? a : b` with `a` and `b` broadcast to `shape` (any views) and `mask` a dense
/// mask of `shape` from [`mask_as`].
pub(crate) fn select(
    op: &'static str,
    mask: &Tensor,
    a: &Tensor,
    b: &Tensor,
    shape: &[usize],
) -> Result<Tensor> {
    a.check_same(op, b)?;
    a.check_same(op, mask)?;
    let n: usize = shape.iter().product();
    let (la, lb) = (a.layout(), b.layout());
    with_float!(a, op, |T| with_bufs::<T, _>(
        op,
        &[mask, a, b],
        |dev, bufs| {
            let mut y = alloc_out::<T>(op, dev, n)?;
            elementwise::select(
                dev,
                bufs[0],
                bufs[1],
                view(la),
                bufs[2],
                view(lb),
                shape,
                &mut y,
            )
            .map_err(cu(op))?;
            Ok(wrap(dev, y, shape))
        }
    ))
}

/// Counts the set elements of a dense mask from [`mask_as`] (reads the counts back: the one
/// host synchronisation of masked_select, whose output length depends on the values).
pub(crate) fn mask_offsets(op: &'static str, mask: &Tensor) -> Result<Arc<MaskOffsets>> {
    with_float!(mask, op, |T| with_bufs::<T, _>(op, &[mask], |dev, b| {
        let at = index::mask_offsets(dev, b[0], mask.numel()).map_err(cu(op))?;
        Ok(Arc::new(at))
    }))
}

/// The values of `x` (broadcast to the mask's shape) where `mask` is set, as a 1-D tensor.
pub(crate) fn mask_compact(
    op: &'static str,
    at: &MaskOffsets,
    mask: &Tensor,
    x: &Tensor,
) -> Result<Tensor> {
    let xd = dense(op, &x.detach().broadcast_as(mask.shape())?)?;
    with_float!(x, op, |T| with_bufs::<T, _>(op, &[mask, &xd], |dev, b| {
        let mut y = alloc_out::<T>(op, dev, at.count())?;
        index::mask_compact(dev, at, b[0], b[1], &mut y).map_err(cu(op))?;
        Ok(wrap(dev, y, &[at.count()]))
    }))
}

/// The backward of [`mask_compact`]: `g` back at the set positions of `mask`, zeros elsewhere
/// (the mask's shape).
pub(crate) fn mask_expand(
    op: &'static str,
    at: &MaskOffsets,
    mask: &Tensor,
    g: &Tensor,
) -> Result<Tensor> {
    let gd = dense(op, g)?;
    with_float!(g, op, |T| with_bufs::<T, _>(op, &[mask, &gd], |dev, b| {
        let mut dx = alloc_out::<T>(op, dev, mask.numel())?;
        index::mask_expand(dev, at, b[0], b[1], &mut dx).map_err(cu(op))?;
        Ok(wrap(dev, dx, mask.shape()))
    }))
}

/// `planes` planes of `h × w` rotated by `k` quarter turns, shaped `out_shape`.
pub(crate) fn rot90(
    op: &'static str,
    x: &Tensor,
    (planes, h, w): (usize, usize, usize),
    k: i64,
    out_shape: &[usize],
) -> Result<Tensor> {
    let xd = dense(op, x)?;
    with_float!(x, op, |T| with_bufs::<T, _>(op, &[&xd], |dev, b| {
        let mut y = alloc_out::<T>(op, dev, x.numel())?;
        index::rot90(dev, b[0], planes, h, w, k, &mut y).map_err(cu(op))?;
        Ok(wrap(dev, y, out_shape))
    }))
}

// -------------------------------------------------------------------------------- pooling

pub(crate) use crate::backend::PoolPlan;

/// Window sums divided by `divisor`, shaped `out_shape`.
pub(crate) fn sum_pool2d(
    op: &'static str,
    x: &Tensor,
    plan: PoolPlan,
    divisor: f64,
    out_shape: &[usize],
) -> Result<Tensor> {
    let xd = dense(op, x)?;
    let PoolPlan { planes, h, w, p } = plan;
    with_float!(x, op, |T| with_bufs::<T, _>(op, &[&xd], |dev, b| {
        let mut y = alloc_out::<T>(op, dev, out_shape.iter().product())?;
        let d = <T as crate::Float>::from_f64(divisor);
        pool::sum_pool2d(dev, b[0], planes, h, w, &p, d, &mut y).map_err(cu(op))?;
        Ok(wrap(dev, y, out_shape))
    }))
}

/// The backward of [`sum_pool2d`], shaped `in_shape`.
pub(crate) fn sum_pool2d_backward(
    op: &'static str,
    g: &Tensor,
    plan: PoolPlan,
    divisor: f64,
    in_shape: &[usize],
) -> Result<Tensor> {
    let gd = dense(op, g)?;
    let PoolPlan { planes, h, w, p } = plan;
    with_float!(g, op, |T| with_bufs::<T, _>(op, &[&gd], |dev, b| {
        let mut dx = alloc_out::<T>(op, dev, planes * h * w)?;
        let d = <T as crate::Float>::from_f64(divisor);
        pool::sum_pool2d_backward(dev, b[0], planes, h, w, &p, d, &mut dx).map_err(cu(op))?;
        Ok(wrap(dev, dx, in_shape))
    }))
}

/// Window maxima shaped `out_shape`, and each window's arg-max for the backward.
pub(crate) fn max_pool2d(
    op: &'static str,
    x: &Tensor,
    plan: PoolPlan,
    out_shape: &[usize],
) -> Result<(Tensor, DeviceBuffer<u32>)> {
    let xd = dense(op, x)?;
    let PoolPlan { planes, h, w, p } = plan;
    let n: usize = out_shape.iter().product();
    with_float!(x, op, |T| with_bufs::<T, _>(op, &[&xd], |dev, b| {
        let mut y = alloc_out::<T>(op, dev, n)?;
        let mut arg = dev.alloc::<u32>(n.max(1)).map_err(cu(op))?;
        pool::max_pool2d(dev, b[0], planes, h, w, &p, &mut y, &mut arg).map_err(cu(op))?;
        Ok((wrap(dev, y, out_shape), arg))
    }))
}

/// The backward of [`max_pool2d`]: each gradient element to its window's arg-max.
pub(crate) fn max_pool2d_backward(
    op: &'static str,
    g: &Tensor,
    arg: &DeviceBuffer<u32>,
    plan: PoolPlan,
    in_shape: &[usize],
) -> Result<Tensor> {
    let gd = dense(op, g)?;
    let PoolPlan { planes, h, w, p } = plan;
    with_float!(g, op, |T| with_bufs::<T, _>(op, &[&gd], |dev, b| {
        let mut dx = alloc_out::<T>(op, dev, planes * h * w)?;
        pool::max_pool2d_backward(dev, b[0], arg, planes, h, w, &p, &mut dx).map_err(cu(op))?;
        Ok(wrap(dev, dx, in_shape))
    }))
}

/// Max pooling's route applied to `x` (shaped like the pooling's input): the value at each
/// window's arg-max, shaped `out_shape`.
pub(crate) fn max_pool2d_gather(
    op: &'static str,
    x: &Tensor,
    arg: &DeviceBuffer<u32>,
    plan: PoolPlan,
    out_shape: &[usize],
) -> Result<Tensor> {
    let xd = dense(op, x)?;
    let PoolPlan { planes, h, w, p } = plan;
    with_float!(x, op, |T| with_bufs::<T, _>(op, &[&xd], |dev, b| {
        let mut y = alloc_out::<T>(op, dev, out_shape.iter().product())?;
        pool::max_pool2d_gather(dev, b[0], arg, planes, h, w, &p, &mut y).map_err(cu(op))?;
        Ok(wrap(dev, y, out_shape))
    }))
}

// ------------------------------------------------------------------------------ attention

/// Fused attention's output and row log-sum-exp, or `None` when the fused kernels do not take
/// these operands (f64, or sizes past their limits): the caller then composes it from ops.
pub(crate) fn attention(
    op: &'static str,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    dims: AttentionDims,
    scale: f64,
) -> Result<Option<(Tensor, Tensor)>> {
    if q.dtype() != DType::F32 || !attention::supports(dims) {
        return Ok(None);
    }
    let (qd, kd, vd) = (dense(op, q)?, dense(op, k)?, dense(op, v)?);
    with_bufs::<f32, _>(op, &[&qd, &kd, &vd], |dev, b| {
        let mut o = alloc_out::<f32>(op, dev, dims.out_len())?;
        let mut lse = alloc_out::<f32>(op, dev, dims.rows())?;
        attention::attention_forward(dev, dims, scale as f32, b[0], b[1], b[2], &mut o, &mut lse)
            .map_err(cu(op))?;
        Ok(Some((
            wrap(dev, o, &dims.out_shape()),
            wrap(dev, lse, &[dims.batch, dims.nq]),
        )))
    })
}

/// Gradients of fused attention for the inputs in `needs`, from the saved dense operands, the
/// output `o` and the row log-sum-exp.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention_backward(
    op: &'static str,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    o: &Tensor,
    lse: &Tensor,
    g: &Tensor,
    dims: AttentionDims,
    scale: f64,
    needs: &[bool],
) -> Result<Vec<Option<Tensor>>> {
    let gd = dense(op, g)?;
    let (qd, kd, vd) = (dense(op, q)?, dense(op, k)?, dense(op, v)?);
    with_bufs::<f32, _>(op, &[&qd, &kd, &vd, o, lse, &gd], |dev, b| {
        let mut dq = if needs[0] {
            Some(alloc_out::<f32>(op, dev, dims.q_len())?)
        } else {
            None
        };
        let mut dkdv = if needs[1] || needs[2] {
            Some((
                alloc_out::<f32>(op, dev, dims.k_len())?,
                alloc_out::<f32>(op, dev, dims.v_len())?,
            ))
        } else {
            None
        };
        let saved = attention::AttentionSaved {
            q: b[0],
            k: b[1],
            v: b[2],
            o: b[3],
            lse: b[4],
        };
        attention::attention_backward(
            dev,
            dims,
            scale as f32,
            saved,
            b[5],
            dq.as_deref_mut(),
            dkdv.as_mut().map(|(a, c)| (&mut **a, &mut **c)),
        )
        .map_err(cu(op))?;
        let (dk, dvt) = match dkdv {
            Some((a, c)) => (
                needs[1].then(|| wrap(dev, a, &dims.k_shape())),
                needs[2].then(|| wrap(dev, c, &dims.v_shape())),
            ),
            None => (None, None),
        };
        Ok(vec![dq.map(|t| wrap(dev, t, &dims.q_shape())), dk, dvt])
    })
}
