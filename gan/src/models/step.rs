//! What one training step of a GAN reports, shared by the models' trainers so a training loop
//! can log any of them the same way.

/// Losses and scores of one training step (the last D step when there are several).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    pub d_loss: f64,
    pub g_loss: f64,
    /// D's mean score on the real batch: a probability for GAN-style discriminators, an energy
    /// (reconstruction error) for EBGAN.
    pub real_score: f64,
    /// D's mean score on the generated batch, in the same unit.
    pub fake_score: f64,
    /// EBGAN-PT's pulling-away term on the generated batch (before its weight), when used.
    pub pt: Option<f64>,
}

impl StepStats {
    /// Whether every reported number is finite (a diverged run has a NaN or inf here).
    pub fn is_finite(&self) -> bool {
        [self.d_loss, self.g_loss, self.real_score, self.fake_score]
            .into_iter()
            .chain(self.pt)
            .all(f64::is_finite)
    }

    /// The values under the names the run loop logs (`pulling_away` only when present).
    pub fn named(&self) -> Vec<(&'static str, f64)> {
        let mut out = vec![
            ("d_loss", self.d_loss),
            ("g_loss", self.g_loss),
            ("real_score", self.real_score),
            ("fake_score", self.fake_score),
        ];
        if let Some(pt) = self.pt {
            out.push(("pulling_away", pt));
        }
        out
    }
}

/// What one discriminator update reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DStepStats {
    pub loss: f64,
    /// As [`StepStats::real_score`].
    pub real_score: f64,
    /// As [`StepStats::fake_score`].
    pub fake_score: f64,
}
