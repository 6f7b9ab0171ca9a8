//! 2-D convolution and transposed convolution (NCHW), with their backward passes.
//!
//! Both lower to im2col + GEMM in `saddle_kernels::cpu::conv`. A transposed convolution is the
//! adjoint of a convolution: its forward is the convolution's backward-data and its
//! backward-data is the convolution's forward, so both ops share one geometry type.

use crate::storage::Storage;
use crate::{with_float, Element, Error, Float, Result, Tensor};
use saddle_kernels::cpu::conv::{self as kernel, Conv2dGeometry};
use saddle_kernels::cpu::strided;
use std::sync::Arc;

/// Hyper-parameters of [`Tensor::conv2d`], per spatial axis `[height, width]`.
///
/// `Default` is stride 1, no padding, dilation 1, one group; the `with_*` builders set both axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step between windows.
    pub stride: [usize; 2],
    /// Zeros added on both sides of the input.
    pub padding: [usize; 2],
    /// Spacing between kernel taps (1: adjacent).
    pub dilation: [usize; 2],
    /// Channel groups; input and output channels must both divide by it.
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// The builders both parameter types have: each sets one hyper-parameter on both axes.
macro_rules! impl_conv_builders {
    ($params:ident) => {
        impl $params {
            /// The same parameters with stride `s` on both axes.
            pub fn with_stride(self, s: usize) -> Self {
                $params {
                    stride: [s, s],
                    ..self
                }
            }
            /// The same parameters with padding `p` on both axes.
            pub fn with_padding(self, p: usize) -> Self {
                $params {
                    padding: [p, p],
                    ..self
                }
            }
            /// The same parameters with dilation `d` on both axes.
            pub fn with_dilation(self, d: usize) -> Self {
                $params {
                    dilation: [d, d],
                    ..self
                }
            }
            /// The same parameters with `groups` channel groups.
            pub fn with_groups(self, groups: usize) -> Self {
                $params { groups, ..self }
            }
        }
    };
}

impl_conv_builders!(Conv2dParams);

/// Hyper-parameters of [`Tensor::conv_transpose2d`], per spatial axis `[height, width]`.
///
/// `Default` is stride 1, no padding, no output padding, dilation 1, one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dParams {
    /// Stride of the convolution this op is the adjoint of: the input is spread out by it.
    pub stride: [usize; 2],
    /// Padding of that convolution: rows/columns cropped from each side of the output.
    pub padding: [usize; 2],
    /// Extra rows/columns added at the bottom/right of the output (must be smaller than the
    /// stride or the dilation); picks one of the input sizes a strided convolution maps to the
    /// same output size.
    pub output_padding: [usize; 2],
    /// Spacing between kernel taps (1: adjacent).
    pub dilation: [usize; 2],
    /// Channel groups; input and output channels must both divide by it.
    pub groups: usize,
}

