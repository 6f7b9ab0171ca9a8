use crate::{Module, Slot};
use saddle_engine::{Error, Result, Rng, Tensor};
use std::sync::Mutex;

/// Inverted dropout with its own seeded generator (so a run is reproducible); the identity in
/// evaluation mode.
///
/// In training mode each element is zeroed with probability `p` and the others are scaled by
/// `1 / (1 − p)`, so the expected value is unchanged. The output has the input's shape.
///
/// ```
/// use saddle_nn::engine::{DType, Device, Tensor};
/// use saddle_nn::{Dropout, Module};
///
/// let mut drop = Dropout::new(0.5, 7)?;
/// let x = Tensor::ones(&[100], DType::F32, Device::Cpu)?;
/// // Training: every value is either dropped or doubled.
/// let y = drop.forward(&x)?.to_vec::<f32>()?;
/// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
/// assert!(y.contains(&0.0));
/// // Evaluation: the identity.
/// drop.set_training(false);
/// assert_eq!(drop.forward(&x)?.to_vec::<f32>()?, vec![1.0; 100]);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub struct Dropout {
    /// Probability of zeroing an element, in `[0, 1)`.
    pub p: f64,
    rng: Mutex<Rng>,
    training: bool,
}

impl Dropout {
    /// Drops with probability `p` (an error outside `[0, 1)`), masks drawn from a generator
    /// seeded with `seed`; starts in training mode.
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

    /// Replaces the generator's state (restoring a checkpoint).
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
///
/// Input `[N, units · pieces, ...]`, output `[N, units, ...]`; a dimension 1 that `pieces` does
/// not divide is an error.
///
/// ```
/// use saddle_nn::engine::{Device, Tensor};
/// use saddle_nn::{Maxout, Module};
///
/// let x = Tensor::from_vec(vec![1.0f32, 5.0, -2.0, -3.0], &[1, 4], Device::Cpu)?;
/// let y = Maxout { pieces: 2 }.forward(&x)?;
/// assert_eq!(y.shape(), &[1, 2]);
/// assert_eq!(y.to_vec::<f32>()?, [5.0, -2.0]);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub struct Maxout {
    /// How many consecutive features each output takes the maximum of.
    pub pieces: usize,
}

impl Module for Maxout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.maxout(self.pieces, 1)
    }

    fn visit(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Tensor, Slot)) {}
}
