//! Rotation self-supervision for S3GAN (and SS-GAN): D also predicts by how many quarter turns
//! an image was rotated. This module holds the parts: the rotated batch, the 4-way head on D's
//! pooled features, and the weighted rotation losses.
//!
//! # Layout (as compare_gan's S3GAN lays its batch out)
//!
//! Of a batch of `N` images, the last `m = (N / divisor) / 4` are the rotation examples. The
//! batch D sees is the `N` originals followed by the `m` examples turned by 90, then by 180,
//! then by 270 degrees (counter-clockwise, as [`Tensor::rot90`]): `N + 3m` rows. The GAN loss
//! uses the first `N` rows (the original batch, untouched); the rotation loss uses the last
//! `4m` rows, whose targets are `m` zeros (the unrotated examples, rows `N - m..N`), then `m`
//! ones, `m` twos and `m` threes. `divisor = 4` is the paper's "a quarter of the batch": with
//! `N = 64`, 16 rows carry the rotation loss (4 images, each in its 4 orientations). compare_gan
//! builds this once for the reals and once for the fakes and runs D on both together; here the
//! caller builds each batch and may concatenate them.

use saddle_nn::engine::{DType, Error, Result, Rng, Tensor};
use saddle_nn::init::WeightInit;
use saddle_nn::{child_name, Linear, Module, Slot, SpectralNorm};

/// Number of rotations predicted: 0, 90, 180 and 270 degrees.
pub const NUM_ROTATIONS: usize = 4;
/// Weight of the rotation loss on real images in D's loss (the paper's beta).
pub const ROTATION_WEIGHT_D: f64 = 1.0;
/// Weight of the rotation loss on generated images in G's loss (the paper's alpha).
pub const ROTATION_WEIGHT_G: f64 = 0.2;

/// A batch extended with rotated copies; see the module docs for the layout.
#[derive(Clone, Debug)]
pub struct RotatedBatch {
    /// `[N + 3m, C, H, W]`: the originals, then the last `m` of them turned 1, 2 and 3 times.
    pub images: Tensor,
    /// `N`, the original batch size: D's GAN logits are rows `0..N`.
    pub originals: usize,
    /// `m`, how many images are seen in all four orientations.
    pub per_rotation: usize,
    /// The rotation targets (quarter turns) of the last `4m` rows, in row order.
    pub targets: Vec<usize>,
}

impl RotatedBatch {
    /// The first row the rotation loss covers: `N - m`.
    pub fn rotation_start(&self) -> usize {
        self.originals - self.per_rotation
    }

    /// The rows of per-row outputs `[N + 3m, ...]` (D's logits or features) that belong to the
    /// original batch: rows `0..N`.
    pub fn originals_of(&self, rows: &Tensor) -> Result<Tensor> {
        rows.narrow(0, 0, self.originals)
    }

    /// The rows of per-row outputs `[N + 3m, ...]` that the rotation loss scores, in the
    /// order of [`RotatedBatch::targets`]: rows `N - m..N + 3m`.
    pub fn rotation_rows_of(&self, rows: &Tensor) -> Result<Tensor> {
        rows.narrow(0, self.rotation_start(), self.targets.len())
    }

    /// Class labels of the `N` originals extended to the `N + 3m` rows: a rotated copy keeps its
    /// image's label.
    pub fn extend_labels(&self, labels: &[usize]) -> Result<Vec<usize>> {
        if labels.len() != self.originals {
            return Err(Error::InvalidArgument {
                op: "RotatedBatch::extend_labels",
                reason: format!("{} labels for a batch of {}", labels.len(), self.originals),
            });
        }
        let tail = &labels[self.rotation_start()..];
        let mut out = labels.to_vec();
        for _ in 1..NUM_ROTATIONS {
            out.extend_from_slice(tail);
        }
        Ok(out)
    }
}

