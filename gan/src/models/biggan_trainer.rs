//! BigGAN's training as compare_gan runs it for "High-Fidelity Image Generation With Fewer
//! Labels": hinge losses, `d_steps` discriminator updates per generator update, Adam with β1 0
//! and β2 0.999 at separate learning rates, an exponential moving average of G's weights, and
//! samples drawn from the averaged G after re-estimating its batch-norm statistics ("standing
//! statistics").
//!
//! One [`GanModel::train_step`] takes one batch from the loop and splits it into `d_steps` equal
//! parts, one per D update: compare_gan draws a fresh real batch for every D update, and splitting
//! keeps that (no real image is seen twice in a step) while the loop's one-batch-per-step data
//! accounting stays true. The per-update batch is the loop's batch divided by `d_steps` (pass
//! `d_steps * 64` for compare_gan's 64); G's update and every D update's fakes use that size too.
//! Fake labels are drawn uniformly (independently per image, as BigGAN) for every fake batch;
//! real labels come from the data.

use super::biggan::{BigGanConfig, BigGanDiscriminator, BigGanGenerator};
use super::rotation::{d_rotation_loss, g_rotation_loss, rotate_batch, RotationHead};
use super::{DStepStats, StepStats};
use crate::run::{uniform_shuffled_labels, BoxError, GanModel};
use saddle_nn::engine::{no_grad, DType, Device, Error, Result, Rng, Tensor};
use saddle_nn::optim::{Adam, AdamConfig, Optimizer};
use saddle_nn::{
    standing_stats, Checkpoint, CheckpointError, Ema, Linear, Module, ModuleExt, SpectralNorm,
};

/// Training settings of a BigGAN pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BigGanTrainConfig {
    /// The architecture of G and D.
    pub model: BigGanConfig,
    /// D updates per G update (compare_gan: 2); each on its own part of the batch.
    pub d_steps: usize,
    /// G's Adam learning rate (compare_gan: 1e-4; 2e-4 is the other setting the paper tried).
    pub lr_g: f64,
    /// D's Adam learning rate (compare_gan: 5e-4).
    pub lr_d: f64,
    /// Adam β1 (0) and β2 (0.999) of both players.
    pub beta1: f64,
    /// Adam β2 of both players.
    pub beta2: f64,
    /// Decay of the average of G's weights (the paper: 0.9999).
    pub ema_decay: f64,
    /// The G step from which the average starts; before it the average is a plain copy (the
    /// paper: 20,000 of 250,000+ steps).
    pub ema_start: u64,
    /// Generated batches that re-estimate the averaged G's batch-norm statistics before each
    /// sampling call; 0 keeps the running statistics copied from the trained G.
    pub standing_batches: usize,
    /// The size of each of those batches.
    pub standing_batch_size: usize,
    /// S3GAN's self-supervision in D: a quarter of each real batch (for D) and fake batch (for
    /// G) is also shown rotated by 90/180/270 degrees to a 4-way rotation head on D's features,
    /// its cross-entropy added with weight 1.0 to D's loss and 0.2 to G's (see
    /// [`super::rotation`]). Needs per-update batches that are a multiple of 16.
    pub rotation: bool,
    /// S2GAN-CO's co-training: a linear class predictor on D's pooled features, trained with
    /// D (cross-entropy on the real images whose label is known, weight 1.0, added to D's
    /// loss), labels the real images whose label is [`UNLABELLED`] by its argmax for D's
    /// projection (as compare_gan's `use_predictor`). Needs a conditional model.
    pub co_training: bool,
}

/// The label of a real image whose class is not known (co-training predicts it).
pub const UNLABELLED: usize = crate::data::UNLABELLED as usize;
/// Weight of the co-training predictor's cross-entropy in D's loss (compare_gan: 1.0).
pub const CLASS_LOSS_WEIGHT: f64 = 1.0;

impl BigGanTrainConfig {
    /// compare_gan's settings for `model`, with the average's decay and start scaled to short
    /// runs (0.999 from step 1,000: the paper's 0.9999 from 20,000 averages over more steps
    /// than a CPU run has), and 16 standing-statistics batches of 64.
    pub fn new(model: BigGanConfig) -> Self {
        BigGanTrainConfig {
            model,
            d_steps: 2,
            lr_g: 1e-4,
            lr_d: 5e-4,
            beta1: 0.0,
            beta2: 0.999,
            ema_decay: 0.999,
            ema_start: 1000,
            standing_batches: 16,
            standing_batch_size: 64,
            rotation: false,
            co_training: false,
        }
    }
}

