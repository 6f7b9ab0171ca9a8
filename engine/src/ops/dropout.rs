//! Inverted dropout with a mask drawn from the engine's seeded generator.

use crate::backend::backend;
use crate::{Error, Result, Rng, Tensor};

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
        let mask = backend(self.device()).dropout_mask(
            OP,
            self.device(),
            self.shape(),
            self.dtype(),
            p,
            rng,
        )?;
        // The masked values, without history: the one backward is recorded below.
        let out = self.detach().mul(&mask)?;
        Ok(out.record(OP, &[self], move |ctx| Ok(vec![Some(ctx.g.mul(&mask)?)])))
    }
}
