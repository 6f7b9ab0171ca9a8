//! What the MLP trainers share: GAN 2014 ([`super::gan2014`]), EBGAN ([`super::ebgan`]) and the
//! grid search's GAN ([`super::mlp_gan`]) are each an [`MlpTrainer`] (G, D, their optimisers,
//! the noise generator, the step counter and the device) over their own configuration,
//! networks and optimiser type. Here is the logic that is the same for all three: drawing
//! noise and samples, the batch checks, k D updates on slices of one batch, G's update
//! against a frozen D, the standard GAN D update (GAN 2014 and the grid's GAN), and
//! checkpoints. Each paper's file keeps its networks, its losses and its training step.

use super::DStepStats;
use saddle_nn::engine::{no_grad, DType, Device, Error, Result, Rng, Tensor};
use saddle_nn::optim::Optimizer;
use saddle_nn::{Checkpoint, CheckpointError, Dropout, Module, ModuleExt};

/// What an [`MlpTrainer`] needs of its configuration.
pub trait MlpConfig {
    /// Values per flattened image: G's output width and D's input width.
    fn image_dim(&self) -> usize;

    /// `n` noise vectors `[n, nz]` of the configured distribution on `device`, drawn on the
    /// host from `rng` (see [`super::gaussian_noise`] for why).
    fn noise(&self, n: usize, device: Device, rng: &mut Rng) -> Result<Tensor>;
}

/// D's dropout layers under the names their generators are checkpointed with (`d.<name>`).
pub trait DropoutGenerators {
    /// Each dropout layer with its name, in a fixed order.
    fn dropout_generators(&self) -> Vec<(String, &Dropout)>;
}

/// G, D, their optimisers and the noise generator of an MLP GAN; the paper-specific trainers
/// are instances ([`super::gan2014::Gan2014Trainer`], [`super::ebgan::EbganTrainer`],
/// [`super::mlp_gan::MlpGanTrainer`]).
pub struct MlpTrainer<C, G, D, O> {
    /// The model's sizes and training settings.
    pub cfg: C,
    /// The generator.
    pub g: G,
    /// The discriminator.
    pub d: D,
    /// G's optimiser.
    pub opt_g: O,
    /// D's optimiser.
    pub opt_d: O,
    /// G's noise. The trainer draws from its own generator, saved in its checkpoints, so a
    /// resumed run draws what the uninterrupted one would have.
    pub(super) rng: Rng,
    pub(super) steps: u64,
    /// Where G, D, the optimisers' state and every step's tensors live.
    pub(super) device: Device,
}

impl<C, G, D, O> MlpTrainer<C, G, D, O>
where
    C: MlpConfig,
    G: Module,
    D: Module + DropoutGenerators,
    O: Optimizer,
{
    /// A trainer before its first step, on the CPU. `rng` is the generator G's and D's
    /// initialisation drew from; it goes on to draw the noise.
    pub(super) fn from_parts(cfg: C, g: G, d: D, opt_g: O, opt_d: O, rng: Rng) -> Self {
        MlpTrainer {
            cfg,
            g,
            d,
            opt_g,
            opt_d,
            rng,
            steps: 0,
            device: Device::Cpu,
        }
    }

    /// Training steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// `n` noise vectors from the trainer's generator, on its device.
    pub fn noise(&mut self, n: usize) -> Result<Tensor> {
        self.cfg.noise(n, self.device, &mut self.rng)
    }

    /// `n` samples of G, `[n, image_dim]`, without gradient tracking, in G's current mode (a G
    /// with batch norm uses the batch's own statistics in training mode; for final samples put
    /// G in evaluation mode, after [`saddle_nn::standing_stats`] if wanted).
    pub fn sample(&mut self, n: usize) -> Result<Tensor> {
        let z = self.noise(n)?;
        no_grad(|| self.g.forward(&z))
    }

    /// A training step's real batch (images of any shape with `image_dim` values each) as
    /// `[k * m, image_dim]` on the trainer's device, and m, the rows of each of the k D
    /// minibatches (at least `min_rows`).
    pub(super) fn real_batch(
        &self,
        real: &Tensor,
        k: usize,
        min_rows: usize,
        op: &'static str,
    ) -> Result<(Tensor, usize)> {
        let real = rows(real, self.cfg.image_dim(), op)?.to_device(self.device)?;
        let m = minibatch(&real, k, min_rows, op)?;
        Ok((real, m))
    }

    /// The D updates of one step: `d_step` on each m-row slice of `real` in turn; returns what
    /// the last one reports.
    pub(super) fn d_updates(
        &mut self,
        real: &Tensor,
        m: usize,
        mut d_step: impl FnMut(&mut Self, &Tensor) -> Result<DStepStats<Tensor>>,
    ) -> Result<DStepStats<Tensor>> {
        let mut last = None;
        for batch in real.split(m, 0)? {
            last = Some(d_step(self, &batch)?);
        }
        Ok(last.expect("at least one D step"))
    }

    /// One update of G: `loss` gives G's loss (and anything else the trainer reports) with D
    /// frozen, since D's weights get no gradient in G's step and freezing skips computing
    /// them. D is unfrozen whether or not the pass succeeds. Returns the loss before the
    /// update (unread) and the rest.
    pub(super) fn g_update<X>(
        &mut self,
        loss: impl FnOnce(&Self) -> Result<(Tensor, X)>,
    ) -> Result<(Tensor, X)> {
        self.d.set_frozen(true)?;
        let pass = loss(self).and_then(|(loss, rest)| Ok((loss.backward()?, loss, rest)));
        self.d.set_frozen(false)?;
        let (grads, loss, rest) = pass?;
        self.opt_g.step(&grads)?;
        Ok((loss.detach(), rest))
    }

    /// The standard GAN update of a D that outputs logits, on `real` (`[m, image_dim]`) and m
    /// fresh samples: loss [`discriminator_loss`]. The scores are D's mean probabilities before
    /// the update (unread).
    pub(super) fn logistic_d_update(&mut self, real: &Tensor) -> Result<DStepStats<Tensor>> {
        let real = &real.to_device(self.device)?;
        let fake = self.sample(real.shape()[0])?;
        let logit_real = self.d.forward(real)?;
        let logit_fake = self.d.forward(&fake)?;
        let loss = discriminator_loss(&logit_real, &logit_fake)?;
        self.opt_d.step(&loss.backward()?)?;
        Ok(DStepStats {
            loss: loss.detach(),
            real_score: mean_probability(&logit_real)?,
            fake_score: mean_probability(&logit_fake)?,
        })
    }

    /// Everything a resumed run needs: both networks (`g.*`, `d.*`, batch-norm statistics
    /// included) and both optimisers' state (`opt_g.*`, `opt_d.*`: momentum buffers, or Adam's
    /// moments and step counts), as every GAN trainer saves them; the step counter (`step`),
    /// the noise generator (`noise`) and D's dropout generators (`d.<name>` each).
    pub fn checkpoint(&self) -> Checkpoint {
        let mut ck = Checkpoint::new();
        super::save_players(&mut ck, (&self.g, &self.d), (&self.opt_g, &self.opt_d));
        ck.set_meta("step", self.steps);
        ck.set_rng("noise", &self.rng);
        for (name, drop) in self.d.dropout_generators() {
            ck.set_rng(&format!("d.{name}"), &drop.rng());
        }
        ck
    }

    /// Restores a state saved by [`MlpTrainer::checkpoint`]. The step counter and the
    /// generators are read before anything is written, so a checkpoint missing one leaves the
    /// trainer untouched.
    pub fn restore(&mut self, ck: &Checkpoint) -> std::result::Result<(), CheckpointError> {
        let steps = ck
            .meta("step")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ck_error(ck, "no step counter `step`"))?;
        let noise = ck.rng("noise")?;
        let drops = self
            .d
            .dropout_generators()
            .iter()
            .map(|(name, _)| ck.rng(&format!("d.{name}")))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        super::restore_players(ck, (&self.g, &self.d), (&mut self.opt_g, &mut self.opt_d))?;
        for ((_, drop), rng) in self.d.dropout_generators().into_iter().zip(drops) {
            drop.set_rng(rng);
        }
        (self.steps, self.rng) = (steps, noise);
        Ok(())
    }
}

