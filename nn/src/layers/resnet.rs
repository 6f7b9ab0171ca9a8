//! BigGAN's residual blocks (Brock et al. 2019; compare_gan's `resnet_biggan.py`): an up-block
//! for generators with (conditional) batch norm, a down-block for discriminators without
//! normalisation. Every convolution is spectrally normalised and has a bias.

use crate::init::WeightInit;
use crate::{
    child_name, BatchNorm, ConditionalBatchNorm, Conv2d, Linear, Module, Slot, SpectralNorm,
};
use saddle_engine::{DType, Error, Result, Rng, Tensor};

/// Which batch norm a generator block uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockNormKind {
    /// Batch norm with its own learnt gain and bias (an unconditional generator).
    Plain,
    /// Conditional batch norm whose gain and bias are linear maps (without bias) of a
    /// `cond_dim` vector, spectrally normalised when `spectral`.
    Conditional {
        /// Size of the conditioning vector.
        cond_dim: usize,
        /// Whether the gain and bias maps are spectrally normalised (BigGAN's generator).
        spectral: bool,
    },
}

impl BlockNormKind {
    /// Trained parameters of one such norm over `channels` channels.
    pub fn parameter_count(&self, channels: usize) -> usize {
        match *self {
            BlockNormKind::Plain => 2 * channels,
            BlockNormKind::Conditional { cond_dim, .. } => 2 * cond_dim * channels,
        }
    }

    fn build(&self, channels: usize, dtype: DType, rng: &mut Rng) -> Result<BlockNorm> {
        Ok(match *self {
            BlockNormKind::Plain => BlockNorm::Plain(BatchNorm::new_2d(channels, true, dtype)?),
            BlockNormKind::Conditional {
                cond_dim,
                spectral: false,
            } => BlockNorm::Conditional(ConditionalBatchNorm::new_2d(
                channels, cond_dim, dtype, rng,
            )?),
            BlockNormKind::Conditional {
                cond_dim,
                spectral: true,
            } => BlockNorm::SpectralConditional(ConditionalBatchNorm::new_2d_spectral(
                channels, cond_dim, dtype, rng,
            )?),
        })
    }
}

/// A generator block's batch norm: plain, or conditioned on a vector.
pub enum BlockNorm {
    /// [`BlockNormKind::Plain`].
    Plain(BatchNorm),
    /// [`BlockNormKind::Conditional`] with plain linear maps.
    Conditional(ConditionalBatchNorm),
    /// [`BlockNormKind::Conditional`] with spectrally normalised maps.
    SpectralConditional(ConditionalBatchNorm<SpectralNorm<Linear>>),
}

impl BlockNorm {
    /// Normalises `x`; `cond` (`[N, cond_dim]`) must be given exactly when the norm is
    /// conditional (an error otherwise).
    pub fn forward_cond(&self, x: &Tensor, cond: Option<&Tensor>) -> Result<Tensor> {
        match (self, cond) {
            (BlockNorm::Plain(bn), None) => bn.forward(x),
            (BlockNorm::Conditional(bn), Some(c)) => bn.forward_cond(x, c),
            (BlockNorm::SpectralConditional(bn), Some(c)) => bn.forward_cond(x, c),
            (BlockNorm::Plain(_), Some(c)) => Err(Error::ShapeMismatch {
                op: "BlockNorm",
                lhs: x.shape().to_vec(),
                rhs: c.shape().to_vec(),
                reason: "an unconditional batch norm takes no condition".into(),
            }),
            (_, None) => Err(Error::BadShape {
                op: "BlockNorm",
                shape: x.shape().to_vec(),
                reason: "a conditional batch norm needs a condition [N, cond_dim]".into(),
            }),
        }
    }

    fn module_mut(&mut self) -> &mut dyn Module {
        match self {
            BlockNorm::Plain(bn) => bn,
            BlockNorm::Conditional(bn) => bn,
            BlockNorm::SpectralConditional(bn) => bn,
        }
    }

