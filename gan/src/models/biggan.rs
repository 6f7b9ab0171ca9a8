//! BigGAN (Brock et al. 2019) as compare_gan re-implements it for "High-Fidelity Image Generation
//! With Fewer Labels" (Lucic et al. 2019): residual G and D, spectral norm on every convolution,
//! linear layer and D's class embedding, a non-local (self-attention) block at one resolution,
//! orthogonal init.
//!
//! - G: hierarchical z. z is split into one chunk for the first linear layer (to a 4x4 seed) and
//!   one per up-block; each block's batch norms are conditioned on its chunk concatenated with a
//!   shared class embedding (not spectrally normalised, as in compare_gan and BigGAN-PyTorch).
//!   After the blocks: batch norm (with its own gain and bias), ReLU, a 3x3 convolution, tanh:
//!   images in [-1, 1].
//! - D: down-blocks (the last keeps its resolution), ReLU, global sum pooling to `h`, then the
//!   projection head `linear(h) + embed(y) . h`.
//! - Unconditional (no classes, for BigBiGAN and the label-free methods): G's blocks use plain
//!   batch norm and the whole of z feeds the first layer; D has no projection term.
//!
//! Parameter counts count trained tensors only: batch-norm running statistics and the spectral
//! norms' power-iteration vectors are buffers.

use saddle_nn::engine::{DType, Error, Result, Rng, Tensor};
use saddle_nn::init::WeightInit;
use saddle_nn::{
    child_name, BatchNorm, BlockNormKind, Conv2d, Embedding, Linear, Module, ResBlockDown,
    ResBlockUp, SelfAttention, Slot, SpectralNorm,
};

/// The side of G's first feature map.
const SEED_SIDE: usize = 4;

/// Sizes and options of a BigGAN pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BigGanConfig {
    /// Image side: 32, 64 or 128.
    pub resolution: usize,
    /// Image channels: 1 or 3.
    pub channels: usize,
    /// Width multiplier (the paper: 96).
    pub ch: usize,
    /// Number of classes; `None` for the unconditional variant.
    pub num_classes: Option<usize>,
    /// Size of z; for a conditional G, a multiple of the number of G blocks plus one.
    pub z_dim: usize,
    /// Size of G's shared class embedding.
    pub shared_dim: usize,
    /// Side of the feature maps after which both G and D apply the non-local block (the paper:
    /// 64 at 128x128); `None` for none.
    pub attention_resolution: Option<usize>,
    /// Spectral norm on the conditional batch norms' gain and bias maps (compare_gan: yes).
    pub spectral_norm_conditioning: bool,
    /// How the weights start (BigGAN: orthogonal).
    pub init: WeightInit,
}

impl BigGanConfig {
    /// The paper's ImageNet 128x128 configuration: ch 96, 1000 classes, z 120 in 6 chunks of 20,
    /// shared embedding 128, attention at 64x64.
    pub fn imagenet128() -> Self {
        BigGanConfig {
            resolution: 128,
            channels: 3,
            ch: 96,
            num_classes: Some(1000),
            z_dim: 120,
            shared_dim: 128,
            attention_resolution: Some(64),
            spectral_norm_conditioning: true,
            init: WeightInit::Orthogonal,
        }
    }

    /// G's channels before each block and after the last (compare_gan's multipliers of `ch`).
    fn g_widths(&self) -> Result<Vec<usize>> {
        let multipliers: &[usize] = match self.resolution {
            32 => &[4, 4, 4, 4],
            64 => &[16, 16, 8, 4, 2],
            128 => &[16, 16, 8, 4, 2, 1],
            r => return Err(self.invalid(format!("resolution {r} is not one of 32, 64, 128"))),
        };
        Ok(multipliers.iter().map(|m| m * self.ch).collect())
    }

    /// D's (input, output) channels per block; the image's channels come first.
    fn d_widths(&self) -> Result<Vec<(usize, usize)>> {
        let multipliers: &[usize] = match self.resolution {
            32 => &[2, 2, 2, 2],
            64 => &[2, 4, 8, 16, 16],
            128 => &[1, 2, 4, 8, 16, 16],
            r => return Err(self.invalid(format!("resolution {r} is not one of 32, 64, 128"))),
        };
        let outs: Vec<usize> = multipliers.iter().map(|m| m * self.ch).collect();
        let ins = std::iter::once(self.channels).chain(outs.iter().copied());
        Ok(ins.zip(outs.iter().copied()).collect())
    }

