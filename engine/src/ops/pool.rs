//! 2-D pooling on NCHW tensors: average, max and sum pooling with square windows, and global
//! pooling over the whole plane. Kernels in `saddle_kernels::cpu::pool` run one thread per
//! `(n, c)` plane, so results are deterministic for any thread count.

use crate::backend::{backend, ArgMax, PoolPlan};
use crate::{Error, Result, Tensor};
use saddle_kernels::geometry::Pool2d;
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Window sum divided by a fixed divisor (1: sum pooling, `kh * kw`: average pooling).
    Sum {
        divisor: f64,
    },
    Max,
}

/// `[N, C, H, W]` of a rank-4 input, or an error naming `op`.
fn nchw(op: &'static str, x: &Tensor) -> Result<[usize; 4]> {
    match *x.shape() {
        [n, c, h, w] if h > 0 && w > 0 => Ok([n, c, h, w]),
        [_, _, _, _] => Err(Error::bad_shape(
            op,
            x.shape(),
            "pooling needs a non-empty H x W plane",
        )),
        _ => Err(Error::bad_shape(
            op,
            x.shape(),
            "expected an NCHW tensor of rank 4",
        )),
    }
}

/// A `kernel × kernel` window moved by `stride` over the input padded by `padding`.
fn square_window(kernel: usize, stride: usize, padding: usize) -> Pool2d {
    Pool2d {
        kh: kernel,
        kw: kernel,
        sh: stride,
        sw: stride,
        ph: padding,
        pw: padding,
    }
}

/// The backward of sum pooling (average pooling is sum pooling with a divisor): each output's
/// gradient spread over its window, divided by the divisor. Linear in the gradient, so its own
/// backward is the pooling again; recorded, it makes pooling differentiable any number of times.
#[derive(Clone)]
struct SumPoolAdjoint {
    op: &'static str,
    p: Pool2d,
    divisor: f64,
    /// The pooling's input shape `[N, C, H, W]`: this op's output.
    in_shape: Vec<usize>,
    /// The pooling's output shape when it is not the windowed one (global pooling: `[N, C]`).
    out_shape: Option<Vec<usize>>,
}

impl SumPoolAdjoint {
    fn apply(&self, g: &Tensor) -> Result<Tensor> {
        let (op, p, divisor) = (self.op, self.p, self.divisor);
        let [n, c, h, w] = self.in_shape[..] else {
            unreachable!("pooling checked its input is NCHW")
        };
        let plan = PoolPlan {
            planes: n * c,
            h,
            w,
            p,
        };
        let dx = backend(g.device()).sum_pool2d_backward(op, g, plan, divisor, &self.in_shape)?;
        let this = self.clone();
        Ok(dx.record("sum_pool2d_backward", &[g], move |ctx| {
            let pooled = ctx.g.pool2d(
                this.op,
                Mode::Sum {
                    divisor: this.divisor,
                },
                this.p,
                this.out_shape.as_deref(),
            )?;
            Ok(vec![Some(pooled)])
        }))
    }
}

/// Where max pooling took each output from (the arg-max within each plane). Its two linear
/// maps, each recorded with the other as its backward: `scatter` (the pooling's backward: each
/// output's gradient to its source) and `gather` (the value at each source: the pooling of a
/// tensor along the same routes).
#[derive(Clone)]
struct MaxPoolRoute {
    arg: Arc<ArgMax>,
    plan: PoolPlan,
    /// The pooling's input `[N, C, H, W]`.
    in_shape: Vec<usize>,
    /// The pooling's output.
    out_shape: Vec<usize>,
}

impl MaxPoolRoute {
    const OP: &'static str = "max_pool2d";

    fn scatter(&self, g: &Tensor) -> Result<Tensor> {
        let dx = backend(g.device()).max_pool2d_scatter(
            Self::OP,
            g,
            &self.arg,
            self.plan,
            &self.in_shape,
        )?;
        let this = self.clone();
        Ok(dx.record("max_pool2d_backward", &[g], move |ctx| {
            Ok(vec![Some(this.gather(ctx.g)?)])
        }))
    }

    fn gather(&self, x: &Tensor) -> Result<Tensor> {
        let y = backend(x.device()).max_pool2d_gather(
            Self::OP,
            x,
            &self.arg,
            self.plan,
            &self.out_shape,
        )?;
        let this = self.clone();
        Ok(y.record(Self::OP, &[x], move |ctx| {
            Ok(vec![Some(this.scatter(ctx.g)?)])
        }))
    }
}