impl Default for ConvTranspose2dParams {
    fn default() -> Self {
        ConvTranspose2dParams {
            stride: [1, 1],
            padding: [0, 0],
            output_padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

impl_conv_builders!(ConvTranspose2dParams);

impl ConvTranspose2dParams {
    /// The same parameters with output padding `p` on both axes.
    pub fn with_output_padding(self, p: usize) -> Self {
        ConvTranspose2dParams {
            output_padding: [p, p],
            ..self
        }
    }
}

/// Runs `f` on the row-major values of several tensors at once: borrowed when contiguous,
/// gathered otherwise. Takes one read lock per distinct storage (a second read lock on the same
/// RwLock could deadlock behind a waiting writer).
fn with_values<T: Element, R>(
    op: &'static str,
    ts: &[&Tensor],
    f: impl FnOnce(&[&[T]]) -> R,
) -> Result<R> {
    let mut guards = Vec::with_capacity(ts.len());
    for t in ts {
        if !guards.iter().any(|(s, _)| Arc::ptr_eq(*s, &t.0.storage)) {
            let guard =
                t.0.storage
                    .read()
                    .map_err(|_| Error::arg(op, "tensor storage lock poisoned"))?;
            guards.push((&t.0.storage, guard));
        }
    }
    let raw = |t: &Tensor| -> Result<&[T]> {
        let (_, guard) = guards
            .iter()
            .find(|(s, _)| Arc::ptr_eq(*s, &t.0.storage))
            .expect("locked above");
        match &**guard {
            Storage::Cpu(s) => T::slice(s).ok_or(Error::DTypeMismatch {
                op,
                lhs: T::DTYPE,
                rhs: s.dtype(),
            }),
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => Err(Error::NoCudaKernel {
                op,
                device: t.device(),
            }),
        }
    };
    let gathered = ts
        .iter()
        .map(|t| {
            let l = t.layout();
            if l.is_contiguous() {
                Ok(None)
            } else {
                Ok(Some(strided::to_contiguous(
                    raw(t)?,
                    l.shape(),
                    l.strides(),
                    l.offset(),
                )))
            }
        })
        .collect::<Result<Vec<Option<Vec<T>>>>>()?;
    let mut slices = Vec::with_capacity(ts.len());
    for (t, g) in ts.iter().zip(&gathered) {
        let l = t.layout();
        slices.push(match g {
            Some(v) => v.as_slice(),
            None => &raw(t)?[l.offset()..l.offset() + l.numel()],
        });
    }
    Ok(f(&slices))
}

/// Checks a conv op's operands: dtypes/devices, ranks, a positive group count, and a bias of
/// `bias_len` elements.
fn check_operands(
    op: &'static str,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    groups: usize,
    params: [[usize; 2]; 2],
) -> Result<()> {
    x.check_same(op, w)?;
    if x.rank() != 4 {
        return Err(Error::shape(
            op,
            x.shape(),
            w.shape(),
            "input must have rank 4 [N, C, H, W]",
        ));
    }
    if w.rank() != 4 {
        return Err(Error::shape(
            op,
            x.shape(),
            w.shape(),
            "weight must have rank 4",
        ));
    }
    if groups == 0 {
        return Err(Error::arg(op, "groups must be positive"));
    }
    let [stride, dilation] = params;
    if stride.contains(&0) || dilation.contains(&0) {
        return Err(Error::arg(
            op,
            format!("stride {stride:?} and dilation {dilation:?} must be positive"),
        ));
    }
    if let Some(b) = bias {
        x.check_same(op, b)?;
    }
    Ok(())
}

fn check_bias(op: &'static str, w: &Tensor, bias: Option<&Tensor>, channels: usize) -> Result<()> {
    match bias {
        Some(b) if b.shape() != [channels] => Err(Error::shape(
            op,
            w.shape(),
            b.shape(),
            format!("bias must have shape [{channels}]"),
        )),
        _ => Ok(()),
    }
}

impl Tensor {
    /// 2-D convolution (cross-correlation, as PyTorch): `self [N, C, H, W]`, `weight
    /// [OC, C/groups, kH, kW]`, optional `bias [OC]` -> `[N, OC, OH, OW]` with
    /// `OH = (H + 2·pad - dil·(kH-1) - 1) / stride + 1` (and `OW` likewise). Differentiable in
    /// the input, the weight and the bias. Fails when ranks, channels, groups or the bias shape
    /// do not fit, a stride or dilation is 0, the output would be empty, or dtypes or devices
    /// differ.
    ///
    /// ```
    /// # use saddle_engine::{Conv2dParams, DType, Device, Tensor};
    /// // One 3 x 3 image with one channel, and a 2 x 2 kernel of ones that sums each window.
    /// let x = Tensor::from_vec((1..=9).map(|v| v as f32).collect(), &[1, 1, 3, 3], Device::Cpu)?;
    /// let w = Tensor::ones(&[1, 1, 2, 2], DType::F32, Device::Cpu)?.with_requires_grad(true);
    /// let y = x.conv2d(&w, None, Conv2dParams::default())?; // [1, 1, 2, 2]
    /// assert_eq!(y.to_vec::<f32>()?, vec![12.0, 16.0, 24.0, 28.0]);
    /// // Each tap of the kernel saw the four values of its windows' positions.
    /// let grads = y.sum_all()?.backward()?;
    /// assert_eq!(grads.get(&w).unwrap().to_vec::<f32>()?, vec![12.0, 16.0, 24.0, 28.0]);
    ///
    /// // Padding 1, stride 2: OH = (3 + 2 - 1 - 1) / 2 + 1 = 2.
    /// let p = Conv2dParams::default().with_padding(1).with_stride(2);
    /// assert_eq!(x.conv2d(&w, None, p)?.shape(), &[1, 1, 2, 2]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        p: Conv2dParams,
    ) -> Result<Tensor> {
        const OP: &str = "conv2d";
        check_operands(OP, self, weight, bias, p.groups, [p.stride, p.dilation])?;
        let (xs, ws) = (self.shape(), weight.shape());
        let (n, c, oc) = (xs[0], xs[1], ws[0]);
        if c % p.groups != 0 || oc % p.groups != 0 || ws[1] * p.groups != c {
            return Err(Error::shape(
                OP,
                xs,
                ws,
                format!(
                    "input channels {c} and weight [{oc}, {}, ..] do not fit {} groups",
                    ws[1], p.groups
                ),
            ));
        }
        check_bias(OP, weight, bias, oc)?;
        let g = Conv2dGeometry::conv2d(
            n,
            c,
            [xs[2], xs[3]],
            oc,
            [ws[2], ws[3]],
            p.stride,
            p.padding,
            p.dilation,
            p.groups,
        )
        .ok_or_else(|| {
            Error::shape(
                OP,
                xs,
                ws,
                format!(
                    "output size is not positive with padding {:?}, dilation {:?}",
                    p.padding, p.dilation
                ),
            )
        })?;
        let out_shape = [n, oc, g.out_h, g.out_w];
        let out = cuda_or!(
            self.is_cuda(),
            crate::cuda::ops::conv2d(OP, &g, self, weight, bias, &out_shape),
            with_float!(self, OP, |T| cpu_forward::<T>(
                OP,
                [self, weight],
                bias,
                &out_shape,
                |x, w, b, y| kernel::conv2d_forward(&g, x, w, b, y)
            )?)
        );
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        Ok(out.record(OP, &inputs, move |ctx| {
            let (x, w, gy, needs) = (&ctx.inputs[0], &ctx.inputs[1], ctx.g, ctx.needs);
            if ctx.create_graph {
                // The input's gradient is the adjoint op; the weight's an op of its own.
                let gx = needs[0]
                    .then(|| gy.conv_transpose2d(w, None, transposed_params(&g)))
                    .transpose()?;
                let gw = needs[1]
                    .then(|| conv2d_weight_grad(x, gy, w, g))
                    .transpose()?;
                let gb = (needs.get(2) == Some(&true))
                    .then(|| gy.sum(&[0, 2, 3], false))
                    .transpose()?;
                return Ok(vec![gx, gw, gb]);
            }
            let (gx, gw) = cuda_or!(
                gy.is_cuda(),
                crate::cuda::ops::conv2d_backward(OP, &g, x, w, gy, (needs[0], needs[1])),
                with_float!(gy, OP, |T| {
                    let mut gx = needs[0].then(|| vec![T::ZERO; g.batch * g.in_image()]);
                    let mut gw = needs[1].then(|| vec![T::ZERO; g.weight_len()]);
                    match (gx.as_deref_mut(), gw.as_deref_mut()) {
                        (Some(gx), Some(gw)) => with_values::<T, _>(OP, &[gy, x, w], |v| {
                            kernel::conv2d_backward(&g, v[1], v[2], v[0], Some(gx), Some(gw))
                        })?,
                        (Some(gx), None) => with_values::<T, _>(OP, &[gy, w], |v| {
                            kernel::conv2d_backward_data(&g, v[0], v[1], gx)
                        })?,
                        (None, Some(gw)) => with_values::<T, _>(OP, &[gy, x], |v| {
                            kernel::conv2d_backward_weight(&g, v[1], v[0], gw)
                        })?,
                        (None, None) => {}
                    }
                    (
                        gx.map(|d| Tensor::from_data(d, x.shape())),
                        gw.map(|d| Tensor::from_data(d, w.shape())),
                    )
                })
            );
            with_bias_grad(gx, gw, gy, needs, [g.batch, g.out_channels, g.out_plane()])
        }))
    }

    /// 2-D transposed convolution (PyTorch's `conv_transpose2d`): `self [N, C_in, H, W]`,
    /// `weight [C_in, C_out/groups, kH, kW]`, optional `bias [C_out]` -> `[N, C_out, H', W']` with
    /// `H' = (H-1)·stride - 2·pad + dil·(kH-1) + output_padding + 1`. It is the adjoint
    /// (gradient with respect to the input) of [`Tensor::conv2d`] with the same weight.
    /// Differentiable in the input, the weight and the bias. Fails as [`Tensor::conv2d`], and
    /// when `output_padding` is not smaller than the stride or the dilation.
    ///
    /// ```
    /// # use saddle_engine::{ConvTranspose2dParams, DType, Device, Tensor};
    /// // Each input value adds the 2 x 2 kernel times itself to the output, `stride` apart.
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 1, 1, 2], Device::Cpu)?;
    /// let w = Tensor::ones(&[1, 1, 2, 2], DType::F32, Device::Cpu)?; // [C_in, C_out, kH, kW]
    /// let y = x.conv_transpose2d(&w, None, ConvTranspose2dParams::default())?;
    /// assert_eq!(y.shape(), &[1, 1, 2, 3]); // W' = (2 - 1)·1 + (2 - 1) + 1 = 3
    /// assert_eq!(y.to_vec::<f32>()?, vec![1.0, 3.0, 2.0, 1.0, 3.0, 2.0]);
    ///
    /// let p = ConvTranspose2dParams::default().with_stride(2);
    /// let up = x.conv_transpose2d(&w, None, p)?; // W' = (2 - 1)·2 + (2 - 1) + 1 = 4
    /// assert_eq!(up.to_vec::<f32>()?, vec![1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn conv_transpose2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        p: ConvTranspose2dParams,
    ) -> Result<Tensor> {
        const OP: &str = "conv_transpose2d";
        check_operands(OP, self, weight, bias, p.groups, [p.stride, p.dilation])?;
        let (xs, ws) = (self.shape(), weight.shape());
        let (n, c_in, c_out) = (xs[0], xs[1], ws[1] * p.groups);
        if ws[0] != c_in || c_in % p.groups != 0 {
            return Err(Error::shape(
                OP,
                xs,
                ws,
                format!(
                    "input channels {c_in} and weight [{}, ..] do not fit {} groups",
                    ws[0], p.groups
                ),
            ));
        }
        for a in 0..2 {
            if p.output_padding[a] >= p.stride[a] && p.output_padding[a] >= p.dilation[a] {
                return Err(Error::arg(
                    OP,
                    format!(
                        "output_padding {:?} must be smaller than stride {:?} or dilation {:?}",
                        p.output_padding, p.stride, p.dilation
                    ),
                ));
            }
        }
        check_bias(OP, weight, bias, c_out)?;
        let g = Conv2dGeometry::transposed(
            n,
            c_in,
            [xs[2], xs[3]],
            c_out,
            [ws[2], ws[3]],
            p.stride,
            p.padding,
            p.output_padding,
            p.dilation,
            p.groups,
        )
        .ok_or_else(|| {
            Error::shape(
                OP,
                xs,
                ws,
                format!("output size is not positive with padding {:?}", p.padding),
            )
        })?;
        let out_shape = [n, c_out, g.in_h, g.in_w];
        let out = cuda_or!(
            self.is_cuda(),
            crate::cuda::ops::conv_transpose2d(OP, &g, self, weight, bias, &out_shape),
            with_float!(self, OP, |T| cpu_forward::<T>(
                OP,
                [self, weight],
                bias,
                &out_shape,
                |x, w, b, y| kernel::conv_transpose2d_forward(&g, x, w, b, y)
            )?)
        );
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        Ok(out.record(OP, &inputs, move |ctx| {
            let (x, w, gy, needs) = (&ctx.inputs[0], &ctx.inputs[1], ctx.g, ctx.needs);
            if ctx.create_graph {
                // `g` is the convolution this op is the adjoint of: its input is `gy`'s shape
                // and its output `x`'s.
                let gx = needs[0].then(|| conv_as_in(&g, gy, w)).transpose()?;
                let gw = needs[1]
                    .then(|| conv2d_weight_grad(gy, x, w, g))
                    .transpose()?;
                let gb = (needs.get(2) == Some(&true))
                    .then(|| gy.sum(&[0, 2, 3], false))
                    .transpose()?;
                return Ok(vec![gx, gw, gb]);
            }
            let (gx, gw) = cuda_or!(
                gy.is_cuda(),
                crate::cuda::ops::conv_transpose2d_backward(OP, &g, x, w, gy, (needs[0], needs[1])),
                with_float!(gy, OP, |T| {
                    let mut gx = needs[0].then(|| vec![T::ZERO; g.batch * g.out_image()]);
                    let mut gw = needs[1].then(|| vec![T::ZERO; g.weight_len()]);
                    if gx.is_some() || gw.is_some() {
                        with_values::<T, _>(OP, &[gy, x, w], |v| {
                            kernel::conv_transpose2d_backward(
                                &g,
                                v[1],
                                v[2],
                                v[0],
                                gx.as_deref_mut(),
                                gw.as_deref_mut(),
                            )
                        })?;
                    }
                    (
                        gx.map(|d| Tensor::from_data(d, x.shape())),
                        gw.map(|d| Tensor::from_data(d, w.shape())),
                    )
                })
            );
            with_bias_grad(gx, gw, gy, needs, [g.batch, g.in_channels, g.in_h * g.in_w])
        }))
    }
}

