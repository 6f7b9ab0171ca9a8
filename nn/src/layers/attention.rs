use crate::{child_name, Conv2d, Module, Slot, SpectralNorm};
use saddle_engine::{Conv2dParams, DType, Device, Error, Result, Rng, Tensor};

/// The self-attention (non-local) block of SAGAN and BigGAN: spectrally normalised 1×1
/// convolutions `theta` (C→C/8), `phi` (C→C/8) and `g` (C→C/2), 2×2 max-pooling on `phi` and
/// `g`, softmax attention over positions, an output convolution `o` (C/2→C), and a learnable
/// scale `gamma` that starts at 0 so the block starts as the identity.
///
/// Input and output `[N, C, H, W]` with even H and W (an error otherwise); the output is
/// `x + gamma · o(attention)`.
///
/// ```
/// use saddle_nn::engine::{DType, Device, Rng, Tensor};
/// use saddle_nn::{Module, SelfAttention};
///
/// let mut rng = Rng::new(0);
/// let attn = SelfAttention::new(16, DType::F32, &mut rng)?;
/// let x = Tensor::randn(&[2, 16, 4, 4], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng)?;
/// let y = attn.forward(&x)?;
/// assert_eq!(y.shape(), &[2, 16, 4, 4]);
/// // gamma starts at 0, so a new block passes its input through.
/// assert_eq!(y.to_vec::<f32>()?, x.to_vec::<f32>()?);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub struct SelfAttention {
    /// Queries: C → C/8.
    pub theta: SpectralNorm<Conv2d>,
    /// Keys: C → C/8, max-pooled.
    pub phi: SpectralNorm<Conv2d>,
    /// Values: C → C/2, max-pooled.
    pub g: SpectralNorm<Conv2d>,
    /// Output projection: C/2 → C.
    pub o: SpectralNorm<Conv2d>,
    /// Scalar scale of the attention branch, 0 at start.
    pub gamma: Tensor,
}

impl SelfAttention {
    /// A block over `channels` channels (a multiple of 8, an error otherwise), the
    /// convolutions initialised as PyTorch's and spectrally normalised.
    pub fn new(channels: usize, dtype: DType, rng: &mut Rng) -> Result<Self> {
        if !channels.is_multiple_of(8) {
            return Err(Error::InvalidArgument {
                op: "SelfAttention",
                reason: format!("channels {channels} must be a multiple of 8"),
            });
        }
        let mut conv = |cin: usize, cout: usize| -> Result<SpectralNorm<Conv2d>> {
            let layer = Conv2d::new(cin, cout, 1, Conv2dParams::default(), false, dtype, rng)?;
            SpectralNorm::new(layer, rng)
        };
        Ok(SelfAttention {
            theta: conv(channels, channels / 8)?,
            phi: conv(channels, channels / 8)?,
            g: conv(channels, channels / 2)?,
            o: conv(channels / 2, channels)?,
            gamma: Tensor::zeros(&[], dtype, Device::Cpu)?.with_requires_grad(true),
        })
    }

    /// Trained parameters of [`SelfAttention::new`] over `channels` channels: four 1x1
    /// convolutions without bias and `gamma`.
    pub fn parameter_count(channels: usize) -> usize {
        let c = channels;
        2 * c * (c / 8) + 2 * c * (c / 2) + 1
    }
}

impl Module for SelfAttention {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = x.shape();
        if s.len() != 4 || !s[2].is_multiple_of(2) || !s[3].is_multiple_of(2) {
            return Err(Error::BadShape {
                op: "SelfAttention",
                shape: s.to_vec(),
                reason: "needs [N, C, H, W] with even H and W".into(),
            });
        }
        let (n, c, hw) = (s[0], s[1], s[2] * s[3]);
        let theta = self.theta.forward(x)?.reshape(&[n, c / 8, hw])?;
        let phi = self
            .phi
            .forward(x)?
            .max_pool2d(2, 2, 0)?
            .reshape(&[n, c / 8, hw / 4])?;
        let g = self
            .g
            .forward(x)?
            .max_pool2d(2, 2, 0)?
            .reshape(&[n, c / 2, hw / 4])?;
        // Position i attends to pooled position j with weight softmax_j(theta_i · phi_j) (no
        // scale, as in SAGAN and BigGAN), one fused op over [N, positions, channels] views.
        let attended = theta
            .transpose(1, 2)?
            .attention(&phi.transpose(1, 2)?, &g.transpose(1, 2)?, 1.0)?
            .transpose(1, 2)?
            .reshape(&[n, c / 2, s[2], s[3]])?;
        x.add(&self.o.forward(&attended)?.mul(&self.gamma)?)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        self.theta.visit(&child_name(prefix, "theta"), f);
        self.phi.visit(&child_name(prefix, "phi"), f);
        self.g.visit(&child_name(prefix, "g"), f);
        self.o.visit(&child_name(prefix, "o"), f);
        f(child_name(prefix, "gamma"), &self.gamma, Slot::Parameter);
    }

    fn set_training(&mut self, training: bool) {
        for conv in [&mut self.theta, &mut self.phi, &mut self.g, &mut self.o] {
            conv.set_training(training);
        }
    }
}
