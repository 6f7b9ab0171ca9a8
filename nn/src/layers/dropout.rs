use crate::{Module, Slot};
use saddle_engine::{Error, Result, Rng, Tensor};
use std::sync::Mutex;

/// Inverted dropout with its own seeded generator (so a run is reproducible); the identity in
/// evaluation mode.
pub struct Dropout {
    pub p: f64,
    rng: Mutex<Rng>,
    training: bool,
}

impl Dropout {
    pub fn new(p: f64, seed: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::InvalidArgument {
                op: "Dropout",
                reason: format!("drop probability must be in [0, 1), got {p}"),
            });
        }
        Ok(Dropout {
            p,
            rng: Mutex::new(Rng::new(seed)),
            training: true,
        })
    }

    /// The generator's state (for checkpoints).
    pub fn rng(&self) -> Rng {
        self.rng
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn set_rng(&self, rng: Rng) {
        match self.rng.lock() {
            Ok(mut r) => *r = rng,
            Err(p) => *p.into_inner() = rng,
        }
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        x.dropout(self.p, &mut rng, self.training)
    }

    fn visit(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Tensor, Slot)) {}

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

/// Maxout (Goodfellow et al. 2013): the maximum over groups of `pieces` consecutive features of
/// dimension 1 (put a Linear with `units * pieces` outputs before it).
pub struct Maxout {
    pub pieces: usize,
}

impl Module for Maxout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.maxout(self.pieces, 1)
    }

    fn visit(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Tensor, Slot)) {}
}