/// The convolution `g` describes, of `x` by `w`, cut to `g`'s output size. (A transposed
/// convolution's output padding may add more rows than the stride, where the dilation allows it;
/// a convolution of its output then has rows past the ones that correspond to its input.)
fn conv_as_in(g: &Conv2dGeometry, x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let p = Conv2dParams {
        stride: g.stride,
        padding: g.padding,
        dilation: g.dilation,
        groups: g.groups,
    };
    x.conv2d(w, None, p)?
        .narrow(2, 0, g.out_h)?
        .narrow(3, 0, g.out_w)
}

/// The parameters of the transposed convolution that is the adjoint of `g`: it maps `g`'s output
/// shape back to its input shape exactly (the output padding restores the rows and columns the
/// convolution's stride left unread).
fn transposed_params(g: &Conv2dGeometry) -> ConvTranspose2dParams {
    let extra = |a: usize, input: usize, out: usize| {
        input + 2 * g.padding[a] - g.dilation[a] * (g.kernel[a] - 1) - 1 - (out - 1) * g.stride[a]
    };
    ConvTranspose2dParams {
        stride: g.stride,
        padding: g.padding,
        output_padding: [extra(0, g.in_h, g.out_h), extra(1, g.in_w, g.out_w)],
        dilation: g.dilation,
        groups: g.groups,
    }
}