impl Tensor {
    /// Checks the window against the input and returns the output shape.
    fn pool_plan(op: &'static str, x: &Tensor, p: &Pool2d) -> Result<[usize; 4]> {
        let [n, c, h, w] = nchw(op, x)?;
        if p.kh == 0 || p.kw == 0 || p.sh == 0 || p.sw == 0 {
            return Err(Error::arg(
                op,
                format!(
                    "kernel {}x{} and stride {}x{} must be positive",
                    p.kh, p.kw, p.sh, p.sw
                ),
            ));
        }
        if 2 * p.ph > p.kh || 2 * p.pw > p.kw {
            return Err(Error::arg(
                op,
                format!(
                    "padding {}x{} must be at most half the kernel {}x{}",
                    p.ph, p.pw, p.kh, p.kw
                ),
            ));
        }
        let (oh, ow) = p.out_size(h, w).ok_or_else(|| {
            Error::bad_shape(
                op,
                x.shape(),
                format!("kernel {}x{} is larger than the padded input", p.kh, p.kw),
            )
        })?;
        Ok([n, c, oh, ow])
    }

    /// Runs a pooling, then reshapes the output to `out_shape` when given (global pooling).
    fn pool2d(
        &self,
        op: &'static str,
        mode: Mode,
        p: Pool2d,
        out_shape: Option<&[usize]>,
    ) -> Result<Tensor> {
        let pooled_shape = Self::pool_plan(op, self, &p)?;
        let [n, c, h, w] = nchw(op, self)?;
        let planes = n * c;
        let shape = out_shape.map_or(pooled_shape.to_vec(), |s| s.to_vec());
        let in_shape = self.shape().to_vec();
        let plan = PoolPlan { planes, h, w, p };
        let device = backend(self.device());
        match mode {
            Mode::Sum { divisor } => {
                let out = device.sum_pool2d(op, self, plan, divisor, &shape)?;
                let adjoint = SumPoolAdjoint {
                    op,
                    p,
                    divisor,
                    in_shape,
                    out_shape: out_shape.map(|s| s.to_vec()),
                };
                Ok(out.record(op, &[self], move |ctx| {
                    Ok(vec![Some(adjoint.apply(ctx.g)?)])
                }))
            }
            Mode::Max => {
                let (out, arg) = device.max_pool2d(op, self, plan, &shape)?;
                if !crate::is_grad_enabled() || !self.requires_grad() {
                    return Ok(out); // no backward: drop the arg-max
                }
                let route = MaxPoolRoute {
                    arg: Arc::new(arg),
                    plan,
                    in_shape,
                    out_shape: shape,
                };
                Ok(out.record(op, &[self], move |ctx| {
                    Ok(vec![Some(route.scatter(ctx.g)?)])
                }))
            }
        }
    }

