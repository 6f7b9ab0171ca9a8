//! saddle's layer library: the [`Module`] abstraction with named parameters and buffers,
//! layers, initialisers ([`init`]) and optimisers ([`optim`]).

#![warn(missing_docs)]

pub mod checkpoint;
pub mod ema;
pub mod init;
mod layers;
mod module;
pub mod optim;
mod standing_stats;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use ema::Ema;
pub use layers::{
    Activation, BatchNorm, BlockNorm, BlockNormKind, ConditionalBatchNorm, Conv2d, ConvTranspose2d,
    Dropout, Embedding, GlobalPool2d, LayerNorm, Linear, Maxout, Pool2d, PoolKind, ResBlockDown,
    ResBlockUp, SelfAttention, Sequential, SpectralNorm, UpsampleNearest2d, WeightedLayer,
};
pub use module::{child_name, Module, ModuleExt, Slot};
pub use saddle_engine as engine;
pub use standing_stats::standing_stats;