/// The gradient of a convolution's weight from its input `x` and its output's gradient `gy`
/// (`w` is the weight, for its shape and for the device kernel's arguments). It is bilinear in
/// `(x, gy)`, so its own backward is the two convolution ops: recorded, it lets a gradient that
/// contains it be differentiated again.
fn conv2d_weight_grad(x: &Tensor, gy: &Tensor, w: &Tensor, g: Conv2dGeometry) -> Result<Tensor> {
    const OP: &str = "conv2d_weight_grad";
    let gw = cuda_or!(
        gy.is_cuda(),
        crate::cuda::ops::conv2d_backward(OP, &g, x, w, gy, (false, true)).and_then(
            |(_, gw)| gw.ok_or_else(|| Error::Autograd(format!("{OP}: no weight gradient")))
        ),
        with_float!(gy, OP, |T| {
            let mut gw = vec![T::ZERO; g.weight_len()];
            with_values::<T, _>(OP, &[gy, x], |v| {
                kernel::conv2d_backward_weight(&g, v[1], v[0], &mut gw)
            })?;
            Tensor::from_data(gw, w.shape())
        })
    );
    Ok(gw.record(OP, &[x, gy], move |ctx| {
        let (x, gy, ggw) = (&ctx.inputs[0], &ctx.inputs[1], ctx.g);
        let gx = ctx.needs[0]
            .then(|| gy.conv_transpose2d(ggw, None, transposed_params(&g)))
            .transpose()?;
        let ggy = ctx.needs[1].then(|| conv_as_in(&g, x, ggw)).transpose()?;
        Ok(vec![gx, ggy])
    }))
}

