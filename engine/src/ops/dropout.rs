//! Inverted dropout with a mask drawn from the engine's seeded generator.

use crate::{with_float, Element, Error, Result, Rng, Tensor};
use saddle_kernels::cpu::elementwise;

/// The dropout mask for `n` elements: `1 / (1 - p)` where kept, 0 where dropped. One 32-bit draw
/// per element, in row-major order, so a seed fixes the mask.
fn mask_values<T: Element>(n: usize, p: f64, rng: &mut Rng) -> Vec<T> {
    // Keep when the draw is at or above p * 2^32: probability 1 - p up to 2^-32.
    let threshold = (p * 4_294_967_296.0).ceil() as u64;
    let keep = T::from_f64(1.0 / (1.0 - p));
    let mut bits = vec![0u32; n];
    rng.fill_u32(&mut bits);
    elementwise::map(&bits, move |b| {
        if u64::from(b) >= threshold {
            keep
        } else {
            T::ZERO
        }
    })
}

impl Tensor {
    /// Inverted dropout: in training, zeroes each element with probability `p` and scales the
    /// survivors by `1 / (1 - p)` so the expected value is unchanged; the mask is drawn from
    /// `rng` (one draw per element in row-major order). The identity when `!train` or `p == 0`.
    /// `p` must lie in `[0, 1)` (an error otherwise). The output has the input's shape; the
    /// gradient is masked and scaled the same way.
    ///
    /// ```
    /// # use saddle_engine::{DType, Device, Rng, Tensor};
    /// let x = Tensor::ones(&[1000], DType::F32, Device::Cpu)?;
    /// let mut rng = Rng::new(0);
    /// let v = x.dropout(0.5, &mut rng, true)?.to_vec::<f32>()?;
    /// // Each value is dropped or kept and scaled by 1 / (1 - p) = 2.
    /// assert!(v.iter().all(|&e| e == 0.0 || e == 2.0));
    /// let kept = v.iter().filter(|&&e| e == 2.0).count();
    /// assert!((400..600).contains(&kept));
    /// // Outside training it is the identity.
    /// assert_eq!(x.dropout(0.5, &mut rng, false)?.to_vec::<f32>()?, vec![1.0; 1000]);
    /// # Ok::<(), saddle_engine::Error>(())
    /// ```
    pub fn dropout(&self, p: f64, rng: &mut Rng, train: bool) -> Result<Tensor> {
        const OP: &str = "dropout";
        if !(0.0..1.0).contains(&p) {
            return Err(Error::arg(
                OP,
                format!("drop probability must be in [0, 1), got {p}"),
            ));
        }
        if !train || p == 0.0 {
            return Ok(self.clone());
        }
        on_cuda!(self.is_cuda(), {
            // The mask drawn on the device from the same stream (see `cuda::random`).
            let mask = crate::cuda::random(
                OP,
                self.device(),
                self.shape(),
                self.dtype(),
                crate::cuda::Draw::DropoutMask { p },
                rng,
            )?;
            let out = crate::cuda::ops::binary(
                OP,
                self,
                &mask,
                saddle_kernels::cuda::ops::elementwise::BinaryOp::Mul,
            )?;
            Ok(
                out.record_differentiable(OP, &[self], move |ctx| {
                    Ok(vec![Some(ctx.g.mul(&mask)?)])
                }),
            )
        });
        let mask = with_float!(self, OP, |T| Tensor::from_data(
            mask_values::<T>(self.numel(), p, rng),
            self.shape()
        ));
        let out = with_float!(self, OP, |T| self
            .zip_values::<T>(&mask, OP, |x, m| x * m)?);
        Ok(out.record_differentiable(OP, &[self], move |ctx| Ok(vec![Some(ctx.g.mul(&mask)?)])))
    }
}