/// Builds the rotated batch of `x` `[N, C, H, W]` (square images) with `m = (N / divisor) / 4`
/// rotation examples (see the module docs). Gradients flow back to `x` through every row. An
/// error for non-square or non-NCHW input, `divisor = 0`, `N` not a multiple of `divisor`, or
/// `m = 0` (a batch too small for the divisor).
pub fn rotate_batch(x: &Tensor, divisor: usize) -> Result<RotatedBatch> {
    const OP: &str = "rotate_batch";
    let bad = |reason: String| Error::BadShape {
        op: OP,
        shape: x.shape().to_vec(),
        reason,
    };
    let [n, _, h, w] = *x.shape() else {
        return Err(bad("images must be [N, C, H, W]".into()));
    };
    if h != w {
        return Err(bad(format!(
            "images must be square to stack rotations, got {h}x{w}"
        )));
    }
    if divisor == 0 || !n.is_multiple_of(divisor) {
        return Err(bad(format!(
            "the batch of {n} must be a multiple of the rotated share's divisor {divisor}"
        )));
    }
    let m = n / divisor / NUM_ROTATIONS;
    if m == 0 {
        return Err(bad(format!(
            "a batch of {n} with divisor {divisor} leaves no image to rotate \
             (needs N / divisor >= {NUM_ROTATIONS})"
        )));
    }
    let (images, targets) = with_turned_copies(x, &x.narrow(0, n - m, m)?)?;
    Ok(RotatedBatch {
        images,
        originals: n,
        per_rotation: m,
        targets,
    })
}

/// `x` followed by `tail` (rows `[m, C, H, W]`) turned 1, 2 and 3 quarter turns, and the
/// rotation targets of the last `4m` rows: `m` zeros, ones, twos and threes.
fn with_turned_copies(x: &Tensor, tail: &Tensor) -> Result<(Tensor, Vec<usize>)> {
    let m = tail.shape().first().copied().unwrap_or(0);
    let turned = (1..NUM_ROTATIONS as i32)
        .map(|k| tail.rot90(k))
        .collect::<Result<Vec<_>>>()?;
    let mut parts = vec![x];
    parts.extend(turned.iter());
    let targets = (0..NUM_ROTATIONS)
        .flat_map(|r| std::iter::repeat_n(r, m))
        .collect();
    Ok((Tensor::concat(&parts, 0)?, targets))
}

/// `x` `[N, C, H, W]` (square) followed by its copies turned 1, 2 and 3 quarter turns
/// (`[4N, C, H, W]`), and the rotation targets of the rows: N zeros, N ones, N twos, N threes
/// (every image in every orientation, as the pre-trained labeller sees its batches).
pub fn all_rotations(x: &Tensor) -> Result<(Tensor, Vec<usize>)> {
    with_turned_copies(x, x)
}

/// The 4-way rotation classifier on D's pooled features: a spectrally normalised linear map
/// `C -> 4` with a bias (as compare_gan's `score_classify`). Its parameters are D's (trained
/// by D's optimiser, saved with D); a trainer names it, e.g. `d_rotation`.
pub struct RotationHead {
    /// The map from pooled features to the 4 rotation logits.
    pub linear: SpectralNorm<Linear>,
}

impl RotationHead {
    /// A head on `features`-wide features, initialised by `init` (BigGAN: orthogonal, zero
    /// bias).
    pub fn new(features: usize, init: WeightInit, dtype: DType, rng: &mut Rng) -> Result<Self> {
        let linear = init.linear(features, NUM_ROTATIONS, true, dtype, rng)?;
        Ok(RotationHead {
            linear: SpectralNorm::new(linear, rng)?,
        })
    }
}

impl Module for RotationHead {
    /// Features `[N, C]` -> rotation logits `[N, 4]`.
    fn forward(&self, h: &Tensor) -> Result<Tensor> {
        self.linear.forward(h)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        self.linear.visit(&child_name(prefix, "linear"), f);
    }

    fn set_training(&mut self, training: bool) {
        self.linear.set_training(training);
    }
}

/// The unweighted rotation loss: mean cross-entropy of rotation logits `[4m, 4]` against the
/// targets (compare_gan takes `log(softmax + 1e-10)`; this is the exact log-softmax).
pub fn rotation_loss(logits: &Tensor, targets: &[usize]) -> Result<Tensor> {
    logits.cross_entropy(targets)
}

/// D's rotation term: [`ROTATION_WEIGHT_D`] times the rotation loss on real images, added to
/// D's GAN loss.
pub fn d_rotation_loss(real_logits: &Tensor, targets: &[usize]) -> Result<Tensor> {
    rotation_loss(real_logits, targets)?.mul_scalar(ROTATION_WEIGHT_D)
}

/// G's rotation term: [`ROTATION_WEIGHT_G`] times the rotation loss on generated images, added
/// to G's GAN loss (G is rewarded when D recognises the rotations of its images).
pub fn g_rotation_loss(fake_logits: &Tensor, targets: &[usize]) -> Result<Tensor> {
    rotation_loss(fake_logits, targets)?.mul_scalar(ROTATION_WEIGHT_G)
}