/// A conv op's CPU forward: `kernel` writes the output (`out_shape`, overwritten) from the
/// values of the input and the weight (`xw`) and of the bias, if any.
fn cpu_forward<T: Float + Element>(
    op: &'static str,
    xw: [&Tensor; 2],
    bias: Option<&Tensor>,
    out_shape: &[usize],
    kernel: impl FnOnce(&[T], &[T], Option<&[T]>, &mut [T]),
) -> Result<Tensor> {
    let mut y = vec![T::ZERO; out_shape.iter().product()];
    let mut ts = xw.to_vec();
    ts.extend(bias);
    with_values::<T, _>(op, &ts, |v| kernel(v[0], v[1], v.get(2).copied(), &mut y))?;
    Ok(Tensor::from_data(y, out_shape))
}

/// A conv op's gradients: the input's and the weight's, then, when the op has a bias (`needs`
/// has a third entry), the bias's if needed: `gy` summed over batch and space per channel
/// (`[batch, channels, plane]` the output's sizes).
fn with_bias_grad(
    gx: Option<Tensor>,
    gw: Option<Tensor>,
    gy: &Tensor,
    needs: &[bool],
    [batch, channels, plane]: [usize; 3],
) -> Result<Vec<Option<Tensor>>> {
    let mut grads = vec![gx, gw];
    if needs.len() > 2 {
        grads.push(if needs[2] {
            Some(bias_grad(gy, batch, channels, plane)?)
        } else {
            None
        });
    }
    Ok(grads)
}

/// Gradient of a per-channel bias: the output gradient summed over batch and space.
fn bias_grad(gy: &Tensor, batch: usize, channels: usize, plane: usize) -> Result<Tensor> {
    on_cuda!(gy.is_cuda(), gy.sum(&[0, 2, 3], false));
    Ok(with_float!(gy, "conv bias", |T| {
        let sums = gy.with_contiguous("conv bias", |d: &[T]| {
            kernel::channel_sum(d, batch, channels, plane)
        })?;
        Tensor::from_data(sums, &[channels])
    }))
}