/// D's hinge loss: `mean(relu(1 - real)) + mean(relu(1 + fake))` of D's logits.
pub fn d_hinge_loss(real_logits: &Tensor, fake_logits: &Tensor) -> Result<Tensor> {
    real_logits
        .hinge_loss_real()?
        .add(&fake_logits.hinge_loss_fake()?)
}

/// G's hinge loss: `-mean(fake)` of D's logits on generated images.
pub fn g_hinge_loss(fake_logits: &Tensor) -> Result<Tensor> {
    fake_logits.mean_all()?.neg()
}

/// Latent codes and (for a conditional model) labels of one fake batch.
pub struct FakeDraw {
    /// `[N, z_dim]`.
    pub z: Tensor,
    /// One class per code (conditional models only).
    pub labels: Option<Vec<usize>>,
}

const RNG_TRAIN: &str = "biggan.train";
const RNG_SAMPLE: &str = "biggan.sample";
const META_STEP: &str = "biggan.step";
const EMA_PREFIX: &str = "g_ema";
/// Where the rotation head's tensors are saved (S3GAN).
const ROTATION_PREFIX: &str = "d_rotation";
/// Where the co-training class predictor's tensors are saved (S2GAN-CO, S3GAN-CO).
const PREDICTOR_PREFIX: &str = "d_predictor";
/// Seeds the standing-statistics passes: a fixed stream, so sampling is a function of the
/// weights alone and never moves a generator that training uses.
const STANDING_SEED: u64 = 0x5717_d1a9;

/// G, D, their optimisers, the average of G's weights (and the G it is copied into to sample)
/// and the trainer's own generators.
pub struct BigGanTrainer {
    /// The training settings.
    pub cfg: BigGanTrainConfig,
    /// The trained generator.
    pub g: BigGanGenerator,
    /// The discriminator.
    pub d: BigGanDiscriminator,
    /// The evaluation copy of G: the average's weights, eval mode, standing statistics.
    pub g_ema: BigGanGenerator,
    /// The moving average of `g`'s weights.
    pub ema: Ema,
    /// S3GAN's rotation head on D's features (with `cfg.rotation`): one of D's parameters,
    /// trained by D's optimiser, saved under `d_rotation`.
    pub rotation: Option<RotationHead>,
    /// The co-training class predictor on D's features (with `cfg.co_training`): one of D's
    /// parameters, saved under `d_predictor`.
    pub predictor: Option<SpectralNorm<Linear>>,
    opt_g: Adam,
    opt_d: Adam,
    /// Draws the fake batches' codes and labels.
    rng: Rng,
    /// Draws labels for [`GanModel::generate`] without labels.
    sample_rng: Rng,
    /// G updates taken.
    steps: u64,
    /// The step at which `g_ema` last got the average's weights and standing statistics: until
    /// the next update, sampling reuses them (an evaluation samples in many batches).
    prepared_at: Option<u64>,
}