    fn module(&self) -> &dyn Module {
        match self {
            BlockNorm::Plain(bn) => bn,
            BlockNorm::Conditional(bn) => bn,
            BlockNorm::SpectralConditional(bn) => bn,
        }
    }
}

/// A spectrally normalised `k x k` convolution with bias and "same" padding.
fn spectral_conv(
    in_ch: usize,
    out_ch: usize,
    k: usize,
    init: WeightInit,
    dtype: DType,
    rng: &mut Rng,
) -> Result<SpectralNorm<Conv2d>> {
    let conv = init.conv2d(in_ch, out_ch, k, true, dtype, rng)?;
    SpectralNorm::new(conv, rng)
}

/// Trained parameters of a `k x k` convolution with bias.
fn conv_parameters(in_ch: usize, out_ch: usize, k: usize) -> usize {
    in_ch * out_ch * k * k + out_ch
}

fn check_channels(op: &'static str, x: &Tensor, channels: usize) -> Result<()> {
    if x.rank() != 4 || x.shape()[1] != channels {
        return Err(Error::BadShape {
            op,
            shape: x.shape().to_vec(),
            reason: format!("expected [N, {channels}, H, W]"),
        });
    }
    Ok(())
}

/// BigGAN's generator block, doubling the resolution:
/// `h = conv2(relu(bn2(conv1(up(relu(bn1(x)))))))`, `out = h + shortcut(up(x))` with `up`
/// nearest-neighbour upsampling by 2, `conv1`, `conv2` 3x3 and `shortcut` 1x1. The shortcut
/// convolution runs before the upsampling, which gives the same values (a 1x1 convolution
/// commutes with nearest upsampling) at a quarter of the cost.
///
/// Input `[N, in, H, W]`, output `[N, out, 2H, 2W]`. A conditional block takes its condition
/// through [`ResBlockUp::forward_cond`].
///
/// ```
/// use saddle_nn::engine::{DType, Device, Rng, Tensor};
/// use saddle_nn::init::WeightInit;
/// use saddle_nn::{BlockNormKind, ModuleExt, ResBlockUp};
///
/// let mut rng = Rng::new(0);
/// let norm = BlockNormKind::Conditional { cond_dim: 6, spectral: true };
/// let block = ResBlockUp::new(8, 4, norm, WeightInit::Orthogonal, DType::F32, &mut rng)?;
/// assert_eq!(block.num_parameters(), ResBlockUp::parameter_count(8, 4, norm));
/// let x = Tensor::randn(&[2, 8, 4, 4], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng)?;
/// let cond = Tensor::randn(&[2, 6], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng)?;
/// assert_eq!(block.forward_cond(&x, Some(&cond))?.shape(), &[2, 4, 8, 8]);
/// // A conditional block refuses to run without its condition.
/// assert!(block.forward_cond(&x, None).is_err());
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub struct ResBlockUp {
    /// The norm before `conv1`, over `in` channels.
    pub bn1: BlockNorm,
    /// 3x3, `in -> out`, after the upsampling.
    pub conv1: SpectralNorm<Conv2d>,
    /// The norm before `conv2`, over `out` channels.
    pub bn2: BlockNorm,
    /// 3x3, `out -> out`.
    pub conv2: SpectralNorm<Conv2d>,
    /// 1x1, `in -> out`, on the skip path.
    pub shortcut: SpectralNorm<Conv2d>,
}

