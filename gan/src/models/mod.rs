//! The papers' models.

pub mod classifier;
pub mod dcgan;
pub mod ebgan;
pub mod gan2014;
mod step;
pub use step::{DStepStats, StepStats};