impl BigGanTrainer {
    /// Builds G and D from `seed` (and an identical G for the average).
    pub fn new(cfg: BigGanTrainConfig, seed: u64) -> Result<Self> {
        if cfg.d_steps == 0 {
            return Err(Error::InvalidArgument {
                op: "BigGanTrainer",
                reason: "d_steps must be at least 1".into(),
            });
        }
        let mut init = Rng::new(seed);
        let g = BigGanGenerator::new(cfg.model, DType::F32, &mut init)?;
        let d = BigGanDiscriminator::new(cfg.model, DType::F32, &mut init)?;
        let mut g_ema = BigGanGenerator::new(cfg.model, DType::F32, &mut Rng::new(seed))?;
        let ema = Ema::new(&g, cfg.ema_decay, cfg.ema_start)?;
        ema.copy_to(&g_ema)?;
        g_ema.set_training(false);
        let adam = AdamConfig {
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            ..AdamConfig::default()
        };
        // The head has a generator of its own, so switching it on leaves G's and D's initial
        // weights as they are.
        let rotation = if cfg.rotation {
            let width = d.linear.named_parameters()[0].1.shape()[1];
            let mut rng = Rng::new(seed ^ 0x0010_7a7e);
            Some(RotationHead::new(
                width,
                cfg.model.init,
                DType::F32,
                &mut rng,
            )?)
        } else {
            None
        };
        let predictor = match (cfg.co_training, cfg.model.num_classes) {
            (false, _) => None,
            (true, None) => {
                return Err(Error::InvalidArgument {
                    op: "BigGanTrainer",
                    reason: "co-training predicts classes: it needs a conditional model".into(),
                })
            }
            (true, Some(classes)) => {
                let width = d.linear.named_parameters()[0].1.shape()[1];
                let mut rng = Rng::new(seed ^ 0x00c0_7a1b);
                let linear = cfg
                    .model
                    .init
                    .linear(width, classes, true, DType::F32, &mut rng)?;
                Some(SpectralNorm::new(linear, &mut rng)?)
            }
        };
        let mut d_params = d.named_parameters();
        let heads: [(&str, Option<&dyn Module>); 2] = [
            (ROTATION_PREFIX, rotation.as_ref().map(|h| h as &dyn Module)),
            (
                PREDICTOR_PREFIX,
                predictor.as_ref().map(|p| p as &dyn Module),
            ),
        ];
        for (prefix, head) in heads {
            if let Some(head) = head {
                let named = head.named_parameters().into_iter();
                d_params.extend(named.map(|(n, t)| (format!("{prefix}.{n}"), t)));
            }
        }
        Ok(BigGanTrainer {
            opt_g: Adam::with_lr(g.named_parameters(), cfg.lr_g, adam),
            opt_d: Adam::with_lr(d_params, cfg.lr_d, adam),
            cfg,
            g,
            d,
            g_ema,
            ema,
            rotation,
            predictor,
            rng: Rng::new(seed ^ 0xb16_6a4),
            sample_rng: Rng::new(seed ^ 0x5a3_91e),
            steps: 0,
            prepared_at: None,
        })
    }

    /// G updates taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// `n` codes from N(0, 1) and, for a conditional model, `n` labels drawn uniformly, from the
    /// trainer's generator (what a training step draws for each fake batch, in this order).
    pub fn draw_fakes(&mut self, n: usize) -> Result<FakeDraw> {
        let z = Tensor::randn(
            &[n, self.cfg.model.z_dim],
            0.0,
            1.0,
            DType::F32,
            Device::Cpu,
            &mut self.rng,
        )?;
        let labels = self
            .cfg
            .model
            .num_classes
            .map(|k| (0..n).map(|_| self.rng.below(k as u64) as usize).collect());
        Ok(FakeDraw { z, labels })
    }

    /// One training step: `d_steps` D updates, each on its part of `real` (and of `labels`),
    /// then one G update, each with fake codes and labels drawn by [`BigGanTrainer::draw_fakes`].
    pub fn step(&mut self, real: &Tensor, labels: Option<&[usize]>) -> Result<StepStats> {
        self.step_unread(real, labels)?.read()
    }

    /// [`BigGanTrainer::step`] with its numbers left unread.
    pub fn step_unread(
        &mut self,
        real: &Tensor,
        labels: Option<&[usize]>,
    ) -> Result<StepStats<Tensor>> {
        let part = self.part_size(real)?;
        let draws = (0..=self.cfg.d_steps)
            .map(|_| self.draw_fakes(part))
            .collect::<Result<Vec<_>>>()?;
        self.step_with(real, labels, &draws)
    }

    /// The per-update batch: `real`'s rows divided by `d_steps`.
    fn part_size(&self, real: &Tensor) -> Result<usize> {
        let n = real.shape().first().copied().unwrap_or(0);
        let k = self.cfg.d_steps;
        if n == 0 || !n.is_multiple_of(k) {
            return Err(Error::InvalidArgument {
                op: "BigGanTrainer",
                reason: format!(
                    "a batch of {n} does not split into {k} equal parts, one per D step"
                ),
            });
        }
        Ok(n / k)
    }

