//! What one training step of a GAN reports, shared by the models' trainers so a training loop
//! can log any of them the same way.
//!
//! The trainers build the numbers as scalar tensors on their device ([`StepStats<Tensor>`]) and
//! read them only when asked ([`StepStats::read`], one transfer for all of them): on a GPU every
//! read waits for the queued work to finish, so the training loop reads at its logging
//! intervals, not every step.

use saddle_nn::engine::{no_grad, Result, Tensor};

/// Losses and scores of one training step (the last D step when there are several), as `f64`
/// values or, before they are read, as scalar tensors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats<V = f64> {
    /// The discriminator's loss.
    pub d_loss: V,
    /// The generator's loss.
    pub g_loss: V,
    /// D's mean score on the real batch: a probability for GAN-style discriminators, an energy
    /// (reconstruction error) for EBGAN.
    pub real_score: V,
    /// D's mean score on the generated batch, in the same unit.
    pub fake_score: V,
    /// EBGAN-PT's pulling-away term on the generated batch (before its weight), when used.
    pub pt: Option<V>,
}

impl<V: Clone> StepStats<V> {
    /// The values under the names the run loop logs (`pulling_away` only when present).
    pub fn named(&self) -> Vec<(&'static str, V)> {
        let mut out = vec![
            ("d_loss", self.d_loss.clone()),
            ("g_loss", self.g_loss.clone()),
            ("real_score", self.real_score.clone()),
            ("fake_score", self.fake_score.clone()),
        ];
        if let Some(pt) = &self.pt {
            out.push(("pulling_away", pt.clone()));
        }
        out
    }
}

impl StepStats {
    /// Whether every reported number is finite (a diverged run has a NaN or inf here).
    pub fn is_finite(&self) -> bool {
        [self.d_loss, self.g_loss, self.real_score, self.fake_score]
            .into_iter()
            .chain(self.pt)
            .all(f64::is_finite)
    }
}

impl StepStats<Tensor> {
    /// The values, read from the device in one transfer.
    pub fn read(&self) -> Result<StepStats> {
        let named = self.named();
        let v = read_scalars(&named.iter().map(|(_, t)| t).collect::<Vec<_>>())?;
        Ok(StepStats {
            d_loss: v[0],
            g_loss: v[1],
            real_score: v[2],
            fake_score: v[3],
            pt: v.get(4).copied(),
        })
    }
}

/// What one discriminator update reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DStepStats<V = f64> {
    /// The discriminator's loss.
    pub loss: V,
    /// As [`StepStats::real_score`].
    pub real_score: V,
    /// As [`StepStats::fake_score`].
    pub fake_score: V,
}

impl<V> DStepStats<V> {
    /// The step's numbers: these of its (last) D update, G's loss and, for EBGAN-PT, the
    /// pulling-away term.
    pub fn with_g_loss(self, g_loss: V, pt: Option<V>) -> StepStats<V> {
        StepStats {
            d_loss: self.loss,
            g_loss,
            real_score: self.real_score,
            fake_score: self.fake_score,
            pt,
        }
    }
}

impl DStepStats<Tensor> {
    /// The values, read from the device in one transfer.
    pub fn read(&self) -> Result<DStepStats> {
        let v = read_scalars(&[&self.loss, &self.real_score, &self.fake_score])?;
        Ok(DStepStats {
            loss: v[0],
            real_score: v[1],
            fake_score: v[2],
        })
    }
}

/// The values of one-element tensors (all on one device), read with a single transfer.
pub fn read_scalars(scalars: &[&Tensor]) -> Result<Vec<f64>> {
    if scalars.is_empty() {
        return Ok(Vec::new());
    }
    no_grad(|| {
        let flat = scalars
            .iter()
            .map(|t| t.reshape(&[1]))
            .collect::<Result<Vec<_>>>()?;
        Tensor::concat(&flat.iter().collect::<Vec<_>>(), 0)?.to_vec_f64()
    })
}
