//! Image-batch ops: nearest-neighbour upsampling of NCHW tensors and rotation by quarter turns.

use crate::{with_float, Error, Result, Tensor};
use saddle_kernels::cpu::image;

impl Tensor {
    /// Nearest-neighbour upsampling of an NCHW tensor by an integer `scale` (>= 1):
    /// `[N, C, H, W] -> [N, C, H * scale, W * scale]`, each value repeated over a
    /// `scale × scale` block. The backward sums each block of the gradient.
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
        Ok(out.record(OP, &[self], move |g, _| {
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
    /// Odd `k` swaps H and W. The backward rotates the gradient by `-k`.
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
        Ok(out.record(OP, &[self], move |g, _| {
            Ok(vec![Some(g.rot90(-k.rem_euclid(4))?)])
        }))
    }
}