    /// The step with its fake batches given: `draws[i]` for D update `i`, the last for G's
    /// update (`d_steps + 1` in all). The seam the tests check a step through.
    pub fn step_with(
        &mut self,
        real: &Tensor,
        labels: Option<&[usize]>,
        draws: &[FakeDraw],
    ) -> Result<StepStats<Tensor>> {
        let part = self.part_size(real)?;
        let k = self.cfg.d_steps;
        if draws.len() != k + 1 {
            return Err(Error::InvalidArgument {
                op: "BigGanTrainer",
                reason: format!("{} fake draws for {k} D steps and one G step", draws.len()),
            });
        }
        let labels = match (self.cfg.model.num_classes, labels) {
            (Some(classes), None) => {
                return Err(Error::InvalidArgument {
                    op: "BigGanTrainer",
                    reason: format!(
                        "a conditional BigGAN ({classes} classes) trains on labelled batches"
                    ),
                })
            }
            (Some(_), Some(l)) if l.len() != real.shape()[0] => {
                return Err(Error::InvalidArgument {
                    op: "BigGanTrainer",
                    reason: format!("{} labels for a batch of {}", l.len(), real.shape()[0]),
                })
            }
            (Some(_), labels) => labels,
            // An unconditional model ignores the data's labels.
            (None, _) => None,
        };
        let mut last = None;
        for (i, draw) in draws[..k].iter().enumerate() {
            let x = real.narrow(0, i * part, part)?;
            let y = labels.map(|l| &l[i * part..(i + 1) * part]);
            last = Some(self.d_step(&x, y, draw)?);
        }
        let g_loss = self.g_step(&draws[k])?;
        Ok(last.expect("d_steps >= 1").with_g_loss(g_loss, None))
    }

    /// One D update on real images (and labels) and the fakes of `draw`.
    pub fn d_step(
        &mut self,
        real: &Tensor,
        labels: Option<&[usize]>,
        draw: &FakeDraw,
    ) -> Result<DStepStats<Tensor>> {
        let fake = no_grad(|| self.g.forward(&draw.z, draw.labels.as_deref()))?;
        let (real_logits, auxiliary) = self.real_scores(real, labels)?;
        let fake_logits = self.d.forward(&fake, draw.labels.as_deref())?;
        let mut loss = d_hinge_loss(&real_logits, &fake_logits)?;
        for term in auxiliary {
            loss = loss.add(&term)?;
        }
        self.opt_d.step(&loss.backward()?)?;
        Ok(DStepStats {
            loss: loss.detach(),
            real_score: real_logits.detach().mean_all()?,
            fake_score: fake_logits.detach().mean_all()?,
        })
    }

    /// D's logits on real images and its auxiliary losses on them: the weighted rotation loss
    /// (with rotation) and the co-training predictor's cross-entropy on the rows with known
    /// labels (with co-training; the other rows get the predictor's argmax as their label).
    fn real_scores(
        &self,
        real: &Tensor,
        labels: Option<&[usize]>,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let mut auxiliary = Vec::new();
        let h = match &self.rotation {
            None => self.d.features(real)?,
            Some(head) => {
                let (h, rotation_logits, targets) = self.rotated_features(head, real)?;
                auxiliary.push(d_rotation_loss(&rotation_logits, &targets)?);
                h
            }
        };
        let logits = match &self.predictor {
            None => self.d.head(&h, labels)?,
            Some(predictor) => {
                let labels = labels.ok_or_else(|| Error::InvalidArgument {
                    op: "BigGanTrainer",
                    reason: "co-training needs the real batch's labels".into(),
                })?;
                let (resolved, class_loss) = co_training_labels(predictor, &h, labels)?;
                auxiliary.extend(class_loss);
                self.d.head(&h, Some(&resolved))?
            }
        };
        Ok((logits, auxiliary))
    }

    /// One G update on the fakes of `draw`, then the average's update; returns G's loss.
    pub fn g_step(&mut self, draw: &FakeDraw) -> Result<Tensor> {
        let fake = self.g.forward(&draw.z, draw.labels.as_deref())?;
        // Gradients flow through D to G; D's own weight gradients are not needed.
        self.d.set_frozen(true)?;
        let pass = self
            .g_loss(&fake, draw.labels.as_deref())
            .and_then(|loss| Ok((loss.backward()?, loss)));
        self.d.set_frozen(false)?;
        let (grads, loss) = pass?;
        self.opt_g.step(&grads)?;
        self.steps += 1;
        self.ema.update(&self.g, self.steps)?;
        Ok(loss.detach())
    }