    fn invalid(&self, reason: String) -> Error {
        Error::InvalidArgument {
            op: "BigGanConfig",
            reason,
        }
    }

    /// The number of z chunks: one per G block plus the first (one, unconditional).
    fn z_chunks(&self) -> Result<usize> {
        Ok(match self.num_classes {
            Some(_) => self.g_widths()?.len(),
            None => 1,
        })
    }

    /// Checks the sizes and returns the z chunk size.
    fn validate(&self) -> Result<usize> {
        if self.channels != 1 && self.channels != 3 {
            return Err(self.invalid(format!("channels {} is not 1 or 3", self.channels)));
        }
        if self.ch == 0 || self.z_dim == 0 || self.num_classes == Some(0) {
            return Err(self.invalid(format!(
                "ch {}, z_dim {} and the number of classes must be positive",
                self.ch, self.z_dim
            )));
        }
        let chunks = self.z_chunks()?;
        if !self.z_dim.is_multiple_of(chunks) {
            return Err(self.invalid(format!(
                "z_dim {} does not split into {chunks} equal chunks (one per G block plus one)",
                self.z_dim
            )));
        }
        if let Some(side) = self.attention_resolution {
            let (g, d) = (self.g_attention_block()?, self.d_attention_block()?);
            if g.is_none() || d.is_none() {
                return Err(self.invalid(format!(
                    "attention at {side}x{side}: no {} block outputs that resolution at {}x{}",
                    if g.is_none() { "G" } else { "D" },
                    self.resolution,
                    self.resolution
                )));
            }
        }
        Ok(self.z_dim / chunks)
    }

    /// The G block after which the non-local block runs (block `i` outputs side 8·2^i).
    fn g_attention_block(&self) -> Result<Option<usize>> {
        let blocks = self.g_widths()?.len() - 1;
        Ok(self
            .attention_resolution
            .and_then(|side| (0..blocks).find(|i| SEED_SIDE << (i + 1) == side)))
    }

    /// The D block after which the non-local block runs (block `i` outputs side res/2^(i+1),
    /// except the last, which keeps its input's).
    fn d_attention_block(&self) -> Result<Option<usize>> {
        let blocks = self.d_widths()?.len();
        let side_after = |i: usize| self.resolution >> (i + 1).min(blocks - 1);
        Ok(self
            .attention_resolution
            .and_then(|side| (0..blocks).find(|&i| side_after(i) == side)))
    }

    /// The condition size of G's batch norms: a z chunk plus the shared embedding.
    fn g_norm(&self, chunk: usize) -> BlockNormKind {
        match self.num_classes {
            Some(_) => BlockNormKind::Conditional {
                cond_dim: chunk + self.shared_dim,
                spectral: self.spectral_norm_conditioning,
            },
            None => BlockNormKind::Plain,
        }
    }

    /// G's trained parameters, from the same sizes [`BigGanGenerator::new`] builds (a test
    /// checks the two agree), without allocating: the 128x128 model's are 70,433,988.
    pub fn generator_parameters(&self) -> Result<usize> {
        let chunk = self.validate()?;
        let widths = self.g_widths()?;
        let norm = self.g_norm(chunk);
        let seed = SEED_SIDE * SEED_SIDE * widths[0];
        let last = widths[widths.len() - 1];
        let blocks: usize = widths
            .windows(2)
            .map(|w| ResBlockUp::parameter_count(w[0], w[1], norm))
            .sum();
        let attention = match self.g_attention_block()? {
            Some(i) => SelfAttention::parameter_count(widths[i + 1]),
            None => 0,
        };
        Ok(self.num_classes.map_or(0, |k| k * self.shared_dim)
            + (chunk * seed + seed)
            + blocks
            + attention
            + 2 * last
            + (last * self.channels * 9 + self.channels))
    }