impl ResBlockUp {
    /// A block `in_ch -> out_ch` with batch norms of kind `norm`, its convolutions'
    /// weights from `init` (biases zero unless [`WeightInit::PyTorchDefault`]), drawn from
    /// `rng`.
    pub fn new(
        in_ch: usize,
        out_ch: usize,
        norm: BlockNormKind,
        init: WeightInit,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Self> {
        Ok(ResBlockUp {
            bn1: norm.build(in_ch, dtype, rng)?,
            conv1: spectral_conv(in_ch, out_ch, 3, init, dtype, rng)?,
            bn2: norm.build(out_ch, dtype, rng)?,
            conv2: spectral_conv(out_ch, out_ch, 3, init, dtype, rng)?,
            shortcut: spectral_conv(in_ch, out_ch, 1, init, dtype, rng)?,
        })
    }

    /// Trained parameters of [`ResBlockUp::new`] with these arguments.
    pub fn parameter_count(in_ch: usize, out_ch: usize, norm: BlockNormKind) -> usize {
        norm.parameter_count(in_ch)
            + conv_parameters(in_ch, out_ch, 3)
            + norm.parameter_count(out_ch)
            + conv_parameters(out_ch, out_ch, 3)
            + conv_parameters(in_ch, out_ch, 1)
    }

    /// `[N, in, H, W] -> [N, out, 2H, 2W]`; `cond` as the batch norms need it
    /// ([`BlockNorm::forward_cond`]).
    pub fn forward_cond(&self, x: &Tensor, cond: Option<&Tensor>) -> Result<Tensor> {
        check_channels("ResBlockUp", x, self.conv1.inner.weight.shape()[1])?;
        let h = self
            .bn1
            .forward_cond(x, cond)?
            .relu()?
            .upsample_nearest2d(2)?;
        let h = self.conv1.forward(&h)?;
        let h = self.bn2.forward_cond(&h, cond)?.relu()?;
        let h = self.conv2.forward(&h)?;
        let skip = self.shortcut.forward(x)?.upsample_nearest2d(2)?;
        h.add(&skip)
    }
}

impl Module for ResBlockUp {
    /// For an unconditional block; a conditional one needs [`ResBlockUp::forward_cond`].
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_cond(x, None)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        self.bn1.module().visit(&child_name(prefix, "bn1"), f);
        self.conv1.visit(&child_name(prefix, "conv1"), f);
        self.bn2.module().visit(&child_name(prefix, "bn2"), f);
        self.conv2.visit(&child_name(prefix, "conv2"), f);
        self.shortcut.visit(&child_name(prefix, "shortcut"), f);
    }

    fn set_training(&mut self, training: bool) {
        self.bn1.module_mut().set_training(training);
        self.conv1.set_training(training);
        self.bn2.module_mut().set_training(training);
        self.conv2.set_training(training);
        self.shortcut.set_training(training);
    }

    fn visit_batch_norms(&mut self, f: &mut dyn FnMut(&mut BatchNorm)) {
        self.bn1.module_mut().visit_batch_norms(f);
        self.bn2.module_mut().visit_batch_norms(f);
    }
}

/// BigGAN's discriminator block: `h = avgpool(conv2(relu(conv1(relu(x)))))` and
/// `out = h + shortcut(avgpool(x))`, with 3x3 convolutions, 2x2 average pooling when
/// `downsample` (BigGAN's last block does not), and a 1x1 shortcut convolution only where the
/// channels change (the identity otherwise). A block that reads images (`preactivation`
/// false, BigGAN's first) skips the leading ReLU, which would zero the negative half of
/// `[-1, 1]` pixels. The shortcut pools before its convolution: the same values as the other
/// order (both are linear and the pool keeps constants) at a quarter of the cost.
///
/// Input `[N, in, H, W]`, output `[N, out, H/2, W/2]` when downsampling (H and W must be
/// even), `[N, out, H, W]` otherwise.
///
/// ```
/// use saddle_nn::engine::{DType, Device, Rng, Tensor};
/// use saddle_nn::init::WeightInit;
/// use saddle_nn::{Module, ModuleExt, ResBlockDown};
///
/// let mut rng = Rng::new(0);
/// // A first block: reads images, so no leading ReLU.
/// let block = ResBlockDown::new(3, 8, true, false, WeightInit::Orthogonal, DType::F32, &mut rng)?;
/// assert_eq!(block.num_parameters(), ResBlockDown::parameter_count(3, 8));
/// let x = Tensor::randn(&[2, 3, 8, 8], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng)?;
/// assert_eq!(block.forward(&x)?.shape(), &[2, 8, 4, 4]);
/// // Same channels: no shortcut convolution.
/// let same = ResBlockDown::new(8, 8, false, true, WeightInit::Orthogonal, DType::F32, &mut rng)?;
/// assert!(same.shortcut.is_none());
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub struct ResBlockDown {
    /// 3x3, `in -> out`.
    pub conv1: SpectralNorm<Conv2d>,
    /// 3x3, `out -> out`.
    pub conv2: SpectralNorm<Conv2d>,
    /// 1x1, `in -> out`, on the skip path; `None` when the channels do not change.
    pub shortcut: Option<SpectralNorm<Conv2d>>,
    /// Whether the block halves H and W with 2x2 average pooling.
    pub downsample: bool,
    /// Whether the residual path starts with a ReLU (false for a block that reads images).
    pub preactivation: bool,
}