    /// G's loss on `fake`: the hinge, plus with rotation the weighted rotation loss.
    fn g_loss(&self, fake: &Tensor, labels: Option<&[usize]>) -> Result<Tensor> {
        match &self.rotation {
            None => g_hinge_loss(&self.d.forward(fake, labels)?),
            Some(head) => {
                let (h, rotation_logits, targets) = self.rotated_features(head, fake)?;
                g_hinge_loss(&self.d.head(&h, labels)?)?
                    .add(&g_rotation_loss(&rotation_logits, &targets)?)
            }
        }
    }

    /// D's pooled features of `x` and the rotation head's logits (and targets) for the rotated
    /// copies of its last quarter, from one pass of D over both.
    fn rotated_features(
        &self,
        head: &RotationHead,
        x: &Tensor,
    ) -> Result<(Tensor, Tensor, Vec<usize>)> {
        let batch = rotate_batch(x, 4)?;
        let h = self.d.features(&batch.images)?;
        let rotation_logits = head.forward(&batch.rotation_rows_of(&h)?)?;
        Ok((batch.originals_of(&h)?, rotation_logits, batch.targets))
    }

    /// Images from the averaged G: its weights copied into the evaluation G, batch-norm
    /// statistics re-estimated from `standing_batches` generated batches (labels balanced and
    /// shuffled, codes from a fixed stream), then `z` (and `labels`) in eval mode.
    /// The preparation runs once per G update: later calls at the same step reuse it.
    pub fn sample(&mut self, z: &Tensor, labels: Option<&[usize]>) -> Result<Tensor> {
        if self.prepared_at != Some(self.steps) {
            self.prepare_sampling()?;
        }
        no_grad(|| self.g_ema.forward(z, labels))
    }

    /// Copies the average into the evaluation G and re-estimates its batch-norm statistics.
    fn prepare_sampling(&mut self) -> Result<()> {
        self.prepared_at = None;
        self.ema.copy_to(&self.g_ema)?;
        let (batches, size) = (self.cfg.standing_batches, self.cfg.standing_batch_size);
        if batches > 0 {
            let (z_dim, classes) = (self.cfg.model.z_dim, self.cfg.model.num_classes);
            let mut rng = Rng::new(STANDING_SEED);
            standing_stats(&mut self.g_ema, batches, |g, _| {
                let z = Tensor::randn(&[size, z_dim], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng)?;
                let y = classes.map(|k| uniform_shuffled_labels(size, k, &mut rng));
                g.forward(&z, y.as_deref()).map(|_| ())
            })?;
        }
        self.prepared_at = Some(self.steps);
        Ok(())
    }

    /// G, D, both optimisers, the average, the step count and the trainer's generators.
    pub fn checkpoint(&self) -> Checkpoint {
        let mut ck = Checkpoint::new();
        super::save_players(&mut ck, (&self.g, &self.d), (&self.opt_g, &self.opt_d));
        if let Some(head) = &self.rotation {
            ck.add_module(ROTATION_PREFIX, head);
        }
        if let Some(predictor) = &self.predictor {
            ck.add_module(PREDICTOR_PREFIX, predictor);
        }
        for (name, t) in self.ema.named_tensors() {
            ck.add_tensor(format!("{EMA_PREFIX}.{name}"), &t);
        }
        ck.set_rng(RNG_TRAIN, &self.rng);
        ck.set_rng(RNG_SAMPLE, &self.sample_rng);
        ck.set_meta(META_STEP, self.steps);
        ck
    }

    /// Restores what [`BigGanTrainer::checkpoint`] saved.
    pub fn restore(&mut self, ck: &Checkpoint) -> std::result::Result<(), CheckpointError> {
        self.prepared_at = None;
        if let Some(head) = &self.rotation {
            ck.restore_module(ROTATION_PREFIX, head)?;
        }
        if let Some(predictor) = &self.predictor {
            ck.restore_module(PREDICTOR_PREFIX, predictor)?;
        }
        super::restore_players(ck, (&self.g, &self.d), (&mut self.opt_g, &mut self.opt_d))?;
        // The average's tensors carry the evaluation G's names: restored into it (names and
        // shapes checked), the average starts again from its values.
        ck.restore_module(EMA_PREFIX, &self.g_ema)?;
        self.ema = Ema::new(&self.g_ema, self.cfg.ema_decay, self.cfg.ema_start).map_err(|e| {
            CheckpointError {
                path: ck.path().to_path_buf(),
                reason: format!("G's average: {e}"),
            }
        })?;
        self.rng = ck.rng(RNG_TRAIN)?;
        self.sample_rng = ck.rng(RNG_SAMPLE)?;
        let step = ck.meta(META_STEP).unwrap_or("");
        self.steps = step.parse().map_err(|_| CheckpointError {
            path: ck.path().to_path_buf(),
            reason: format!("malformed or missing `{META_STEP}`: {step:?}"),
        })?;
        Ok(())
    }
}