    /// D's trained parameters, as [`BigGanConfig::generator_parameters`]: the 128x128 model's
    /// are 87,982,370.
    pub fn discriminator_parameters(&self) -> Result<usize> {
        self.validate()?;
        let widths = self.d_widths()?;
        let last = widths[widths.len() - 1].1;
        let blocks: usize = widths
            .iter()
            .map(|&(i, o)| ResBlockDown::parameter_count(i, o))
            .sum();
        let attention = match self.d_attention_block()? {
            Some(i) => SelfAttention::parameter_count(widths[i].1),
            None => 0,
        };
        Ok(blocks + attention + (last + 1) + self.num_classes.map_or(0, |k| k * last))
    }
}

/// A non-local block whose convolutions take `init` (SelfAttention's own are PyTorch's
/// default); `gamma` stays 0.
fn attention(
    channels: usize,
    init: WeightInit,
    dtype: DType,
    rng: &mut Rng,
) -> Result<SelfAttention> {
    let block = SelfAttention::new(channels, dtype, rng)?;
    for conv in [&block.theta, &block.phi, &block.g, &block.o] {
        let w = &conv.inner.weight;
        if let Some(fresh) = init.weight(w.shape(), dtype, rng)? {
            w.assign(&fresh)?;
        }
    }
    Ok(block)
}

/// Checks that `labels` holds `n` ids below `classes`, or is absent for an unconditional
/// network.
fn check_labels(
    op: &'static str,
    labels: Option<&[usize]>,
    n: usize,
    classes: Option<usize>,
) -> Result<()> {
    let reason = match (labels, classes) {
        (None, None) => return Ok(()),
        (Some(l), None) => format!("{} labels given to an unconditional network", l.len()),
        (None, Some(k)) => format!("a conditional network ({k} classes) needs {n} labels"),
        (Some(l), Some(_)) if l.len() != n => format!("{} labels for a batch of {n}", l.len()),
        (Some(l), Some(k)) => match l.iter().find(|&&c| c >= k) {
            Some(c) => format!("label {c} is not below the number of classes {k}"),
            None => return Ok(()),
        },
    };
    Err(Error::InvalidArgument { op, reason })
}

/// BigGAN's generator: `G(z, y)` -> images `[N, channels, resolution, resolution]` in [-1, 1].
pub struct BigGanGenerator {
    /// The configuration it was built from.
    pub cfg: BigGanConfig,
    /// The shared class embedding (conditional only).
    pub shared: Option<Embedding>,
    /// z (its first chunk, conditional) -> the 4x4 seed.
    pub fc: SpectralNorm<Linear>,
    /// The up-blocks, each doubling the side from 4x4 to the resolution.
    pub blocks: Vec<ResBlockUp>,
    /// The non-local block and the index of the block it follows.
    pub attention: Option<(usize, SelfAttention)>,
    /// The batch norm before the last ReLU.
    pub final_bn: BatchNorm,
    /// The 3x3 convolution to image channels (tanh after it).
    pub final_conv: SpectralNorm<Conv2d>,
    chunk: usize,
}

impl BigGanGenerator {
    /// The generator of `cfg` with weights from `rng`. An invalid configuration (channels other
    /// than 1 or 3, a zero size, a `z_dim` that does not split into the blocks' chunks, an
    /// attention resolution no block has) is an error.
    pub fn new(cfg: BigGanConfig, dtype: DType, rng: &mut Rng) -> Result<Self> {
        let chunk = cfg.validate()?;
        let init = cfg.init;
        let widths = cfg.g_widths()?;
        let norm = cfg.g_norm(chunk);
        let shared = cfg
            .num_classes
            .map(|k| init.embedding(k, cfg.shared_dim, dtype, rng))
            .transpose()?;
        let seed = SEED_SIDE * SEED_SIDE * widths[0];
        let fc = SpectralNorm::new(init.linear(chunk, seed, true, dtype, rng)?, rng)?;
        let blocks = widths
            .windows(2)
            .map(|w| ResBlockUp::new(w[0], w[1], norm, init, dtype, rng))
            .collect::<Result<Vec<_>>>()?;
        let attention = match cfg.g_attention_block()? {
            Some(i) => Some((i, attention(widths[i + 1], init, dtype, rng)?)),
            None => None,
        };
        let last = widths[widths.len() - 1];
        let final_conv = init.conv2d(last, cfg.channels, 3, true, dtype, rng)?;
        Ok(BigGanGenerator {
            cfg,
            shared,
            fc,
            blocks,
            attention,
            final_bn: BatchNorm::new_2d(last, true, dtype)?,
            final_conv: SpectralNorm::new(final_conv, rng)?,
            chunk,
        })
    }