impl ResBlockDown {
    /// A block `in_ch -> out_ch` (a shortcut convolution only when they differ), its
    /// convolutions' weights from `init` (biases zero unless [`WeightInit::PyTorchDefault`]),
    /// drawn from `rng`.
    pub fn new(
        in_ch: usize,
        out_ch: usize,
        downsample: bool,
        preactivation: bool,
        init: WeightInit,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Self> {
        Ok(ResBlockDown {
            conv1: spectral_conv(in_ch, out_ch, 3, init, dtype, rng)?,
            conv2: spectral_conv(out_ch, out_ch, 3, init, dtype, rng)?,
            shortcut: (in_ch != out_ch)
                .then(|| spectral_conv(in_ch, out_ch, 1, init, dtype, rng))
                .transpose()?,
            downsample,
            preactivation,
        })
    }

    /// Trained parameters of [`ResBlockDown::new`] with these channels.
    pub fn parameter_count(in_ch: usize, out_ch: usize) -> usize {
        let shortcut = if in_ch != out_ch {
            conv_parameters(in_ch, out_ch, 1)
        } else {
            0
        };
        conv_parameters(in_ch, out_ch, 3) + conv_parameters(out_ch, out_ch, 3) + shortcut
    }

    fn pool(&self, x: Tensor) -> Result<Tensor> {
        if self.downsample {
            x.avg_pool2d(2, 2, 0)
        } else {
            Ok(x)
        }
    }
}

impl Module for ResBlockDown {
    /// `[N, in, H, W] -> [N, out, H/2, W/2]` (`[N, out, H, W]` without downsampling).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_channels("ResBlockDown", x, self.conv1.inner.weight.shape()[1])?;
        if self.downsample && (!x.shape()[2].is_multiple_of(2) || !x.shape()[3].is_multiple_of(2)) {
            return Err(Error::BadShape {
                op: "ResBlockDown",
                shape: x.shape().to_vec(),
                reason: "downsampling needs even H and W".into(),
            });
        }
        let h = if self.preactivation {
            x.relu()?
        } else {
            x.clone()
        };
        let h = self.conv1.forward(&h)?.relu()?;
        let h = self.pool(self.conv2.forward(&h)?)?;
        let skip = self.pool(x.clone())?;
        let skip = match &self.shortcut {
            Some(conv) => conv.forward(&skip)?,
            None => skip,
        };
        h.add(&skip)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        self.conv1.visit(&child_name(prefix, "conv1"), f);
        self.conv2.visit(&child_name(prefix, "conv2"), f);
        if let Some(conv) = &self.shortcut {
            conv.visit(&child_name(prefix, "shortcut"), f);
        }
    }

    fn set_training(&mut self, training: bool) {
        self.conv1.set_training(training);
        self.conv2.set_training(training);
        if let Some(conv) = &mut self.shortcut {
            conv.set_training(training);
        }
    }
}