    /// Average of each `kernel × kernel` window of an NCHW tensor, moved by `stride`, over the
    /// input zero-padded by `padding` (at most `kernel / 2`). The divisor is always
    /// `kernel * kernel`, padding included (PyTorch's default `count_include_pad=True`). Output
    /// `[N, C, (H + 2p - k) / s + 1, (W + 2p - k) / s + 1]` (floor). Fails for an input that is
    /// not NCHW or has an empty plane, a zero kernel or stride, padding above `kernel / 2`, or a
    /// kernel larger than the padded input; the other pooling ops fail likewise.
    ///
    /// ```
    /// # use saddle_engine::{DType, Device, Tensor};
    /// # use saddle_engine::gradcheck::assert_close;
    /// let x = Tensor::from_vec((1..=16).map(|v| v as f32).collect(), &[1, 1, 4, 4], Device::Cpu)?;
    /// let y = x.avg_pool2d(2, 2, 0)?; // [1, 1, 2, 2]
    /// assert_eq!(y.to_vec::<f32>()?, vec![3.5, 5.5, 11.5, 13.5]);
    ///
    /// // With padding, each 3 x 3 window of a 2 x 2 plane holds 4 real cells.
    /// let ones = Tensor::ones(&[1, 1, 2, 2], DType::F32, Device::Cpu)?;
    /// assert_close(&ones.avg_pool2d(3, 1, 1)?, &[4.0 / 9.0; 4], 1e-6);
    /// assert_eq!(ones.avg_pool2d_exclude_pad(3, 1, 1)?.to_vec::<f32>()?, vec![1.0; 4]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn avg_pool2d(&self, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
        let p = square_window(kernel, stride, padding);
        self.pool2d(
            "avg_pool2d",
            Mode::Sum {
                divisor: (kernel * kernel) as f64,
            },
            p,
            None,
        )
    }

    /// Average of each `kernel × kernel` window over its cells inside the input only (PyTorch's
    /// `count_include_pad=False`, which pytorch-fid's Inception-v3 uses): the window's sum
    /// divided by how many of its cells are not padding. Stride, padding and output shape as
    /// [`Tensor::avg_pool2d`]. Built from sum pooling (of the input, and of a ones plane for the
    /// counts), so its gradient is sum pooling's divided by the same counts. Example:
    /// [`Tensor::avg_pool2d`].
    pub fn avg_pool2d_exclude_pad(
        &self,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Tensor> {
        const OP: &str = "avg_pool2d_exclude_pad";
        let [_, _, h, w] = nchw(OP, self)?;
        let p = square_window(kernel, stride, padding);
        let sums = self.pool2d(OP, Mode::Sum { divisor: 1.0 }, p, None)?;
        let plane = Tensor::ones(&[1, 1, h, w], self.dtype(), self.device())?;
        let counts = plane.pool2d(OP, Mode::Sum { divisor: 1.0 }, p, None)?;
        sums.div(&counts)
    }

    /// Maximum of each `kernel × kernel` window (stride and padding as [`Tensor::avg_pool2d`];
    /// padding counts as -inf). The gradient goes to each window's arg-max (the first maximum in
    /// row-major order on ties), summed where windows overlap.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let values = vec![1.0f32, 5.0, 2.0, 0.0, 3.0, 4.0, 8.0, 6.0];
    /// let x = Tensor::from_vec(values, &[1, 1, 2, 4], Device::Cpu)?.with_requires_grad(true);
    /// let y = x.max_pool2d(2, 2, 0)?; // [1, 1, 1, 2]
    /// assert_eq!(y.to_vec::<f32>()?, vec![5.0, 8.0]);
    /// let grads = y.sum_all()?.backward()?; // to each window's maximum
    /// let want = vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    /// assert_eq!(grads.get(&x).unwrap().to_vec::<f32>()?, want);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn max_pool2d(&self, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
        let p = square_window(kernel, stride, padding);
        self.pool2d("max_pool2d", Mode::Max, p, None)
    }

    /// Sum of each `kernel × kernel` window moved by `stride`, without padding: output
    /// `[N, C, (H - k) / s + 1, (W - k) / s + 1]`.
    ///
    /// ```
    /// # use saddle_engine::{DType, Device, Tensor};
    /// let x = Tensor::ones(&[1, 2, 4, 4], DType::F32, Device::Cpu)?;
    /// let y = x.sum_pool2d(2, 2)?;
    /// assert_eq!(y.shape(), &[1, 2, 2, 2]);
    /// assert_eq!(y.to_vec::<f32>()?, vec![4.0; 8]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn sum_pool2d(&self, kernel: usize, stride: usize) -> Result<Tensor> {
        let p = Pool2d {
            kh: kernel,
            kw: kernel,
            sh: stride,
            sw: stride,
            ph: 0,
            pw: 0,
        };
        self.pool2d("sum_pool2d", Mode::Sum { divisor: 1.0 }, p, None)
    }

    /// Window covering a whole `h × w` plane.
    fn global_window(op: &'static str, x: &Tensor) -> Result<(Pool2d, [usize; 2])> {
        let [n, c, h, w] = nchw(op, x)?;
        Ok((
            Pool2d {
                kh: h,
                kw: w,
                sh: 1,
                sw: 1,
                ph: 0,
                pw: 0,
            },
            [n, c],
        ))
    }

    /// Mean over H and W of an NCHW tensor: `[N, C, H, W] -> [N, C]` (the spatial axes are
    /// dropped; `unsqueeze` twice to keep `[N, C, 1, 1]`). Fails for an input that is not NCHW
    /// or has an empty plane, as the other global poolings.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let x = Tensor::from_vec((1..=8).map(|v| v as f32).collect(), &[1, 2, 2, 2], Device::Cpu)?;
    /// let avg = x.global_avg_pool2d()?;
    /// assert_eq!(avg.shape(), &[1, 2]);
    /// assert_eq!(avg.to_vec::<f32>()?, vec![2.5, 6.5]);
    /// assert_eq!(x.global_sum_pool2d()?.to_vec::<f32>()?, vec![10.0, 26.0]);
    /// assert_eq!(x.global_max_pool2d()?.to_vec::<f32>()?, vec![4.0, 8.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn global_avg_pool2d(&self) -> Result<Tensor> {
        const OP: &str = "global_avg_pool2d";
        let (p, nc) = Self::global_window(OP, self)?;
        self.pool2d(
            OP,
            Mode::Sum {
                divisor: (p.kh * p.kw) as f64,
            },
            p,
            Some(&nc),
        )
    }

    /// Sum over H and W of an NCHW tensor: `[N, C, H, W] -> [N, C]`. Example:
    /// [`Tensor::global_avg_pool2d`].
    pub fn global_sum_pool2d(&self) -> Result<Tensor> {
        const OP: &str = "global_sum_pool2d";
        let (p, nc) = Self::global_window(OP, self)?;
        self.pool2d(OP, Mode::Sum { divisor: 1.0 }, p, Some(&nc))
    }

    /// Maximum over H and W of an NCHW tensor: `[N, C, H, W] -> [N, C]`; the gradient goes to
    /// the maximum of each plane, shared equally among tied maxima (on every device). Example:
    /// [`Tensor::global_avg_pool2d`].
    pub fn global_max_pool2d(&self) -> Result<Tensor> {
        const OP: &str = "global_max_pool2d";
        Self::global_window(OP, self)?;
        // The max reduction over the plane, on every device: tied maxima share the gradient.
        self.max(&[2, 3], false)
    }
}
