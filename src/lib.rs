//! saddle: a GAN toolkit on a from-scratch tensor engine.
//!
//! This root crate re-exports the four layers: [`kernels`] (raw compute), [`engine`] (tensors and
//! autodiff), [`nn`] (layers, optimisers) and [`gan`] (models, data, training).

#![warn(missing_docs)]

pub use saddle_engine as engine;
pub use saddle_gan as gan;
pub use saddle_kernels as kernels;
pub use saddle_nn as nn;

pub mod allocator;
pub mod bench;
pub mod bigbigan;
pub mod classify;
pub mod cli;
pub mod eval;
pub mod flags;
pub mod grid;
pub mod label_source;
pub mod probe;
pub mod resume;
pub mod sample;
pub mod semisup;
pub mod train;

pub use saddle_engine::{DType, Device, Error, Result, Tensor};