    /// `z` `[N, z_dim]` and, for a conditional G, `N` class labels -> images `[N, channels,
    /// resolution, resolution]` in [-1, 1].
    pub fn forward(&self, z: &Tensor, labels: Option<&[usize]>) -> Result<Tensor> {
        const OP: &str = "BigGanGenerator";
        if z.rank() != 2 || z.shape()[1] != self.cfg.z_dim {
            return Err(Error::BadShape {
                op: OP,
                shape: z.shape().to_vec(),
                reason: format!("z must be [N, {}]", self.cfg.z_dim),
            });
        }
        let n = z.shape()[0];
        check_labels(OP, labels, n, self.cfg.num_classes)?;
        let embedded = match (&self.shared, labels) {
            (Some(shared), Some(labels)) => Some(shared.lookup(labels)?),
            _ => None,
        };
        let seed = self.fc.forward(&z.narrow(1, 0, self.chunk)?)?;
        let mut h = seed.reshape(&[n, seed.shape()[1] / 16, SEED_SIDE, SEED_SIDE])?;
        for (i, block) in self.blocks.iter().enumerate() {
            let cond = match &embedded {
                Some(e) => {
                    let chunk = z.narrow(1, (i + 1) * self.chunk, self.chunk)?;
                    Some(Tensor::concat(&[&chunk, e], 1)?)
                }
                None => None,
            };
            h = block.forward_cond(&h, cond.as_ref())?;
            if let Some((at, attention)) = &self.attention {
                if *at == i {
                    h = attention.forward(&h)?;
                }
            }
        }
        let h = self.final_bn.forward(&h)?.relu()?;
        self.final_conv.forward(&h)?.tanh()
    }
}

impl Module for BigGanGenerator {
    /// For an unconditional G; a conditional one needs [`BigGanGenerator::forward`]'s labels.
    fn forward(&self, z: &Tensor) -> Result<Tensor> {
        BigGanGenerator::forward(self, z, None)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        if let Some(shared) = &self.shared {
            shared.visit(&child_name(prefix, "shared"), f);
        }
        self.fc.visit(&child_name(prefix, "fc"), f);
        for (i, block) in self.blocks.iter().enumerate() {
            block.visit(&child_name(prefix, &format!("blocks.{i}")), f);
        }
        if let Some((_, attention)) = &self.attention {
            attention.visit(&child_name(prefix, "attention"), f);
        }
        self.final_bn.visit(&child_name(prefix, "final_bn"), f);
        self.final_conv.visit(&child_name(prefix, "final_conv"), f);
    }

    fn set_training(&mut self, training: bool) {
        self.fc.set_training(training);
        for block in &mut self.blocks {
            block.set_training(training);
        }
        if let Some((_, attention)) = &mut self.attention {
            attention.set_training(training);
        }
        self.final_bn.set_training(training);
        self.final_conv.set_training(training);
    }

    fn visit_batch_norms(&mut self, f: &mut dyn FnMut(&mut BatchNorm)) {
        for block in &mut self.blocks {
            block.visit_batch_norms(f);
        }
        f(&mut self.final_bn);
    }
}

/// BigGAN's discriminator: `D(x, y)` -> logits `[N]`.
pub struct BigGanDiscriminator {
    /// The configuration it was built from.
    pub cfg: BigGanConfig,
    /// The down-blocks, halving the side in all but the last.
    pub blocks: Vec<ResBlockDown>,
    /// The non-local block and the index of the block it follows.
    pub attention: Option<(usize, SelfAttention)>,
    /// `f(h)`: pooled features -> one logit.
    pub linear: SpectralNorm<Linear>,
    /// The projection's class embedding `[classes, C]` (conditional only).
    pub embed: Option<SpectralNorm<Embedding>>,
}

