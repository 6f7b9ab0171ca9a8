//! The papers' models.

pub mod classifier;
pub mod dcgan;
