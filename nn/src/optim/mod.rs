//! Optimisers (SGD, Adam, AdamW) with per-group learning rates, learning-rate schedules and
//! gradient clipping. Updates are fused in-place engine ops, matching PyTorch's formulas.

mod adam;
mod clip;
mod schedule;
mod sgd;

pub use adam::{Adam, AdamConfig};
pub use clip::clip_grad_norm;
pub use schedule::Schedule;
pub use sgd::{Sgd, SgdConfig};

use saddle_engine::{Grads, Result, Tensor};

/// Parameters that share a learning rate.
#[derive(Clone)]
pub struct ParamGroup {
    /// The parameters with their names (the names key the optimiser's state in checkpoints).
    pub params: Vec<(String, Tensor)>,
    /// The group's learning rate.
    pub lr: f64,
}

impl ParamGroup {
    /// A group of `params` (from [`crate::ModuleExt::named_parameters`], say) at rate `lr`.
    pub fn new(params: Vec<(String, Tensor)>, lr: f64) -> Self {
        ParamGroup { params, lr }
    }
}

/// What every optimiser offers the training loops and checkpoints.
pub trait Optimizer {
    /// Updates every parameter that has a gradient in `grads`; others are left alone.
    fn step(&mut self, grads: &Grads) -> Result<()>;
    /// The parameter groups, in the order given at construction.
    fn groups(&self) -> &[ParamGroup];
    /// Sets group `group`'s learning rate (to follow a [`Schedule`], say); [`Sgd`] and [`Adam`]
    /// ignore an index past the last group.
    fn set_lr(&mut self, group: usize, lr: f64);
    /// The optimiser's state as named tensors (`<param>.<slot>`) for checkpoints; step
    /// counters are stored as one-element f64 tensors.
    fn state_tensors(&self) -> Vec<(String, Tensor)>;
    /// Restores state saved by [`Optimizer::state_tensors`].
    fn load_state_tensors(&mut self, state: &[(String, Tensor)]) -> Result<()>;
}

/// A boxed optimiser is one, so code generic over its optimiser also takes one picked at run
/// time (the grid search's GAN chooses Adam or SGD per network).
impl<O: Optimizer + ?Sized> Optimizer for Box<O> {
    fn step(&mut self, grads: &Grads) -> Result<()> {
        (**self).step(grads)
    }

    fn groups(&self) -> &[ParamGroup] {
        (**self).groups()
    }

    fn set_lr(&mut self, group: usize, lr: f64) {
        (**self).set_lr(group, lr)
    }

    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        (**self).state_tensors()
    }

    fn load_state_tensors(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        (**self).load_state_tensors(state)
    }
}
