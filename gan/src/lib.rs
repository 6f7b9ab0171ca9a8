//! saddle's GAN models, data loaders, metrics and training loops.

#![warn(missing_docs)]

pub mod data;
pub mod evaluate;
mod font;
pub mod grid;
pub mod metrics;
pub mod models;
pub mod plot;
pub mod toy;

pub use saddle_nn as nn;
pub mod run;
