use crate::{child_name, BatchNorm, Linear, Module, Slot, SpectralNorm};
use saddle_engine::{DType, Error, Result, Rng, Tensor};

/// Conditional batch normalisation (de Vries et al. 2017; BigGAN): batch norm without its own
/// affine, then a per-sample gain `1 + gain(cond)` and bias `bias(cond)` produced by linear maps
/// from a conditioning vector (a class embedding, or BigGAN's shared embedding + noise chunk).
/// The maps are plain [`Linear`] layers by default, spectrally normalised ones (BigGAN's G)
/// from [`ConditionalBatchNorm::new_2d_spectral`].
///
/// Use [`ConditionalBatchNorm::forward_cond`]: input `[N, C, H, W]` and condition
/// `[N, cond_dim]`, output `[N, C, H, W]`. Plain [`Module::forward`] has no condition and
/// returns an error.
///
/// ```
/// use saddle_nn::engine::{DType, Device, Rng, Tensor};
/// use saddle_nn::{ConditionalBatchNorm, Module};
///
/// let mut rng = Rng::new(0);
/// let cbn = ConditionalBatchNorm::new_2d(3, 5, DType::F32, &mut rng)?;
/// let x = Tensor::randn(&[4, 3, 2, 2], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng)?;
/// let cond = Tensor::randn(&[4, 5], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng)?;
/// assert_eq!(cbn.forward_cond(&x, &cond)?.shape(), &[4, 3, 2, 2]);
/// // A zero condition gives gain 1 and bias 0: plain batch norm.
/// let zero = Tensor::zeros(&[4, 5], DType::F32, Device::Cpu)?;
/// let plain = cbn.bn.forward(&x)?.to_vec::<f32>()?;
/// assert_eq!(cbn.forward_cond(&x, &zero)?.to_vec::<f32>()?, plain);
/// assert!(cbn.forward(&x).is_err());
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub struct ConditionalBatchNorm<P: Module = Linear> {
    /// The normalisation, without affine parameters.
    pub bn: BatchNorm,
    /// Maps the condition `[N, cond_dim]` to the gain minus 1, `[N, C]`.
    pub gain: P,
    /// Maps the condition `[N, cond_dim]` to the bias, `[N, C]`.
    pub bias: P,
}

impl ConditionalBatchNorm<SpectralNorm<Linear>> {
    /// As [`ConditionalBatchNorm::new_2d`] with spectrally normalised gain and bias maps.
    pub fn new_2d_spectral(
        num_features: usize,
        cond_dim: usize,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Self> {
        let plain = ConditionalBatchNorm::new_2d(num_features, cond_dim, dtype, rng)?;
        Ok(ConditionalBatchNorm {
            bn: plain.bn,
            gain: SpectralNorm::new(plain.gain, rng)?,
            bias: SpectralNorm::new(plain.bias, rng)?,
        })
    }
}

impl ConditionalBatchNorm {
    /// For `[N, C, H, W]` inputs conditioned on `[N, cond_dim]` vectors.
    pub fn new_2d(
        num_features: usize,
        cond_dim: usize,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Self> {
        Ok(ConditionalBatchNorm {
            bn: BatchNorm::new_2d(num_features, false, dtype)?,
            gain: Linear::new(cond_dim, num_features, false, dtype, rng)?,
            bias: Linear::new(cond_dim, num_features, false, dtype, rng)?,
        })
    }
}

impl<P: Module> ConditionalBatchNorm<P> {
    /// Normalises `x` (`[N, C, ...]`) and applies the gain and bias computed from `cond`
    /// (`[N, cond_dim]`); the output has `x`'s shape. A condition of another rank or batch size
    /// is an error.
    pub fn forward_cond(&self, x: &Tensor, cond: &Tensor) -> Result<Tensor> {
        if cond.rank() != 2 || x.rank() < 2 || cond.shape()[0] != x.shape()[0] {
            return Err(Error::ShapeMismatch {
                op: "ConditionalBatchNorm",
                lhs: x.shape().to_vec(),
                rhs: cond.shape().to_vec(),
                reason: "the condition must be [N, cond_dim] with the input's batch size".into(),
            });
        }
        // [N, C] -> [N, C, 1, 1, ...] to broadcast over the spatial dimensions.
        let mut per_sample = x.shape()[..2].to_vec();
        per_sample.resize(x.rank(), 1);
        let gain = self
            .gain
            .forward(cond)?
            .add_scalar(1.0)?
            .reshape(&per_sample)?;
        let bias = self.bias.forward(cond)?.reshape(&per_sample)?;
        self.bn.forward(x)?.mul(&gain)?.add(&bias)
    }
}

impl<P: Module> Module for ConditionalBatchNorm<P> {
    /// Without a condition there is nothing to compute the gain from: use
    /// [`ConditionalBatchNorm::forward_cond`].
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Err(Error::BadShape {
            op: "ConditionalBatchNorm",
            shape: x.shape().to_vec(),
            reason: "needs a condition: call forward_cond(x, cond)".into(),
        })
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        self.bn.visit(&child_name(prefix, "bn"), f);
        self.gain.visit(&child_name(prefix, "gain"), f);
        self.bias.visit(&child_name(prefix, "bias"), f);
    }

    fn set_training(&mut self, training: bool) {
        self.bn.set_training(training);
        self.gain.set_training(training);
        self.bias.set_training(training);
    }

    fn visit_batch_norms(&mut self, f: &mut dyn FnMut(&mut BatchNorm)) {
        f(&mut self.bn);
    }
}
