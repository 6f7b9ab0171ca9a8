//! Image-batch ops: nearest-neighbour upsampling and bilinear resizing of NCHW tensors, and
//! rotation by quarter turns.

use crate::{with_float, Device, Error, Result, Tensor};
use saddle_kernels::cpu::image;

/// The largest side [`Tensor::resize_bilinear`] makes.
pub const MAX_RESIZE_SIDE: usize = 1 << 15;

/// The `[output, input]` matrix of 1-D linear interpolation with PyTorch's
/// `align_corners=False` rule: output cell `o` samples the input at
/// `max((o + 0.5) * input / output - 0.5, 0)`, between its two nearest cells (the last cell
/// repeated past the edge).
fn linear_interpolation_matrix(input: usize, output: usize) -> Vec<f64> {
    let scale = input as f64 / output as f64;
    let mut m = vec![0.0; output * input];
    for o in 0..output {
        let src = ((o as f64 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(input - 1);
        let i1 = (i0 + 1).min(input - 1);
        let frac = src - i0 as f64;
        m[o * input + i0] += 1.0 - frac;
        m[o * input + i1] += frac;
    }
    m
}

impl Tensor {
    /// Bilinear resize of an NCHW tensor to `[N, C, out_h, out_w]`, as PyTorch's
    /// `F.interpolate(x, size=(out_h, out_w), mode="bilinear", align_corners=False)` (no
    /// antialiasing; pytorch-fid resizes to 299x299 this way). Built as `R_h · X · R_wᵀ` with
    /// the two interpolation matrices, so the backward is the matmuls' and it runs wherever
    /// matmul does. An error for a tensor that is not NCHW or a side of 0 or above
    /// 32768.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// # use saddle_engine::gradcheck::assert_close;
    /// // Width 2 -> 4: output column o samples the input at (o + 0.5) / 2 - 0.5, clamped.
    /// let x = Tensor::from_vec(vec![0.0f64, 4.0], &[1, 1, 1, 2], Device::Cpu)?;
    /// let y = x.resize_bilinear(1, 4)?;
    /// assert_eq!(y.shape(), &[1, 1, 1, 4]);
    /// assert_close(&y, &[0.0, 1.0, 3.0, 4.0], 1e-12);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn resize_bilinear(&self, out_h: usize, out_w: usize) -> Result<Tensor> {
        const OP: &str = "resize_bilinear";
        let [n, c, h, w] = *self.shape() else {
            return Err(Error::bad_shape(
                OP,
                self.shape(),
                "expected an NCHW tensor of rank 4",
            ));
        };
        if h == 0 || w == 0 {
            return Err(Error::bad_shape(
                OP,
                self.shape(),
                "the input plane is empty",
            ));
        }
        if !(1..=MAX_RESIZE_SIDE).contains(&out_h) || !(1..=MAX_RESIZE_SIDE).contains(&out_w) {
            return Err(Error::arg(
                OP,
                format!("output {out_h}x{out_w}: each side must be in 1..={MAX_RESIZE_SIDE}"),
            ));
        }
        let matrix = |input, output| {
            Tensor::from_vec(
                linear_interpolation_matrix(input, output),
                &[output, input],
                Device::Cpu,
            )?
            .to_dtype(self.dtype())?
            .to_device(self.device())
        };
        let (rows, cols) = (matrix(h, out_h)?, matrix(w, out_w)?);
        rows.matmul(&self.reshape(&[n * c, h, w])?)?
            .matmul(&cols.t()?)?
            .reshape(&[n, c, out_h, out_w])
    }

    /// Nearest-neighbour upsampling of an NCHW tensor by an integer `scale` (>= 1):
    /// `[N, C, H, W] -> [N, C, H * scale, W * scale]`, each value repeated over a
    /// `scale × scale` block. The backward sums each block of the gradient. Fails for an input
    /// that is not NCHW or a `scale` of 0.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 1, 1, 2], Device::Cpu)?
    ///     .with_requires_grad(true);
    /// let y = x.upsample_nearest2d(2)?; // [1, 1, 2, 4]
    /// assert_eq!(y.to_vec::<f32>()?, vec![1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
    /// let grads = y.sum_all()?.backward()?;
    /// assert_eq!(grads.get(&x).unwrap().to_vec::<f32>()?, vec![4.0, 4.0]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn upsample_nearest2d(&self, scale: usize) -> Result<Tensor> {
        const OP: &str = "upsample_nearest2d";
        let [n, c, h, w] = *self.shape() else {
            return Err(Error::bad_shape(
                OP,
                self.shape(),
                "expected an NCHW tensor of rank 4",
            ));
        };
        if scale == 0 {
            return Err(Error::arg(OP, "scale must be at least 1"));
        }
        let planes = n * c;
        let shape = [n, c, h * scale, w * scale];
        // On a device: each value broadcast over its scale x scale block by views and one
        // strided copy; the recorded backward sums the blocks (a device reduction).
        on_cuda!(
            self.is_cuda(),
            self.reshape(&[n, c, h, 1, w, 1])?
                .broadcast_as(&[n, c, h, scale, w, scale])?
                .reshape(&shape)
        );
        let out = with_float!(self, OP, |T| {
            let data = self.with_contiguous(OP, |x: &[T]| {
                image::upsample_nearest2d(x, planes, h, w, scale)
            })?;
            Tensor::from_data(data, &shape)
        });
        let in_shape = self.shape().to_vec();
        Ok(out.record(OP, &[self], move |ctx| {
            let g = ctx.g;
            if ctx.create_graph {
                // Summing each scale x scale block is sum pooling, whose own backward spreads
                // the gradient back over the blocks.
                return Ok(vec![Some(g.sum_pool2d(scale, scale)?)]);
            }
            let dx = with_float!(g, OP, |T| {
                let data = g.with_contiguous(OP, |gs: &[T]| {
                    image::upsample_nearest2d_backward(gs, planes, h, w, scale)
                })?;
                Tensor::from_data(data, &in_shape)
            });
            Ok(vec![Some(dx)])
        }))
    }

    /// Rotates the last two dimensions (H, W of an NCHW batch) counter-clockwise by `k` quarter
    /// turns, as `torch.rot90(x, k, dims=(-2, -1))`; any integer `k` (negative turns clockwise).
    /// Odd `k` swaps H and W. The backward rotates the gradient by `-k`. Fails below rank 2.
    ///
    /// ```
    /// # use saddle_engine::{Device, Tensor};
    /// // [[1, 2, 3], [4, 5, 6]] turned a quarter counter-clockwise: [[3, 6], [2, 5], [1, 4]].
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[1, 2, 3], Device::Cpu)?;
    /// let r = x.rot90(1)?;
    /// assert_eq!(r.shape(), &[1, 3, 2]);
    /// assert_eq!(r.to_vec::<f32>()?, vec![3.0, 6.0, 2.0, 5.0, 1.0, 4.0]);
    /// assert_eq!(x.rot90(-1)?.rot90(1)?.to_vec::<f32>()?, x.to_vec::<f32>()?);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn rot90(&self, k: i32) -> Result<Tensor> {
        const OP: &str = "rot90";
        let r = self.rank();
        if r < 2 {
            return Err(Error::bad_shape(
                OP,
                self.shape(),
                "needs at least 2 dimensions to rotate",
            ));
        }
        let (h, w) = (self.shape()[r - 2], self.shape()[r - 1]);
        let planes: usize = self.shape()[..r - 2].iter().product();
        let mut shape = self.shape().to_vec();
        if k.rem_euclid(2) == 1 {
            shape.swap(r - 2, r - 1);
        }
        let out = cuda_or!(
            self.is_cuda(),
            crate::cuda::ops::rot90(OP, self, (planes, h, w), k as i64, &shape),
            with_float!(self, OP, |T| {
                let data =
                    self.with_contiguous(OP, |x: &[T]| image::rot90(x, planes, h, w, k as i64))?;
                Tensor::from_data(data, &shape)
            })
        );
        Ok(out.record(OP, &[self], move |ctx| {
            Ok(vec![Some(ctx.g.rot90(-k.rem_euclid(4))?)])
        }))
    }
}
