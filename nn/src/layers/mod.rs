//! Layers, one per file.

mod activation;
mod batch_norm;
mod dropout;
mod layer_norm;
mod linear;
mod sequential;
mod spectral_norm;

pub use activation::Activation;
pub use batch_norm::BatchNorm;
pub use dropout::{Dropout, Maxout};
pub use layer_norm::LayerNorm;
pub use linear::Linear;
pub use sequential::Sequential;
pub use spectral_norm::{SpectralNorm, WeightedLayer};