impl_trainer_device!([C, G: Module, D: Module, O] MlpTrainer<C, G, D, O>);

/// A list of dropout layers named `drops.<i>` (checkpointed as `d.drops.<i>`).
pub(crate) fn numbered_dropouts(drops: &[Dropout]) -> Vec<(String, &Dropout)> {
    drops
        .iter()
        .enumerate()
        .map(|(i, drop)| (format!("drops.{i}"), drop))
        .collect()
}

/// An error naming the file `ck` came from.
pub(crate) fn ck_error(ck: &Checkpoint, reason: &str) -> CheckpointError {
    CheckpointError {
        path: ck.path().to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The D minibatch size when `real` (`[N, dim]`) is split into `k` equal parts of at least
/// `min_rows` rows.
pub(crate) fn minibatch(
    real: &Tensor,
    k: usize,
    min_rows: usize,
    op: &'static str,
) -> Result<usize> {
    let n = real.shape()[0];
    if !n.is_multiple_of(k) || n / k < min_rows.max(1) {
        return Err(Error::BadShape {
            op,
            shape: real.shape().to_vec(),
            reason: format!(
                "the batch must split into {k} equal D minibatches of at least {} rows",
                min_rows.max(1)
            ),
        });
    }
    Ok(n / k)
}

/// `x` as `[N, dim]` (images of any shape whose rows hold `dim` values).
pub(crate) fn rows(x: &Tensor, dim: usize, op: &'static str) -> Result<Tensor> {
    if x.rank() == 0 || x.shape()[1..].iter().product::<usize>() != dim {
        return Err(Error::BadShape {
            op,
            shape: x.shape().to_vec(),
            reason: format!("expected a batch of images with {dim} values each"),
        });
    }
    x.reshape(&[x.shape()[0], dim])
}

/// The mean of D's two cross-entropies: real labelled 1, generated 0.
pub(crate) fn discriminator_loss(logit_real: &Tensor, logit_fake: &Tensor) -> Result<Tensor> {
    let ones = Tensor::ones(logit_real.shape(), DType::F32, logit_real.device())?;
    let zeros = Tensor::zeros(logit_fake.shape(), DType::F32, logit_fake.device())?;
    logit_real
        .binary_cross_entropy_with_logits(&ones)?
        .add(&logit_fake.binary_cross_entropy_with_logits(&zeros)?)?
        .mul_scalar(0.5)
}

/// D's mean probability of "real" over a batch of logits, as an unread scalar.
pub(crate) fn mean_probability(logits: &Tensor) -> Result<Tensor> {
    no_grad(|| logits.sigmoid()?.mean_all())
}
