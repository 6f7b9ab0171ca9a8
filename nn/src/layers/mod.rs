//! Layers, one per file.

mod activation;
mod attention;
mod batch_norm;
mod cond_batch_norm;
mod conv;
mod dropout;
mod embedding;
mod layer_norm;
mod linear;
mod pooling;
mod resnet;
mod sequential;
mod spectral_norm;

pub use activation::Activation;
pub use attention::SelfAttention;
pub use batch_norm::BatchNorm;
pub use cond_batch_norm::ConditionalBatchNorm;
pub use conv::{Conv2d, ConvTranspose2d};
pub use dropout::{Dropout, Maxout};
pub use embedding::Embedding;
pub use layer_norm::LayerNorm;
pub use linear::Linear;
pub use pooling::{GlobalPool2d, Pool2d, PoolKind, UpsampleNearest2d};
pub use resnet::{BlockNorm, BlockNormKind, ResBlockDown, ResBlockUp};
pub use sequential::Sequential;
pub use spectral_norm::{SpectralNorm, WeightedLayer};