/// Co-training's labels for real features `h` `[N, C]` with `labels` (some [`UNLABELLED`]):
/// the known labels kept, the others replaced by the predictor's argmax (no gradient flows
/// through the choice); and the predictor's weighted cross-entropy on the known rows (none
/// when no row is known).
pub fn co_training_labels(
    predictor: &SpectralNorm<Linear>,
    h: &Tensor,
    labels: &[usize],
) -> Result<(Vec<usize>, Option<Tensor>)> {
    if labels.len() != h.shape()[0] {
        return Err(Error::InvalidArgument {
            op: "co_training_labels",
            reason: format!(
                "{} labels for {} rows of features",
                labels.len(),
                h.shape()[0]
            ),
        });
    }
    let logits = predictor.forward(h)?;
    let predicted = logits.detach().argmax(1)?;
    let known: Vec<usize> = (0..labels.len())
        .filter(|&i| labels[i] != UNLABELLED)
        .collect();
    let resolved = labels
        .iter()
        .zip(&predicted)
        .map(|(&l, &p)| if l == UNLABELLED { p } else { l })
        .collect();
    if known.is_empty() {
        return Ok((resolved, None));
    }
    let targets: Vec<usize> = known.iter().map(|&i| labels[i]).collect();
    let loss = logits
        .index_select(0, &known)?
        .cross_entropy(&targets)?
        .mul_scalar(CLASS_LOSS_WEIGHT)?;
    Ok((resolved, Some(loss)))
}

impl GanModel for BigGanTrainer {
    /// Ignores the loop's generator: the trainer draws its fakes from its own, saved in its
    /// checkpoint.
    fn train_step(
        &mut self,
        real: &Tensor,
        labels: Option<&[usize]>,
        _rng: &mut Rng,
    ) -> std::result::Result<Vec<(&'static str, Tensor)>, BoxError> {
        Ok(self.step_unread(real, labels)?.named())
    }

    fn sample_latent(&self, n: usize, rng: &mut Rng) -> std::result::Result<Tensor, BoxError> {
        let z_dim = self.cfg.model.z_dim;
        Ok(Tensor::randn(
            &[n, z_dim],
            0.0,
            1.0,
            DType::F32,
            Device::Cpu,
            rng,
        )?)
    }

    /// From the averaged G (see [`BigGanTrainer::sample`]); a conditional model draws balanced,
    /// shuffled labels from its sampling generator (saved in checkpoints, apart from training's).
    fn generate(&mut self, z: &Tensor) -> std::result::Result<Tensor, BoxError> {
        let labels = self
            .cfg
            .model
            .num_classes
            .map(|k| uniform_shuffled_labels(z.shape()[0], k, &mut self.sample_rng));
        Ok(self.sample(z, labels.as_deref())?)
    }

    fn num_classes(&self) -> Option<usize> {
        self.cfg.model.num_classes
    }

    fn generate_labelled(
        &mut self,
        z: &Tensor,
        labels: Option<&[usize]>,
    ) -> std::result::Result<Tensor, BoxError> {
        match (self.cfg.model.num_classes, labels) {
            (None, Some(l)) => Err(format!(
                "this BigGAN is unconditional: it takes no class labels (given {})",
                l.len()
            )
            .into()),
            (Some(_), None) => self.generate(z),
            _ => Ok(self.sample(z, labels)?),
        }
    }

    fn value_range(&self) -> (f32, f32) {
        (-1.0, 1.0)
    }

    fn checkpoint(&self) -> Checkpoint {
        BigGanTrainer::checkpoint(self)
    }

    fn restore(&mut self, ck: &Checkpoint) -> std::result::Result<(), CheckpointError> {
        BigGanTrainer::restore(self, ck)
    }
}