impl BigGanDiscriminator {
    /// The discriminator of `cfg` with weights from `rng` (an error for an invalid
    /// configuration, as [`BigGanGenerator::new`]).
    pub fn new(cfg: BigGanConfig, dtype: DType, rng: &mut Rng) -> Result<Self> {
        cfg.validate()?;
        let init = cfg.init;
        let widths = cfg.d_widths()?;
        let last_block = widths.len() - 1;
        let blocks = widths
            .iter()
            .enumerate()
            .map(|(i, &(cin, cout))| {
                ResBlockDown::new(cin, cout, i != last_block, i != 0, init, dtype, rng)
            })
            .collect::<Result<Vec<_>>>()?;
        let attention = match cfg.d_attention_block()? {
            Some(i) => Some((i, attention(widths[i].1, init, dtype, rng)?)),
            None => None,
        };
        let c = widths[last_block].1;
        let linear = SpectralNorm::new(init.linear(c, 1, true, dtype, rng)?, rng)?;
        let embed = cfg
            .num_classes
            .map(|k| SpectralNorm::new(init.embedding(k, c, dtype, rng)?, rng))
            .transpose()?;
        Ok(BigGanDiscriminator {
            cfg,
            blocks,
            attention,
            linear,
            embed,
        })
    }

    /// The pooled features `h` `[N, C]`: the blocks, ReLU, a sum over positions.
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let (r, c) = (self.cfg.resolution, self.cfg.channels);
        if x.rank() != 4 || x.shape()[1..] != [c, r, r] {
            return Err(Error::BadShape {
                op: "BigGanDiscriminator",
                shape: x.shape().to_vec(),
                reason: format!("images must be [N, {c}, {r}, {r}]"),
            });
        }
        let mut h = x.clone();
        for (i, block) in self.blocks.iter().enumerate() {
            h = block.forward(&h)?;
            if let Some((at, attention)) = &self.attention {
                if *at == i {
                    h = attention.forward(&h)?;
                }
            }
        }
        h.relu()?.global_sum_pool2d()
    }

    /// The logits `[N]` of pooled features `h` `[N, C]`: `linear(h) + embed(y) . h`.
    pub fn head(&self, h: &Tensor, labels: Option<&[usize]>) -> Result<Tensor> {
        let n = h.shape()[0];
        check_labels("BigGanDiscriminator", labels, n, self.cfg.num_classes)?;
        let logits = self.linear.forward(h)?.reshape(&[n])?;
        match (&self.embed, labels) {
            (Some(embed), Some(labels)) => {
                let e = embed.normalized_weight()?.index_select(0, labels)?;
                logits.add(&e.mul(h)?.sum(&[1], false)?)
            }
            _ => Ok(logits),
        }
    }

    /// Images `[N, channels, resolution, resolution]` and, for a conditional D, `N` class
    /// labels -> logits `[N]`.
    pub fn forward(&self, x: &Tensor, labels: Option<&[usize]>) -> Result<Tensor> {
        check_labels(
            "BigGanDiscriminator",
            labels,
            x.shape().first().copied().unwrap_or(0),
            self.cfg.num_classes,
        )?;
        self.head(&self.features(x)?, labels)
    }
}

impl Module for BigGanDiscriminator {
    /// For an unconditional D; a conditional one needs [`BigGanDiscriminator::forward`]'s
    /// labels.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        BigGanDiscriminator::forward(self, x, None)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        for (i, block) in self.blocks.iter().enumerate() {
            block.visit(&child_name(prefix, &format!("blocks.{i}")), f);
        }
        if let Some((_, attention)) = &self.attention {
            attention.visit(&child_name(prefix, "attention"), f);
        }
        self.linear.visit(&child_name(prefix, "linear"), f);
        if let Some(embed) = &self.embed {
            embed.visit(&child_name(prefix, "embed"), f);
        }
    }

    fn set_training(&mut self, training: bool) {
        for block in &mut self.blocks {
            block.set_training(training);
        }
        if let Some((_, attention)) = &mut self.attention {
            attention.set_training(training);
        }
        self.linear.set_training(training);
        if let Some(embed) = &mut self.embed {
            embed.set_training(training);
        }
    }
}
